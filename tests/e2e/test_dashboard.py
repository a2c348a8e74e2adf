"""The receivables dashboard in a real browser: an analyst sees every chart drawn, CSP intact."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from repayments.models import BillStatus
from tests.e2e.conftest import screenshot
from tests.factories import BillFactory, CardBindingFactory
from tests.repayments.test_dashboard import add_dashboard_activity

# A live server serves another thread, so the test needs committed rows: a
# transactional test. Marked, so pytest-django runs it with the transactional tests at
# the end; unmarked, it ran among the others and its flush emptied their database.
pytestmark = pytest.mark.django_db(transaction=True)


def _charts_drawn(page) -> int:
    page.wait_for_selector("canvas[data-chart='buckets'][data-drawn='1']")
    return page.locator("canvas[data-drawn='1']").count()


def _overdue_bills(count: int = 80) -> None:
    """Overdue bills with a card each: the test's own data (earlier transactional tests flushed the UCI rows)."""
    for index in range(count):
        bill = BillFactory(
            status=BillStatus.OVERDUE,
            due_date=dt.date(2026, 10, 20) - dt.timedelta(days=index % 60),
            dpd=10 + index % 60,
            late_fee=Decimal("5.00"),
            amount_due=Decimal("1000.00") + index,
        )
        CardBindingFactory(customer=bill.customer, gateway_token=f"sbx_ok_dash{index:04d}")


def test_an_analyst_sees_every_dashboard_chart_drawn_in_both_languages(
    empty_domain, live_server, login, analyst, agent, supervisor
):
    _overdue_bills()
    add_dashboard_activity(agent=agent, supervisor=supervisor)
    page = login(analyst)
    problems: list[str] = []  # script errors and CSP violations both land here
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{live_server.url}/console/dashboard/")
    sections = page.locator("[data-testid^=section-]").count()
    assert sections == 10  # failures by reason code: issue #16
    assert _charts_drawn(page) == sections  # every section has data here
    assert "Data as of" in page.inner_text("[data-testid=refresh-info]")
    # The chart really drew: some of the bucket canvas's pixels are not blank.
    painted = page.evaluate(
        """() => {
            const canvas = document.querySelector("canvas[data-chart='buckets']");
            const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
            return painted;
        }"""
    )
    assert painted > 1000
    with page.expect_download() as download:
        page.click("[data-testid=csv-buckets]")
    assert download.value.suggested_filename == "dashboard-buckets.csv"
    screenshot(page, "dashboard")
    page.select_option("select[name=language]", "zh-hans")  # submits itself (console.js)
    page.wait_for_selector("html[lang='zh-hans']")
    assert "应收账款看板" in page.inner_text("h1")
    assert _charts_drawn(page) == sections
    screenshot(page, "dashboard-zh-hans")
    assert problems == []
