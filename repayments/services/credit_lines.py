"""Credit lines: the available credit of a line, recomputed from what its customer owes.

Available credit is ``credit_limit − principal owed``, clamped to ``[0, credit_limit]``,
where the principal owed is summed over the customer's open bills (``pending`` or
``overdue``; ``repayments.models.principal_owed_sql``): late fees do not use up the
line, exactly as the UCI loader and the collection's bookings count it. A
carried-forward statement owes nothing itself: its rest is part of the next
statement's balance.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.utils import timezone

from baitiao.money import HOME_CURRENCY, ZERO
from repayments.models import OPEN_BILL_STATUSES, CreditLineStatus, principal_owed_sql

# One UPDATE … FROM a grouped subquery over the given customers only; a customer
# without open bills owes 0.00. Rows whose value is already right are not written,
# so their ``updated_at`` (the API's version) stays.
_REFRESH = f"""
    UPDATE repayments_creditline AS l
       SET available_credit = LEAST(GREATEST(l.credit_limit - o.owed, 0), l.credit_limit), updated_at = now()
      FROM (SELECT c.customer_id,
                   COALESCE(SUM({principal_owed_sql("b")}) FILTER (WHERE b.status = ANY(%(open)s)), 0) AS owed
              FROM unnest(%(customers)s::bigint[]) AS c(customer_id)
              LEFT JOIN repayments_bill b ON b.customer_id = c.customer_id
             GROUP BY c.customer_id) AS o
     WHERE l.customer_id = o.customer_id
       AND l.available_credit IS DISTINCT FROM LEAST(GREATEST(l.credit_limit - o.owed, 0), l.credit_limit)
"""  # noqa: S608 - constant SQL; statuses and ids are parameters


def credit_lines_refresh_available(*, customer_ids: Iterable[int]) -> int:
    """Recompute ``available_credit`` of the credit lines of ``customer_ids``, set-based.

    Call it inside the transaction that changed the customers' bills (an import does).

    Args:
        customer_ids: ``Customer`` primary keys; customers without a credit line are ignored.

    Returns:
        How many credit lines changed (a line already right is not written).
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return 0
    with connection.cursor() as cursor:
        # Lock the lines first (in id order, as payments lock one at a time): a payment's
        # increment committing meanwhile is waited for and counted, never overwritten.
        cursor.execute(
            "SELECT id FROM repayments_creditline WHERE customer_id = ANY(%(customers)s) ORDER BY id FOR UPDATE",
            {"customers": ids},
        )
        cursor.execute(_REFRESH, {"customers": ids, "open": [str(status) for status in OPEN_BILL_STATUSES]})
        return cursor.rowcount


def credit_lines_open_missing(*, customer_ids: Iterable[int]) -> list[int]:
    """Give every customer of ``customer_ids`` that has no credit line one with limit 0.00 CNY.

    A bills import does this for the customers its rows name (``docs/csv.md``): a bill
    needs a credit line, and the limit comes with a credit-lines file. Call it inside the
    import's transaction; the import's audit event counts the lines opened (its notes).
    Two imports naming the same new customer at once both succeed: the line is inserted
    with ``ON CONFLICT DO NOTHING`` on the one-line-per-customer constraint, and only the
    import whose insert won reports it.

    Args:
        customer_ids: ``Customer`` primary keys.

    Returns:
        The customers (primary keys, ascending) that got a new zero-limit line from this call.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO repayments_creditline
                   (customer_id, credit_limit, available_credit, currency, status, created_at, updated_at)
            SELECT id, %(zero)s, %(zero)s, %(currency)s, %(active)s, %(now)s, %(now)s
              FROM unnest(%(ids)s::bigint[]) AS id
            ON CONFLICT (customer_id) DO NOTHING
            RETURNING customer_id
            """,
            {
                "zero": ZERO,
                "currency": HOME_CURRENCY,
                "active": CreditLineStatus.ACTIVE,
                "now": timezone.now(),
                "ids": ids,
            },
        )
        return sorted(row[0] for row in cursor.fetchall())
