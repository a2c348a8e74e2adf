"""The supervisors' approvals inbox and the auditors' view of the audit trail."""

from __future__ import annotations

import csv
import json

from axes.helpers import get_client_ip_address
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.selectors import audit_events_filtered
from accounts.services import audit_record
from baitiao.paging import paginate
from repayments.forms import DecisionForm
from repayments.imports.safety import neutralize
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


@login_required
@permission_required("accounts.view_audit_trail", raise_exception=True)
def audit(request: HttpRequest) -> HttpResponse:
    """The audit trail filtered by actor, action, customer and business-time dates; newest first."""
    events, errors = audit_events_filtered(request.GET)
    page = paginate(events, request.GET, size=AUDIT_PAGE_SIZE)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "console/audit.html",
        {
            "events": page.rows,
            "has_next": page.has_next,
            "page_number": page.number,
            "errors": errors,
            "params": request.GET,
            "query_without_page": query.urlencode(),
        },
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_cell(value) -> str:
    """One CSV cell: JSON for the before/after snapshots, formulas neutralised (as in every export)."""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True, cls=DjangoJSONEncoder)
    return "" if value is None else neutralize(str(value))


@login_required
@permission_required("accounts.export_audit_trail", raise_exception=True)
def audit_export(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered audit trail as CSV, streamed; the export itself is audited."""
    events, _errors = audit_events_filtered(request.GET)
    audit_record(
        actor=request.user,
        action="audit.export",
        target_type="accounts.auditevent",
        after={"filters": {k: v for k, v in request.GET.items()}},
        ip_address=get_client_ip_address(request),
    )
    writer = csv.writer(_Echo())
    header = ["occurred_at", "actor", "action", "customer_no", "target_type", "target_id", "reason", "before", "after"]

    def rows():
        yield "\ufeff" + writer.writerow(header)  # BOM: Excel on Chinese Windows reads UTF-8
        for event in events.iterator(chunk_size=2000):
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
