"""Retention (PIPL art. 19 and 47): anonymize customers whose credit line closed long ago.

A customer is anonymized when their credit line has been ``closed`` for longer
than the retention period (``settings.CUSTOMER_RETENTION_YEARS`` calendar years,
or ``CUSTOMER_RETENTION_DAYS`` days when set) and none of their bills is still
open (pending or overdue). Anonymizing erases what identifies the person and
keeps what the books and the dashboard need:

* erased: name, phone, national ID, email (the ciphertexts themselves, not just
  the key), their lookup hashes and last four digits; on every card binding the
  reserved phone and its last four, the card's last four (set to ``0000``, the
  database requires four digits) and the gateway token (replaced by ``anon-<id>``:
  the gateway could map it back to the card); the bodies of agents' notes (free
  text that may quote a phone number or an address);
* kept: ``customer_no`` (the audit trail, which cannot be changed, refers to it;
  without the personal fields it is a pseudonym), credit line, bills, repayment
  attempts, notifications (their texts hold only masked card numbers and
  amounts), extensions, waivers, risk tier, credit score, dates, bank and BIN:
  every number the receivables dashboard aggregates;
* untouched: the audit trail (append-only in the database; its snapshots hold
  bank, BIN, last four and field names, never clear personal values; staff's
  free-text reasons are the one place a person could be named, see
  docs/operations.md).

``customer.anonymized_at`` records when. The job is idempotent (anonymized
customers are skipped), works in chunks of ``settings.CUSTOMER_RETENTION_CHUNK``
customers by primary key (bounded memory at any size), and is race-safe: each
chunk locks its credit lines (``FOR UPDATE``, which also blocks a new bill's
foreign-key check on them) and re-checks every condition before it writes.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from accounts.services import audit_record
from repayments.models import (
    OPEN_BILL_STATUSES,
    Bill,
    CardBinding,
    CardBindingStatus,
    CreditLine,
    CreditLineStatus,
    Customer,
    CustomerNote,
    Extension,
    Waiver,
)

logger = logging.getLogger(__name__)


def retention_cutoff(*, now: dt.datetime, retention_days: int | None = None) -> dt.datetime:
    """The moment before which a closure is old enough to anonymize (aware, UTC).

    Args:
        now: the current time (aware).
        retention_days: a period in days; ``None`` reads ``settings.CUSTOMER_RETENTION_DAYS``
            and, when that is 0, ``settings.CUSTOMER_RETENTION_YEARS``.

    Years are calendar years in the business time zone: five years before
    2031-03-01 10:00 Shanghai is 2026-03-01 10:00 Shanghai, and 29 February maps to
    28 February. (5 × 365 days would be a day or two short across leap years.)

    Raises:
        ValueError: a negative period.
    """
    if retention_days is None and settings.CUSTOMER_RETENTION_DAYS > 0:
        retention_days = settings.CUSTOMER_RETENTION_DAYS
    if retention_days is not None:
        if retention_days < 0:
            raise ValueError("retention_days must not be negative")
        return now - dt.timedelta(days=retention_days)
    years = settings.CUSTOMER_RETENTION_YEARS
    if years < 0:
        raise ValueError("CUSTOMER_RETENTION_YEARS must not be negative")
    local = timezone.localtime(now)
    year = local.year - years
    day = min(local.day, calendar.monthrange(year, local.month)[1])
    # Same wall-clock time in the business zone, re-localised (the offset of that date).
    naive = local.replace(tzinfo=None, year=year, day=day)
    return timezone.make_aware(naive, timezone.get_default_timezone()).astimezone(dt.UTC)


def _expired_lines(cutoff: dt.datetime):
    """Closed credit lines of not-yet-anonymized customers, closed before ``cutoff``, owing nothing."""
    open_bills = Bill.objects.filter(customer_id=OuterRef("customer_id"), status__in=OPEN_BILL_STATUSES)
    return CreditLine.objects.filter(
        status=CreditLineStatus.CLOSED,
        status_changed_at__lt=cutoff,
        customer__anonymized_at__isnull=True,
    ).exclude(Exists(open_bills))


def customer_anonymize_expired(
    *, now: dt.datetime | None = None, retention_days: int | None = None, chunk: int | None = None
) -> int:
    """Anonymize every customer whose retention period has run out; return how many.

    Args:
        now: the current time (aware; default ``timezone.now()``).
        retention_days: the period in days, overriding the settings (see :func:`retention_cutoff`).
        chunk: customers per transaction (default ``settings.CUSTOMER_RETENTION_CHUNK``).

    Returns:
        The number of customers anonymized by this run (0 on a second run).

    Writes one audit event per chunk, in the chunk's transaction (actor ``system``,
    action ``customer.anonymize``) with the cutoff, the count and the customer
    numbers (pseudonyms once the data is gone), never the customers' data; a run
    that finds no one writes nothing. A crash mid-run leaves every committed chunk
    audited; the next run carries on.

    Raises:
        ValueError: a negative period or a chunk below 1.
    """
    now = now or timezone.now()
    chunk = chunk or settings.CUSTOMER_RETENTION_CHUNK
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    cutoff = retention_cutoff(now=now, retention_days=retention_days)
    total = 0
    last_id = 0
    while True:
        # Keyset pagination over customer ids: each round reads one index range, never an offset.
        candidates = list(
            _expired_lines(cutoff)
            .filter(customer_id__gt=last_id)
            .order_by("customer_id")
            .values_list("customer_id", flat=True)[:chunk]
        )
        if not candidates:
            break
        last_id = candidates[-1]
        total += _anonymize_chunk(candidates, cutoff=cutoff, now=now)
    logger.info("retention run: %s customers anonymized (closed before %s)", total, cutoff.isoformat())
    return total


@transaction.atomic
def _anonymize_chunk(customer_ids: list[int], *, cutoff: dt.datetime, now: dt.datetime) -> int:
    # Lock the lines, then re-check: a line reopened or a bill added since the read is skipped.
    ids = list(
        _expired_lines(cutoff)
        .filter(customer_id__in=customer_ids)
        .select_for_update(of=("self",))
        .values_list("customer_id", flat=True)
    )
    if not ids:
        return 0
    count = Customer.objects.filter(id__in=ids, anonymized_at__isnull=True).update(
        name="",
        phone="",
        phone_hash="",
        phone_last4="",
        national_id="",
        national_id_hash="",
        national_id_last4="",
        email="",
        anonymized_at=now,
        updated_at=now,
    )
    CardBinding.objects.filter(customer_id__in=ids).update(
        reserved_phone="",
        reserved_phone_last4="",
        last4="0000",
        gateway_token=Concat(Value("anon-"), Cast("id", output_field=CardBinding._meta.get_field("gateway_token"))),
        updated_at=now,
    )
    # Staff's free text about this customer may quote a phone, an address or a name.
    # (A relief batch's note concerns many customers and names none: it is kept.)
    CustomerNote.objects.filter(customer_id__in=ids).update(body="", updated_at=now)
    Extension.objects.filter(customer_id__in=ids).update(note="", decision_note="", updated_at=now)
    Waiver.objects.filter(customer_id__in=ids).update(note="", decision_note="", updated_at=now)
    # The retired card can never be debited again.
    CardBinding.objects.filter(customer_id__in=ids, status=CardBindingStatus.ACTIVE).update(
        status=CardBindingStatus.INVALID, status_reason="customer anonymized", status_changed_at=now
    )
    if count:
        audit_record(
            actor=None,
            action="customer.anonymize",
            target_type="job",
            after={
                "cutoff": cutoff.isoformat(),
                "customers": count,
                "customer_nos": list(Customer.objects.filter(id__in=ids).values_list("customer_no", flat=True)),
            },
        )
    return count
