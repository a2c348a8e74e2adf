"""Reads for system-fault incidents (issue #5): who is shielded, what relief would reach, the incident page.

The SQL fragments here are shared by the engine's set-based jobs
(``services/delinquency.py``, ``services/reminders.py``) so that "shielded by an
open incident" means the same thing everywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, OuterRef, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from baitiao.masking import mask_name
from baitiao.paging import Page, page_bounds, page_from_rows, page_number
from repayments.models import (
    SQL_CODES,
    AttemptStatus,
    Bill,
    BureauSuppression,
    CardBinding,
    CardBindingStatus,
    Incident,
    IncidentStatus,
    ReliefBatch,
    ReliefItem,
    ReliefStatus,
    RepaymentAttempt,
    outstanding_sql,
)

# A bill is shielded while an open incident covers it: its latest failure is
# system-family, it happened during the incident, and the customer's active card is on the incident's bank (an
# incident without a bank covers every bank). ``{bill}`` is the bill table's alias
# in the statement the fragment is put into. Cheap when nothing is open: the inner
# scan reads the (tiny) open part of the incident table. Its statement is run with
# ``SQL_CODES`` among its parameters (named parameters only).
SHIELDED_BY_OPEN_INCIDENT = """
    ({bill}.last_failure_family = %(family_system)s AND EXISTS (
        SELECT 1 FROM repayments_incident inc
         WHERE inc.status = %(incident_open)s
           AND {bill}.last_failure_at >= inc.started_at
           AND (inc.bank_code = '' OR EXISTS (
                SELECT 1 FROM repayments_cardbinding icb
                 WHERE icb.customer_id = {bill}.customer_id AND icb.status = %(binding_active)s
                   AND icb.bank_code = inc.bank_code))))
"""


def shielded_sql(bill_alias: str) -> str:
    """The :data:`SHIELDED_BY_OPEN_INCIDENT` condition for the bill table aliased ``bill_alias``."""
    return SHIELDED_BY_OPEN_INCIDENT.format(bill=bill_alias)


def incident_open_for_bank(bank_code: str) -> bool:
    """Whether an open incident covers ``bank_code`` (an incident without a bank covers all)."""
    return Incident.objects.filter(Q(bank_code="") | Q(bank_code=bank_code), status=IncidentStatus.OPEN).exists()


BANNER_CACHE_KEY = "incidents:open-banner"
BANNER_CACHE_SECONDS = 30


def incidents_open_banner() -> list[dict]:
    """Open incidents for the console banner: ``[{"pk", "bank_code", "channel", "started_at"}]``.

    Cached for :data:`BANNER_CACHE_SECONDS` so the banner costs no query on most
    pages; opening or resolving an incident clears the cache.
    """
    rows = cache.get(BANNER_CACHE_KEY)
    if rows is None:
        rows = list(
            Incident.objects.filter(status=IncidentStatus.OPEN)
            .order_by("started_at")
            .values("pk", "bank_code", "channel", "started_at")[:5]
        )
        cache.set(BANNER_CACHE_KEY, rows, BANNER_CACHE_SECONDS)
    return rows


# The bills relief reaches: an attempt of theirs failed with a system code inside
# the window on the incident's scope; they are still open with money owed; their
# latest failure is still system-family (a later binding or funds failure is the
# customer's side again); nothing was collected on them since the window started.
# Driven from the failed attempts (the ``attempt_failed_family_idx`` partial index),
# not from the millions of open bills.
RELIEF_SELECTION = """
    WITH hit AS (
        SELECT DISTINCT a.bill_id
          FROM repayments_repaymentattempt a
          LEFT JOIN repayments_cardbinding cb ON cb.id = a.card_binding_id
         WHERE a.status = %(attempt_failed)s AND a.failure_family = %(family_system)s
           AND a.requested_at >= %(start)s AND a.requested_at <= %(end)s
           AND (%(bank)s = '' OR cb.bank_code = %(bank)s)
           AND (%(channel)s = '' OR a.channel = %(channel)s)
    )
    SELECT b.id AS bill_id, b.customer_id, cl.currency,
           {outstanding} AS owed
      FROM hit
      JOIN repayments_bill b ON b.id = hit.bill_id
      JOIN repayments_creditline cl ON cl.id = b.credit_line_id
     WHERE b.status IN (%(bill_pending)s, %(bill_overdue)s)
       AND {outstanding} > 0
       AND b.last_failure_family = %(family_system)s
       AND NOT EXISTS (SELECT 1 FROM repayments_repaymentattempt s
                        WHERE s.bill_id = b.id AND s.status = %(attempt_succeeded)s AND s.requested_at >= %(start)s)
