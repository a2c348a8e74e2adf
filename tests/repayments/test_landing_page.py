"""The landing page: the visible proof that the real data is loaded."""

from __future__ import annotations

import pytest
from django.urls import reverse

from repayments.selectors.receivables import portfolio_summary

pytestmark = pytest.mark.django_db

# Open bills per bucket on 2026-11-30, as documented in docs/dataset.md.
DOCUMENTED_BUCKETS = {"M0": 27_402, "M1": 4_782, "M2": 0, "M3": 2_904, "M4+": 641}


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
    assert 'data-bucket="M1"><th scope="row">M1</th><td class="num">4,782<' in html


def test_landing_page_renders_in_chinese(client, agent):
    client.force_login(agent)
    response = client.get(reverse("console:home"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200
    assert 'lang="zh-hans"' in response.content.decode()


def test_login_page_signs_a_demo_user_in(client, agent):
    response = client.post(
        reverse("accounts:login"), {"username": "test_agent", "password": "correct horse battery staple"}
    )
    assert response.status_code == 302 and response["Location"] == reverse("console:home")
