"""Daily aging (overdue, DPD, late fees, closing paid bills) and the queue schedules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from repayments.models import BillStatus
from repayments.schedules import SCHEDULES
from repayments.services.delinquency import bills_refresh_delinquency
from tests.factories import BillFactory

pytestmark = pytest.mark.django_db


def test_a_pending_bill_becomes_overdue_only_after_the_grace_period(settings):
    settings.GRACE_PERIOD_DAYS = 3
    bill = BillFactory(due_date=dt.date(2026, 11, 20))
    bills_refresh_delinquency(as_of=dt.date(2026, 11, 23))
    bill.refresh_from_db()
    assert bill.status == BillStatus.PENDING
    bills_refresh_delinquency(as_of=dt.date(2026, 11, 24))
    bill.refresh_from_db()
    assert (bill.status, bill.dpd, bill.dpd_as_of) == (BillStatus.OVERDUE, 4, dt.date(2026, 11, 24))


def test_late_fee_is_half_a_permille_a_day_of_the_past_due_amount_with_a_cap(settings):
    bill = BillFactory(due_date=dt.date(2026, 11, 1), amount_due="1234.50", minimum_due="123.45", amount_paid="0.00")
    bills_refresh_delinquency(as_of=dt.date(2026, 11, 11))
    bill.refresh_from_db()
    # The missed minimum is what is past due: 123.45 × 0.0005 × 10 = 0.61725 → 0.62 (not the whole balance).
    assert (bill.dpd, bill.past_due_amount, bill.late_fee) == (10, Decimal("123.45"), Decimal("0.62"))
    settings.LATE_FEE_DAILY_RATE = Decimal("0.01")
    bills_refresh_delinquency(as_of=dt.date(2027, 6, 1))
    bill.refresh_from_db()
    assert bill.late_fee == Decimal("123.45")  # capped at 10 % of the amount due


def test_paying_the_minimum_by_the_due_date_keeps_the_account_current():
    paid_minimum = BillFactory(due_date=dt.date(2026, 11, 1), amount_due="1000.00", amount_paid="100.00")
    short = BillFactory(due_date=dt.date(2026, 11, 1), amount_due="1000.00", amount_paid="99.99")
    bills_refresh_delinquency(as_of=dt.date(2026, 11, 20))
    paid_minimum.refresh_from_db()
    short.refresh_from_db()
    assert (paid_minimum.status, paid_minimum.dpd, paid_minimum.late_fee) == (BillStatus.PENDING, 0, Decimal("0.00"))
    assert (short.status, short.dpd, short.past_due_amount) == (BillStatus.OVERDUE, 19, Decimal("0.01"))
    assert (short.cycles_past_due, short.past_due_since) == (1, dt.date(2026, 11, 1))


def test_a_statement_with_earlier_missed_minimums_ages_from_the_oldest_missed_due_date():
    """Card practice: the whole balance ages from the oldest missed due date, one cycle per month missed."""
    bill = BillFactory(
        due_date=dt.date(2026, 11, 30),
        amount_due="5000.00",
        minimum_due="300.00",
        past_due_amount="200.00",
        past_due_since=dt.date(2026, 9, 30),
        cycles_past_due=2,
    )
    bills_refresh_delinquency(as_of=dt.date(2026, 11, 15))
    bill.refresh_from_db()
    assert (bill.status, bill.dpd, bill.cycles_past_due) == (BillStatus.OVERDUE, 46, 2)
    assert bill.late_fee == Decimal("4.60")  # 200.00 × 0.0005 × 46
    bills_refresh_delinquency(as_of=dt.date(2026, 12, 15))  # its own minimum missed too: a third cycle
    bill.refresh_from_db()
    assert (bill.dpd, bill.cycles_past_due, bill.past_due_amount) == (76, 3, Decimal("300.00"))


def test_aging_twice_on_the_same_day_changes_nothing():
    bill = BillFactory(due_date=dt.date(2026, 11, 1))
    first = bills_refresh_delinquency(as_of=dt.date(2026, 12, 5))
    bill.refresh_from_db()
    state = (bill.status, bill.dpd, bill.late_fee, bill.updated_at)
    second = bills_refresh_delinquency(as_of=dt.date(2026, 12, 5))
    bill.refresh_from_db()
    assert first["became_overdue"] >= 1 and state[:3] == (BillStatus.OVERDUE, 34, Decimal("1.70"))
    assert second == {"closed_paid": 0, "became_overdue": 0, "back_to_pending": 0, "aged": 0}
    assert (bill.status, bill.dpd, bill.late_fee, bill.updated_at) == state


def test_a_fully_paid_open_bill_is_closed_as_paid():
    pending = BillFactory(due_date=dt.date(2026, 11, 1), amount_paid="1000.00")
    overdue = BillFactory(due_date=dt.date(2026, 10, 1), status=BillStatus.OVERDUE, amount_paid="1000.00")
    bills_refresh_delinquency(as_of=dt.date(2026, 12, 5))
    for bill in (pending, overdue):
        bill.refresh_from_db()
        assert bill.status == BillStatus.PAID and bill.closed_at is not None


def test_an_overdue_bill_whose_due_date_moved_is_current_again():
    bill = BillFactory(
        due_date=dt.date(2026, 12, 20), original_due_date=dt.date(2026, 11, 20), status=BillStatus.OVERDUE, dpd=12
    )
    bills_refresh_delinquency(as_of=dt.date(2026, 12, 5))
    bill.refresh_from_db()
    assert (bill.status, bill.dpd) == (BillStatus.PENDING, 0)


def test_setup_schedules_is_idempotent_and_fires_in_business_time():
    call_command("setup_schedules")
    call_command("setup_schedules")
    assert Schedule.objects.filter(name__in=[s.name for s in SCHEDULES]).count() == len(SCHEDULES)
    aging = Schedule.objects.get(name="refresh-delinquency")
    # 00:05 Asia/Shanghai is 16:05 UTC the day before; 07:00 is 23:00 UTC.
    assert (aging.next_run.astimezone(dt.UTC).hour, aging.next_run.minute) == (16, 5)
    planning = Schedule.objects.get(name="plan-reminders")
    assert planning.next_run <= timezone.now()  # a fresh install plans reminders at once
    following = planning.calculate_next_run()
    assert (following.astimezone(dt.UTC).hour, following.minute) == (23, 0)  # then daily 07:00 Shanghai
