"""The console's list of bills, filtered as the dashboard's rows are (issue #16)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse
from django.shortcuts import render

from accounts.http import AuthenticatedHttpRequest
from baitiao.business_time import bucket_ranges
from baitiao.paging import Page, page_number, query_without_page
from repayments.bins import bank_choices
from repayments.filters import BillBrowseFilter
from repayments.models import Bill, BillStatus, FailureFamily, RiskTier
from repayments.selectors.bills import PAGE_SIZE, bills_browse


@login_required
@permission_required("repayments.view_bill", raise_exception=True)
def bill_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Bills by status, bucket, period, bank, risk tier, currency…, highest DPD first, with their count.

    The filters are :class:`repayments.filters.BillBrowseFilter`; a refused value is
    named above an empty list (never a wider one).
    """
    number = page_number(request.GET)
    filterset = BillBrowseFilter(request.GET, queryset=Bill.objects.all(), request=request)
    errors = filterset.error_messages
    count: int | None = 0
    if errors:
        page = Page(rows=[], number=number, has_next=False, size=PAGE_SIZE)
    else:
        found = bills_browse(filters=filterset, number=number)
        page, count = found.page, found.count
    context = {
        "page": page,
        "count": count,
        "errors": errors,
        "params": request.GET,
        "statuses": set(request.GET.getlist("status")),
        "status_choices": BillStatus.choices,
        "families": FailureFamily.choices,
        "tiers": RiskTier.choices,
        "buckets": [name for name, _, _ in bucket_ranges()],
        "banks": bank_choices(),
        "query_without_page": query_without_page(request.GET),
    }
    return render(request, "console/bills.html", context)
