"""The repayment engine against the live sandbox bank (its own process) and our live callback endpoint."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from decimal import Decimal

import httpx
import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_q.conf import Conf

from baitiao.business_time import business_datetime
from repayments.gateway.signing import HEADER, sign
from repayments.models import (
    AttemptStatus,
    Bill,
    BillStatus,
    BindingRepairCase,
    CardBindingStatus,
    FailureFamily,
    GatewayReviewItem,
    Notification,
    RepaymentAttempt,
)
from repayments.services.bindings import card_binding_confirm, card_binding_start
from repayments.services.collection import attempts_resolve_stale, attempts_send, collection_run
from tests.engine import customer_with_due_bill, database_settle, start_sandbox, wait_for
from tests.factories import BillFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_domain")]


@pytest.fixture
def sandbox(live_bank):
    return live_bank()


@pytest.fixture
def silent_sandbox(settings):
    """A bank whose callbacks never reach us: only ``query`` can tell the outcome."""
    bank = start_sandbox("http://127.0.0.1:9/", hold_seconds=2)
    settings.GATEWAY_URL = bank.url
    settings.GATEWAY_TIMEOUT_SECONDS = 1.0
    yield bank
    bank.stop()


@pytest.fixture
def sync_queue(monkeypatch):
    """django-q2's own synchronous mode: tasks run in-process when enqueued."""
    monkeypatch.setattr(Conf, "SYNC", True)


def send_all(now: dt.datetime) -> list[int]:
    """Run a collection at ``now`` and send what it created (the sync queue may have sent it already)."""
    collection_run(now=now)
    # created_at is the run's moment; requested_at becomes the send's (issue #16).
    ids = list(RepaymentAttempt.objects.filter(created_at=now).values_list("id", flat=True))
    attempts_send(attempt_ids=ids)
    return ids


def post_signed_callback(live_server, body: bytes) -> httpx.Response:
    """POST ``body`` to our live callback endpoint, signed as the bank signs it."""
    from django.conf import settings

    return httpx.post(
        f"{live_server.url}/api/v1/gateway/callbacks/",
        content=body,
        headers={HEADER: sign(body, settings.GATEWAY_SECRET)},
    )


def settled(attempt_id: int) -> RepaymentAttempt | None:
    attempt = RepaymentAttempt.objects.get(id=attempt_id)
    return attempt if attempt.status in (AttemptStatus.SUCCEEDED, AttemptStatus.FAILED) else None


def test_a_due_bill_is_debited_and_paid_through_the_async_callback(clock, sandbox):
    _, bill, _ = customer_with_due_bill(due=clock.today, amount="1234.56")
    [attempt_id] = send_all(clock.now)
    attempt = wait_for(lambda: settled(attempt_id), what="callback")
    bill.refresh_from_db()
    assert attempt.status == AttemptStatus.SUCCEEDED and attempt.gateway_reference.startswith("SBX")
    assert isinstance(bill.amount_paid, Decimal) and bill.amount_paid == Decimal("1234.56")
    assert bill.status == BillStatus.PAID and bill.closed_at is not None


def test_nothing_is_debited_before_nine_on_the_due_date(clock, sandbox):
    customer_with_due_bill(due=clock.today)
    assert collection_run(now=business_datetime(clock.today, dt.time(8, 59)))["attempts"] == 0
    assert collection_run(now=business_datetime(clock.today, dt.time(9, 0)))["attempts"] == 1


def test_duplicate_callbacks_are_applied_once(clock, sandbox):
    # The sandbox delivers every callback twice in these tests (duplicate rate 1.0).
    _, bill, _ = customer_with_due_bill(due=clock.today, amount="300.00")
    [attempt_id] = send_all(clock.now)
    wait_for(lambda: settled(attempt_id), what="callback")
    wait_for(lambda: sandbox.state()["callbacks_sent"] >= 2, what="the duplicate")
    bill.refresh_from_db()
    assert bill.amount_paid == Decimal("300.00")


