"""API lists: the total on request (``?count=true``) and the page-size limit stated and enforced (issue #16)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from repayments.models import Bill, BillStatus
from tests.repayments.api.conftest import token_client

pytestmark = pytest.mark.django_db


def test_a_bill_list_gives_its_total_when_asked_and_only_then(supervisor):
    client = token_client(supervisor)
    url = reverse("api:bill-list")
    counted = client.get(url, {"status": "overdue", "bucket": "M2", "page_size": 5, "count": "true"}).json()
    assert counted["count"] == Bill.objects.filter(status=BillStatus.OVERDUE).in_bucket("M2").count() > 5
    assert len(counted["results"]) == 5
    assert "count=true" in counted["next"]  # the next link keeps asking
    assert client.get(counted["next"]).json()["count"] == counted["count"]
    assert "count" not in client.get(url, {"page_size": 5}).json()
    assert "count" not in client.get(url, {"page_size": 5, "count": "false"}).json()


def test_count_is_true_or_false_and_anything_else_is_a_400_naming_it(supervisor):
    response = token_client(supervisor).get(reverse("api:bill-list"), {"count": "yes"})
    assert response.status_code == 400
    assert [(e["attr"], e["detail"]) for e in response.json()["errors"]] == [
        ("count", "count: “yes” is not true or false.")
    ]


def test_a_page_size_above_the_limit_is_a_400_naming_the_limit_not_a_silent_cap(supervisor):
    response = token_client(supervisor).get(reverse("api:bill-list"), {"page_size": "501"})
    assert response.status_code == 400
    assert [(e["attr"], e["detail"]) for e in response.json()["errors"]] == [
        ("page_size", "page_size: “501” is not a whole number from 1 to 500.")
    ]


def test_the_schema_states_the_count_parameter_the_count_field_and_the_page_size_limit(admin_user):
    response = token_client(admin_user).get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = response.json()
    operation = schema["paths"]["/api/v1/bills/"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert parameters["page_size"]["schema"]["maximum"] == 500
    assert parameters["count"]["schema"]["enum"] == ["true", "false"]
    page = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert schema["components"]["schemas"][page]["properties"]["count"]["type"] == "integer"
