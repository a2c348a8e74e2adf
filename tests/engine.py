"""Live helpers for engine tests: the sandbox bank and a django-q2 cluster as real processes."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
from django.conf import settings
from django.db import connection
from django.utils import timezone

from repayments.models import Bill, CardBinding, Customer
from tests.factories import BillFactory, CardBindingFactory, CreditLineFactory

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class EngineClock:
    """The moment a live-engine test collects at, taken from the wall clock.

    The sandbox bank, our callback endpoint and the django-q2 cluster run in real
    time (other processes, which no freezing reaches), so a test that pinned
    "today" disagreed with them on the day it ran. Tests that talk to them use
    the real present instead and compute what they expect from recorded times.

    ``now``: the real present (UTC aware). ``today``: the latest due date a
    collection run at ``now`` debits for the first time, a business-time date: the
    business date from ``settings.COLLECTION_START_HOUR`` on, the day before until then.
    """

    now: dt.datetime
    today: dt.date


def engine_clock() -> EngineClock:
    """The :class:`EngineClock` of this instant."""
    now = timezone.now()
    local = timezone.localtime(now)
    today = local.date() if local.hour >= settings.COLLECTION_START_HOUR else local.date() - dt.timedelta(days=1)
    return EngineClock(now=now, today=today)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """A DATABASE_URL for the test database, for child processes (cluster)."""
    cfg = connection.settings_dict
    host = cfg["HOST"] or cfg.get("OPTIONS", {}).get("host", "")
    if host.startswith("/"):
        return f"postgres://{cfg['USER']}@/{cfg['NAME']}?host={host}"
    password = f":{cfg['PASSWORD']}" if cfg.get("PASSWORD") else ""
    return f"postgres://{cfg['USER']}{password}@{host}:{cfg['PORT'] or 5432}/{cfg['NAME']}"


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Sandbox:
    url: str
    process: subprocess.Popen

    def outage(self, mode: str, *, only: tuple[str, ...] = ()) -> None:
        """Switch the bank's outage; ``only``: token substrings it hits (default every debit)."""
        payload = {"mode": mode, "only": list(only)}
        httpx.post(f"{self.url}/sandbox/outage", json=payload, timeout=5).raise_for_status()

    def state(self) -> dict:
        return httpx.get(f"{self.url}/sandbox/state", timeout=5).json()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_sandbox(
    callback_url: str, *, duplicate_rate: float = 1.0, hold_seconds: float = 3.0, system_failure_rate: float = 0.0
) -> Sandbox:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "sandbox_gateway",
            "serve",
            "--port",
            str(port),
            "--callback-url",
            callback_url,
            "--latency-ms",
            "20",
            "80",
            "--duplicate-rate",
            str(duplicate_rate),
            "--hold-seconds",
            str(hold_seconds),
            "--seed",
            "7",
            "--system-failure-rate",
            str(system_failure_rate),
        ],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "true"},
    )
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, timeout=60, what="sandbox bank")  # start-up only: slow on a loaded machine
    except BaseException:
        process.kill()  # a bank that never came up is not left running after the test
        process.wait(timeout=10)
        raise
    return Sandbox(url=url, process=process)


@dataclass
class Cluster:
    process: subprocess.Popen

    def kill(self) -> None:
        """SIGKILL the whole cluster, as a machine dying would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def start_cluster(gateway_url: str, **env: str) -> Cluster:
    process = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env={
            **os.environ,
            "DEBUG": "true",
            "DATABASE_URL": test_database_url(),
            "GATEWAY_URL": gateway_url,
            "GATEWAY_TIMEOUT_MS": "1000",
            **env,
        },
        start_new_session=True,
    )
    return Cluster(process=process)


def customer_with_due_bill(
    *, scenario: str = "ok", amount: str = "1234.56", due: dt.date, customer_no: str | None = None
) -> tuple[Customer, Bill, CardBinding]:
    """A customer whose bill is due on ``due``, with a binding whose token drives the sandbox outcome."""
    line = CreditLineFactory(credit_limit=Decimal("50000.00"), available_credit=Decimal("40000.00"))
    customer = line.customer
    if customer_no:
        customer.customer_no = customer_no
        customer.save(update_fields=["customer_no"])
    binding = CardBindingFactory(customer=customer, gateway_token=f"sbx_{scenario}_{customer.customer_no.lower()}")
    bill = BillFactory(credit_line=line, due_date=due, amount_due=Decimal(amount), minimum_due=Decimal("10.00"))
    return customer, bill, binding


def truncate_domain() -> None:
    """Start a live test from an empty domain (UCI rows would be debited too) and an empty ORM queue.

    Transactional tests run in their own database without the UCI rows
    (tests/database.py), so this states the test's need and guards it should
    that change. TRUNCATE is allowed on the audit table (its trigger forbids
    UPDATE and DELETE of rows).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE repayments_notification, repayments_reminder, repayments_gatewayreviewitem,"
            " repayments_bindingrepaircase, repayments_repaymentattempt, repayments_bill,"
            " repayments_cardbinding, repayments_creditline, repayments_customer, django_q_ormq CASCADE"
        )


BUSY_SESSIONS = """
    SELECT pid FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid()
       AND backend_type = 'client backend' AND state <> 'idle'
"""


def database_settle(timeout: float = 10.0) -> list[int]:
    """Wait until no other session of the test database is working; end those that still are.

    A transactional test ends with a TRUNCATE of every table. A request our live
    server was still handling (a duplicate bank callback, a poll) writes to a table
    the TRUNCATE has not locked yet while holding one it has: PostgreSQL breaks
    that deadlock by failing the flush, and the test errors at teardown.

    ``timeout``: seconds to wait for the other sessions to go idle. Returns the
    process ids of the sessions still busy after it, which were terminated
    (``pg_terminate_backend``); Django reconnects on their next request.
    """
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute(BUSY_SESSIONS)
            busy = [pid for (pid,) in cursor.fetchall()]
            if not busy:
                return []
            if time.monotonic() >= deadline:
                cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [busy])
                return busy
            time.sleep(0.05)
