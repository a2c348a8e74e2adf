"""Carried-forward and paid statements from files: the words, the amount carried, the refusals (issue #14).

A closed statement whose unpaid rest moves into the next one is ``carried_forward``
("revolving", 最低还款 in older files); a ``paid`` one owes nothing. Both paths refuse
a row that contradicts its status with the row, the column and the amounts, before
the database constraint would.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from baitiao.business_time import business_today
from repayments.models import Bill
from tests.repayments.imports.conftest import BILLS_HEADER

PATHS = pytest.mark.parametrize("fast_path", [False, True], ids=["resources", "fast-path"])


def _row(bill_no: str = "B1", *, paid: str, status: str, due: dt.date | None = None) -> str:
    due = due or dt.date(2024, 3, 20)
    statement = due - dt.timedelta(days=19)
    return f"{bill_no},C0001,{statement:%Y-%m},{statement},{due},1000.00,1000.00,100.00,{paid},{status}\n"


@PATHS
@pytest.mark.parametrize(
    "word", ["carried_forward", "Carried Forward", "结转", "已结转", "revolving", "最低还款", "已还最低"]
)
def test_every_carried_forward_word_stores_the_unpaid_rest_as_carried_forward(
    run_import, three_customers, fast_path, word
):
    outcome = run_import("bills", BILLS_HEADER + _row(paid="100.00", status=word), fast_path=fast_path)
    assert outcome.applied, [str(p) for p in outcome.problems]
    bill = Bill.objects.get()
    assert (bill.status, bill.carried_forward, bill.outstanding) == ("carried_forward", Decimal("900.00"), 0)


@PATHS
def test_a_carried_forward_row_with_nothing_left_to_carry_is_refused_naming_row_column_and_value(
    run_import, three_customers, fast_path
):
    content = BILLS_HEADER + _row("B1", paid="0", status="open") + _row("B2", paid="1000.00", status="已结转")
    content = content.replace("B2,C0001,2024-03,2024-03-01,2024-03-20", "B2,C0001,2024-04,2024-04-01,2024-04-20")
    outcome = run_import("bills", content, fast_path=fast_path)
    assert not outcome.applied and not Bill.objects.exists()
    [problem] = outcome.problems
    assert (problem.row, problem.column) == (3, "status")
    assert problem.value in ("已结转", "carried_forward")  # the fast path names the canonical word
    assert "nothing is left to carry" in problem.message and "1000.00" in problem.message


@PATHS
def test_a_paid_row_below_the_amount_due_is_refused_with_both_amounts(run_import, three_customers, fast_path):
    outcome = run_import("bills", BILLS_HEADER + _row(paid="990.00", status="已还清"), fast_path=fast_path)
    assert not outcome.applied and not Bill.objects.exists()
    [problem] = outcome.problems
    assert (problem.row, problem.column, problem.value) == (2, "amount_paid", "990.00")
    assert "marked paid" in problem.message and "990.00" in problem.message and "1000.00" in problem.message
    assert "database refused" not in problem.message


@PATHS
def test_a_paid_row_that_leaves_the_late_fee_unpaid_is_refused(run_import, three_customers, fast_path):
    due = business_today() - dt.timedelta(days=37)
    run_import("bills", BILLS_HEADER + _row(paid="0", status="", due=due), fast_path=fast_path)
    fee = Bill.objects.get().late_fee
    assert fee > 0
    outcome = run_import("bills", BILLS_HEADER + _row(paid="1000.00", status="paid", due=due), fast_path=fast_path)
    assert [(p.row, p.column) for p in outcome.problems] == [(2, "amount_paid")]
    assert f"{Decimal('1000.00') + fee}" in outcome.problems[0].message
    paid = run_import("bills", BILLS_HEADER + _row(paid=f"{1000 + fee}", status="paid", due=due), fast_path=fast_path)
    assert paid.applied, [str(p) for p in paid.problems]
    bill = Bill.objects.get()
    assert (bill.status, bill.carried_forward, bill.outstanding) == ("paid", 0, 0)
