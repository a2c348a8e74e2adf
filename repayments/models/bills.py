"""Bills (statements): what is owed, since when, and the one definition of outstanding."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Case, IntegerField, Q, Value, When
from django.db.models.functions import Greatest
from django.utils.translation import gettext_lazy as _

from baitiao.business_time import bucket_ranges
from baitiao.models import TimeStampedModel
from baitiao.money import ZERO
from repayments.models.customers import MONEY, CreditLine, Customer


class FailureFamily(models.TextChoices):
    BINDING = "binding", _("Binding (customer information)")
    SYSTEM = "system", _("System (ours or the bank's)")
    FUNDS = "funds", _("Funds")
    OTHER = "other", _("Other")


class BillStatus(models.TextChoices):
    PENDING = "pending", _("Pending")  # issued, not yet collected; due date may be today
    OVERDUE = "overdue", _("Overdue")  # a minimum payment is past due (the account is delinquent)
    # Closed: the unpaid remainder (`carried_forward`) is part of the next statement's
    # balance and owed there, never twice (a revolving card account).
    CARRIED_FORWARD = "carried_forward", _("Carried forward")
    PAID = "paid", _("Paid")
    NO_BALANCE = "no_balance", _("Nothing due")  # zero or credit balance


OPEN_BILL_STATUSES = (BillStatus.PENDING, BillStatus.OVERDUE)


def outstanding_sql(alias: str = "") -> str:
    """What a bill still owes, as SQL over the bill row ``alias`` (the one definition; see ``Bill.outstanding``).

    ``amount_due + late_fee − late_fee_waived − amount_paid − carried_forward``, never
    below zero, in the bill's currency. ``alias`` is a table alias (``"b"``) or empty.
    """
    p = f"{alias}." if alias else ""
    return f"GREATEST({p}amount_due + {p}late_fee - {p}late_fee_waived - {p}amount_paid - {p}carried_forward, 0)"


def principal_owed_sql(alias: str = "") -> str:
    """The principal a bill still owes, as SQL over the bill row ``alias``: what uses up credit.

    ``amount_due − amount_paid − carried_forward``, never below zero: the outstanding
    amount without late fees, which do not use the credit line (available credit =
    limit − principal owed on open bills; ``docs/dataset.md``). A payment frees the
    line by the principal it repays (``repayments.services.collection``).
    """
    p = f"{alias}." if alias else ""
    return f"GREATEST({p}amount_due - {p}amount_paid - {p}carried_forward, 0)"


def principal_owed_expression() -> models.Func:
    """:func:`principal_owed_sql` as an ORM expression (the same definition)."""
    return Greatest(
        models.F("amount_due") - models.F("amount_paid") - models.F("carried_forward"),
        Value(ZERO),
        output_field=models.DecimalField(**MONEY),
    )


def outstanding_expression() -> models.Func:
    """``Bill.outstanding`` as an ORM expression (the same definition as :func:`outstanding_sql`)."""
    return Greatest(
        models.F("amount_due")
        + models.F("late_fee")
        - models.F("late_fee_waived")
        - models.F("amount_paid")
        - models.F("carried_forward"),
        Value(ZERO),
        output_field=models.DecimalField(**MONEY),
    )


class BillQuerySet(models.QuerySet):
    def open(self) -> BillQuerySet:
        """Bills that still expect money: pending or overdue."""
        return self.filter(status__in=OPEN_BILL_STATUSES)

    def overdue(self) -> BillQuerySet:
        return self.filter(status=BillStatus.OVERDUE)

    @staticmethod
    def bucket_condition(bucket: str) -> Q:
        """The one definition of delinquency bucket ``bucket`` (``M0`` … ``M4+``): an open bill in its DPD range.

        Buckets are defined over open bills only (pending or overdue): a paid,
        carried-forward or no-balance bill is in no bucket, on every page, export and API.

        Raises:
            ValueError: ``bucket`` is not one of ``settings.DELINQUENCY_BUCKETS``.
        """
        for name, lower, upper in bucket_ranges():
            if name == bucket:
                dpd = Q(dpd__gte=lower) if upper is None else Q(dpd__gte=lower, dpd__lte=upper)
                return Q(status__in=OPEN_BILL_STATUSES) & dpd
        raise ValueError(f"unknown delinquency bucket: {bucket!r}")

    def in_bucket(self, bucket: str) -> BillQuerySet:
        """Open bills in delinquency bucket ``bucket`` (see :meth:`bucket_condition`)."""
        return self.filter(self.bucket_condition(bucket))

    def with_bucket(self) -> BillQuerySet:
        """Annotate ``bucket`` (M0…M4+) and ``bucket_index`` (0…); both None for a bill that is not open."""
        names, indexes = [], []
        for index, (name, _lower, _upper) in enumerate(bucket_ranges()):
            condition = self.bucket_condition(name)
            names.append(When(condition, then=Value(name)))
            indexes.append(When(condition, then=Value(index)))
        return self.annotate(
            bucket=Case(*names, output_field=models.CharField()),
            bucket_index=Case(*indexes, output_field=IntegerField()),
        )


class Bill(TimeStampedModel):
    """One billing cycle's statement (账单) and what has been paid on it."""

    bill_no = models.CharField(max_length=40, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="bills")
    credit_line = models.ForeignKey(CreditLine, on_delete=models.PROTECT, related_name="bills")
    period = models.DateField(help_text=_("First day of the billing month."))
    statement_date = models.DateField()
    due_date = models.DateField()  # current due date; moves with an approved extension
    original_due_date = models.DateField()
    statement_balance = models.DecimalField(**MONEY)  # may be negative (credit balance)
    amount_due = models.DecimalField(**MONEY)  # max(statement_balance, 0)
    minimum_due = models.DecimalField(**MONEY)
    amount_paid = models.DecimalField(**MONEY, default=0)  # booked on this statement; the excess is a credit
    # Revolving account (docs/dataset.md): a closed statement's unpaid remainder moves
    # into the next statement's balance. Database defaults: the bulk loaders' COPY and
    # older rows need not name these columns.
    carried_forward = models.DecimalField(**MONEY, default=0, db_default=0)  # carried into the next statement
    past_due_amount = models.DecimalField(**MONEY, default=0, db_default=0)  # unpaid minimums of missed cycles
    past_due_since = models.DateField(null=True, blank=True)  # business date: the oldest missed due date
    cycles_past_due = models.PositiveSmallIntegerField(default=0, db_default=0)  # minimum payments missed
    late_fee = models.DecimalField(**MONEY, default=0)  # accrued by the daily job (docs/repayment-engine.md)
    late_fee_waived = models.DecimalField(**MONEY, default=0)  # part of late_fee cancelled by a waiver
    status = models.CharField(max_length=16, choices=BillStatus, default=BillStatus.PENDING)
    dpd = models.PositiveSmallIntegerField(default=0)  # days past due on `dpd_as_of`
    dpd_as_of = models.DateField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    debit_attempts = models.PositiveSmallIntegerField(default=0)  # auto-debit attempts made on this bill
    retry_at = models.DateTimeField(null=True, blank=True)  # UTC; next automatic debit, None = not planned
    # The latest failed attempt's family and code, kept here so the worklist reads one table.
    # Database defaults, so the bulk loaders' COPY need not name these columns.
    last_failure_family = models.CharField(max_length=8, choices=FailureFamily, blank=True, db_default="")
    last_failure_code = models.CharField(max_length=40, blank=True, db_default="")
    last_failure_at = models.DateTimeField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="assigned_bills"
    )

    objects = BillQuerySet.as_manager()

    class Meta:
        ordering = ["-period", "bill_no"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "period"], name="bill_one_per_customer_period"),
            models.CheckConstraint(condition=Q(amount_due__gte=0), name="bill_amount_due_non_negative"),
            models.CheckConstraint(
                condition=Q(minimum_due__gte=0) & Q(minimum_due__lte=models.F("amount_due")),
                name="bill_minimum_due_within_amount_due",
            ),
            models.CheckConstraint(condition=Q(amount_paid__gte=0), name="bill_amount_paid_non_negative"),
            models.CheckConstraint(condition=Q(late_fee__gte=0), name="bill_late_fee_non_negative"),
            models.CheckConstraint(
                condition=Q(late_fee_waived__gte=0) & Q(late_fee_waived__lte=models.F("late_fee")),
                name="bill_waiver_within_late_fee",
            ),
            models.CheckConstraint(
                condition=Q(due_date__gte=models.F("statement_date")), name="bill_due_after_statement"
            ),
            models.CheckConstraint(
                condition=Q(due_date__gte=models.F("original_due_date")), name="bill_due_not_before_original"
            ),
            models.CheckConstraint(
                condition=Q(amount_due=Greatest(models.F("statement_balance"), Value(0))),
                name="bill_amount_due_is_positive_balance",
            ),
            # One status vocabulary that cannot contradict itself (issue #14): a paid bill
            # owes nothing, a carried-forward one carried exactly what it left unpaid.
            models.CheckConstraint(
                condition=~Q(status="paid")
                | Q(
                    amount_paid__gte=models.F("amount_due") + models.F("late_fee") - models.F("late_fee_waived"),
                    carried_forward=0,
                ),
                name="bill_paid_owes_nothing",
            ),
            models.CheckConstraint(
                condition=Q(carried_forward=0, status__in=["pending", "overdue", "paid", "no_balance"])
                | Q(
                    status="carried_forward",
                    carried_forward=models.F("amount_due")
                    + models.F("late_fee")
                    - models.F("late_fee_waived")
                    - models.F("amount_paid"),
                    carried_forward__gt=0,
                ),
                name="bill_carried_forward_is_the_unpaid_rest",
            ),
            models.CheckConstraint(
                condition=Q(past_due_amount__gte=0) & Q(past_due_amount__lte=models.F("amount_due")),
                name="bill_past_due_within_amount_due",
            ),
            models.CheckConstraint(
                condition=Q(cycles_past_due=0, past_due_since__isnull=True)
                | Q(cycles_past_due__gt=0, past_due_since__isnull=False),
                name="bill_cycles_past_due_with_their_date",
            ),
        ]
        indexes = [
            # Worklist and landing page: open bills by status and DPD.
            models.Index(
                fields=["status", "dpd"],
                name="bill_open_status_dpd_idx",
                condition=Q(status__in=["pending", "overdue"]),
            ),
            # Collection runs: bills falling due.
            models.Index(fields=["due_date"], name="bill_pending_due_idx", condition=Q(status="pending")),
            models.Index(fields=["customer", "-period"], name="bill_customer_period_idx"),
            models.Index(fields=["retry_at"], name="bill_retry_at_idx", condition=Q(retry_at__isnull=False)),
            # Worklist: open bills whose latest debit failed, by family.
            models.Index(
                fields=["last_failure_family", "-last_failure_at", "-id"],  # the queue's exact order
                name="bill_open_failure_idx",
                condition=Q(status__in=["pending", "overdue"]) & ~Q(last_failure_family=""),
            ),
            models.Index(fields=["assigned_to"], name="bill_assignee_idx", condition=Q(assigned_to__isnull=False)),
        ]
        permissions = [
            ("request_extension", "Can request a repayment extension"),
            ("approve_extension", "Can approve a repayment extension"),
            ("request_waiver", "Can request a late-fee waiver"),
            ("approve_waiver", "Can approve a late-fee waiver"),
            ("work_cases", "Can claim worklist items and add notes"),
        ]

    def __str__(self) -> str:
        return self.bill_no

    @property
    def outstanding(self):
        """What is still owed on this statement (yuan-style units of the line's currency), never below zero.

        amount due + unwaived late fee − paid − carried forward: a carried-forward
        statement owes nothing itself (the next statement carries it). The same
        definition as :func:`outstanding_sql` and :func:`outstanding_expression`.
        """
        remaining = self.amount_due + self.late_fee - self.late_fee_waived - self.amount_paid - self.carried_forward
        return remaining if remaining > 0 else ZERO
