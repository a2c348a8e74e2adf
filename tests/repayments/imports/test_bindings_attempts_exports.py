"""Card bindings and repayment attempts from files; exports masked, formula-safe and audited."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command

from accounts.models import AuditEvent
from repayments.models import CardBinding, RepaymentAttempt
from repayments.services.exports import data_export, template_file
from tests.repayments.imports.conftest import BILLS_HEADER

BINDINGS_HEADER = "customer_no,gateway_token,bin,last4,bank_name,reserved_phone,status\n"
ATTEMPTS_HEADER = "扣款编号,账单编号,渠道,金额,状态,失败代码,发起时间,完成时间\n"


@pytest.fixture
def one_bill(run_import, three_customers):
    outcome = run_import(
        "bills",
        BILLS_HEADER + "B1,C0001,2024-03,2024-03-01,2024-03-20,-12.50,0.00,0.00,0.00,open\n"
        "B2,C0002,2024-03,2024-03-01,2024-03-20,100.00,100.00,10.00,0.00,open\n",
    )
    assert outcome.applied, [str(p) for p in outcome.problems]


def _export(resource: str, **options) -> list[list[str]]:
    out = io.BytesIO()
    data_export(resource=resource, out=out, **options)
    return list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"))))


# -- card bindings --


def test_a_binding_by_gateway_token_keeps_leading_zeros_and_fills_the_bank_from_the_bin(run_import, three_customers):
    outcome = run_import("card-bindings", BINDINGS_HEADER + "C0001,tok_0001,622202,0123,,+8613800138000,有效\n")
    assert outcome.applied, [str(p) for p in outcome.problems]
    binding = CardBinding.objects.get(gateway_token="tok_0001")
    assert (binding.last4, binding.bank_name, binding.bank_code, binding.status) == (
        "0123",
        "中国工商银行",
        "ICBC",
        "active",
    )
    assert (binding.reserved_phone, binding.reserved_phone_last4) == ("13800138000", "8000")


@pytest.mark.parametrize(
    ("card_number", "message"),
    [
        ("6216261000000000018", "cannot be bound from a file"),
        ("6.22848E+18", "damaged by a spreadsheet"),
        ("6216261000000000019", "check digit is wrong"),
    ],
)
def test_a_full_card_number_is_checked_and_refused_and_never_stored(run_import, three_customers, card_number, message):
    outcome = run_import("card-bindings", f"客户编号,卡号,预留手机号\nC0001,{card_number},13552535506\n")
    assert not outcome.applied and CardBinding.objects.count() == 0
    [problem] = outcome.problems
    assert (problem.row, problem.column) == (2, "card_number") and message in problem.message


def test_a_second_active_card_for_a_customer_is_refused_unless_the_file_retires_the_first(run_import, three_customers):
    run_import("card-bindings", BINDINGS_HEADER + "C0001,tok_a,622202,1111,,,active\n")
    refused = run_import("card-bindings", BINDINGS_HEADER + "C0001,tok_b,622202,2222,,,active\n")
    assert (2, "status") in {(p.row, p.column) for p in refused.problems}
    accepted = run_import(
        "card-bindings", BINDINGS_HEADER + "C0001,tok_a,622202,1111,,,replaced\nC0001,tok_b,622202,2222,,,active\n"
    )
    assert accepted.applied, [str(p) for p in accepted.problems]
    assert dict(CardBinding.objects.values_list("gateway_token", "status")) == {"tok_a": "replaced", "tok_b": "active"}


# -- repayment attempts --


def test_attempts_with_chinese_headers_and_statuses_import_with_their_failure_family(run_import, one_bill):
    outcome = run_import(
        "repayment-attempts",
        ATTEMPTS_HEADER + "A1,B2,自动扣款,100.00,扣款失败,insufficient_funds,2024/3/20 9:00,2024/3/20 9:01\n"
        "A2,B2,客服,100.00,成功,,2024-03-21 10:00:00,2024-03-21 10:00:05\n",
    )
    assert outcome.applied, [str(p) for p in outcome.problems]
    failed = RepaymentAttempt.objects.get(attempt_no="A1")
    assert (failed.status, failed.failure_family, failed.channel) == ("failed", "funds", "auto_debit")
    assert RepaymentAttempt.objects.get(attempt_no="A2").amount == Decimal("100.00")


def test_a_failed_attempt_without_a_code_and_two_in_flight_attempts_are_refused(run_import, one_bill):
    outcome = run_import(
        "repayment-attempts",
        ATTEMPTS_HEADER + "A1,B2,,100.00,失败,,2024-03-20 09:00,2024-03-20 09:01\n"
        "A2,B2,,100.00,处理中,,2024-03-20 09:00,\n"
        "A3,B2,,100.00,处理中,,2024-03-20 09:00,\n",
    )
    cells = {(p.row, p.column) for p in outcome.problems}
    assert {(2, "failure_code"), (3, "status"), (4, "status")} <= cells
    assert RepaymentAttempt.objects.count() == 0


# -- exports --


def test_an_export_masks_personal_data_by_default_and_is_audited(three_customers, analyst):
    rows = _export("customers", actor=analyst)
    assert rows[0] == ["customer_no", "name", "phone", "national_id", "credit_score", "risk_tier"]
    assert rows[1] == ["C0001", "张*", "138****8000", "1*************002X", "720", "low"]
    event = AuditEvent.objects.filter(action="data.export").latest("pk")
    assert event.actor == analyst and event.after == {
        "resource": "customers",
        "format": "csv",
        "masked": True,
        "rows": 3,
    }


def test_an_unmasked_export_needs_the_permission_and_a_reason(three_customers, analyst, admin_user):
    with pytest.raises(PermissionDenied, match="permission"):
        _export("customers", actor=analyst, unmask=True, reason="audit request")
    with pytest.raises(PermissionDenied, match="reason"):
        _export("customers", actor=admin_user, unmask=True, reason="  ")
    rows = _export("customers", actor=admin_user, unmask=True, reason="regulator request #12")
    assert rows[1][:4] == ["C0001", "张三", "13800138000", "11010519491231002X"]
    event = AuditEvent.objects.get(action="data.export_unmasked")
    assert (event.actor, event.reason) == (admin_user, "regulator request #12")


def test_an_export_neutralises_formulas_but_keeps_negative_amounts(run_import, one_bill, admin_user):
    run_import("customers", 'customer_no,name\nC0001,"=HYPERLINK(""http://evil.example"",""x"")"\n')
    rows = _export("customers", actor=admin_user, unmask=True, reason="check")
    assert rows[1][1] == '\'=HYPERLINK("http://evil.example","x")'
    bills = _export("bills", actor=admin_user)
    assert bills[1][:2] == ["B1", "C0001"] and bills[1][5] == "-12.50"


def test_an_exported_file_imports_back_unchanged(run_import, one_bill, admin_user):
    exported = io.BytesIO()
    data_export(resource="bills", out=exported, actor=admin_user)
    outcome = run_import("bills", exported.getvalue())
    assert outcome.applied and (outcome.created, outcome.updated, outcome.unchanged) == (0, 0, 2)


def test_an_xlsx_export_holds_ids_and_phones_as_text(three_customers, admin_user):
    from openpyxl import load_workbook

    out = io.BytesIO()
    data_export(resource="customers", out=out, actor=admin_user, fmt="xlsx", unmask=True, reason="check")
    sheet = load_workbook(io.BytesIO(out.getvalue()), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[2][2:4] == ("13912345678", "440300199003071234")


def test_the_export_command_masks_by_default_and_refuses_unmask_without_a_reason(three_customers, tmp_path, admin_user):
    out = tmp_path / "customers.csv"
    call_command("export_data", "customers", "--out", str(out))
    assert "138****8000" in out.read_text(encoding="utf-8-sig")
    with pytest.raises(CommandError, match="--reason"):
        call_command("export_data", "customers", "--out", str(out), "--unmask", "--actor", admin_user.username)


def test_a_template_file_has_the_chinese_headers():
    assert template_file("bills").decode("utf-8-sig").startswith("账单编号,客户编号,账期,账单日,到期日")


def test_a_large_export_streams_every_row_once_and_whole(analyst):
    from repayments.models import Bill

    rows = _export("bills", actor=analyst)  # the session's UCI bills: many streamed chunks
    assert len(rows) - 1 == Bill.objects.count() > 100_000
    assert all(len(row) == 10 for row in rows)
    assert len({row[0] for row in rows[1:]}) == len(rows) - 1
