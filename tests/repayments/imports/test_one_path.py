"""One import/export path (issue #15): one column and mask definition, writes through
services, every CSV through ``baitiao/csvfiles.py``, the audit trail through its API."""

from __future__ import annotations

import ast
import csv
import io
from pathlib import Path

import pytest
from django.db import connection

from accounts.models import AuditEvent
from accounts.services import AuditEntry, audit_record_many
from repayments.imports.columns import EXPORT_MASKS, RESOURCES
from repayments.imports.report import Problem, problems_csv
from repayments.imports.resources import RESOURCE_CLASSES
from repayments.models import CreditLine
from repayments.services.exports import export_headers, export_stream, template_file
from tests.repayments.imports.conftest import BILLS_HEADER

ROOT = Path(__file__).resolve().parents[3]
APP_CODE = [
    p for d in ("accounts", "baitiao", "repayments") for p in (ROOT / d).rglob("*.py") if "migrations" not in p.parts
]


def _calls(path: Path) -> list[str]:
    """The dotted names called in ``path`` (``CreditLine.objects.create``, ``csv.writer`` …)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            names.append(ast.unparse(node.func))
    return names


def test_no_resource_creates_or_saves_a_model_itself():
    resources = ROOT / "repayments" / "imports" / "resources.py"
    writes = [c for c in _calls(resources) if c.endswith((".objects.create", ".bulk_create", ".objects.update"))]
    assert writes == []


def test_a_bills_import_gives_a_customer_without_a_line_a_zero_line_through_the_service(run_import, three_customers):
    outcome = run_import("bills", BILLS_HEADER + "B1,C0001,2024-03,2024-03-01,2024-03-20,100,100,10,0,\n")
    assert outcome.applied, outcome.problems
    line = CreditLine.objects.get(customer__customer_no="C0001")
    assert (line.credit_limit, line.currency) == (0, "CNY") and any("no credit line" in n for n in outcome.notes)


def test_no_code_inserts_into_the_audit_table_with_raw_sql():
    offenders = [p.relative_to(ROOT) for p in APP_CODE if "INSERT INTO accounts_audit_event" in p.read_text()]
    assert offenders == []


def test_every_csv_is_written_by_the_one_writer():
    offenders = [
        p.relative_to(ROOT)
        for p in APP_CODE
        if p != ROOT / "baitiao" / "csvfiles.py" and any(c in ("csv.writer", "csv.DictWriter") for c in _calls(p))
    ]
    assert offenders == []


def test_exports_have_the_import_columns_and_the_masks_of_the_column_definitions():
    for resource, columns in RESOURCES.items():
        fields = {f.column_name for f in RESOURCE_CLASSES[resource]().get_export_fields()}
        assert set(export_headers(resource)) == fields - {"card_number"}
        assert EXPORT_MASKS.get(resource, {}) == {c.name: c.mask for c in columns if c.mask}
    assert set(EXPORT_MASKS["customers"]) == {"name", "phone", "national_id"}


def test_the_error_report_is_written_with_bom_crlf_and_neutralised_cells():
    report = problems_csv([Problem(3, "name", "=HYPERLINK(1)", "=bad"), Problem(None, "", "", "file")])
    assert report.startswith("\ufeff".encode()) and report.count(b"\r\n") == 3
    rows = list(csv.reader(io.StringIO(report.decode("utf-8-sig"))))
    assert rows[1] == ["3", "name", "'=HYPERLINK(1)", "'=bad"] and rows[2] == ["", "", "", "file"]


def test_a_streamed_export_and_a_template_are_written_with_bom_and_crlf(three_customers, analyst):
    body = b"".join(export_stream(resource="customers", actor=analyst))
    assert body.startswith("\ufeff".encode()) and b"\r\n" in body and b"\n" not in body.replace(b"\r\n", b"")
    assert b"138****8000" in body
    assert template_file("bills") == ("\ufeff" + ",".join(export_headers("bills", chinese=True)) + "\r\n").encode()


@pytest.mark.django_db
def test_many_audit_events_are_appended_in_bulk_and_stay_append_only(analyst):
    entries = [AuditEntry("repayments.bill", str(n), f"C{n}", {"due": "a"}, {"due": "b"}) for n in range(2_500)]
    assert audit_record_many(actor=analyst, action="test.bulk", entries=entries, request_id="batch-1") == 2_500
    events = AuditEvent.objects.filter(action="test.bulk")
    assert events.count() == 2_500 and {e.actor_label for e in events} == {analyst.username}
    assert events.get(target_id="7").after == {"due": "b"}
    with pytest.raises(Exception, match="(?i)protect|cannot|denied|trigger"), connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_audit_event SET reason = 'x' WHERE action = 'test.bulk'")


# A few messages of each resource's cross-field rules: they live in the import rules
# service, and a resource only parses cells and hands the row to it.
RULE_MESSAGES = (
    "No customer has customer_no",
    "A card number cannot be bound from a file",
    "is bound to customer",
    "already has an active card",
    "an import never lowers the amount paid",
    "is before the statement date",
    "must equal the statement balance",
    "already has bill",
    "nothing is left to carry",
    "A failed attempt needs the bank's failure code.",
    "The attempt completed before it was requested.",
    "already has attempt",
)


def test_no_resource_defines_a_business_rule_only_the_import_rules_service_does():
    from repayments.services import import_rules

    resources_source = (ROOT / "repayments" / "imports" / "resources.py").read_text()
    rules_source = Path(import_rules.__file__).read_text()
    assert [m for m in RULE_MESSAGES if m in resources_source] == []
    assert [m for m in RULE_MESSAGES if m not in rules_source] == []


def test_every_resource_complete_is_one_call_to_the_import_rules_service():
    tree = ast.parse((ROOT / "repayments" / "imports" / "resources.py").read_text())
    bodies = {
        node.name: method.body
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        for method in node.body
        if isinstance(method, ast.FunctionDef) and method.name == "complete"
    }
    subclasses = {cls.__name__ for cls in RESOURCE_CLASSES.values()}
    assert subclasses <= set(bodies)
    for name in subclasses:
        statements = [s for s in bodies[name] if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        assert len(statements) == 1, name
        call = statements[0].value
        assert isinstance(call, ast.Call) and ast.unparse(call.func).startswith("import_rules."), name
