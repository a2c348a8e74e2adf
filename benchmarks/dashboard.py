"""Receivables dashboard benchmarks (issue #7) on the scale database.

Usage (after ``benchmarks/run.py --keep``; ``make benchmarks`` runs it after console.py):

    .venv/bin/python benchmarks/dashboard.py [--database-url URL] [--attempts 10000000] [--requests 20]

1. Applies pending migrations (``0005_dashboard`` builds the materialized rollups
   once, like an index) and tops the database up to ``--attempts`` repayment
   attempts the way ``benchmarks/console.py`` does (failed auto-debit retries).
2. Times a full refresh of the rollups (``dashboard_refresh``: ``REFRESH
   MATERIALIZED VIEW CONCURRENTLY`` of each), per view.
3. Measures server time (Django's test client, in process) of the dashboard page
   and of every section's CSV, without and with filters, over ``--requests``
   requests each after a warm-up: median, p95 and SQL queries (target: p95 < 500 ms).
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
from run import machine, manage, server_url  # noqa: E402


def refresh() -> tuple[float, dict[str, int]]:
    from repayments.services.dashboard import dashboard_refresh

    started = time.perf_counter()
    result = dashboard_refresh(trigger="command")
    assert result.refreshed, "another refresh held the lock"
    return time.perf_counter() - started, result.view_ms or {}


def rollup_sizes() -> dict[str, int]:
    from django.db import connection

    from repayments.services.dashboard import ROLLUP_VIEWS

    sizes = {}
    with connection.cursor() as cursor:
        for view in ROLLUP_VIEWS:
            cursor.execute(f"SELECT count(*) FROM {view}")  # noqa: S608 - constant names
            sizes[view] = cursor.fetchone()[0]
    return sizes


def measure(requests: int) -> list[tuple[str, float, float, int]]:
    from django.conf import settings
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    from accounts.models import User
    from repayments.selectors.dashboard import SECTIONS, filter_choices

    user, _ = User.objects.get_or_create(username="bench_analyst")
    user.groups.set([Group.objects.get(name="analyst")])
    client = Client(HTTP_HOST="localhost")  # secure=True below: production settings redirect to HTTPS
    client.force_login(user)
    choices = filter_choices()
    bank = "ICBC" if "ICBC" in choices.banks else choices.banks[0]
    filtered = f"bank={bank}&risk_tier=high&month_from=2026-01&month_to=2026-12&currency={choices.currencies[0]}"
    pages = [
        ("page, no filters", "/console/dashboard/"),
        (f"page, filtered ({filtered})", f"/console/dashboard/?{filtered}"),
        ("page, risk tier only", "/console/dashboard/?risk_tier=medium"),
    ]
    for key in SECTIONS:
        pages.append((f"CSV `{key}`, no filters", f"/console/dashboard/export.csv?section={key}"))
        pages.append((f"CSV `{key}`, filtered", f"/console/dashboard/export.csv?section={key}&{filtered}"))
    results = []
    # Production settings hash static names from collectstatic's manifest; the bench measures
    # server time without a collectstatic run, so plain static storage.
    plain_static = override_settings(
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
    )
    plain_static.enable()
    for label, path in pages:
        client.get(path, secure=True)
        times = []
        for _ in range(requests):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(path, secure=True)
                times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        times.sort()
        p95 = times[max(int(len(times) * 0.95) - 1, 0)]
        results.append((label, statistics.median(times), p95, len(queries)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="", help="default: baitiao_bench on the project's server")
    parser.add_argument("--attempts", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--skip-top-up", action="store_true")
    parser.add_argument("--skip-refresh", action="store_true", help="report the last logged refresh instead")
    options = parser.parse_args()
    url = options.database_url or server_url()
    migrate_s = manage(url, "migrate", "-v0")
    setup_django(url)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from console import top_up

    from repayments.models import Bill, Customer, RepaymentAttempt

    attempts = RepaymentAttempt.objects.count() if options.skip_top_up else top_up(options.attempts)
    if options.skip_refresh:
        from repayments.selectors.dashboard import last_refresh

        refresh_s, view_ms = (last_refresh().duration_ms or 0) / 1000, {}
    else:
        refresh_s, view_ms = refresh()
    sizes = rollup_sizes()
    results = measure(options.requests)
    customers, bills = Customer.objects.count(), Bill.objects.count()
    database = url.rsplit("/", 1)[-1].split("?")[0]
    print(f"\n### {time.strftime('%Y-%m-%d')} — dashboard, on {database} — {machine()}\n")
    print(f"{customers:,} customers, {bills:,} bills, {attempts:,} attempts.\n")
    print(f"`migrate` (pending migrations, including the first build of the rollups): {migrate_s:.1f} s\n")
    print(f"Full refresh (`REFRESH MATERIALIZED VIEW CONCURRENTLY` of each rollup): **{refresh_s:.1f} s**\n")
    print("| rollup | refresh | rows |")
    print("| --- | ---: | ---: |")
    for view, rows in sizes.items():
        took = f"{view_ms[view] / 1000:.1f} s" if view in view_ms else "—"
        print(f"| `{view}` | {took} | {rows:,} |")
    print("\n| request | median | p95 | SQL queries | target |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, median, p95, queries in results:
        print(f"| {label} | {median:.0f} ms | {p95:.0f} ms | {queries} | p95 < 500 ms |")


if __name__ == "__main__":
    main()
