"""Whole files: encodings, layouts, bad input, integrity, personal data and the audit trail."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import AuditEvent
from baitiao.pii import pii_hash
from repayments.models import Bill, CreditLine, Customer, DataSource
from tests.repayments.imports.conftest import BILLS_HEADER, CUSTOMERS_CSV, FIXTURES


def _cells(outcome) -> set[tuple[int | None, str]]:
    return {(p.row, p.column) for p in outcome.problems}


def _bill(no: str, customer: str = "C0001", **overrides) -> str:
    values = {
        "period": "2024-03",
        "statement_date": "2024-03-01",
        "due_date": "2024-03-20",
        "statement_balance": "100.00",
        "amount_due": "100.00",
        "minimum_due": "10.00",
        "amount_paid": "0.00",
        "status": "open",
    } | overrides
    return ",".join(f'"{v}"' if "," in v else v for v in [no, customer, *values.values()]) + "\n"


# -- encodings and layouts --


def test_a_gbk_file_with_a_preamble_names_the_real_header_row(run_import):
    content = (FIXTURES / "customers_gbk_preamble_footer.csv").read_bytes()
    outcome = run_import("customers", content)
    assert not outcome.applied and Customer.objects.count() == 0
    assert "headers are on row 4" in outcome.problems[0].message


def test_a_gbk_file_with_header_row_and_skip_footer_options_imports_its_data_rows(run_import):
    content = (FIXTURES / "customers_gbk_preamble_footer.csv").read_bytes()
    refused = run_import("customers", content, header_row=4)
    assert (7, "") in _cells(refused) and "summary or footer" in refused.problems[0].message
    outcome = run_import("customers", content, header_row=4, skip_footer=True)
    assert outcome.applied, [str(p) for p in outcome.problems]
    assert outcome.encoding == "gb18030" and outcome.skipped_rows == [7]
    first = Customer.objects.get(customer_no="C0101")
    assert (first.name, first.phone, first.national_id, first.risk_tier) == (
        "赵六",
        "13800138000",
        "11010519491231002X",
        "low",
    )


def test_an_explicit_encoding_that_does_not_fit_names_the_line(run_import):
    content = "customer_no,name\nC0001,张三\n".encode("gbk")
    outcome = run_import("customers", content, encoding="utf-8")
    assert not outcome.applied and outcome.problems[0].row == 2


def test_a_gbk_file_read_with_encoding_gbk_imports(run_import):
    outcome = run_import("customers", CUSTOMERS_CSV.encode("gbk"), encoding="gbk")
    assert outcome.applied and Customer.objects.get(customer_no="C0002").name == "李四"


def test_an_xlsx_workbook_imports_text_ids_numbers_and_dates(run_import):
    customers = run_import("customers", (FIXTURES / "customers.xlsx").read_bytes(), filename="customers.xlsx")
    assert customers.applied, [str(p) for p in customers.problems]
    assert Customer.objects.get(customer_no="C0202").credit_score == 610
    bills = run_import("bills", (FIXTURES / "bills.xlsx").read_bytes(), filename="bills.xlsx")
    assert bills.applied, [str(p) for p in bills.problems]
    first, second = Bill.objects.get(bill_no="B0201"), Bill.objects.get(bill_no="B0202")
    assert (first.amount_due, first.minimum_due, first.statement_date) == (
        Decimal("1234.50"),
        Decimal("123.45"),
        dt.date(2024, 3, 1),
    )
    assert (second.statement_balance, second.status, second.statement_date) == (
        Decimal("-12.50"),
        "no_balance",
        dt.date(2024, 3, 1),
    )


def test_an_xlsx_national_id_that_excel_stored_as_a_number_is_refused(run_import):
    outcome = run_import(
        "customers", (FIXTURES / "customers_id_as_number.xlsx").read_bytes(), filename="customers.xlsx"
    )
    assert not outcome.applied and _cells(outcome) == {(2, "national_id")}
    assert "format this column as Text" in outcome.problems[0].message


# -- bad input --


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("   \n\n", "empty"),
        ("customer_no,name,phone,national_id,credit_score,risk_tier\n", "no data rows"),
        ("customer_no,name,nickname\nC0001,张三,小张\n", "Unknown column 'nickname'"),
        ("name,phone\n张三,13800138000\n", "required column customer_no"),
        ("customer_no,name,姓名\nC0001,张三,张三\n", "appears twice"),
    ],
    ids=["empty", "blank-lines", "header-only", "unknown-column", "missing-required", "duplicate-header"],
)
def test_a_file_that_cannot_be_a_customers_table_is_refused_with_a_clear_message(run_import, content, message):
    outcome = run_import("customers", content)
    assert not outcome.applied and Customer.objects.count() == 0
    assert any(message in p.message for p in outcome.problems), [str(p) for p in outcome.problems]


def test_an_unknown_column_is_named_on_the_header_row(run_import):
    outcome = run_import("customers", "customer_no,nickname\nC0001,x\n")
    assert _cells(outcome) == {(1, "nickname")}


def test_a_bill_for_a_customer_that_does_not_exist_names_the_cell(run_import, three_customers):
    outcome = run_import("bills", BILLS_HEADER + _bill("B1") + _bill("B2", "C9999"))
    assert not outcome.applied and Bill.objects.count() == 0
    [problem] = outcome.problems
    assert (problem.row, problem.column, problem.value) == (3, "customer_no", "C9999")
    assert "import the customer first" in problem.message


@pytest.mark.parametrize(
    ("overrides", "column"),
    [
        ({"amount_due": "-5.00", "statement_balance": "-5.00"}, "amount_due"),
        ({"amount_due": "999,999,999.00", "statement_balance": "999,999,999.00"}, "amount_due"),
        ({"due_date": "2024-02-20"}, "due_date"),
        ({"minimum_due": "200.00"}, "minimum_due"),
        ({"amount_due": "90.00"}, "amount_due"),
        ({"period": "2024-13"}, "period"),
        ({"status": "whatever"}, "status"),
    ],
    ids=["negative", "absurd", "due-before-statement", "minimum-above-due", "due-not-balance", "bad-month", "status"],
)
def test_a_bad_bill_row_is_refused_naming_row_column_and_value_and_nothing_is_applied(
    run_import, three_customers, overrides, column
):
    outcome = run_import("bills", BILLS_HEADER + _bill("B1") + _bill("B2", "C0002", **overrides))
    assert not outcome.applied and outcome.status == "rejected"
    assert Bill.objects.count() == 0 and CreditLine.objects.count() == 0
    assert (3, column) in _cells(outcome)
    problem = next(p for p in outcome.problems if p.column == column)
    if column in overrides:
        assert problem.value == overrides[column]


def test_a_customer_with_two_bills_for_one_month_is_refused(run_import, three_customers):
    outcome = run_import("bills", BILLS_HEADER + _bill("B1") + _bill("B2"))
    assert _cells(outcome) == {(2, "period"), (3, "period")}


def test_every_problem_of_a_file_is_reported_at_once(run_import):
    content = "customer_no,name,phone,national_id,credit_score,risk_tier\nC0001,张三,12345,4.40300E+17,1000,extreme\n"
    outcome = run_import("customers", content)
    assert _cells(outcome) == {(2, c) for c in ("phone", "national_id", "credit_score", "risk_tier")}


# -- integrity --


def test_reimporting_a_file_updates_rows_and_never_duplicates_them(run_import, three_customers):
    run_import("bills", BILLS_HEADER + _bill("B1"))
    second = run_import("bills", BILLS_HEADER + _bill("B1", amount_paid="40.00"))
    assert (second.created, second.updated) == (0, 1)
    assert Bill.objects.count() == 1 and Bill.objects.get().amount_paid == Decimal("40.00")
    again = run_import("customers", CUSTOMERS_CSV.replace("720,low", "720,high"))
    assert (again.created, again.updated, again.unchanged) == (0, 1, 2)
    assert Customer.objects.count() == 3 and Customer.objects.get(customer_no="C0001").risk_tier == "high"


def test_reimporting_a_statement_keeps_an_approved_extension(run_import, three_customers):
    run_import("bills", BILLS_HEADER + _bill("B1"))
    Bill.objects.filter(bill_no="B1").update(due_date=dt.date(2024, 3, 27))  # an extension moved it
    run_import("bills", BILLS_HEADER + _bill("B1", amount_paid="10.00"))
    bill = Bill.objects.get(bill_no="B1")
    assert (bill.due_date, bill.original_due_date) == (dt.date(2024, 3, 27), dt.date(2024, 3, 20))


def test_apply_valid_rows_applies_the_rest_and_reports_the_refused_rows(run_import, three_customers):
    content = BILLS_HEADER + _bill("B1") + _bill("B2", "C9999") + _bill("B3", "C0003")
    outcome = run_import("bills", content, apply_valid_rows=True)
    assert outcome.applied and outcome.status == "applied_valid_rows"
    assert sorted(Bill.objects.values_list("bill_no", flat=True)) == ["B1", "B3"]
    report = outcome.error_report().decode("utf-8-sig").splitlines()
    assert report[0] == "row,column,value,message" and report[1].startswith("3,customer_no,C9999,")


def test_a_dry_run_writes_nothing_and_reports_what_would_happen(run_import, three_customers):
    events = AuditEvent.objects.count()
    outcome = run_import("bills", BILLS_HEADER + _bill("B1") + _bill("B2", "C0002"), dry_run=True)
    assert outcome.status == "preview_ok" and outcome.created == 2
    assert Bill.objects.count() == 0 and CreditLine.objects.count() == 0
    assert AuditEvent.objects.count() == events


def test_a_bill_for_a_customer_without_a_credit_line_gets_a_zero_limit_line_and_a_note(run_import, three_customers):
    outcome = run_import("bills", BILLS_HEADER + _bill("B1"))
    line = CreditLine.objects.get(customer__customer_no="C0001")
    assert (line.credit_limit, line.available_credit, line.currency) == (Decimal("0.00"), Decimal("0.00"), "CNY")
    assert any("no credit line" in note for note in outcome.notes)


def test_a_credit_lines_file_sets_limits_and_available_credit_from_open_bills(run_import, three_customers):
    run_import("bills", BILLS_HEADER + _bill("B1", amount_paid="30.00"))
    outcome = run_import("credit-lines", '客户编号,授信额度,币种,状态\nC0001,"5,000",cny,正常\nC0002,800,CNY,冻结\n')
    assert outcome.applied, [str(p) for p in outcome.problems]
    line = CreditLine.objects.get(customer__customer_no="C0001")
    assert (line.credit_limit, line.available_credit, line.currency) == (
        Decimal("5000.00"),
        Decimal("4930.00"),
        "CNY",
    )
    assert CreditLine.objects.get(customer__customer_no="C0002").status == "frozen"


# -- personal data and audit --


def test_imported_personal_data_is_encrypted_at_rest_with_a_lookup_hash(run_import, three_customers):
    customer = Customer.objects.get(customer_no="C0001")
    assert customer.source == DataSource.IMPORT
    assert customer.phone_hash == pii_hash("13800138000") and customer.national_id_last4 == "002X"
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, phone, national_id FROM repayments_customer WHERE id = %s", [customer.pk])
        stored = cursor.fetchone()
    assert "张三" not in stored[0] and "13800138000" not in stored[1] and "002X" not in stored[2]


def test_every_import_applied_or_rejected_writes_an_audit_event_without_cell_values(run_import, analyst):
    applied = run_import("customers", CUSTOMERS_CSV, actor=analyst)
    rejected = run_import("customers", CUSTOMERS_CSV.replace("13912345678", "1.39123E+10"), actor=analyst)
    ok, refused = AuditEvent.objects.get(pk=applied.audit_event_id), AuditEvent.objects.get(pk=rejected.audit_event_id)
    assert (ok.action, ok.actor, ok.after["created"]) == ("data.import", analyst, 3)
    assert (refused.action, refused.after["problems"]) == ("data.import_rejected", 1)
    assert "1.39123E+10" not in str(refused.after) and "13800138000" not in str(ok.after)


# -- command line --


def test_the_import_command_exits_zero_when_applied_and_one_with_a_row_report(empty_domain, tmp_path, capsys):
    good = tmp_path / "customers.csv"
    good.write_bytes(CUSTOMERS_CSV.encode("gbk"))
    call_command("import_data", "customers", str(good))
    assert "applied: 3 rows (gb18030), 3 created" in capsys.readouterr().out
    bad = tmp_path / "bills.csv"
    bad.write_text(BILLS_HEADER + _bill("B1", due_date="2024-02-01"), encoding="utf-8")
    report = tmp_path / "errors.csv"
    with pytest.raises(SystemExit) as exit_info:
        call_command("import_data", "bills", str(bad), "--error-report", str(report))
    assert exit_info.value.code == 1
    assert "bills.csv: row 2, column due_date (value '2024-02-01'): The due date" in capsys.readouterr().err
    assert report.read_text(encoding="utf-8-sig").startswith("row,column,value,message\n2,due_date,2024-02-01,")
    assert Bill.objects.count() == 0


def test_the_import_command_dry_run_exits_zero_and_writes_nothing(empty_domain, tmp_path, capsys):
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS_CSV, encoding="utf-8")
    call_command("import_data", "customers", str(path), "--dry-run")
    assert "preview_ok" in capsys.readouterr().out and Customer.objects.count() == 0


def test_the_error_report_masks_personal_values_it_names(run_import):
    content = "customer_no,name,phone,national_id\nC0001,张三,1380013800,110105194912310021\n"
    outcome = run_import("customers", content)
    shown = {p.column: p.value for p in outcome.problems}
    assert shown == {"phone": "1*****3800", "national_id": "1*************0021"}
    report = outcome.error_report().decode("utf-8-sig")
    assert "110105194912310021" not in report and "1380013800" not in report
