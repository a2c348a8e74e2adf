"""Resilience (issue #8, item 6): a collection run survives its processes and servers dying.

Every process is real and on loopback: gunicorn receiving the bank's callbacks, a
``qcluster`` on Redis, the sandbox bank with its durable ledger, and a private
PostgreSQL and Redis that the test can restart. During a run of a few hundred
debits the test ``kill -9``s the web server, the cluster and the bank (then
restarts them), or restarts PostgreSQL and Redis; then lets the system settle the
way production does (the resolve job asks the bank about every attempt left
open; the collection run picks up what was never started).

The books must balance against the bank's own ledger, the ground truth of who was
charged: every bill ends paid exactly once or failed with a family, no bill is
charged twice, no attempt is left open.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import time
from decimal import Decimal

import httpx
import psycopg
import pytest

from tests.engine import ROOT, free_port, wait_for
from tests.ops.live import (
    PrivatePostgres,
    PrivateRedis,
    Service,
    base_env,
    cluster_service,
    enqueue,
    sandbox_service,
    shared_postgres,
    wait_http,
    web_service,
)

pytestmark = pytest.mark.faults

BILLS = 200
IN_FLIGHT = ("pending", "processing", "unknown")
SEED = """
import datetime as dt, os, django
django.setup()
from baitiao.business_time import business_today
from tests.engine import customer_with_due_bill
due = business_today() - dt.timedelta(days=1)  # debitable whatever the hour
for n in range(int(os.environ["OPS_BILLS"])):
    scenario = "card_expired" if n % 10 == 0 else "lowfunds" if n % 10 == 1 else "ok"
    amount = "900.00" if scenario == "lowfunds" else f"{100 + n}.{n % 100:02d}"
    customer_with_due_bill(scenario=scenario, amount=amount, due=due, customer_no=f"F-{n:04d}")
"""


@pytest.fixture(scope="module")
def servers():
    """A private PostgreSQL with our schema as a template database, and a private Redis."""
    if not shutil.which("redis-server"):
        pytest.skip("no redis-server binary (Debian: apt-get install redis-server); .ci/run installs it")
    pg = shared_postgres()
    redis = PrivateRedis().start()
    yield pg, redis
    redis.kill()


class Stack:
    """The product's processes on one fresh database: web, one queue cluster, the bank."""

    def __init__(self, pg: PrivatePostgres, redis: PrivateRedis, name: str, log_dir) -> None:
        self.db_url = pg.create_database(name, template="ops_template")
        self.redis = redis
        self.web_port, self.bank_port = free_port(), free_port()
        self.bank_url = f"http://127.0.0.1:{self.bank_port}"
        env = base_env(
            DATABASE_URL=self.db_url,
            REDIS_URL=redis.url,
            GATEWAY_URL=self.bank_url,
            GATEWAY_TIMEOUT_MS="1000",
            # Settle open attempts after 5 s, not 2 min, so the test sees the whole cycle.
            ATTEMPT_RESOLVE_AFTER_SECONDS="5",
            Q_WORKERS="2",
        )
        self.env = env
        self.bank = sandbox_service(
            log_dir,
            port=self.bank_port,
            callback_url=f"http://127.0.0.1:{self.web_port}/api/v1/gateway/callbacks/",
            ledger=log_dir / "bank-ledger.jsonl",
            env=env,
        )
        self.web = web_service(log_dir, port=self.web_port, env=env)
        self.cluster = cluster_service(log_dir, "cluster", env)
        self.services: list[Service] = [self.bank, self.web, self.cluster]

    def seed(self, bills: int) -> None:
        subprocess.run(
            [sys.executable, "-c", SEED],
            env={**self.env, "OPS_BILLS": str(bills), "DJANGO_SETTINGS_MODULE": "baitiao.settings"},
            cwd=ROOT,
            check=True,
            capture_output=True,
        )

    def start(self, *services: Service) -> None:
        for service in services or self.services:
            service.start()
        if self.bank in (services or self.services):
            wait_http(f"{self.bank_url}/healthz", what="the bank")
        if self.web in (services or self.services):
            wait_http(f"http://127.0.0.1:{self.web_port}/accounts/login/", what="the web server")

    def stop(self) -> None:
        for service in self.services:
            service.stop()

    def query(self, sql: str, params=None) -> list[tuple]:
        with psycopg.connect(self.db_url) as conn:
            return conn.execute(sql, params).fetchall()

    def count(self, where: str) -> int:
        return self.query(f"SELECT count(*) FROM repayments_repaymentattempt WHERE {where}")[0][0]  # noqa: S608

    def attempts_by_status(self) -> dict[str, int]:
        return dict(self.query("SELECT status, count(*) FROM repayments_repaymentattempt GROUP BY status"))

    def run_collection(self) -> None:
        enqueue(self.redis.url, "repayments.tasks.run_collection")

    def settle(self, timeout: float = 100) -> None:
        """What the schedules do in production, every few seconds instead of minutes."""

        def settled() -> bool:
            if self.count("status IN ('pending', 'processing', 'unknown')") == 0:
                never_tried = self.query("SELECT count(*) FROM repayments_bill WHERE debit_attempts = 0")[0][0]
                if never_tried == 0:
                    return True
            try:
                enqueue(self.redis.url, "repayments.tasks.resolve_stale_attempts")
                enqueue(self.redis.url, "repayments.tasks.run_collection")
            except Exception as exc:  # noqa: BLE001 - Redis restarting: try again on the next round
                print(f"enqueue failed, retrying: {exc}")
            return False

        wait_for(settled, timeout=timeout, interval=3, what="every attempt settled")

    def bank_ledger(self) -> dict[str, dict]:
        response = httpx.get(f"{self.bank_url}/sandbox/ledger", timeout=10)
        response.raise_for_status()
        return {debit["idempotency_key"]: debit for debit in response.json()["debits"]}


