"""Issue #15 (4): every way a debit result arrives is checked against the attempt before money is booked.

The answer to the send, a callback, a query and a late success (the bank reports
success for an attempt we had closed as failed) all go through
``attempt_apply_result``. A result whose currency is not the bill's, whose amount
is not the attempt's, or a success that does not state its amount, books nothing
and is kept as an ``amount_mismatch`` review item.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from repayments.gateway.client import DebitResult
from repayments.gateway.signing import HEADER, sign
from repayments.models import AttemptStatus, Bill, BillStatus, GatewayReviewItem, RepaymentAttempt
from repayments.services.collection import attempt_apply_result
from tests.factories import BillFactory, CardBindingFactory, CreditLineFactory

OWED = Decimal("75.00")


def twd_attempt(status: str) -> RepaymentAttempt:
    """An attempt for the whole of a TWD bill (NT$75.00), in ``status``."""
    line = CreditLineFactory(currency="TWD")
    bill = BillFactory(credit_line=line, amount_due=OWED, minimum_due=Decimal("7.50"))
    binding = CardBindingFactory(customer=line.customer)
    closed = status in (AttemptStatus.FAILED, AttemptStatus.SUCCEEDED)
    return RepaymentAttempt.objects.create(
        attempt_no=f"{bill.bill_no}-A1",
        bill=bill,
        card_binding=binding,
        amount=OWED,
        status=status,
        failure_code="not_delivered" if status == AttemptStatus.FAILED else "",
        failure_family="system" if status == AttemptStatus.FAILED else "",
        requested_at=timezone.now(),
        completed_at=timezone.now() if closed else None,
    )


def post_callback(client, payload: dict):
    body = json.dumps(payload).encode()
    return client.post(
        reverse("api:gateway-callback"),
        data=body,
        content_type="application/json",
        headers={HEADER: sign(body, settings.GATEWAY_SECRET)},
    )


def nothing_booked(attempt: RepaymentAttempt, status_before: str) -> None:
    bill = Bill.objects.get(pk=attempt.bill_id)
    assert (bill.amount_paid, bill.status) == (Decimal("0.00"), BillStatus.PENDING)
    assert RepaymentAttempt.objects.get(pk=attempt.pk).status == status_before


def test_a_late_success_in_another_currency_books_nothing_and_is_kept_for_review(db, client):
    attempt = twd_attempt(AttemptStatus.FAILED)
    response = post_callback(
        client,
        {"idempotency_key": attempt.attempt_no, "status": "succeeded", "amount": "75.00", "currency": "CNY"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "amount_mismatch"
    nothing_booked(attempt, AttemptStatus.FAILED)
    review = GatewayReviewItem.objects.get(idempotency_key=attempt.attempt_no)
    assert (review.reason, review.attempt_id, review.payload["currency"]) == ("amount_mismatch", attempt.pk, "CNY")


def test_a_late_success_for_another_amount_is_kept_for_review_not_dropped_as_a_replay(db, client):
    attempt = twd_attempt(AttemptStatus.FAILED)
    response = post_callback(
        client,
        {"idempotency_key": attempt.attempt_no, "status": "succeeded", "amount": "750.00", "currency": "TWD"},
    )
    assert response.status_code == 422
    nothing_booked(attempt, AttemptStatus.FAILED)
    assert list(GatewayReviewItem.objects.values_list("reason", flat=True)) == ["amount_mismatch"]


def test_a_late_success_in_the_bills_currency_and_amount_is_booked_and_flagged(db, client):
    attempt = twd_attempt(AttemptStatus.FAILED)
    response = post_callback(
        client,
        {"idempotency_key": attempt.attempt_no, "status": "succeeded", "amount": "75.00", "currency": "TWD"},
    )
    assert response.json() == {"result": "applied"}
    bill = Bill.objects.get(pk=attempt.bill_id)
    assert (bill.amount_paid, bill.status) == (OWED, BillStatus.PAID)
    assert list(GatewayReviewItem.objects.values_list("reason", flat=True)) == ["late_success"]


MISMATCHES = {
    "another currency": {"amount": OWED, "currency": "CNY"},
    "another amount": {"amount": Decimal("7.50"), "currency": "TWD"},
    "no amount": {"amount": None, "currency": "TWD"},
    "an amount that is not a number": {"amount": Decimal("NaN"), "currency": "TWD"},
}


@pytest.mark.parametrize("source", ["send", "callback", "query"])
@pytest.mark.parametrize("status", [AttemptStatus.PROCESSING, AttemptStatus.UNKNOWN, AttemptStatus.FAILED])
@pytest.mark.parametrize("mismatch", MISMATCHES, ids=list(MISMATCHES))
def test_no_path_books_a_success_that_does_not_match_the_attempt(db, source, status, mismatch):
    attempt = twd_attempt(status)
    result = DebitResult(attempt.attempt_no, "succeeded", reference="REF1", **MISMATCHES[mismatch])
    outcome = attempt_apply_result(result=result, source=source)
    assert (outcome.applied, outcome.reason) == (False, "amount_mismatch")
    nothing_booked(attempt, status)
    assert list(GatewayReviewItem.objects.values_list("reason", flat=True)) == ["amount_mismatch"]


def test_a_failure_reported_in_another_currency_changes_nothing(db):
    attempt = twd_attempt(AttemptStatus.PROCESSING)
    result = DebitResult(attempt.attempt_no, "failed", code="insufficient_funds", currency="CNY")
    assert attempt_apply_result(result=result, source="send").reason == "amount_mismatch"
    nothing_booked(attempt, AttemptStatus.PROCESSING)


@pytest.mark.parametrize("currency", ["TWD", ""], ids=["stated", "not reported"])
def test_a_matching_success_is_booked_whether_or_not_the_gateway_reports_the_currency(db, currency):
    attempt = twd_attempt(AttemptStatus.PROCESSING)
    result = DebitResult(attempt.attempt_no, "succeeded", amount=OWED, currency=currency, reference="REF2")
    assert attempt_apply_result(result=result, source="query").applied
    bill = Bill.objects.get(pk=attempt.bill_id)
    assert (bill.amount_paid, bill.status) == (OWED, BillStatus.PAID)
    assert not GatewayReviewItem.objects.exists()


def test_money_taken_for_a_statement_closed_meanwhile_is_booked_and_the_carried_rest_shrinks(db):
    """Issue #14 review: an import closed the bill as carried forward while its debit was at the bank."""
    attempt = twd_attempt(AttemptStatus.PROCESSING)
    Bill.objects.filter(pk=attempt.bill_id).update(status=BillStatus.CARRIED_FORWARD, carried_forward=OWED)
    result = DebitResult(attempt.attempt_no, "succeeded", amount=OWED, currency="TWD", reference="REF3")
    assert attempt_apply_result(result=result, source="callback").applied
    bill = Bill.objects.get(pk=attempt.bill_id)
    assert (bill.amount_paid, bill.carried_forward, bill.status) == (OWED, Decimal("0.00"), BillStatus.PAID)
    assert bill.outstanding == Decimal("0.00") and bill.past_due_amount == Decimal("0.00")


def test_a_queued_debit_of_past_due_money_is_cancelled_once_nothing_is_past_due(db):
    """Issue #14 review: before its due date a statement is debited only for what is past due."""
    from repayments.services.collection import attempts_send

    attempt = twd_attempt(AttemptStatus.PENDING)
    # Due in three weeks; the 75.00 asked for was past due when the attempt was made, and has been paid since.
    due = timezone.localdate() + dt.timedelta(days=21)
    Bill.objects.filter(pk=attempt.bill_id).update(
        due_date=due, original_due_date=due, statement_date=due - dt.timedelta(days=19), past_due_amount=0
    )
    assert attempts_send(attempt_ids=[attempt.pk]) == {"sent": 0, "skipped": 1, "unknown": 0}
    assert RepaymentAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.CANCELLED
