"""The bureau-suppression ledger: per bill and period, why lateness was not reported, and who decided."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, TypedDict

from django.db.models import F, OuterRef, QuerySet, Subquery
from django.utils import timezone

from repayments.filters import LedgerFilter
from repayments.models import BureauSuppression, ReliefBatch


class LedgerAnnotations(TypedDict):
    """What :func:`suppression_ledger` annotates on each ``BureauSuppression`` row."""

    bill_no: str
    customer_no: str
    period: dt.date  # the bill's billing month (its first day)
    cycles_past_due: int
    dpd: int  # days past due, as of the bill's last aging
    extension_approver: str | None  # username; None while undecided or for incident relief
    extension_requester: str | None  # username; None for incident relief
    relief_approver: str | None  # username of the incident's latest relief approver


if TYPE_CHECKING:
    from typing import TypeAlias

    from django_stubs_ext import WithAnnotations

    # A ledger row: the suppression with the annotations above (django-stubs' documented pattern).
    LedgerEntry: TypeAlias = WithAnnotations[BureauSuppression, LedgerAnnotations]

LEDGER_COLUMNS = (
    "created_at",
    "bill_no",
    "customer_no",
    "period",
    "suppress_until",
    "cycles_past_due",
    "dpd",
    "cause",
    "reason",
    "decided_by",
    "reference",
    "revoked_at",
)


def suppression_ledger(params) -> tuple[QuerySet[LedgerEntry], list[str]]:
    """The ledger narrowed by ``params`` (``request.GET``), newest first, and the refused inputs.

    Args:
        params: read by :class:`repayments.filters.LedgerFilter`: ``customer``,
            ``bill``, ``period`` (``YYYY-MM``), ``cause`` (``extension`` or
            ``incident``), ``since`` / ``until`` (business dates, inclusive),
            ``revoked`` ("1" to include records whose relief was reversed).

    Returns:
        ``(rows, errors)``: one message per refused value naming field and value;
        while there is one, ``rows`` is empty (a mistyped filter never widens the
        ledger or its export).

        Rows annotated with ``bill_no``, ``customer_no``, ``period``, the bill's
        ``cycles_past_due`` and ``dpd`` (the account's delinquency the bureau is not
        told of, as of the last aging), ``decided_by``
        (the extension's approver, the requester when the agent policy approved it,
        or the relief batch's approver) and ``reference`` (extension or incident id).
    """
    relief_approver = (
        ReliefBatch.objects.filter(incident=OuterRef("incident"), approved_by__isnull=False)
        .order_by("-approved_at")
        .values("approved_by__username")[:1]
    )
    rows = BureauSuppression.objects.annotate(
        bill_no=F("bill__bill_no"),
        customer_no=F("bill__customer__customer_no"),
        period=F("bill__period"),
        # What the bureau would be told without the suppression: the account's cycles past due now.
        cycles_past_due=F("bill__cycles_past_due"),
        dpd=F("bill__dpd"),
        extension_approver=F("extension__decided_by__username"),
        extension_requester=F("extension__requested_by__username"),
        relief_approver=Subquery(relief_approver),
    )
    filterset = LedgerFilter(params, queryset=rows)
    return filterset.qs.order_by("-created_at", "-id"), filterset.error_messages


def ledger_row(entry: LedgerEntry) -> dict[str, str | int]:
    """One ledger row for the page and the CSV (see ``LEDGER_COLUMNS``).

    The CSV takes the columns as written (codes, ISO 8601 moments); the page shows
    ``reference_id``, ``decider`` and ``by_policy`` in the reader's words and formats.
    """
    if entry.extension_id:
        cause, reference = "extension", f"extension {entry.extension_id}"
        decided_by = entry.extension_approver or f"{entry.extension_requester} (policy)"
    else:
        cause, reference = "incident", f"incident {entry.incident_id}"
        decided_by = entry.relief_approver or ""
    return {
        "created_at": timezone.localtime(entry.created_at).isoformat(timespec="seconds"),
        "bill_no": entry.bill_no,
        "customer_no": entry.customer_no,
        "period": entry.period.strftime("%Y-%m"),
        "suppress_until": entry.suppress_until.isoformat(),
        "cycles_past_due": entry.cycles_past_due,
        "dpd": entry.dpd,
        "cause": cause,
        "reason": entry.reason,
        "decided_by": decided_by,
        "reference": reference,
        "reference_id": entry.extension_id or entry.incident_id or "",
        "decider": (entry.extension_approver or entry.extension_requester or "") if entry.extension_id else decided_by,
        "by_policy": int(bool(entry.extension_id and not entry.extension_approver)),
        "revoked_at": timezone.localtime(entry.revoked_at).isoformat(timespec="seconds") if entry.revoked_at else "",
    }
