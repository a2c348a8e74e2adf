"""Mapping a UCI holder onto our domain: customer, credit line, binding, six statements, payments.

The UCI file describes a **revolving card account**: each ``BILL_AMTk`` is a
statement balance that already carries every earlier unpaid amount. The whole
rule is documented in ``docs/dataset.md``; in short:

* Six cycles, April–September 2005, are shifted so that September 2005 becomes
  the latest closed cycle before ``as_of``: its period is the month before
  ``as_of``'s month, its statement date the 1st of ``as_of``'s month, and its due
  date the last day of that month.
* What a holder owes is the latest statement's balance (positive part). Only
  that statement is open; each earlier one is closed: ``paid`` when its payment
  covered it, ``no_balance`` when nothing was due, otherwise ``carried_forward``
  with the unpaid rest carried into the next statement (owed there, never twice).
* The payment of cycle k is ``PAY_AMTk`` made in the following month: a
  customer repayment (channel ``customer``), booked on that statement up to what
  it owed; the excess is the credit balance the next statement already shows.
* ``PAY_0`` = n ≥ 1 means n minimum payments missed: the open statement is
  delinquent for n cycles, its past-due amount is the missed minimums, its DPD
  counts from the oldest missed due date, and its whole balance ages in that
  bucket (card receivables practice).
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
from typing import TYPE_CHECKING, Any

from django.conf import settings

from baitiao.business_time import add_months, business_datetime, cycles_past_due, days_past_due, month_end
from baitiao.money import ZERO, percent_of
from baitiao.pii import pii_encrypt, pii_hash
from repayments.datasets.synthetic import synthetic_card, synthetic_contact
from repayments.datasets.uci import UciHolder
from repayments.models import AttemptStatus, BillStatus, CardBindingStatus, Channel, CreditLineStatus, RiskTier

if TYPE_CHECKING:
    from repayments.datasets.copyrows import EncodedChunk

# The minimum payment, as a percentage of the statement's amount due. Calibrated on
# the data's own status codes: 95.2 % of the statements whose payment month says
# "0 = minimum paid" (73,022 of 76,700) were paid at least 2 % of their balance,
# only 25.7 % at least 10 % (docs/dataset.md, "Exceptions").
MINIMUM_DUE_PERCENT = 2
PAYMENT_TIME = dt.time(10, 0)  # historical customer repayments: 10:00 business time on the due date


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
def _cycles(as_of: dt.date, count: int) -> tuple[tuple[dt.date, dt.date, dt.date, str], ...]:
    """Per cycle, latest first: period, statement date, due date, ``YYYYMM``."""
    cycles = []
    for k in range(count):
        period, statement_date, due_date = cycle_dates(as_of, k)
        cycles.append((period, statement_date, due_date, f"{period:%Y%m}"))
    return tuple(cycles)


@lru_cache(maxsize=256)
def _payment_time(due_date: dt.date) -> dt.datetime:
    return business_datetime(due_date, PAYMENT_TIME)


@dataclass(frozen=True)
class Delinquency:
    """The open statement's delinquency on ``as_of`` (all zero / None when current).

    ``cycles``: billing cycles behind (``PAY_0`` on a mid-month ``as_of``); ``since``: the oldest missed
    due date (business date); ``past_due``: the missed minimums, at most the
    balance; ``dpd``: days past due on ``as_of`` once the grace period has passed
    (0 inside it); ``overdue``: past the grace period.
    """

    cycles: int = 0
    since: dt.date | None = None
    past_due: Decimal = ZERO
    dpd: int = 0
    overdue: bool = False


def statement_minimum(amount_due: Decimal) -> Decimal:
    """The minimum payment of a statement owing ``amount_due`` (currency units): 2 %, half-up to the cent."""
    return percent_of(amount_due, MINIMUM_DUE_PERCENT)


def delinquency(holder: UciHolder, *, as_of: dt.date, balance: Decimal, grace_days: int) -> Delinquency:
    """How far behind ``holder`` is on ``as_of``, from ``PAY_0`` (n ≥ 1: n minimums missed).

    Args:
        holder: the parsed holder.
        as_of: business date the snapshot describes.
        balance: the open statement's amount due (``BILL_AMT1``'s positive part).
        grace_days: days after a due date before it counts as missed (``settings.GRACE_PERIOD_DAYS``).

    A holder behind with nothing owed is not delinquent. The missed cycles are
    the n statements before the latest (cycle dates extend past the six months of
    the file when n > 5); the past-due amount is the sum of their minimums, at
    most the balance. When every missed statement in the file had no balance (92
    holders), the open statement's own minimum stands for it.
    """
    cycles = holder.pay_status[0]
    if cycles < 1 or balance <= ZERO:
        return Delinquency()
    _, _, since = cycle_dates(as_of, cycles)
    missed = sum(
        (statement_minimum(max(Decimal(holder.bill_amounts[k]), ZERO)) for k in range(1, min(cycles, 5) + 1)),
        ZERO,
    )
    past_due = min(missed if missed > ZERO else statement_minimum(balance), balance)
    overdue = since + dt.timedelta(days=grace_days) < as_of
    dpd = days_past_due(since, as_of) if overdue else 0
    # Counted from DPD as the aging job counts it (n itself on a mid-month as_of).
    return Delinquency(cycles=cycles_past_due(dpd), since=since, past_due=past_due, dpd=dpd, overdue=overdue)


def map_holder(holder: UciHolder, *, customer_no: str, as_of: dt.date, currency: str, source: str) -> HolderRows:
    """Rows for ``holder`` as customer ``customer_no``, with statements dated relative to ``as_of``.

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
        business_datetime(first_period, PAYMENT_TIME),
        True,
    )
    rows = HolderRows(customer=customer, credit_line=(), card_binding=binding)
    balance = max(Decimal(holder.bill_amounts[0]), ZERO)  # what the holder owes: the latest statement
    behind = delinquency(holder, as_of=as_of, balance=balance, grace_days=settings.GRACE_PERIOD_DAYS)
    for k, (period, statement_date, due_date, period_code) in enumerate(_cycles(as_of, len(holder.bill_amounts))):
        # Whole currency units are exact as Decimal; no rounding needed.
        statement_balance = Decimal(holder.bill_amounts[k])
        amount_due = max(statement_balance, ZERO)
        payment = Decimal(holder.pay_amounts[k - 1]) if k > 0 else ZERO
        bill_no = f"{customer_no}-{period_code}"
        if k == 0:
            # The open statement: the whole balance, with the account's delinquency.
            minimum_due = min(statement_minimum(amount_due) + behind.past_due, amount_due)
            amount_paid, carried = ZERO, ZERO
            if amount_due == ZERO:
                status = NO_BALANCE
            else:
                status = OVERDUE if behind.overdue else PENDING
            state = (behind.past_due, behind.since, behind.cycles, behind.dpd)
        else:
            # A closed statement: paid, nothing due, or its unpaid rest carried forward.
            minimum_due = statement_minimum(amount_due)
            amount_paid = min(payment, amount_due)
            carried = amount_due - amount_paid
            if amount_due == ZERO:
                status = NO_BALANCE
            elif carried == ZERO:
                status = PAID
            else:
                status = CARRIED_FORWARD
            state = (ZERO, None, 0, 0)
        past_due, since, cycles, dpd = state
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
                minimum_due,
                amount_paid,
                ZERO,  # late fee: accrued by bills_refresh_delinquency right after the load
                status,
                dpd,
                as_of,
                carried,
                past_due,
                since,
                cycles,
            )
        )
        if payment > ZERO:
            # What the holder paid, as they paid it: a customer repayment, the whole
            # amount (an excess over the statement is the next statement's credit).
            paid_at = _payment_time(due_date)
            rows.attempts.append(
                (
                    f"{bill_no}-H1",
                    bill_no,
                    card.gateway_token,
                    Channel.CUSTOMER.value,
                    payment,
                    AttemptStatus.SUCCEEDED.value,
                    paid_at,
                    paid_at + dt.timedelta(seconds=2),
                )
            )
    limit = Decimal(holder.limit)
    available = min(max(limit - balance, ZERO), limit)
    rows.credit_line = (customer_no, limit, available, currency, CreditLineStatus.ACTIVE.value)
    return rows


PENDING, OVERDUE = BillStatus.PENDING.value, BillStatus.OVERDUE.value
PAID, NO_BALANCE = BillStatus.PAID.value, BillStatus.NO_BALANCE.value
CARRIED_FORWARD = BillStatus.CARRIED_FORWARD.value


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
    options: dict[str, Any] = {"as_of": as_of, "currency": currency, "source": source}
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
