"""The extension form's preview and the approver's (issue #16): shown before deciding, the same rule applied."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from repayments.models import Bill, BillStatus, Extension
from repayments.services.extensions import extension_request
from tests.factories import BillFactory

NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def late_bill(db) -> Bill:
    """37 days past due on 2026-11-30."""
    return BillFactory(
        due_date=dt.date(2026, 10, 24),
        status=BillStatus.OVERDUE,
        dpd=37,
        past_due_amount=Decimal("100.00"),
        past_due_since=dt.date(2026, 10, 24),
        cycles_past_due=2,
        late_fee=Decimal("18.50"),
    )


def _url(bill: Bill) -> str:
    return reverse("console:extension-request", args=[bill.customer.customer_no, bill.bill_no])


def test_the_preview_button_shows_the_result_and_submits_nothing(client, agent, late_bill):
    client.force_login(agent)
    form = client.get(_url(late_bill)).context["form"]
    response = client.post(
        _url(late_bill),
        {
            "days": "30",
            "reason": "",
            "preview": "1",
            "request_token": form["request_token"].value(),
            "bill_version": form["bill_version"].value(),
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    preview = response.context["preview"]
    assert (preview.due_date_after, preview.status_after, preview.dpd_after) == (
        dt.date(2026, 12, 30),
        BillStatus.PENDING,
        0,
    )
    assert "2026-10-24 → <strong>2026-12-30</strong>" in page
    assert "2026-12-30 09:00" in page  # the next debit, business time
    assert "Not reported as late up to 2027-01-02" in page
    assert "This field is required" not in page  # no reason yet: a preview is no submission
    assert f'value="{form["request_token"].value()}"' in page  # the same form, ready to submit
    assert not Extension.objects.exists()
    assert Bill.objects.get(pk=late_bill.pk).due_date == dt.date(2026, 10, 24)


def test_htmx_gets_only_the_preview_fragment(client, agent, late_bill):
    client.force_login(agent)
    response = client.post(
        _url(late_bill), {"days": "30", "reason": "system_fault", "preview": "1"}, headers={"HX-Request": "true"}
    )
    page = response.content.decode()
    assert 'data-testid="extension-preview"' in page
    assert "<form" not in page
    assert "late fee of" in page and "18.50 waived" in page


def test_a_preview_with_bad_days_says_why(client, agent, late_bill):
    client.force_login(agent)
    response = client.post(_url(late_bill), {"days": "91", "preview": "1"}, headers={"HX-Request": "true"})
    assert "less than or equal to 90" in response.content.decode()


def test_the_approver_sees_the_preview_for_the_day_of_approval(client, agent, supervisor, late_bill):
    extension = extension_request(
        bill_id=late_bill.id, requested_by=agent, days=30, reason="hardship", request_token=uuid.uuid4(), now=NOW
    )
    next_day = NOW + dt.timedelta(days=1)
    with time_machine.travel(next_day, tick=False):
        client.force_login(supervisor)
        page = client.get(reverse("console:approvals")).content.decode()
    cell = page[page.index(f'data-testid="approval-preview-{extension.pk}"') :]
    assert "If applied today (2026-12-01)" in cell
    assert "2026-10-24 → <strong>2026-12-31</strong>" in cell
    assert "2026-12-31 09:00" in cell


def test_the_approver_sees_why_a_request_can_no_longer_apply(client, agent, supervisor, late_bill):
    extension = extension_request(
        bill_id=late_bill.id, requested_by=agent, days=30, reason="hardship", request_token=uuid.uuid4(), now=NOW
    )
    Bill.objects.filter(pk=late_bill.pk).update(status=BillStatus.PAID, amount_paid=Decimal("1000.00"), late_fee=0)
    client.force_login(supervisor)
    page = client.get(reverse("console:approvals")).content.decode()
    cell = page[page.index(f'data-testid="approval-preview-{extension.pk}"') :]
    assert "nothing to extend" in cell[:2000]
