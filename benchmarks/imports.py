"""CSV import/export benchmarks (issue #6); results go to benchmarks/RESULTS.md by hand.

    DEBUG=true DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/imports.py

Creates a scratch database (``bench_imports``, dropped at the end unless
``--keep``), migrates it, inserts 100,000 customers with SQL, then:

1. imports a generated 1,000,000-row bills CSV (10 months × 100,000 customers,
   with a share of rows in analyst forms: ``¥1,234.50``, ``2024/3/5``, 待还)
   through the fast path with full validation — target ≤ 60 s;
2. imports the same 20,000-row file with our resource (``fast_path=False``) and
   with a plain django-import-export ``ModelResource`` with default options, each
   in a transaction rolled back afterwards, and prints the ratio;
3. exports the 1,000,000 bills with ``manage.py export_data`` in a child process
   and reports its peak resident memory — target < 300 MB.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CUSTOMERS = 100_000
MONTHS = 10


def _database_urls(base_url: str, name: str) -> tuple[str, str]:
    head, _, _ = base_url.rpartition("/")
    return f"{head}/postgres", f"{head}/{name}"


def _admin_sql(admin_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql)


def bills_csv(rows: int, *, seed: int = 7, year: int = 2024, prefix: str = "B") -> bytes:
    """``rows`` bills for customers BC-000001…; about one row in five in analyst forms."""
    rng = random.Random(seed)
    lines = [
        "bill_no,customer_no,period,statement_date,due_date,statement_balance,amount_due,minimum_due,amount_paid,status"
    ]
    for index in range(rows):
        customer = index % CUSTOMERS + 1
        month = index // CUSTOMERS % MONTHS + 1
        cents = rng.randrange(0, 5_000_000)
        amount = f"{cents // 100}.{cents % 100:02d}"
        minimum = f"{cents // 1000}.{(cents // 10) % 100:02d}"
        if index % 5 == 0:  # as an analyst's Excel writes it
            yuan = f"{cents // 100:,}.{cents % 100:02d}"
            lines.append(
                f"{prefix}{index:08d},BC-{customer:06d},{year}年{month}月,{year}/{month}/1,{year}/{month}/20,"
                f'"¥{yuan}","{yuan}",{minimum},0,待还'
            )
        else:
            lines.append(
                f"{prefix}{index:08d},BC-{customer:06d},{year}-{month:02d},{year}-{month:02d}-01,{year}-{month:02d}-20,"
                f"{amount},{amount},{minimum},0.00,pending"
            )
    return ("\n".join(lines) + "\n").encode()


def _setup_customers() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO repayments_customer (customer_no, name, phone, phone_hash, phone_last4, national_id,
                national_id_hash, national_id_last4, email, credit_score, risk_tier, is_synthetic, source,
                source_ref, language, created_at, updated_at)
            SELECT 'BC-' || lpad(n::text, 6, '0'), '', '', '', '', '', '', '', '', 700, 'medium', true,
                'generated', '', 'zh-hans', now(), now()
            FROM generate_series(1, %s) n ON CONFLICT DO NOTHING""",
            [CUSTOMERS],
        )
        cursor.execute(
            """
            INSERT INTO repayments_creditline (customer_id, credit_limit, available_credit, currency, status,
                created_at, updated_at)
            SELECT id, 50000, 50000, 'CNY', 'active', now(), now() FROM repayments_customer
            WHERE customer_no LIKE 'BC-%%' ON CONFLICT DO NOTHING"""
        )


def _plain_resource():
    """django-import-export's ModelResource with default options (per-row save, default
    loader), plus only what Bill needs to be saved at all: the customer by number,
    its credit line and ``original_due_date``."""
    from import_export import fields, resources, widgets

    from repayments.models import Bill, Customer

    class PlainBillResource(resources.ModelResource):
        customer = fields.Field(
            attribute="customer", column_name="customer_no", widget=widgets.ForeignKeyWidget(Customer, "customer_no")
        )

        class Meta:
            model = Bill
            import_id_fields = ("bill_no",)
            fields = ("bill_no", "customer", "period", "statement_date", "due_date", "statement_balance",
                      "amount_due", "minimum_due", "amount_paid", "status")  # fmt: skip

        def before_save_instance(self, instance, row, **kwargs):
            instance.credit_line = instance.customer.credit_line
            instance.original_due_date = instance.due_date

    return PlainBillResource()


