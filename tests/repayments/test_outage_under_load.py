"""Acceptance (issue #16): an outage in the middle of a large collection run, with thousands of notices queued.

Real processes: the sandbox bank (two of its three banks down for part of the
run), our callback endpoint (the live server) and the three django-q2 clusters,
one per lane (``baitiao`` bulk, ``notify``, ``critical``), as ``make run`` starts
them. 5,000 debits are due and 5,000 customer notices wait on the ``notify`` lane.

* Detection runs on the ``critical`` lane once per detection period (the
  ``detect-incidents`` schedule fires once a minute; here the test enqueues the
  same task every ``PERIOD`` seconds, as that cluster's scheduler would, so the
  test takes a minute rather than several). Within two periods of the first failed
  result an incident is open for each bank that is down, and for no other.
* The run is a long one: it created its attempts minutes before they were sent
  (``collection_run(now=…)`` in the past), which is what hid the real outage when
  detection read the run's start instead of the debits' (``requested_at``).
* The relief run, approved while the bulk and notify lanes are still busy, starts
  within 10 s of its approval.

Date-proof: the bills fall due two business days before the real present, and
every expectation is computed from times recorded during the test.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from django_q.tasks import async_task, fetch

from baitiao.queues import queue_depth
from repayments.models import (
    AttemptStatus,
    Bill,
    BillStatus,
    CardBinding,
    CreditLine,
    Customer,
    FailureFamily,
    Incident,
    IncidentStatus,
    ReliefBatch,
    RepaymentAttempt,
)
from repayments.services.collection import collection_run
from repayments.services.incidents import incident_resolve, relief_approve, relief_request
from tests.engine import customer_with_due_bill, start_cluster, wait_for
from tests.repayments.test_incidents import other_supervisor

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_domain")]

DEBITS = 5_000
NOTICES = 5_000
BANKS = {"ICBC": "中国工商银行", "CCB": "中国建设银行", "ABC": "中国农业银行"}
DOWN = ("ICBC", "CCB")  # the sandbox fails these banks' debits with system codes; ABC answers normally
PERIOD = 10.0  # seconds between detection runs in this test (a minute in production)
RUN_BEGAN_AGO = dt.timedelta(minutes=7)  # longer than the detection window (5 minutes)


def _clone(model, template_id: int, source: str, overrides: dict[str, str], where: str = "true") -> None:
    """One row per row of ``source`` (SQL FROM items ``g``, ``c``, ``l``): the template row but ``overrides``."""
    table = model._meta.db_table
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    values = ", ".join(overrides.get(column, f"t.{column}") for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values}"  # noqa: S608 - test SQL, model metadata
            f" FROM {table} t, {source} WHERE t.id = %s AND {where}",
            [template_id],
        )


def load_due_bills(due: dt.date) -> None:
    """``DEBITS`` customers, each with a line, a card on one of ``BANKS`` and a bill due on ``due``.

    Each also has last month's statement, paid by a debit whose "succeeded" notice is
    among those queued. One customer is made by the factories; SQL copies it
    ``DEBITS`` times (5,000 factory rows cost a minute on a busy 2-core machine).
    """
    _, bill, binding = customer_with_due_bill(due=due, customer_no="TEMPLATE")
    n = "substr(c.customer_no, 6)::int"
    loaded = "c.customer_no LIKE 'LOAD-%%'"
    _clone(
        Customer,
        bill.customer_id,
        f"generate_series(0, {DEBITS - 1}) g",
        {"customer_no": "'LOAD-' || lpad(g::text, 5, '0')"},
    )
    _clone(CreditLine, bill.credit_line_id, "repayments_customer c", {"customer_id": "c.id"}, loaded)
    banks = "ARRAY[" + ", ".join(f"'{code}'" for code in BANKS) + "]"
    names = "ARRAY[" + ", ".join(f"'{name}'" for name in BANKS.values()) + "]"
    _clone(
        CardBinding,
        binding.pk,
        "repayments_customer c",
        {
            "customer_id": "c.id",
            "gateway_token": f"'sbx_ok_' || lower(({banks})[{n} %% 3 + 1]) || substr(c.customer_no, 6)",
            "bank_code": f"({banks})[{n} %% 3 + 1]",
            "bank_name": f"({names})[{n} %% 3 + 1]",
        },
        loaded,
    )
    lines = "repayments_customer c JOIN repayments_creditline l ON l.customer_id = c.id"
    _clone(
        Bill,
        bill.pk,
        lines,
        {
            "customer_id": "c.id",
            "credit_line_id": "l.id",
            "bill_no": "'LB-' || substr(c.customer_no, 6)",
            "amount_due": f"300 + {n} %% 700",
            "statement_balance": f"300 + {n} %% 700",
        },
        loaded,
    )
    last_month = due - dt.timedelta(days=30)
    _clone(
        Bill,
        bill.pk,
        lines,
        {
            "customer_id": "c.id",
            "credit_line_id": "l.id",
            "bill_no": "'LP-' || substr(c.customer_no, 6)",
            "due_date": f"'{last_month.isoformat()}'::date",
            "original_due_date": f"'{last_month.isoformat()}'::date",
            "statement_date": f"'{(last_month - dt.timedelta(days=19)).isoformat()}'::date",
            "period": "(t.period - interval '1 month')::date",
            "amount_paid": "t.amount_due",
            "status": f"'{BillStatus.PAID.value}'",
        },
        loaded,
    )
    paid_at = timezone.now() - dt.timedelta(days=30)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO repayments_repaymentattempt (attempt_no, bill_id, card_binding_id, channel, amount, status,"
            " failure_code, failure_family, failure_message, gateway_reference, requested_at, completed_at,"
            " created_at, updated_at)"
            " SELECT b.bill_no || '-A1', b.id, cb.id, %(channel)s, b.amount_due, %(succeeded)s, '', '', '', '',"
            " %(at)s, %(at)s, now(), now()"
            " FROM repayments_bill b JOIN repayments_cardbinding cb ON cb.customer_id = b.customer_id"
            " WHERE b.bill_no LIKE 'LP-%%'",
            {"channel": "auto_debit", "succeeded": AttemptStatus.SUCCEEDED.value, "at": paid_at},
        )
    Bill.objects.filter(customer__customer_no="TEMPLATE").delete()
    CardBinding.objects.filter(customer__customer_no="TEMPLATE").delete()
    CreditLine.objects.filter(customer__customer_no="TEMPLATE").delete()
    Customer.objects.filter(customer_no="TEMPLATE").delete()


def queue_notices() -> None:
    """``NOTICES`` "debit succeeded" messages waiting on the notify lane.

    Each is the package ``async_task`` would sign; written with one INSERT (5,000
    ``async_task`` calls cost 40 s on a busy machine).
    """
    now = timezone.now()
    ids = RepaymentAttempt.objects.filter(attempt_no__startswith="LP-").order_by("id").values_list("id", flat=True)
    OrmQ.objects.bulk_create(
        OrmQ(
            key="notify",
            lock=now,
            payload=SignedPackage.dumps(
                {
                    "id": uuid.uuid4().hex,
                    "name": f"notice-{attempt_id}",
                    "func": "repayments.tasks.notify_attempt",
                    "args": (attempt_id, "debit_succeeded", ["in_app", "sms"]),
                    "kwargs": {},
                    "cluster": "notify",
                    "started": now,
                }
            ),
        )
        for attempt_id in ids[:NOTICES]
    )


def detect_once() -> float:
    """One detection period's run, queued on the critical lane as its scheduler queues it; seconds it took."""
    enqueued = time.monotonic()
    task_id = async_task("repayments.tasks.detect_incidents", cluster="critical")
    wait_for(lambda: fetch(task_id), timeout=30, interval=0.1, what="the detection run on the critical lane")
    return time.monotonic() - enqueued


