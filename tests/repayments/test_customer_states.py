"""Issue #15 (5): the customer page and the reveal render every documented state of a customer.

A customer imported on their own has no credit line yet (docs/csv.md); others have
no card bound, or no bills. The page and the reveal answered 500 for the first, and
the reveal had already written its audit event: a value recorded as seen that no
one saw.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from repayments.models import Customer
from tests.factories import CardBindingFactory, CreditLineFactory, CustomerFactory


def customer_without_a_credit_line() -> Customer:
    return CustomerFactory()


def customer_without_a_card_binding() -> Customer:
    return CreditLineFactory().customer


def customer_without_bills() -> Customer:
    customer = CreditLineFactory(currency="TWD").customer
    CardBindingFactory(customer=customer)
    return customer


STATES = {
    "without a credit line": (customer_without_a_credit_line, "No credit line yet."),
    "without a card binding": (customer_without_a_card_binding, "No card bound."),
    "without bills": (customer_without_bills, "No bills yet."),
}


@pytest.mark.parametrize("state", STATES, ids=list(STATES))
def test_the_customer_page_renders_a_customer(client, agent, state):
    make, shown = STATES[state]
    customer = make()
    client.force_login(agent)
    response = client.get(reverse("console:customer-detail", args=[customer.customer_no]))
    assert response.status_code == 200
    assert shown in response.content.decode()


def test_the_credit_line_panel_shows_the_limit_in_the_lines_currency(client, agent):
    customer = customer_without_bills()
    client.force_login(agent)
    page = client.get(reverse("console:customer-detail", args=[customer.customer_no])).content.decode()
    assert "TWD 10,000.00" in page and "No credit line yet." not in page


@pytest.mark.parametrize("htmx", [False, True], ids=["full page", "htmx"])
@pytest.mark.parametrize("state", STATES, ids=list(STATES))
def test_revealing_a_field_of_a_customer_succeeds_and_is_audited_once(client, agent, state, htmx):
    customer = STATES[state][0]()
    client.force_login(agent)
    response = client.post(
        reverse("console:customer-reveal", args=[customer.customer_no]),
        {"field": "phone", "reason": "customer asked, ticket 15"},
        **({"HTTP_HX_REQUEST": "true"} if htmx else {}),
    )
    assert response.status_code == 200
    assert customer.phone in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    events = AuditEvent.objects.filter(action="customer.reveal", customer_no=customer.customer_no)
    assert list(events.values_list("after", flat=True)) == [{"field": "phone"}]


def test_revealing_the_reserved_phone_of_a_customer_without_a_card_shows_it_is_empty(client, agent):
    customer = customer_without_a_credit_line()
    client.force_login(agent)
    response = client.post(
        reverse("console:customer-reveal", args=[customer.customer_no]),
        {"field": "reserved_phone", "reason": "customer asked, ticket 15"},
    )
    assert response.status_code == 200
    assert "(empty)" in response.content.decode()


def test_search_results_list_a_customer_without_a_credit_line(client, agent):
    twins = [CustomerFactory(phone=phone) for phone in ("13900015015", "13800015015")]
    client.force_login(agent)
    response = client.post(reverse("console:search"), {"q": "5015"})
    assert response.status_code == 200
    page = response.content.decode()
    assert all(twin.customer_no in page for twin in twins)
