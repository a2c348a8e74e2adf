"""The audit trail is append-only in the database itself."""

from __future__ import annotations

import pytest
from django.db import ProgrammingError, connection, transaction

from accounts.models import AuditEvent
from accounts.services import audit_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(agent) -> AuditEvent:
    return audit_record(actor=agent, action="customer.reveal", target=agent, reason="customer called back")


def test_an_event_records_actor_action_target_and_reason(event, agent):
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.actor, stored.actor_label, stored.action) == (agent, "test_agent", "customer.reveal")
    assert (stored.target_type, stored.target_id) == ("accounts.user", str(agent.pk))
    assert stored.reason == "customer called back"


def test_update_on_the_audit_table_fails_in_the_database(event):
    with (
        pytest.raises(ProgrammingError, match="Cannot update or delete"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE accounts_audit_event SET reason = 'edited' WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).reason == "customer called back"


def test_delete_on_the_audit_table_fails_in_the_database(event):
    with (
        pytest.raises(ProgrammingError, match="Cannot update or delete"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM accounts_audit_event WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_the_orm_cannot_edit_an_event_either(event):
    event.reason = "rewritten"
    with pytest.raises(ProgrammingError), transaction.atomic():
        event.save()


def test_an_audit_export_records_every_value_of_a_repeated_filter(client, auditor):
    from django.urls import reverse

    client.force_login(auditor)
    response = client.get(reverse("accounts:audit-export"), {"actor": "demo", "action": ["customer.", "bill."]})
    assert response.status_code == 200
    b"".join(response.streaming_content)
    event = AuditEvent.objects.filter(action="audit.export").latest("id")
    assert event.after["filters"] == {"actor": ["demo"], "action": ["customer.", "bill."]}