@pytest.fixture
def stack(servers, request, tmp_path):
    pg, redis = servers
    stack = Stack(pg, redis, request.node.name[:40].lower(), tmp_path)
    yield stack
    stack.stop()


def assert_books_balance_with_the_bank(stack: Stack) -> collections.Counter:
    """Every bill paid exactly once or failed with a family; our books equal the bank's ledger."""
    ledger = stack.bank_ledger()
    attempts = stack.query(
        "SELECT a.attempt_no, b.bill_no, a.status, a.amount, a.failure_family, a.failure_code"
        " FROM repayments_repaymentattempt a JOIN repayments_bill b ON b.id = a.bill_id ORDER BY a.id"
    )
    bills = stack.query(
        "SELECT b.bill_no, b.status, b.amount_due, b.amount_paid, b.last_failure_family, c.customer_no"
        " FROM repayments_bill b JOIN repayments_customer c ON c.id = b.customer_id"
    )
    assert [a for a in attempts if a[2] in IN_FLIGHT] == [], "attempts left open (lost)"
    by_bill = collections.defaultdict(list)
    for attempt in attempts:
        by_bill[attempt[1]].append(attempt)
    charged = collections.defaultdict(list)
    for key, debit in ledger.items():
        if debit["status"] == "succeeded":
            charged[key.rsplit("-A", 1)[0]].append(Decimal(debit["amount"]))
    # Each attempt's outcome is the bank's outcome.
    for attempt_no, _, status, amount, _family, code in attempts:
        bank = ledger.get(attempt_no)
        if status == "succeeded":
            assert bank and bank["status"] == "succeeded" and Decimal(bank["amount"]) == amount, attempt_no
        elif status == "failed" and code == "not_delivered":
            assert bank is None or bank["status"] == "failed", (attempt_no, bank)
        elif status == "failed":
            assert bank and bank["status"] == "failed" and bank["code"] == code, (attempt_no, bank)
    outcomes: collections.Counter = collections.Counter()
    for bill_no, status, amount_due, amount_paid, last_family, customer_no in bills:
        assert len(charged[bill_no]) <= 1, f"{bill_no} charged {len(charged[bill_no])} times"
        assert sum(charged[bill_no], Decimal(0)) == amount_paid, bill_no
        assert by_bill[bill_no], f"{bill_no} never tried"
        succeeded = [a for a in by_bill[bill_no] if a[2] == "succeeded"]
        scenario = {0: "binding", 1: "funds"}.get(int(customer_no[2:]) % 10, "ok")
        if status == "paid":
            assert amount_paid == amount_due and len(succeeded) == 1, bill_no
            assert scenario == "ok", bill_no
            outcomes["paid"] += 1
        else:
            assert status == "pending" and amount_paid == 0 and not succeeded, (bill_no, status, amount_paid)
            last = by_bill[bill_no][-1]
            assert last[2] == "failed" and last[4] and last_family == last[4], (bill_no, last)
            # The family the bank's answer implies, or "system" (not_delivered) for a debit that
            # never reached it: claimed by a worker killed before it sent, or sent to a dead bank.
            if last[5] == "not_delivered":
                assert last[4] == "system" and last[0] not in ledger, last
            else:
                assert last[4] == {"ok": "none", "binding": "binding", "funds": "funds"}[scenario], last
            outcomes[f"failed:{last[4]}"] += 1
    return outcomes


