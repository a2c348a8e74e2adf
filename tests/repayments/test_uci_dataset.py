"""The real UCI data on PostgreSQL: mapping, spot checks against the CSV, idempotence, bad input."""

from __future__ import annotations

import csv
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from baitiao.pii import pii_hash
from repayments.datasets.uci import DEFAULT_PATH, DatasetError, read_uci_holders
from repayments.models import Bill, BillStatus, CardBinding, CreditLine, Customer, RepaymentAttempt
from repayments.services.datasets import dataset_load_uci
from tests.conftest import UCI_AS_OF

pytestmark = pytest.mark.django_db


def csv_row(holder_id: int) -> dict[str, str]:
    with DEFAULT_PATH.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if int(row["ID"]) == holder_id:
                return row
    raise LookupError(holder_id)


def bills_latest_first(customer_no: str) -> list[Bill]:
    return list(Bill.objects.filter(customer__customer_no=customer_no).order_by("-period"))


def table_counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count() for model in (Customer, CreditLine, CardBinding, Bill, RepaymentAttempt)
    }


def test_every_holder_becomes_a_customer_with_a_line_a_binding_and_six_bills():
    counts = table_counts()
    assert counts["Customer"] == 30_000
    assert counts["CreditLine"] == 30_000
    assert counts["CardBinding"] == 30_000
    assert counts["Bill"] == 180_000
    # One historical customer repayment per positive PAY_AMT1..5 (PAY_AMT6 paid a bill before April).
    holders = read_uci_holders()
    assert counts["RepaymentAttempt"] == sum(1 for h in holders for amount in h.pay_amounts[:5] if amount > 0)


def test_holder_1_owes_the_september_statement_once_and_is_two_cycles_past_due():
    row = csv_row(1)
    customer = Customer.objects.select_related("credit_line").get(customer_no="UCI-000001")
    assert customer.credit_line.credit_limit == Decimal(row["LIMIT_BAL"]) == Decimal("20000")
    assert customer.credit_line.currency == "TWD"
    bills = bills_latest_first("UCI-000001")
    assert [b.statement_balance for b in bills] == [Decimal(row[f"BILL_AMT{n}"]) for n in range(1, 7)]
    # Booked on each closed statement up to what it owed (PAY_AMT2 = 689 paid the July 689).
    assert [b.amount_paid for b in bills] == [Decimal(v) for v in ("0", "0", "689", "0", "0", "0")]
    # Only the September statement is open: it carries August's unpaid 3,102 already.
    assert [b.status for b in bills] == [
        BillStatus.OVERDUE,
        BillStatus.CARRIED_FORWARD,
        BillStatus.PAID,
        BillStatus.NO_BALANCE,
        BillStatus.NO_BALANCE,
        BillStatus.NO_BALANCE,
    ]
    assert bills[1].carried_forward == Decimal("3102.00") and bills[1].outstanding == Decimal("0.00")
    latest = bills[0]
    assert str(latest.due_date) == "2026-11-30" and str(latest.statement_date) == "2026-11-01"
    # PAY_0 = 2: the minimums of August (2 % of 3,102 = 62.04) and July (2 % of 689 = 13.78) missed;
    # DPD counts from July's due date, 2026-09-30: 46 days on 2026-11-15, bucket M2.
    assert (latest.cycles_past_due, str(latest.past_due_since), latest.dpd) == (2, "2026-09-30", 46)
    assert latest.past_due_amount == Decimal("75.82")
    assert latest.minimum_due == Decimal("154.08")  # 2 % of 3,913 (78.26) plus the past-due 75.82
    # 0.05 % a day of the past-due 75.82 for 46 days = 1.743…, half-up 1.74 (cap 391.30).
    assert latest.late_fee == Decimal("1.74")
    assert latest.outstanding == Decimal("3914.74")  # the statement balance and the fee: owed once
    assert customer.credit_line.available_credit == Decimal("16087.00")  # 20,000 − 3,913
    assert customer.risk_tier == "high"
    [payment] = RepaymentAttempt.objects.filter(bill__customer=customer)
    assert (payment.channel, payment.amount, payment.bill_id) == ("customer", Decimal("689.00"), bills[2].pk)


def test_holder_2_carries_each_unpaid_rest_forward_and_owes_only_the_latest_statement():
    row = csv_row(2)
    bills = bills_latest_first("UCI-000002")
    assert [b.statement_balance for b in bills] == [Decimal(row[f"BILL_AMT{n}"]) for n in range(1, 7)]
    assert [b.amount_paid for b in bills[1:]] == [Decimal(row[f"PAY_AMT{n}"]) for n in range(1, 6)]
    # PAY_0 = -1: current. Every older statement left a rest, carried into the next one.
    assert [b.status for b in bills] == [BillStatus.PENDING] + [BillStatus.CARRIED_FORWARD] * 5
    assert [b.carried_forward for b in bills[1:]] == [Decimal(v) for v in ("1725", "1682", "2272", "2455", "3261")]
    assert [b.outstanding for b in bills] == [Decimal("2682.00")] + [Decimal("0.00")] * 5
    assert all(b.dpd == 0 and b.cycles_past_due == 0 for b in bills)


