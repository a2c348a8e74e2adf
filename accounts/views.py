"""The auditors' view of the audit trail: filtered, paged, exported as CSV."""

from __future__ import annotations

from axes.helpers import get_client_ip_address
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from accounts.http import AuthenticatedHttpRequest
from accounts.links import target_link
from accounts.models import AuditEvent
from accounts.selectors import audit_event_changes, audit_events_filtered
from accounts.services import audit_record
from baitiao.csvfiles import csv_lines, csv_response
from baitiao.paging import paginate, query_without_page

AUDIT_PAGE_SIZE = 100
AUDIT_EXPORT_COLUMNS = (
    "occurred_at",
    "actor",
    "action",
    "customer_no",
    "target_type",
    "target_id",
    "reason",
    "before",
    "after",
)


@login_required
@permission_required("accounts.view_audit_trail", raise_exception=True)
def audit(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The audit trail filtered by actor, action, customer and business-time dates; newest first."""
    events, errors = audit_events_filtered(request.GET)
    page = paginate(events, request.GET, size=AUDIT_PAGE_SIZE)
    return render(
        request,
        "accounts/audit.html",
        {
            "events": page.rows,
            "has_next": page.has_next,
            "page_number": page.number,
            "errors": errors,
            "params": request.GET,
            "query_without_page": query_without_page(request.GET),
        },
    )


@login_required
@permission_required("accounts.view_audit_trail", raise_exception=True)
def audit_event(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """One audit event: who, when (business time), the request, the target (linked) and before/after as a table."""
    event = get_object_or_404(AuditEvent.objects.select_related("actor"), pk=pk)
    return render(
        request,
        "accounts/audit_event.html",
        {
            "event": event,
            "changes": audit_event_changes(event),
            "target": target_link(event.target_type, event.target_id, request.user),
        },
    )


@login_required
@permission_required("accounts.export_audit_trail", raise_exception=True)
def audit_export(request: AuthenticatedHttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The filtered audit trail as CSV (snapshots as JSON), streamed; the export itself is audited.

    A refused filter value is a 400 naming it: never a wider export than was asked for.
    """
    events, errors = audit_events_filtered(request.GET)
    if errors:
        return HttpResponse("\n".join(errors), status=400, content_type="text/plain; charset=utf-8")
    audit_record(
        actor=request.user,
        action="audit.export",
        target_type="accounts.auditevent",
        after={"filters": dict(request.GET.lists())},  # {name: [values]}, repeated ones kept
        ip_address=get_client_ip_address(request),
    )
    rows = (
        (
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
        for event in events.iterator(chunk_size=2000)
    )
    return csv_response("audit-trail.csv", csv_lines(AUDIT_EXPORT_COLUMNS, rows))
