"""Cursor pagination: stable and index-friendly on tables of millions of rows."""

from __future__ import annotations

import re

from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

# The position a cursor carries is the last row's id (ordered by id): ASCII digits
# that fit a bigint. Anything else was not made by us.
_ID_POSITION = re.compile(r"[0-9]{1,19}")


class IdCursorPagination(CursorPagination):
    """Newest first by primary key; ``?page_size=`` up to 500.

    Keyset pagination never counts or offsets, so page 1,000 costs what page 1
    costs (the ``id`` index).

    Only cursors this class encoded are accepted: a ``cursor`` that is not base64,
    or whose position is not an id, is a 404 (``Invalid cursor``), as DRF answers
    for an undecodable one. There are no page numbers: ``?page=`` is a 400 telling
    the client to follow ``next``, rather than the first page again and again.
    """

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        """DRF's keyset page, after refusing a page number (400)."""
        if "page" in request.query_params:
            raise ValidationError(
                {"page": [_("These lists page by cursor: follow the “next” link instead of a page number.")]},
                code="invalid",
            )
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        """DRF's cursor, its position checked to be an id.

        Raises:
            NotFound: the cursor is not one this API gave (its position would
                otherwise reach the ``id`` lookup and fail there with a server error).
        """
        cursor = super().decode_cursor(request)
        by_id = tuple(self.ordering) in (("-id",), ("id",))  # set before decoding; a subclass may order otherwise
        if cursor is not None and cursor.position is not None and by_id:
            if not _ID_POSITION.fullmatch(cursor.position):
                raise NotFound(self.invalid_cursor_message)
        return cursor
