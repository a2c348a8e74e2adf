"""Customer messages that stopped being true while queued are dropped, not sent, and counted (issue #16)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from repayments.models import (
    BillStatus,
    FailureFamily,
    Notification,
    NotificationEvent,
    NotificationStatus,
    RepaymentAttempt,
)
from repayments.services.collection import attempt_notify
from repayments.services.incidents import incident_declare
from tests.repayments.test_incidents import BANK, END, START, failed_bill

pytestmark = pytest.mark.django_db

SYSTEM = NotificationEvent.DEBIT_FAILED_SYSTEM
FUNDS = NotificationEvent.DEBIT_FAILED_FUNDS


def attempt_of(bill) -> RepaymentAttempt:
    return RepaymentAttempt.objects.get(bill=bill)


def statuses(bill) -> list[tuple[str, str, str]]:
    return sorted(Notification.objects.filter(bill=bill).values_list("channel", "status", "error"))


def test_a_failure_notice_for_a_bill_paid_while_it_waited_is_dropped_and_recorded():
    bill = failed_bill(FailureFamily.FUNDS, "insufficient_funds")
    bill.__class__.objects.filter(pk=bill.pk).update(
        status=BillStatus.PAID, amount_paid=bill.amount_due + bill.late_fee
    )
    assert attempt_notify(attempt_id=attempt_of(bill).pk, event=FUNDS, channels=["sms", "in_app"]) == 0
    assert statuses(bill) == [("in_app", "dropped", "bill_settled"), ("sms", "dropped", "bill_settled")]
    # A replay of the task changes nothing.
    assert attempt_notify(attempt_id=attempt_of(bill).pk, event=FUNDS, channels=["sms", "in_app"]) == 0
    assert Notification.objects.filter(bill=bill).count() == 2


def test_a_system_problem_notice_after_its_incident_was_resolved_is_dropped(supervisor):
    bill = failed_bill(FailureFamily.SYSTEM, "bank_system_error")  # inside START..END on BANK
    incident_declare(
        declared_by=supervisor, bank_code=BANK, channel="", started_at=START, ended_at=END, description="core down"
    )
    assert attempt_notify(attempt_id=attempt_of(bill).pk, event=SYSTEM, channels=["in_app"]) == 0
    assert statuses(bill) == [("in_app", "dropped", "incident_resolved")]


def test_a_system_problem_notice_is_sent_while_its_incident_is_still_open(supervisor):
    bill = failed_bill(FailureFamily.SYSTEM, "bank_system_error")
    incident_declare(
        declared_by=supervisor, bank_code=BANK, channel="", started_at=START, ended_at=None, description="down now"
    )
    assert attempt_notify(attempt_id=attempt_of(bill).pk, event=SYSTEM, channels=["in_app"]) == 1
    assert statuses(bill) == [("in_app", "sent", "")]


def test_a_system_problem_notice_outside_a_resolved_incidents_window_or_bank_is_sent(supervisor):
    before = failed_bill(FailureFamily.SYSTEM, "bank_system_error", at=START - dt.timedelta(minutes=1))
    elsewhere = failed_bill(FailureFamily.SYSTEM, "bank_system_error", bank="TSTZ")
    incident_declare(
        declared_by=supervisor, bank_code=BANK, channel="", started_at=START, ended_at=END, description="core down"
    )
    for bill in (before, elsewhere):
        assert attempt_notify(attempt_id=attempt_of(bill).pk, event=SYSTEM, channels=["in_app"]) == 1
        assert statuses(bill) == [("in_app", "sent", "")]


def test_a_success_notice_is_sent_whatever_happened_since():
    bill = failed_bill(FailureFamily.FUNDS, "insufficient_funds")
    bill.__class__.objects.filter(pk=bill.pk).update(status=BillStatus.PAID, amount_paid=Decimal("1005.00"))
    event = NotificationEvent.DEBIT_SUCCEEDED
    assert attempt_notify(attempt_id=attempt_of(bill).pk, event=event, channels=["in_app"]) == 1


def test_dropped_notices_are_counted_on_metrics_by_reason(client):
    bill = failed_bill(FailureFamily.FUNDS, "insufficient_funds")
    bill.__class__.objects.filter(pk=bill.pk).update(status=BillStatus.PAID, amount_paid=Decimal("1005.00"))
    attempt_notify(attempt_id=attempt_of(bill).pk, event=FUNDS, channels=["sms", "in_app"])
    assert (
        Notification.objects.filter(
            status=NotificationStatus.DROPPED, sent_at__gte=timezone.now() - dt.timedelta(minutes=1)
        ).count()
        == 2
    )
    body = client.get("/metrics").content.decode()
    assert 'baitiao_notices_dropped_recent{reason="bill_settled"} 2.0' in body
    assert 'baitiao_notices_dropped_recent{reason="incident_resolved"} 0.0' in body
