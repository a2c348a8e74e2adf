"""The dashboard's drill-down to the bills behind each row, and failures by reason code (issue #16)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from repayments.models import Bill, BillStatus
from repayments.selectors.dashboard import DashboardFilters, dashboard_sections
from tests.repayments.test_dashboard import _sql, add_dashboard_activity

pytestmark = pytest.mark.django_db


@pytest.fixture
def activity(agent, supervisor):
    return add_dashboard_activity(agent=agent, supervisor=supervisor)


def _dashboard(client, params=None):
    page = client.get(reverse("console:dashboard"), params or {})
    assert page.status_code == 200
    return {section.key: section for section in page.context["sections"]}


def test_every_bucket_row_links_to_the_bill_list_that_counts_the_same_bills(client, analyst, activity):
    client.force_login(analyst)
    buckets = _dashboard(client)["buckets"]
    assert len(buckets.links) == len(buckets.rows) > 0
    for link, (bucket, currency, bills, _balance) in buckets.linked_rows:
        assert parse_qs(urlsplit(link).query) == {"bucket": [bucket], "currency": [currency]}
        listed = client.get(link)
        assert listed.status_code == 200
        assert listed.context["errors"] == []
        assert listed.context["count"] == bills, bucket
        assert all(bill.bucket == bucket for bill in listed.context["page"].rows)


def test_a_drill_down_keeps_the_dashboards_filters(client, analyst, activity):
    client.force_login(analyst)
    filters = {"month_from": "2026-09", "month_to": "2026-10", "risk_tier": "high"}
    sections = _dashboard(client, filters)
    query = parse_qs(urlsplit(sections["buckets"].links[2]).query)
    assert query == {
        "bucket": [sections["buckets"].rows[2][0]],
        "currency": [sections["buckets"].rows[2][1]],
        "month_from": ["2026-09"],
        "month_to": ["2026-10"],
        "risk_tier": ["high"],
    }
    listed = client.get(sections["buckets"].links[2])
    assert listed.context["count"] == sections["buckets"].rows[2][2]
    overdue = sections["overdue"]
    for link, (month, _currency, _due, overdue_bills, _rate, _balance) in overdue.linked_rows:
        listed = client.get(link)
        assert listed.context["count"] == overdue_bills, month
        assert {bill.status for bill in listed.context["page"].rows} <= {BillStatus.OVERDUE}


def test_failures_are_broken_down_by_reason_code_and_each_row_leads_to_its_open_bills(client, analyst, activity):
    expected = _sql(
        "SELECT to_char(requested_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM'), failure_family, failure_code, count(*)"
        " FROM repayments_repaymentattempt WHERE status = 'failed' GROUP BY 1, 2, 3"
    )
    section = {s.key: s for s in dashboard_sections(DashboardFilters())}["failures_reason"]
    assert {(row[0], row[3], row[4]) for row in section.rows} == {(m, code, n) for m, _f, code, n in expected}
    assert {row[3] for row in section.rows} == {"insufficient_funds", "bank_system_error", "card_expired", "other"}
    # The fixture writes attempts only; the engine also records a bill's latest failure on it.
    expired = [b.pk for b in activity["bills"][2::4][:5]]
    Bill.objects.filter(pk__in=expired).update(last_failure_code="card_expired", last_failure_family="binding")
    client.force_login(analyst)
    page = _dashboard(client)["failures_reason"]
    code_row = next(i for i, row in enumerate(page.rows) if row[3] == "card_expired")
    listed = client.get(page.links[code_row])
    assert listed.context["errors"] == []
    open_expired = Bill.objects.filter(
        last_failure_code="card_expired", status__in=[BillStatus.PENDING, BillStatus.OVERDUE]
    ).count()
    assert listed.context["count"] == open_expired >= len(expired)
    assert {bill.last_failure_code for bill in listed.context["page"].rows} == {"card_expired"}


def test_a_refused_bill_filter_is_named_and_the_list_stays_empty(client, analyst):
    client.force_login(analyst)
    listed = client.get(reverse("console:bills"), {"bucket": "M9", "month_from": "2026-13"})
    assert listed.status_code == 200
    assert listed.context["errors"] == [
        "Bucket: “M9” is not a delinquency bucket.",
        "Period from: “2026-13” is not a month; use YYYY-MM, e.g. 2026-10.",
    ]
    assert listed.context["page"].rows == []


def test_the_bill_list_reads_a_fixed_number_of_queries(client, analyst, django_assert_max_num_queries):
    client.force_login(analyst)
    with django_assert_max_num_queries(12):
        listed = client.get(reverse("console:bills"), {"bucket": "M2"})
    assert listed.context["count"] == Bill.objects.in_bucket("M2").count()
    assert len(listed.context["page"].rows) == 50
