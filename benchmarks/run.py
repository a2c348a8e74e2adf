"""Foundation benchmarks: UCI load, generate_load, admin changelist on millions of bills.

Usage (from the project root; `make benchmarks` runs the defaults):

    .venv/bin/python benchmarks/run.py [--customers 1000000] [--keep]

It creates a fresh database ``baitiao_bench`` on the same server the project uses
(the embedded one, or the server of ``DATABASE_URL``), migrates it, and measures:

1. ``load_uci_dataset`` into the empty database (target: at most 20 s, issue #14);
2. ``generate_load --customers N`` (target for N = 1,000,000: at most 10 minutes);
3. the admin bill changelist with the resulting bills, server time over 20
   requests after one warm-up (target with 6,000,000 bills: under 300 ms).

Results are printed as a Markdown block to paste into ``benchmarks/RESULTS.md``.
The database is dropped afterwards unless ``--keep`` is given.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "baitiao_bench"


def server_url() -> str:
    """URL of the project's server (embedded unless DATABASE_URL), pointing at the bench database."""
    os.environ.setdefault("DEBUG", "true")
    if os.environ.get("DATABASE_URL"):
        base = os.environ["DATABASE_URL"]
    else:
        sys.path.insert(0, str(ROOT))
        from baitiao.embedded_db import embedded_database_url

        base = embedded_database_url(ROOT / "var")
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


def admin_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres"))


def psql(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def count_rows(url: str) -> dict[str, int]:
    """Customers, bills and repayment attempts in the bench database."""
    import psycopg

    with psycopg.connect(url) as conn:
        return {
            name: conn.execute(f"SELECT count(*) FROM repayments_{table}").fetchone()[0]  # noqa: S608 - fixed names
            for name, table in (("customers", "customer"), ("bills", "bill"), ("attempts", "repaymentattempt"))
        }


def manage(url: str, *args: str) -> float:
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "true"}
    started = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], check=True, env=env, cwd=ROOT)
    return time.perf_counter() - started


def admin_changelist_times(url: str, requests: int = 20) -> list[float]:
    """Server time (in-process test client) of GET /admin/repayments/bill/, in milliseconds."""
    code = f"""
import os, time, json
os.environ["DATABASE_URL"] = {url!r}
os.environ["DEBUG"] = "true"
os.environ["DJANGO_SETTINGS_MODULE"] = "baitiao.settings"
import django; django.setup()
from django.test import Client
from accounts.models import User
user, _ = User.objects.get_or_create(username="bench_admin", defaults={{"is_staff": True, "is_superuser": True}})
client = Client(HTTP_HOST="localhost"); client.force_login(user)
for path in ("/admin/repayments/bill/", "/admin/repayments/bill/?status__exact=overdue"):
    client.get(path)
    times = []
    for _ in range({requests}):
        t = time.perf_counter(); r = client.get(path); times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.status_code
    print(json.dumps({{"path": path, "ms": times}}))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    import json

    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {system}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the baitiao_bench database")
    options = parser.parse_args()
    url = server_url()
    psql(admin_url(url), f"DROP DATABASE IF EXISTS {BENCH_DB}")
    psql(admin_url(url), f"CREATE DATABASE {BENCH_DB}")
    try:
        manage(url, "migrate", "--no-input", "-v", "0")
        load = manage(url, "load_uci_dataset", "--as-of", "2026-11-30")
        written = count_rows(url)
        # The right path was measured: every holder, statement and payment was written.
        assert written == {"customers": 30_000, "bills": 180_000, "attempts": 120_276}, written
        generate = manage(url, "generate_load", "--customers", str(options.customers), "--as-of", "2026-11-30")
        psql(url, "VACUUM ANALYZE")
        changelists = admin_changelist_times(url)
    finally:
        if not options.keep:
            psql(admin_url(url), f"DROP DATABASE IF EXISTS {BENCH_DB}")
    bills = (options.customers + 30_000) * 6
    print(f"\n### {time.strftime('%Y-%m-%d')} — {machine()}\n")
    print("| benchmark | result | target |")
    print("| --- | ---: | ---: |")
    print(f"| load_uci_dataset, 30,000 holders, empty database | {load:.1f} s | ≤ 20 s |")
    print(f"| generate_load --customers {options.customers:,} | {generate:.0f} s | ≤ 600 s for 1,000,000 |")
    for result in changelists:
        ms = sorted(result["ms"])
        p95 = ms[int(len(ms) * 0.95) - 1]
        print(
            f"| admin `{result['path']}` with {bills:,} bills, median / p95 | "
            f"{statistics.median(ms):.0f} / {p95:.0f} ms | < 300 ms |"
        )


if __name__ == "__main__":
    main()
