"""Repayment-engine benchmarks on the database that ``benchmarks/run.py --keep`` leaves behind.

Usage (after ``.venv/bin/python benchmarks/run.py --keep``; needs ``wrk``, from
Debian's package of that name, for the callback benchmark):

    .venv/bin/python benchmarks/engine.py [--sample 2000] [--seconds 20]

1. Plan reminders for every open bill (target: 1,000,000 open bills in at most 60 s).
2. A collection run creating 100,000 attempts (set-based SQL), then sending a
   sample of them to a live sandbox bank, with the time split between our code
   and the time spent waiting on the sandbox.
3. The gateway callback endpoint under gunicorn (3 sync workers: 2 × cores − 1), loaded
   by wrk over loopback with signed callbacks (target: at least 300 requests/s).

Everything runs on 127.0.0.1 only and stops by itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import BENCH_DB, machine, server_url  # noqa: E402

DEV_ENV = {
    # The bench database was written with the development keys (DEBUG runs).
    "SECRET_KEY": "bench-only-secret-key-0123456789abcdef0123456789abcdef",
    "PII_ENCRYPTION_KEYS": "ZGV2LW9ubHktcGlpLWtleS0wMDAwMDAwMDAwMDAwMDA=",
    "PII_HASH_KEY": "dev-only-pii-hash-key",
    "GATEWAY_SECRET": "dev-only-gateway-secret",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
}


def setup_django(url: str) -> None:
    os.environ.update({"DATABASE_URL": url, "DEBUG": "false", **DEV_ENV})
    os.environ["DJANGO_SETTINGS_MODULE"] = "baitiao.settings"
    import django

    django.setup()


def bench_reminders() -> tuple[int, int, float]:
    from django.db import connection

    from repayments.models import Bill
    from repayments.services.reminders import reminders_plan

    # Every run plans into an empty, vacuumed table, as on the first day (earlier
    # runs and rolled-back experiments would otherwise leave dead index entries).
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE repayments_reminder CASCADE")
        cursor.execute("VACUUM ANALYZE repayments_reminder")
        cursor.execute("VACUUM ANALYZE repayments_bill")
    open_bills = Bill.objects.open().count()
    started = time.perf_counter()
    planned = reminders_plan(as_of=dt.date(2026, 11, 24), horizon_days=14)
    return open_bills, planned, time.perf_counter() - started


ENGINE_RESET = [
    # Undo an earlier run's collection (attempts "<bill_no>-A<n>"), so each run starts alike.
    "DELETE FROM repayments_notification WHERE attempt_id IS NOT NULL",
    "DELETE FROM repayments_gatewayreviewitem",
    "DELETE FROM repayments_bindingrepaircase",
    "DELETE FROM repayments_repaymentattempt WHERE attempt_no ~ '-A[0-9]+$'",
    "UPDATE repayments_bill SET debit_attempts = 0, retry_at = NULL WHERE debit_attempts > 0 OR retry_at IS NOT NULL",
    "VACUUM ANALYZE repayments_repaymentattempt",
]


def bench_collection(sample: int) -> dict:
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        for statement in ENGINE_RESET:
            cursor.execute(statement)

    from baitiao.business_time import business_datetime
    from repayments.gateway import client as gateway_client
    from repayments.models import RepaymentAttempt
    from repayments.services import collection

    port = 8199
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "sandbox_gateway",
            "serve",
            "--port",
            str(port),
            "--callback-url",
            "http://127.0.0.1:9/",
            "--duplicate-rate",
            "0",
            "--latency-ms",
            "10",
            "20",
        ],
        cwd=ROOT,
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2)
        settings.GATEWAY_URL = f"http://127.0.0.1:{port}"
        collection.async_task = lambda *args, **kwargs: None  # measure creation alone; sending below
        started = time.perf_counter()
        created = collection.collection_run(now=business_datetime(dt.date(2026, 11, 30), dt.time(9, 30)), limit=100_000)
        create_seconds = time.perf_counter() - started
        ids = list(RepaymentAttempt.objects.filter(status="pending").values_list("id", flat=True)[:sample])
        waited = [0.0]
        original = gateway_client.HttpGateway.debit

        def timed_debit(self, **kwargs):
            t = time.perf_counter()
            try:
                return original(self, **kwargs)
            finally:
                waited[0] += time.perf_counter() - t

        gateway_client.HttpGateway.debit = timed_debit
        collection.SEND_CONCURRENCY = 1  # sequential, so the split is exact
        started = time.perf_counter()
        collection.attempts_send(attempt_ids=ids)
        send_seconds = time.perf_counter() - started
    finally:
        sandbox.terminate()
        sandbox.wait()
    return {
        "attempts": created["attempts"],
        "create_seconds": create_seconds,
        "sample": len(ids),
        "send_seconds": send_seconds,
        "sandbox_seconds": waited[0],
    }


def bench_callbacks(url: str, seconds: int) -> dict:
    from django.conf import settings

    from repayments.gateway.signing import sign
    from repayments.models import RepaymentAttempt

    attempt = RepaymentAttempt.objects.filter(status="succeeded").order_by("id").first()
    body = json.dumps(
        {"idempotency_key": attempt.attempt_no, "status": "succeeded", "amount": str(attempt.amount), "reference": "B"}
    )
    header = sign(body.encode(), settings.GATEWAY_SECRET)
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["X-Gateway-Signature"] = "{header}"\n'
    )
    script.close()
    port = 8198
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "baitiao.wsgi",
            "-w",
            "2",
            "--threads",
            "4",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ},
    )
    try:
        time.sleep(3)
        out = subprocess.run(
            [
                "wrk",
                "-t",
                "1",
                "-c",
                "16",
                "-d",
                f"{seconds}s",
                "-s",
                script.name,
                f"http://127.0.0.1:{port}/api/v1/gateway/callbacks/",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        server.terminate()
        server.wait()
        os.unlink(script.name)
    rps = next(line for line in out.splitlines() if line.startswith("Requests/sec"))
    non2xx = next((line for line in out.splitlines() if "Non-2xx" in line), "Non-2xx or 3xx responses: 0")
    return {"rps": float(rps.split()[1]), "non2xx": non2xx.strip(), "raw": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=20)
    options = parser.parse_args()
    url = server_url()
    setup_django(url)
    open_bills, planned, plan_seconds = bench_reminders()
    collection = bench_collection(options.sample)
    callbacks = bench_callbacks(url, options.seconds)
    ours = collection["send_seconds"] - collection["sandbox_seconds"]
    print(callbacks["raw"])
    print(f"\n### {time.strftime('%Y-%m-%d')} — engine, on {BENCH_DB} — {machine()}\n")
    print("| benchmark | result | target |")
    print("| --- | ---: | ---: |")
    print(f"| plan reminders over {open_bills:,} open bills ({planned:,} planned) | {plan_seconds:.1f} s | ≤ 60 s |")
    created = f"{collection['attempts']:,}"
    print(f"| collection run creating {created} attempts (SQL) | {collection['create_seconds']:.1f} s | measured |")
    per = collection["send_seconds"] / max(collection["sample"], 1) * 1000
    print(
        f"| sending {collection['sample']:,} of them, sequentially | {collection['send_seconds']:.1f} s "
        f"({per:.1f} ms each: ours {ours:.1f} s, sandbox {collection['sandbox_seconds']:.1f} s) | measured |"
    )
    rps = f"{callbacks['rps']:.0f} req/s ({callbacks['non2xx']})"
    print(f"| callback endpoint, gunicorn 3 sync workers, wrk 16 connections | {rps} | ≥ 300 req/s |")


if __name__ == "__main__":
    main()
