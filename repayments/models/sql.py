"""The codes raw SQL compares with, as named query parameters.

Statuses and families are never spelled inside a SQL string: a statement says
``b.status IN (%(bill_pending)s, %(bill_overdue)s)`` or ``a.failure_family = %(family_system)s``
and is executed with ``{**SQL_CODES, ...}``, so renaming a choice in
``repayments.models`` cannot leave a statement comparing with a value that no
longer exists.
"""

from __future__ import annotations

from repayments.models.bills import BillStatus, FailureFamily
from repayments.models.collection import AttemptStatus
from repayments.models.customers import CardBindingStatus, CreditLineStatus, RiskTier
from repayments.models.incidents import IncidentStatus, ReliefSkipReason
from repayments.models.notifications import Reminder

SQL_CODES: dict[str, str | list[str]] = {
    "bill_pending": BillStatus.PENDING.value,
    "bill_overdue": BillStatus.OVERDUE.value,
    "bill_paid": BillStatus.PAID.value,
    "attempt_failed": AttemptStatus.FAILED.value,
    "attempt_succeeded": AttemptStatus.SUCCEEDED.value,
    "attempt_pending": AttemptStatus.PENDING.value,
    "attempt_processing": AttemptStatus.PROCESSING.value,
    "attempt_unknown": AttemptStatus.UNKNOWN.value,
    "family_system": FailureFamily.SYSTEM.value,
    "incident_open": IncidentStatus.OPEN.value,
    "binding_active": CardBindingStatus.ACTIVE.value,
    "line_active": CreditLineStatus.ACTIVE.value,
    "reminder_planned": Reminder.Status.PLANNED.value,
    "reminder_skipped": Reminder.Status.SKIPPED.value,
    "tier_high": RiskTier.HIGH.value,
    "skip_paid": ReliefSkipReason.PAID.value,
    "skip_changed_since": ReliefSkipReason.CHANGED_SINCE.value,
}
