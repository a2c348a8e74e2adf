"""Re-importing an unchanged export writes nothing: rows are "unchanged" and keep their version (issue #14).

An agent holding a page sends its ``updated_at`` (the API's ``version``) back; an
import that rewrote unchanged rows would make every such request a 409.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from repayments.models import Bill, CardBinding, CreditLine, Customer, ImportJob, ImportJobStatus, RepaymentAttempt
from repayments.services.credit_lines import credit_lines_refresh_available
from repayments.services.exports import data_export
from repayments.services.imports import data_import
from tests.repayments.imports.conftest import BILLS_HEADER

SAMPLE = 300  # UCI customers (and their ~1,800 bills)


def _export(resource: str, queryset, **options) -> bytes:
    out = io.BytesIO()
    data_export(resource=resource, out=out, actor=None, queryset=queryset, **options)
    return out.getvalue()


def _import(resource: str, content: bytes, **options):
    outcome = data_import(resource=resource, content=content, actor=None, filename=f"{resource}.csv", **options)
    assert not outcome.problems, [str(p) for p in outcome.problems[:5]]
    return outcome


def _versions(queryset) -> dict[int, dt.datetime]:
    return dict(queryset.values_list("pk", "updated_at"))


@pytest.fixture
def uci_sample(db) -> list[int]:
    """A few hundred real UCI customers, as loaded."""
    ids = list(Customer.objects.filter(customer_no__startswith="UCI-").order_by("pk").values_list("pk", flat=True))
    ids = ids[:SAMPLE]
    # The loader and the rule agree (limit − principal owed; fees use no credit): nothing to refresh.
    assert credit_lines_refresh_available(customer_ids=ids) == 0
    return ids


@pytest.mark.parametrize("fast_path", [False, True], ids=["resources", "fast-path"])
def test_exported_bills_of_uci_customers_import_back_as_unchanged_and_keep_their_version(uci_sample, fast_path):
    bills = Bill.objects.filter(customer_id__in=uci_sample).order_by("pk")
    before = _versions(bills)
    assert len(before) >= SAMPLE * 5
    content = _export("bills", bills)
    preview = _import("bills", content, dry_run=True, fast_path=fast_path)
    assert (preview.created, preview.updated, preview.unchanged) == (0, 0, len(before))
    outcome = _import("bills", content, fast_path=fast_path)
    assert outcome.applied and outcome.fast_path == fast_path
    assert (outcome.created, outcome.updated, outcome.unchanged) == (0, 0, len(before))
    assert outcome.summary()["unchanged"] == len(before)
    assert _versions(bills) == before


def test_exported_customers_masked_by_default_import_back_as_unchanged_and_keep_their_version(uci_sample):
    customers = Customer.objects.filter(pk__in=uci_sample).order_by("pk")
    before = _versions(customers)
    stored = {c.pk: (c.name, c.phone, c.national_id) for c in customers}
    content = _export("customers", customers)
    assert "****" in content.decode("utf-8-sig")  # masked: the phones are not in the file
    outcome = _import("customers", content)
    assert (outcome.created, outcome.updated, outcome.unchanged) == (0, 0, SAMPLE)
    assert _versions(customers) == before
    assert {c.pk: (c.name, c.phone, c.national_id) for c in customers} == stored


def test_exported_credit_lines_import_back_as_unchanged_and_keep_their_version(uci_sample):
    lines = CreditLine.objects.filter(customer_id__in=uci_sample).order_by("pk")
    before = _versions(lines)
    outcome = _import("credit-lines", _export("credit-lines", lines))
    assert (outcome.created, outcome.updated, outcome.unchanged) == (0, 0, SAMPLE)
    assert _versions(lines) == before


def test_exported_card_bindings_and_attempts_import_back_as_unchanged_masked_tokens_included(uci_sample):
    bindings = CardBinding.objects.filter(customer_id__in=uci_sample).order_by("pk")
    attempts = RepaymentAttempt.objects.filter(bill__customer_id__in=uci_sample).order_by("pk")
    # The gateway records microseconds; a file shows whole seconds.
    first = attempts[0]
    RepaymentAttempt.objects.filter(pk=first.pk).update(requested_at=first.requested_at + dt.timedelta(microseconds=1))
    before = (_versions(bindings), _versions(attempts))
    content = _export("card-bindings", bindings)
    assert bindings[0].gateway_token not in content.decode("utf-8-sig")
    outcome = _import("card-bindings", content)
    assert (outcome.created, outcome.updated, outcome.unchanged) == (0, 0, len(before[0]))
    for fast_path in (False, True):
        outcome = _import("repayment-attempts", _export("repayment-attempts", attempts), fast_path=fast_path)
        assert (outcome.created, outcome.updated, outcome.unchanged) == (0, 0, len(before[1]))
    assert (_versions(bindings), _versions(attempts)) == before


@pytest.mark.parametrize("fast_path", [False, True], ids=["resources", "fast-path"])
def test_an_exported_bill_moved_by_an_extension_imports_back_unchanged(run_import, three_customers, fast_path):
    run_import("bills", BILLS_HEADER + "B1,C0001,2024-03,2024-03-01,2024-03-20,100.00,100.00,10.00,0.00,open\n")
    Bill.objects.filter(bill_no="B1").update(due_date=dt.date(2024, 3, 27))  # an approved extension
    before = Bill.objects.values_list("due_date", "original_due_date", "updated_at").get()
    outcome = run_import("bills", _export("bills", Bill.objects.all()), fast_path=fast_path)
    assert (outcome.created, outcome.updated, outcome.unchanged) == (0, 0, 1)
    assert Bill.objects.values_list("due_date", "original_due_date", "updated_at").get() == before


@pytest.mark.parametrize("fast_path", [False, True], ids=["resources", "fast-path"])
def test_reimporting_a_statement_file_that_says_open_after_the_bill_turned_overdue_changes_nothing(
    run_import, three_customers, fast_path
):
    content = BILLS_HEADER + "B1,C0001,2024-03,2024-03-01,2024-03-20,100.00,100.00,10.00,0.00,open\n"
    run_import("bills", content, fast_path=fast_path)
    before = Bill.objects.values_list("status", "dpd", "updated_at").get()
    assert before[0] == "overdue"  # aged right after the import
    again = run_import("bills", content, fast_path=fast_path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    assert Bill.objects.values_list("status", "dpd", "updated_at").get() == before


def test_a_changed_row_among_unchanged_ones_is_the_only_one_updated(run_import, three_customers):
    customers = Customer.objects.order_by("pk")
    before = _versions(customers)
    content = _export("customers", customers).decode("utf-8-sig").replace(",720,low", ",720,high")
    outcome = run_import("customers", content)
    assert (outcome.created, outcome.updated, outcome.unchanged) == (0, 1, 2)
    after = _versions(customers)
    changed = Customer.objects.get(customer_no="C0001")
    assert changed.risk_tier == "high" and after[changed.pk] > before[changed.pk]
    assert {pk: at for pk, at in after.items() if pk != changed.pk} == {
        pk: at for pk, at in before.items() if pk != changed.pk
    }


def test_the_commands_report_an_unchanged_export_as_unchanged(run_import, three_customers, tmp_path, capsys):
    run_import("bills", BILLS_HEADER + "B1,C0001,2024-03,2024-03-01,2024-03-20,100.00,100.00,10.00,0.00,open\n")
    path = tmp_path / "bills.csv"
    call_command("export_data", "bills", "--out", str(path))
    capsys.readouterr()
    call_command("import_data", "bills", str(path), "--dry-run")
    assert "preview_ok: 1 rows (utf-8-sig), 0 created, 0 updated, 1 unchanged, 0 problems" in capsys.readouterr().out


def test_the_console_job_page_shows_how_many_rows_were_unchanged(client, analyst, three_customers):
    client.force_login(analyst)
    upload = SimpleUploadedFile("customers.csv", _export("customers", Customer.objects.order_by("pk")))
    response = client.post(reverse("data:import"), {"resource": "customers", "encoding": "auto", "file": upload})
    job = ImportJob.objects.latest("pk")
    assert job.status == ImportJobStatus.APPLIED
    assert (job.summary["created"], job.summary["updated"], job.summary["unchanged"]) == (0, 0, 3)
    page = client.get(response.url).content.decode()
    assert "<dt>Unchanged</dt><dd>3</dd>" in page


# -- masked cells --


def test_a_masked_value_that_is_not_the_stored_values_mask_is_refused_naming_the_cell(run_import, three_customers):
    outcome = run_import("customers", "customer_no,name,phone\nC0001,张*,139****8000\n")
    assert not outcome.applied
    [problem] = outcome.problems
    assert (problem.row, problem.column) == (2, "phone") and "masked value" in problem.message
    assert "138****8000" in problem.message  # what the stored phone looks like masked, never in clear
    assert Customer.objects.get(customer_no="C0001").phone == "13800138000"


def test_a_masked_value_for_a_new_customer_is_refused(run_import, three_customers):
    outcome = run_import("customers", "customer_no,name,national_id\nC0009,赵*,1*************002X\n")
    assert {(p.row, p.column) for p in outcome.problems} == {(2, "name"), (2, "national_id")}
    assert all("no stored value" in p.message for p in outcome.problems)
    assert not Customer.objects.filter(customer_no="C0009").exists()


def test_a_masked_cell_keeps_the_stored_value_while_a_clear_one_beside_it_is_imported(run_import, three_customers):
    outcome = run_import("customers", "customer_no,name,phone,national_id\nC0001,张*,13900001111,1*************002X\n")
    assert (outcome.updated, outcome.unchanged) == (1, 0), [str(p) for p in outcome.problems]
    customer = Customer.objects.get(customer_no="C0001")
    assert (customer.name, customer.phone, customer.phone_last4, customer.national_id) == (
        "张三",
        "13900001111",
        "1111",
        "11010519491231002X",
    )


def test_a_masked_gateway_token_that_matches_no_binding_of_the_customer_is_refused(run_import, three_customers):
    run_import("card-bindings", "customer_no,gateway_token,bin,last4,status\nC0001,tok_00001234,622202,0123,active\n")
    outcome = run_import(
        "card-bindings", "customer_no,gateway_token,bin,last4,status\nC0002,tok_****1234,622202,0123,invalid\n"
    )
    assert not outcome.applied and (2, "gateway_token") in {(p.row, p.column) for p in outcome.problems}
    assert list(CardBinding.objects.values_list("gateway_token", flat=True)) == ["tok_00001234"]
