"""Incidents that help (issue #16): banks named one way, no start in the future, withdraw,
the affected bills listed and exported, relief in the approvals inbox, live status, impact figures."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.core.cache import cache
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone, translation
from django_q.models import OrmQ

from accounts.models import AuditEvent
from repayments.bins import BankCode, bank_choices, bank_label
from repayments.forms import IncidentDeclareForm
from repayments.models import (
    Bill,
    FailureFamily,
    Incident,
    IncidentStatus,
    ReliefBatch,
    ReliefStatus,
)
from repayments.selectors import incidents as incident_selectors
from repayments.selectors.dashboard import DashboardFilters, dashboard_sections, filter_choices
from repayments.selectors.incidents import incidents_open_banner
from repayments.services.dashboard import dashboard_refresh
from repayments.services.errors import RuleViolation
from repayments.services.incidents import (
    CLOCK_SKEW,
    incident_declare,
    incident_withdraw,
    relief_approve,
    relief_request,
    relief_reverse,
    relief_run,
)
from tests.factories import CardBindingFactory
from tests.repayments.api.conftest import token_client
from tests.repayments.test_incidents import (
    BANK,
    END,
    OTHER_BANK,
    START,
    approved_and_run,
    failed_bill,
    other_supervisor,
    resolved_incident,
)

pytestmark = pytest.mark.django_db
# A fixed present for the rules that compare with "now" (passed as now=, docs/testing.md).
NOW = dt.datetime(2026, 12, 7, 6, 0, tzinfo=dt.UTC)


def system_bills(n: int = 3) -> list[Bill]:
    return [failed_bill(FailureFamily.SYSTEM, "bank_system_error") for _ in range(n)]


def declare_open(supervisor, *, bank: str = BANK) -> Incident:
    return incident_declare(
        declared_by=supervisor,
        bank_code=bank,
        channel="",
        started_at=START,
        ended_at=None,
        description="core banking down",
    )


# --- banks named one way --------------------------------------------------------------


def test_a_bank_is_labelled_in_the_readers_language_and_an_unknown_code_stays_as_it_is():
    assert bank_label("ICBC", "zh-hans") == "中国工商银行"
    assert bank_label("icbc", "en") == "Industrial and Commercial Bank of China"
    assert bank_label("KMRCU", "en") == "昆明农村信用联合社 (KMRCU)"  # no English name on file
    assert bank_label("XYZBANK", "en") == "XYZBANK"
    template = Template("{% load console %}{{ code|bank_label }}|{{ none|bank_label|default:'-' }}")
    for language, expected in (("en", "China Merchants Bank|-"), ("zh-hans", "招商银行|-")):
        with translation.override(language):
            assert template.render(Context({"code": "CMB", "none": ""})) == expected


def test_a_bank_code_that_exists_nowhere_is_refused_by_the_service_naming_it(supervisor):
    with pytest.raises(RuleViolation, match="XYZBANK") as caught:
        incident_declare(
            declared_by=supervisor,
            bank_code="xyzbank",
            channel="",
            started_at=START,
            ended_at=END,
            description="typo",
            now=NOW,
        )
    assert caught.value.field == "bank_code"
    assert not Incident.objects.filter(bank_code="XYZBANK").exists()


def test_the_declare_form_offers_only_known_banks_and_refuses_another_naming_it(client, supervisor):
    CardBindingFactory(bank_code="CMB", bank_name="招商银行")
    cache.delete("repayments:bank_codes")
    with translation.override("en"):
        choices = dict(IncidentDeclareForm().fields["bank_code"].choices)
    ours = dict(choices["Banks of our customers' cards"])
    assert ours["CMB"] == "China Merchants Bank" and "ICBC" in ours
    assert "KMRCU" in dict(choices["Other banks"]) and "XYZBANK" not in ours
    client.force_login(supervisor)
    response = client.post(
        reverse("console:incident-declare"),
        {"bank_code": "XYZBANK", "started_at": "2026-12-01T10:00", "description": "typo"},
    )
    assert response.status_code == 200
    assert "“XYZBANK” is not a bank we know" in response.content.decode()
    assert not Incident.objects.filter(bank_code="XYZBANK").exists()


def test_the_api_refuses_a_bank_code_that_exists_nowhere_naming_the_field_and_the_value(supervisor):
    response = token_client(supervisor).post(
        reverse("api:incident-list"),
        {"bank_code": "XYZBANK", "started_at": "2026-11-30T09:00:00", "description": "typo"},
    )
    assert response.status_code in (400, 422), response.content
    assert "bank_code" in response.content.decode() and "XYZBANK" in response.content.decode()
    assert not Incident.objects.filter(bank_code="XYZBANK").exists()


def test_the_dashboard_bank_filter_lists_only_known_banks_by_their_label(client, supervisor):
    CardBindingFactory(bank_code="XYZBANK", bank_name="")
    CardBindingFactory(bank_code="CMB", bank_name="招商银行")
    dashboard_refresh(trigger="command")
    banks = filter_choices().banks
    assert "CMB" in banks and "XYZBANK" not in banks
    client.force_login(supervisor)
    page = client.get(reverse("console:dashboard")).content.decode()
    assert '<option value="CMB" >China Merchants Bank</option>' in page
    assert 'value="XYZBANK"' not in page


def test_worklist_bank_filter_offers_known_banks_by_label():
    CardBindingFactory(bank_code="XYZBANK", bank_name="")
    CardBindingFactory(bank_code="CMB", bank_name="招商银行")
    cache.delete("repayments:bank_codes")
    with translation.override("en"):
        offered = dict(bank_choices())
    assert offered["CMB"] == "China Merchants Bank" and "XYZBANK" not in offered


# --- a start in the future ---------------------------------------------------------------


def test_a_start_in_the_future_is_refused_naming_it_within_a_small_tolerance_for_clock_skew(supervisor):
    month_ahead = NOW + dt.timedelta(days=30)
    with pytest.raises(RuleViolation, match="2027-01-06 14:00 is in the future") as caught:
        incident_declare(
            declared_by=supervisor,
            bank_code=BANK,
            channel="",
            started_at=month_ahead,
            ended_at=None,
            description="typed the wrong month",
            now=NOW,
        )
    assert caught.value.field == "started_at"
    assert not Incident.objects.filter(bank_code=BANK).exists()
    # A supervisor's clock a little ahead of ours is not a mistake.
    incident = incident_declare(
        declared_by=supervisor,
        bank_code=BANK,
        channel="",
        started_at=NOW + CLOCK_SKEW - dt.timedelta(seconds=1),
        ended_at=None,
        description="just now",
        now=NOW,
    )
    assert incident.status == IncidentStatus.OPEN


def test_an_end_in_the_future_is_refused_too(supervisor):
    with pytest.raises(RuleViolation, match="is in the future") as caught:
        incident_declare(
            declared_by=supervisor,
            bank_code=BANK,
            channel="",
            started_at=NOW - dt.timedelta(hours=1),
            ended_at=NOW + dt.timedelta(hours=1),
            description="planned maintenance",
            now=NOW,
        )
    assert caught.value.field == "ended_at"


def test_the_declare_form_shows_the_future_start_on_its_field(client, supervisor):
    client.force_login(supervisor)
    start = timezone.localtime(timezone.now() + dt.timedelta(days=30))
    response = client.post(
        reverse("console:incident-declare"),
        {"bank_code": BANK, "started_at": start.strftime("%Y-%m-%dT%H:%M"), "description": "wrong month"},
    )
    page = response.content.decode()
    assert response.status_code == 200 and f"{start:%Y-%m-%d %H:%M} is in the future" in page
    assert not Incident.objects.filter(bank_code=BANK).exists()


# --- withdraw ----------------------------------------------------------------------------


def test_withdrawing_an_open_incident_undoes_its_effects_and_is_audited(supervisor):
    bills = system_bills(2)
    incident = declare_open(supervisor)
    for bill in bills:  # opening it backed their retries off to the cap
        bill.refresh_from_db()
        assert bill.retry_at > timezone.now() + dt.timedelta(minutes=30)
    cache.clear()
    assert [row["pk"] for row in incidents_open_banner()] == [incident.pk]
    before = timezone.now()

    incident_withdraw(incident_id=incident.pk, withdrawn_by=supervisor, reason="declared on the wrong bank")

    incident.refresh_from_db()
    assert incident.status == IncidentStatus.WITHDRAWN and incident.withdrawn_by == supervisor
    assert incident.withdraw_reason == "declared on the wrong bank"
    for bill in bills:
        bill.refresh_from_db()
        assert bill.retry_at <= timezone.now() and bill.retry_at >= before  # retried now
    cache.clear()  # on_commit never fires inside the test's transaction: the cache clear is tested by the browser
    assert incidents_open_banner() == []
    event = AuditEvent.objects.get(action="incident.withdraw", target_id=str(incident.pk))
    assert event.actor == supervisor and event.reason == "declared on the wrong bank"
    assert event.before["status"] == "open" and event.after["status"] == "withdrawn"
    assert event.after["bills_retried"] == 2
    # It covers nothing now: the same window can be declared again, and it takes no relief.
    again = declare_open(supervisor)
    assert again.status == IncidentStatus.OPEN
    with pytest.raises(RuleViolation, match="Resolve the incident first"):
        relief_request(incident_id=incident.pk, requested_by=supervisor, days=7)


def test_withdrawing_one_incident_leaves_the_bills_another_open_incident_shields(supervisor):
    ours = failed_bill(FailureFamily.SYSTEM, "bank_system_error")
    theirs = failed_bill(FailureFamily.SYSTEM, "bank_system_error", bank=OTHER_BANK)
    mistaken = declare_open(supervisor)
    declare_open(supervisor, bank=OTHER_BANK)
    incident_withdraw(incident_id=mistaken.pk, withdrawn_by=supervisor, reason="declared on the wrong bank")
    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert ours.retry_at <= timezone.now() < theirs.retry_at - dt.timedelta(minutes=30)


def test_withdrawing_cancels_a_relief_batch_awaiting_approval(supervisor):
    system_bills(2)
    incident = resolved_incident(supervisor)
    batch = relief_request(incident_id=incident.pk, requested_by=supervisor, days=7)
    incident_withdraw(incident_id=incident.pk, withdrawn_by=supervisor, reason="the bank says it was up")
    batch.refresh_from_db()
    assert batch.status == ReliefStatus.CANCELLED
    cancel = AuditEvent.objects.get(action="relief.cancel", target_id=str(batch.pk))
    assert cancel.request_id == str(batch.audit_id) and cancel.reason == "the bank says it was up"
    with pytest.raises(RuleViolation, match="not awaiting approval"):
        relief_approve(batch_id=batch.pk, approved_by=other_supervisor())


def test_withdrawing_is_refused_while_relief_is_applied_and_allowed_once_it_is_reversed(supervisor):
    system_bills(2)
    incident = resolved_incident(supervisor)
    batch = approved_and_run(incident, supervisor)
    assert batch.status == ReliefStatus.DONE
    with pytest.raises(RuleViolation, match=f"Relief {batch.pk} is Applied: reverse it"):
        incident_withdraw(incident_id=incident.pk, withdrawn_by=supervisor, reason="declared by mistake")
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    relief_reverse(batch_id=batch.pk, reversed_by=supervisor, reason="declared by mistake")
    incident_withdraw(incident_id=incident.pk, withdrawn_by=supervisor, reason="declared by mistake")
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.WITHDRAWN


def test_withdraw_needs_a_reason_the_permission_and_happens_once(supervisor, agent):
    incident = declare_open(supervisor)
    with pytest.raises(RuleViolation, match="at least five") as caught:
        incident_withdraw(incident_id=incident.pk, withdrawn_by=supervisor, reason="oops")
    assert caught.value.field == "reason"
    with pytest.raises(RuleViolation, match="may not withdraw"):
        incident_withdraw(incident_id=incident.pk, withdrawn_by=agent, reason="declared by mistake")
    incident_withdraw(incident_id=incident.pk, withdrawn_by=supervisor, reason="declared by mistake")
    with pytest.raises(RuleViolation, match="already been withdrawn"):
        incident_withdraw(incident_id=incident.pk, withdrawn_by=supervisor, reason="declared by mistake")


def test_the_incident_page_withdraws_with_a_reason(client, supervisor):
    incident = declare_open(supervisor)
    client.force_login(supervisor)
    url = reverse("console:incident-withdraw", args=[incident.pk])
    client.post(url, {"withdraw-reason": "no"})
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.OPEN
    response = client.post(url, {"withdraw-reason": "declared on the wrong bank"}, follow=True)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.WITHDRAWN
    page = response.content.decode()
    assert "Incident withdrawn" in page and "declared on the wrong bank" in page
    assert 'data-testid="withdraw-incident"' not in page  # no second withdraw
    assert "A withdrawn incident takes no relief." in page and 'data-testid="relief-request-form"' not in page


def test_incidents_are_in_the_admin_read_only(client, admin_user, supervisor):
    incident = declare_open(supervisor)
    client.force_login(admin_user)
    assert client.get(reverse("admin:repayments_incident_changelist")).status_code == 200
    change = client.get(reverse("admin:repayments_incident_change", args=[incident.pk]))
    assert change.status_code == 200 and 'name="_save"' not in change.content.decode()
    assert client.get(reverse("admin:repayments_reliefbatch_changelist")).status_code == 200


# --- affected bills ----------------------------------------------------------------------


def test_the_incident_page_lists_the_affected_bills_with_links_page_by_page(client, supervisor, monkeypatch):
    bills = system_bills(3)
    incident = resolved_incident(supervisor)
    monkeypatch.setattr(incident_selectors, "AFFECTED_PAGE_SIZE", 2)
    client.force_login(supervisor)
    url = reverse("console:incident-detail", args=[incident.pk])
    first = client.get(url).content.decode()
    second = client.get(url, {"page": "2"}).content.decode()
    ordered = sorted(bills, key=lambda bill: bill.pk)
    for bill in ordered[:2]:
        customer_url = reverse("console:customer-detail", args=[bill.customer.customer_no])
        assert f'href="{customer_url}#bill-{bill.bill_no}"' in first and f'href="{customer_url}"' in first
    assert ordered[2].bill_no not in first and ordered[2].bill_no in second
    assert 'data-testid="affected-next"' in first and 'data-testid="affected-next"' not in second
    assert client.get(url, {"page": "3"}).status_code == 404


def test_the_affected_bills_export_is_masked_names_bank_codes_and_audited_with_its_rows(client, supervisor):
    bills = system_bills(3)
    incident = resolved_incident(supervisor)
    batch = approved_and_run(incident, supervisor)
    client.force_login(supervisor)
    response = client.get(reverse("console:incident-affected-export", args=[incident.pk]))
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {row["bill_no"] for row in rows} == {bill.bill_no for bill in bills}
    for row in rows:
        customer = next(b.customer for b in bills if b.bill_no == row["bill_no"])
        assert row["bank_code"] == BANK and row["relief"] == "applied"
        assert customer.name not in text and row["customer_name_masked"].endswith("*")
    event = AuditEvent.objects.get(action="incident.affected_export", target_id=str(incident.pk))
    assert event.after == {"rows": 3, "masked": True} and batch.bills_total == 3


# --- relief in the approvals inbox ---------------------------------------------------------


def test_a_relief_batch_is_approved_from_the_inbox_by_another_supervisor_only(client, supervisor):
    system_bills(2)
    incident = resolved_incident(supervisor)
    batch = relief_request(incident_id=incident.pk, requested_by=supervisor, days=7)
    client.force_login(supervisor)
    own = client.get(reverse("console:approvals")).content.decode()
    assert 'data-testid="own-relief"' in own and f'data-testid="approve-relief-{batch.pk}"' not in own
    second = other_supervisor()
    client.force_login(second)
    inbox = client.get(reverse("console:approvals")).content.decode()
    assert f'data-testid="approve-relief-{batch.pk}"' in inbox
    response = client.post(reverse("console:relief-approve", args=[batch.pk]), {"next": reverse("console:approvals")})
    assert response.status_code == 302 and response["Location"] == reverse("console:approvals")
    batch.refresh_from_db()
    assert batch.status == ReliefStatus.APPROVED and batch.approved_by == second
    # Off-site "next" is ignored: back to the incident.
    other = relief_request_for_new_incident(supervisor)
    response = client.post(reverse("console:relief-approve", args=[other.pk]), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("console:incident-detail", args=[other.incident_id])


def relief_request_for_new_incident(supervisor) -> ReliefBatch:
    bill = failed_bill(FailureFamily.SYSTEM, "timeout", at=END + dt.timedelta(hours=2), bank="YNRCC")
    incident = incident_declare(
        declared_by=supervisor,
        bank_code="YNRCC",
        channel="",
        started_at=END + dt.timedelta(hours=1),
        ended_at=END + dt.timedelta(hours=3),
        description="second outage",
    )
    assert bill.pk
    return relief_request(incident_id=incident.pk, requested_by=supervisor, days=7)


# --- live status -------------------------------------------------------------------------


def test_the_running_batch_polls_its_whole_section_and_the_applied_one_shows_the_count_and_reverse(client, supervisor):
    system_bills(3)
    incident = resolved_incident(supervisor)
    batch = relief_request(incident_id=incident.pk, requested_by=supervisor, days=7)
    relief_approve(batch_id=batch.pk, approved_by=other_supervisor())
    client.force_login(supervisor)
    url = reverse("console:incident-detail", args=[incident.pk])
    queued = client.get(url).content.decode()
    assert (
        f'id="relief-batch-{batch.pk}" data-testid="relief-batch-{batch.pk}" hx-get="{url}?poll=1"'
        f' hx-trigger="every 2s" hx-select="#relief-batch-{batch.pk}"'
    ) in queued
    assert "Approved, queued 0/3" in queued and 'data-testid="reverse-relief"' not in queued
    relief_run(batch_id=batch.pk)
    done = client.get(url, {"poll": "1"}).content.decode()
    assert "Applied 3/3" in done and 'data-testid="reverse-relief"' in done
    assert "hx-get" not in done.split(f'id="relief-batch-{batch.pk}"')[1].split(">")[0]  # polling stops


# --- impact figures ----------------------------------------------------------------------


def test_the_dashboard_impact_shows_relieved_and_reversed_after_relief_and_reversal(supervisor):
    system_bills(3)
    incident = resolved_incident(supervisor)
    batch = approved_and_run(incident, supervisor)
    dashboard_refresh(trigger="command")
    (row,) = [r for r in _impact_rows() if r[0] == f"#{incident.pk}"]
    assert row[7:10] == [3, 3, 0]  # bills in relief, relieved, reversed
    assert isinstance(row[1], BankCode) and row[1] == BANK  # shown by its label, exported as its code
    relief_reverse(batch_id=batch.pk, reversed_by=supervisor, reason="declared by mistake")
    dashboard_refresh(trigger="command")
    (row,) = [r for r in _impact_rows() if r[0] == f"#{incident.pk}"]
    assert row[7:10] == [3, 3, 3]
    assert row[10] == 0  # nothing owed under relief in force


def _impact_rows() -> list[list]:
    return {s.key: s for s in dashboard_sections(DashboardFilters())}["incidents"].rows


def test_applying_and_reversing_relief_queue_a_dashboard_refresh(supervisor, django_capture_on_commit_callbacks):
    system_bills(2)
    incident = resolved_incident(supervisor)
    batch = relief_request(incident_id=incident.pk, requested_by=supervisor, days=7)
    relief_approve(batch_id=batch.pk, approved_by=other_supervisor())
    OrmQ.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        relief_run(batch_id=batch.pk)
    assert _queued("repayments.tasks.refresh_dashboard") == 1
    with django_capture_on_commit_callbacks(execute=True):
        relief_reverse(batch_id=batch.pk, reversed_by=supervisor, reason="declared by mistake")
    assert _queued("repayments.tasks.refresh_dashboard") == 2


def _queued(func: str) -> int:
    return sum(1 for task in OrmQ.objects.all() if task.func() == func)


def test_dashboard_tables_show_the_bank_label_and_their_csv_the_code():
    from baitiao.csvfiles import csv_cell

    cell = BankCode("ICBC")
    template = Template("{{ cell }}")
    with translation.override("zh-hans"):
        assert template.render(Context({"cell": cell})) == "中国工商银行"
    with translation.override("en"):
        assert template.render(Context({"cell": cell})) == "Industrial and Commercial Bank of China"
    assert csv_cell(cell) == "ICBC" and cell == "ICBC"
