"""Incident detection judges each debit by when its result arrived, and a debit by when it was sent (issue #16).

The bug: every attempt of a long collection run carried the run's start as
``requested_at`` although it reached the bank minutes later, and detection windowed
on ``requested_at``: a 5-minute outage 10 minutes into a run was never seen.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from baitiao.business_time import business_datetime
from repayments.models import AttemptStatus, FailureFamily, IncidentStatus, RepaymentAttempt
from repayments.services.collection import attempts_send, collection_run
from repayments.services.incidents import incident_detect
from tests.engine import customer_with_due_bill, free_port

pytestmark = pytest.mark.django_db

# The real present, read once (docs/testing.md): detection runs "now", a few hours
# after the session's UCI data (2026-11-15 and older) and on banks of our own.
NOW = timezone.now().replace(microsecond=0)
RUN_STARTED = NOW - dt.timedelta(minutes=12)  # a long run: it began 12 minutes ago


def debit(bank: str, *, status: str, requested: dt.datetime, completed: dt.datetime | None, family: str = ""):
    """One attempt of a customer's bill on ``bank``, as the engine leaves it."""
    _, bill, binding = customer_with_due_bill(due=timezone.localdate(NOW) - dt.timedelta(days=1))
    binding.bank_code = bank
    binding.save(update_fields=["bank_code"])
    failed = status == AttemptStatus.FAILED
    return RepaymentAttempt.objects.create(
        attempt_no=f"{bill.bill_no}-A1",
        bill=bill,
        card_binding=binding,
        amount=bill.amount_due,
        status=status,
        failure_code="bank_system_error" if failed else "",
        failure_family=family if failed else "",
        requested_at=requested,
        completed_at=completed,
    )


def burst(bank: str, *, failed: int, succeeded: int, sent: dt.datetime, arrived: dt.datetime) -> None:
    for _ in range(failed):
        debit(bank, status=AttemptStatus.FAILED, family=FailureFamily.SYSTEM, requested=sent, completed=arrived)
    for _ in range(succeeded):
        debit(bank, status=AttemptStatus.SUCCEEDED, requested=sent, completed=arrived)


def test_system_failures_of_a_long_run_count_when_their_results_arrived_not_when_the_run_began():
    # Created by a run 12 minutes ago (outside the 5-minute window), answered 2 minutes ago.
    burst("TSTA", failed=40, succeeded=20, sent=RUN_STARTED, arrived=NOW - dt.timedelta(minutes=2))
    [incident] = [i for i in incident_detect(now=NOW) if i.bank_code.startswith("TST")]
    assert (incident.bank_code, incident.status) == ("TSTA", IncidentStatus.OPEN)
    assert (incident.attempts_seen, incident.system_failures_seen) == (60, 40)
    # The window starts at the first failed debit's send, so relief (which reads requested_at) finds them all.
    assert incident.started_at == RUN_STARTED


def test_results_that_arrived_before_the_window_open_nothing():
    burst("TSTA", failed=40, succeeded=20, sent=RUN_STARTED, arrived=NOW - dt.timedelta(minutes=6))
    assert [i for i in incident_detect(now=NOW) if i.bank_code.startswith("TST")] == []


def test_debits_the_bank_never_answered_count_as_system_failures_when_they_timed_out():
    arrived = NOW - dt.timedelta(minutes=1)
    for _ in range(30):
        debit("TSTA", status=AttemptStatus.UNKNOWN, requested=arrived, completed=arrived)
    burst("TSTA", failed=0, succeeded=30, sent=arrived, arrived=arrived)
    [incident] = [i for i in incident_detect(now=NOW) if i.bank_code.startswith("TST")]
    assert (incident.attempts_seen, incident.system_failures_seen) == (60, 30)


def test_only_the_failing_bank_gets_an_incident():
    arrived = NOW - dt.timedelta(minutes=1)
    burst("TSTA", failed=30, succeeded=30, sent=RUN_STARTED, arrived=arrived)
    burst("TSTB", failed=2, succeeded=58, sent=RUN_STARTED, arrived=arrived)
    opened = [i.bank_code for i in incident_detect(now=NOW) if i.bank_code.startswith("TST")]
    assert opened == ["TSTA"]


def test_a_debit_carries_the_moment_it_was_sent_and_its_timeout_the_moment_it_arrived(settings):
    """Created by a run at 10:00, sent at 10:07: requested_at is 10:07; the timeout's arrival is completed_at."""
    customer, bill, _ = customer_with_due_bill(due=dt.date(2026, 11, 20))
    run_at = business_datetime(dt.date(2026, 11, 20), dt.time(10, 0))
    settings.GATEWAY_URL = f"http://127.0.0.1:{free_port()}"  # nobody listens: unreachable, left unknown
    with time_machine.travel(run_at, tick=False):
        assert collection_run(now=run_at, customer_id=customer.pk)["attempts"] == 1
    attempt = RepaymentAttempt.objects.get(bill=bill)
    assert attempt.requested_at == run_at and attempt.status == AttemptStatus.PENDING
    sent_at = run_at + dt.timedelta(minutes=7)
    with time_machine.travel(sent_at, tick=False):
        assert attempts_send(attempt_ids=[attempt.pk]) == {"sent": 0, "skipped": 0, "unknown": 1}
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.UNKNOWN
    assert attempt.requested_at == sent_at
    assert attempt.completed_at == sent_at


def test_a_withdrawn_incident_is_not_reopened_by_the_failures_it_was_withdrawn_over(supervisor):
    from repayments.services.incidents import incident_withdraw

    burst("TSTW", failed=40, succeeded=20, sent=NOW - dt.timedelta(minutes=3), arrived=NOW - dt.timedelta(minutes=2))
    [incident] = [i for i in incident_detect(now=NOW) if i.bank_code == "TSTW"]
    incident_withdraw(incident_id=incident.pk, withdrawn_by=supervisor, reason="bank says: test traffic", now=NOW)
    # The next detection periods still see the same failures in their window: nothing reopens.
    for minutes in (1, 2):
        assert not [i for i in incident_detect(now=NOW + dt.timedelta(minutes=minutes)) if i.bank_code == "TSTW"]
    # A window that starts after the withdrawal judges afresh (new failures).
    later = NOW + dt.timedelta(minutes=7)
    burst(
        "TSTW", failed=40, succeeded=20, sent=later - dt.timedelta(minutes=2), arrived=later - dt.timedelta(minutes=1)
    )
    assert [i.bank_code for i in incident_detect(now=later) if i.bank_code == "TSTW"] == ["TSTW"]
