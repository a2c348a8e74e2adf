"""Mapping a UCI holder onto our domain: customer, credit line, binding, six bills, attempts.

The whole rule is documented in ``docs/dataset.md``; in short:

* Six cycles, April–September 2005, are shifted so that September 2005 becomes
  the latest closed cycle before ``as_of``: its period is the month before
  ``as_of``'s month, its statement date the 1st of ``as_of``'s month, and its due
  date the last day of that month (so it is never past due on ``as_of``).
* ``BILL_AMTk`` is the statement balance of cycle k. The payment of cycle k is
  ``PAY_AMT(k-1)``, made in the following month; the latest cycle has none yet.
* ``PAY_0`` = n ≥ 1 (n months behind in September) leaves the n cycles before the
  latest one unpaid: overdue, with DPD counted from their due dates.
* Otherwise the status code of the payment month decides: 0 → revolving
  (minimum paid, rest carried); -2, -1 or a cured delay → paid.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache, partial
from typing import TYPE_CHECKING

from django.conf import settings

from baitiao.business_time import add_months, business_datetime, days_past_due, month_end
from baitiao.money import ZERO, percent_of
from baitiao.pii import pii_encrypt, pii_hash
from repayments.datasets.synthetic import synthetic_card, synthetic_contact
from repayments.datasets.uci import UciHolder
from repayments.models import AttemptStatus, BillStatus, CardBindingStatus, Channel, CreditLineStatus, RiskTier

if TYPE_CHECKING:
    from repayments.datasets.copyrows import EncodedChunk

MINIMUM_DUE_PERCENT = 10  # minimum payment: 10 % of the amount due, as on Taiwanese cards in 2005
DEBIT_TIME = dt.time(9, 0)  # historical auto-debits are dated 09:00 business time on the due date


@dataclass
class HolderRows:
    """Rows for one holder, keyed by natural keys, ready for the bulk writer."""

    customer: tuple
    credit_line: tuple
    card_binding: tuple
    bills: list[tuple] = field(default_factory=list)
    attempts: list[tuple] = field(default_factory=list)


def credit_score_and_tier(holder: UciHolder) -> tuple[int, str]:
    """Credit score (350–950) and risk tier from the holder's real six-month history.

    score = 760 − 45 × worst delay (months) − 15 × months with a delay
            − 120 × utilisation (latest bill / limit, capped at 1.5), clamped to 350–950.
    tier  = high when delinquent now (PAY_0 ≥ 1), ever 2+ months late, or score < 550;
            low when never late, utilisation under 50 % and score ≥ 650; medium otherwise.
    """
    delays = [code for code in holder.pay_status if code >= 1]
    worst = max(delays, default=0)
    utilisation = min(max(Decimal(holder.bill_amounts[0]), ZERO) / Decimal(holder.limit), Decimal("1.5"))
    score = int(760 - 45 * worst - 15 * len(delays) - (120 * utilisation))
    score = min(max(score, 350), 950)
    if holder.pay_status[0] >= 1 or worst >= 2 or score < 550:
        tier = RiskTier.HIGH
    elif not delays and utilisation < Decimal("0.5") and score >= 650:
        tier = RiskTier.LOW
    else:
        tier = RiskTier.MEDIUM
    return score, tier.value


@lru_cache(maxsize=64)
def cycle_dates(as_of: dt.date, months_back: int) -> tuple[dt.date, dt.date, dt.date]:
    """(period, statement_date, due_date) of the cycle ``months_back`` before the latest one."""
    latest_period = add_months(as_of, -1)
    period = add_months(latest_period, -months_back)
    statement_date = add_months(period, 1)
    return period, statement_date, month_end(statement_date)


@lru_cache(maxsize=64)
def _cycles(as_of: dt.date, count: int, grace_days: int) -> tuple[tuple[dt.date, dt.date, dt.date, bool, str], ...]:
    """Per cycle, latest first: period, statement date, due date, past grace on ``as_of``, ``YYYYMM``."""
    cycles = []
    for k in range(count):
        period, statement_date, due_date = cycle_dates(as_of, k)
        past_grace = due_date + dt.timedelta(days=grace_days) < as_of
        cycles.append((period, statement_date, due_date, past_grace, f"{period:%Y%m}"))
    return tuple(cycles)


PENDING, OVERDUE = BillStatus.PENDING.value, BillStatus.OVERDUE.value


@lru_cache(maxsize=256)
def _debit_time(due_date: dt.date) -> dt.datetime:
    return business_datetime(due_date, DEBIT_TIME)


def _bill_status(holder: UciHolder, k: int, amount_due: Decimal, amount_paid: Decimal, past_grace: bool) -> str:
    """Status of cycle index k (0 = September, the latest)."""
    if amount_due == ZERO:
        return BillStatus.NO_BALANCE.value
    if k == 0:
        return BillStatus.PENDING.value
    behind = max(holder.pay_status[0], 0)
    if k <= behind and amount_paid < amount_due:
        # Unpaid; within the grace period it is not overdue yet (same rule as the daily job).
        return BillStatus.OVERDUE.value if past_grace else BillStatus.PENDING.value
    if holder.pay_status[k - 1] == 0 and amount_paid < amount_due:
        return BillStatus.REVOLVING.value
    return BillStatus.PAID.value


def map_holder(holder: UciHolder, *, customer_no: str, as_of: dt.date, currency: str, source: str) -> HolderRows:
    """Rows for ``holder`` as customer ``customer_no``, with bills dated relative to ``as_of``.

    Args:
        holder: a parsed holder (amounts in whole currency units).
        customer_no: our key, e.g. ``UCI-000001``.
        as_of: business-time date the snapshot describes; DPD is counted on it.
        currency: ISO 4217 code of the credit line (``TWD`` for the UCI data).
        source: ``DataSource`` value recorded on the customer.
    """
    contact = synthetic_contact(customer_no, age_in_2005=holder.age, sex=holder.sex)
    card = synthetic_card(customer_no, phone=contact.phone, low_funds=holder.pay_status[0] >= 1)
    score, tier = credit_score_and_tier(holder)
    customer = (
        customer_no,
        pii_encrypt(contact.name),
        pii_encrypt(contact.phone),
        pii_hash(contact.phone),
        contact.phone[-4:],
        pii_encrypt(contact.national_id),
        pii_hash(contact.national_id),
        contact.national_id[-4:],
        pii_encrypt(contact.email),
        score,
        tier,
        True,
        source,
        str(holder.id),
    )
    first_period, _, _ = cycle_dates(as_of, len(holder.bill_amounts) - 1)
    binding = (
        customer_no,
        card.gateway_token,
        card.bin.bin,
        card.last4,
        card.bin.bank_code,
        card.bin.bank_name,
        card.bin.card_type,
        pii_encrypt(card.reserved_phone),
        card.reserved_phone[-4:],
        CardBindingStatus.ACTIVE.value,
        business_datetime(first_period, DEBIT_TIME),
        True,
    )
    rows = HolderRows(customer=customer, credit_line=(), card_binding=binding)
    open_balance = ZERO
    for k, (period, statement_date, due_date, past_grace, period_code) in enumerate(
        _cycles(as_of, len(holder.bill_amounts), settings.GRACE_PERIOD_DAYS)
    ):
        # Whole currency units are exact as Decimal; no rounding needed.
        statement_balance = Decimal(holder.bill_amounts[k])
        amount_due = max(statement_balance, ZERO)
        amount_paid = Decimal(holder.pay_amounts[k - 1]) if k > 0 else ZERO
        status = _bill_status(holder, k, amount_due, amount_paid, past_grace)
        dpd = days_past_due(due_date, as_of) if status == OVERDUE else 0
        if status == PENDING or status == OVERDUE:
            open_balance += amount_due - amount_paid
        bill_no = f"{customer_no}-{period_code}"
        rows.bills.append(
            (
                bill_no,
                customer_no,
                period,
                statement_date,
                due_date,
                due_date,
                statement_balance,
                amount_due,
                percent_of(amount_due, MINIMUM_DUE_PERCENT),
                amount_paid,
                ZERO,  # late fee: accrued by bills_refresh_delinquency right after the load
                status,
                dpd,
                as_of,
            )
        )
        if amount_paid > ZERO:
            requested_at = _debit_time(due_date)
            rows.attempts.append(
                (
                    f"{bill_no}-H1",
                    bill_no,
                    card.gateway_token,
                    Channel.AUTO_DEBIT.value,
                    amount_paid,
                    AttemptStatus.SUCCEEDED.value,
                    requested_at,
                    requested_at + dt.timedelta(seconds=2),
                )
            )
    limit = Decimal(holder.limit)
    available = min(max(limit - open_balance, ZERO), limit)
    rows.credit_line = (customer_no, limit, available, currency, CreditLineStatus.ACTIVE.value)
    return rows


def _encode_batch(batch: list[tuple[UciHolder, str]], **options) -> EncodedChunk:
    from repayments.datasets.copyrows import encode_holders

    return encode_holders(map_holder(holder, customer_no=customer_no, **options) for holder, customer_no in batch)


def map_holders(
    holders: Iterable[tuple[UciHolder, str]], *, as_of: dt.date, currency: str, source: str, batch_size: int = 2000
) -> Iterator[EncodedChunk]:
    """:func:`map_holder` over ``(holder, customer_no)`` pairs on every core, COPY-encoded, in input order.

    Mapping is CPU-bound (encryption dominates), so batches go to a fork-based
    process pool that returns COPY text (``repayments.datasets.copyrows``).
    """
    options = {"as_of": as_of, "currency": currency, "source": source}
    items = list(holders)
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    workers = min(os.cpu_count() or 1, len(batches))
    if workers <= 1:
        for batch in batches:
            yield _encode_batch(batch, **options)
        return
    # fork: workers inherit settings and keys; they never touch the database.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        yield from pool.map(partial(_encode_batch, **options), batches)
