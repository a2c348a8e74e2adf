"""Access: the idle session timeout, the audit view and its export."""

from __future__ import annotations

import csv
import datetime as dt
import io

import time_machine
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from accounts.middleware import REFRESHED_AT
from accounts.models import AuditEvent
from accounts.services import audit_record


def _stored_expiry(client):
    return Session.objects.get(session_key=client.session.session_key).expire_date


def test_an_idle_session_is_extended_at_most_once_a_minute(client, agent, settings):
    client.force_login(agent)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.get(reverse("console:home"))
        first_expiry = _stored_expiry(client)
    with time_machine.travel(start + dt.timedelta(seconds=30), tick=False):
        client.get(reverse("console:home"))
        assert _stored_expiry(client) == first_expiry  # not written again within the minute
    with time_machine.travel(start + dt.timedelta(minutes=5), tick=False):
        client.get(reverse("console:home"))
        assert _stored_expiry(client) == first_expiry + dt.timedelta(minutes=5)
        assert client.session[REFRESHED_AT] >= int((start + dt.timedelta(minutes=5)).timestamp())


def test_a_session_idle_past_the_timeout_must_log_in_again(client, agent, settings):
    client.force_login(agent)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.get(reverse("console:home"))
    with time_machine.travel(start + dt.timedelta(seconds=settings.SESSION_COOKIE_AGE + 60), tick=False):
        response = client.get(reverse("console:worklist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_the_auditor_filters_the_trail_by_action_and_customer(client, auditor, agent):
    audit_record(actor=agent, action="customer.reveal", customer_no="C-1", reason="ticket 7", after={"field": "phone"})
    audit_record(actor=agent, action="note.add", customer_no="C-1")
    audit_record(actor=agent, action="customer.reveal", customer_no="C-2", reason="ticket 8")
    client.force_login(auditor)
    response = client.get(reverse("console:audit"), {"action": "customer.reveal", "customer": "C-1"})
    events = response.context["events"]
    assert [(e.action, e.customer_no, e.reason) for e in events] == [("customer.reveal", "C-1", "ticket 7")]


def test_the_audit_export_is_csv_for_excel_neutralises_formulas_and_is_itself_audited(client, auditor, agent):
    audit_record(actor=agent, action="note.add", customer_no="C-9", reason='=HYPERLINK("http://x")')
    client.force_login(auditor)
    response = client.get(reverse("console:audit-export"), {"customer": "C-9"})
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0][:3] == ["occurred_at", "actor", "action"]
    assert rows[1][2] == "note.add"
    assert rows[1][6] == '\'=HYPERLINK("http://x")'
    assert AuditEvent.objects.filter(action="audit.export", actor=auditor).exists()
