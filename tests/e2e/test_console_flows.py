"""The console's main flows in a real browser, in English and Simplified Chinese.

Each flow runs against the live server; the repair flow also runs the sandbox bank
and a django-q2 cluster as real processes, so the retry after the new binding is
the real engine debiting the real sandbox and booking its signed callback.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from repayments.models import (
    Bill,
    BillStatus,
    BindingRepairCase,
    CardBindingStatus,
    Extension,
    FailureFamily,
)
from tests.e2e.conftest import screenshot
from tests.engine import customer_with_due_bill, engine_clock, start_cluster

LANGUAGES = ["en", "zh-hans"]
# A UnionPay test card the sandbox binds (reserved phone and SMS code as UnionPay publishes them).
TEST_CARD, TEST_CARD_PHONE, SMS_CODE = "6216261000000000018", "13552535506", "111111"


def _bad_binding_customer():
    """A customer whose card expired: binding invalid, repair case open, bill overdue with a binding failure."""
    clock = engine_clock()
    customer, bill, binding = customer_with_due_bill(
        scenario="card_expired", amount="1234.56", due=clock.today - dt.timedelta(days=5)
    )
    now = timezone.now()
    binding.status, binding.status_changed_at, binding.status_reason = CardBindingStatus.INVALID, now, "card_expired"
    binding.save()
    Bill.objects.filter(pk=bill.pk).update(
        status=BillStatus.OVERDUE,
        dpd=5,
        last_failure_family=FailureFamily.BINDING,
        last_failure_code="card_expired",
        last_failure_at=now,
    )
    BindingRepairCase.objects.create(customer=customer, card_binding=binding, failure_code="card_expired")
    return customer, bill


def _queue_filler(n: int) -> None:
    """Other failed bills, so the worklist screenshot shows a working day."""
    clock = engine_clock()
    families = [FailureFamily.SYSTEM, FailureFamily.FUNDS, FailureFamily.BINDING]
    codes = {"system": "bank_system_error", "funds": "insufficient_funds", "binding": "card_closed"}
    for index in range(n):
        family = families[index % 3]
        _, bill, _ = customer_with_due_bill(
            amount=f"{300 + index * 37}.50", due=clock.today - dt.timedelta(days=index % 4)
        )
        Bill.objects.filter(pk=bill.pk).update(
            last_failure_family=family,
            last_failure_code=codes[family],
            last_failure_at=timezone.now() - dt.timedelta(minutes=index * 7),
        )


@pytest.mark.parametrize("language", LANGUAGES)
def test_agent_repairs_a_bad_binding_and_sees_the_retry_succeed(language, empty_domain, live_bank, login, agent):
    customer, bill = _bad_binding_customer()
    if language == "en":
        _queue_filler(8)
    bank = live_bank(duplicate_rate=0.3, hold_seconds=0.5)
    cluster = start_cluster(bank.url)
    interactive = start_cluster(bank.url, Q_CLUSTER_NAME="notify")  # customer messages
    critical = start_cluster(bank.url, Q_CLUSTER_NAME="critical")  # agents' retries
    try:
        page = login(agent, language)
        page.goto(page.url.rstrip("/") + "/console/?queue=repair")
        if language == "en":
            page.goto(page.url.split("/console/")[0] + "/console/")
            screenshot(page, "worklist")
            page.goto(page.url + "?queue=repair")
        page.click(f"[data-testid=repair-{customer.customer_no}]")
        page.fill("#id_card_number", TEST_CARD)
        page.fill("#id_reserved_phone", TEST_CARD_PHONE)
        if language == "en":
            screenshot(page, "binding-repair-form")
        page.click("[data-testid=binding-form] button[type=submit]")
        page.fill("#id_sms_code", SMS_CODE)
        page.click("[data-testid=confirm-form] button[type=submit]")
        page.wait_for_url(re.compile(rf"/console/customers/{customer.customer_no}/$"))
        assert TEST_CARD not in page.content()  # the card number never comes back into a page
        # The engine debits the new card; the page refreshes itself until the result arrives.
        page.wait_for_selector("[data-testid=attempts] [data-status=succeeded]", timeout=60_000)
        page.wait_for_selector(f"#bill-{bill.bill_no} [data-status=paid]", timeout=30_000)
        if language == "en":
            screenshot(page, "customer-view")
        else:
            screenshot(page, "customer-view-zh-hans")
            assert "账单" in page.content()
    finally:
        cluster.stop()
        interactive.stop()
        critical.stop()
    bill.refresh_from_db()
    assert (bill.status, bill.amount_paid) == (BillStatus.PAID, Decimal("1234.56"))
    assert bill.attempts.filter(status="succeeded").count() == 1  # duplicate callbacks booked once


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_ten_day_extension_needs_a_supervisor_and_moves_the_due_date(
    clock, language, empty_domain, login, agent, supervisor
):
    customer, bill, _ = customer_with_due_bill(due=clock.today - dt.timedelta(days=6))
    Bill.objects.filter(pk=bill.pk).update(status=BillStatus.OVERDUE, dpd=6, late_fee=Decimal("3.70"))
    page = login(agent, language)
    base = page.url.rstrip("/")
    page.goto(f"{base}/console/customers/{customer.customer_no}/")
    page.click(f"[data-testid=extend-{bill.bill_no}]")
    page.fill("#id_days", "10")
    page.select_option("#id_reason", "hardship")
    page.fill("#id_note", "Customer lost their job; salary due on the 5th")
    page.click("[data-testid=extension-form] button[type=submit]")
    page.wait_for_selector("[data-testid=pending-approvals]")
    assert Extension.objects.get(bill=bill).status == "pending"
    # The agent cannot approve: the inbox is not theirs.
    response = page.goto(f"{base}/console/approvals/")
    assert response.status == 403

    boss = login(supervisor, language)
    boss.goto(f"{base}/console/approvals/")
    extension = Extension.objects.get(bill=bill)
    if language == "en":
        screenshot(boss, "approvals-inbox")
    boss.click(f"[data-testid=approve-extension-{extension.pk}]")
    boss.wait_for_selector(".messages .success")
    approved_on = timezone.localdate()  # the business date of the approval (issue #16: days count from it)
    boss.goto(f"{base}/console/customers/{customer.customer_no}/")
    bill.refresh_from_db()
    # The bill was late: ten days from the day of approval (the day before, if midnight passed just now).
    assert bill.due_date in {approved_on + dt.timedelta(days=days) for days in (9, 10)}
    assert bill.due_date.isoformat() in boss.inner_text(f"[data-testid=due-{bill.bill_no}]")
    assert bill.status == BillStatus.PENDING


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_reveal_appears_in_the_auditors_view(clock, language, empty_domain, login, agent, auditor):
    customer, _, _ = customer_with_due_bill(due=clock.today)
    page = login(agent, language)
    base = page.url.rstrip("/")
    page.goto(f"{base}/console/customers/{customer.customer_no}/")
    assert customer.phone not in page.content()
    page.click("[data-testid=reveal-phone]")
    page.fill("[data-testid=reveal-reason-phone]", "Customer called to confirm the number, ticket 8812")
    page.click("#field-phone button[type=submit]")
    page.wait_for_selector(f"[data-testid=revealed-phone]:has-text('{customer.phone}')")

    inspector = login(auditor, language)
    inspector.goto(f"{base}/console/audit/?action=customer.reveal&customer={customer.customer_no}")
    row = inspector.inner_text("[data-testid=audit-events] tbody tr")
    assert agent.username in row
    assert "ticket 8812" in row
    assert customer.phone not in inspector.content()
    assert AuditEvent.objects.filter(action="customer.reveal", actor=agent).count() == 1
