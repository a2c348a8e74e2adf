"""The first run's demo collection: a console with work in it within minutes of ``make run``.

A fresh database holds the UCI holders' history (successful payments only) and
some ten thousand bills due for their first debit. The scheduled collection run
sends them all (it took over 15 minutes on a laptop), so a new user's worklist
stayed empty. On the first start, :func:`first_run_collection` debits a bounded
sample of those due customers through the real engine (``collection_run``,
the gateway, its callbacks), on the critical lane, so that the sandbox bank
fails them at its published rates (``docs/repayment-engine.md``, "The sandbox
bank": 7 % bad bindings, holders behind on payments with almost no funds, and
``SANDBOX_SYSTEM_FAILURE_RATE`` system errors): binding, funds and system
failures reach the worklist while the scheduled runs take the rest.

It runs once per database: an audit event ``collection.first_run`` records it,
taken under an advisory lock, so a second start (or a task run twice) does nothing.
"""

from __future__ import annotations

import datetime as dt
import time

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Func, Q, TextField
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.services import audit_record
from repayments.models import OPEN_BILL_STATUSES, Bill, CardBindingStatus
from repayments.services.collection import CRITICAL_QUEUE, _first_debit_through, collection_run

FIRST_RUN_ACTION = "collection.first_run"
_LOCK_KEY = 0x16_F1_25  # pg_advisory_xact_lock key of this step (issue #16)


class _Md5(Func):
    function = "md5"
    output_field = TextField()


def first_run_sample(*, now: dt.datetime, size: int) -> list[int]:
    """Ids of up to ``size`` customers with a bill due for its first debit at ``now`` and an active card.

    The sample is spread over the whole book, not the first rows loaded: ordered by a
    hash of the bill number, the same on every machine.

    Args:
        now: the moment of the run (aware); business time decides what is due.
        size: most customers (≥ 0).

    Returns:
        Customer ids, distinct.
    """
    through = _first_debit_through(now)
    due = (
        Bill.objects.filter(status__in=OPEN_BILL_STATUSES, debit_attempts=0, retry_at__isnull=True)
        .filter(Q(due_date__lte=through) | Q(past_due_since__lte=through))
        .filter(customer__card_bindings__status=CardBindingStatus.ACTIVE)
        .annotate(spread=_Md5(F("bill_no")))
        .order_by("spread")
        .values_list("customer_id", flat=True)
    )
    seen: dict[int, None] = {}
    for customer_id in due[: size * 2].iterator():
        seen.setdefault(customer_id, None)
        if len(seen) >= size:
            break
    return list(seen)


def gateway_wait(*, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the gateway's ``/healthz`` (``make run`` starts the bank alongside).

    Returns:
        Whether it answered 200 in time.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(settings.GATEWAY_URL.rstrip("/") + "/healthz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def first_run_collection(*, now: dt.datetime | None = None, size: int | None = None) -> dict[str, int]:
    """Once per database, debit a sample of the due customers now, sending on the critical lane.

    Only against the sandbox bank (``settings.GATEWAY_SANDBOX``): against a real
    gateway it debits nobody, however it was queued.

    Args:
        now: the moment of the run (aware; default now).
        size: customers in the sample (default ``settings.FIRST_RUN_SAMPLE``).

    Returns:
        ``{"customers": n, "attempts": m, "tasks": k}``, or ``{"skipped": 1}`` when it ran
        before or the gateway is not the sandbox.
    """
    if not settings.GATEWAY_SANDBOX:
        return {"skipped": 1}
    now = now or timezone.now()
    size = settings.FIRST_RUN_SAMPLE if size is None else size
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        if AuditEvent.objects.filter(action=FIRST_RUN_ACTION).exists():
            return {"skipped": 1}
        customers = first_run_sample(now=now, size=size)
        # The sends go to the critical lane (docs/operations.md, "Lanes"), ahead of the scheduled
        # run's thousands of debits on the bulk one; once per database, enqueued after commit.
        result = collection_run(now=now, customer_ids=customers, send_cluster=CRITICAL_QUEUE) if customers else {}
        counts = {"customers": len(customers), "attempts": result.get("attempts", 0), "tasks": result.get("tasks", 0)}
        audit_record(actor=None, action=FIRST_RUN_ACTION, target_type="job", after=counts)
    return counts