def test_concurrent_identical_callbacks_change_the_bill_once(clock, sandbox, live_server, settings):
    _, bill, _ = customer_with_due_bill(due=clock.today, amount="500.00")
    sandbox.outage("timeout")  # keep the bank's own callback from arriving first
    collection_run(now=clock.now)
    attempt = RepaymentAttempt.objects.get()
    RepaymentAttempt.objects.filter(id=attempt.id).update(status=AttemptStatus.PROCESSING)
    body = json.dumps(
        {"idempotency_key": attempt.attempt_no, "status": "succeeded", "amount": "500.00", "reference": "X1"}
    ).encode()
    results = []

    def post():
        response = httpx.post(
            f"{live_server.url}/api/v1/gateway/callbacks/",
            content=body,
            headers={HEADER: sign(body, settings.GATEWAY_SECRET), "Content-Type": "application/json"},
        )
        results.append(response.json().get("result"))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bill.refresh_from_db()
    assert sorted(results) == ["applied"] + ["replay"] * 5
    assert bill.amount_paid == Decimal("500.00")


def test_two_concurrent_collection_runs_create_each_attempt_once(clock, sandbox):
    for n in range(20):
        customer_with_due_bill(due=clock.today, customer_no=f"CC-{n:03d}")
    inserted, results = threading.Event(), {}

    def first_run_holding_its_transaction():
        with transaction.atomic():
            results["first"] = collection_run(now=clock.now)
            inserted.set()
            time.sleep(1.5)  # the second run starts while these rows are uncommitted
        connection.close()

    def second_run():
        inserted.wait(10)
        results["second"] = collection_run(now=clock.now)
        connection.close()

    threads = [threading.Thread(target=first_run_holding_its_transaction), threading.Thread(target=second_run)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (results["first"]["attempts"], results["second"]["attempts"]) == (20, 0)
    assert RepaymentAttempt.objects.count() == 20
    assert set(Bill.objects.values_list("debit_attempts", flat=True)) == {1}


def test_a_timeout_is_resolved_by_query_without_a_second_debit(clock, silent_sandbox):
    sandbox = silent_sandbox
    _, bill, _ = customer_with_due_bill(due=clock.today, amount="800.00")
    sandbox.outage("timeout")  # the bank processes the debit but answers too late
    [attempt_id] = send_all(clock.now)
    assert RepaymentAttempt.objects.get(id=attempt_id).status == AttemptStatus.UNKNOWN
    assert collection_run(now=clock.now + dt.timedelta(hours=1))["attempts"] == 0  # never a second debit
    sandbox.outage("off")
    wait_for(lambda: sandbox.state()["debits"] == {"succeeded": 1}, what="the bank to finish")
    attempts_resolve_stale(now=timezone.now() + dt.timedelta(hours=1))
    attempt = RepaymentAttempt.objects.get(id=attempt_id)
    bill.refresh_from_db()
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert bill.amount_paid == Decimal("800.00") and RepaymentAttempt.objects.count() == 1
    assert sandbox.state()["debits"] == {"succeeded": 1}


def test_a_worker_that_died_after_claiming_is_settled_and_retried(clock, sandbox):
    _, bill, _ = customer_with_due_bill(due=clock.today, amount="90.00")
    collection_run(now=clock.now)
    # The worker claimed the attempt and died before the bank heard of it.
    RepaymentAttempt.objects.update(status=AttemptStatus.PROCESSING, updated_at=timezone.now() - dt.timedelta(hours=1))
    attempts_resolve_stale()
    first = RepaymentAttempt.objects.get()
    bill.refresh_from_db()
    assert (first.status, first.failure_code, first.failure_family) == ("failed", "not_delivered", "system")
    assert bill.retry_at is not None
    [retry_id] = send_all(now=bill.retry_at)
    wait_for(lambda: settled(retry_id), what="retry callback")
    bill.refresh_from_db()
    assert bill.amount_paid == Decimal("90.00") and sandbox.state()["debits"] == {"succeeded": 1}


def test_a_binding_failure_invalidates_the_card_opens_a_case_and_tells_the_customer(clock, sandbox, sync_queue):
    customer, bill, binding = customer_with_due_bill(due=clock.today, scenario="card_expired")
    [attempt_id] = send_all(clock.now)
    attempt = wait_for(lambda: settled(attempt_id), what="callback")
    binding.refresh_from_db()
    bill.refresh_from_db()
    assert (attempt.failure_code, attempt.failure_family) == ("card_expired", FailureFamily.BINDING)
    assert binding.status == CardBindingStatus.INVALID and bill.retry_at is None
    assert BindingRepairCase.objects.get(customer=customer).status == "open"
    sent = wait_for(lambda: list(Notification.objects.filter(customer=customer, status="sent")), what="notice")
    assert {n.channel for n in sent} >= {"sms", "in_app"}
    assert all(customer.phone not in n.body and "0123" in n.body for n in sent)  # only the last four digits
    assert collection_run(now=clock.now + dt.timedelta(days=1))["attempts"] == 0  # no retry on that card


def test_rebinding_a_verified_card_retries_the_failed_bill_automatically(clock, sandbox, sync_queue, agent):
    customer, bill, old = customer_with_due_bill(due=clock.today, scenario="card_closed", amount="66.60")
    [attempt_id] = send_all(clock.now)
    wait_for(lambda: settled(attempt_id), what="binding failure")
    challenge = card_binding_start(
        customer=customer, card_number="6222021234567890128", reserved_phone="13800138000", actor=agent
    )
    assert (challenge.bin, challenge.last4, challenge.bank_code) == ("622202", "0128", "ICBC")
    new = card_binding_confirm(
        customer=customer,
        challenge=challenge,
        sms_code="111111",
        reserved_phone="13800138000",
        actor=agent,
        reason="customer called, new ICBC card",
    )
    old.refresh_from_db()
    assert old.status == CardBindingStatus.REPLACED and new.status == CardBindingStatus.ACTIVE
    assert BindingRepairCase.objects.get(customer=customer).status == "resolved"
    # The sync queue ran the collection enqueued on commit; send what it created.
    retry = wait_for(lambda: RepaymentAttempt.objects.filter(card_binding=new).first(), what="retry attempt")
    if retry.status == AttemptStatus.PENDING:
        attempts_send(attempt_ids=[retry.id])
    wait_for(lambda: settled(retry.id), what="retry result")
    bill.refresh_from_db()
    assert bill.status == BillStatus.PAID and bill.amount_paid == Decimal("66.60")


def test_insufficient_funds_retries_on_the_next_mornings(clock, sandbox):
    _, bill, _ = customer_with_due_bill(due=clock.today, scenario="lowfunds", amount="9999.99")
    [attempt_id] = send_all(clock.now)
    attempt = wait_for(lambda: settled(attempt_id), what="callback")
    bill.refresh_from_db()
    assert (attempt.failure_code, attempt.failure_family) == ("insufficient_funds", "funds")
    # The first funds retry is 09:00 business time on the day after the decline,
    # whichever day the (real-time) bank declined on.
    declined_on = timezone.localtime(attempt.completed_at).date()
    assert timezone.localtime(bill.retry_at) == business_datetime(declined_on + dt.timedelta(days=1), dt.time(9, 0))


def test_a_system_outage_fails_with_system_codes_and_backs_off(clock, sandbox):
    _, bill, _ = customer_with_due_bill(due=clock.today)
    sandbox.outage("error")
    [attempt_id] = send_all(clock.now)
    attempt = RepaymentAttempt.objects.get(id=attempt_id)
    bill.refresh_from_db()
    assert attempt.failure_family == FailureFamily.SYSTEM
    assert attempt.failure_code in ("bank_system_error", "channel_unavailable")
    assert dt.timedelta(minutes=4) < bill.retry_at - attempt.completed_at <= dt.timedelta(minutes=5)


def test_callbacks_with_a_bad_or_stale_signature_are_refused(clock, live_server, settings):
    customer_with_due_bill(due=clock.today)
    collection_run(now=clock.now)
    attempt = RepaymentAttempt.objects.get()
    body = json.dumps({"idempotency_key": attempt.attempt_no, "status": "succeeded", "amount": "1234.56"}).encode()
    url = f"{live_server.url}/api/v1/gateway/callbacks/"
    forged = httpx.post(url, content=body, headers={HEADER: sign(body, "not-the-secret")})
    stale = httpx.post(url, content=body, headers={HEADER: sign(body, settings.GATEWAY_SECRET, int(time.time()) - 900)})
    missing = httpx.post(url, content=body)
    assert [r.status_code for r in (forged, stale, missing)] == [403, 403, 403]
    assert RepaymentAttempt.objects.get().status == AttemptStatus.PENDING


def test_unknown_attempts_and_mismatched_amounts_are_kept_for_review(clock, live_server, settings):
    customer_with_due_bill(due=clock.today, amount="100.00")
    collection_run(now=clock.now)
    attempt = RepaymentAttempt.objects.get()
    RepaymentAttempt.objects.update(status=AttemptStatus.PROCESSING)
    url = f"{live_server.url}/api/v1/gateway/callbacks/"

    def post(payload):
        body = json.dumps(payload).encode()
        return httpx.post(url, content=body, headers={HEADER: sign(body, settings.GATEWAY_SECRET)})

    unknown = post({"idempotency_key": "NOPE-A1", "status": "succeeded", "amount": "100.00"})
    mismatch = post({"idempotency_key": attempt.attempt_no, "status": "succeeded", "amount": "1000.00"})
    malformed = post({"status": "succeeded"})
    assert (unknown.status_code, unknown.json()["errors"][0]["code"]) == (422, "unknown_attempt")
    assert (mismatch.status_code, mismatch.json()["errors"][0]["code"]) == (422, "amount_mismatch")
    assert malformed.status_code == 400
    assert sorted(GatewayReviewItem.objects.values_list("reason", flat=True)) == [
        "amount_mismatch",
        "malformed",
        "unknown_attempt",
    ]
    assert RepaymentAttempt.objects.get().status == AttemptStatus.PROCESSING


def test_an_unreachable_gateway_leaves_attempts_unknown_never_lost(clock, settings):
    settings.GATEWAY_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    customer_with_due_bill(due=clock.today)
    [attempt_id] = send_all(clock.now)
    assert RepaymentAttempt.objects.get(id=attempt_id).status == AttemptStatus.UNKNOWN
    counts = attempts_resolve_stale(now=timezone.now() + dt.timedelta(hours=1))
    assert counts["still_open"] == 1
    assert RepaymentAttempt.objects.get(id=attempt_id).status == AttemptStatus.UNKNOWN


def test_a_success_reported_after_we_closed_the_attempt_is_recorded_and_flagged(clock, live_server, settings):
    _, bill, _ = customer_with_due_bill(due=clock.today, amount="75.00")
    collection_run(now=clock.now)
    attempt = RepaymentAttempt.objects.get()
    RepaymentAttempt.objects.update(
        status=AttemptStatus.FAILED, failure_code="not_delivered", failure_family="system", completed_at=timezone.now()
    )
    body = json.dumps(
        {"idempotency_key": attempt.attempt_no, "status": "succeeded", "amount": "75.00", "reference": "LATE1"}
    ).encode()
    response = post_signed_callback(live_server, body)
    assert response.json() == {"result": "applied"}
    bill.refresh_from_db()
    assert bill.amount_paid == Decimal("75.00") and bill.status == BillStatus.PAID
    assert GatewayReviewItem.objects.get().reason == "late_success"


def test_rebinding_retries_only_bills_that_are_due(clock, sandbox, sync_queue, agent):
    customer, bill, _ = customer_with_due_bill(due=clock.today, scenario="card_closed", amount="10.00")
    later = BillFactory(
        credit_line=bill.credit_line,
        due_date=clock.today + dt.timedelta(days=20),
        # The next statement's period: the factory derives a period from the due
        # date, and due dates D and D + 20 share one when D is from the 20th to the second-to-last day of a month.
        period=(bill.period + dt.timedelta(days=31)).replace(day=1),
        amount_due="20.00",
        minimum_due="2.00",
    )
    [attempt_id] = send_all(clock.now)
    wait_for(lambda: settled(attempt_id), what="binding failure")
    challenge = card_binding_start(
        customer=customer, card_number="6222021234567890128", reserved_phone="13800138000", actor=agent
    )
    card_binding_confirm(
        customer=customer, challenge=challenge, sms_code="111111", reserved_phone="13800138000", actor=agent, reason="x"
    )
    later.refresh_from_db()
    assert later.retry_at is None and not later.attempts.exists()


def test_an_attempt_whose_bill_was_paid_while_queued_is_cancelled_not_sent(clock, sandbox):
    _, bill, _ = customer_with_due_bill(due=clock.today, amount="55.00")
    collection_run(now=clock.now)
    Bill.objects.filter(id=bill.id).update(amount_paid=Decimal("55.00"), status=BillStatus.PAID)
    attempt = RepaymentAttempt.objects.get()
    assert attempts_send(attempt_ids=[attempt.id]) == {"sent": 0, "skipped": 1, "unknown": 0}
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.CANCELLED and sandbox.state()["debits"] == {}


def test_a_card_failure_arriving_after_a_rebinding_retries_on_the_new_card(clock, sandbox, agent):
    customer, bill, old = customer_with_due_bill(due=clock.today, scenario="card_expired", amount="12.00")
    sandbox.outage("timeout")
    [attempt_id] = send_all(clock.now)  # in flight on the old card
    challenge = card_binding_start(
        customer=customer, card_number="6222021234567890128", reserved_phone="13800138000", actor=agent
    )
    card_binding_confirm(
        customer=customer, challenge=challenge, sms_code="111111", reserved_phone="13800138000", actor=agent, reason="x"
    )
    wait_for(lambda: settled(attempt_id), timeout=20, what="the old card's late failure")
    bill.refresh_from_db()
    assert bill.retry_at is not None  # retried on the new card, not given up
    assert not BindingRepairCase.objects.filter(status="open").exists()
    assert not Notification.objects.filter(event="debit_failed_binding").exists()


def test_a_success_callback_without_an_amount_is_refused(clock, live_server, settings):
    customer_with_due_bill(due=clock.today)
    collection_run(now=clock.now)
    attempt = RepaymentAttempt.objects.get()
    body = json.dumps({"idempotency_key": attempt.attempt_no, "status": "succeeded"}).encode()
    response = post_signed_callback(live_server, body)
    assert response.status_code == 400
    assert RepaymentAttempt.objects.get().status == AttemptStatus.PENDING


def test_money_stays_exact_decimal_from_bill_to_gateway_to_booking(clock, live_server, settings):
    """Decimal money throughout: amounts no binary float can hold, end to end.

    The bill owes 0.10 + 0.20 (float: 0.30000000000000004) plus a late fee and a
    waiver; the debit asks the sandbox for exactly what is owed, the signed
    callback carries it back as a JSON *number*, and the booking is exact.
    """
    from repayments.services.delinquency import bills_refresh_delinquency

    customer, bill, _ = customer_with_due_bill(due=clock.today - dt.timedelta(days=10), amount="1234.57")
    # A pay-in-full statement (its minimum is the whole amount): all of it is past due.
    Bill.objects.filter(pk=bill.pk).update(amount_paid=Decimal("0.10") + Decimal("0.20"), minimum_due=bill.amount_due)
    bills_refresh_delinquency(as_of=clock.today)  # 10 days past due: 0.05 % a day of the past-due 1,234.27
    bill.refresh_from_db()
    assert bill.late_fee == Decimal("6.17")  # 1234.27 × 0.0005 × 10 = 6.17135, half-up to cents
    Bill.objects.filter(pk=bill.pk).update(late_fee_waived=Decimal("0.01"))
    bill.refresh_from_db()
    owed = bill.amount_due + bill.late_fee - bill.late_fee_waived - bill.amount_paid
    collection_run(now=clock.now)
    attempt = RepaymentAttempt.objects.get(bill=bill)
    assert (type(attempt.amount), attempt.amount) == (Decimal, owed)
    RepaymentAttempt.objects.filter(pk=attempt.pk).update(status=AttemptStatus.PROCESSING)
    body = f'{{"idempotency_key": "{attempt.attempt_no}", "status": "succeeded", "amount": {owed}}}'.encode()
    response = post_signed_callback(live_server, body)
    assert response.status_code == 200
    bill.refresh_from_db()
    assert bill.amount_paid == Decimal("0.30") + owed
    assert (bill.status, bill.outstanding) == (BillStatus.PAID, Decimal("0.00"))
    with pytest.raises(TypeError):
        from baitiao.money import to_money

        to_money(0.1 + 0.2)


def test_a_past_due_statement_is_debited_for_its_missed_minimums_at_once_and_is_current_once_they_are_paid(
    clock, live_server, settings
):
    """Issue #14: the open statement of a delinquent account owes its missed minimums now, the rest on its due date."""
    _, bill, _ = customer_with_due_bill(due=clock.today + dt.timedelta(days=20), amount="5000.00")
    Bill.objects.filter(pk=bill.pk).update(
        minimum_due=Decimal("300.00"),
        past_due_amount=Decimal("200.00"),
        past_due_since=clock.today - dt.timedelta(days=46),
        cycles_past_due=2,
        status=BillStatus.OVERDUE,
        dpd=46,
    )
    assert collection_run(now=clock.now)["attempts"] == 1
    attempt = RepaymentAttempt.objects.get(bill=bill)
    assert attempt.amount == Decimal("200.00")  # only what is past due, never the whole balance early
    RepaymentAttempt.objects.filter(pk=attempt.pk).update(status=AttemptStatus.PROCESSING)
    body = json.dumps({"idempotency_key": attempt.attempt_no, "status": "succeeded", "amount": "200.00"}).encode()
    response = post_signed_callback(live_server, body)
    assert response.status_code == 200
    bill.refresh_from_db()
    assert (bill.status, bill.dpd, bill.past_due_amount, bill.cycles_past_due) == (
        BillStatus.PENDING,
        0,
        Decimal("0.00"),
        0,
    )
    assert bill.past_due_since is None and bill.outstanding == Decimal("4800.00")
    # The rest is debited on the statement's own due date, not before.
    assert timezone.localtime(bill.retry_at) == business_datetime(bill.due_date, dt.time(9, 0))
    assert collection_run(now=clock.now + dt.timedelta(hours=1))["attempts"] == 0


def test_the_flush_waits_for_a_request_still_writing_and_ends_one_that_never_finishes():
    """The teardown race CI hit: a late callback's transaction against the flush's TRUNCATE."""
    other = psycopg.connect(**connection.get_connection_params())
    other.execute("SELECT 1")  # a transaction left open: it holds its locks until it ends
    assert database_settle(timeout=0.3) == [other.info.backend_pid]
    with pytest.raises(psycopg.OperationalError):
        other.execute("SELECT 1")
    assert database_settle(timeout=0.3) == []
