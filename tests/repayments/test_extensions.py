"""Extensions and waivers: agent policy, maker-checker, effects, double submits, stale pages, races."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Now

from accounts.models import AuditEvent
from baitiao.business_time import business_datetime
from repayments.models import ApprovalStatus, Bill, BillStatus, BureauSuppression, Extension, RepaymentAttempt, Waiver
from repayments.services.errors import RuleViolation
from repayments.services.extensions import (
    extension_decide,
    extension_preview,
    extension_request,
    extension_within_policy,
    waiver_decide,
    waiver_request,
)
from tests.factories import BillFactory

NOW = dt.datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture(autouse=True)
def frozen_today():
    with time_machine.travel(NOW, tick=False):
        yield


def overdue_bill(**kwargs) -> Bill:
    """Due 2026-11-20, 10 days past due on 11-30, with a 5.00 late fee."""
    defaults = {
        "due_date": dt.date(2026, 11, 20),
        "status": BillStatus.OVERDUE,
        "dpd": 10,
        "late_fee": Decimal("5.00"),
    }
    return BillFactory(**(defaults | kwargs))


def request(bill, user, days, reason="hardship", **kwargs):
    return extension_request(
        bill_id=bill.id, requested_by=user, days=days, reason=reason, request_token=uuid.uuid4(), **kwargs
    )


def test_agent_grants_up_to_seven_days_at_once(agent):
    bill = overdue_bill()
    extension = request(bill, agent, 7)
    bill.refresh_from_db()
    assert (extension.status, extension.by_policy, extension.decided_by) == (ApprovalStatus.APPROVED, True, None)
    # Ten days late on 11-30: the seven days count from today, so the bill is current again.
    assert (extension.due_date_before, extension.due_date_after) == (dt.date(2026, 11, 20), dt.date(2026, 12, 7))
    assert (bill.due_date, bill.status, bill.dpd) == (dt.date(2026, 12, 7), BillStatus.PENDING, 0)
    assert bill.original_due_date == dt.date(2026, 11, 20)
    suppression = BureauSuppression.objects.get(extension=extension)
    assert suppression.suppress_until == dt.date(2026, 12, 10)
    actions = set(AuditEvent.objects.filter(customer_no=bill.customer.customer_no).values_list("action", flat=True))
    assert {"extension.request", "extension.apply"} <= actions


def test_agent_requests_ten_days_and_cannot_approve_it(agent, supervisor):
    bill = overdue_bill()
    extension = request(bill, agent, 10)
    assert extension.status == ApprovalStatus.PENDING
    bill.refresh_from_db()
    assert bill.due_date == dt.date(2026, 11, 20)
    with pytest.raises(RuleViolation, match="may not approve"):
        extension_decide(extension_id=extension.id, decided_by=agent, approve=True)
    extension_decide(extension_id=extension.id, decided_by=supervisor, approve=True, note="ok")
    bill.refresh_from_db()
    extension.refresh_from_db()
    assert (extension.status, extension.decided_by) == (ApprovalStatus.APPROVED, supervisor)
    assert bill.due_date == dt.date(2026, 12, 10)  # ten days from the day of approval


def test_supervisor_cannot_approve_own_extension(supervisor):
    bill = overdue_bill()
    extension = request(bill, supervisor, 20)
    with pytest.raises(RuleViolation, match="your own request"):
        extension_decide(extension_id=extension.id, decided_by=supervisor, approve=True)
    assert Extension.objects.get(pk=extension.pk).status == ApprovalStatus.PENDING


def test_the_database_refuses_an_approver_who_is_the_requester(supervisor):
    bill = overdue_bill()
    with pytest.raises(IntegrityError), transaction.atomic():
        Extension.objects.create(
            bill=bill,
            customer=bill.customer,
            days=3,
            reason="hardship",
            requested_by=supervisor,
            decided_by=supervisor,
            decided_at=NOW,
            status=ApprovalStatus.APPROVED,
            request_token=uuid.uuid4(),
        )


def test_a_second_extension_of_the_same_bill_needs_approval(agent):
    bill = overdue_bill()
    request(bill, agent, 3)
    second = request(bill, agent, 2)
    assert second.status == ApprovalStatus.PENDING


def test_a_customers_third_extension_in_twelve_months_needs_approval(agent, settings):
    # Only the count rule here: bills months late would need approval for their shift anyway.
    settings.EXTENSION_POLICY = {**settings.EXTENSION_POLICY, "agent_max_shift_days": 90}
    first = overdue_bill()
    line = first.credit_line
    second = BillFactory(credit_line=line, due_date=dt.date(2026, 10, 31), status=BillStatus.OVERDUE)
    third = BillFactory(credit_line=line, due_date=dt.date(2026, 9, 30), status=BillStatus.OVERDUE)
    assert request(first, agent, 3).status == ApprovalStatus.APPROVED
    assert request(second, agent, 3).status == ApprovalStatus.APPROVED
    assert request(third, agent, 3).status == ApprovalStatus.PENDING


def test_a_system_fault_extension_waives_the_late_fee(agent):
    bill = overdue_bill()
    extension = request(bill, agent, 5, reason="system_fault")
    bill.refresh_from_db()
    assert (bill.late_fee, bill.late_fee_waived, extension.late_fee_waived) == (
        Decimal("5.00"),
        Decimal("5.00"),
        Decimal("5.00"),
    )


def test_a_hardship_extension_keeps_the_late_fee(agent):
    bill = overdue_bill()
    request(bill, agent, 5)
    bill.refresh_from_db()
    assert bill.late_fee_waived == Decimal("0.00")


def test_submitting_the_same_form_twice_makes_one_extension(agent):
    bill = overdue_bill()
    token = uuid.uuid4()
    first = extension_request(bill_id=bill.id, requested_by=agent, days=10, reason="hardship", request_token=token)
    again = extension_request(bill_id=bill.id, requested_by=agent, days=10, reason="hardship", request_token=token)
    assert first.pk == again.pk
    assert Extension.objects.filter(bill=bill).count() == 1


def test_a_stale_page_changes_nothing(agent):
    bill = overdue_bill()
    seen = bill.updated_at.isoformat()
    # The engine booked a payment meanwhile (its SQL stamps updated_at with the database clock).
    Bill.objects.filter(pk=bill.pk).update(amount_paid=Decimal("10.00"), updated_at=Now())
    with pytest.raises(RuleViolation, match="changed while you were looking"):
        request(bill, agent, 3, bill_version=seen)
    assert not Extension.objects.filter(bill=bill).exists()


def test_an_extension_beyond_ninety_days_is_refused(agent):
    bill = overdue_bill()
    with pytest.raises(RuleViolation, match="between 1 and 90"):
        request(bill, agent, 91)


def test_a_paid_bill_cannot_be_extended(agent):
    bill = overdue_bill(status=BillStatus.PAID, amount_paid=Decimal("1000.00"), late_fee=Decimal("0.00"))
    with pytest.raises(RuleViolation, match="nothing to extend"):
        request(bill, agent, 3)


@pytest.mark.django_db(transaction=True)
def test_two_agents_extending_the_same_bill_at_once_produce_one_extension(empty_domain):
    from tests.conftest import _persona

    first_agent = _persona("agent")
    bill = overdue_bill()
    second_agent = first_agent.__class__.objects.create_user(username="test_agent_2")
    second_agent.groups.set(first_agent.groups.all())
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def extend(user):
        try:
            barrier.wait()
            request(bill, user, 10)
            outcomes.append("ok")
        except RuleViolation as exc:
            outcomes.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=extend, args=(user,)) for user in (first_agent, second_agent)]
    with time_machine.travel(NOW, tick=False):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert Extension.objects.filter(bill=bill).count() == 1
    assert sorted(o == "ok" for o in outcomes) == [False, True]


def test_a_waiver_within_the_agent_limit_applies_at_once(agent):
    bill = overdue_bill()
    waiver = waiver_request(
        bill_id=bill.id, requested_by=agent, amount="5.00", reason="hardship", request_token=uuid.uuid4()
    )
    bill.refresh_from_db()
    assert (waiver.status, waiver.by_policy, bill.late_fee_waived) == (ApprovalStatus.APPROVED, True, Decimal("5.00"))


def test_a_waiver_above_the_late_fee_left_is_refused_with_both_amounts(agent):
    bill = overdue_bill()
    with pytest.raises(RuleViolation, match=r"CNY 6\.00 is more than the late fee left to waive \(CNY 5\.00\)"):
        waiver_request(
            bill_id=bill.id, requested_by=agent, amount="6.00", reason="hardship", request_token=uuid.uuid4()
        )
    assert not Waiver.objects.filter(bill=bill).exists()


def test_a_waiver_above_the_limit_needs_another_supervisor(agent, supervisor, settings):
    settings.WAIVER_AGENT_LIMIT = Decimal("2.00")
    bill = overdue_bill()
    waiver = waiver_request(
        bill_id=bill.id, requested_by=agent, amount="4.50", reason="agent_error", request_token=uuid.uuid4()
    )
    assert waiver.status == ApprovalStatus.PENDING
    waiver_decide(waiver_id=waiver.id, decided_by=supervisor, approve=True)
    bill.refresh_from_db()
    assert bill.late_fee_waived == Decimal("4.50")


def test_a_rejected_waiver_changes_nothing_on_the_bill(agent, supervisor, settings):
    settings.WAIVER_AGENT_LIMIT = Decimal("2.00")
    bill = overdue_bill()
    waiver = waiver_request(
        bill_id=bill.id, requested_by=agent, amount="4.50", reason="other", note="goodwill", request_token=uuid.uuid4()
    )
    waiver_decide(waiver_id=waiver.id, decided_by=supervisor, approve=False, note="not justified")
    bill.refresh_from_db()
    assert bill.late_fee_waived == Decimal("0.00")
    assert Waiver.objects.get(pk=waiver.pk).status == ApprovalStatus.REJECTED


def test_waiving_the_last_fee_closes_a_bill_whose_principal_is_paid(agent):
    bill = overdue_bill(amount_paid=Decimal("1000.00"))
    waiver_request(bill_id=bill.id, requested_by=agent, amount="5.00", reason="hardship", request_token=uuid.uuid4())
    bill.refresh_from_db()
    assert bill.status == BillStatus.PAID


def test_an_extended_bill_is_debited_again_on_its_new_due_date(agent, settings):
    bill = overdue_bill(debit_attempts=2, last_failure_family="funds")
    request(bill, agent, 7)
    bill.refresh_from_db()
    assert bill.retry_at == business_datetime(dt.date(2026, 12, 7), dt.time(settings.COLLECTION_START_HOUR))


def test_small_waivers_cannot_add_up_past_the_agent_limit(agent, settings):
    settings.WAIVER_AGENT_LIMIT = Decimal("3.00")
    bill = overdue_bill()
    first = waiver_request(
        bill_id=bill.id, requested_by=agent, amount="2.00", reason="hardship", request_token=uuid.uuid4()
    )
    second = waiver_request(
        bill_id=bill.id, requested_by=agent, amount="2.00", reason="hardship", request_token=uuid.uuid4()
    )
    assert (first.status, second.status) == (ApprovalStatus.APPROVED, ApprovalStatus.PENDING)
    bill.refresh_from_db()
    assert bill.late_fee_waived == Decimal("2.00")


def test_no_waiver_or_extension_while_a_debit_is_at_the_bank(agent):
    bill = overdue_bill()
    RepaymentAttempt.objects.create(
        attempt_no=f"{bill.bill_no}-A1",
        bill=bill,
        amount=Decimal("1005.00"),
        status="processing",
        requested_at=NOW,
    )
    with pytest.raises(RuleViolation, match="at the bank right now"):
        waiver_request(
            bill_id=bill.id, requested_by=agent, amount="1.00", reason="hardship", request_token=uuid.uuid4()
        )
    with pytest.raises(RuleViolation, match="at the bank right now"):
        request(bill, agent, 3)
    bill.refresh_from_db()
    assert (bill.late_fee_waived, bill.due_date) == (Decimal("0.00"), dt.date(2026, 11, 20))


def test_a_waiver_for_another_reason_needs_a_note(agent):
    bill = overdue_bill()
    with pytest.raises(RuleViolation, match="Say why"):
        waiver_request(bill_id=bill.id, requested_by=agent, amount="1.00", reason="other", request_token=uuid.uuid4())


def test_an_extension_moves_the_whole_past_due_schedule_of_a_delinquent_statement(agent, settings):
    """Issue #14: DPD counts from the oldest missed due date, and an extension moves that date too."""
    settings.EXTENSION_POLICY = {**settings.EXTENSION_POLICY, "agent_max_shift_days": 90}  # granted at once
    bill = overdue_bill(
        due_date=dt.date(2026, 12, 31),
        original_due_date=dt.date(2026, 12, 31),
        past_due_amount=Decimal("50.00"),
        past_due_since=dt.date(2026, 10, 31),
        cycles_past_due=1,
        dpd=30,
    )
    request(bill, agent, 7)
    bill.refresh_from_db()
    # 30 days past due on 11-30: the oldest missed due date moves to seven days from
    # today (a 37-day shift), and the statement's own due date with it.
    assert (bill.due_date, bill.past_due_since) == (dt.date(2027, 2, 6), dt.date(2026, 12, 7))
    assert (bill.status, bill.dpd) == (BillStatus.PENDING, 0)
    # The past-due amount is debited on its new date, before the statement's own due date.
    assert bill.retry_at == business_datetime(dt.date(2026, 12, 7), dt.time(9))


