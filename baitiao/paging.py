"""The console's one paginator: ``?page=N`` read once, pages fetched with ``LIMIT size + 1``, no ``COUNT(*)``.

Lists here are read a page at a time with ``OFFSET (N - 1) * size LIMIT size + 1``:
the extra row says whether there is a next page, and no list ever counts its rows
(a count of millions of bills costs more than the page). So the last page is not
known in advance, and a page past it is found empty when it is read.

A page number is a whole number from 1 to :data:`MAX_PAGE`. Anything else (``0``,
``abc``, ``99999999999999999999``, which overflowed PostgreSQL's ``bigint`` OFFSET and
was a 500) and a page after the first that holds no row are a 404 whose message
says which page does not exist, as Django's own ``Paginator`` treats them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404, QueryDict
from django.utils.translation import gettext as _

PAGE_PARAM = "page"
# Far beyond any page a person reads (a million pages of fifty rows), far below
# the offsets PostgreSQL refuses; deeper than this is a URL nobody followed.
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class Page:
    """One page of a list: its rows, its 1-based number, whether another page follows, its size."""

    rows: list
    number: int
    has_next: bool
    size: int

    @property
    def start(self) -> int:
        """The 1-based position of the first row in the whole list (0 for an empty page)."""
        return (self.number - 1) * self.size + 1 if self.rows else 0

    @property
    def end(self) -> int:
        """The 1-based position of the last row in the whole list."""
        return (self.number - 1) * self.size + len(self.rows)


def page_number(params: Mapping[str, str], *, name: str = PAGE_PARAM) -> int:
    """The 1-based page number in ``params[name]`` (``request.GET``); 1 when absent or blank.

    Raises:
        Http404: the value is not a whole number from 1 to :data:`MAX_PAGE`.
    """
    raw = (params.get(name) or "").strip()
    if not raw:
        return 1
    if raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_PAGE)) and 1 <= int(raw) <= MAX_PAGE:
        return int(raw)
    # The value is not echoed beyond a few characters: it is whatever the address held.
    raise Http404(
        _("There is no page “%(page)s” of this list: pages are numbered from 1 to %(max)s.")
        % {"page": raw[:20], "max": MAX_PAGE}
    )


def page_bounds(number: int, size: int) -> tuple[int, int]:
    """The slice ``[start:stop]`` that reads page ``number`` of ``size`` rows plus one (the next-page probe)."""
    start = (number - 1) * size
    return start, start + size + 1


def page_from_rows(rows: Sequence, *, number: int, size: int) -> Page:
    """The :class:`Page` for the up to ``size + 1`` rows read with :func:`page_bounds`.

    Raises:
        Http404: a page after the first with no row: it is past the end of the list.
    """
    require_rows(number, rows)
    return Page(rows=list(rows[:size]), number=number, has_next=len(rows) > size, size=size)


def require_rows(number: int, rows: Sequence) -> None:
    """Refuse page ``number`` when it is after the first and holds no row.

    Raises:
        Http404: the page is past the end of the list.
    """
    if number > 1 and not rows:
        raise Http404(_("Page %(page)s is past the end of this list; go back to the first page.") % {"page": number})


def paginate(queryset: QuerySet, params: Mapping[str, str], *, size: int) -> Page:
    """Read the page ``params`` asks for (``?page=N``) from an ordered ``queryset``: one query.

    Raises:
        Http404: an absurd page number, or a page past the end (see :func:`page_number`).
    """
    number = page_number(params)
    start, stop = page_bounds(number, size)
    return page_from_rows(list(queryset[start:stop]), number=number, size=size)


def query_without_page(params: QueryDict) -> str:
    """``params`` (``request.GET``) URL-encoded without ``page``, for the Previous/Next links."""
    query = params.copy()
    query.pop(PAGE_PARAM, None)
    return query.urlencode()
