"""System-fault incidents for supervisors (issue #5): list, declare, resolve, relief with maker-checker."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.http import AuthenticatedHttpRequest
from accounts.services import audit_record
from baitiao.csvfiles import csv_lines, csv_response
from baitiao.paging import paginate, query_without_page
from repayments.forms import IncidentDeclareForm, IncidentWithdrawForm, ReliefRequestForm, ReliefReverseForm
from repayments.models import Incident, ReliefBatch, ReliefStatus
from repayments.selectors.bureau import LEDGER_COLUMNS, ledger_row, suppression_ledger
from repayments.selectors.incidents import (
    AFFECTED_COLUMNS,
    incident_affected_count,
    incident_affected_export,
    incident_affected_page,
    incident_page,
    live_batch,
)
from repayments.services.errors import RuleViolation
from repayments.services.incidents import (
    incident_declare,
    incident_resolve,
    incident_withdraw,
    relief_approve,
    relief_refusals,
    relief_request,
    relief_reverse,
)

PAGE_SIZE = 50
PERMISSION = "repayments.manage_incident"


@login_required
@permission_required(PERMISSION, raise_exception=True)
def incident_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Incidents, newest first; open ones first. ``LIMIT 51`` pages, no count."""
    incidents = Incident.objects.select_related("declared_by", "resolved_by").order_by("status", "-started_at", "-id")
    page = paginate(incidents, request.GET, size=PAGE_SIZE)
    return render(
        request,
        "console/incidents/list.html",
        {"incidents": page.rows, "has_next": page.has_next, "page_number": page.number},
    )


@login_required
@permission_required(PERMISSION, raise_exception=True)
def incident_declare_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Declare an incident by hand; overlapping ones are refused with the one they meet."""
    form = IncidentDeclareForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            incident = incident_declare(
                declared_by=request.user,
                bank_code=data["bank_code"],
                channel=data["channel"],
                started_at=data["started_at"],
                ended_at=data["ended_at"],
                description=data["description"],
            )
        except RuleViolation as exc:
            form.add_error(None if exc.field == "__all__" else exc.field, str(exc))
        else:
            messages.success(request, _("Incident %(pk)s declared.") % {"pk": incident.pk})
            return redirect("console:incident-detail", pk=incident.pk)
    return render(request, "console/incidents/declare.html", {"form": form})


@login_required
@permission_required(PERMISSION, raise_exception=True)
def incident_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Timeline, scope, affected customers and amounts, relief and its progress, recovery since."""
    incident = get_object_or_404(Incident.objects.select_related("declared_by", "resolved_by", "withdrawn_by"), pk=pk)
    now = timezone.now()
    page = incident_page(incident=incident, now=now)
    live = live_batch(page.batches)
    affected = incident_affected_page(incident=incident, live=live, params=request.GET, now=now)
    return render(
        request,
        "console/incidents/detail.html",
        {
            "page": page,
            "incident": incident,
            "live": live,
            "refusals": relief_refusals(live) if live else {},
            "request_form": ReliefRequestForm(),
            "reverse_form": ReliefReverseForm(),
            "withdraw_form": IncidentWithdrawForm(),
            "affected": affected,
            "query_without_page": query_without_page(request.GET),
            # The live batch's section polls itself (?poll=1: not activity, accounts.middleware)
            # until it is applied: its heading, progress and the Reverse form come without a reload.
            "polling": live is not None and live.status in (ReliefStatus.APPROVED, ReliefStatus.RUNNING),
        },
    )


@login_required
@permission_required(PERMISSION, raise_exception=True)
def incident_affected_csv(request: AuthenticatedHttpRequest, pk: int) -> HttpResponseBase:
    """The bills the incident affected as CSV (names masked, bank codes), streamed; audited with its row count."""
    incident = get_object_or_404(Incident, pk=pk)
    now = timezone.now()
    live = live_batch(list(incident.relief_batches.order_by("-created_at")))
    audit_record(
        actor=request.user,
        action="incident.affected_export",
        target=incident,
        after={"rows": incident_affected_count(incident=incident, live=live, now=now), "masked": True},
    )
    lines = csv_lines(AFFECTED_COLUMNS, incident_affected_export(incident=incident, live=live, now=now))
    return csv_response(f"incident-{incident.pk}-affected-bills.csv", lines)