# Issue #16: extensions that help. Days count from today once the bill is late; the
# preview, the request and the approval share one rule; nothing is left in the past.

AFTERNOON = dt.datetime(2026, 11, 30, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # after the 09:00 debits


def days_late(days: int, **kwargs) -> Bill:
    """A bill ``days`` days past due on 2026-11-30 (its own due date missed), with a 5.00 late fee."""
    return overdue_bill(due_date=NOW.date() - dt.timedelta(days=days), dpd=days, **kwargs)


def test_seven_days_on_a_bill_seven_days_late_is_due_a_week_from_today_and_debited_ahead(agent):
    bill = days_late(7, past_due_amount=Decimal("100.00"), past_due_since=dt.date(2026, 11, 23), cycles_past_due=1)
    with time_machine.travel(AFTERNOON, tick=False):
        extension = request(bill, agent, 7, now=AFTERNOON)
    bill.refresh_from_db()
    assert extension.status == ApprovalStatus.APPROVED
    assert (bill.due_date, bill.status, bill.dpd) == (dt.date(2026, 12, 7), BillStatus.PENDING, 0)
    assert bill.retry_at == business_datetime(dt.date(2026, 12, 7), dt.time(9))
    assert bill.retry_at > AFTERNOON
    assert BureauSuppression.objects.get(extension=extension).suppress_until == dt.date(2026, 12, 10)


def test_an_approved_thirty_days_on_a_bill_37_days_late_makes_it_current(agent, supervisor):
    bill = days_late(37, past_due_amount=Decimal("100.00"), past_due_since=dt.date(2026, 10, 24), cycles_past_due=2)
    extension = request(bill, agent, 30, now=NOW)
    assert extension.status == ApprovalStatus.PENDING
    extension_decide(extension_id=extension.id, decided_by=supervisor, approve=True, now=NOW)
    bill.refresh_from_db()
    assert (bill.due_date, bill.past_due_since) == (dt.date(2026, 12, 30), dt.date(2026, 12, 30))
    assert (bill.status, bill.dpd, bill.cycles_past_due) == (BillStatus.PENDING, 0, 1)
    assert bill.retry_at == business_datetime(dt.date(2026, 12, 30), dt.time(9))
    suppression = BureauSuppression.objects.get(extension=extension)
    assert suppression.suppress_until == dt.date(2027, 1, 2)
    assert suppression.suppress_until > NOW.date()


def test_the_preview_is_what_the_approval_applies_and_writes_nothing(agent, supervisor):
    bill = days_late(37)
    version = Bill.objects.get(pk=bill.pk).updated_at
    preview = extension_preview(bill=bill, days=30, reason="system_fault", now=NOW)
    assert Bill.objects.get(pk=bill.pk).updated_at == version  # nothing written
    assert (bill.due_date, bill.status) == (dt.date(2026, 10, 24), BillStatus.OVERDUE)  # nor changed in memory
    assert (preview.due_date_before, preview.due_date_after, preview.shift_days) == (
        dt.date(2026, 10, 24),
        dt.date(2026, 12, 30),
        67,
    )
    assert (preview.status_before, preview.dpd_before, preview.status_after, preview.dpd_after) == (
        BillStatus.OVERDUE,
        37,
        BillStatus.PENDING,
        0,
    )
    assert preview.late_fee_waived == Decimal("5.00")
    extension = request(bill, agent, 30, reason="system_fault", now=NOW)
    extension_decide(extension_id=extension.id, decided_by=supervisor, approve=True, now=NOW)
    bill.refresh_from_db()
    extension.refresh_from_db()
    assert (bill.due_date, bill.status, bill.dpd, bill.retry_at) == (
        preview.due_date_after,
        preview.status_after,
        preview.dpd_after,
        preview.next_debit_at,
    )
    assert extension.late_fee_waived == preview.late_fee_waived
    assert BureauSuppression.objects.get(extension=extension).suppress_until == preview.suppress_until


def test_an_approval_a_day_later_counts_the_days_from_the_day_of_approval(agent, supervisor):
    bill = days_late(37)
    extension = request(bill, agent, 30, now=NOW)
    next_day = NOW + dt.timedelta(days=1)
    with time_machine.travel(next_day, tick=False):
        preview = extension_preview(bill=Bill.objects.get(pk=bill.pk), days=30, now=next_day)
        extension_decide(extension_id=extension.id, decided_by=supervisor, approve=True, now=next_day)
    bill.refresh_from_db()
    assert preview.as_of == dt.date(2026, 12, 1)
    assert bill.due_date == preview.due_date_after == dt.date(2026, 12, 31)
    assert (bill.status, bill.dpd, bill.dpd_as_of) == (BillStatus.PENDING, 0, dt.date(2026, 12, 1))
    assert bill.retry_at == business_datetime(dt.date(2026, 12, 31), dt.time(9))


def test_an_approval_is_refused_when_the_due_date_moved_since_the_request(agent, supervisor):
    bill = days_late(37)
    extension = request(bill, agent, 30, now=NOW)
    Bill.objects.filter(pk=bill.pk).update(due_date=dt.date(2026, 11, 27))  # e.g. a relief batch moved it
    with pytest.raises(RuleViolation, match="moved from 2026-10-24 to 2026-11-27 since this request"):
        extension_decide(extension_id=extension.id, decided_by=supervisor, approve=True, now=NOW)
    extension.refresh_from_db()
    assert extension.status == ApprovalStatus.PENDING
    assert Bill.objects.get(pk=bill.pk).due_date == dt.date(2026, 11, 27)
    assert not BureauSuppression.objects.filter(bill=bill).exists()
    extension_decide(extension_id=extension.id, decided_by=supervisor, approve=False, now=NOW)  # rejecting still works


def test_an_extension_of_a_bill_not_yet_due_moves_its_due_date_by_the_days(agent):
    bill = BillFactory(due_date=dt.date(2026, 12, 5))
    preview = extension_preview(bill=bill, days=5, now=NOW)
    assert (preview.due_date_after, preview.shift_days, preview.status_after) == (
        dt.date(2026, 12, 10),
        5,
        BillStatus.PENDING,
    )


def test_a_preview_of_a_paid_bill_or_of_too_many_days_is_refused_naming_the_field(db):
    with pytest.raises(RuleViolation, match="got 91") as caught:
        extension_preview(bill=days_late(37), days=91, now=NOW)
    assert caught.value.field == "days"
    with pytest.raises(RuleViolation, match="nothing to extend"):
        extension_preview(bill=BillFactory(status=BillStatus.PAID, amount_paid=Decimal("1000.00")), days=5, now=NOW)


def test_an_agent_alone_cannot_cure_an_old_delinquency_with_a_short_extension(agent):
    # 7 days on a bill 60 days late would move its due date 67 days: a supervisor decides.
    bill = days_late(60)
    within, why_not = extension_within_policy(bill=bill, days=7, as_of=NOW.date())
    assert not within and "60 days late" in why_not and "67 days" in why_not
    extension = request(bill, agent, 7, now=NOW)
    bill.refresh_from_db()
    assert extension.status == ApprovalStatus.PENDING and bill.status == BillStatus.OVERDUE


def test_no_extension_shifts_a_due_date_more_than_ninety_days(agent, supervisor):
    bill = days_late(170)
    with pytest.raises(RuleViolation) as refused:
        request(bill, agent, 7, now=NOW)
    assert refused.value.field == "days" and "170 days late" in str(refused.value) and "177 days" in str(refused.value)
    with pytest.raises(RuleViolation):
        extension_preview(bill=bill, days=7, now=NOW)
    assert not Extension.objects.filter(bill=bill).exists()


def test_an_approval_weeks_later_is_refused_when_the_shift_has_grown_past_ninety_days(agent, supervisor):
    bill = days_late(50)
    extension = request(bill, agent, 30, now=NOW)  # shift 80: allowed, awaits a supervisor
    later = NOW + dt.timedelta(days=20)  # now 70 days late: 30 more days would shift it 100
    with time_machine.travel(later, tick=False), pytest.raises(RuleViolation) as refused:
        extension_decide(extension_id=extension.id, decided_by=supervisor, approve=True, now=later)
    assert "100 days" in str(refused.value)
    extension.refresh_from_db()
    assert extension.status == ApprovalStatus.PENDING
