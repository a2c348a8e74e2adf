"""The first run's demo collection (issue #16): every failure family within minutes, through the engine."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django_q.conf import Conf
from django_q.models import OrmQ

from accounts.models import AuditEvent
from repayments.models import Bill, FailureFamily, RepaymentAttempt
from repayments.services.first_run import FIRST_RUN_ACTION, first_run_collection
from tests.engine import customer_with_due_bill, database_settle, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_domain")]


@pytest.fixture
def sync_queue(monkeypatch):
    """django-q2's own synchronous mode: the send tasks run in-process when enqueued."""
    monkeypatch.setattr(Conf, "SYNC", True)


def test_the_first_run_debits_a_sample_of_due_bills_and_every_family_fails(clock, live_bank, sync_queue):
    # The sandbox's published behaviour: bad bindings fail, low-funds cards decline, and a
    # share of all debits meets a bank system error (30 % here, so each family shows).
    live_bank(system_failure_rate=0.3, duplicate_rate=0.0)
    for scenario, count in (("ok", 10), ("card_expired", 4), ("card_closed", 4), ("lowfunds", 8)):
        for _ in range(count):
            customer_with_due_bill(scenario=scenario, due=clock.today, amount="9999.99")
    _, later, _ = customer_with_due_bill(due=clock.today + dt.timedelta(days=10))

    result = first_run_collection(now=clock.now, size=100)

    assert (result["customers"], result["attempts"]) == (26, 26)
    assert not RepaymentAttempt.objects.filter(bill=later).exists()  # not due: left to its day

    def families():
        done = RepaymentAttempt.objects.exclude(status__in=["pending", "processing", "unknown"]).count()
        found = set(Bill.objects.exclude(last_failure_family="").values_list("last_failure_family", flat=True))
        return found if done == 26 else None

    found = wait_for(families, timeout=90, what="all 26 debits settled")
    assert {FailureFamily.BINDING, FailureFamily.FUNDS, FailureFamily.SYSTEM} <= found
    event = AuditEvent.objects.get(action=FIRST_RUN_ACTION)
    assert event.after["attempts"] == 26
    assert first_run_collection(now=clock.now, size=100) == {"skipped": 1}  # once per database
    database_settle()


def test_the_command_queues_the_demo_collection_once(clock):
    out = StringIO()
    call_command("first_run", stdout=out)
    assert "queued" in out.getvalue()
    assert OrmQ.objects.filter(key="critical").count() == 1  # the critical lane
    first_run_collection(now=clock.now, size=10)  # nothing due in an empty domain; still marks the run
    call_command("first_run", stdout=out)
    assert "already done" in out.getvalue()
    assert OrmQ.objects.filter(key="critical").count() == 1  # the critical lane


def test_the_command_does_nothing_unless_the_gateway_is_the_sandbox(settings):
    settings.GATEWAY_SANDBOX = False
    out = StringIO()
    call_command("first_run", stdout=out)
    assert "no demo collection" in out.getvalue()
    assert not OrmQ.objects.exists()


def test_the_service_debits_nobody_unless_the_gateway_is_the_sandbox(clock, settings):
    settings.GATEWAY_SANDBOX = False
    customer_with_due_bill(due=clock.today)
    assert first_run_collection(now=clock.now, size=10) == {"skipped": 1}
    assert not RepaymentAttempt.objects.exists() and not AuditEvent.objects.filter(action=FIRST_RUN_ACTION).exists()
