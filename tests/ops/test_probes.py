"""/healthz and /readyz: liveness without dependencies, readiness naming each dependency."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone
from django_q.models import OrmQ, Schedule
from django_q.tasks import async_task

from tests.engine import free_port, start_sandbox

REDIS_TEST_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(scope="module")
def bank():
    """The sandbox bank as a real process (callbacks unused here)."""
    sandbox = start_sandbox("http://127.0.0.1:9/unused/")
    yield sandbox
    sandbox.stop()


@pytest.fixture
def ready_state(db, settings, bank):
    """Every dependency up: the sandbox gateway, an empty queue, no overdue schedule, no Redis."""
    settings.GATEWAY_URL = bank.url
    settings.REDIS_URL = ""
    OrmQ.objects.all().delete()
    Schedule.objects.all().delete()
    return settings


def test_liveness_answers_without_touching_the_database(db, client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz", HTTP_HOST="10.1.2.3")  # a pod IP, not in ALLOWED_HOSTS
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readiness_lists_each_dependency_when_all_are_up(client, ready_state):
    response = client.get("/readyz", HTTP_HOST="10.1.2.3")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "queue", "gateway"}
    assert {check["status"] for check in body["checks"].values()} == {"ok"}


def test_readiness_needs_no_login(client, ready_state):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert "/accounts/login" not in response.get("Location", "")


def test_readiness_is_503_naming_the_gateway_when_its_port_is_closed(client, ready_state):
    port = free_port()
    ready_state.GATEWAY_URL = f"http://user:s3cret@127.0.0.1:{port}"
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["gateway"]["status"] == "unavailable"
    assert "gateway unreachable" in body["checks"]["gateway"]["error"]
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["queue"]["status"] == "ok"
    text = response.content.decode()
    assert "s3cret" not in text and str(port) not in text and "127.0.0.1" not in text


def test_readiness_checks_redis_when_it_is_configured(client, ready_state):
    ready_state.REDIS_URL = REDIS_TEST_URL
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["checks"]["redis"]["status"] == "ok"


def test_readiness_is_503_naming_redis_when_it_is_down(client, ready_state):
    ready_state.REDIS_URL = f"redis://127.0.0.1:{free_port()}/15"
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["redis"]["status"] == "unavailable"
    assert body["checks"]["gateway"]["status"] == "ok"


def test_readiness_fails_the_queue_when_a_task_has_waited_too_long(client, ready_state):
    ready_state.READINESS_QUEUE_MAX_AGE_SECONDS = 600
    with time_machine.travel(timezone.now() - dt.timedelta(minutes=15)):
        async_task("math.floor", 1.5, cluster="notify")
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["queue"]["status"] == "unavailable"
    assert "queue notify" in body["checks"]["queue"]["error"]


def test_readiness_accepts_a_fresh_task(client, ready_state):
    async_task("math.floor", 1.5, cluster="notify")
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()


def test_readiness_fails_the_queue_when_no_cluster_advances_the_schedules(client, ready_state):
    schedule = Schedule.objects.create(
        name="collection-run",
        func="repayments.tasks.run_collection",
        schedule_type=Schedule.CRON,
        cron="*/5 * * * *",
        repeats=-1,
    )
    # What a stopped cluster leaves behind: the next run an hour in the past.
    Schedule.objects.filter(pk=schedule.pk).update(next_run=timezone.now() - dt.timedelta(hours=1))
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert "collection-run" in body["checks"]["queue"]["error"]
