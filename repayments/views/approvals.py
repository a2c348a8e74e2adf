"""The supervisors' approvals inbox and the auditors' view of the audit trail."""

from __future__ import annotations

import csv
import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import AuditEvent
from accounts.services import audit_record
from repayments.forms import DecisionForm
from repayments.selectors.customers import approvals_pending
from repayments.services.errors import RuleViolation
from repayments.services.extensions import extension_decide, waiver_decide

AUDIT_PAGE_SIZE = 100


def _can_approve(user) -> bool:
    return user.has_perm("repayments.approve_extension") or user.has_perm("repayments.approve_waiver")


@login_required
def approvals(request: HttpRequest) -> HttpResponse:
    """Extensions and waivers waiting for a supervisor; one's own requests listed apart."""
    if not _can_approve(request.user):
        raise PermissionDenied
    return render(request, "console/approvals.html", {"approvals": approvals_pending(user=request.user)})


@login_required
@require_POST
def decide(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Approve or reject one extension or waiver (never one's own)."""
    permission = {"extension": "repayments.approve_extension", "waiver": "repayments.approve_waiver"}.get(kind)
    if permission is None or not request.user.has_perm(permission):
        raise PermissionDenied
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose approve or reject."))
        return redirect("console:approvals")
    approve = form.cleaned_data["decision"] == "approve"
    note = form.cleaned_data["note"]
    try:
        if kind == "extension":
            extension_decide(extension_id=pk, decided_by=request.user, approve=approve, note=note)
        else:
            waiver_decide(waiver_id=pk, decided_by=request.user, approve=approve, note=note)
        messages.success(request, _("Approved and applied.") if approve else _("Rejected."))
    except RuleViolation as exc:
        messages.error(request, str(exc))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = ""
    return redirect(target or "console:approvals")


def _audit_filtered(request: HttpRequest):
    events = AuditEvent.objects.all()
    params = request.GET
    if params.get("actor"):
        events = events.filter(actor_label=params["actor"].strip())
    if params.get("action"):
        events = events.filter(action__startswith=params["action"].strip())
    if params.get("customer"):
        events = events.filter(customer_no=params["customer"].strip())
    errors = []
    for name, lookup in (("since", "occurred_at__gte"), ("until", "occurred_at__lt")):
        raw = params.get(name, "").strip()
        if raw:
            try:
                day = dt.date.fromisoformat(raw)
            except ValueError:
                errors.append(_("%(name)s: “%(raw)s” is not a date (YYYY-MM-DD).") % {"name": name, "raw": raw})
                continue
            if name == "until":
                day += dt.timedelta(days=1)  # inclusive
            moment = timezone.make_aware(dt.datetime.combine(day, dt.time(0, 0)))
            events = events.filter(**{lookup: moment})
    return events, errors


@login_required
@permission_required("accounts.view_audit_trail", raise_exception=True)
def audit(request: HttpRequest) -> HttpResponse:
    """The audit trail filtered by actor, action, customer and business-time dates; newest first."""
    events, errors = _audit_filtered(request)
    try:
        page = max(int(request.GET.get("page", "1")), 1)
    except ValueError:
        page = 1
    offset = (page - 1) * AUDIT_PAGE_SIZE
    rows = list(events.order_by("-occurred_at", "-id")[offset : offset + AUDIT_PAGE_SIZE + 1])
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "console/audit.html",
        {
            "events": rows[:AUDIT_PAGE_SIZE],
            "has_next": len(rows) > AUDIT_PAGE_SIZE,
            "page_number": page,
            "errors": errors,
            "params": request.GET,
            "query_without_page": query.urlencode(),
        },
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_cell(value) -> str:
    """Neutralise spreadsheet formulas (OWASP CSV injection): a leading = + - @ gets a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@login_required
@permission_required("accounts.export_audit_trail", raise_exception=True)
def audit_export(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered audit trail as CSV, streamed; the export itself is audited."""
    events, _errors = _audit_filtered(request)
    audit_record(
        actor=request.user,
        action="audit.export",
        target_type="accounts.auditevent",
        after={"filters": {k: v for k, v in request.GET.items()}},
        ip_address=request.META.get("REMOTE_ADDR"),
    )
    writer = csv.writer(_Echo())
    header = ["occurred_at", "actor", "action", "customer_no", "target_type", "target_id", "reason", "before", "after"]

    def rows():
        yield "\ufeff" + writer.writerow(header)  # BOM: Excel on Chinese Windows reads UTF-8
        for event in events.order_by("-occurred_at", "-id").iterator(chunk_size=2000):
            yield writer.writerow(
                _csv_cell(v)
                for v in (
                    timezone.localtime(event.occurred_at).isoformat(),
                    event.actor_label,
                    event.action,
                    event.customer_no,
                    event.target_type,
                    event.target_id,
                    event.reason,
                    event.before,
                    event.after,
                )
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
    return response
