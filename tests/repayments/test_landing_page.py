"""The landing page: the visible proof that the real data is loaded."""

from __future__ import annotations

import pytest
from django.urls import reverse

from repayments.selectors.receivables import portfolio_summary
from tests.repayments.test_receivables import recount_from_the_csv

pytestmark = pytest.mark.django_db

# Open statements per bucket on 2026-11-15, as documented in docs/dataset.md: one per
# holder with a positive latest balance, in the bucket of their cycles past due.
DOCUMENTED_BUCKETS = {"M0": 22_273, "M1": 1_999, "M2": 2_667, "M3": 322, "M4+": 141}


def test_documented_buckets_follow_from_the_csv():
    recount = recount_from_the_csv()
    assert {bucket: slot["holders"] for bucket, slot in recount.items()} == DOCUMENTED_BUCKETS


def test_landing_page_requires_login(client):
    response = client.get(reverse("console:home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_bucket_counts_agree_with_docs():
    summary = portfolio_summary()
    assert summary.customers == 30_000
    assert {row.bucket: row.bills for row in summary.buckets} == DOCUMENTED_BUCKETS
    assert summary.open_bills == sum(DOCUMENTED_BUCKETS.values())
    assert summary.overdue_bills == sum(v for k, v in DOCUMENTED_BUCKETS.items() if k != "M0")


def test_agent_sees_customers_and_buckets(client, agent, django_assert_max_num_queries):
    client.force_login(agent)
    with django_assert_max_num_queries(10):
        response = client.get(reverse("console:home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="customers">30,000<' in html
    assert 'data-bucket="M2"><th scope="row">M2</th><td class="num">2,667<' in html


def test_landing_page_renders_in_chinese(client, agent):
    client.force_login(agent)
    response = client.get(reverse("console:home"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'lang="zh-hans"' in html and "应收账款概览" in html and "逾期账单" in html


def test_a_staff_user_signs_in_and_lands_on_the_overview(client, agent):
    response = client.post(
        reverse("accounts:login"), {"username": "test_agent", "password": "correct horse battery staple"}
    )
    assert response.status_code == 302 and response["Location"] == reverse("console:home")
