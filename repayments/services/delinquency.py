"""Daily aging of bills: overdue status and days past due."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import connection, transaction

from accounts.services import audit_record


def bills_refresh_delinquency(*, as_of: dt.date) -> dict[str, int]:
    """Age open bills to ``as_of`` in two set-based statements.

    * A ``pending`` bill with money still owed whose due date plus the grace
      period (``settings.GRACE_PERIOD_DAYS``) lies before ``as_of`` becomes ``overdue``.
    * Every ``overdue`` bill gets ``dpd = as_of - due_date`` (business-time
      calendar days) and ``dpd_as_of = as_of``.

    Idempotent: running it twice for the same day changes nothing the second time.
    Late-fee accrual and extension handling arrive with the repayment engine.

    Args:
        as_of: the business-time date to age to (normally ``business_today()``).

    Returns:
        ``{"became_overdue": n, "aged": m}``.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE repayments_bill
               SET status = 'overdue', dpd = %(as_of)s::date - due_date, dpd_as_of = %(as_of)s, updated_at = now()
             WHERE status = 'pending'
               AND due_date + %(grace)s < %(as_of)s::date
               AND amount_paid < amount_due
            """,
            {"as_of": as_of, "grace": settings.GRACE_PERIOD_DAYS},
        )
        became_overdue = cursor.rowcount
        cursor.execute(
            """
            UPDATE repayments_bill
               SET dpd = %(as_of)s::date - due_date, dpd_as_of = %(as_of)s, updated_at = now()
             WHERE status = 'overdue' AND dpd_as_of IS DISTINCT FROM %(as_of)s
            """,
            {"as_of": as_of},
        )
        aged = cursor.rowcount
        result = {"became_overdue": became_overdue, "aged": aged}
        audit_record(
            actor=None, action="bills.refresh_delinquency", target_type="job", after={"as_of": str(as_of), **result}
        )
    return result
