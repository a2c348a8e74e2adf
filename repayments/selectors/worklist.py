"""The agent's worklist: queues of bills and repair cases, filtered, without counting millions of rows.

Queues:

* ``failures`` (default): open bills whose latest debit failed, what is *not* the
  customer's fault first: system, then binding, other, funds; newest failure
  first inside each family.
* ``system``, ``binding``, ``funds``: one failure family.
* ``repair``: open binding-repair cases, oldest first.
* ``overdue``: overdue bills, highest DPD first (the bucket filter narrows it).
* ``approvals``: extensions and waivers awaiting a decision (``selectors.approvals``).

Pages are fetched with ``LIMIT page_size + 1`` and no ``COUNT(*)``: every queue
reads an index in its own order (``bill_open_failure_idx``,
``bill_open_status_dpd_idx``, ``repair_case_status_idx``), so page 1 costs the
same at 10,000 or 10,000,000 attempts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db.models import Exists, OuterRef, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from baitiao.business_time import bucket_ranges
from repayments.models import (
    Bill,
    BillQuerySet,
    BillStatus,
    BindingRepairCase,
    CardBinding,
    CardBindingStatus,
    FailureFamily,
    RepairCaseStatus,
    RiskTier,
)

PAGE_SIZE = 50
# Amount filters stay below numeric(14, 2)'s range (12 digits before the point).
MAX_AMOUNT = Decimal("1000000000000")
# Not the customer's fault first (the brief's rule for the default order).
FAMILY_ORDER = [FailureFamily.SYSTEM, FailureFamily.BINDING, FailureFamily.OTHER, FailureFamily.FUNDS]
LABELS = {
    "dpd_min": gettext_lazy("DPD from"),
    "dpd_max": gettext_lazy("DPD to"),
    "amount_min": gettext_lazy("Amount due from"),
    "amount_max": gettext_lazy("Amount due to"),
}
QUEUES = ["failures", "system", "binding", "funds", "repair", "overdue", "approvals"]


@dataclass
class WorklistFilters:
    """Filters from the query string; invalid values are reported in ``errors``, not applied."""

    queue: str = "failures"
    bank: str = ""
    family: str = ""
    bucket: str = ""
    dpd_min: int | None = None
    dpd_max: int | None = None
    risk_tier: str = ""
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    assignee: str = ""  # "", "me", "unassigned" or a username
    page: int = 1
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, query) -> WorklistFilters:
        """Parse ``request.GET``; every refused value is named in ``errors``."""
        f = cls()
        f.queue = query.get("queue") or "failures"
        if f.queue not in QUEUES:
            f.errors.append(_("Unknown queue “%(value)s”.") % {"value": f.queue})
            f.queue = "failures"
        f.bank = (query.get("bank") or "").strip().upper()
        f.family = query.get("family") or ""
        if f.family and f.family not in FailureFamily.values:
            f.errors.append(_("Unknown failure family “%(value)s”.") % {"value": f.family})
            f.family = ""
        f.bucket = query.get("bucket") or ""
        if f.bucket and f.bucket not in [name for name, _, _ in bucket_ranges()]:
            f.errors.append(_("Unknown bucket “%(value)s”.") % {"value": f.bucket})
            f.bucket = ""
        f.risk_tier = query.get("risk_tier") or ""
        if f.risk_tier and f.risk_tier not in RiskTier.values:
            f.errors.append(_("Unknown risk tier “%(value)s”.") % {"value": f.risk_tier})
            f.risk_tier = ""
        f.assignee = (query.get("assignee") or "").strip()
        # The page number is the view's to read (baitiao.paging: an absurd one is a 404).
        for name in ("dpd_min", "dpd_max"):
            raw = (query.get(name) or "").strip()
            if raw:
                if raw.isdigit() and int(raw) < 100_000:
                    setattr(f, name, int(raw))
                else:
                    f.errors.append(
                        _("%(field)s: “%(value)s” is not a whole number.") % {"field": LABELS[name], "value": raw}
                    )
        if f.dpd_min is not None and f.dpd_max is not None and f.dpd_min > f.dpd_max:
            f.errors.append(
                _("DPD from %(low)s is above DPD to %(high)s: nothing can match.")
                % {"low": f.dpd_min, "high": f.dpd_max}
            )
        for name in ("amount_min", "amount_max"):
            raw = (query.get(name) or "").replace(",", "").strip()
            if raw:
                try:
                    amount = Decimal(raw)
                    if not amount.is_finite() or amount < 0 or amount >= MAX_AMOUNT:
                        raise InvalidOperation
                    setattr(f, name, amount)
                except InvalidOperation:
                    f.errors.append(
                        _("%(field)s: “%(value)s” is not an amount.") % {"field": LABELS[name], "value": raw}
                    )
        return f


@dataclass
class Page:
    rows: list
    number: int
    has_next: bool

    @property
    def start(self) -> int:
        return (self.number - 1) * PAGE_SIZE + 1 if self.rows else 0

    @property
    def end(self) -> int:
        return (self.number - 1) * PAGE_SIZE + len(self.rows)


def _filter_bills(qs: BillQuerySet, f: WorklistFilters, user: User) -> BillQuerySet:
    if f.bank:
        qs = qs.filter(
            Exists(
                CardBinding.objects.filter(
                    customer_id=OuterRef("customer_id"),
                    bank_code=f.bank,
                    status__in=[
                        CardBindingStatus.ACTIVE,
                        CardBindingStatus.INVALID,
                    ],
                )
            )
        )
    if f.bucket:
        qs = qs.in_bucket(f.bucket)
    if f.dpd_min is not None:
        qs = qs.filter(dpd__gte=f.dpd_min)
    if f.dpd_max is not None:
        qs = qs.filter(dpd__lte=f.dpd_max)
    if f.risk_tier:
        qs = qs.filter(customer__risk_tier=f.risk_tier)
    if f.amount_min is not None:
        qs = qs.filter(amount_due__gte=f.amount_min)
    if f.amount_max is not None:
        qs = qs.filter(amount_due__lte=f.amount_max)
    if f.assignee == "me":
        qs = qs.filter(assigned_to=user)
    elif f.assignee == "unassigned":
        qs = qs.filter(assigned_to__isnull=True)
    elif f.assignee:
        qs = qs.filter(assigned_to__username=f.assignee)
    return qs


def worklist_bills(*, filters: WorklistFilters, user: User) -> Page:
    """One page of bills for the ``failures``, family or ``overdue`` queue (two queries)."""
    offset = (filters.page - 1) * PAGE_SIZE
    window = offset + PAGE_SIZE + 1
    open_bills = Bill.objects.filter(status__in=[BillStatus.PENDING, BillStatus.OVERDUE])
    if filters.queue == "overdue":
        ordered = _filter_bills(open_bills.filter(status=BillStatus.OVERDUE), filters, user)
        if filters.family:
            ordered = ordered.filter(last_failure_family=filters.family)
        ids = list(ordered.order_by("-dpd", "id").values_list("id", flat=True)[offset:window])
    else:
        families = [filters.queue] if filters.queue in FailureFamily.values else FAMILY_ORDER
        if filters.family:
            families = [fam for fam in families if fam == filters.family]
        parts = [
            _filter_bills(open_bills.filter(last_failure_family=family), filters, user)
            .annotate(rank=Value(rank))
            .values_list("id", "rank", "last_failure_at")
            for rank, family in enumerate(families)
        ]
        if not parts:
            return Page(rows=[], number=filters.page, has_next=False)
        if len(parts) == 1:
            ranked = parts[0].order_by("-last_failure_at", "-id")[offset:window]
        else:
            # Each part reads its family's index and stops after `window` rows.
            limited = [part.order_by("-last_failure_at", "-id")[:window] for part in parts]
            ranked = limited[0].union(*limited[1:], all=True).order_by("rank", "-last_failure_at", "-id")[offset:window]
        ids = [row[0] for row in ranked]
    has_next = len(ids) > PAGE_SIZE
    ids = ids[:PAGE_SIZE]
    rows = {
        bill.id: bill
        for bill in Bill.objects.filter(id__in=ids)
        .select_related("customer", "credit_line", "assigned_to")
        .with_bucket()
        .annotate(
            bank_name=Coalesce(
                CardBinding.objects.filter(customer_id=OuterRef("customer_id"))
                .exclude(status=CardBindingStatus.REPLACED)
                .order_by("-bound_at")
                .values("bank_name")[:1],
                Value(""),
            )
        )
    }
    return Page(rows=[rows[i] for i in ids if i in rows], number=filters.page, has_next=has_next)


def worklist_repair_cases(*, filters: WorklistFilters, user: User) -> Page:
    """One page of open binding-repair cases, oldest first (one query)."""
    offset = (filters.page - 1) * PAGE_SIZE
    qs = BindingRepairCase.objects.filter(status=RepairCaseStatus.OPEN).select_related(
        "customer", "card_binding", "assigned_to"
    )
    if filters.bank:
        qs = qs.filter(card_binding__bank_code=filters.bank)
    if filters.risk_tier:
        qs = qs.filter(customer__risk_tier=filters.risk_tier)
    if filters.assignee == "me":
        qs = qs.filter(assigned_to=user)
    elif filters.assignee == "unassigned":
        qs = qs.filter(assigned_to__isnull=True)
    rows = list(qs.order_by("created_at", "id")[offset : offset + PAGE_SIZE + 1])
    return Page(rows=rows[:PAGE_SIZE], number=filters.page, has_next=len(rows) > PAGE_SIZE)