def test_a_negative_bill_is_a_credit_balance_with_nothing_due():
    holder = next(h for h in read_uci_holders() if h.bill_amounts[0] < 0)
    latest = bills_latest_first(f"UCI-{holder.id:06d}")[0]
    assert latest.statement_balance == Decimal(holder.bill_amounts[0]) < 0
    assert latest.amount_due == Decimal("0.00")
    assert latest.minimum_due == Decimal("0.00")
    assert latest.status == BillStatus.NO_BALANCE


def test_scientific_notation_is_read_as_an_exact_integer():
    with DEFAULT_PATH.open(newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if "e+" in r["LIMIT_BAL"])
    line = CreditLine.objects.get(customer__customer_no=f"UCI-{int(row['ID']):06d}")
    assert line.credit_limit == Decimal(row["LIMIT_BAL"]).quantize(Decimal("0.01"))
    assert line.credit_limit == line.credit_limit.to_integral_value()


def test_loading_twice_changes_nothing():
    before = table_counts()
    sample = Bill.objects.order_by("id").values_list("id", "status", "amount_due", "dpd", "updated_at")[:50]
    sample_before = list(sample)
    inserted = dataset_load_uci(as_of=UCI_AS_OF)
    assert set(inserted.values()) == {0}
    assert table_counts() == before
    assert list(sample) == sample_before


def test_personal_data_is_encrypted_at_rest_and_found_by_keyed_hash():
    customer = Customer.objects.get(customer_no="UCI-000003")
    with connection.cursor() as cursor:
        cursor.execute("SELECT phone, national_id, name FROM repayments_customer WHERE id = %s", [customer.pk])
        raw_phone, raw_id, raw_name = cursor.fetchone()
    assert customer.phone not in raw_phone and customer.national_id not in raw_id and customer.name not in raw_name
    assert Customer.objects.get(phone_hash=pii_hash(customer.phone)) == customer
    assert customer.phone_last4 == customer.phone[-4:]


def test_available_credit_is_limit_minus_the_latest_balance():
    # Fees accrue after the load and do not reduce the line; principal does.
    for number in ("UCI-000001", "UCI-000002", "UCI-000004"):
        customer = Customer.objects.select_related("credit_line").get(customer_no=number)
        latest = bills_latest_first(number)[0]
        assert customer.credit_line.available_credit == customer.credit_line.credit_limit - latest.amount_due


def _write(tmp_path, text: str):
    path = tmp_path / "uci.csv"
    path.write_text(text, encoding="ascii", newline="")
    return path


def _header_and_row(holder_id: int = 1) -> tuple[str, str]:
    lines = DEFAULT_PATH.read_bytes().decode("ascii").split("\r\n")
    return lines[0], lines[holder_id]


def test_a_missing_file_is_refused_by_name(tmp_path):
    with pytest.raises(DatasetError, match="nope.csv: file not found"):
        read_uci_holders(tmp_path / "nope.csv")


def test_a_row_with_a_wrong_column_count_names_the_line(tmp_path):
    header, row = _header_and_row()
    path = _write(tmp_path, f"{header}\r\n{row}\r\n{row.rsplit(',', 1)[0].replace('1,', '99,', 1)}\r\n")
    with pytest.raises(DatasetError, match=r"uci.csv, line 3: expected 25 columns, found 24"):
        read_uci_holders(path)


def test_a_non_numeric_amount_names_line_and_column(tmp_path):
    header, row = _header_and_row()
    cells = row.split(",")
    cells[12] = "3,9l3".replace(",", "")  # BILL_AMT1 with a letter l for a one
    path = _write(tmp_path, f"{header}\r\n{','.join(cells)}\r\n")
    with pytest.raises(DatasetError, match=r"line 2, column BILL_AMT1: not a number: '39l3'"):
        read_uci_holders(path)


def test_a_fractional_value_is_refused(tmp_path):
    header, row = _header_and_row()
    cells = row.split(",")
    cells[1] = "20000.5"
    path = _write(tmp_path, f"{header}\r\n{','.join(cells)}\r\n")
    with pytest.raises(DatasetError, match=r"column LIMIT_BAL: not a whole number"):
        read_uci_holders(path)


def test_bad_input_leaves_the_database_unchanged(tmp_path):
    header, row = _header_and_row()
    good = row.replace("1,", "40001,", 1)
    path = _write(tmp_path, f"{header}\r\n{good}\r\n{row.replace('1,', '40002,', 1)[:-3]}x,1\r\n")
    before = table_counts()
    with pytest.raises(CommandError, match="Nothing was loaded.*line 3"):
        call_command("load_uci_dataset", str(path), "--as-of", "2026-11-30")
    assert table_counts() == before
    assert not Customer.objects.filter(customer_no="UCI-040001").exists()


def test_a_wrong_header_is_refused(tmp_path):
    header, row = _header_and_row()
    path = _write(tmp_path, f"{header.replace('PAY_0', 'PAY_1')}\r\n{row}\r\n")
    with pytest.raises(DatasetError, match="line 1: unexpected header"):
        read_uci_holders(path)
