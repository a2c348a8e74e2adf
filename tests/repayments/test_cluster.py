"""The money loop on a live django-q2 cluster, the sandbox bank and our callback endpoint."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from repayments.models import AttemptStatus, Bill, BillStatus, Notification, RepaymentAttempt
from repayments.services.collection import attempts_resolve_stale, collection_run
from tests.engine import customer_with_due_bill, start_cluster, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_domain")]


@pytest.fixture
def sandbox(live_bank):
    return live_bank(hold_seconds=4)


@pytest.fixture
def cluster_factory(sandbox):
    started = []

    def start():
        cluster = start_cluster(sandbox.url)
        started.append(cluster)
        started.append(start_cluster(sandbox.url, Q_CLUSTER_NAME="notify"))  # customer messages
        return cluster

    yield start
    for cluster in started:
        cluster.stop()


def unsettled() -> int:
    return RepaymentAttempt.objects.exclude(status__in=[AttemptStatus.SUCCEEDED, AttemptStatus.FAILED]).count()


def test_the_cluster_collects_due_bills_and_tells_binding_failures_within_a_minute(clock, sandbox, cluster_factory):
    for n in range(8):
        customer_with_due_bill(due=clock.today, customer_no=f"OK-{n:02d}", amount=f"{100 + n}.25")
    bad, _, _ = customer_with_due_bill(due=clock.today, customer_no="BAD-01", scenario="card_expired")
    cluster_factory()
    started = timezone.now()
    assert collection_run(now=clock.now)["attempts"] == 9
    wait_for(lambda: unsettled() == 0, timeout=60, what="every attempt settled by the cluster")
    assert Bill.objects.filter(status=BillStatus.PAID).count() == 8
    assert Bill.objects.get(customer__customer_no="OK-03").amount_paid == Decimal("103.25")
    notice = wait_for(
        lambda: Notification.objects.filter(customer=bad, event="debit_failed_binding", status="sent").first(),
        timeout=60,
        what="the binding-failure message",
    )
    assert notice.sent_at - started < dt.timedelta(minutes=1)
    assert sandbox.state()["debits"] == {"succeeded": 8, "failed": 1}


def test_killing_the_cluster_mid_debit_charges_nobody_twice(clock, sandbox, cluster_factory):
    for n in range(6):
        customer_with_due_bill(due=clock.today, customer_no=f"K-{n:02d}", amount="42.00")
    sandbox.outage("timeout")  # the bank holds every answer: workers are mid-debit
    first = cluster_factory()
    collection_run(now=clock.now)
    wait_for(
        lambda: RepaymentAttempt.objects.filter(status=AttemptStatus.PROCESSING).exists(),
        what="a worker mid-debit",
    )
    first.kill()
    sandbox.outage("off")
    cluster_factory()
    # What the dead workers left is settled by asking the bank, never by debiting again.
    deadline = timezone.now() + dt.timedelta(seconds=60)
    while unsettled() and timezone.now() < deadline:
        attempts_resolve_stale(now=timezone.now() + dt.timedelta(hours=1))
        collection_run(now=timezone.now() + dt.timedelta(hours=3))
    wait_for(lambda: unsettled() == 0, timeout=60, what="all attempts settled")
    wait_for(lambda: Bill.objects.filter(status=BillStatus.PAID).count() == 6, timeout=60, what="every bill paid")
    for bill in Bill.objects.all():
        assert bill.amount_paid == Decimal("42.00")
        assert bill.attempts.filter(status=AttemptStatus.SUCCEEDED).count() == 1
    assert sandbox.state()["debits"].get("succeeded") == 6


def test_the_live_cluster_runs_the_nine_oclock_schedule_and_books_the_next_at_nine_shanghai(sandbox, cluster_factory):
    """The 09:00 business-time schedule, as the cluster's scheduler evaluates it (01:00 UTC)."""
    from django.core.management import call_command
    from django_q.models import Schedule

    call_command("setup_schedules")
    # Due yesterday: debitable whatever the wall clock says (first debits wait for 09:00 on the due date).
    customer_with_due_bill(due=timezone.localdate() - dt.timedelta(days=1), customer_no="NINE-01", amount="88.80")
    Schedule.objects.exclude(name="first-debits").update(next_run=timezone.now() + dt.timedelta(days=2))
    due_now = timezone.now() - dt.timedelta(seconds=1)
    Schedule.objects.filter(name="first-debits").update(next_run=due_now)
    cluster_factory()
    schedule = wait_for(
        lambda: Schedule.objects.filter(name="first-debits", next_run__gt=due_now).first(),
        timeout=60,
        what="the cluster's scheduler to run first-debits",
    )
    following = schedule.next_run.astimezone(dt.UTC)
    assert (following.hour, following.minute) == (1, 0)  # 09:00 Asia/Shanghai
    assert timezone.localtime(schedule.next_run).hour == 9
    assert dt.timedelta(0) < schedule.next_run - timezone.now() <= dt.timedelta(days=1)
    wait_for(
        lambda: Bill.objects.filter(customer__customer_no="NINE-01", status=BillStatus.PAID).exists(),
        timeout=60,
        what="the 09:00 run to debit the bill due today",
    )
