"""Issue #15 (7): malformed paging, cursors and NUL characters get a 4xx from the API, never a 500.

PostgreSQL text cannot hold NUL, and a cursor's position reaches the ``id`` lookup:
both failed in the database as server errors. The gateway callback's body is held
to the same rule (after its signature).
"""

from __future__ import annotations

import base64
import json

import pytest
from django.conf import settings
from django.urls import reverse

from repayments.gateway.signing import HEADER, sign
from repayments.models import GatewayReviewItem
from tests.repayments.api.conftest import token_client

LISTS = [
    "customers",
    "credit-lines",
    "bills",
    "attempts",
    "reminders",
    "extensions",
    "waivers",
    "binding-repairs",
    "incidents",
    "relief-batches",
]


def cursor(querystring: str) -> str:
    """A cursor as DRF encodes one, around ``querystring`` (``p`` position, ``o`` offset, ``r`` reverse)."""
    return base64.b64encode(querystring.encode()).decode()


MALFORMED = {
    "a huge page number": ("page=99999999999999999999", 400),
    "a page number": ("page=2", 400),
    "a cursor that is not base64": ("cursor=not%20base64%21", 404),
    "a cursor of NUL": ("cursor=%00", 400),
    "a cursor whose position is NUL": (f"cursor={cursor('p=%00')}", 404),
    "a cursor whose position is not an id": (f"cursor={cursor('p=abc')}", 404),
    "a cursor whose position is a 400-digit number": (f"cursor={cursor('p=' + '9' * 400)}", 404),
    "a cursor with a 5,000-digit offset": (f"cursor={cursor('o=' + '9' * 5000)}", 404),
    "a NUL in a text filter": ("customer_no=a%00b", 400),
    "a NUL in a choice filter": ("status=%00", 400),
    "a NUL in a parameter no list knows": ("x=%00", 400),
    "a NUL in a parameter name": ("a%00=1", 400),
}


@pytest.fixture
def api(admin_user):
    """A token client that may read every list (admin)."""
    return token_client(admin_user)


@pytest.mark.parametrize("query", MALFORMED, ids=list(MALFORMED))
@pytest.mark.parametrize("resource", LISTS)
def test_a_malformed_list_request_is_a_client_error_in_the_apis_shape(api, resource, query):
    querystring, status = MALFORMED[query]
    response = api.get(f"/api/v1/{resource}/?{querystring}")
    assert response.status_code == status
    assert response.json()["type"] == {400: "validation_error", 404: "client_error"}[status]


def test_a_cursor_the_api_gave_still_pages(api):
    first = api.get("/api/v1/customers/?page_size=2").json()
    second = api.get(first["next"])
    assert second.status_code == 200
    assert {row["customer_no"] for row in second.json()["results"]}.isdisjoint(
        row["customer_no"] for row in first["results"]
    )


@pytest.mark.parametrize(
    "path",
    ["customers/T%00/", "credit-lines/T%00/", "bills/B%00/", "attempts/A%00/", "reminders/1%00/", "bills/B%00/retry/"],
)
def test_a_nul_in_a_path_key_finds_nothing(api, path):
    method = api.post if path.endswith("retry/") else api.get
    response = method(f"/api/v1/{path}", HTTP_IDEMPOTENCY_KEY="nul-in-the-path-0001")
    assert response.status_code == 404


def signed_post(client, body: bytes):
    return client.post(
        reverse("api:gateway-callback"),
        data=body,
        content_type="application/json",
        headers={HEADER: sign(body, settings.GATEWAY_SECRET)},
    )


BAD_BODIES = {
    "a NUL in the attempt number": b'{"idempotency_key": "A\\u0000", "status": "succeeded", "amount": "1.00"}',
    "a NUL in the reference": b'{"idempotency_key": "NOPE-A1", "status": "failed", "reference": "R\\u0000"}',
    "a lone surrogate": b'{"idempotency_key": "\\ud800", "status": "failed"}',
    "a raw NUL byte": b'\x00{"status": "failed"}',
    "a signalling NaN amount": b'{"idempotency_key": "NOPE-A1", "status": "succeeded", "amount": "sNaN"}',
    "a NaN amount": b'{"idempotency_key": "NOPE-A1", "status": "succeeded", "amount": NaN}',
    "an infinite amount": b'{"idempotency_key": "NOPE-A1", "status": "succeeded", "amount": "Infinity"}',
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=list(BAD_BODIES))
def test_a_signed_callback_body_postgresql_cannot_store_is_malformed_and_kept_for_review(db, client, body):
    client.raise_request_exception = False
    response = signed_post(client, body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "malformed"
    review = GatewayReviewItem.objects.get()
    assert review.reason == "malformed" and "\x00" not in json.dumps(review.payload, ensure_ascii=False)
