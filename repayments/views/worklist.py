"""Worklist, search and claiming."""

from __future__ import annotations

from types import SimpleNamespace

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.http import AuthenticatedHttpRequest
from baitiao.business_time import bucket_ranges
from baitiao.paging import Page, page_number, query_without_page
from repayments.bins import bank_choices
from repayments.filters import RepairCaseFilter, WorklistFilter
from repayments.models import Bill, BindingRepairCase, FailureFamily, RiskTier
from repayments.selectors.customers import approvals_pending, user_can_approve
from repayments.selectors.worklist import PAGE_SIZE, worklist_bills, worklist_repair_cases
from repayments.services.casework import bill_claim, customer_lookup
from repayments.services.errors import RuleViolation


@login_required
@permission_required("repayments.view_bill", raise_exception=True)
def worklist(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Queues of failed debits, repair cases, overdue bills and approvals, with filters.

    The filters are :class:`repayments.filters.WorklistFilter` (shared with the API's
    bills). A refused value is shown above the queue, which is then empty: a
    mistyped filter never shows more than was asked for.
    """
    number = page_number(request.GET)
    filterset = WorklistFilter(request.GET, queryset=Bill.objects.all(), request=request)
    errors = filterset.error_messages
    queue = filterset.value("queue", "failures")
    can_approve = user_can_approve(request.user)
    if queue == "approvals" and not can_approve:
        errors = [*errors, _("Only supervisors have an approvals queue.")]
        queue = "failures"
    # What the form shows: the values as typed (a refused one stays, to be corrected).
    typed = {name: request.GET.get(name, "").strip() for name in filterset.filters if name != "queue"}
    filters = SimpleNamespace(**typed, queue=queue, errors=errors)
    context = {
        "filters": filters,
        "families": FailureFamily.choices,
        "tiers": RiskTier.choices,
        "buckets": [name for name, _, _ in bucket_ranges()],
        "banks": bank_choices(),
        "queue_tabs": [
            ("failures", _("All failed debits")),
            ("system", _("System faults")),
            ("binding", _("Binding failures")),
            ("funds", _("Insufficient funds")),
            ("repair", _("Binding repair cases")),
            ("overdue", _("Overdue")),
            *([("approvals", _("Awaiting my approval"))] if can_approve else []),
        ],
    }
    if queue == "approvals":
        context["approvals"] = approvals_pending(user=request.user)
    elif filterset.problems():
        context["page"] = Page(rows=[], number=number, has_next=False, size=PAGE_SIZE)
    elif queue == "repair":
        cases = RepairCaseFilter(request.GET, queryset=BindingRepairCase.objects.all(), request=request)
        if cases.problems():
            filters.errors = [*errors, *cases.error_messages]
            context["page"] = Page(rows=[], number=number, has_next=False, size=PAGE_SIZE)
        else:
            context["page"] = worklist_repair_cases(filters=cases, number=number)
    else:
        context["page"] = worklist_bills(filters=filterset, number=number)
    context["query_without_page"] = query_without_page(request.GET)
    return render(request, "console/worklist.html", context)


@login_required
@permission_required("repayments.view_customer", raise_exception=True)
@require_http_methods(["GET", "POST"])
def search(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Find a customer; a single hit goes straight to the customer's page.

    The console's forms POST the query so that phone numbers and IDs stay out of
    URLs and access logs; GET (``?q=``) works too, for links with a bill number.
    """
    query = request.POST.get("q") or request.GET.get("q", "")
    try:
        result = customer_lookup(query=query, actor=request.user, ip_address=request.META.get("REMOTE_ADDR"))
    except RuleViolation as exc:
        # The refused identifier is not echoed back into the page.
        return render(request, "console/search.html", {"q": "", "error": str(exc)}, status=403)
    if len(result.customers) == 1:
        return redirect("console:customer-detail", customer_no=result.customers[0].customer_no)
    return render(request, "console/search.html", {"q": query, "result": result})


@login_required
@permission_required("repayments.work_cases", raise_exception=True)
@require_POST
def claim(request: AuthenticatedHttpRequest, bill_no: str) -> HttpResponse:
    """Assign a bill to me (or release it)."""
    bill = get_object_or_404(Bill.objects.only("id", "bill_no"), bill_no=bill_no)
    release = request.POST.get("release") == "1"
    try:
        bill_claim(bill_id=bill.id, actor=request.user, release=release)
        done = _("Released %(bill)s.") if release else _("%(bill)s is now assigned to you.")
        messages.success(request, done % {"bill": bill_no})
    except RuleViolation as exc:
        messages.error(request, str(exc))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = ""
    return redirect(target or "console:worklist")
