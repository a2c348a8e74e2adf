"""Cursor pagination: stable and index-friendly on tables of millions of rows."""

from __future__ import annotations

import re

from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

from repayments.api.filtering import NO_NUL_PATTERN

# The position a cursor carries is the last row's id (ordered by id): ASCII digits
# that fit a bigint. Anything else was not made by us.
_ID_POSITION = re.compile(r"[0-9]{1,19}")


class IdCursorPagination(CursorPagination):
    """Newest first by primary key; ``?page_size=`` from 1 to 500; ``?count=true`` adds the total.

    Keyset pagination never counts or offsets, so page 1,000 costs what page 1
    costs (the ``id`` index). A client that needs the total asks for it with
    ``?count=true`` (one ``COUNT(*)`` over the filtered rows, on every page it asks).

    Only cursors this class encoded are accepted: a ``cursor`` that is not base64,
    or whose position is not an id, is a 404 (``Invalid cursor``), as DRF answers
    for an undecodable one. There are no page numbers: ``?page=`` is a 400 telling
    the client to follow ``next``, rather than the first page again and again.
    A ``page_size`` that is not a whole number from 1 to 500 (``null``, blank,
    ``0``, ``501``) and a blank ``cursor`` are a 400 naming the parameter and value
    (and the limit), not the default page silently; the schema states both bounds.
    """

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500
    count_query_param = "count"

    def paginate_queryset(self, queryset, request, view=None):
        """DRF's keyset page, after refusing a page number (400); with ``?count=true`` also the total.

        Raises:
            ValidationError: (400) ``page`` given, or ``count`` neither ``true`` nor ``false``.
        """
        if "page" in request.query_params:
            raise ValidationError(
                {"page": [_("These lists page by cursor: follow the “next” link instead of a page number.")]},
                code="invalid",
            )
        self.total: int | None = None
        wanted = request.query_params.get(self.count_query_param)
        if wanted is not None and wanted not in ("true", "false"):
            raise ValidationError(
                {self.count_query_param: [_("count: “%(value)s” is not true or false.") % {"value": wanted[:40]}]},
                code="invalid",
            )
        page: list | None = super().paginate_queryset(queryset, request, view)
        if wanted == "true":
            # One COUNT(*) over the filtered rows: asked for, never by default (it grows with the table).
            self.total = queryset.count()
        return page

    def get_paginated_response(self, data):
        """DRF's ``next`` / ``previous`` / ``results``, and ``count`` when ``?count=true`` asked for it."""
        response = super().get_paginated_response(data)
        if self.total is not None:
            response.data = {"count": self.total, **response.data}
        return response

    def get_paginated_response_schema(self, schema: dict) -> dict:
        """DRF's page schema plus the optional ``count`` (present only with ``?count=true``)."""
        page = super().get_paginated_response_schema(schema)
        page["properties"] = {
            "count": {
                "type": "integer",
                "minimum": 0,
                "description": "How many rows the filters select in all; only with ?count=true.",
            },
            **page["properties"],
        }
        return page

    def get_page_size(self, request) -> int | None:
        """The ``page_size`` asked for, or the default (``PAGE_SIZE``) when the parameter is absent.

        Raises:
            ValidationError: (400) the value is not a whole number from 1 to ``max_page_size``.
        """
        if self.page_size_query_param not in request.query_params:
            return self.page_size
        raw = request.query_params[self.page_size_query_param]
        if raw.isascii() and raw.isdigit() and len(raw) <= 4 and 1 <= int(raw) <= self.max_page_size:
            return int(raw)
        raise ValidationError(
            {
                self.page_size_query_param: [
                    _("page_size: “%(value)s” is not a whole number from 1 to %(max)s.")
                    % {"value": raw[:40], "max": self.max_page_size}
                ]
            },
            code="invalid",
        )

    def get_schema_operation_parameters(self, view) -> list[dict]:
        """DRF's ``cursor`` and ``page_size`` parameters with the bounds this class enforces, and ``count``."""
        parameters = super().get_schema_operation_parameters(view)
        parameters.append(
            {
                "name": self.count_query_param,
                "required": False,
                "in": "query",
                "description": "true: the response also gives `count`, the rows the filters select in all "
                "(one COUNT over them). Default false.",
                "schema": {"type": "string", "enum": ["true", "false"]},
            }
        )
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
            elif parameter["name"] == self.cursor_query_param:
                parameter["schema"].update(minLength=1, pattern=NO_NUL_PATTERN)
        return parameters

    def decode_cursor(self, request):
        """DRF's cursor, its position checked to be an id.

        Raises:
            NotFound: the cursor is not one this API gave (its position would
                otherwise reach the ``id`` lookup and fail there with a server error).
        """
        if request.query_params.get(self.cursor_query_param, None) == "":
            raise ValidationError(
                {self.cursor_query_param: [_("cursor: “” is empty: follow a “next” link or leave it out.")]},
                code="invalid",
            )
        cursor = super().decode_cursor(request)
        by_id = tuple(self.ordering) in (("-id",), ("id",))  # set before decoding; a subclass may order otherwise
        if cursor is not None and cursor.position is not None and by_id:
            # DRF's stubs type the position as int; DRF decodes it from the query string, a str.
            if not _ID_POSITION.fullmatch(cursor.position):  # type: ignore[call-overload]
                raise NotFound(self.invalid_cursor_message)
        return cursor
