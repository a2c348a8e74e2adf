"""Issue #16 in the browser, in English and Simplified Chinese: an extension's result is seen before deciding.

An agent opens a bill 37 days late, previews a 30-day extension (htmx on change,
and the Preview button that works without JavaScript), sees the resulting due
date, status, days past due, next debit and bureau effect, and submits; a
supervisor sees the same preview in the approvals inbox, computed for the day of
approval, and approves; the bill is current and nothing is left in the past.

The live server runs on the real clock, so the test reads the real present
(docs/testing.md); the expected dates are computed from the business date.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from baitiao.business_time import business_datetime
from repayments.models import Bill, BillStatus, BureauSuppression, Extension
from tests.e2e.conftest import screenshot
from tests.engine import customer_with_due_bill

LANGUAGES = ["en", "zh-hans"]
# What the preview says, per language (the catalogue's translations).
WORDS = {
    "en": {"pending": "Pending", "overdue": "Overdue", "bureau": "Not reported as late up to"},
    "zh-hans": {"pending": "待还款", "overdue": "逾期", "bureau": "前不上报逾期"},
}
NEW_STRINGS = ["If applied today", "Not reported as late", "Next debit", "Days past due", "If approved today"]


@pytest.fixture
def late_bill(empty_domain) -> Bill:
    """A bill 37 days past due today (business date), with a missed minimum and a late fee."""
    today = timezone.localdate()
    _, bill, _ = customer_with_due_bill(due=today - dt.timedelta(days=37), amount="2000.00")
    Bill.objects.filter(pk=bill.pk).update(
        status=BillStatus.OVERDUE,
        dpd=37,
        dpd_as_of=today,
        past_due_amount=Decimal("10.00"),
        past_due_since=today - dt.timedelta(days=37),
        cycles_past_due=2,
        late_fee=Decimal("0.19"),
    )
    bill.refresh_from_db()
    return bill


def expected(today: dt.date) -> dict[str, str]:
    due = today + dt.timedelta(days=30)
    return {
        "due": due.isoformat(),
        "next_debit": f"{due.isoformat()} 09:00",
        "until": (due + dt.timedelta(days=3)).isoformat(),
    }


def assert_preview(text: str, language: str, today: dt.date) -> None:
    want = expected(today)
    words = WORDS[language]
    assert want["due"] in text and want["next_debit"] in text and want["until"] in text, text
    assert f"{words['overdue']} → {words['pending']}" in text, text
    assert "37 → 0" in text, text
    assert words["bureau"] in text, text
    if language != "en":
        for english in NEW_STRINGS:
            assert english not in text, f"untranslated: {english}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_agent_previews_a_thirty_day_extension_and_a_supervisor_approves_the_same(
    language, late_bill, login, agent, supervisor
):
    bill, customer = late_bill, late_bill.customer
    page = login(agent, language)
    base = page.url.rstrip("/")
    page.goto(f"{base}/console/customers/{customer.customer_no}/")
    page.click(f"[data-testid=extend-{bill.bill_no}]")

    # htmx: the preview follows the inputs, before anything is submitted.
    page.fill("#id_days", "30")
    page.select_option("#id_reason", "hardship")
    page.wait_for_selector("#extension-preview [data-testid=extension-preview]")
    assert_preview(page.inner_text("#extension-preview"), language, timezone.localdate())
    assert not Extension.objects.filter(bill=bill).exists()

    # Without JavaScript's help: the Preview button posts the form and shows the same.
    with page.expect_navigation():
        page.click("[data-testid=extension-preview-button]")
    page.wait_for_selector("[data-testid=extension-preview]")
    assert page.input_value("#id_days") == "30"  # the form is kept, ready to submit
    assert_preview(page.inner_text("[data-testid=extension-preview]"), language, timezone.localdate())
    assert not Extension.objects.filter(bill=bill).exists()
    if language == "en":
        screenshot(page, "extension-preview")

    page.fill("#id_note", "Lost their job; new salary from next month")
    page.click("[data-testid=extension-form] button.primary")
    page.wait_for_selector("[data-testid=pending-approvals]")
    extension = Extension.objects.get(bill=bill)
    assert extension.status == "pending"

    boss = login(supervisor, language)
    boss.goto(f"{base}/console/approvals/")
    cell = boss.inner_text(f"[data-testid=approval-preview-{extension.pk}]")
    assert_preview(cell, language, timezone.localdate())
    if language == "en":
        screenshot(boss, "extension-approval-preview")
    boss.click(f"[data-testid=approve-extension-{extension.pk}]")
    boss.wait_for_selector(".messages .success")
    approved_on = timezone.localdate()

    bill.refresh_from_db()
    now = timezone.now()
    # Thirty days from the day of approval (the day before it, if midnight passed just now).
    assert bill.due_date in {approved_on + dt.timedelta(days=days) for days in (29, 30)}
    assert (bill.status, bill.dpd) == (BillStatus.PENDING, 0)
    assert bill.retry_at == business_datetime(bill.due_date, dt.time(9)) and bill.retry_at > now
    suppression = BureauSuppression.objects.get(extension=extension)
    assert suppression.suppress_until > approved_on
    boss.goto(f"{base}/console/customers/{customer.customer_no}/")
    assert bill.due_date.isoformat() in boss.inner_text(f"[data-testid=due-{bill.bill_no}]")
