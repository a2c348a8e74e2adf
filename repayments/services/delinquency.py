"""Daily aging of open statements: paid ones close, missed minimums make the account delinquent.

The rule (card receivables practice; ``docs/repayment-engine.md``, ``docs/dataset.md``):

* A statement is **past due** once a minimum payment is missed. Before its own due
  date (+ ``settings.GRACE_PERIOD_DAYS``) its past-due amount is what is left of
  the minimums missed on earlier statements (``past_due_amount``, lowered by each
  payment); after it, the unpaid part of its own minimum, which includes them
  (``max(minimum_due − amount_paid, 0)``).
* DPD counts from the oldest missed due date (``past_due_since``, else the
  statement's own due date) and the **whole balance** ages in that bucket.
  ``cycles_past_due`` counts one billing cycle per 30 days past due or part of
  them, at least one once past due (``baitiao.business_time.cycles_past_due``;
  the M buckets' convention, so the bureau is told the cycle its bucket shows).
* A statement with a past-due amount is ``overdue`` once its oldest missed due
  date is past the grace period; paying the past-due amount makes it ``pending``
  again (the account is current), paying everything makes it ``paid``.

Late-fee rule (``settings.LATE_FEE_DAILY_RATE``, ``settings.LATE_FEE_CAP_PERCENT``):
``late_fee = min(round_half_up(past-due amount × daily rate × DPD, 2),
round_half_up(amount due × cap % / 100, 2))`` — the fee accrues on the past-due
amount (as a card's late fee does), not on the whole balance. An accrued fee is
never lowered by aging; a fee already paid (``amount_paid`` above ``amount_due``)
or waived is never taken back. The default daily rate, 0.05 %, is the overdue
charge JD Baitiao publishes (违约金 每日 0.05 %); the cap keeps the total at 10 %
of the statement. PostgreSQL's ``round(numeric, 2)`` rounds half away from zero,
which is half-up for these non-negative amounts.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import connection, transaction

from accounts.services import audit_record
from baitiao.business_time import CYCLE_DAYS, cycles_past_due, days_past_due
from baitiao.money import ZERO
from repayments.models import SQL_CODES, Bill, BillStatus, outstanding_sql
from repayments.selectors.incidents import shielded_sql

# Restricts a step to ``bill_ids`` when given (an import ages what it wrote).
_ONLY = "(%(bill_ids)s::bigint[] IS NULL OR id = ANY(%(bill_ids)s::bigint[]))"

CLOSE_PAID = f"""
    UPDATE repayments_bill
       SET status = %(bill_paid)s, closed_at = now(), retry_at = NULL, past_due_amount = 0, past_due_since = NULL,
           cycles_past_due = 0, dpd = 0, updated_at = now()
     WHERE status IN (%(bill_pending)s, %(bill_overdue)s)
       AND {outstanding_sql()} = 0
       AND {_ONLY}
"""  # noqa: S608 - constant SQL, no input

# Bills an open incident shields (issue #5) neither turn overdue nor age: their
# debit failed on our side or the bank's, so DPD and late fees wait until the
# incident is resolved (relief then moves their due dates).
AGE = f"""
    WITH own AS (
        SELECT id, status AS status_before, amount_due, amount_paid, late_fee, late_fee_waived,
               CASE WHEN due_date + %(grace)s < %(as_of)s::date
                    THEN GREATEST(minimum_due - amount_paid, 0)
                    ELSE past_due_amount END AS past_due,
               past_due_since, due_date
          FROM repayments_bill
         WHERE status IN (%(bill_pending)s, %(bill_overdue)s)
           AND NOT {shielded_sql("repayments_bill")}
           AND {_ONLY}
         -- A payment or an extension committing meanwhile is waited for and re-read,
         -- never overwritten with the state computed before it.
           FOR UPDATE
    ), dated AS (
        SELECT own.*,
               CASE WHEN past_due > 0 THEN COALESCE(past_due_since, due_date) END AS since
          FROM own
    ), state AS (
        SELECT dated.*,
               since IS NOT NULL AND since + %(grace)s < %(as_of)s::date AS is_overdue,
               CASE WHEN since IS NOT NULL AND since + %(grace)s < %(as_of)s::date
                    THEN %(as_of)s::date - since ELSE 0 END AS new_dpd
          FROM dated
    ), aged AS (
        SELECT state.*,
               -- baitiao.business_time.cycles_past_due: one cycle per 30 days past due or part.
               CASE WHEN since IS NULL THEN 0
                    ELSE GREATEST(1, CEIL(new_dpd / %(cycle_days)s::numeric))::smallint END AS cycles,
               CASE WHEN is_overdue THEN GREATEST(
                        LEAST(ROUND(past_due * %(rate)s * (%(as_of)s::date - since), 2),
                              ROUND(amount_due * %(cap)s / 100, 2)),
                        late_fee, late_fee_waived, amount_paid - amount_due)
                    ELSE late_fee END AS new_fee,
               CASE WHEN is_overdue THEN %(bill_overdue)s ELSE %(bill_pending)s END AS new_status
          FROM state
    )
    UPDATE repayments_bill AS b
       SET status = aged.new_status, dpd = aged.new_dpd, late_fee = aged.new_fee,
           past_due_amount = aged.past_due, past_due_since = aged.since, cycles_past_due = aged.cycles,
           dpd_as_of = %(as_of)s, updated_at = now()
      FROM aged
     WHERE b.id = aged.id
       AND ((b.status, b.dpd, b.late_fee, b.past_due_amount, b.past_due_since, b.cycles_past_due)
                IS DISTINCT FROM
            (aged.new_status, aged.new_dpd, aged.new_fee, aged.past_due, aged.since, aged.cycles)
            OR (aged.is_overdue AND b.dpd_as_of IS DISTINCT FROM %(as_of)s::date))
    RETURNING aged.status_before, aged.new_status
