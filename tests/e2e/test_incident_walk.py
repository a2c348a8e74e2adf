"""The outage walk of issue #16 in a real browser, in English and Simplified Chinese.

One supervisor declares (a start a month ahead is refused, a real window is
accepted, a mistaken open one is withdrawn and its banner goes), reads the affected
bills with their links, and asks for relief; a second supervisor approves it from
the approvals inbox; a real django-q2 cluster applies it while the batch heading
counts up by itself to "Applied N/N" and the Reverse form appears without a reload;
after the reversal the dashboard's incident impact shows the bills relieved and
reversed (the cluster refreshes the rollups after each).
"""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import User
from repayments.bins import bank_label
from repayments.models import FailureFamily, Incident, IncidentStatus, ReliefBatch, ReliefStatus
from tests.conftest import PERSONA_PASSWORD_HASH
from tests.e2e.conftest import screenshot
from tests.engine import start_cluster
from tests.repayments.test_incidents import BANK, END, OTHER_BANK, START, failed_bill

pytestmark = pytest.mark.django_db(transaction=True)

LANGUAGES = ["en", "zh-hans"]
BILLS = 55  # more than one page of affected bills (50 a page)
# The relief run needs no bank; its cluster is given an address nothing answers.
NO_BANK = "http://127.0.0.1:9"


@pytest.fixture
def second_supervisor(db) -> User:
    """Another supervisor (maker-checker), who logs in with the personas' password."""
    user = User.objects.create(username="test_supervisor_two", password=PERSONA_PASSWORD_HASH)
    user.groups.add(Group.objects.get(name="supervisor"))
    return user


@pytest.fixture
def outage_bills(empty_domain):
    """Bills whose debit failed with a system code inside the incident's window, on its bank."""
    return [failed_bill(FailureFamily.SYSTEM, "bank_system_error") for _ in range(BILLS)]


