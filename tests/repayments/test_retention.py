"""Retention (issue #8): customers whose line closed over five years ago are anonymized."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from cryptography.fernet import InvalidToken
from django.db import connection
from django.db.models import Count, Sum
from django.urls import reverse

from accounts.models import AuditEvent
from baitiao.pii import pii_decrypt, pii_hash
from repayments.models import (
    AttemptStatus,
    Bill,
    BillStatus,
    CardBinding,
    CreditLineStatus,
    Customer,
    CustomerNote,
    FailureFamily,
    RepaymentAttempt,
)
from repayments.schedules import SCHEDULES
from repayments.selectors.customers import customer_search
from repayments.services.retention import customer_anonymize_expired, retention_cutoff
from tests.factories import BillFactory, CardBindingFactory, CreditLineFactory

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the business time zone
# "Now" for these tests, in business time; lines closed before NOW - 5 years are expired.
NOW = dt.datetime(2032, 6, 1, 3, 30, tzinfo=SHANGHAI)
LONG_AGO = NOW - dt.timedelta(days=6 * 365)
RECENTLY = NOW - dt.timedelta(days=4 * 365)


def closed_customer(no: str, *, closed_at: dt.datetime, bill_status: str = BillStatus.PAID, phone: str) -> Customer:
    """A customer with a closed line, one bill (paid by default), a failed and a paid attempt, a binding, a note."""
    line = CreditLineFactory(
        customer__customer_no=no,
        customer__name="王小明",
        customer__phone=phone,
        customer__email=f"{no.lower()}@example.com",
        status=CreditLineStatus.CLOSED,
        status_changed_at=closed_at,
    )
    customer = line.customer
    binding = CardBindingFactory(customer=customer, reserved_phone=phone, gateway_token=f"sbx_ok_{no.lower()}")
    amount = Decimal("321.45")
    bill = BillFactory(
        credit_line=line,
        bill_no=f"B-{no}",
        due_date=dt.date(2026, 5, 20),
        amount_due=amount,
        amount_paid=amount if bill_status == BillStatus.PAID else Decimal("0"),
        status=bill_status,
    )
    at = dt.datetime(2026, 5, 20, 9, 0, tzinfo=SHANGHAI)
    RepaymentAttempt.objects.create(
        attempt_no=f"A-{no}-1",
        bill=bill,
        card_binding=binding,
        amount=amount,
        status=AttemptStatus.FAILED,
        failure_code="insufficient_funds",
        failure_family=FailureFamily.FUNDS,
        requested_at=at,
        completed_at=at,
    )
    CustomerNote.objects.create(customer=customer, author_id=_staff_id(), body=f"called {phone}, will pay")
    return customer


def _staff_id() -> int:
    from accounts.models import User

    return User.objects.get_or_create(username="retention_note_author")[0].pk


def raw_column(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608 - fixed names
        return cursor.fetchone()[0]


def test_customer_closed_over_five_years_ago_is_anonymized_and_recent_one_is_kept():
    old = closed_customer("RET-OLD", closed_at=LONG_AGO, phone="13900001111")
    recent = closed_customer("RET-NEW", closed_at=RECENTLY, phone="13900002222")
    old_phone_token = raw_column("repayments_customer", "phone", old.pk)

    assert customer_anonymize_expired(now=NOW) == 1

    old.refresh_from_db()
    assert old.anonymized_at == NOW
    assert (old.name, old.phone, old.national_id, old.email) == ("", "", "", "")
    assert (old.phone_hash, old.phone_last4, old.national_id_hash, old.national_id_last4) == ("", "", "", "")
    assert old.customer_no == "RET-OLD"
    binding = CardBinding.objects.get(customer=old)
    assert (binding.reserved_phone, binding.reserved_phone_last4, binding.last4) == ("", "", "0000")
    assert binding.gateway_token == f"anon-{binding.pk}"
    assert CustomerNote.objects.get(customer=old).body == ""
    # The old ciphertext is gone from the row, not merely unreadable.
    assert raw_column("repayments_customer", "phone", old.pk) == ""
    assert pii_decrypt(old_phone_token) == "13900001111"  # (the token itself was the real thing)
    assert customer_search("13900001111").customers == []

    recent.refresh_from_db()
    assert recent.anonymized_at is None
    assert recent.phone == "13900002222"
    assert CustomerNote.objects.get(customer=recent).body == "called 13900002222, will pay"


def test_customer_with_an_open_bill_is_kept_however_old_the_closure():
    owing = closed_customer("RET-OWE", closed_at=LONG_AGO, bill_status=BillStatus.OVERDUE, phone="13900003333")
    assert customer_anonymize_expired(now=NOW) == 0
    owing.refresh_from_db()
    assert owing.anonymized_at is None
    assert owing.phone == "13900003333"


def test_active_line_is_never_anonymized_even_if_its_status_changed_long_ago():
    line = CreditLineFactory(status=CreditLineStatus.ACTIVE, status_changed_at=LONG_AGO)
    assert customer_anonymize_expired(now=NOW) == 0
    assert Customer.objects.get(pk=line.customer_id).anonymized_at is None


def test_a_second_run_changes_nothing_and_writes_no_second_event():
    customer = closed_customer("RET-TWICE", closed_at=LONG_AGO, phone="13900004444")
    assert customer_anonymize_expired(now=NOW) == 1
    first = Customer.objects.get(pk=customer.pk).anonymized_at
    assert customer_anonymize_expired(now=NOW + dt.timedelta(days=1)) == 0
    assert Customer.objects.get(pk=customer.pk).anonymized_at == first
    assert AuditEvent.objects.filter(action="customer.anonymize").count() == 1


def test_anonymizing_keeps_bills_attempts_amounts_and_every_audit_event():
    customers = [closed_customer(f"RET-AGG{n}", closed_at=LONG_AGO, phone=f"1390000555{n}") for n in range(3)]
    ids = [c.pk for c in customers]

    def aggregates():
        bills = Bill.objects.filter(customer_id__in=ids).aggregate(
            n=Count("id"), due=Sum("amount_due"), paid=Sum("amount_paid"), fees=Sum("late_fee")
        )
        attempts = RepaymentAttempt.objects.filter(bill__customer_id__in=ids).aggregate(
            n=Count("id"), amount=Sum("amount")
        )
        tiers = sorted(Customer.objects.filter(id__in=ids).values_list("risk_tier", "credit_score"))
        return bills, attempts, tiers, sorted(CardBinding.objects.filter(customer_id__in=ids).values_list("bank_code"))

    before = aggregates()
    events_before = list(AuditEvent.objects.order_by("id").values())

    # Chunks of one: three transactions, each with its own audit event (a crash mid-run
    # leaves every committed chunk audited).
    assert customer_anonymize_expired(now=NOW, chunk=1) == 3

    assert aggregates() == before
    assert before[0]["due"] == Decimal("964.35")
    assert before[1]["n"] == 3
    events_after = list(AuditEvent.objects.order_by("id").values())
    assert events_after[: len(events_before)] == events_before
    runs = events_after[len(events_before) :]
    assert [(r["action"], r["actor_id"], r["actor_label"]) for r in runs] == [
        ("customer.anonymize", None, "system")
    ] * 3
    assert sorted(number for r in runs for number in r["after"]["customer_nos"]) == ["RET-AGG0", "RET-AGG1", "RET-AGG2"]
    assert [r["after"]["customers"] for r in runs] == [1, 1, 1]
    assert "1390000555" not in str(runs)  # the events carry counts and pseudonyms, never personal data


def test_anonymized_values_no_longer_decrypt_to_the_old_ones_under_any_key():
    customer = closed_customer("RET-KEY", closed_at=LONG_AGO, phone="13900006666")
    customer_anonymize_expired(now=NOW)
    for column in ("name", "phone", "national_id", "email"):
        stored = raw_column("repayments_customer", column, customer.pk)
        assert stored == ""
        with pytest.raises(InvalidToken):
            pii_decrypt(stored)
    assert Customer.objects.filter(phone_hash=pii_hash("13900006666")).count() == 0


def test_retention_period_counts_calendar_years_in_business_time(settings):
    settings.CUSTOMER_RETENTION_YEARS = 5
    settings.CUSTOMER_RETENTION_DAYS = 0
    leap_day = dt.datetime(2032, 2, 29, 10, 0, tzinfo=SHANGHAI)
    assert retention_cutoff(now=leap_day) == dt.datetime(2027, 2, 28, 10, 0, tzinfo=SHANGHAI)
    assert retention_cutoff(now=NOW, retention_days=30) == NOW - dt.timedelta(days=30)
    settings.CUSTOMER_RETENTION_DAYS = 10
    assert retention_cutoff(now=NOW) == NOW - dt.timedelta(days=10)
    with pytest.raises(ValueError):
        retention_cutoff(now=NOW, retention_days=-1)


def test_the_daily_task_uses_the_clock_and_the_schedule_is_declared():
    from repayments.tasks import anonymize_expired_customers

    customer = closed_customer("RET-TASK", closed_at=LONG_AGO, phone="13900007777")
    with time_machine.travel(NOW, tick=False):
        assert anonymize_expired_customers() == 1
    assert Customer.objects.get(pk=customer.pk).anonymized_at == NOW
    (spec,) = [s for s in SCHEDULES if s.func == "repayments.tasks.anonymize_expired_customers"]
    assert spec.cron == "30 3 * * *"


def test_console_shows_an_anonymized_customer_and_a_reveal_does_not_crash(client, agent, supervisor):
    customer = closed_customer("RET-VIEW", closed_at=LONG_AGO, phone="13900008888")
    customer_anonymize_expired(now=NOW)
    client.force_login(supervisor)
    page = client.get(reverse("console:customer-detail", args=[customer.customer_no]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="anonymized"' in html
    assert "13900008888" not in html and "8888" not in html
    assert "(erased: customer anonymized)" in html
    revealed = client.post(
        reverse("console:customer-reveal", args=[customer.customer_no]),
        {"field": "phone", "reason": "customer called about an old bill"},
        headers={"HX-Request": "true"},
    )
    assert revealed.status_code == 200
    assert "(empty)" in revealed.content.decode()
