"""Soak test (issue #8 item 7): agents browse while gateway callbacks arrive, for a bounded time.

Usage (on a database set up by ``make setup``, or any migrated one with the UCI data):

    .venv/bin/python benchmarks/soak.py [--run-time 10m] [--users 12] [--spawn-rate 2]
                                        [--callbacks-per-second 4]

What it does, all on 127.0.0.1 (nothing listens on another interface):

1. Prepares the scenario in the database named by ``DATABASE_URL`` (embedded one
   otherwise): a few ``soak_agent_N`` staff users with the agent role and random
   passwords, a sample of customers and search terms, and attempts in flight to
   receive results (one collection run's worth, marked ``processing`` as if sent).
2. Starts the sandbox bank and gunicorn (``gunicorn.conf.py`` when the project has
   one, explicit arguments otherwise; ``--bind 127.0.0.1:<free port>`` always).
3. Runs locust headless (``benchmarks/soak/locustfile.py``) for ``--run-time``:
   agents (worklist queues, search, customer pages) and the bank's callbacks at a
   steady ``--callbacks-per-second`` (a fifth of them second deliveries).
4. Samples the RSS of every gunicorn worker every 10 s (psutil).
5. Prints per-endpoint p50/p95/max, failures, 5xx, RSS first vs last minute; writes
   ``var/soak/summary.json``. Exit status 1 on any 5xx or failed request.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "var" / "soak"
AGENTS = 4  # distinct staff users; locust's agents share them round-robin


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_duration(text: str) -> int:
    """``10m``, ``90s``, ``1h30m`` → seconds (locust's own syntax)."""
    total, number = 0, ""
    for ch in text:
        if ch.isdigit():
            number += ch
        else:
            total += int(number) * {"h": 3600, "m": 60, "s": 1}[ch]
            number = ""
    return total + int(number or 0)


def prepare(callbacks: int) -> dict:
    """Staff users, customers, search terms and in-flight attempts for the scenario."""
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "baitiao.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from accounts.roles import AGENT
    from repayments.models import AttemptStatus, RepaymentAttempt
    from repayments.services.collection import collection_run

    agents = []
    for n in range(AGENTS):
        password = secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(username=f"soak_agent_{n}")
        user.set_password(password)
        user.is_active = True
        user.save()
        user.groups.add(Group.objects.get(name=AGENT))
        agents.append([user.username, password])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.customer_no, b.bill_no, cb.last4 FROM repayments_customer c"
            " JOIN repayments_bill b ON b.customer_id = c.id"
            " LEFT JOIN repayments_cardbinding cb ON cb.customer_id = c.id AND cb.status = 'active'"
            " WHERE b.status IN ('pending', 'overdue') ORDER BY md5(c.customer_no) LIMIT 1000"
        )
        rows = cursor.fetchall()
    customers = sorted({row[0] for row in rows})
    searches = [row[0] for row in rows[:200]] + [row[1] for row in rows[200:400]] + [row[2] for row in rows[400:500]]
    # Attempts in flight, as after a collection run whose debits were sent: the
    # callbacks of the scenario are their results. Nothing here talks to a bank.
    existing = set(
        RepaymentAttempt.objects.filter(status=AttemptStatus.PROCESSING).values_list("id", flat=True)[:callbacks]
    )
    created = collection_run(now=timezone.now(), limit=max(callbacks - len(existing), 0))["attempts"]
    RepaymentAttempt.objects.filter(status=AttemptStatus.PENDING).update(status=AttemptStatus.PROCESSING)
    with connection.cursor() as cursor:
        # The send tasks that run enqueued: no cluster runs here, and the attempts count as sent.
        cursor.execute("DELETE FROM django_q_ormq WHERE key = %s", [settings.Q_CLUSTER["name"]])
    attempts = []
    for n, (attempt_no, amount, currency) in enumerate(
        RepaymentAttempt.objects.filter(status=AttemptStatus.PROCESSING)
        .order_by("id")
        .values_list("attempt_no", "amount", "bill__credit_line__currency")[:callbacks]
    ):
        failed = n % 7 == 0  # about one in seven declined for funds, the rest succeed
        attempts.append(
            {
                "idempotency_key": attempt_no,
                "status": "failed" if failed else "succeeded",
                "amount": str(amount),
                "currency": currency,
                "code": "insufficient_funds" if failed else "",
                "message": "余额不足 / insufficient funds" if failed else "",
                "reference": f"SOAK{n:08d}",
            }
        )
    print(f"prepared: {len(customers)} customers, {len(attempts)} attempts in flight ({created} created)", flush=True)
    return {
        "agents": agents,
        "customers": customers,
        "searches": [s for s in searches if s],
        "attempts": attempts,
        "gateway_secret": settings.GATEWAY_SECRET,
    }


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not come up in {timeout} s")


def gunicorn_command(port: int) -> list[str]:
    command = [str(ROOT / ".venv" / "bin" / "gunicorn")]
    if (ROOT / "gunicorn.conf.py").exists():
        command += ["-c", str(ROOT / "gunicorn.conf.py")]
    else:
        command += ["--workers", "2", "--threads", "4", "--timeout", "30"]
    return [*command, "--bind", f"127.0.0.1:{port}", "baitiao.wsgi:application"]


