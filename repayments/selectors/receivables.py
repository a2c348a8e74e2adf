"""Read-side summaries of the receivables."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce

from baitiao.money import ZERO
from repayments.models import Bill, BillStatus, Customer, outstanding_expression


@dataclass(frozen=True)
class BucketRow:
    """Open bills of one delinquency bucket: how many, and what is still owed (per currency)."""

    bucket: str
    bills: int
    balance: dict[str, Decimal]  # currency -> outstanding amount


@dataclass(frozen=True)
class PortfolioSummary:
    customers: int
    open_bills: int
    overdue_bills: int
    buckets: list[BucketRow]


def portfolio_summary() -> PortfolioSummary:
    """Counts for the landing page in two queries.

    Open bills are ``pending`` and ``overdue`` ones; each is put in the bucket of
    its stored DPD (refreshed by the daily aging job). Balance is what is still
    owed (``repayments.models.outstanding_expression``, as ``Bill.outstanding``),
    summed per currency because money of different currencies is never added.
    """
    rows = (
        Bill.objects.open()
        .with_bucket()
        .values("bucket", "credit_line__currency", "status")
        .annotate(bills=Count("id"), balance=Coalesce(Sum(outstanding_expression()), ZERO))
        .order_by()
    )
    by_bucket: dict[str, dict] = {name: {"bills": 0, "balance": {}} for name, _ in settings.DELINQUENCY_BUCKETS}
    open_bills = overdue_bills = 0
    for row in rows:
        slot = by_bucket[row["bucket"]]
        slot["bills"] += row["bills"]
        currency = row["credit_line__currency"]
        slot["balance"][currency] = slot["balance"].get(currency, ZERO) + row["balance"]
        open_bills += row["bills"]
        if row["status"] == BillStatus.OVERDUE:
            overdue_bills += row["bills"]
    return PortfolioSummary(
        customers=Customer.objects.count(),
        open_bills=open_bills,
        overdue_bills=overdue_bills,
        buckets=[BucketRow(bucket=name, **values) for name, values in by_bucket.items()],
    )
