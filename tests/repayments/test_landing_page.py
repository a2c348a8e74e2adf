"""The landing page: the visible proof that the real data is loaded."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from baitiao.business_time import delinquency_bucket
from repayments.datasets.uci import DEFAULT_PATH
from repayments.selectors.receivables import portfolio_summary
from tests.conftest import UCI_AS_OF

pytestmark = pytest.mark.django_db

# Open bills per bucket on 2026-11-15, as documented in docs/dataset.md.
DOCUMENTED_BUCKETS = {"M0": 27_402, "M1": 4_782, "M2": 2_904, "M3": 440, "M4+": 201}
# Due dates of the six cycles for that date, latest first (month ends).
DUE_DATES = ["2026-11-30", "2026-10-31", "2026-09-30", "2026-08-31", "2026-07-31", "2026-06-30"]


def buckets_recounted_from_the_csv() -> dict[str, int]:
    """The documented rule applied to the raw file, independently of the loader's code."""
    counts = dict.fromkeys(DOCUMENTED_BUCKETS, 0)
    with DEFAULT_PATH.open(newline="") as handle:
        for row in csv.DictReader(handle):
            bills = [Decimal(row[f"BILL_AMT{n}"]) for n in range(1, 7)]
            payments = [Decimal(row[f"PAY_AMT{n}"]) for n in range(1, 7)]
            behind = max(int(row["PAY_0"]), 0)
            if bills[0] > 0:
                counts["M0"] += 1  # the latest bill: issued, not yet due
            for k in range(1, 6):
                if bills[k] > 0 and k <= behind and payments[k - 1] < bills[k]:
                    dpd = (UCI_AS_OF - dt.date.fromisoformat(DUE_DATES[k])).days
                    counts[delinquency_bucket(dpd) if dpd > 3 else "M0"] += 1  # 3-day grace
    return counts


def test_documented_buckets_follow_from_the_csv():
    assert buckets_recounted_from_the_csv() == DOCUMENTED_BUCKETS


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
    assert 'data-bucket="M2"><th scope="row">M2</th><td class="num">2,904<' in html


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
