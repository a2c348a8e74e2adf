"""Incident relief benchmark (issue #5): one relief batch over 100,000 affected bills.

Usage (after ``.venv/bin/python benchmarks/run.py --keep``, which leaves a database
of 1,000,000 generated holders behind):

    .venv/bin/python benchmarks/incidents.py [--bills 100000]

1. Marks ``--bills`` open bills as failed by a system outage half an hour ago
   (one failed ``bank_system_error`` attempt each, set-based), declares the
   incident for that window and resolves it.
2. Times ``relief_request`` (selecting the bills and writing the ledger),
   ``relief_run`` (target: at most 2 minutes for 100,000 bills; progress printed
   every 5 seconds from the batch's counters, as the console shows it) and
   ``relief_reverse``.

The run's apology messages are enqueued for the ``notify`` cluster (not started
here) and are not part of the time. Everything stays in the bench database.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from engine import setup_django  # noqa: E402
from run import machine, server_url  # noqa: E402

MARK_FAILED = """
    WITH picked AS (
        SELECT b.id, b.bill_no, cb.id AS binding_id,
               b.amount_due + b.late_fee - b.late_fee_waived - b.amount_paid AS owed
          FROM repayments_bill b
          JOIN repayments_cardbinding cb ON cb.customer_id = b.customer_id AND cb.status = 'active'
         WHERE b.status IN ('pending', 'overdue')
           AND b.amount_paid < b.amount_due + b.late_fee - b.late_fee_waived
           AND NOT EXISTS (SELECT 1 FROM repayments_repaymentattempt a
                            WHERE a.bill_id = b.id AND a.status IN ('pending', 'processing', 'unknown'))
         ORDER BY b.id
         LIMIT %(bills)s
    ), attempts AS (
        INSERT INTO repayments_repaymentattempt (attempt_no, bill_id, card_binding_id, channel, amount, status,
            failure_code, failure_family, failure_message, gateway_reference, requested_at, completed_at,
            created_at, updated_at)
        SELECT p.bill_no || '-BI' || %(tag)s, p.id, p.binding_id, 'auto_debit', p.owed, 'failed',
               'bank_system_error', 'system', 'benchmark outage', '', %(at)s, %(at)s, now(), now()
          FROM picked p
        RETURNING bill_id
    )
    UPDATE repayments_bill b
       SET last_failure_family = 'system', last_failure_code = 'bank_system_error', last_failure_at = %(at)s
      FROM attempts WHERE b.id = attempts.bill_id
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bills", type=int, default=100_000)
    args = parser.parse_args()
    setup_django(server_url())

    import datetime as dt

    from django.contrib.auth.models import Group
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from repayments.models import ReliefBatch
    from repayments.services.incidents import (
        incident_declare,
        relief_approve,
        relief_request,
        relief_reverse,
        relief_run,
    )

    now = timezone.now()
    start, at, end = now - dt.timedelta(hours=1), now - dt.timedelta(minutes=45), now - dt.timedelta(minutes=30)
    tag = uuid.uuid4().hex[:6]
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(MARK_FAILED, {"bills": args.bills, "tag": tag, "at": at})
        marked = cursor.rowcount
        cursor.execute("ANALYZE repayments_repaymentattempt")
    setup_seconds = time.perf_counter() - t0
    group = Group.objects.get(name="supervisor")
    maker, checker = (User.objects.create_user(username=f"bench_{role}_{tag}") for role in ("maker", "checker"))
    for user in (maker, checker):
        user.groups.add(group)
    # An every-bank incident: the generated holders' cards are spread over many banks.
    incident = incident_declare(
        declared_by=maker, bank_code="", channel="", started_at=start, ended_at=end, description=f"bench {tag}"
    )

    t0 = time.perf_counter()
    batch = relief_request(incident_id=incident.pk, requested_by=maker, days=7, note="benchmark")
    request_seconds = time.perf_counter() - t0
    relief_approve(batch_id=batch.pk, approved_by=checker)

    stop = threading.Event()

    def progress() -> None:
        from django.db import connection as thread_connection

        try:
            while not stop.wait(5):
                row = ReliefBatch.objects.values("bills_done", "bills_total").get(pk=batch.pk)
                print(f"  progress: {row['bills_done']:,} of {row['bills_total']:,}", flush=True)
        finally:
            thread_connection.close()

    watcher = threading.Thread(target=progress, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    counts = relief_run(batch_id=batch.pk)
    run_seconds = time.perf_counter() - t0
    stop.set()
    watcher.join()

    t0 = time.perf_counter()
    relief_reverse(batch_id=batch.pk, reversed_by=checker, reason="benchmark: undo")
    reverse_seconds = time.perf_counter() - t0

    print()
    print(f"### Incident relief ({time.strftime('%Y-%m-%d')})")
    print()
    print(f"Machine: {machine()}")
    print()
    print("| step | bills | seconds | target |")
    print("| --- | ---: | ---: | --- |")
    print(f"| mark bills failed by the outage (setup) | {marked:,} | {setup_seconds:.1f} | |")
    print(f"| `relief_request` (select + ledger) | {batch.bills_total:,} | {request_seconds:.1f} | |")
    print(
        f"| `relief_run` (applied {counts['applied']:,}, skipped {counts['skipped']:,}) "
        f"| {batch.bills_total:,} | {run_seconds:.1f} | ≤ 120 s |"
    )
    print(f"| `relief_reverse` | {batch.bills_total:,} | {reverse_seconds:.1f} | |")


if __name__ == "__main__":
    main()