"""  # noqa: S608 - constant SQL, no input


def bills_refresh_delinquency(
    *, as_of: dt.date, audit: bool = True, bill_ids: list[int] | None = None
) -> dict[str, int]:
    """Age every open statement to ``as_of``, set-based, in one transaction (rule: module docstring).

    1. Open statements whose payments cover amount due plus unwaived fee become ``paid``.
    2. The others get their past-due amount, oldest missed due date, cycles past due,
       DPD (business-time days) and late fee; ``overdue`` when past due beyond the
       grace period, ``pending`` otherwise (also after an extension moved the dates).

    Idempotent: a second run for the same day changes no row. A current statement
    that nothing changed is not written (its ``updated_at``, the API's version, stays).

    Args:
        as_of: business-time date to age to (normally ``business_today()``).
        audit: write a system audit event with the counts.
        bill_ids: only these bills (an import ages the bills it wrote); default all.

    Returns:
        Rows changed per step: ``closed_paid``, ``became_overdue``, ``back_to_pending``, ``aged``.
    """
    params = {
        **SQL_CODES,
        "as_of": as_of,
        "grace": settings.GRACE_PERIOD_DAYS,
        "rate": settings.LATE_FEE_DAILY_RATE,
        "cap": settings.LATE_FEE_CAP_PERCENT,
        "cycle_days": CYCLE_DAYS,
        "bill_ids": list(bill_ids) if bill_ids is not None else None,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(CLOSE_PAID, params)
        result = {"closed_paid": cursor.rowcount}
        cursor.execute(AGE, params)
        changes = cursor.fetchall()
        result["became_overdue"] = sum(1 for before, after in changes if before != after and after == "overdue")
        result["back_to_pending"] = sum(1 for before, after in changes if before != after and after == "pending")
        result["aged"] = len(changes)
        if audit:
            audit_record(
                actor=None, action="bills.refresh_delinquency", target_type="job", after={"as_of": as_of, **result}
            )
    return result


def bill_close_paid(bill: Bill, *, now: dt.datetime) -> list[str]:
    """Close the (locked) ``bill`` as ``paid`` in memory, as the aging job's close step does.

    Nothing is past due on a paid bill: past-due amount, date, cycles and DPD are
    cleared, no debit is planned.

    Args:
        bill: the bill, locked by the caller (``select_for_update``), owing nothing now.
        now: the moment it closed (UTC aware).

    Returns:
        The fields changed, for ``bill.save(update_fields=…)`` (``updated_at`` included).
    """
    bill.status, bill.closed_at, bill.retry_at = BillStatus.PAID, now, None
    bill.past_due_amount, bill.past_due_since, bill.cycles_past_due, bill.dpd = ZERO, None, 0, 0
    return [
        "status",
        "closed_at",
        "retry_at",
        "past_due_amount",
        "past_due_since",
        "cycles_past_due",
        "dpd",
        "updated_at",
    ]


def bill_restate(bill: Bill, *, today: dt.date) -> list[str]:
    """Status, DPD and past-due state of the (locked) open ``bill`` on ``today``, in memory.

    The aging rule of this module (the ``AGE`` statement) for one bill as it stands,
    for a service that has just moved its dates (an extension): past due is the
    rest of earlier missed minimums before the due date + grace, the unpaid part of
    its own minimum after; overdue once the oldest missed due date is past the grace
    period. Keep the two in step.

    Args:
        bill: an open bill (``pending`` or ``overdue``), locked by the caller.
        today: business date (``business_today()``).

    Returns:
        The fields changed, for ``bill.save(update_fields=…)``.
    """
    grace = dt.timedelta(days=settings.GRACE_PERIOD_DAYS)
    if bill.due_date + grace < today:
        past_due = max(bill.minimum_due - bill.amount_paid, ZERO)
    else:
        past_due = bill.past_due_amount
    since = (bill.past_due_since or bill.due_date) if past_due > ZERO else None
    overdue = since is not None and since + grace < today
    bill.past_due_amount, bill.past_due_since = past_due, since
    bill.dpd = days_past_due(since, today) if overdue and since is not None else 0
    bill.cycles_past_due = cycles_past_due(bill.dpd) if since is not None else 0
    bill.status = BillStatus.OVERDUE if overdue else BillStatus.PENDING
    bill.dpd_as_of = today
    return ["past_due_amount", "past_due_since", "dpd", "cycles_past_due", "status", "dpd_as_of", "updated_at"]