""".replace("{outstanding}", outstanding_sql("b"))


def relief_selection_params(incident: Incident, *, until: dt.datetime) -> dict:
    """Parameters of :data:`RELIEF_SELECTION` for ``incident``'s scope and window (open: up to ``until``)."""
    return {
        **SQL_CODES,
        "start": incident.started_at,
        "end": incident.ended_at or until,
        "bank": incident.bank_code,
        "channel": incident.channel,
    }


@dataclass
class ReliefPreview:
    bills: int = 0
    customers: int = 0
    owed_by_currency: dict[str, Decimal] = field(default_factory=dict)  # outstanding per currency
    failures_by_family: dict[str, int] = field(default_factory=dict)  # failed attempts in the window and scope


def relief_preview(*, incident: Incident, until: dt.datetime) -> ReliefPreview:
    """What relief for ``incident`` would reach now: bills, customers, amounts owed per currency.

    ``failures_by_family`` counts every failed attempt in the window and scope, so
    the supervisor sees the binding and funds failures that relief leaves out.
    """
    params = relief_selection_params(incident, until=until)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), count(DISTINCT customer_id), currency, sum(owed) FROM ({RELIEF_SELECTION}) sel"  # noqa: S608 - constant SQL
            " GROUP BY currency ORDER BY currency",
            params,
        )
        preview = ReliefPreview()
        for bills, customers, currency, owed in cursor.fetchall():
            preview.bills += bills
            preview.customers += customers  # a customer has one line, so one currency
            preview.owed_by_currency[currency] = owed
    attempts = RepaymentAttempt.objects.filter(
        status=AttemptStatus.FAILED, requested_at__gte=params["start"], requested_at__lte=params["end"]
    )
    if incident.bank_code:
        attempts = attempts.filter(card_binding__bank_code=incident.bank_code)
    if incident.channel:
        attempts = attempts.filter(channel=incident.channel)
    preview.failures_by_family = dict(
        attempts.values_list("failure_family").annotate(n=Count("id")).values_list("failure_family", "n")
    )
    return preview


def relief_pending(*, user) -> dict[str, list[ReliefBatch]]:
    """Relief batches awaiting approval, oldest first (at most 100 each), for the approvals inbox.

    ``{"relief": [...], "own_relief": [...]}``: the user's own requests apart (maker-checker:
    they are shown, never decided by their requester); both empty without ``repayments.manage_incident``.
    """
    if not user.has_perm("repayments.manage_incident"):
        return {"relief": [], "own_relief": []}
    pending = (
        ReliefBatch.objects.filter(status=ReliefStatus.REQUESTED)
        .select_related("incident", "requested_by")
        .order_by("created_at", "pk")
    )
    return {
        "relief": list(pending.exclude(requested_by=user)[:100]),
        "own_relief": list(pending.filter(requested_by=user)[:100]),
    }


def live_batch(batches: list[ReliefBatch]) -> ReliefBatch | None:
    """The incident's batch in force: the newest one neither reversed nor cancelled (``batches`` newest first)."""
    return next((b for b in batches if b.status not in (ReliefStatus.REVERSED, ReliefStatus.CANCELLED)), None)


@dataclass
class IncidentPage:
    incident: Incident
    preview: ReliefPreview | None
    batches: list[ReliefBatch]
    relieved: dict  # applied bills, customers and amounts of the live batch
    recovered_by_channel: dict[str, Decimal]  # collected on relieved bills since the window ended
    suppressions: int
    timeline: list[tuple[dt.datetime, str, int | None]]


