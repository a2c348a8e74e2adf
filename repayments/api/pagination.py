"""Cursor pagination: stable and index-friendly on tables of millions of rows."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Newest first by primary key; ``?page_size=`` up to 500.

    Keyset pagination never counts or offsets, so page 1,000 costs what page 1
    costs (the ``id`` index).
    """

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500
