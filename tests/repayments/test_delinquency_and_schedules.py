"""Daily aging and the queue schedules."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
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


def test_aging_twice_on_the_same_day_changes_nothing():
    BillFactory(due_date=dt.date(2026, 11, 1))
    first = bills_refresh_delinquency(as_of=dt.date(2026, 12, 5))
    second = bills_refresh_delinquency(as_of=dt.date(2026, 12, 5))
    assert first["became_overdue"] >= 1
    assert second == {"became_overdue": 0, "aged": 0}


def test_a_fully_paid_pending_bill_never_becomes_overdue():
    bill = BillFactory(due_date=dt.date(2026, 11, 1), amount_paid="1000.00")
    bills_refresh_delinquency(as_of=dt.date(2026, 12, 5))
    bill.refresh_from_db()
    assert bill.status == BillStatus.PENDING


def test_setup_schedules_is_idempotent_and_fires_in_business_time():
    call_command("setup_schedules")
    call_command("setup_schedules")
    assert Schedule.objects.filter(name__in=[s.name for s in SCHEDULES]).count() == len(SCHEDULES)
    aging = Schedule.objects.get(name="refresh-delinquency")
    # 00:05 Asia/Shanghai is 16:05 UTC the day before.
    assert (aging.next_run.astimezone(dt.UTC).hour, aging.next_run.minute) == (16, 5)
