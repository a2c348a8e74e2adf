"""The COPY fast path for big bills and attempts files gives the same answers as the resources."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from repayments.models import Bill, CreditLine, RepaymentAttempt
from repayments.services import imports
from tests.repayments.imports.conftest import BILLS_HEADER

ATTEMPTS_HEADER = "attempt_no,bill_no,channel,amount,status,failure_code,requested_at,completed_at\n"
GOOD_BILLS = (
    BILLS_HEADER
    + "B1,C0001,2024-03,2024-03-01,2024-03-20,100.00,100.00,10.00,0.00,open\n"
    + 'B2,C0002,2024年3月,2024/3/1,20240320,"¥1,200.00","1,200.00",１２０.００,0,逾期\n'
)


@pytest.fixture
def fast(run_import):
    def run(resource: str, content: str, **options):
        outcome = run_import(resource, content, fast_path=True, **options)
        assert outcome.fast_path
        return outcome

    return run


def test_big_files_take_the_fast_path_automatically(run_import, three_customers, monkeypatch):
    monkeypatch.setattr(imports, "FAST_PATH_MIN_ROWS", 2)
    outcome = run_import("bills", GOOD_BILLS)
    assert outcome.fast_path and outcome.applied and (outcome.created, outcome.updated) == (2, 0)
    second = Bill.objects.get(bill_no="B2")
    assert (second.amount_due, second.minimum_due, second.status, second.due_date) == (
        Decimal("1200.00"),
        Decimal("120.00"),
        "overdue",
        dt.date(2024, 3, 20),
    )
    assert CreditLine.objects.filter(customer__customer_no__in=["C0001", "C0002"]).count() == 2


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("B3,C9999,2024-03,2024-03-01,2024-03-20,1.00,1.00,0.10,0,open", "customer_no"),
        ("B3,C0003,2024-03,2024-03-01,2024-02-20,1.00,1.00,0.10,0,open", "due_date"),
        ("B3,C0003,2024-03,2024-03-01,2024-03-20,1.00,2.00,0.10,0,open", "amount_due"),
        ("B3,C0003,2024-03,2024-03-01,2024-03-20,1.00,1.00,5.00,0,open", "minimum_due"),
        ("B3,C0003,2024-03,2024-03-01,2024-03-20,1.00,1.00,0.10,0,weird", "status"),
        ("B3,C0003,2024-03,2024-03-01,2024-03-20,1.00,1.00,0.10,-3,open", "amount_paid"),
        ("B3,C0001,2024-03,2024-03-01,2024-03-20,1.00,1.00,0.10,0,open", "period"),
    ],
    ids=["unknown-customer", "due-before-statement", "due-not-balance", "minimum", "status", "negative", "same-month"],
)
def test_the_fast_path_refuses_a_bad_row_naming_the_cell_and_applies_nothing(fast, three_customers, row, column):
    outcome = fast("bills", GOOD_BILLS + row + "\n")
    assert not outcome.applied and (4, column) in {(p.row, p.column) for p in outcome.problems}
    assert Bill.objects.count() == 0 and CreditLine.objects.count() == 0


def test_the_fast_path_applies_valid_rows_on_request_and_keeps_extensions_on_reimport(fast, three_customers):
    bad = "B3,C9999,2024-03,2024-03-01,2024-03-20,1.00,1.00,0.10,0,open\n"
    outcome = fast("bills", GOOD_BILLS + bad, apply_valid_rows=True)
    assert outcome.applied and outcome.rejected_rows == 1 and Bill.objects.count() == 2
    Bill.objects.filter(bill_no="B1").update(due_date=dt.date(2024, 3, 27))
    again = fast("bills", GOOD_BILLS.replace("100.00,10.00,0.00,open", "100.00,10.00,25.00,open"))
    assert (again.created, again.updated, again.unchanged) == (0, 1, 1)
    bill = Bill.objects.get(bill_no="B1")
    assert (bill.due_date, bill.original_due_date, bill.amount_paid) == (
        dt.date(2024, 3, 27),
        dt.date(2024, 3, 20),
        Decimal("25.00"),
    )


def test_a_fast_path_dry_run_counts_but_writes_nothing(fast, three_customers):
    outcome = fast("bills", GOOD_BILLS, dry_run=True)
    assert outcome.status == "preview_ok" and outcome.created == 2
    assert Bill.objects.count() == 0 and CreditLine.objects.count() == 0


def test_attempts_through_the_fast_path_get_their_family_and_the_same_checks(fast, three_customers):
    fast("bills", GOOD_BILLS)
    refused = fast(
        "repayment-attempts",
        ATTEMPTS_HEADER + "A1,B1,,100.00,failed,,2024-03-20 09:00,2024-03-20 09:01\n"
        "A2,B1,,100.00,processing,,2024-03-20 09:00,\nA3,B1,,100.00,pending,,2024-03-20 09:00,\n"
        "A4,B9,,100.00,succeeded,,2024-03-20 09:00,2024-03-20 09:01\n",
    )
    assert {(2, "failure_code"), (3, "status"), (4, "status"), (5, "bill_no")} <= {
        (p.row, p.column) for p in refused.problems
    }
    outcome = fast(
        "repayment-attempts",
        ATTEMPTS_HEADER + "A1,B1,自动扣款,100.00,失败,card_expired,2024/3/20 9:00,2024/3/20 9:01\n"
        "A2,B2,,50.00,成功,,2024-03-21T10:00:00+08:00,2024-03-21 10:00:05\n",
    )
    assert outcome.applied, [str(p) for p in outcome.problems]
    first = RepaymentAttempt.objects.get(attempt_no="A1")
    assert (first.failure_family, first.channel, first.requested_at) == (
        "binding",
        "auto_debit",
        dt.datetime(2024, 3, 20, 1, 0, tzinfo=dt.UTC),
    )
