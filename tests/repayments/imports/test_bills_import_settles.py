"""A bills import ages what it wrote and refreshes available credit at once, not at night (issue #14).

Both paths: the django-import-export resources and the COPY fast path. Dates are
relative to ``business_today()``: nothing depends on the day the suite runs.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings

from baitiao.business_time import business_today, delinquency_bucket
from baitiao.money import to_money
from repayments.models import Bill, CreditLine
from tests.repayments.imports.conftest import BILLS_HEADER

PATHS = pytest.mark.parametrize("fast_path", [False, True], ids=["resources", "fast-path"])


def _row(
    bill_no: str, customer_no: str, *, due: dt.date, amount: str, minimum: str, paid: str, status: str = ""
) -> str:
    statement = due - dt.timedelta(days=19)
    return f"{bill_no},{customer_no},{statement:%Y-%m},{statement},{due},{amount},{amount},{minimum},{paid},{status}\n"


@PATHS
def test_a_bill_imported_37_days_past_due_is_overdue_with_dpd_37_right_after_the_import(
    run_import, three_customers, fast_path
):
    today = business_today()
    row = _row("B1", "C0001", due=today - dt.timedelta(days=37), amount="1000.00", minimum="100.00", paid="0")
    outcome = run_import("bills", BILLS_HEADER + row, fast_path=fast_path)
    assert outcome.applied and outcome.fast_path == fast_path, [str(p) for p in outcome.problems]
    bill = Bill.objects.get(bill_no="B1")
    assert (bill.status, bill.dpd, bill.dpd_as_of) == ("overdue", 37, today)
    assert delinquency_bucket(bill.dpd) != "M0" and Bill.objects.in_bucket(delinquency_bucket(37)).filter(pk=bill.pk)
    # The late fee of the rule on the missed minimum (docs/repayment-engine.md).
    assert bill.late_fee == to_money(Decimal("100.00") * settings.LATE_FEE_DAILY_RATE * 37)
    assert any("aged to" in note for note in outcome.notes)


@PATHS
def test_a_bill_imported_before_its_due_date_stays_pending_and_current(run_import, three_customers, fast_path):
    today = business_today()
    row = _row("B1", "C0001", due=today + dt.timedelta(days=5), amount="1000.00", minimum="100.00", paid="0")
    run_import("bills", BILLS_HEADER + row, fast_path=fast_path)
    bill = Bill.objects.get(bill_no="B1")
    assert (bill.status, bill.dpd, bill.late_fee) == ("pending", 0, Decimal("0.00"))


@PATHS
def test_importing_bills_recomputes_the_available_credit_of_their_customers_at_once(
    run_import, three_customers, fast_path
):
    run_import("credit-lines", "customer_no,limit\nC0001,5000\nC0002,800\nC0003,300\n")
    assert CreditLine.objects.get(customer__customer_no="C0001").available_credit == Decimal("5000.00")
    today = business_today()
    rows = (
        # C0001: a current bill partly paid and one 37 days past due (it gets a late fee).
        _row("B1", "C0001", due=today + dt.timedelta(days=5), amount="1000.00", minimum="100.00", paid="300")
        + _row("B2", "C0001", due=today - dt.timedelta(days=37), amount="500.00", minimum="50.00", paid="0")
        # C0002: a paid bill owes nothing; C0003: a bill above its limit (clamped at 0).
        + _row("B3", "C0002", due=today - dt.timedelta(9), amount="200.00", minimum="20.00", paid="200", status="paid")
        + _row("B4", "C0003", due=today + dt.timedelta(days=5), amount="450.00", minimum="45.00", paid="0")
    )
    outcome = run_import("bills", BILLS_HEADER + rows, fast_path=fast_path)
    assert outcome.applied, [str(p) for p in outcome.problems]
    late = Bill.objects.get(bill_no="B2")
    assert late.late_fee > 0  # aged at once; a late fee is owed but uses no credit
    available = dict(CreditLine.objects.values_list("customer__customer_no", "available_credit"))
    principal = Decimal("700.00") + Decimal("500.00")
    assert available == {"C0001": Decimal("5000.00") - principal, "C0002": Decimal("800.00"), "C0003": Decimal("0.00")}


@PATHS
def test_a_dry_run_of_a_bills_file_ages_nothing_and_leaves_available_credit(run_import, three_customers, fast_path):
    run_import("credit-lines", "customer_no,limit\nC0001,5000\n")
    row = _row("B1", "C0001", due=business_today(), amount="1000.00", minimum="100.00", paid="0")
    outcome = run_import("bills", BILLS_HEADER + row, fast_path=fast_path, dry_run=True)
    assert outcome.status == "preview_ok" and not outcome.notes
    assert CreditLine.objects.get(customer__customer_no="C0001").available_credit == Decimal("5000.00")
    assert not Bill.objects.exists()