def _done(request: AuthenticatedHttpRequest, pk: int, call, success: str) -> HttpResponse:
    """Call the service, say how it went, and go back: to ``next`` when it is ours (the inbox), else the incident."""
    try:
        call()
        messages.success(request, success)
    except RuleViolation as exc:
        messages.error(request, str(exc))
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("console:incident-detail", pk=pk)


@login_required
@permission_required(PERMISSION, raise_exception=True)
@require_POST
def incident_resolve_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _done(
        request,
        pk,
        lambda: incident_resolve(incident_id=pk, resolved_by=request.user),
        _("Incident resolved; its customers' debits are retried now."),
    )


@login_required
@permission_required(PERMISSION, raise_exception=True)
@require_POST
def incident_withdraw_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Withdraw an incident declared by mistake, with a reason; the service undoes its effects."""
    form = IncidentWithdrawForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give a reason of at least five characters."))
        return redirect("console:incident-detail", pk=pk)
    return _done(
        request,
        pk,
        lambda: incident_withdraw(incident_id=pk, withdrawn_by=request.user, reason=form.cleaned_data["reason"]),
        _("Incident withdrawn: it no longer shields or relieves anyone."),
    )


@login_required
@permission_required(PERMISSION, raise_exception=True)
@require_POST
def relief_request_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    form = ReliefRequestForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Days must be a whole number between 1 and 90."))
        return redirect("console:incident-detail", pk=pk)
    data = form.cleaned_data
    return _done(
        request,
        pk,
        lambda: relief_request(incident_id=pk, requested_by=request.user, days=data["days"], note=data["note"]),
        _("Relief requested; another supervisor approves it."),
    )


@login_required
@permission_required(PERMISSION, raise_exception=True)
@require_POST
def relief_approve_view(request: AuthenticatedHttpRequest, batch_id: int) -> HttpResponse:
    batch = get_object_or_404(ReliefBatch, pk=batch_id)
    return _done(
        request,
        batch.incident_id,
        lambda: relief_approve(batch_id=batch_id, approved_by=request.user),
        _("Relief approved; it is being applied."),
    )


@login_required
@permission_required(PERMISSION, raise_exception=True)
@require_POST
def relief_reverse_view(request: AuthenticatedHttpRequest, batch_id: int) -> HttpResponse:
    batch = get_object_or_404(ReliefBatch, pk=batch_id)
    form = ReliefReverseForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give a reason of at least five characters."))
        return redirect("console:incident-detail", pk=batch.incident_id)
    return _done(
        request,
        batch.incident_id,
        lambda: relief_reverse(batch_id=batch_id, reversed_by=request.user, reason=form.cleaned_data["reason"]),
        _("Relief reversed: every bill has its earlier values back."),
    )


LEDGER_PAGE_SIZE = 100


@login_required
@permission_required("repayments.view_bureau_ledger", raise_exception=True)
def bureau_ledger(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Why each bill's lateness was not reported to the credit bureau, and who decided; newest first."""
    rows, errors = suppression_ledger(request.GET)
    page = paginate(rows, request.GET, size=LEDGER_PAGE_SIZE)
    context = {
        "entries": [ledger_row(entry) for entry in page.rows],
        "has_next": page.has_next,
        "page_number": page.number,
        "errors": errors,
        "params": request.GET,
        "query_without_page": query_without_page(request.GET),
    }
    return render(request, "console/incidents/ledger.html", context)


@login_required
@permission_required("repayments.view_bureau_ledger", raise_exception=True)
def bureau_ledger_export(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    """The filtered ledger as CSV for regulators (UTF-8 with BOM, formula-safe), streamed; audited."""
    rows, errors = suppression_ledger(request.GET)
    if errors:  # never widen an export because a filter was mistyped
        return HttpResponse("\n".join(errors), status=400, content_type="text/plain; charset=utf-8")
    audit_record(
        actor=request.user,
        action="bureau_ledger.export",
        target_type="repayments.bureausuppression",
        after={"filters": dict(request.GET.lists())},  # {name: [values]}, repeated ones kept
    )
    lines = csv_lines(
        LEDGER_COLUMNS,
        ([ledger_row(entry)[column] for column in LEDGER_COLUMNS] for entry in rows.iterator(chunk_size=2000)),
    )
    return csv_response("bureau-suppression-ledger.csv", lines)
