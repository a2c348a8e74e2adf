"""Issue #15: one FilterSet per list, shared by console and API; a mistyped filter never widens a list.

A refused value is named with its field and value: on the console page (and the
list is empty rather than unfiltered), as a 400 for a CSV export, as a 400 in
the API's error shape. The same filter (the delinquency bucket, DPD, risk tier)
has one definition that the worklist and ``/api/v1/bills/`` both read.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.services import audit_record
from repayments.models import BillStatus, FailureFamily
from repayments.services.extensions import extension_decide, extension_request
from tests.factories import BillFactory
from tests.repayments.api.conftest import token_client


def _failed_bills(n: int, **kwargs):
    return [
        BillFactory(
            status=BillStatus.OVERDUE,
            dpd=5,
            last_failure_family=FailureFamily.SYSTEM,
            last_failure_code="bank_timeout",
            last_failure_at=timezone.now(),
            **kwargs,
        )  # fmt: skip
        for _ in range(n)
    ]


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("dpd_min", "abc", "DPD from: “abc” is not a whole number."),
        ("amount_max", "lots", "Amount due to: “lots” is not an amount."),
        ("bucket", "M9", "Bucket: “M9” is not a delinquency bucket."),
        ("risk_tier", "extreme", "Risk tier: “extreme” is not one of low, medium, high."),
        ("family", "weather", "Failure family: “weather” is not one of"),
    ],
)
def test_a_mistyped_worklist_filter_is_named_and_the_queue_is_not_widened(client, agent, param, value, message):
    _failed_bills(3)
    client.force_login(agent)
    response = client.get(reverse("console:worklist"), {"queue": "system", param: value})
    assert response.status_code == 200
    assert any(error.startswith(message) for error in response.context["filters"].errors), response.context[
        "filters"
    ].errors
    assert response.context["page"].rows == []


def test_a_dpd_range_that_ends_before_it_starts_is_refused_on_the_worklist(client, agent):
    _failed_bills(2)
    client.force_login(agent)
    response = client.get(reverse("console:worklist"), {"queue": "system", "dpd_min": "30", "dpd_max": "10"})
    assert response.context["filters"].errors == ["DPD from 30 is above DPD to 10: nothing can match."]
    assert response.context["page"].rows == []


def test_valid_worklist_filters_still_narrow_the_queue(client, agent):
    kept, dropped = _failed_bills(1)[0], BillFactory(status=BillStatus.OVERDUE, dpd=50)
    client.force_login(agent)
    response = client.get(reverse("console:worklist"), {"queue": "overdue", "dpd_max": "10"})
    ids = [bill.pk for bill in response.context["page"].rows]
    assert kept.pk in ids and dropped.pk not in ids
    assert response.context["filters"].errors == []


def test_the_worklist_and_the_api_read_one_definition_of_the_dpd_and_bucket_filters(client, agent):
    inside = BillFactory(status=BillStatus.OVERDUE, dpd=5, last_failure_family=FailureFamily.SYSTEM,
                         last_failure_at=timezone.now())  # fmt: skip
    BillFactory(status=BillStatus.OVERDUE, dpd=45, last_failure_family=FailureFamily.SYSTEM,
                last_failure_at=timezone.now())  # fmt: skip
    api = token_client(agent)
    listed = api.get("/api/v1/bills/", {"dpd_min": "1", "dpd_max": "10", "bucket": "M1"})
    assert listed.status_code == 200, listed.content
    assert [row["bill_no"] for row in listed.json()["results"]] == [inside.bill_no]
    refused = api.get("/api/v1/bills/", {"dpd_min": "abc"})
    assert refused.status_code == 400
    assert [(e["attr"], e["detail"]) for e in refused.json()["errors"]] == [
        ("dpd_min", "DPD from: “abc” is not a whole number.")
    ]
    client.force_login(agent)
    page = client.get(reverse("console:worklist"), {"queue": "overdue", "dpd_min": "abc"})
    assert page.context["filters"].errors == ["DPD from: “abc” is not a whole number."]


def test_a_mistyped_audit_filter_is_shown_the_trail_is_not_widened_and_the_export_is_refused(client, auditor, agent):
    audit_record(actor=agent, action="customer.reveal", target_type="repayments.customer", reason="called")
    client.force_login(auditor)
    page = client.get(reverse("accounts:audit"), {"since": "yesterday"})
    assert page.status_code == 200
    assert page.context["errors"] == ["From: “yesterday” is not a date (YYYY-MM-DD)."]
    assert page.context["events"] == []
    export = client.get(reverse("accounts:audit-export"), {"since": "yesterday"})
    assert export.status_code == 400
    assert "From: “yesterday” is not a date (YYYY-MM-DD)." in export.content.decode()


def test_a_valid_audit_filter_still_narrows_the_trail(client, auditor, agent):
    audit_record(actor=agent, action="customer.reveal", target_type="repayments.customer", reason="called")
    audit_record(actor=agent, action="extension.request", target_type="repayments.bill", reason="asked")
    client.force_login(auditor)
    page = client.get(reverse("accounts:audit"), {"action": "customer.", "since": "", "until": ""})
    assert [event.action for event in page.context["events"]] == ["customer.reveal"]
    assert page.context["errors"] == []


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("cause", "weather", "Cause: “weather” is not one of extension, incident."),
        ("since", "12/01/2026", "From: “12/01/2026” is not a date (YYYY-MM-DD)."),
        ("period", "10/2026", "Period: “10/2026” is not a month (YYYY-MM)."),
    ],
)
def test_a_mistyped_ledger_filter_is_shown_and_the_ledger_and_its_export_are_not_widened(
    client, auditor, agent, supervisor, param, value, message
):
    # Ten days late whatever day the suite runs (the factory's fixed due date ages).
    bill = BillFactory(status="overdue", dpd=10, due_date=timezone.localdate() - dt.timedelta(days=10))
    extension = extension_request(bill_id=bill.id, requested_by=agent, days=20, reason="hardship",
                                  request_token=uuid.uuid4())  # fmt: skip
    extension_decide(extension_id=extension.id, decided_by=supervisor, approve=True)
    client.force_login(auditor)
    page = client.get(reverse("console:bureau-ledger"), {param: value})
    assert page.context["errors"] == [message]
    assert page.context["entries"] == []
    export = client.get(reverse("console:bureau-ledger-export"), {param: value})
    assert export.status_code == 400 and message in export.content.decode()


def test_the_repair_queue_lists_open_cases_and_filters_them_by_assignee(client, agent):
    """The repair queue once answered 500: its FilterSet was used before it had validated."""
    from repayments.models import BindingRepairCase
    from tests.factories import CardBindingFactory

    binding = CardBindingFactory(status="invalid")
    case = BindingRepairCase.objects.create(
        customer=binding.customer, card_binding=binding, failure_code="card_expired"
    )
    client.force_login(agent)
    listed = client.get(reverse("console:worklist"), {"queue": "repair"})
    assert listed.status_code == 200
    assert f'data-testid="repair-{case.customer.customer_no}"' in listed.content.decode()
    mine = client.get(reverse("console:worklist"), {"queue": "repair", "assignee": "me"})
    assert mine.status_code == 200
    assert f'data-testid="repair-{case.customer.customer_no}"' not in mine.content.decode()
