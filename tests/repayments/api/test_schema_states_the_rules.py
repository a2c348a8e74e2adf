"""Issue #15 (14): the OpenAPI schema says what the server enforces, and the server enforces what it says.

Schemathesis (``test_contract.py``) generates requests from the schema; a rule the
schema leaves out (the Idempotency-Key's length, a card number's digits) makes it
send "valid" requests that the server refuses, and a value the server lets
through silently (``?requested_at_before=``, ``?page_size=null``) makes it widen a
list the client thought it narrowed. These tests pin each rule on both sides.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.factories import BillFactory
from tests.repayments.api.conftest import token_client

IDEMPOTENT_OPERATIONS = {
    ("post", "/api/v1/bills/{bill_no}/retry/"),
    ("post", "/api/v1/extensions/"),
    ("post", "/api/v1/extensions/{id}/approve/"),
    ("post", "/api/v1/extensions/{id}/reject/"),
    ("post", "/api/v1/waivers/"),
    ("post", "/api/v1/waivers/{id}/approve/"),
    ("post", "/api/v1/waivers/{id}/reject/"),
    ("post", "/api/v1/incidents/{id}/relief/"),
    ("post", "/api/v1/relief-batches/{id}/approve/"),
    ("post", "/api/v1/relief-batches/{id}/reverse/"),
}


@pytest.fixture
def schema(admin_user):
    response = token_client(admin_user).get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield method, path, operation


def _resolve(schema, node):
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = schema["components"]["schemas"][name]
    return node


def test_every_idempotent_operation_states_the_key_length_the_server_enforces(schema):
    stated = {}
    for method, path, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "header" and parameter["name"] == "Idempotency-Key":
                stated[(method, path)] = parameter
    assert set(stated) == IDEMPOTENT_OPERATIONS
    for parameter in stated.values():
        assert parameter["required"] is True
        assert parameter["schema"]["minLength"] == 8
        assert parameter["schema"]["maxLength"] == 255
        pattern = re.compile(parameter["schema"]["pattern"])
        assert pattern.search("a" * 8) and pattern.search("a" * 255)
        assert not pattern.search("a b c d e") and not pattern.search("é" * 8)


@pytest.mark.parametrize("value", ["a" * 7, "a" * 256, "with space", "non-ascii-é-key"])
def test_a_key_outside_the_stated_rule_is_refused_naming_the_header(agent, value):
    bill = BillFactory(status="overdue", dpd=5)
    response = token_client(agent).post(reverse("api:bill-retry", args=[bill.bill_no]), {}, HTTP_IDEMPOTENCY_KEY=value)
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "Idempotency-Key"


def test_the_card_number_and_reserved_phone_formats_are_stated(schema):
    body = _resolve(schema, schema["components"]["schemas"]["BindingStartRequest"])["properties"]
    card, phone = body["card_number"], body["reserved_phone"]
    assert re.fullmatch(card["pattern"], "6222021234567890128")
    assert re.fullmatch(card["pattern"], "6222 0212 3456 7890 128")
    assert not re.fullmatch(card["pattern"], "6.22848E+18")
    assert not re.fullmatch(card["pattern"], "12345678901")  # 11 digits
    assert not re.fullmatch(card["pattern"], "1" * 20)
    assert re.fullmatch(phone["pattern"], "13800138000")
    assert re.fullmatch(phone["pattern"], "+86 138 0013 8000")
    assert not re.fullmatch(phone["pattern"], "1380013800")  # 10 digits
    assert not re.fullmatch(phone["pattern"], "23800138000")  # not a mobile prefix


@pytest.mark.parametrize(
    ("field", "value"),
    [("card_number", "6.22848E+18"), ("card_number", "1" * 20), ("reserved_phone", "1380013800")],
)
def test_a_card_or_phone_outside_the_stated_format_is_refused_naming_the_field(agent, field, value):
    body = {"customer_no": "C-NONE", "card_number": "6222021234567890128", "reserved_phone": "13800138000"}
    response = token_client(agent).post(reverse("api:binding-repair-start"), body | {field: value})
    assert response.status_code == 400
    assert [error["attr"] for error in response.json()["errors"]] == [field]


def test_list_parameters_state_page_size_bounds_and_non_empty_filters(schema):
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/attempts/"]["get"]["parameters"]}
    assert (parameters["page_size"]["minimum"], parameters["page_size"]["maximum"]) == (1, 500)
    assert parameters["bill_no"]["minLength"] == 1
    assert parameters["cursor"]["minLength"] == 1
    assert parameters["requested_at_before"]["format"] == "date-time"
    bills = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/bills/"]["get"]["parameters"]}
    assert bills["amount_min"]["type"] == "number" and bills["dpd_min"]["type"] == "integer"
    assert bills["bucket"]["enum"] == ["M0", "M1", "M2", "M3", "M4+"]


BAD_LIST_QUERIES = {
    "an empty time": ("attempts", "requested_at_before="),
    "an empty date": ("bills", "due_date_after="),
    "an empty text filter": ("bills", "customer_no="),
    "an empty choice": ("bills", "status="),
    "an empty cursor": ("customers", "cursor="),
    "a null page size": ("customers", "page_size=null"),
    "an empty page size": ("customers", "page_size="),
    "a zero page size": ("customers", "page_size=0"),
    "a page size over the maximum": ("customers", "page_size=501"),
    "a time that is not one": ("attempts", "requested_at_after=yesterday"),
}


@pytest.mark.parametrize("case", BAD_LIST_QUERIES, ids=list(BAD_LIST_QUERIES))
def test_an_empty_or_invalid_list_parameter_is_a_400_naming_it_and_its_value(admin_user, case):
    resource, query = BAD_LIST_QUERIES[case]
    name, _, value = query.partition("=")
    response = token_client(admin_user).get(f"/api/v1/{resource}/?{query}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["type"] == "validation_error"
    assert [error["attr"] for error in body["errors"]] == [name]
    assert f"“{value}”" in body["errors"][0]["detail"]


def test_a_valid_page_size_and_filter_still_narrow_the_list(admin_user):
    BillFactory.create_batch(3, status="overdue", dpd=5)
    response = token_client(admin_user).get("/api/v1/bills/?page_size=2&status=overdue")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 2


def test_the_api_reads_json_bodies_only_as_its_schema_says(schema, admin_user):
    for _method, _path, operation in _operations(schema):
        if "requestBody" in operation:
            assert set(operation["requestBody"]["content"]) == {"application/json"}
    response = token_client(admin_user).post(
        reverse("api:incident-list"), {"description": "x", "started_at": "2026-11-01T00:00:00Z"}, format="multipart"
    )
    assert response.status_code == 415


def test_input_bodies_state_that_unknown_fields_are_refused(schema):
    for name in ("ExtensionRequestRequest", "IncidentDeclareRequest", "IncidentResolveRequest", "BindingStartRequest"):
        assert schema["components"]["schemas"][name]["additionalProperties"] is False


def test_a_positive_amount_is_stated_as_the_decimal_string_the_server_takes(schema):
    amount = schema["components"]["schemas"]["WaiverRequestRequest"]["properties"]["amount"]
    assert amount["type"] == "string"
    for accepted in ("0.01", "6.17", "999999999999.99", "10"):
        assert re.fullmatch(amount["pattern"], accepted)
    for refused in ("0", "0.00", "-1", "1.234", "01.5", "", "1e3"):
        assert not re.fullmatch(amount["pattern"], refused)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"description": 0, "started_at": "2026-11-01T00:00:00Z"}, "description"),
        ({"description": "x", "started_at": "2026-11-01T00:00:00Z", "bank_code": 7}, "bank_code"),
        ({"description": "x", "started_at": 20261101}, "started_at"),
    ],
)
def test_a_value_of_another_json_type_than_the_schema_says_is_refused(admin_user, body, field):
    response = token_client(admin_user).post(reverse("api:incident-list"), body)
    assert response.status_code == 400
    assert [error["attr"] for error in response.json()["errors"]] == [field]


def test_a_whole_number_sent_as_text_is_refused(agent):
    bill = BillFactory(status="overdue", dpd=5)
    response = token_client(agent).post(
        reverse("api:extension-list"),
        {"bill_no": bill.bill_no, "days": "5", "reason": "hardship"},
        HTTP_IDEMPOTENCY_KEY="type-check-0001",
    )
    assert response.status_code == 400
    assert [error["attr"] for error in response.json()["errors"]] == ["days"]
