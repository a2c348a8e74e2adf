"""/metrics: access control, and domain gauges that match the database."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from django_q.models import OrmQ
from django_q.tasks import async_task
from prometheus_client.parser import text_string_to_metric_families

from repayments.metrics import first_id_since
from repayments.models import (
    AttemptStatus,
    Incident,
    IncidentSource,
    Notification,
    NotificationEvent,
    NotificationStatus,
    Reminder,
    RepaymentAttempt,
)
from tests.factories import BillFactory
from tests.ops.conftest import METRICS_TOKEN

_numbers = itertools.count(1)


def attempt(*, status: str, family: str = "", requested_at: dt.datetime | None = None) -> RepaymentAttempt:
    """A repayment attempt on a bill of its own (one in flight per bill)."""
    bill = BillFactory()
    requested_at = requested_at or timezone.now()
    finished = status in (AttemptStatus.SUCCEEDED, AttemptStatus.FAILED)
    return RepaymentAttempt.objects.create(
        attempt_no=f"OPS-{next(_numbers):08d}",
        bill=bill,
        amount=Decimal("100.00"),
        status=status,
        failure_code="bank_system_error" if family else "",
        failure_family=family,
        requested_at=requested_at,
        completed_at=requested_at if finished else None,
    )


def reminder_message(*, channel: str, status: str = NotificationStatus.SENT, reminder: bool = True) -> Notification:
    bill = BillFactory()
    planned = (
        Reminder.objects.create(bill=bill, offset_days=-1, risk_tier="low", scheduled_at=timezone.now(), status="sent")
        if reminder
        else None
    )
    return Notification.objects.create(
        customer=bill.customer,
        bill=bill,
        reminder=planned,
        event=NotificationEvent.REMINDER_BEFORE_DUE if reminder else NotificationEvent.DEBIT_SUCCEEDED,
        channel=channel,
        language="en",
        body="Your bill is due tomorrow.",
        status=status,
        sent_at=timezone.now(),
    )


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    """GET /metrics and return {(sample name, sorted labels): value}."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content[:300]
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture
def metrics_settings(db, settings):
    settings.METRICS_WINDOW_HOURS = 24
    return settings


def test_debits_by_status_and_family_match_the_database(client, metrics_settings):
    before = scrape(client)
    for _ in range(3):
        attempt(status=AttemptStatus.FAILED, family="system")
    for _ in range(2):
        attempt(status=AttemptStatus.FAILED, family="binding")
    attempt(status=AttemptStatus.SUCCEEDED)
    attempt(status=AttemptStatus.FAILED, family="funds", requested_at=timezone.now() - dt.timedelta(days=3))
    after = scrape(client)

    def key(status, family):
        return ("baitiao_debits_recent", (("family", family), ("status", status)))

    assert after[key("failed", "system")] - before[key("failed", "system")] == 3
    assert after[key("failed", "binding")] - before[key("failed", "binding")] == 2
    assert after[key("succeeded", "")] - before[key("succeeded", "")] == 1
    assert after[key("failed", "funds")] == before[key("failed", "funds")]  # outside the 24 h window
    since = timezone.now() - dt.timedelta(hours=24)
    for status, family in [("failed", "system"), ("failed", "binding"), ("succeeded", ""), ("pending", "")]:
        in_db = RepaymentAttempt.objects.filter(requested_at__gte=since, status=status, failure_family=family).count()
        assert after[key(status, family)] == in_db


def test_reminders_sent_by_channel_match_the_database(client, metrics_settings):
    before = scrape(client)
    reminder_message(channel="sms")
    reminder_message(channel="sms")
    reminder_message(channel="push")
    reminder_message(channel="email", status=NotificationStatus.FAILED)  # not sent
    reminder_message(channel="email", reminder=False)  # not a reminder
    after = scrape(client)

    def key(channel):
        return ("baitiao_reminders_sent_recent", (("channel", channel),))

    assert after[key("sms")] - before[key("sms")] == 2
    assert after[key("push")] - before[key("push")] == 1
    assert after[key("email")] == before[key("email")]
    since = timezone.now() - dt.timedelta(hours=24)
    sms_in_db = Notification.objects.filter(
        sent_at__gte=since, channel="sms", status="sent", reminder__isnull=False
    ).count()
    assert after[key("sms")] == sms_in_db


def test_first_id_since_finds_the_window_start_by_binary_search(db):
    base = timezone.now() - dt.timedelta(hours=10)
    ids = []
    for hour in range(10):
        with time_machine.travel(base + dt.timedelta(hours=hour), tick=False):
            ids.append(reminder_message(channel="sms").id)
    since = base + dt.timedelta(hours=6, minutes=30)
    expected = Notification.objects.filter(sent_at__gte=since).order_by("id").values_list("id", flat=True).first()
    assert first_id_since(Notification, "sent_at", since) == expected == ids[7]
    assert first_id_since(Notification, "sent_at", timezone.now() + dt.timedelta(hours=1)) is None


def test_queue_depth_and_oldest_task_age_match_the_broker(client, metrics_settings):
    OrmQ.objects.all().delete()
    with time_machine.travel(timezone.now() - dt.timedelta(minutes=10)):
        async_task("math.floor", 1.5, cluster="notify")
    async_task("math.floor", 2.5, cluster="notify")
    async_task("math.floor", 3.5)
    samples = scrape(client)
    assert samples[("baitiao_queue_depth", (("queue", "notify"),))] == 2 == OrmQ.objects.filter(key="notify").count()
    assert samples[("baitiao_queue_depth", (("queue", "baitiao"),))] == 1
    assert 590 <= samples[("baitiao_queue_oldest_task_age_seconds", (("queue", "notify"),))] <= 700
    assert samples[("baitiao_queue_oldest_task_age_seconds", (("queue", "baitiao"),))] < 60


def test_open_incidents_match_the_database(client, metrics_settings):
    before = scrape(client)[("baitiao_incidents_open", ())]
    Incident.objects.create(bank_code="ICBC", started_at=timezone.now(), source=IncidentSource.DETECTED)
    Incident.objects.create(bank_code="CMB", started_at=timezone.now(), source=IncidentSource.DETECTED)
    after = scrape(client)
    assert after[("baitiao_incidents_open", ())] == before + 2 == Incident.objects.filter(status="open").count()
    assert {value for (name, _), value in after.items() if name == "baitiao_domain_metrics_errors"} == {0}


def test_process_metrics_from_django_prometheus_are_included(client, metrics_settings):
    client.get("/healthz")
    samples = scrape(client)
    names = {name for name, _ in samples}
    assert "django_http_requests_before_middlewares_total" in names
    assert any(name.startswith("django_db_execute_total") for name in names)


@pytest.mark.django_db
def test_metrics_need_a_token_or_an_allowed_network_without_debug(client, settings):
    settings.DEBUG = False
    settings.METRICS_TOKEN = METRICS_TOKEN
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 401
    wrong = client.get("/metrics", REMOTE_ADDR="192.0.2.7", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401
    with_token = client.get("/metrics", REMOTE_ADDR="192.0.2.7", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert with_token.status_code == 200
    assert b"baitiao_incidents_open" in with_token.content
    # Prometheus inside the cluster network, no token; a spoofed X-Forwarded-For does not help outsiders.
    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    spoofed = client.get("/metrics", REMOTE_ADDR="192.0.2.7", HTTP_X_FORWARDED_FOR="10.20.3.4")
    assert spoofed.status_code == 401
