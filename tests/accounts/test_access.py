"""Access: the idle session timeout (polling is not activity), the audit view and its export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from accounts.middleware import REFRESHED_AT
from accounts.models import AuditEvent
from accounts.services import audit_record
from repayments.models import ImportJob, Incident, ReliefBatch, ReliefStatus
from tests.factories import BillFactory


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
    response = client.get(reverse("accounts:audit"), {"action": "customer.reveal", "customer": "C-1"})
    events = response.context["events"]
    assert [(e.action, e.customer_no, e.reason) for e in events] == [("customer.reveal", "C-1", "ticket 7")]


def test_the_audit_export_is_csv_for_excel_neutralises_formulas_and_is_itself_audited(client, auditor, agent):
    audit_record(actor=agent, action="note.add", customer_no="C-9", reason='=HYPERLINK("http://x")')
    client.force_login(auditor)
    response = client.get(reverse("accounts:audit-export"), {"customer": "C-9"})
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0][:3] == ["occurred_at", "actor", "action"]
    assert rows[1][2] == "note.add"
    assert rows[1][6] == '\'=HYPERLINK("http://x")'
    assert AuditEvent.objects.filter(action="audit.export", actor=auditor).exists()


# Self-refreshing pages (issue #15, item 10): a page left open polls every 2 or 3 s,
# and that must not keep its session alive past the idle timeout.
HTMX_POLL = {"HX-Request": "true", "HX-Trigger": "bills-and-attempts"}


def _polled_page(kind: str, user) -> tuple[str, dict]:
    """The URL a self-refreshing page polls, and the headers its polls carry."""
    if kind == "customer":
        bill = BillFactory(retry_at=timezone.now() - dt.timedelta(minutes=1))  # a due retry: the panel polls
        return reverse("console:customer-detail", args=[bill.customer.customer_no]), HTMX_POLL
    job = ImportJob.objects.create(resource="bills", filename="bills.csv", created_by=user)
    return reverse("data:import-job", args=[job.pk]), {}  # a meta refresh sends no header of its own


@pytest.mark.parametrize(("kind", "persona"), [("customer", "agent"), ("import-job", "analyst")])
def test_a_session_that_only_polls_expires_after_the_idle_timeout(kind, persona, client, settings, request):
    user = request.getfixturevalue(persona)
    url, headers = _polled_page(kind, user)
    client.force_login(user)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert client.get(url).status_code == 200  # the person opens the page, then leaves it open
    # A browser polls every few seconds; once a minute is as good, since a request extends
    # the session at most once a minute.
    for minute in range(1, settings.SESSION_COOKIE_AGE // 60):
        with time_machine.travel(start + dt.timedelta(minutes=minute), tick=False):
            assert client.get(url, {"poll": "1"}, headers=headers).status_code == 200
    with time_machine.travel(start + dt.timedelta(seconds=settings.SESSION_COOKIE_AGE + 1), tick=False):
        response = client.get(url, {"poll": "1"}, headers=headers)
    login = reverse("accounts:login")
    if headers:  # htmx: the whole page goes to the login form, not the form into the panel
        assert response.status_code == 200
        assert response["HX-Redirect"].startswith(login)
        assert "bills-and-attempts" not in response.content.decode()
    else:
        assert response.status_code == 302
        assert response["Location"].startswith(login)


def test_a_request_of_the_person_between_polls_still_extends_the_session(client, agent, settings):
    url, headers = _polled_page("customer", agent)
    client.force_login(agent)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.get(url)
    with time_machine.travel(start + dt.timedelta(minutes=20), tick=False):
        client.get(url, {"poll": "1"}, headers=headers)
        assert client.get(reverse("console:worklist")).status_code == 200  # a click of their own
    with time_machine.travel(start + dt.timedelta(seconds=settings.SESSION_COOKIE_AGE + 60), tick=False):
        assert client.get(url, {"poll": "1"}, headers=headers).status_code == 200


def test_self_refreshing_pages_mark_their_own_requests_as_polls(client, agent, analyst, supervisor):
    url, _ = _polled_page("customer", agent)
    client.force_login(agent)
    assert f'hx-get="{url}?poll=1" hx-trigger="every 3s"' in client.get(url).content.decode()

    job_url, _ = _polled_page("import-job", analyst)
    client.force_login(analyst)
    assert f'<meta http-equiv="refresh" content="2; url={job_url}?poll=1">' in client.get(job_url).content.decode()

    incident = Incident.objects.create(
        bank_code="POLL",
        started_at=timezone.now() - dt.timedelta(hours=2),
        ended_at=timezone.now() - dt.timedelta(hours=1),
        status="resolved",
        source="declared",
        declared_by=supervisor,
        description="relief being applied",
    )
    ReliefBatch.objects.create(
        incident=incident,
        days=7,
        requested_by=agent,
        approved_by=supervisor,
        approved_at=timezone.now(),
        audit_id=uuid.uuid4(),
        status=ReliefStatus.RUNNING,
    )
    incident_url = reverse("console:incident-detail", args=[incident.pk])
    client.force_login(supervisor)
    assert f'hx-get="{incident_url}?poll=1" hx-trigger="every 2s"' in client.get(incident_url).content.decode()
