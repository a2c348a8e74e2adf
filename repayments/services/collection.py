"""Collection: auto-debits on the due date, results from the gateway, retries by failure family.

The rules (``docs/repayment-engine.md``):

* A bill is debited for what is still owed (amount due + unwaived late fee −
  paid) from the customer's active binding: first on its due date from
  ``settings.COLLECTION_START_HOUR`` business time, then whenever ``retry_at``
  comes due.
* At most one attempt per bill is in flight (a partial unique index); the
  attempt number (``<bill_no>-A<n>``) is the idempotency key at the gateway, so
  the same money is never debited twice, whoever runs a collection, twice or at once.
* A timeout leaves the attempt ``unknown``; :func:`attempts_resolve_stale` asks
  the gateway before anything else happens to that bill.
* Results (answer or callback) are applied once: a replay changes nothing.
* Remedies by family: binding → binding invalid, repair case, customer told on
  every channel, no retry on that card; funds → retries after 1, 3, 5 days at
  09:00; system → 5 min backoff doubling to a 2 h cap, 8 tries, then next morning;
  other → once more next morning.
"""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Least
from django.utils import timezone
from django_q.tasks import async_task

from accounts.models import User
from accounts.services import audit_record
from baitiao.business_time import business_datetime, business_today
from baitiao.money import ZERO, format_money
from baitiao.queues import CRITICAL, NOTIFY
from repayments.gateway.client import DebitResult, GatewayError, GatewayTimeout, GatewayUnreachable, get_gateway
from repayments.gateway.taxonomy import failure_family
from repayments.models import (
    IN_FLIGHT_ATTEMPT_STATUSES,
    OPEN_BILL_STATUSES,
    AttemptStatus,
    Bill,
    BillStatus,
    BindingRepairCase,
    CardBinding,
    CardBindingStatus,
    Channel,
    CreditLine,
    Customer,
    FailureCode,
    FailureFamily,
    GatewayReviewItem,
    Incident,
    IncidentStatus,
    NoticeDropReason,
    Notification,
    NotificationChannel,
    NotificationEvent,
    NotificationStatus,
    RepairCaseStatus,
    RepaymentAttempt,
    ReviewReason,
    outstanding_expression,
    outstanding_sql,
)
from repayments.services.delinquency import bill_close_paid

logger = logging.getLogger(__name__)

SEND_BATCH = 50  # attempts per send task
ANALYZE_AFTER_ATTEMPTS = 10_000  # a run creating this many refreshes the attempt statistics
NOTIFY_QUEUE = NOTIFY  # customer messages: the cluster started with Q_CLUSTER_NAME=notify
CRITICAL_QUEUE = CRITICAL  # agents' retries: the cluster started with Q_CLUSTER_NAME=critical

# What a debit asks for (docs/repayment-engine.md): on and after the due date, what
# the statement still owes; before it, only what is past due (the minimums missed on
# earlier statements, with their unwaived fees) — never more than is owed.
_DEBIT_AMOUNT = f"""
    CASE WHEN b.due_date <= %(first_debit_through)s THEN {outstanding_sql("b")}
         ELSE LEAST(b.past_due_amount + b.late_fee - b.late_fee_waived, {outstanding_sql("b")}) END
"""  # noqa: S608 - constant SQL, no input

CREATE_ATTEMPTS = f"""
    INSERT INTO repayments_repaymentattempt (attempt_no, bill_id, card_binding_id, channel, amount, status,
        failure_code, failure_family, failure_message, gateway_reference, requested_at, created_at, updated_at)
    SELECT b.bill_no || '-A' || (b.debit_attempts + 1), b.id, cb.id, %(channel)s,
           debit.amount, %(pending)s, '', '', '', '',
           %(now)s, %(now)s, %(now)s
      FROM repayments_bill b
      JOIN repayments_cardbinding cb ON cb.customer_id = b.customer_id AND cb.status = %(active)s
     CROSS JOIN LATERAL (SELECT {_DEBIT_AMOUNT} AS amount) debit
     WHERE b.status IN (%(bill_pending)s, %(bill_overdue)s)
       AND debit.amount > 0
       -- First debits: on the due date, or at once for a statement already past due.
       AND ((b.debit_attempts = 0 AND b.retry_at IS NULL
             AND (b.due_date <= %(first_debit_through)s OR b.past_due_since <= %(first_debit_through)s))
            OR b.retry_at <= %(now)s)
       AND (%(customer_id)s::bigint IS NULL OR b.customer_id = %(customer_id)s::bigint)
       AND (%(customer_ids)s::bigint[] IS NULL OR b.customer_id = ANY(%(customer_ids)s::bigint[]))
       -- OFFSET 0 keeps this a per-bill probe of the one-in-flight index. As an anti
       -- join, statistics taken before the previous run's 100,000 new attempts
       -- (autovacuum had not analyzed yet) made the planner rescan all of them for
       -- every bill: 400 s instead of 10 s (benchmarks/RESULTS.md).
       AND NOT EXISTS (SELECT 1 FROM repayments_repaymentattempt a
                        WHERE a.bill_id = b.id AND a.status IN (%(pending)s, %(processing)s, %(unknown)s)
                       OFFSET 0)
     ORDER BY b.due_date DESC, b.id  -- the current cycle first, then older overdue bills
     LIMIT %(limit)s
     -- The amount is fixed from the bill as read here: lock it, and leave to the next
     -- run a bill an agent or a relief batch holds (its waiver would come too late).
       FOR UPDATE OF b SKIP LOCKED
    ON CONFLICT DO NOTHING
    RETURNING id, bill_id
"""  # noqa: S608 - constant SQL, no input