def claimed(stack: Stack) -> int:
    return stack.count("status <> 'pending'")


def test_killing_web_worker_and_gateway_mid_run_charges_nobody_twice_and_loses_no_attempt(stack):
    stack.seed(BILLS)
    stack.start()
    stack.run_collection()
    wait_for(lambda: stack.count("true") > 0, timeout=60, what="the run's first attempts")
    stack.web.kill()  # callbacks now fail: the bank retries, then gives up
    print("web killed:", stack.attempts_by_status())
    wait_for(lambda: claimed(stack) >= 40, timeout=60, what="debits being sent")
    stack.cluster.kill()  # workers mid-batch: claimed attempts and queued sends are lost with it
    stack.bank.kill()  # decided and undecided debits; only its ledger survives
    print("cluster and bank killed:", stack.attempts_by_status())
    time.sleep(2)
    stack.start(stack.bank, stack.web, stack.cluster)
    stack.settle()
    outcomes = assert_books_balance_with_the_bank(stack)
    print("outcomes:", dict(outcomes))
    assert outcomes["paid"] >= BILLS * 0.6, outcomes  # the run really collected, faults and all
    assert outcomes["failed:binding"] + outcomes["failed:funds"] >= BILLS // 10, outcomes


def test_restarting_postgresql_and_redis_mid_run_charges_nobody_twice_and_loses_no_attempt(stack, servers):
    pg, redis = servers
    stack.seed(BILLS)
    stack.start()
    stack.run_collection()
    wait_for(lambda: claimed(stack) >= 40, timeout=60, what="debits being sent")
    print("restarting PostgreSQL:", stack.attempts_by_status())
    pg.restart()  # every connection cut: web, workers, monitor, scheduler
    time.sleep(2)
    print("restarting Redis:", stack.attempts_by_status())
    redis.restart()  # the queue is lost (no persistence): sends and notices not yet taken
    stack.settle()
    outcomes = assert_books_balance_with_the_bank(stack)
    print("outcomes:", dict(outcomes))
    assert outcomes["paid"] >= BILLS * 0.6, outcomes
    # The cluster and the web server lived through both restarts.
    assert stack.cluster.process.poll() is None and stack.web.process.poll() is None


def test_a_cluster_started_while_the_database_is_down_reports_then_serves(servers, tmp_path):
    """As the Procfile starts it: ``wait_for_database && exec qcluster`` (the default ORM broker)."""
    pg, _ = servers
    db_url = pg.create_database("dbdown", template="ops_template")
    with psycopg.connect(db_url, autocommit=True) as conn:
        from tests.ops.qtasks import CREATE

        conn.execute(CREATE)
    env = base_env(DATABASE_URL=db_url, Q_WORKERS="1")
    pg.stop()
    try:
        # django-q2 alone reports and exits (its ORM broker connects as the cluster starts):
        # no hang, but no cluster either; under honcho that stops every process.
        bare = cluster_service(tmp_path, "bare", env).start()
        assert bare.process.wait(timeout=60) != 0
        assert "failed to start" in bare.output()
        procfile = Service(
            "procfile",
            ["sh", "-c", f"{sys.executable} manage.py wait_for_database && exec {sys.executable} manage.py qcluster"],
            env,
            tmp_path / "procfile.log",
        ).start()
        wait_for(lambda: "database unreachable" in procfile.output(), timeout=30, what="the error report")
        time.sleep(2)
        assert procfile.process.poll() is None, procfile.output()
    finally:
        pg.start()
    try:
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from django_q.tasks import async_task; async_task('tests.ops.qtasks.record', 'after-db-came-back')",
            ],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )

        def executed():
            with psycopg.connect(db_url) as conn:
                return conn.execute("SELECT label FROM ops_task_execution").fetchall()

        assert wait_for(executed, timeout=60, what="the task run by the cluster") == [("after-db-came-back",)]
    finally:
        procfile.stop()
