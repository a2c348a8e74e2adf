"""Re-importing a bills file never takes back collected money or reopens a closed bill (both paths)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from repayments.models import Bill, BillStatus
from repayments.services.imports import data_import
from tests.factories import BillFactory

HEADER = (
    "bill_no,customer_no,period,statement_date,due_date,statement_balance,amount_due,minimum_due,amount_paid,status\n"
)


def _file(bill: Bill, *, paid: str, status: str) -> bytes:
    row = (
        f"{bill.bill_no},{bill.customer.customer_no},{bill.period:%Y-%m},{bill.statement_date},{bill.due_date},"
        f"1000.00,1000.00,100.00,{paid},{status}\n"
    )
    return (HEADER + row).encode()


@pytest.mark.parametrize("fast", [False, True])
def test_a_stale_file_cannot_lower_the_amount_paid_or_reopen_a_paid_bill(agent, analyst, fast):
    bill = BillFactory(amount_paid=Decimal("1000.00"), status=BillStatus.PAID)
    outcome = data_import(
        resource="bills",
        content=_file(bill, paid="0.00", status="pending"),
        actor=analyst,
        filename="stale.csv",
        fast_path=fast,
    )
    assert not outcome.applied
    columns = {p.column for p in outcome.problems}
    assert {"amount_paid", "status"} <= columns
    assert any("already been collected" in p.message for p in outcome.problems)
    bill.refresh_from_db()
    assert (bill.amount_paid, bill.status) == (Decimal("1000.00"), BillStatus.PAID)


def test_a_masked_card_bindings_export_does_not_carry_the_gateway_token(analyst):
    from repayments.models import CardBinding
    from repayments.services.exports import export_stream
    from tests.factories import CardBindingFactory

    binding = CardBindingFactory(gateway_token="sbx_ok_secrettoken12345678")
    rows = CardBinding.objects.filter(pk=binding.pk)
    body = b"".join(export_stream(resource="card-bindings", actor=analyst, queryset=rows)).decode("utf-8-sig")
    assert binding.gateway_token not in body
    assert "sbx_****5678" in body
