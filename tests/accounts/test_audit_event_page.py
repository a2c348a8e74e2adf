"""The audit event page and the trail's filters by target, request and relief batch (issue #16)."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.services import audit_record
from repayments.models import Bill, Incident

pytestmark = pytest.mark.django_db


@pytest.fixture
def bill() -> Bill:
    return Bill.objects.select_related("customer").order_by("id").first()


def test_the_event_page_shows_before_and_after_as_a_table_with_the_changed_fields_marked(client, auditor, agent, bill):
    event = audit_record(
        actor=agent,
        action="extension.approve",
        target=bill,
        customer=bill.customer,
        reason="hardship",
        before={"due_date": "2026-11-05", "status": "overdue", "dpd": 12},
        after={"due_date": "2026-12-05", "status": "overdue", "dpd": 0},
        request_id="req-abc",
    )
    client.force_login(auditor)
    page = client.get(reverse("accounts:audit-event", args=[event.pk]))
    assert page.status_code == 200
    changes = {row.field: row for row in page.context["changes"]}
    assert {name for name, row in changes.items() if row.changed} == {"due_date", "dpd"}  # jsonb orders keys
    status = changes["status"]
    assert (status.before, status.after, status.changed) == ("overdue", "overdue", False)
    html = page.content.decode()
    assert '<tr class="changed" data-field="due_date">' in html
    assert '<tr data-field="status">' in html
    # The target links to the bill's customer page; the request to all its events.
    assert page.context["target"].label == bill.bill_no
    assert reverse("console:customer-detail", args=[bill.customer.customer_no]) in html
    assert f"{reverse('accounts:audit')}?request=req-abc" in html


def test_the_event_time_is_shown_in_business_time(client, auditor, agent):
    import datetime as dt

    when = dt.datetime(2026, 11, 30, 17, 5, tzinfo=dt.UTC)
    event = AuditEvent.objects.create(actor=agent, actor_label=agent.username, action="note.add", occurred_at=when)
    client.force_login(auditor)
    html = client.get(reverse("accounts:audit-event", args=[event.pk])).content.decode()
    assert "2026-12-01 01:05:00" in html  # 17:05 UTC is 01:05 the next day in Shanghai


def test_an_incident_target_is_linked_only_for_readers_who_may_open_incidents(client, auditor, admin_user):
    incident = Incident.objects.create(
        bank_code="ICBC", started_at="2026-11-01T00:00Z", status="open", source="declared", declared_by=admin_user
    )
    event = audit_record(actor=admin_user, action="incident.declare", target=incident, after={"bank_code": "ICBC"})
    client.force_login(auditor)
    assert client.get(reverse("accounts:audit-event", args=[event.pk])).context["target"] is None
    client.force_login(admin_user)
    target = client.get(reverse("accounts:audit-event", args=[event.pk])).context["target"]
    assert target.url == reverse("console:incident-detail", args=[incident.pk])


def test_agents_cannot_open_an_event_and_an_unknown_event_is_404(client, agent, auditor):
    event = audit_record(actor=agent, action="note.add", reason="called")
    client.force_login(agent)
    assert client.get(reverse("accounts:audit-event", args=[event.pk])).status_code == 403
    client.force_login(auditor)
    assert client.get(reverse("accounts:audit-event", args=[event.pk + 10_000_000])).status_code == 404


def test_each_row_of_the_trail_links_to_its_event_page(client, auditor, agent):
    event = audit_record(actor=agent, action="note.add", reason="called")
    client.force_login(auditor)
    html = client.get(reverse("accounts:audit")).content.decode()
    assert f'href="{reverse("accounts:audit-event", args=[event.pk])}"' in html


def test_the_trail_filters_by_target_type_and_id(client, auditor, agent, bill):
    other = Bill.objects.exclude(pk=bill.pk).order_by("id").first()
    audit_record(actor=agent, action="bill.claim", target=bill)
    audit_record(actor=agent, action="bill.claim", target=other)
    audit_record(actor=agent, action="note.add", target_type="repayments.note", target_id=str(bill.pk))
    client.force_login(auditor)
    page = client.get(reverse("accounts:audit"), {"target_type": "repayments.bill", "target_id": str(bill.pk)})
    assert [(e.target_type, e.target_id) for e in page.context["events"]] == [("repayments.bill", str(bill.pk))]


def _batch_events(agent, supervisor, *, batch_pk: int) -> str:
    audit_id = str(uuid.uuid4())
    audit_record(actor=agent, action="relief.request", target_type="repayments.reliefbatch", target_id=str(batch_pk),
                 after={"bills": 2}, request_id=audit_id)  # fmt: skip
    audit_record(actor=supervisor, action="relief.approve", target_type="repayments.reliefbatch",
                 target_id=str(batch_pk), request_id=audit_id)  # fmt: skip
    audit_record(actor=None, action="relief.apply", target_type="repayments.bill", target_id="1", request_id=audit_id)
    return audit_id


def test_the_trail_filters_by_relief_batch_audit_id_or_number_and_lists_the_runs_system_events(
    client, auditor, agent, supervisor
):
    audit_id = _batch_events(agent, supervisor, batch_pk=987_001)
    _batch_events(agent, supervisor, batch_pk=987_002)
    audit_record(actor=agent, action="note.add", reason="unrelated")
    client.force_login(auditor)
    for value in (audit_id, "987001"):
        page = client.get(reverse("accounts:audit"), {"batch": value})
        assert page.context["errors"] == []
        assert sorted(e.action for e in page.context["events"]) == ["relief.apply", "relief.approve", "relief.request"]
        assert {e.request_id for e in page.context["events"]} == {audit_id}
    by_request = client.get(reverse("accounts:audit"), {"request": audit_id})
    assert len(by_request.context["events"]) == 3


def test_a_batch_number_without_a_request_event_matches_nothing(client, auditor, agent):
    audit_record(actor=agent, action="note.add", reason="no request id", request_id="")
    client.force_login(auditor)
    page = client.get(reverse("accounts:audit"), {"batch": "424242"})
    assert page.context["errors"] == []
    assert page.context["events"] == []


def test_a_mistyped_batch_is_named_and_the_trail_and_export_are_not_widened(client, auditor, agent):
    audit_record(actor=agent, action="note.add", reason="called")
    client.force_login(auditor)
    page = client.get(reverse("accounts:audit"), {"batch": "last week"})
    assert page.context["errors"] == ["Relief batch: “last week” is neither a batch number nor an audit id."]
    assert page.context["events"] == []
    assert client.get(reverse("accounts:audit-export"), {"batch": "last week"}).status_code == 400