def incident_page(*, incident: Incident, now: dt.datetime) -> IncidentPage:
    """Everything the incident page shows, in a fixed number of queries."""
    batches = list(
        incident.relief_batches.select_related("requested_by", "approved_by", "reversed_by").order_by("-created_at")
    )
    live = live_batch(batches)
    relieved: dict = {}
    recovered: dict[str, Decimal] = {}
    if live is not None:
        items = ReliefItem.objects.filter(batch=live, applied=True, reversed=False)
        relieved = items.aggregate(
            bills=Count("id"), customers=Count("bill__customer_id", distinct=True), owed=Sum("amount_owed")
        )
        since = incident.ended_at or incident.started_at
        recovered = dict(
            RepaymentAttempt.objects.filter(
                bill__relief_items__in=items, status=AttemptStatus.SUCCEEDED, requested_at__gte=since
            )
            .values_list("channel")
            .annotate(total=Sum("amount"))
            .values_list("channel", "total")
        )
    preview = relief_preview(incident=incident, until=now) if live is None else None
    # (when, kind, batch id); the template words each kind in the reader's language.
    timeline: list[tuple[dt.datetime, str, int | None]] = [(incident.started_at, "started", None)]
    for batch in batches:
        for when, kind in (
            (batch.created_at, "requested"),
            (batch.approved_at, "approved"),
            (batch.finished_at, "applied"),
            (batch.reversed_at, "reversed"),
        ):
            if when:
                timeline.append((when, kind, batch.pk))
    if incident.ended_at:
        timeline.append((incident.ended_at, "resolved", None))
    timeline.sort(key=lambda entry: entry[0])
    return IncidentPage(
        incident=incident,
        preview=preview,
        batches=batches,
        relieved=relieved,
        recovered_by_channel=recovered,
        suppressions=BureauSuppression.objects.filter(incident=incident, revoked_at__isnull=True).count(),
        timeline=timeline,
    )


def bills_shielded_count() -> int:
    """Open bills an open incident shields right now (for the incident page)."""
    return Bill.objects.open().extra(where=[shielded_sql("repayments_bill")]).count()  # noqa: S610 - constant SQL


AFFECTED_PAGE_SIZE = 50
# The affected bills' CSV (docs/incidents.md): codes, not labels (a bank's code, a
# status value); the customer's name masked like every export (docs/csv.md).
AFFECTED_COLUMNS = (
    "bill_no",
    "customer_no",
    "customer_name_masked",
    "bank_code",
    "due_date",
    "status",
    "dpd",
    "currency",
    "outstanding",
    "last_failure_code",
    "last_failure_at",
    "relief",
)


@dataclass
class AffectedBill:
    bill: Bill
    bank_code: str  # the issuer of the customer's live card ("" when none)
    # The relief item's state in the batch in force: applied, reversed, skipped:<reason>,
    # pending; "" without a batch.
    relief: str


def _affected_ids_sql(incident: Incident, *, live: ReliefBatch | None, until: dt.datetime) -> tuple[str, dict]:
    """SQL selecting the ``bill_id`` of each bill the incident affected, and its parameters.

    With a batch in force, its bills (fixed when it was requested); otherwise the
    bills a relief would reach now (:data:`RELIEF_SELECTION`).
    """
    if live is not None:
        return "SELECT bill_id FROM repayments_reliefitem WHERE batch_id = %(batch)s", {"batch": live.pk}
    return (
        f"SELECT bill_id FROM ({RELIEF_SELECTION}) sel",  # noqa: S608 - constant SQL
        relief_selection_params(incident, until=until),
    )


def _relief_state(*, applied: bool, reversed_: bool, skip_reason: str) -> str:
    if reversed_:
        return "reversed"
    if applied:
        return "applied"
    return f"skipped:{skip_reason}" if skip_reason else "pending"


