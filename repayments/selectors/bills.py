"""The console's list of bills (``/console/bills/``): where the dashboard's rows drill down to."""

from __future__ import annotations

from dataclasses import dataclass, replace

from baitiao.paging import Page, page_bounds, page_from_rows
from repayments.filters import BillBrowseFilter
from repayments.models import Bill

PAGE_SIZE = 50


@dataclass(frozen=True)
class BillList:
    """One page of the filtered bills and how many bills the filters match in all (``None``: not counted)."""

    page: Page
    count: int | None


def bills_browse(*, filters: BillBrowseFilter, number: int) -> BillList:
    """Page ``number`` of the bills the filters select, highest DPD first, with the total count (three queries).

    The total is counted only when at least one filter narrows the list: an
    unfiltered ``COUNT(*)`` over millions of bills is what the console's lists avoid
    (``baitiao/paging.py``); a drill-down always carries its filters.

    Args:
        filters: a bound, valid :class:`repayments.filters.BillBrowseFilter`.
        number: the 1-based page (``baitiao.paging.page_number``).

    Raises:
        ValueError: the filters hold a refused value (the view shows it instead).
        Http404: a page after the first that holds no row.
    """
    if not filters.is_valid():
        raise ValueError(f"bill filters refused: {filters.errors}")
    selected = filters.qs
    start, stop = page_bounds(number, PAGE_SIZE)
    ids = list(selected.order_by("-dpd", "id").values_list("id", flat=True)[start:stop])
    page = page_from_rows(ids, number=number, size=PAGE_SIZE)
    rows = {
        bill.id: bill
        for bill in Bill.objects.filter(id__in=page.rows).select_related("customer", "credit_line").with_bucket()
    }
    narrowed = any(value not in (None, "", []) for value in filters.form.cleaned_data.values())
    return BillList(
        page=replace(page, rows=[rows[i] for i in page.rows if i in rows]),
        count=selected.count() if narrowed else None,
    )
