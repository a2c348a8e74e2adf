"""Reads of the accounts app: the audit trail as the auditors' view filters it."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.filters import AuditFilter
from accounts.models import AuditEvent


def audit_events_filtered(params) -> tuple[QuerySet[AuditEvent], list[str]]:
    """The audit trail narrowed by the auditor's filters, newest first, and the refused inputs.

    Args:
        params: a mapping (``request.GET``) read by :class:`accounts.filters.AuditFilter`
            (``actor``, ``action``, ``customer``, ``since``, ``until``, ``system``).

    Returns:
        The queryset and one message per refused value, naming its field and value.
        While any value is refused the queryset is empty: a mistyped filter never
        widens the page or the export.
    """
    filterset = AuditFilter(params, queryset=AuditEvent.objects.all())
    return filterset.qs.order_by("-occurred_at", "-id"), filterset.error_messages
