"""Reads of the accounts app: the audit trail as the auditors' view filters it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from accounts.filters import AuditFilter
from accounts.models import AuditEvent


def audit_events_filtered(params) -> tuple[QuerySet[AuditEvent], list[str]]:
    """The audit trail narrowed by the auditor's filters, newest first, and the refused inputs.

    Args:
        params: a mapping (``request.GET``) read by :class:`accounts.filters.AuditFilter`
            (``actor``, ``action``, ``customer``, ``target_type``, ``target_id``,
            ``request``, ``batch``, ``since``, ``until``, ``system``).

    Returns:
        The queryset and one message per refused value, naming its field and value.
        While any value is refused the queryset is empty: a mistyped filter never
        widens the page or the export.
    """
    filterset = AuditFilter(params, queryset=AuditEvent.objects.all())
    return filterset.qs.order_by("-occurred_at", "-id"), filterset.error_messages


_MISSING = object()


@dataclass(frozen=True)
class FieldChange:
    """One field of an event's snapshots: its value before and after (``None`` when absent) and whether it changed."""

    field: str
    before: Any
    after: Any
    in_before: bool
    in_after: bool
    changed: bool


def audit_event_changes(event: AuditEvent) -> list[FieldChange]:
    """The fields of ``event``'s ``before`` and ``after`` snapshots side by side, in the snapshots' order.

    A field is ``changed`` when it is in both snapshots with different values, or in
    only one of them while the other snapshot exists (an event with only ``after``,
    e.g. ``relief.request``, records facts, not changes: nothing is marked).
    Snapshots that are not JSON objects are shown as one row named ``""``.
    """
    before, after = event.before, event.after
    if before is not None and not isinstance(before, dict) or after is not None and not isinstance(after, dict):
        return [FieldChange("", before, after, before is not None, after is not None, before != after)]
    before, after = before or {}, after or {}
    both = bool(event.before) and bool(event.after)
    rows = []
    for name in [*before, *(key for key in after if key not in before)]:
        old, new = before.get(name, _MISSING), after.get(name, _MISSING)
        rows.append(
            FieldChange(
                field=name,
                before=None if old is _MISSING else old,
                after=None if new is _MISSING else new,
                in_before=old is not _MISSING,
                in_after=new is not _MISSING,
                changed=both and old != new,
            )
        )
    return rows
