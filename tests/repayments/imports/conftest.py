"""Fixtures of the import/export tests: an empty domain inside the test's transaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "imports"


@pytest.fixture
def empty_domain(db):
    """The handed cases run "against an empty database": remove the session's UCI rows.

    TRUNCATE is transactional in PostgreSQL, so the test's rollback brings the
    session data back for the other tests.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE repayments_notification, repayments_reminder, repayments_gatewayreviewitem,"
            " repayments_bindingrepaircase, repayments_repaymentattempt, repayments_bill,"
            " repayments_cardbinding, repayments_creditline, repayments_customer CASCADE"
        )


@pytest.fixture
def run_import(empty_domain):
    """``run_import(resource, text_or_bytes, **options)`` → ImportOutcome, as the system actor."""
    from repayments.services.imports import data_import

    def run(resource: str, content: str | bytes, *, filename: str = "upload.csv", actor=None, **options):
        data = content.encode("utf-8") if isinstance(content, str) else content
        return data_import(resource=resource, content=data, filename=filename, actor=actor, **options)

    return run


CUSTOMERS_CSV = (
    "customer_no,name,phone,national_id,credit_score,risk_tier\n"
    "C0001,张三,13800138000,11010519491231002X,720,low\n"
    "C0002,李四,13912345678,440300199003071234,610,medium\n"
    "C0003,王五,15011112222,110101198001010010,540,high\n"
)

BILLS_HEADER = (
    "bill_no,customer_no,period,statement_date,due_date,statement_balance,amount_due,minimum_due,amount_paid,status\n"
)


@pytest.fixture
def three_customers(run_import):
    outcome = run_import("customers", CUSTOMERS_CSV)
    assert outcome.applied, outcome.problems
    return outcome


@pytest.fixture
def queue_every_upload(settings):
    """Console uploads of any size go to the queue (``IMPORT_LIMITS["inline_max_bytes"]`` = 0)."""
    settings.IMPORT_LIMITS = {**settings.IMPORT_LIMITS, "inline_max_bytes": 0}
