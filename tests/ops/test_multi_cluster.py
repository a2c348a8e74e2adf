"""Several machines share one Redis queue (issue #8, item 2): no task runs twice, no schedule fires twice.

Two real ``manage.py qcluster`` processes, as on two machines, with ``REDIS_URL`` on
one Redis and one database. Why it holds (``docs/resilience.md``, "Several machines"):

* Redis: a task is taken with ``BLPOP``, atomic, so exactly one cluster gets each
  task; django-q2 has no redelivery on Redis (no ``retry``, no acknowledgement), so
  a task is never handed out twice — a worker killed mid-task loses it instead, and
  every task of ours is idempotent and re-derived by the next scheduled run.
* Schedules: each cluster's scheduler selects the due schedules ``FOR UPDATE`` in
  one transaction and moves ``next_run`` on before committing; the other cluster
  waits on the row lock and PostgreSQL re-checks ``next_run < now`` on the new row,
  so it skips the schedule.
"""

from __future__ import annotations

import collections
import time

import psycopg
import pytest

from tests.engine import wait_for
from tests.ops.live import base_env, cluster_service, enqueue, redis_or_skip, shared_postgres
from tests.ops.qtasks import CREATE, TABLE

pytestmark = pytest.mark.faults

TASKS = 120
SCHEDULES = 5


@pytest.fixture
def redis_url():
    url, stop = redis_or_skip()
    yield url
    stop()


@pytest.fixture
def database() -> str:
    """A fresh migrated database on the private server, with the executions table."""
    url = shared_postgres().create_database("multi_cluster", template="ops_template")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(CREATE)
    return url


def query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def executed(url: str) -> list[tuple[str, str]]:
    return query(url, f"SELECT label, cluster FROM {TABLE}")  # noqa: S608 - constant name


def test_two_clusters_on_redis_run_each_task_and_each_due_schedule_exactly_once(redis_url, database, tmp_path):
    with psycopg.connect(database, autocommit=True) as conn:
        for n in range(SCHEDULES):
            # What Schedule.objects.create(schedule_type=MINUTES, minutes=60, next_run=now - 1 s) writes.
            conn.execute(
                "INSERT INTO django_q_schedule (name, func, args, schedule_type, minutes, repeats, next_run)"
                " VALUES (%s, 'tests.ops.qtasks.record', %s, 'I', 60, -1, now() - interval '1 second')",
                [f"ops-schedule-{n}", repr(f"schedule-{n}")],
            )
    clusters = [
        cluster_service(
            tmp_path,
            f"cluster-{label}",
            base_env(DATABASE_URL=database, REDIS_URL=redis_url, OPS_CLUSTER_LABEL=label, Q_WORKERS="2"),
        ).start()
        for label in ("A", "B")
    ]
    try:
        for n in range(TASKS):
            enqueue(redis_url, "tests.ops.qtasks.record", f"task-{n}", 0.05)
        wait_for(
            lambda: sum(1 for label, _ in executed(database) if label.startswith("task-")) >= TASKS,
            timeout=90,
            what="the batch executed",
        )
        # Both schedulers must have looked at the due schedules, twice: django-q2 runs the
        # scheduler every 30 s from the cluster's start.
        wait_for(
            lambda: all("running" in cluster.output() for cluster in clusters),
            timeout=60,
            what="both clusters running",
        )
        ready = time.monotonic()
        wait_for(
            lambda: sum(1 for label, _ in executed(database) if label.startswith("schedule-")) >= SCHEDULES,
            timeout=75,
            what="the due schedules fired",
        )
        time.sleep(max(0.0, ready + 65 - time.monotonic()))
        rows = executed(database)
    finally:
        for cluster in clusters:
            cluster.stop()

    counts = collections.Counter(label for label, _ in rows)
    assert {f"task-{n}" for n in range(TASKS)} == {label for label in counts if label.startswith("task-")}
    assert [label for label, times in counts.items() if times != 1] == [], "executed more than once"
    assert sorted(label for label in counts if label.startswith("schedule-")) == [
        f"schedule-{n}" for n in range(SCHEDULES)
    ]
    # The queue really was shared: both machines took tasks from it.
    by_cluster = collections.Counter(cluster for label, cluster in rows if label.startswith("task-"))
    assert set(by_cluster) == {"A", "B"}, by_cluster
    # Each schedule moved on by its interval, once.
    late = query(
        database,
        "SELECT name FROM django_q_schedule"
        " WHERE name LIKE 'ops-schedule-%' AND next_run < now() + interval '55 minutes'",
    )
    assert late == []