def open_incident_banks() -> set[str]:
    return set(Incident.objects.filter(status=IncidentStatus.OPEN).values_list("bank_code", flat=True))


def test_an_outage_during_a_large_run_is_detected_within_two_periods_and_relief_starts_at_once(live_bank, supervisor):
    started = time.monotonic()
    sandbox = live_bank(duplicate_rate=0.0, hold_seconds=2)
    sandbox.outage("error", only=tuple(bank.lower() for bank in DOWN))
    # The three lanes start while the data is written (as `make run` starts them).
    clusters = [start_cluster(sandbox.url, Q_CLUSTER_NAME=lane) for lane in ("baitiao", "notify", "critical")]
    try:
        due = timezone.localdate() - dt.timedelta(days=2)  # due and unpaid, whatever the wall clock says
        load_due_bills(due)
        queue_notices()
        assert queue_depth("notify") >= NOTICES - 10  # the notify lane may have taken a few already
        # The run began minutes ago; its debits have waited on the bulk lane since.
        assert collection_run(now=timezone.now() - RUN_BEGAN_AGO)["attempts"] == DEBITS
        system_failed = RepaymentAttempt.objects.filter(
            status=AttemptStatus.FAILED, failure_family=FailureFamily.SYSTEM
        )
        wait_for(system_failed.exists, timeout=60, what="the first failed result from the banks that are down")
        first_failure = time.monotonic()
        periods, waits = 0, []
        while open_incident_banks() != set(DOWN) and periods < 2:
            time.sleep(max(0.0, first_failure + (periods + 1) * PERIOD - time.monotonic()))
            notify_backlog = queue_depth("notify")
            waits.append(detect_once())
            periods += 1
        assert open_incident_banks() == set(DOWN), f"after {periods} detection periods"
        # Detection never waited behind the notices or the debits: each run took seconds.
        assert max(waits) < 5.0, waits
        assert notify_backlog > 1_000, "the notify lane was still busy"
        assert RepaymentAttempt.objects.filter(status=AttemptStatus.PENDING).exists(), "so was the bulk lane"
        for incident in Incident.objects.filter(status=IncidentStatus.OPEN):
            assert incident.source == "detected"
            assert incident.system_failures_seen >= 50  # INCIDENT_DETECTION["min_attempts"]
        sandbox.outage("off")

        incident = Incident.objects.get(bank_code="ICBC", status=IncidentStatus.OPEN)
        incident_resolve(incident_id=incident.pk, resolved_by=supervisor)
        batch = relief_request(incident_id=incident.pk, requested_by=supervisor, days=7, note="ICBC core outage")
        assert batch.bills_total > 0
        assert queue_depth("notify") > 0, "the notify lane still has messages waiting"
        approved = relief_approve(batch_id=batch.pk, approved_by=other_supervisor())
        running = wait_for(
            lambda: ReliefBatch.objects.filter(pk=batch.pk, started_at__isnull=False).first(),
            timeout=30,
            interval=0.1,
            what="the relief run to start on the critical lane",
        )
        assert approved.approved_at is not None
        assert running.started_at - approved.approved_at < dt.timedelta(seconds=10)
    finally:
        # Killed, not stopped: a graceful stop waits for the thousands of tasks still
        # queued in each cluster; what the test asked for is decided (the database is flushed).
        for cluster in clusters:
            if cluster.process.poll() is None:
                cluster.kill()
    assert time.monotonic() - started < 90  # about a minute on a busy 2-core machine