def rss_mb(master: psutil.Process) -> dict[int, float]:
    try:
        return {p.pid: p.memory_info().rss / 2**20 for p in master.children(recursive=True)}
    except psutil.Error:
        return {}


def read_stats(prefix: Path) -> list[dict]:
    with open(f"{prefix}_stats.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-time", default="10m")
    parser.add_argument("--users", type=int, default=12, help="locust users (3 agents : 1 callback sender)")
    parser.add_argument("--spawn-rate", type=float, default=2)
    parser.add_argument("--callbacks-per-second", type=float, default=4, help="total, spread over callback users")
    args = parser.parse_args()
    seconds = parse_duration(args.run_time)
    callback_users = max(1, round(args.users / 4))
    OUT.mkdir(parents=True, exist_ok=True)
    data = prepare(int(args.callbacks_per_second * seconds * 0.85) + 50)
    data_file = OUT / "data.json"
    data_file.write_text(json.dumps(data), encoding="utf-8")
    data_file.chmod(0o600)  # staff passwords

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    web_port, bank_port = free_port(), free_port()
    env["GATEWAY_URL"] = f"http://127.0.0.1:{bank_port}"
    env["GATEWAY_CALLBACK_URL"] = f"http://127.0.0.1:{web_port}/api/v1/gateway/callbacks/"
    python = str(ROOT / ".venv" / "bin" / "python")
    processes = []
    bank = subprocess.Popen(
        [python, "manage.py", "sandbox_gateway", "serve", "--host", "127.0.0.1", "--port", str(bank_port)],
        cwd=ROOT,
        env=env,
    )
    processes.append(bank)
    web_log = open(OUT / "gunicorn.log", "w", encoding="utf-8")  # noqa: SIM115 - closed at the end
    web = subprocess.Popen(gunicorn_command(web_port), cwd=ROOT, env=env, stdout=web_log, stderr=web_log)
    processes.append(web)
    try:
        wait_http(f"http://127.0.0.1:{web_port}/accounts/login/")
        wait_http(f"http://127.0.0.1:{bank_port}/healthz")
        master = psutil.Process(web.pid)
        prefix = OUT / "locust"
        report = OUT / "report.json"
        locust = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "locust"),
                "-f",
                str(ROOT / "benchmarks" / "soak" / "locustfile.py"),
                "--headless",
                "--host",
                f"http://127.0.0.1:{web_port}",
                "--users",
                str(args.users),
                "--spawn-rate",
                str(args.spawn_rate),
                "--run-time",
                args.run_time,
                "--csv",
                str(prefix),
                "--only-summary",
                "--stop-timeout",
                "10",
            ],
            cwd=ROOT,
            env={
                **env,
                "SOAK_DATA": str(data_file),
                "SOAK_REPORT": str(report),
                "SOAK_CALLBACKS_PER_USER": str(args.callbacks_per_second / callback_users),
            },
        )
        started = time.monotonic()
        samples: list[tuple[float, dict[int, float]]] = []
        while locust.poll() is None:
            samples.append((time.monotonic() - started, rss_mb(master)))
            for _ in range(20):
                if locust.poll() is not None:
                    break
                time.sleep(0.5)
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        web_log.close()

    stats = read_stats(prefix)
    server_errors = json.loads(report.read_text(encoding="utf-8"))["server_errors"] if report.exists() else {"?": -1}
    total = next(row for row in stats if row["Name"] == "Aggregated")
    first = [sum(rss.values()) for t, rss in samples if t <= 60 and rss]
    last_start = samples[-1][0] - 60 if samples else 0
    last = [sum(rss.values()) for t, rss in samples if t >= last_start and rss]
    pids_first = set(samples[0][1]) if samples else set()
    pids_last = set(samples[-1][1]) if samples else set()
    summary = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "run_time_s": seconds,
        "users": args.users,
        "callbacks_per_second": args.callbacks_per_second,
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "requests_per_second": float(total["Requests/s"]),
        "server_errors": server_errors,
        "rss_mb_first_minute": round(sum(first) / len(first), 1) if first else None,
        "rss_mb_last_minute": round(sum(last) / len(last), 1) if last else None,
        "workers_replaced": pids_first != pids_last,
        "rss_samples": [(round(t), {str(k): round(v, 1) for k, v in rss.items()}) for t, rss in samples],
        "endpoints": [
            {
                "name": row["Name"],
                "method": row["Type"],
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "p50_ms": row["50%"],
                "p95_ms": row["95%"],
                "max_ms": round(float(row["Max Response Time"])),
                "rps": round(float(row["Requests/s"]), 2),
            }
            for row in stats
        ],
    }
    (OUT / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print("\n| endpoint | requests | failures | req/s | p50 ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in summary["endpoints"]:
        print(
            f"| {row['method']} {row['name']} | {row['requests']:,} | {row['failures']} | {row['rps']} |"
            f" {row['p50_ms']} | {row['p95_ms']} | {row['max_ms']} |"
        )
    print(
        f"\nRSS of the gunicorn workers (sum): first minute {summary['rss_mb_first_minute']} MB,"
        f" last minute {summary['rss_mb_last_minute']} MB; workers replaced: {summary['workers_replaced']}"
    )
    print(f"5xx: {server_errors or 'none'}; failures: {summary['failures']}; summary in {OUT / 'summary.json'}")
    return 1 if server_errors or summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