def _local(moment: dt.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def _declare(page, base: str, *, bank: str, start: dt.datetime, end: dt.datetime | None, description: str) -> None:
    page.goto(f"{base}/console/incidents/declare/")
    page.select_option("#id_bank_code", bank)
    page.fill("#id_started_at", _local(start))
    if end is not None:
        page.fill("#id_ended_at", _local(end))
    page.fill("#id_description", description)
    with page.expect_navigation():  # the answer (the form with its errors, or the incident) has loaded
        page.click("[data-testid=declare-form] button[type=submit]")


def _impact_row(page, base: str, incident_id: int, *, timeout: float = 90.0) -> list[str]:
    """The incident's row of the dashboard's impact table, reloaded until it shows a reversal."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(f"{base}/console/dashboard/")
        row = page.locator(f"[data-testid=section-incidents] tbody tr:has(td:text-is('#{incident_id}'))")
        if row.count():
            cells = [cell.strip() for cell in row.first.locator("td").all_inner_texts()]
            if cells[9] not in ("0", ""):
                return cells
        if time.monotonic() > deadline:
            raise AssertionError(f"the dashboard never showed the reversal of incident {incident_id}")
        time.sleep(1)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_outage_walk_declare_withdraw_affected_approve_from_the_inbox_live_status_reverse_impact(
    language, outage_bills, login, supervisor, second_supervisor, live_server
):
    base = live_server.url
    page = login(supervisor, language)

    # A start a month ahead is refused on its field, naming it; nothing is written.
    month_ahead = timezone.now() + dt.timedelta(days=30)
    _declare(page, base, bank=BANK, start=month_ahead, end=None, description="typed the wrong month")
    error = page.inner_text("[data-testid=declare-form]")
    assert timezone.localtime(month_ahead).strftime("%Y-%m-%d %H:%M") in error
    assert not Incident.objects.exists()
    # The bank is chosen from the banks we have, named in the reader's language.
    assert page.locator("#id_bank_code option[value=XYZBANK]").count() == 0
    assert page.locator(f"#id_bank_code option[value={BANK}]").inner_text() == bank_label(BANK, language)

    # A mistaken open incident: its banner shows; withdrawn, the banner goes.
    _declare(page, base, bank=OTHER_BANK, start=START, end=None, description="declared on the wrong bank")
    page.wait_for_url(re.compile(r"/console/incidents/\d+/$"))
    mistaken = Incident.objects.get(bank_code=OTHER_BANK)
    assert page.locator("[data-testid=incident-banner]").count() == 1
    page.click("[data-testid=withdraw-incident] summary")
    page.fill("[data-testid=withdraw-incident] input[name=withdraw-reason]", "declared on the wrong bank")
    page.click("[data-testid=withdraw-submit]")
    page.wait_for_selector("[data-testid=incident-withdrawn]")
    assert page.locator("[data-testid=incident-banner]").count() == 0
    mistaken.refresh_from_db()
    assert mistaken.status == IncidentStatus.WITHDRAWN

    # The real one: a past window on the bank, resolved at once.
    _declare(page, base, bank=BANK, start=START, end=END, description="core banking down")
    page.wait_for_url(re.compile(r"/console/incidents/\d+/$"))
    incident = Incident.objects.get(bank_code=BANK)
    assert page.inner_text("[data-testid=incident-bank]") == bank_label(BANK, language)
    incident_url = page.url

    # The affected bills, with links to the customer and the bill, one page at a time.
    rows = page.locator("[data-testid=affected-bills] tbody tr")
    assert rows.count() == 50
    first = sorted(outage_bills, key=lambda bill: bill.pk)[0]
    link = page.locator(f"[data-testid=affected-bills] a[href$='#bill-{first.bill_no}']")
    assert link.count() == 1
    page.click("[data-testid=affected-next]")
    assert page.locator("[data-testid=affected-bills] tbody tr").count() == BILLS - 50
    page.goto(incident_url)
    page.click(f"[data-testid=affected-bills] a[href$='#bill-{first.bill_no}']")
    page.wait_for_selector(f"#bill-{first.bill_no}")
    page.goto(incident_url)
    if language == "en":
        screenshot(page, "incident-affected")
    else:  # the incident page's own words are translated
        text = page.inner_text("main")
        assert "受影响的账单" in text and "撤回：误报" in text
        assert "Affected bills" not in text and "Withdraw: declared by mistake" not in text

    # Relief requested by the first supervisor, approved from the inbox by the second.
    page.fill("[data-testid=relief-request-form] input[name=days]", "7")
    page.click("[data-testid=relief-request-form] button[type=submit]")
    page.wait_for_selector("[data-testid=relief-status][data-status=requested]")
    batch = ReliefBatch.objects.get(incident=incident)
    assert batch.bills_total == BILLS

    checker = login(second_supervisor, language)
    checker.goto(f"{base}/console/approvals/")
    if language == "en":
        screenshot(checker, "approvals-relief")
    checker.click(f"[data-testid=approve-relief-{batch.pk}]")
    checker.wait_for_selector(".messages .success")
    assert checker.url.endswith("/console/approvals/")

    # Live status: the page is open on the queued batch before any worker runs; the
    # heading then counts up by itself and the Reverse form comes, with no reload.
    page.goto(incident_url)
    page.wait_for_selector("[data-testid=relief-status][data-status=approved]")
    assert f"0/{BILLS}" in page.inner_text("[data-testid=relief-status]")
    page.evaluate("window.notReloaded = true")
    cluster = start_cluster(NO_BANK, Q_CLUSTER_NAME="critical")  # relief runs and the dashboard refresh (lanes)
    try:
        page.wait_for_selector("[data-testid=relief-status][data-status=done]", timeout=120_000)
        assert f"{BILLS}/{BILLS}" in page.inner_text("[data-testid=relief-status]")
        page.wait_for_selector("[data-testid=reverse-relief]")
        assert page.evaluate("window.notReloaded === true")  # htmx swapped the section in place
        if language == "en":
            screenshot(page, "incident-relief-applied")
        page.fill(f"[data-testid=relief-batch-{batch.pk}] input[name=reason]", "declared with the wrong window")
        page.click("[data-testid=reverse-relief]")
        page.wait_for_selector("[data-testid=relief-status][data-status=reversed]")
        batch.refresh_from_db()
        assert (batch.status, batch.bills_applied, batch.bills_reversed) == (ReliefStatus.REVERSED, BILLS, BILLS)

        # The dashboard's impact: relieved and reversed, once the cluster has refreshed it.
        cells = _impact_row(page, base, incident.pk)
        assert cells[7:10] == [str(BILLS), str(BILLS), str(BILLS)]
    finally:
        cluster.stop()
