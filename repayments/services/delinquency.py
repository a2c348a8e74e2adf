"""Daily aging of bills: paid bills close, unpaid ones turn overdue, DPD and late fees grow.

Late-fee rule (``settings.LATE_FEE_DAILY_RATE``, ``settings.LATE_FEE_CAP_PERCENT``):
``late_fee = min(round_half_up(unpaid amount due × daily rate × DPD, 2),
round_half_up(amount due × cap % / 100, 2))`` where unpaid amount due is
``max(amount_due − amount_paid, 0)``; a fee already paid (``amount_paid`` above
``amount_due``) or waived is never taken back. The default daily rate, 0.05 %, is the
overdue charge JD Baitiao publishes (违约金 每日 0.05 %); the cap keeps the total
at 10 % of the bill. PostgreSQL's ``round(numeric, 2)`` rounds half away from
zero, which is half-up for these non-negative amounts.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import connection, transaction

from accounts.services import audit_record
from repayments.models import BillStatus
from repayments.selectors.incidents import shielded_sql

_PARAMS_SQL = {
    "pending": BillStatus.PENDING.value,
    "overdue": BillStatus.OVERDUE.value,
    "paid": BillStatus.PAID.value,
}

CLOSE_PAID = """
    UPDATE repayments_bill
       SET status = %(paid)s, closed_at = now(), retry_at = NULL, updated_at = now()
     WHERE status IN (%(pending)s, %(overdue)s)
       AND amount_paid >= amount_due + late_fee - late_fee_waived
"""
# Bills an open incident shields (issue #5) neither turn overdue nor age: their
# debit failed on our side or the bank's, so DPD and late fees wait until the
# incident is resolved (relief then moves their due date).
BECOME_OVERDUE = f"""
    UPDATE repayments_bill
       SET status = %(overdue)s, updated_at = now()
     WHERE status = %(pending)s
       AND due_date + %(grace)s < %(as_of)s::date
       AND amount_paid < amount_due + late_fee - late_fee_waived
       AND NOT {shielded_sql("repayments_bill")}
"""  # noqa: S608 - constant SQL, no input
# An extension can move the due date past today again: the bill is current once more.
BACK_TO_PENDING = """
    UPDATE repayments_bill
       SET status = %(pending)s, dpd = 0, dpd_as_of = %(as_of)s, updated_at = now()
     WHERE status = %(overdue)s
       AND due_date + %(grace)s >= %(as_of)s::date
"""
AGE = f"""
    WITH aged AS (
        SELECT id,
               GREATEST(%(as_of)s::date - due_date, 0) AS dpd,
               LEAST(
                   ROUND(GREATEST(amount_due - amount_paid, 0) * %(rate)s * GREATEST(%(as_of)s::date - due_date, 0), 2),
                   ROUND(amount_due * %(cap)s / 100, 2)
               ) AS fee
          FROM repayments_bill
         WHERE status = %(overdue)s
           AND NOT {shielded_sql("repayments_bill")}
    )
    UPDATE repayments_bill AS b
       SET dpd = aged.dpd, late_fee = GREATEST(aged.fee, b.late_fee_waived, b.amount_paid - b.amount_due),
           dpd_as_of = %(as_of)s,
           updated_at = now()
      FROM aged
     WHERE b.id = aged.id
       AND (b.dpd, b.late_fee, b.dpd_as_of)
           IS DISTINCT FROM (aged.dpd, GREATEST(aged.fee, b.late_fee_waived, b.amount_paid - b.amount_due), %(as_of)s)
"""  # noqa: S608 - constant SQL, no input


def bills_refresh_delinquency(*, as_of: dt.date, audit: bool = True) -> dict[str, int]:
    """Age every open bill to ``as_of``, set-based, in one transaction.

    1. Open bills whose payments cover amount due plus unwaived fee become ``paid``.
    2. ``pending`` bills past due date + ``settings.GRACE_PERIOD_DAYS`` with money
       owed become ``overdue``; ``overdue`` bills whose (extended) due date is within
       the grace period again go back to ``pending``.
    3. ``overdue`` bills get ``dpd = max(as_of − due_date, 0)`` (business-time days)
       and the late fee of the module rule.

    Idempotent: a second run for the same day changes no row.

    Args:
        as_of: business-time date to age to (normally ``business_today()``).
        audit: write a system audit event with the counts.

    Returns:
        Rows changed per step: ``closed_paid``, ``became_overdue``, ``back_to_pending``, ``aged``.
    """
    params = {
        **_PARAMS_SQL,
        "as_of": as_of,
        "grace": settings.GRACE_PERIOD_DAYS,
        "rate": settings.LATE_FEE_DAILY_RATE,
        "cap": settings.LATE_FEE_CAP_PERCENT,
    }
    result = {}
    with transaction.atomic(), connection.cursor() as cursor:
        for name, sql in (
            ("closed_paid", CLOSE_PAID),
            ("became_overdue", BECOME_OVERDUE),
            ("back_to_pending", BACK_TO_PENDING),
            ("aged", AGE),
        ):
            cursor.execute(sql, params)
            result[name] = cursor.rowcount
        if audit:
            audit_record(
                actor=None, action="bills.refresh_delinquency", target_type="job", after={"as_of": as_of, **result}
            )
    return result
