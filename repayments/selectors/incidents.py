"""Reads for system-fault incidents (issue #5): who is shielded, what relief would reach, the incident page.

The SQL fragments here are shared by the engine's set-based jobs
(``services/delinquency.py``, ``services/reminders.py``) so that "shielded by an
open incident" means the same thing everywhere.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Q, Sum

from repayments.models import (
    SQL_CODES,
    AttemptStatus,
    Bill,
    BureauSuppression,
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
    live = next((b for b in batches if b.status != ReliefStatus.REVERSED), None)
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