def collection_run(
    *,
    now: dt.datetime | None = None,
    limit: int = 200_000,
    customer_id: int | None = None,
    send_cluster: str | None = None,
    customer_ids: list[int] | None = None,
) -> dict[str, int]:
    """Create the attempts that are due and enqueue sending them (after commit).

    Set-based: one INSERT … SELECT creates every attempt; a concurrent run
    inserts nothing twice (``ON CONFLICT DO NOTHING`` on the attempt number and the
    one-in-flight index).

    Args:
        now: the moment of the run (UTC aware); default ``timezone.now()``.
        limit: most attempts created in one run.
        customer_id: only this customer's bills (an agent's retry after a new binding
            or a manual retry); default every customer.
        customer_ids: only these customers' bills (the first run's sample,
            ``repayments.services.first_run``); default every customer.
        send_cluster: the django-q2 cluster (lane) for the send tasks; ``CRITICAL_QUEUE``
            lets an agent's retry overtake a large scheduled run. Default: the main
            (bulk) cluster.

    Returns:
        ``{"attempts": n, "tasks": m}``.
    """
    now = now or timezone.now()
    first_debit_through = _first_debit_through(now)
    params: dict[str, Any] = {
        "channel": Channel.AUTO_DEBIT,
        "pending": AttemptStatus.PENDING,
        "processing": AttemptStatus.PROCESSING,
        "unknown": AttemptStatus.UNKNOWN,
        "active": CardBindingStatus.ACTIVE,
        "bill_pending": BillStatus.PENDING,
        "bill_overdue": BillStatus.OVERDUE,
        "now": now,
        "first_debit_through": first_debit_through,
        "limit": limit,
        "customer_id": customer_id,
        "customer_ids": customer_ids,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(CREATE_ATTEMPTS, params)
        created = cursor.fetchall()
        attempt_ids = [row[0] for row in created]
        if created:
            cursor.execute(
                "UPDATE repayments_bill SET debit_attempts = debit_attempts + 1, retry_at = NULL, updated_at = now()"
                " WHERE id = ANY(%s)",
                [[row[1] for row in created]],
            )
        batches = [attempt_ids[i : i + SEND_BATCH] for i in range(0, len(attempt_ids), SEND_BATCH)]
        for batch in batches:
            transaction.on_commit(partial(async_task, "repayments.tasks.send_debits", batch, cluster=send_cluster))
        if created:
            audit_record(actor=None, action="collection.run", target_type="job", after={"attempts": len(created)})
    if len(attempt_ids) >= ANALYZE_AFTER_ATTEMPTS:
        # Until autovacuum catches up, statistics say almost no attempt is in flight,
        # and the planner then answers "attempt id = X AND status = pending" through
        # the one-in-flight partial index, scanning all 100,000 new entries: each
        # send's claim took 130 ms instead of 0.1 ms (benchmarks/RESULTS.md).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE repayments_repaymentattempt")
    return {"attempts": len(attempt_ids), "tasks": len(batches)}


SEND_CONCURRENCY = 8  # debits in flight at once from one task (each on its own DB connection)


def attempts_send(*, attempt_ids: list[int]) -> dict[str, int]:
    """Send each ``pending`` attempt to the gateway once.

    The claim (``pending`` → ``processing``) is a conditional UPDATE committed
    before the network call, so a replayed task or a second worker skips the
    attempt; a worker that dies after the claim leaves a ``processing`` attempt
    that :func:`attempts_resolve_stale` settles by ``query``. Outside a
    transaction, up to ``SEND_CONCURRENCY`` debits are in flight at once.

    Returns:
        Counts per outcome: ``sent``, ``skipped``, ``unknown``.
    """
    counts = {"sent": 0, "skipped": 0, "unknown": 0}
    if len(attempt_ids) > 1 and not connection.in_atomic_block:
        with ThreadPoolExecutor(max_workers=SEND_CONCURRENCY) as pool:
            outcomes = list(pool.map(_send_one_in_thread, attempt_ids))
    else:
        outcomes = [_send_one(attempt_id) for attempt_id in attempt_ids]
    for outcome in outcomes:
        counts[outcome] += 1
    return counts


def _send_one_in_thread(attempt_id: int) -> str:
    try:
        return _send_one(attempt_id)
    finally:
        connection.close()  # this thread's own connection


def _send_one(attempt_id: int) -> str:
    attempt = _claim(attempt_id)
    if attempt is None:
        return "skipped"
    binding = attempt.card_binding
    assert binding is not None  # _claim cancels an attempt without an active binding
    try:
        result = get_gateway().debit(
            idempotency_key=attempt.attempt_no,
            token=binding.gateway_token,
            amount=attempt.amount,
            currency=attempt.bill.credit_line.currency,
        )
    except (GatewayTimeout, GatewayUnreachable):
        # Unknown until the gateway says otherwise: attempts_resolve_stale asks it
        # later; nothing is retried before that, so money is never taken twice.
        _mark_unknown(attempt_id)
        return "unknown"
    except GatewayError as exc:
        _review(ReviewReason.MALFORMED, attempt.attempt_no, {"error": exc.code, "message": str(exc)}, attempt)
        _mark_unknown(attempt_id)
        return "unknown"
    if result.status in ("succeeded", "failed"):
        attempt_apply_result(result=result, source="send")
    return "sent"


@transaction.atomic
def _claim(attempt_id: int) -> RepaymentAttempt | None:
    """``pending`` → ``processing`` after re-checking the bill, under its row lock.

    A bill paid, closed or reduced while the attempt waited in the queue, or a
    binding no longer active, cancels the attempt instead of debiting stale money.
    """
    attempt = (
        RepaymentAttempt.objects.select_for_update(of=("self",))
        .select_related("card_binding", "bill__credit_line")
        .filter(id=attempt_id, status=AttemptStatus.PENDING)
        .first()
    )
    if attempt is None:
        return None  # sent by another worker, or a replayed task
    bill = Bill.objects.select_for_update().get(id=attempt.bill_id)
    binding = attempt.card_binding
    now = timezone.now()
    if (
        bill.status not in (BillStatus.PENDING, BillStatus.OVERDUE)
        or debit_amount_now(bill, now=now) < attempt.amount
        or binding is None
        or binding.status != CardBindingStatus.ACTIVE
    ):
        attempt.status, attempt.completed_at = AttemptStatus.CANCELLED, now
        attempt.save(update_fields=["status", "completed_at", "updated_at"])
        if bill.status in (BillStatus.PENDING, BillStatus.OVERDUE) and bill.outstanding > ZERO:
            bill.retry_at = now  # collect what is owed now, with the right amount and card
            bill.save(update_fields=["retry_at", "updated_at"])
        return None
    # ``requested_at`` is the moment the debit leaves for the bank, not when the run
    # created it: a long run sends its last debits many minutes after its first, and
    # incident detection must see each one when it happened (issue #16).
    attempt.status, attempt.requested_at = AttemptStatus.PROCESSING, now
    attempt.save(update_fields=["status", "requested_at", "updated_at"])
    return attempt


def _mark_unknown(attempt_id: int) -> None:
    """``processing`` → ``unknown``; the timeout is the result that arrived, so it stamps ``completed_at``.

    Incident detection counts an attempt when its result arrived (``completed_at``):
    a bank that stops answering shows as a burst of timeouts. The bank's final
    word, when it comes, replaces the stamp with its own arrival.
    """
    now = timezone.now()
    RepaymentAttempt.objects.filter(id=attempt_id, status=AttemptStatus.PROCESSING).update(
        status=AttemptStatus.UNKNOWN, completed_at=now, updated_at=now
    )


@dataclass(frozen=True)
class ApplyOutcome:
    applied: bool
    # "applied", "late_success", "replay", "unknown_attempt", "amount_mismatch", "still_processing"
    reason: str


def attempt_apply_result(*, result: DebitResult, source: str) -> ApplyOutcome:
    """Apply the gateway's final word on one debit, exactly once.

    Every way a result arrives (the answer to the send, a callback, a ``query``, a
    late success for an attempt already closed as failed) goes through here, and
    each is checked against the attempt before anything is booked: a success must
    state its amount; the amount must equal the attempt's, and the currency, when
    the gateway reports one, the bill's credit line's.

    Args:
        result: ``succeeded`` or ``failed`` with code, amount (major units of the
            currency) and reference; other statuses change nothing.
        source: where it came from (``callback``, ``send``, ``query``), for the audit trail.

    Returns:
        Whether it changed anything, and why not. An unknown attempt, or an amount
        or currency that differs from the attempt's (``amount_mismatch``), is
        recorded as a ``GatewayReviewItem`` and changes nothing.
    """
    if result.status not in ("succeeded", "failed"):
        return ApplyOutcome(False, "still_processing")
    with transaction.atomic():
        attempt = (
            RepaymentAttempt.objects.select_for_update(of=("self",))
            .select_related("card_binding", "bill__credit_line")
            .filter(attempt_no=result.idempotency_key)
            .first()
        )
        if attempt is None:
            _review(ReviewReason.UNKNOWN_ATTEMPT, result.idempotency_key, _payload(result))
            return ApplyOutcome(False, "unknown_attempt")
        if attempt.status not in IN_FLIGHT_ATTEMPT_STATUSES:
            if attempt.status == AttemptStatus.FAILED and result.status == "succeeded":
                if _differs_from_attempt(result, attempt):
                    _review(ReviewReason.AMOUNT_MISMATCH, result.idempotency_key, _payload(result), attempt)
                    return ApplyOutcome(False, "amount_mismatch")
                # The bank took the money after all. Record it (it is the customer's
                # money on our side now) and flag it: a retry may have collected too,
                # and then the customer is owed a refund.
                _review(ReviewReason.LATE_SUCCESS, result.idempotency_key, _payload(result), attempt)
                bill = (
                    Bill.objects.select_for_update(of=("self",)).select_related("credit_line").get(id=attempt.bill_id)
                )
                attempt.status, attempt.gateway_reference = AttemptStatus.SUCCEEDED, result.reference[:64]
                attempt.save(update_fields=["status", "gateway_reference", "updated_at"])
                _apply_payment(bill, attempt.amount, timezone.now())
                audit_record(actor=None, action="attempt.late_success", target=attempt, after=_payload(result))
                return ApplyOutcome(True, "late_success")
            return ApplyOutcome(False, "replay")
        if _differs_from_attempt(result, attempt):
            _review(ReviewReason.AMOUNT_MISMATCH, result.idempotency_key, _payload(result), attempt)
            return ApplyOutcome(False, "amount_mismatch")
        bill = (
            Bill.objects.select_for_update(of=("self",))
            .select_related("customer", "credit_line")
            .get(id=attempt.bill_id)
        )
        now = timezone.now()
        attempt.completed_at = now
        attempt.gateway_reference = result.reference[:64]
        if result.status == "succeeded":
            attempt.status = AttemptStatus.SUCCEEDED
            attempt.save(update_fields=["status", "completed_at", "gateway_reference", "updated_at"])
            _apply_payment(bill, attempt.amount, now)
            event = NotificationEvent.DEBIT_SUCCEEDED
            channels = [NotificationChannel.IN_APP, NotificationChannel.SMS]
        else:
            family = failure_family(result.code)
            attempt.status = AttemptStatus.FAILED
            attempt.failure_code = result.code[:40] or FailureCode.OTHER
            attempt.failure_family = family
            attempt.failure_message = result.message[:255]
            attempt.save(
                update_fields=[
                    "status",
                    "completed_at",
                    "gateway_reference",
                    "failure_code",
                    "failure_family",
                    "failure_message",
                    "updated_at",
                ]
            )
            event, channels = _apply_failure(bill, attempt, family, now)
        audit_record(
            actor=None,
            action=f"attempt.{attempt.status}",
            target=attempt,
            after={"source": source, "code": attempt.failure_code, "family": attempt.failure_family},
        )
        if event:
            transaction.on_commit(
                lambda: async_task("repayments.tasks.notify_attempt", attempt.id, event, channels, cluster=NOTIFY_QUEUE)
            )
    return ApplyOutcome(True, "applied")


def _differs_from_attempt(result: DebitResult, attempt: RepaymentAttempt) -> bool:
    """Whether ``result`` disagrees with what ``attempt`` asked for, so nothing may be booked.

    A reported currency other than the bill's (``attempt.bill.credit_line``, loaded
    with the attempt), a success without an amount, or an amount that is not a
    finite number or not the attempt's. A failure may leave its amount and currency out.
    """
    if result.currency and result.currency != attempt.bill.credit_line.currency:
        return True
    if result.amount is None:
        return result.status == "succeeded"
    return not result.amount.is_finite() or result.amount != attempt.amount


def _apply_payment(bill: Bill, amount: Decimal, now: dt.datetime) -> None:
    """Book ``amount`` on the (locked) bill; free the line by the principal it repays.

    A payment goes to what is past due first (``repayments.services.delinquency``):
    once nothing is past due the account is current again (``pending``, DPD 0); the
    rest of the balance is debited on the statement's due date. Money taken for a
    bill closed meanwhile (an import closed it while the debit was at the bank) is
    booked too, never lost: a carried-forward statement then carries that much less.
    """
    principal_before = max(bill.amount_due - bill.amount_paid - bill.carried_forward, ZERO)
    bill.amount_paid += amount
    fields = ["amount_paid", "updated_at"]
    if bill.status not in OPEN_BILL_STATUSES:
        if bill.status == BillStatus.CARRIED_FORWARD:
            bill.carried_forward = max(bill.carried_forward - amount, ZERO)
            fields.append("carried_forward")
            if bill.carried_forward == ZERO:
                fields += bill_close_paid(bill, now=now)
        bill.save(update_fields=fields)
        return
    fields += ["retry_at", "past_due_amount", "past_due_since", "cycles_past_due"]
    today = timezone.localdate(now)
    if today > bill.due_date + dt.timedelta(days=settings.GRACE_PERIOD_DAYS):
        bill.past_due_amount = min(max(bill.minimum_due - bill.amount_paid, ZERO), bill.amount_due)
    else:
        bill.past_due_amount = max(bill.past_due_amount - amount, ZERO)
    if bill.past_due_amount == ZERO:
        bill.past_due_since, bill.cycles_past_due = None, 0
    if bill.outstanding == ZERO:
        fields += bill_close_paid(bill, now=now)
    else:
        if bill.past_due_amount == ZERO and bill.status == BillStatus.OVERDUE:
            bill.status, bill.dpd = BillStatus.PENDING, 0  # current again: the missed minimums are paid
            fields += ["status", "dpd"]
        if bill.due_date > today:
            # Past-due money collected ahead of the statement's due date: the rest then.
            bill.retry_at = business_datetime(bill.due_date, dt.time(settings.COLLECTION_START_HOUR, 0))
        else:
            # Something is still owed (a late fee accrued after the amount was fixed).
            bill.retry_at = _next_morning(now, 1)
    bill.save(update_fields=fields)
    # One UPDATE, so two payments of one customer at once cannot overwrite each other.
    CreditLine.objects.filter(pk=bill.credit_line_id).update(
        available_credit=Least(F("available_credit") + min(amount, principal_before), F("credit_limit")),
        updated_at=now,
    )


def debit_amount_now(bill: Bill, *, now: dt.datetime) -> Decimal:
    """What a debit of ``bill`` may ask for at ``now`` (currency units): the ``_DEBIT_AMOUNT`` rule in Python.

    On and after the first debit day of the due date, what the bill still owes;
    before it, only the past-due amount and its unwaived fee, never more than is
    owed. ``_claim`` re-checks a queued attempt with it; keep the two in step.
    """
    if bill.due_date <= _first_debit_through(now):
        return bill.outstanding
    return min(bill.past_due_amount + bill.late_fee - bill.late_fee_waived, bill.outstanding)


def _first_debit_through(now: dt.datetime) -> dt.date:
    """The latest due date a collection run at ``now`` debits: today from the start hour, yesterday before it."""
    local = timezone.localtime(now)
    day = local.date()
    return day if local.hour >= settings.COLLECTION_START_HOUR else day - dt.timedelta(days=1)


def _next_morning(now: dt.datetime, days: int) -> dt.datetime:
    day = timezone.localtime(now).date() + dt.timedelta(days=days)
    return business_datetime(day, dt.time(settings.COLLECTION_START_HOUR, 0))


def _failure_streak(bill: Bill, family: str) -> tuple[int, dt.datetime | None]:
    """Failed attempts of ``family`` on ``bill`` since its last success or other family
    (this one included), and when the first of them completed."""
    count, first = 0, None
    rows = (
        RepaymentAttempt.objects.filter(bill=bill)
        .exclude(status=AttemptStatus.CANCELLED)
        .order_by("-requested_at", "-id")
        .values_list("status", "failure_family", "completed_at")
    )
    for status, fam, completed_at in rows:
        if status == AttemptStatus.SUCCEEDED or (status == AttemptStatus.FAILED and fam != family):
            break
        if status == AttemptStatus.FAILED:
            count, first = count + 1, completed_at
    return count, first


def retry_time(
    *, family: str, failures: int, now: dt.datetime, streak_started: dt.datetime | None = None
) -> dt.datetime | None:
    """When to try ``family`` again after ``failures`` consecutive failures (None: not automatically).

    System failures back off from ``now``; day-based retries (funds, other) count
    their days from ``streak_started``, the first failure of the streak (UTC),
    so funds retries fall 1, 3 and 5 days after the first decline.

    ``settings.RETRY_POLICY`` is modelled on Stripe's smart-retry defaults (a few
    tries over days for declines) and Kill Bill's payment retry plugin (minutes
    with backoff for gateway errors).
    """
    policy = settings.RETRY_POLICY.get(family, {})
    if family == FailureFamily.SYSTEM:
        if failures > policy["max_tries"]:
            return _next_morning(now, 1)
        minutes = min(policy["first_minutes"] * policy["factor"] ** (failures - 1), policy["cap_minutes"])
        return now + dt.timedelta(minutes=minutes)
    days = policy.get("days", [])
    if failures <= len(days):
        return max(_next_morning(streak_started or now, days[failures - 1]), now)
    return None


def _apply_failure(bill: Bill, attempt: RepaymentAttempt, family: str, now: dt.datetime):
    failures, streak_started = _failure_streak(bill, family)
    event = None
    channels: list[str] = []
    if family == FailureFamily.BINDING:
        binding = (
            CardBinding.objects.select_for_update().filter(pk=attempt.card_binding_id).first()
            if attempt.card_binding_id
            else None
        )
        reverified_active = (
            binding is not None
            and binding.status == CardBindingStatus.ACTIVE
            and binding.status_changed_at is not None
            and binding.status_changed_at > attempt.requested_at
        )
        other_cards = CardBinding.objects.filter(customer_id=bill.customer_id, status=CardBindingStatus.ACTIVE)
        if attempt.card_binding_id is not None:
            other_cards = other_cards.exclude(pk=attempt.card_binding_id)
        has_other_card = other_cards.exists()
        if has_other_card or reverified_active:
            # The customer re-bound while this attempt was in flight: retry on the
            # card that is active now; no repair case, no "bind a new card" message.
            bill.retry_at = now
        else:
            bill.retry_at = None
            if binding is not None and binding.status == CardBindingStatus.ACTIVE:
                binding.status = CardBindingStatus.INVALID
                binding.status_changed_at = now
                binding.status_reason = f"{attempt.failure_code} on {attempt.attempt_no}"
                binding.save(update_fields=["status", "status_changed_at", "status_reason", "updated_at"])
            if binding is not None:
                BindingRepairCase.objects.get_or_create(
                    card_binding=binding,
                    status=RepairCaseStatus.OPEN,
                    defaults={
                        "customer_id": bill.customer_id,
                        "attempt": attempt,
                        "failure_code": attempt.failure_code,
                    },
                )
            # Tell the customer at once, on every channel that still works.
            event = NotificationEvent.DEBIT_FAILED_BINDING
            channels = [
                NotificationChannel.PUSH,
                NotificationChannel.SMS,
                NotificationChannel.EMAIL,
                NotificationChannel.IN_APP,
            ]
    else:
        bill.retry_at = retry_time(family=family, failures=failures, now=now, streak_started=streak_started)
        if family == FailureFamily.SYSTEM and _incident_open_for(attempt):
            # An open incident on this bank (issue #5): retrying it every few minutes only
            # adds load to a failing channel; wait the longest backoff. Resolving the
            # incident brings these retries back at once.
            cap = now + dt.timedelta(minutes=settings.RETRY_POLICY["system"]["cap_minutes"])
            bill.retry_at = max(bill.retry_at, cap) if bill.retry_at else cap
        if family == FailureFamily.FUNDS:
            event, channels = (
                NotificationEvent.DEBIT_FAILED_FUNDS,
                [NotificationChannel.SMS, NotificationChannel.IN_APP],
            )
        elif family == FailureFamily.SYSTEM and failures == 1:
            event, channels = NotificationEvent.DEBIT_FAILED_SYSTEM, [NotificationChannel.IN_APP]
        elif family == FailureFamily.OTHER:
            event, channels = NotificationEvent.DEBIT_FAILED_SYSTEM, [NotificationChannel.IN_APP]
    bill.last_failure_family, bill.last_failure_code, bill.last_failure_at = family, attempt.failure_code, now
    bill.save(update_fields=["retry_at", "last_failure_family", "last_failure_code", "last_failure_at", "updated_at"])
    return event, channels


def _incident_open_for(attempt: RepaymentAttempt) -> bool:
    from repayments.selectors.incidents import incident_open_for_bank

    binding = attempt.card_binding
    bank_code = binding.bank_code if binding is not None else ""
    return incident_open_for_bank(bank_code)


_FAILURE_EVENTS = (
    NotificationEvent.DEBIT_FAILED_BINDING,
    NotificationEvent.DEBIT_FAILED_FUNDS,
    NotificationEvent.DEBIT_FAILED_SYSTEM,
)


def attempt_notify(*, attempt_id: int, event: str, channels: list[str]) -> int:
    """Send the customer the message for ``event`` about attempt ``attempt_id``; returns messages sent or failed.

    A message waits in the ``notify`` lane, behind thousands of others in a large
    run. One that stopped being true meanwhile is dropped, not sent (issue #16): a
    failure notice for a bill since paid or closed, or a "system problem" notice
    for a debit inside an incident since resolved. A dropped message is recorded
    per channel as a ``dropped`` notification whose ``error`` is the
    :class:`~repayments.models.NoticeDropReason` (the customer's history shows it,
    ``/metrics`` counts it) and logged; a replay then does nothing.

    Args:
        attempt_id: the attempt the message is about.
        event: a ``NotificationEvent`` value.
        channels: ``NotificationChannel`` values, every one tried.

    Returns:
        How many messages were sent or failed (0 when dropped or already sent).
    """
    from repayments.services.notifications import notification_send

    attempt = RepaymentAttempt.objects.select_related("bill__customer", "bill__credit_line", "card_binding").get(
        id=attempt_id
    )
    bill = attempt.bill
    if Notification.objects.filter(attempt=attempt, event=event).exists():
        return 0  # a replayed task: the customer was told already
    reason = notice_obsolete_reason(attempt=attempt, event=event)
    if reason:
        now = timezone.now()
        Notification.objects.bulk_create(
            Notification(
                customer=bill.customer,
                bill=bill,
                attempt=attempt,
                event=event,
                channel=channel,
                language=bill.customer.language or "zh-hans",
                body="",
                status=NotificationStatus.DROPPED,
                error=reason,
                sent_at=now,
            )
            for channel in channels
        )
        logger.info("notice dropped: %s for attempt %s, %s", event, attempt.attempt_no, reason)
        return 0
    context = {
        "amount": format_money(attempt.amount, bill.credit_line.currency),
        "bill_no": bill.bill_no,
        "last4": attempt.card_binding.last4 if attempt.card_binding else "",
        "due_date": bill.due_date.isoformat(),
        "reason": FailureCode(attempt.failure_code).label if attempt.failure_code in FailureCode.values else "",
        "retry_date": timezone.localtime(bill.retry_at).date().isoformat() if bill.retry_at else "",
    }
    sent = notification_send(
        customer=bill.customer,
        event=event,
        channels=channels,
        fallback=False,
        context=context,
        bill=bill,
        attempt=attempt,
    )
    return len(sent)


def notice_obsolete_reason(*, attempt: RepaymentAttempt, event: str) -> str:
    """Why the notice ``event`` about ``attempt`` is no longer true, or ``""`` when it still is.

    * A failure notice (``debit_failed_*``) for a bill that owes nothing any more or
      is no longer open (paid, closed, carried forward): ``bill_settled``.
    * A "system problem" notice for a debit sent inside the window of an incident on
      its bank and channel that has been resolved since: ``incident_resolved`` (the
      retries came back at once; the relief batch apologises).

    Args:
        attempt: the attempt, with ``bill`` and ``card_binding`` loaded.
        event: a ``NotificationEvent`` value.

    Returns:
        A :class:`~repayments.models.NoticeDropReason` value, or ``""``.
    """
    if event not in _FAILURE_EVENTS:
        return ""
    bill = attempt.bill
    if bill.status not in OPEN_BILL_STATUSES or bill.outstanding <= ZERO:
        return NoticeDropReason.BILL_SETTLED
    if event == NotificationEvent.DEBIT_FAILED_SYSTEM:
        bank_code = attempt.card_binding.bank_code if attempt.card_binding else ""
        resolved = Incident.objects.filter(
            Q(bank_code="") | Q(bank_code=bank_code),
            Q(channel="") | Q(channel=attempt.channel),
            status=IncidentStatus.RESOLVED,
            started_at__lte=attempt.requested_at,
            ended_at__gte=attempt.requested_at,
        )
        if resolved.exists():
            return NoticeDropReason.INCIDENT_RESOLVED
    return ""


def attempts_resolve_stale(*, now: dt.datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Settle attempts whose result never came: ask the gateway, never debit again.

    * ``unknown`` / ``processing`` older than ``settings.ATTEMPT_RESOLVE_AFTER_SECONDS``:
      ``query``; a final answer is applied; ``not_found`` means the debit never
      reached the bank: failed ``not_delivered`` (system), retried by policy.
    * ``pending`` older than that: the send task was lost; sent again.

    Returns:
        Counts: ``resolved``, ``not_found``, ``still_open``, ``resent``.
    """
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.ATTEMPT_RESOLVE_AFTER_SECONDS)
    counts = {"resolved": 0, "not_found": 0, "still_open": 0, "resent": 0}
    stale = RepaymentAttempt.objects.filter(
        status__in=[AttemptStatus.UNKNOWN, AttemptStatus.PROCESSING], updated_at__lt=cutoff
    ).values_list("id", "attempt_no", "amount", "updated_at")[:limit]
    gateway = get_gateway()
    # "Not found" proves nothing while our own request may still be on its way: only
    # trust it once the last send is older than twice the client timeout (real clock).
    in_flight_until = dt.timedelta(seconds=2 * settings.GATEWAY_TIMEOUT_SECONDS)
    for _attempt_id, attempt_no, amount, touched in stale:
        try:
            result = gateway.query(idempotency_key=attempt_no)
        except (GatewayTimeout, GatewayUnreachable, GatewayError):
            counts["still_open"] += 1
            continue
        if result.status == "not_found" and timezone.now() - touched < in_flight_until:
            counts["still_open"] += 1
            continue
        if result.status == "not_found":
            result = DebitResult(attempt_no, "failed", amount, FailureCode.NOT_DELIVERED, "no record at the gateway")
            counts["not_found"] += 1
        if attempt_apply_result(result=result, source="query").applied:
            counts["resolved"] += 1
        else:
            counts["still_open"] += 1
    lost = list(
        RepaymentAttempt.objects.filter(status=AttemptStatus.PENDING, updated_at__lt=cutoff).values_list(
            "id", flat=True
        )[:limit]
    )
    if lost:
        attempts_send(attempt_ids=lost)
        counts["resent"] = len(lost)
    return counts


def bills_retry_after_rebinding(*, customer_id: int, actor: User | None) -> int:
    """Make the customer's open bills due for an immediate debit (a new binding is verified).

    Returns:
        How many bills were scheduled.
    """
    now = timezone.now()
    scheduled = (
        Bill.objects.open()
        .alias(owed=outstanding_expression())
        .filter(
            # Failed or overdue bills, and past-due money on a statement not yet due;
            # the rest waits for its due date.
            Q(due_date__lte=business_today()) | Q(past_due_amount__gt=0),
            customer_id=customer_id,
            owed__gt=0,
        )
        .update(retry_at=now, updated_at=now)
    )
    audit_record(
        actor=actor,
        action="collection.retry_after_rebinding",
        target_type="repayments.customer",
        target_id=str(customer_id),
        customer_no=Customer.objects.values_list("customer_no", flat=True).get(pk=customer_id),
        after={"bills": scheduled},
    )
    collect_customer_soon(customer_id)
    return scheduled


def collect_customer_soon(customer_id: int) -> None:
    """After commit, debit this customer's due bills on the ``critical`` lane.

    Agent actions (a new binding, a manual retry) should show their result in
    seconds, not wait behind a scheduled run's thousands of send tasks on the main
    lane, nor behind thousands of customer messages on the ``notify`` lane
    (docs/operations.md, "Lanes").
    """
    transaction.on_commit(lambda: async_task("repayments.tasks.collect_customer", customer_id, cluster=CRITICAL_QUEUE))


def _payload(result: DebitResult) -> dict:
    return {
        "idempotency_key": result.idempotency_key,
        "status": result.status,
        "amount": str(result.amount) if result.amount is not None else None,
        "currency": result.currency,
        "code": result.code,
        "reference": result.reference,
    }


def _review(reason: str, key: str, payload: dict, attempt: RepaymentAttempt | None = None) -> None:
    logger.warning("gateway message refused (%s) for %s", reason, key)
    GatewayReviewItem.objects.create(reason=reason, idempotency_key=key[:64], attempt=attempt, payload=payload)