def _canonical_bills(rows: int) -> bytes:
    """The same bills in the forms a default resource reads (ISO dates, plain decimals)."""
    lines = [
        "bill_no,customer_no,period,statement_date,due_date,statement_balance,amount_due,minimum_due,amount_paid,status"
    ]
    for index in range(rows):
        customer, month, cents = index % CUSTOMERS + 1, index // CUSTOMERS % MONTHS + 1, (index * 7919) % 5_000_000
        amount, minimum = f"{cents // 100}.{cents % 100:02d}", f"{cents // 1000}.00"
        lines.append(
            f"S{index:08d},BC-{customer:06d},2025-{month:02d}-01,2025-{month:02d}-01,2025-{month:02d}-20,"
            f"{amount},{amount},{minimum},0.00,pending"
        )
    return ("\n".join(lines) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--side-rows", type=int, default=20_000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    admin_url, bench_url = _database_urls(os.environ["DATABASE_URL"], "bench_imports")
    _admin_sql(admin_url, "DROP DATABASE IF EXISTS bench_imports")
    _admin_sql(admin_url, "CREATE DATABASE bench_imports")
    env = {**os.environ, "DATABASE_URL": bench_url, "DEBUG": "true"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    os.environ.update(DATABASE_URL=bench_url, DJANGO_SETTINGS_MODULE="baitiao.settings")
    import django

    django.setup()
    from django.db import transaction

    from repayments.models import Bill
    from repayments.services.imports import data_import

    _setup_customers()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")

    content = bills_csv(args.rows)
    print(f"1. bills CSV: {args.rows:,} rows, {len(content) / 1e6:.0f} MB")
    started = time.perf_counter()
    outcome = data_import(resource="bills", content=content, actor=None, filename="bills.csv", fast_path=True)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"   fast path: {elapsed:.1f} s, {outcome.status}, created {outcome.created:,}, "
        f"problems {len(outcome.problems)}, peak RSS {peak:.0f} MB"
    )
    assert outcome.applied and outcome.created == args.rows, outcome.problems[:5]

    side = bills_csv(args.side_rows, seed=11, year=2025, prefix="S")
    canonical = _canonical_bills(args.side_rows)
    timings = {}
    for label, run in (
        ("ours (resource path, analyst forms)", lambda: data_import(
            resource="bills", content=side, actor=None, filename="side.csv", fast_path=False)),
        ("ours (fast path, analyst forms)", lambda: data_import(
            resource="bills", content=side, actor=None, filename="side.csv", fast_path=True)),
        ("ours (resource path, canonical file)", lambda: data_import(
            resource="bills", content=canonical, actor=None, filename="side.csv", fast_path=False)),
        ("plain ModelResource (canonical file)", lambda: _plain_import(canonical)),
    ):  # fmt: skip
        with transaction.atomic():
            started = time.perf_counter()
            result = run()
            timings[label] = time.perf_counter() - started
            ok = getattr(result, "applied", None)
            if ok is None:
                ok = not result.has_errors() and not result.has_validation_errors()
            assert ok, label
            transaction.set_rollback(True)
        print(f"2. {args.side_rows:,} rows, {label}: {timings[label]:.1f} s")
    plain = timings["plain ModelResource (canonical file)"]
    for label, seconds in timings.items():
        if label.startswith("ours"):
            print(f"   plain / {label}: {plain / seconds:.1f}×")

    out = Path(tempfile.gettempdir()) / "bench_bills_export.csv"
    measure = (
        "import django; django.setup(); from django.core.management import call_command; "
        f"call_command('export_data', 'bills', '--out', '{out}'); "
        # VmHWM is this process's own peak; ru_maxrss would carry the parent's over fork/exec.
        "print([int(l.split()[1]) // 1024 for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    )
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-c", measure], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "baitiao.settings"},
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    child_peak = int(child.stdout.strip().splitlines()[-1])
    lines = sum(1 for _ in out.open("rb")) - 1
    print(
        f"3. export {Bill.objects.count():,} bills: {elapsed:.1f} s, {lines:,} rows, "
        f"{out.stat().st_size / 1e6:.0f} MB, peak RSS of the export process {child_peak} MB "
        f"({child.stderr.strip().splitlines()[-1]})"
    )
    out.unlink()

    from django.db import connections

    connections.close_all()
    if not args.keep:
        _admin_sql(admin_url, "DROP DATABASE bench_imports")


def _plain_import(content: bytes):
    import tablib

    dataset = tablib.Dataset().load(content.decode(), format="csv")
    return _plain_resource().import_data(dataset, dry_run=False, use_transactions=True)


if __name__ == "__main__":
    main()