def _affected_rows(incident: Incident, bill_ids: list[int], *, live: ReliefBatch | None) -> list[AffectedBill]:
    """The bills ``bill_ids`` (in that order) with their bank and relief state: three queries."""
    bills = {
        bill.id: bill
        for bill in Bill.objects.filter(id__in=bill_ids)
        .select_related("customer", "credit_line")
        .annotate(
            bank=Coalesce(
                CardBinding.objects.filter(customer_id=OuterRef("customer_id"))
                .exclude(status=CardBindingStatus.REPLACED)
                .order_by("-bound_at")
                .values("bank_code")[:1],
                Value(""),
            )
        )
    }
    states: dict[int, str] = {}
    if live is not None:
        items = ReliefItem.objects.filter(batch=live, bill_id__in=bill_ids)
        for bill_id, applied, reversed_, skip in items.values_list("bill_id", "applied", "reversed", "skip_reason"):
            states[bill_id] = _relief_state(applied=applied, reversed_=reversed_, skip_reason=skip)
    return [
        AffectedBill(bill=bills[i], bank_code=getattr(bills[i], "bank", ""), relief=states.get(i, ""))
        for i in bill_ids
        if i in bills
    ]


def incident_affected_page(
    *, incident: Incident, live: ReliefBatch | None, params: Mapping[str, str], now: dt.datetime
) -> Page:
    """One page (``?page=N``, :data:`AFFECTED_PAGE_SIZE` rows) of the bills ``incident`` affected, by bill id.

    Args:
        incident: the incident shown.
        live: its batch in force (:func:`live_batch`), or ``None``.
        params: the query string (``request.GET``).
        now: the present (aware): the end of an open incident's window.

    Returns:
        A :class:`baitiao.paging.Page` of :class:`AffectedBill`; four queries.

    Raises:
        Http404: an absurd page number or a page past the end.
    """
    number = page_number(params)
    start, stop = page_bounds(number, AFFECTED_PAGE_SIZE)
    sql, sql_params = _affected_ids_sql(incident, live=live, until=now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT bill_id FROM ({sql}) ids ORDER BY bill_id LIMIT %(limit)s OFFSET %(offset)s",  # noqa: S608 - constant SQL
            {**sql_params, "limit": stop - start, "offset": start},
        )
        ids = [row[0] for row in cursor.fetchall()]
    page = page_from_rows(ids, number=number, size=AFFECTED_PAGE_SIZE)
    return replace(page, rows=_affected_rows(incident, page.rows, live=live))


def incident_affected_count(*, incident: Incident, live: ReliefBatch | None, now: dt.datetime) -> int:
    """How many bills :func:`incident_affected_export` writes (one query)."""
    sql, sql_params = _affected_ids_sql(incident, live=live, until=now)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({sql}) ids", sql_params)  # noqa: S608 - constant SQL
        return cursor.fetchone()[0]


def incident_affected_export(
    *, incident: Incident, live: ReliefBatch | None, now: dt.datetime, chunk: int = 2000
) -> Iterator[list[object]]:
    """Every bill ``incident`` affected as CSV cells (:data:`AFFECTED_COLUMNS`), by bill id, ``chunk`` at a time.

    Keyset-paged on the bill id, so a long export holds no cursor open between
    chunks. The customer's name is masked (``baitiao.masking.mask_name``).
    """
    sql, sql_params = _affected_ids_sql(incident, live=live, until=now)
    after = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT bill_id FROM ({sql}) ids WHERE bill_id > %(after)s ORDER BY bill_id LIMIT %(limit)s",  # noqa: S608 - constant SQL
                {**sql_params, "after": after, "limit": chunk},
            )
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return
        for row in _affected_rows(incident, ids, live=live):
            bill = row.bill
            yield [
                bill.bill_no,
                bill.customer.customer_no,
                mask_name(bill.customer.name or ""),
                row.bank_code,
                bill.due_date.isoformat(),
                bill.status,
                bill.dpd,
                bill.credit_line.currency,
                bill.outstanding,
                bill.last_failure_code,
                timezone.localtime(bill.last_failure_at).isoformat() if bill.last_failure_at else "",
                row.relief,
            ]
        after = ids[-1]
