"""The API applies the console's roles: one test per endpoint and role (docs/api.md)."""

from __future__ import annotations

import uuid

import pytest
from django.urls import get_resolver, reverse

from accounts.models import AuditEvent
from repayments.models import Bill, BillStatus, Extension, Incident, RepaymentAttempt
from tests.repayments.api.conftest import token_client

A, D = "allowed", "denied"
ROLES = ["agent", "supervisor", "analyst", "auditor", "admin_user"]
ALL = [A, A, A, A, A]
WORKERS = [A, A, D, D, A]  # agents, supervisors, admins
CHECKERS = [D, A, D, D, A]  # supervisors and admins

# route name -> (method, [agent, supervisor, analyst, auditor, admin])
API_MATRIX = {
    "customer-list": ("get", ALL),
    "customer-detail": ("get", ALL),
    "credit-line-list": ("get", ALL),
    "credit-line-detail": ("get", ALL),
    "bill-list": ("get", ALL),
    "bill-detail": ("get", ALL),
    "bill-retry": ("post", WORKERS),
    "attempt-list": ("get", ALL),
    "attempt-detail": ("get", ALL),
    "reminder-list": ("get", ALL),
    "reminder-detail": ("get", ALL),
    "extension-list": ("get", ALL),
    "extension-detail": ("get", ALL),
    "extension-approve": ("post", CHECKERS),
    "extension-reject": ("post", CHECKERS),
    "waiver-list": ("get", ALL),
    "waiver-detail": ("get", ALL),
    "waiver-approve": ("post", CHECKERS),
    "waiver-reject": ("post", CHECKERS),
    "binding-repair-list": ("get", ALL),
    "binding-repair-detail": ("get", ALL),
    "binding-repair-start": ("post", WORKERS),
    "binding-repair-confirm": ("post", WORKERS),
    "incident-list": ("get", CHECKERS),
    "incident-detail": ("get", CHECKERS),
    "incident-resolve": ("post", CHECKERS),
    "incident-relief": ("post", CHECKERS),
    "relief-batch-list": ("get", CHECKERS),
    "relief-batch-detail": ("get", CHECKERS),
    "relief-batch-approve": ("post", CHECKERS),
    "relief-batch-reverse": ("post", CHECKERS),
}
# Routes whose list and create share a name: POST to the list URL.
CREATE_MATRIX = {
    "extension-list": WORKERS,
    "waiver-list": WORKERS,
    "incident-list": CHECKERS,
}
NOT_STAFF_ROUTES = {"gateway-callback"}  # signed by the bank (test_api.py covers it)


def _route_names() -> set[str]:
    resolver = get_resolver().namespace_dict["api"][1]
    return {name for name in resolver.reverse_dict.keys() if isinstance(name, str)}


def test_every_api_route_has_a_row_in_the_permission_matrix():
    assert _route_names() - NOT_STAFF_ROUTES == set(API_MATRIX), "document and test the roles of every new route"


@pytest.fixture
def objects(db, supervisor, agent):
    """One of each object the detail routes need, from the UCI data plus an extension and an incident."""
    bill = Bill.objects.filter(status=BillStatus.OVERDUE).select_related("customer").order_by("id").first()
    extension = Extension.objects.create(
        bill=bill, customer=bill.customer, days=30, reason="hardship", requested_by=agent, request_token=uuid.uuid4()
    )
    incident = Incident.objects.create(
        bank_code="ICBC", started_at="2026-11-01T00:00:00Z", source="declared", description="matrix"
    )
    attempt = RepaymentAttempt.objects.order_by("id").first()
    return {"bill": bill, "extension": extension, "incident": incident, "attempt": attempt}


def _kwargs(name: str, objects: dict) -> dict:
    resource = name.rsplit("-", 1)[0]
    if name.endswith("-list") or name in ("binding-repair-start", "binding-repair-confirm"):
        return {}
    bill = objects["bill"]
    return {
        "customer": {"customer_no": bill.customer.customer_no},
        "credit-line": {"customer_no": bill.customer.customer_no},
        "bill": {"bill_no": bill.bill_no},
        "attempt": {"attempt_no": objects["attempt"].attempt_no if objects["attempt"] else "none"},
        "incident": {"pk": objects["incident"].pk},
    }.get(resource, {"pk": objects["extension"].pk if resource == "extension" else 1})


