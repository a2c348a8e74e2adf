"""Risk-tiered reminder planning and sending: cadence, quiet hours, daily cap, skips."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from hashlib import sha256

import pytest
from django.utils import timezone

from baitiao.business_time import business_datetime
from repayments.models import BillStatus, Notification, Reminder, RiskTier
from repayments.services.reminders import in_quiet_hours, reminders_plan, reminders_send_due
from tests.factories import BillFactory, CardBindingFactory, CreditLineFactory

pytestmark = pytest.mark.django_db

# Far from the session's UCI bills (due by 2026-11-30), so only these tests' bills have slots.
AS_OF = dt.date(2027, 6, 1)
DUE = AS_OF + dt.timedelta(days=7)


def customer_bill(*, tier: str, first_bill: bool, due: dt.date = DUE, amount: str = "500.00"):
    line = CreditLineFactory()
    line.customer.risk_tier = tier
    line.customer.save(update_fields=["risk_tier"])
    CardBindingFactory(customer=line.customer)
    if not first_bill:
        BillFactory(
            credit_line=line, due_date=due - dt.timedelta(days=30), status=BillStatus.PAID, amount_paid="1000.00"
        )
    return BillFactory(credit_line=line, due_date=due, amount_due=Decimal(amount))


def test_a_high_risk_first_bill_customer_gets_more_reminders_than_a_low_risk_one():
    first_timer = customer_bill(tier=RiskTier.LOW, first_bill=True)  # first bill: treated as high risk
    regular = customer_bill(tier=RiskTier.LOW, first_bill=False)
    reminders_plan(as_of=AS_OF, horizon_days=14)
    high = sorted(Reminder.objects.filter(bill=first_timer).values_list("offset_days", flat=True))
    low = sorted(Reminder.objects.filter(bill=regular).values_list("offset_days", flat=True))
    assert high == [-7, -3, -1, 0, 1, 3] and low == [-1, 1]
    assert set(Reminder.objects.filter(bill=first_timer).values_list("risk_tier", flat=True)) == {"high"}


def test_planning_twice_adds_nothing_and_uses_the_business_send_time():
    bill = customer_bill(tier=RiskTier.MEDIUM, first_bill=False)
    assert reminders_plan(as_of=AS_OF, horizon_days=14) > 0
    assert reminders_plan(as_of=AS_OF, horizon_days=14) == 0
    assert Reminder.objects.filter(bill=bill).count() == 4  # medium: D-3, D-1, D0, D+2
    reminder = Reminder.objects.get(bill=bill, offset_days=-1)
    assert timezone.localtime(reminder.scheduled_at) == business_datetime(DUE - dt.timedelta(days=1), dt.time(10))


def test_nothing_is_sent_in_quiet_hours():
    bill = customer_bill(tier=RiskTier.HIGH, first_bill=False, due=AS_OF)
    reminders_plan(as_of=AS_OF)
    night = business_datetime(AS_OF, dt.time(22, 30))
    assert in_quiet_hours(night) and in_quiet_hours(business_datetime(AS_OF, dt.time(7, 59)))
    assert reminders_send_due(now=night) == {"sent": 0, "skipped": 0, "deferred": 0}
    counts = reminders_send_due(now=business_datetime(AS_OF, dt.time(10, 1)))
    assert counts["sent"] == 1
    notification = Notification.objects.get(reminder__bill=bill, status="sent")
    assert notification.event == "reminder_due_today"


def test_the_daily_cap_defers_the_third_reminder_to_the_next_morning(settings):
    settings.REMINDER_DAILY_CAP = 2
    line = CreditLineFactory()
    CardBindingFactory(customer=line.customer)
    for n in range(3):
        BillFactory(credit_line=line, due_date=AS_OF + dt.timedelta(days=n * 31), bill_no=f"CAP-{n}")
    for bill in line.bills.all():
        Reminder.objects.create(
            bill=bill,
            offset_days=-1,
            risk_tier="high",
            scheduled_at=business_datetime(AS_OF, dt.time(10)),
        )
    counts = reminders_send_due(now=business_datetime(AS_OF, dt.time(10, 5)))
    assert (counts["sent"], counts["deferred"]) == (2, 1)
    deferred = Reminder.objects.get(status="planned")
    assert timezone.localtime(deferred.scheduled_at) == business_datetime(AS_OF + dt.timedelta(days=1), dt.time(8))


def test_no_reminder_once_paid_or_extended():
    paid = customer_bill(tier=RiskTier.HIGH, first_bill=False, due=AS_OF)
    extended = customer_bill(tier=RiskTier.HIGH, first_bill=False, due=AS_OF)
    reminders_plan(as_of=AS_OF)
    paid.amount_paid = paid.amount_due
    paid.save(update_fields=["amount_paid"])
    extended.due_date = AS_OF + dt.timedelta(days=7)
    extended.save(update_fields=["due_date"])
    reminders_send_due(now=business_datetime(AS_OF, dt.time(10, 5)))
    reasons = dict(Reminder.objects.filter(status="skipped").values_list("bill_id", "skip_reason"))
    assert reasons == {paid.id: "paid", extended.id: "extended"}
    assert not Notification.objects.exists()


def test_channels_fall_back_from_push_to_sms():
    bill = customer_bill(tier=RiskTier.HIGH, first_bill=False, due=AS_OF)
    # A customer number the sandbox push provider knows no app installation for.
    no_app = next(f"NOAPP-{n}" for n in range(100) if int(sha256(f"NOAPP-{n}".encode()).hexdigest()[:4], 16) % 10 >= 6)
    bill.customer.customer_no = no_app
    bill.customer.save(update_fields=["customer_no"])
    reminders_plan(as_of=AS_OF)
    reminders_send_due(now=business_datetime(AS_OF, dt.time(10, 5)))
    channels = list(Notification.objects.filter(bill=bill).order_by("id").values_list("channel", "status", "error"))
    assert channels == [("push", "failed", "no_device"), ("sms", "sent", "")]
