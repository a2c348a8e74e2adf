"""Lanes (issue #16): time-critical work is queued on the ``critical`` cluster, customer messages on ``notify``.

What goes where is read from the broker's rows (the ORM broker on the test
database), never from a mock of the queue.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone
from django_q.models import OrmQ, Schedule
from django_q.tasks import async_task

from repayments.schedules import SCHEDULES
from repayments.services.collection import collect_customer_soon
from repayments.services.dashboard import dashboard_refresh_request
from repayments.services.incidents import relief_approve, relief_request
from tests.engine import customer_with_due_bill
from tests.repayments.test_incidents import failed_bill, other_supervisor, resolved_incident

pytestmark = pytest.mark.django_db


def queued(lane: str) -> list[str]:
    """The functions of the tasks waiting on ``lane``'s queue, oldest first."""
    return [row.task["func"] for row in OrmQ.objects.filter(key=lane).order_by("id")]


@pytest.fixture(autouse=True)
def empty_queue():
    OrmQ.objects.all().delete()


def test_each_schedule_is_created_on_its_lane_and_moved_when_its_lane_changes():
    call_command("setup_schedules")
    lanes = dict(Schedule.objects.filter(name__in=[s.name for s in SCHEDULES]).values_list("name", "cluster"))
    assert lanes["detect-incidents"] == "critical"
    assert lanes["refresh-dashboard"] == "critical"
    assert lanes["send-reminders"] == "notify"
    assert lanes["collection-run"] is None and lanes["first-debits"] is None  # the main (bulk) cluster
    # An installation from before the lanes: its rows had no cluster; setup moves them.
    Schedule.objects.filter(name="detect-incidents").update(cluster=None)
    call_command("setup_schedules")
    assert Schedule.objects.get(name="detect-incidents").cluster == "critical"


def test_an_agents_retry_goes_to_the_critical_lane(django_capture_on_commit_callbacks):
    customer, _, _ = customer_with_due_bill(due=timezone.localdate())
    with django_capture_on_commit_callbacks(execute=True):
        collect_customer_soon(customer.pk)
    assert queued("critical") == ["repayments.tasks.collect_customer"]
    assert queued("notify") == [] and queued("baitiao") == []


def test_an_approved_relief_run_goes_to_the_critical_lane(supervisor, django_capture_on_commit_callbacks):
    failed_bill("system", "bank_system_error")
    incident = resolved_incident(supervisor)
    batch = relief_request(incident_id=incident.pk, requested_by=supervisor, days=7, note="core down")
    with django_capture_on_commit_callbacks(execute=True):
        relief_approve(batch_id=batch.pk, approved_by=other_supervisor())
    assert queued("critical") == ["repayments.tasks.run_relief"]


def test_a_requested_dashboard_refresh_goes_to_the_critical_lane(supervisor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        dashboard_refresh_request(actor=supervisor)
    assert queued("critical") == ["repayments.tasks.refresh_dashboard"]


def test_readiness_shows_each_lane_with_its_backlog_and_oldest_task_age(client, settings):
    settings.READINESS_QUEUE_MAX_AGE_SECONDS = 3600
    with time_machine.travel(timezone.now() - dt.timedelta(minutes=2)):
        async_task("math.floor", 1.5, cluster="notify")
    async_task("math.floor", 2.5, cluster="notify")
    async_task("math.floor", 3.5, cluster="critical")
    lanes = client.get("/readyz").json()["lanes"]
    assert list(lanes) == ["baitiao", "critical", "notify"]
    assert lanes["notify"]["depth"] == 2 and 110 <= lanes["notify"]["oldest_task_age_seconds"] <= 300
    assert lanes["critical"]["depth"] == 1 and lanes["critical"]["oldest_task_age_seconds"] < 60
    assert lanes["baitiao"] == {"workers": settings.Q_CLUSTER["workers"], "depth": 0, "oldest_task_age_seconds": None}
    assert lanes["critical"]["workers"] == settings.Q_CLUSTER["ALT_CLUSTERS"]["critical"]["workers"]


def test_metrics_show_the_critical_lane(client):
    async_task("math.floor", 1.5, cluster="critical")
    body = client.get("/metrics").content.decode()
    assert 'baitiao_queue_depth{queue="critical"} 1.0' in body
    assert 'baitiao_queue_oldest_task_age_seconds{queue="critical"}' in body


def test_the_dashboard_refresh_after_a_relief_run_goes_to_the_critical_lane(
    supervisor, django_capture_on_commit_callbacks
):
    from repayments.services.incidents import relief_run

    failed_bill("system", "bank_system_error")
    incident = resolved_incident(supervisor)
    batch = relief_request(incident_id=incident.pk, requested_by=supervisor, days=7, note="core down")
    relief_approve(batch_id=batch.pk, approved_by=other_supervisor())
    OrmQ.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        relief_run(batch_id=batch.pk)
    assert "repayments.tasks.refresh_dashboard" in queued("critical")
    assert "repayments.tasks.refresh_dashboard" not in queued("baitiao")