def _check(response, want: str) -> None:
    if want == D:
        assert response.status_code == 403, response.content
        assert response.json()["errors"][0]["code"] == "permission_denied"
    else:
        # Allowed through the role check: whatever the data says next, never a 401/403 or a 5xx.
        assert response.status_code not in (401, 403), response.content
        assert response.status_code < 500


@pytest.mark.parametrize(("name", "role"), [(name, role) for name in sorted(API_MATRIX) for role in ROLES])
def test_each_role_gets_exactly_its_cell_of_the_api_matrix(name, role, objects, request):
    method, expected = API_MATRIX[name]
    want = expected[ROLES.index(role)]
    client = token_client(request.getfixturevalue(role))
    url = reverse(f"api:{name}", kwargs=_kwargs(name, objects))
    events_before = AuditEvent.objects.count()
    if method == "get":
        response = client.get(url)
        if want == A and name.endswith("-list"):
            assert response.status_code == 200
    else:
        response = client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    _check(response, want)
    if want == D:
        assert AuditEvent.objects.count() == events_before  # refused before anything was done


@pytest.mark.parametrize(("name", "role"), [(name, role) for name in sorted(CREATE_MATRIX) for role in ROLES])
def test_each_role_gets_exactly_its_cell_for_creating(name, role, objects, request):
    want = CREATE_MATRIX[name][ROLES.index(role)]
    client = token_client(request.getfixturevalue(role))
    response = client.post(reverse(f"api:{name}"), {}, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    _check(response, want)


def test_no_credentials_is_a_401_that_says_how_to_authenticate(client):
    response = client.get(reverse("api:bill-list"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["errors"][0]["code"] == "not_authenticated"


def test_a_wrong_token_is_refused(db):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 64)
    response = client.get(reverse("api:bill-list"))
    assert (response.status_code, response.json()["errors"][0]["code"]) == (401, "authentication_failed")


def test_a_console_session_works_for_the_api_with_csrf(agent):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.get(reverse("api:bill-list")).status_code == 200
    refused = client.post(reverse("api:extension-list"), {}, content_type="application/json")
    assert refused.status_code == 403  # a session needs the CSRF token, as in the console


def test_error_details_follow_the_request_language_and_codes_do_not(agent):
    response = token_client(agent).post(reverse("api:incident-list"), {}, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 403
    assert response.json()["errors"][0] == {
        "code": "permission_denied",
        "detail": "您的角色无权执行此操作。",
        "attr": None,
    }


def test_a_console_session_with_its_csrf_token_can_make_an_idempotent_request(agent):
    """The session's CSRF check reads the body before the view: the idempotency fingerprint still works."""
    import datetime as dt
    from decimal import Decimal

    from django.test import Client

    from tests.factories import BillFactory

    bill = BillFactory(status=BillStatus.OVERDUE, dpd=10, late_fee=Decimal("5.00"), due_date=dt.date(2026, 11, 20))
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    client.get(reverse("console:worklist"))  # sets the CSRF cookie, as the console page does
    csrf = client.cookies["csrftoken"].value
    payload = {"bill_no": bill.bill_no, "days": 3, "reason": "hardship"}
    headers = {"HTTP_X_CSRFTOKEN": csrf, "HTTP_IDEMPOTENCY_KEY": "session-key-0001"}
    first = client.post(reverse("api:extension-list"), payload, content_type="application/json", **headers)
    reordered = {"reason": "hardship", "days": 3, "bill_no": bill.bill_no}  # same request, keys in another order
    again = client.post(reverse("api:extension-list"), reordered, content_type="application/json", **headers)
    assert (first.status_code, again.status_code) == (201, 201), first.content
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]


def test_staff_user_gives_the_signed_in_user_and_refuses_an_anonymous_request(agent):
    from django.contrib.auth.models import AnonymousUser
    from rest_framework.exceptions import NotAuthenticated
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from repayments.api.permissions import staff_user

    signed_in = Request(APIRequestFactory().get("/api/v1/bills/"))
    signed_in.user = agent
    assert staff_user(signed_in) == agent

    anonymous = Request(APIRequestFactory().get("/api/v1/bills/"))
    anonymous.user = AnonymousUser()
    with pytest.raises(NotAuthenticated):
        staff_user(anonymous)
