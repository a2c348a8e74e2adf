"""The agent's worklist: queues of bills and repair cases, filtered, without counting millions of rows.

Queues:

* ``failures`` (default): open bills whose latest debit failed, what is *not* the
  customer's fault first: system, then binding, other, funds; newest failure
  first inside each family.
* ``system``, ``binding``, ``funds``: one failure family.
* ``repair``: open binding-repair cases, oldest first.
* ``overdue``: overdue bills, highest DPD first (the bucket filter narrows it).
* ``approvals``: extensions and waivers awaiting a decision (``selectors.approvals``).

Filters are :class:`repayments.filters.WorklistFilter` (shared with the API's
bills); pages are ``baitiao.paging``'s, fetched with ``LIMIT page_size + 1`` and no
``COUNT(*)``: every queue
reads an index in its own order (``bill_open_failure_idx``,
``bill_open_status_dpd_idx``, ``repair_case_status_idx``), so page 1 costs the
same at 10,000 or 10,000,000 attempts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from django.db.models import OuterRef, QuerySet, Value
from django.db.models.functions import Coalesce

from baitiao.paging import Page, page_bounds, page_from_rows
from repayments.filters import RepairCaseFilter, WorklistFilter
from repayments.models import (
    Bill,
    BillStatus,
    BindingRepairCase,
    CardBinding,
    CardBindingStatus,
    FailureFamily,
    RepairCaseStatus,
)

PAGE_SIZE = 50
# Not the customer's fault first (the brief's rule for the default order).
FAMILY_ORDER = [FailureFamily.SYSTEM, FailureFamily.BINDING, FailureFamily.OTHER, FailureFamily.FUNDS]


def _filtered(filters: WorklistFilter, queryset: QuerySet) -> QuerySet:
    # The FilterSet's own filters (bank, bucket, DPD, amount, risk tier, assignee) on one part.
    return filters.filter_queryset(queryset)


def worklist_bills(*, filters: WorklistFilter, number: int) -> Page:
    """Page ``number`` of bills for the ``failures``, family or ``overdue`` queue (two queries).

    Args:
        filters: a bound, valid :class:`repayments.filters.WorklistFilter` (its
            request's user is "me" for ``assignee``).
        number: the 1-based page (``baitiao.paging.page_number``).

    Raises:
        Http404: a page after the first that holds no row.
    """
    start, stop = page_bounds(number, PAGE_SIZE)
    queue, family = filters.value("queue", "failures"), filters.value("family", "")
    open_bills = Bill.objects.filter(status__in=[BillStatus.PENDING, BillStatus.OVERDUE])
    if queue == "overdue":
        ordered = _filtered(filters, open_bills.filter(status=BillStatus.OVERDUE))
        if family:
            ordered = ordered.filter(last_failure_family=family)
        ids = list(ordered.order_by("-dpd", "id").values_list("id", flat=True)[start:stop])
    else:
        families = [queue] if queue in FailureFamily.values else FAMILY_ORDER
        if family:
            families = [fam for fam in families if fam == family]
        parts = [
            _filtered(filters, open_bills.filter(last_failure_family=fam))
            .annotate(rank=Value(rank))
            .values_list("id", "rank", "last_failure_at")
            for rank, fam in enumerate(families)
        ]
        ranked: Iterable[tuple] = []
        if len(parts) == 1:
            ranked = parts[0].order_by("-last_failure_at", "-id")[start:stop]
        elif parts:
            # Each part reads its family's index and stops after `stop` rows.
            limited = [part.order_by("-last_failure_at", "-id")[:stop] for part in parts]
            ranked = limited[0].union(*limited[1:], all=True).order_by("rank", "-last_failure_at", "-id")[start:stop]
        ids = [row[0] for row in ranked]
    page = page_from_rows(ids, number=number, size=PAGE_SIZE)
    rows = {
        bill.id: bill
        for bill in Bill.objects.filter(id__in=page.rows)
        .select_related("customer", "credit_line", "assigned_to")
        .with_bucket()
        .annotate(
            bank_name=Coalesce(
                CardBinding.objects.filter(customer_id=OuterRef("customer_id"))
                .exclude(status=CardBindingStatus.REPLACED)
                .order_by("-bound_at")
                .values("bank_name")[:1],
                Value(""),
            ),
            # The page names the bank by its code (repayments.bins.bank_label), the stored name as a fallback.
            bank_code=Coalesce(
                CardBinding.objects.filter(customer_id=OuterRef("customer_id"))
                .exclude(status=CardBindingStatus.REPLACED)
                .order_by("-bound_at")
                .values("bank_code")[:1],
                Value(""),
            ),
        )
    }
    return replace(page, rows=[rows[i] for i in page.rows if i in rows])


def worklist_repair_cases(*, filters: RepairCaseFilter, number: int) -> Page:
    """Page ``number`` of open binding-repair cases, oldest first (one query).

    Args:
        filters: a bound, valid :class:`repayments.filters.RepairCaseFilter` over the worklist's query.
        number: the 1-based page.

    Raises:
        Http404: a page after the first that holds no row.
    """
    if not filters.is_valid():
        raise ValueError(f"repair-case filters refused: {filters.errors}")
    start, stop = page_bounds(number, PAGE_SIZE)
    cases = BindingRepairCase.objects.filter(status=RepairCaseStatus.OPEN).select_related(
        "customer", "card_binding", "assigned_to"
    )
    rows = list(filters.filter_queryset(cases).order_by("created_at", "id")[start:stop])
    return page_from_rows(rows, number=number, size=PAGE_SIZE)
