"""Agent-console benchmarks on the database that ``benchmarks/run.py --keep`` leaves behind.

Usage (after ``.venv/bin/python benchmarks/run.py --keep``):

    .venv/bin/python benchmarks/console.py [--attempts 10000000] [--requests 20]

1. Tops the database up to ``--attempts`` repayment attempts with failed auto-debit
   retries on the open bills (funds, system and binding families in a realistic
   mix, set-based SQL), and records each open bill's latest failure on the bill as
   the engine does. Run once: it adds only what is missing.
2. Measures server time (Django's test client, in process) of the worklist queues,
   the customer view and search, over ``--requests`` requests each after a warm-up,
   and reports median, p95 and SQL queries per page (target: p95 < 150 ms, ≤ 15 queries).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from engine import setup_django  # noqa: E402
from run import BENCH_DB, machine, server_url  # noqa: E402

TOP_UP = """
    INSERT INTO repayments_repaymentattempt
        (created_at, updated_at, attempt_no, bill_id, card_binding_id, channel, amount, status,
         failure_code, failure_family, failure_message, gateway_reference, requested_at, completed_at)
    SELECT now(), now(), b.bill_no || '-R' || n, b.id, cb.id, 'auto_debit', b.amount_due, 'failed',
           f.code, f.family, f.message, '',
           (b.due_date + n) + time '09:00' AT TIME ZONE 'Asia/Shanghai',
           (b.due_date + n) + time '09:00:02' AT TIME ZONE 'Asia/Shanghai'
      FROM (SELECT id, bill_no, customer_id, due_date, amount_due FROM repayments_bill
             WHERE amount_due > 0 ORDER BY id LIMIT %(bills)s) b
      JOIN repayments_cardbinding cb ON cb.customer_id = b.customer_id AND cb.status = 'active'
      CROSS JOIN generate_series(1, %(per_bill)s) AS n
      CROSS JOIN LATERAL (
          SELECT * FROM (VALUES
              (0, 'insufficient_funds', 'funds', '余额不足 / insufficient funds'),
              (1, 'insufficient_funds', 'funds', '余额不足 / insufficient funds'),
              (2, 'bank_system_error', 'system', '银行系统繁忙 / bank system busy'),
              (3, 'exceeds_limit', 'funds', '超过卡片限额 / exceeds card limit'),
              (4, 'channel_unavailable', 'system', '通道不可用 / channel unavailable'),
              (5, 'card_expired', 'binding', '卡片过期 / card expired')
          ) AS v(k, code, family, message)
          WHERE v.k = (b.id + n) %% 6
      ) f
    ON CONFLICT (attempt_no) DO NOTHING
"""
LATEST_FAILURE = """
    UPDATE repayments_bill b
       SET last_failure_family = a.failure_family, last_failure_code = a.failure_code,
           last_failure_at = a.requested_at
      FROM (SELECT DISTINCT ON (bill_id) bill_id, failure_family, failure_code, requested_at
              FROM repayments_repaymentattempt
             WHERE status = 'failed'
             ORDER BY bill_id, requested_at DESC) a
     WHERE a.bill_id = b.id AND b.status IN ('pending', 'overdue') AND b.last_failure_family = ''
"""


def top_up(target: int) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM repayments_repaymentattempt")
        have = cursor.fetchone()[0]
        missing = target - have
        if missing > 0:
            per_bill = 2
            started = time.perf_counter()
            cursor.execute(TOP_UP, {"bills": missing // per_bill + 1, "per_bill": per_bill})
            print(f"added {cursor.rowcount:,} failed attempts in {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        cursor.execute(LATEST_FAILURE)
        print(f"latest failure recorded on {cursor.rowcount:,} open bills in {time.perf_counter() - started:.0f} s")
        cursor.execute("VACUUM ANALYZE repayments_repaymentattempt")
        cursor.execute("VACUUM ANALYZE repayments_bill")
        cursor.execute("SELECT count(*) FROM repayments_repaymentattempt")
        return cursor.fetchone()[0]


def measure(requests: int) -> list[tuple[str, float, float, int]]:
    from django.contrib.auth.models import Group
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from repayments.models import Bill

    user, _ = User.objects.get_or_create(username="bench_agent")
    user.groups.set([Group.objects.get(name="agent")])
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    overdue = Bill.objects.filter(status="overdue").select_related("customer").order_by("-dpd").first()
    failed = Bill.objects.exclude(last_failure_family="").filter(status__in=["pending", "overdue"]).first()
    phone = failed.customer.phone
    pages = [
        ("worklist, default queue (all failed debits)", "/console/"),
        ("worklist, page 20 of the default queue", "/console/?page=20"),
        ("worklist, funds queue filtered by bank and risk tier", "/console/?queue=funds&bank=ICBC&risk_tier=high"),
        ("worklist, overdue M2", "/console/?queue=overdue&bucket=M2"),
        ("worklist, binding repair cases", "/console/?queue=repair"),
        ("customer view (overdue customer)", f"/console/customers/{overdue.customer.customer_no}/"),
        ("customer view (customer with failed debits)", f"/console/customers/{failed.customer.customer_no}/"),
        ("search by full phone number (keyed hash)", f"/console/search/?q={phone}"),
        ("search by last four digits", f"/console/search/?q={phone[-4:]}"),
        ("search by bill number", f"/console/search/?q={overdue.bill_no}"),
    ]
    results = []
    for label, path in pages:
        client.get(path)
        times = []
        for _ in range(requests):
            reset_queries()
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
            assert response.status_code in (200, 302), (path, response.status_code)
        times.sort()
        p95 = times[max(int(len(times) * 0.95) - 1, 0)]
        results.append((label, statistics.median(times), p95, len(queries)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=20)
    options = parser.parse_args()
    setup_django(server_url())
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from repayments.models import Bill, Customer

    attempts = top_up(options.attempts)
    results = measure(options.requests)
    customers, bills = Customer.objects.count(), Bill.objects.count()
    print(f"\n### {time.strftime('%Y-%m-%d')} — console, on {BENCH_DB} — {machine()}\n")
    print(f"{customers:,} customers, {bills:,} bills, {attempts:,} attempts.\n")
    print("| page | median | p95 | SQL queries | target |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, median, p95, queries in results:
        print(f"| {label} | {median:.0f} ms | {p95:.0f} ms | {queries} | p95 < 150 ms, ≤ 15 |")


if __name__ == "__main__":
    main()
