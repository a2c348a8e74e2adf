"""Reading and finding in a real browser (issue #16), in English and Chinese.

* From the dashboard's M2 bucket row to its bills: the list holds only M2 bills,
  as many as the dashboard counted.
* A filtered export long enough to be queued: its page shows the progress while a
  real queue cluster writes the file, then the download link; the file holds only
  the filtered rows, and no personal data in clear.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest

from repayments.models import BillStatus
from repayments.services.dashboard import dashboard_refresh
from tests.engine import start_cluster
from tests.factories import BillFactory, CardBindingFactory

# A live server serves another thread: the rows must be committed (a transactional test).
pytestmark = pytest.mark.django_db(transaction=True)

LANGUAGES = ["en", "zh-hans"]
# DPD → bucket: 0 M0, 1–30 M1, 31–60 M2, 61–90 M3, over 90 M4+ (settings.DELINQUENCY_BUCKETS).
SPREAD = [(0, BillStatus.PENDING, 4), (12, BillStatus.OVERDUE, 5), (35, BillStatus.OVERDUE, 7),
          (59, BillStatus.OVERDUE, 6), (75, BillStatus.OVERDUE, 4), (120, BillStatus.OVERDUE, 3),
          (0, BillStatus.PAID, 4)]  # fmt: skip
M2_BILLS = 13  # 7 at 35 DPD and 6 at 59 DPD


def _bills_in_every_bucket() -> list:
    """Open bills in every bucket (13 in M2) and some paid ones, each customer with a card."""
    made = []
    for dpd, status, count in SPREAD:
        for _ in range(count):
            bill = BillFactory(
                status=status,
                dpd=dpd,
                due_date=dt.date(2026, 10, 20),
                amount_due=Decimal("1200.00"),
                amount_paid=Decimal("1200.00") if status == BillStatus.PAID else Decimal("0.00"),
            )
            CardBindingFactory(customer=bill.customer)
            made.append(bill)
    return made


def _digits(text: str) -> int:
    return int(re.sub(r"[^0-9]", "", text))


@pytest.mark.parametrize("language", LANGUAGES)
def test_drill_down_from_the_m2_bucket_to_its_bills(language, empty_domain, live_server, login, analyst):
    bills = _bills_in_every_bucket()
    assert dashboard_refresh(trigger="command").refreshed
    page = login(analyst, language)
    page.goto(f"{live_server.url}/console/dashboard/")
    row = page.locator("[data-testid=section-buckets] table tbody tr", has=page.locator("td >> text='M2'"))
    assert row.count() == 1
    counted = _digits(row.locator("td").nth(2).inner_text())
    assert counted == M2_BILLS
    row.locator("a[data-testid^=drill-buckets-]").click()
    page.wait_for_url(re.compile(r"/console/bills/\?.*bucket=M2"))
    assert _digits(page.inner_text("[data-testid=bill-count]")) == counted
    listed = page.locator("[data-testid=bills] tbody tr")
    assert listed.count() == counted
    assert set(listed.evaluate_all("rows => rows.map(r => r.dataset.bucket)")) == {"M2"}
    m2 = {b.bill_no for b in bills if 31 <= b.dpd <= 60}
    shown = set(page.locator("[data-testid=bills] tbody tr td:first-child a").all_inner_texts())
    assert shown == m2
    assert page.locator("html").get_attribute("lang") == language


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_filtered_export_with_progress_reaching_the_download_link(
    language, empty_domain, live_server, login, analyst, settings
):
    settings.EXPORTS = {**settings.EXPORTS, "sync_max_rows": 5, "progress_rows": 2}
    bills = _bills_in_every_bucket()
    page = login(analyst, language)
    page.goto(f"{live_server.url}/console/data/")
    form = page.locator("form[action$='/console/data/export/']")
    form.locator("select[name=resource]").select_option("bills")
    form.locator("select[name=status]").select_option("overdue")
    form.locator("select[name=bucket]").select_option("M2")
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/console/data/export/\d+/$"))
    # Queued, nothing written yet: the page says so and polls.
    assert page.locator("[data-testid=export-status]").get_attribute("data-status") == "queued"
    progress = page.inner_text("[data-testid=export-progress]")
    assert sorted(re.findall(r"\d+", progress), key=int) == ["0", str(M2_BILLS)]
    assert page.locator("#export-progress[hx-trigger]").count() == 1
    cluster = start_cluster("http://127.0.0.1:9")
    try:
        link = page.locator("[data-testid=export-download]")
        link.wait_for(timeout=90_000)  # the page's own polling brings the link
        assert page.locator("[data-testid=export-status]").get_attribute("data-status") == "done"
        assert re.findall(r"\d+", page.inner_text("[data-testid=export-progress]")) == [str(M2_BILLS)] * 2
        with page.expect_download() as download:
            link.click()
        content = open(download.value.path(), encoding="utf-8-sig").read()  # noqa: PTH123 - Playwright's temp file
    finally:
        cluster.stop()
    rows = list(csv.reader(io.StringIO(content)))
    assert rows[0][:2] == ["bill_no", "customer_no"]
    m2 = {b.bill_no for b in bills if 31 <= b.dpd <= 60}
    assert {row[0] for row in rows[1:]} == m2 and len(rows) - 1 == M2_BILLS
    assert {row[rows[0].index("status")] for row in rows[1:]} == {"overdue"}
    for bill in bills:  # no personal data in clear: no phone or name of any customer is in the file
        assert bill.customer.phone not in content
        assert bill.customer.name not in content
