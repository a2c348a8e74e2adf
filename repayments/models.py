"""The credit domain: customers, credit lines, card bindings, bills, repayment attempts.

Money fields are ``Decimal`` with two places in the credit line's currency
(``CreditLine.currency``); dates are business-time (Asia/Shanghai) calendar dates;
datetimes are UTC. Personal data is encrypted (``baitiao.pii``) with a keyed hash
for exact lookup and the last digits in clear for display and search.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Case, IntegerField, Q, Value, When
from django.db.models.functions import Greatest
from django.utils.translation import gettext_lazy as _

from baitiao.business_time import bucket_ranges
from baitiao.models import TimeStampedModel
from baitiao.money import ZERO
from baitiao.pii import EncryptedTextField

MONEY = {"max_digits": 14, "decimal_places": 2}


class RiskTier(models.TextChoices):
    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")


class DataSource(models.TextChoices):
    UCI = "uci", _("UCI credit-card dataset")
    GENERATED = "generated", _("Generated load")
    IMPORT = "import", _("Imported")
    CONSOLE = "console", _("Entered in the console")


class Customer(TimeStampedModel):
    """A person holding a credit line (not a staff user)."""

    customer_no = models.CharField(max_length=32, unique=True)
    name = EncryptedTextField(blank=True)
    phone = EncryptedTextField(blank=True)  # mainland mobile, 11 digits, no "+86"
    phone_hash = models.CharField(max_length=64, blank=True, db_index=True)
    phone_last4 = models.CharField(max_length=4, blank=True, db_index=True)
    national_id = EncryptedTextField(blank=True)  # 18-character resident ID (GB 11643)
    national_id_hash = models.CharField(max_length=64, blank=True, db_index=True)
    national_id_last4 = models.CharField(max_length=4, blank=True, db_index=True)
    email = EncryptedTextField(blank=True)
    credit_score = models.SmallIntegerField(null=True, blank=True)  # 350–950, Zhima-style scale
    risk_tier = models.CharField(max_length=8, choices=RiskTier.choices, default=RiskTier.MEDIUM)
    is_synthetic = models.BooleanField(
        default=False, help_text=_("Contact details generated, not real (see docs/dataset.md).")
    )
    source = models.CharField(max_length=16, choices=DataSource.choices, default=DataSource.CONSOLE)
    source_ref = models.CharField(max_length=32, blank=True, help_text=_("ID in the source dataset."))
    language = models.CharField(max_length=8, default="zh-hans", help_text=_("Language of customer messages."))
    # Set by the retention job (repayments/services/retention.py): personal data erased,
    # the customer number, money and dates kept.
    anonymized_at = models.DateTimeField(null=True, blank=True)  # UTC

    class Meta:
        ordering = ["customer_no"]
        constraints = [
            models.CheckConstraint(
                condition=Q(credit_score__isnull=True) | Q(credit_score__gte=350, credit_score__lte=950),
                name="customer_credit_score_range",
            ),
        ]
        indexes = [models.Index(fields=["risk_tier"], name="customer_risk_tier_idx")]
        permissions = [
            ("reveal_personal_data", "Can reveal masked personal data with a reason"),
            ("export_personal_data", "Can export unmasked personal data with a reason"),
            ("view_dashboard", "Can view the receivables dashboard"),
            ("refresh_dashboard", "Can refresh the dashboard's rollups now"),
            ("import_data", "Can import CSV and Excel files"),
            ("export_data", "Can export CSV and Excel files"),
        ]

    def __str__(self) -> str:
        return self.customer_no


class CreditLineStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    FROZEN = "frozen", _("Frozen")
    CLOSED = "closed", _("Closed")


class CreditLine(TimeStampedModel):
    """The revolving line a customer buys on; one per customer."""

    customer = models.OneToOneField(Customer, on_delete=models.PROTECT, related_name="credit_line")
    credit_limit = models.DecimalField(**MONEY)  # in `currency`
    available_credit = models.DecimalField(**MONEY)  # in `currency`; limit minus open balance
    currency = models.CharField(max_length=3, default="CNY")  # ISO 4217
    status = models.CharField(max_length=8, choices=CreditLineStatus.choices, default=CreditLineStatus.ACTIVE)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(credit_limit__gte=0), name="credit_line_limit_non_negative"),
            models.CheckConstraint(
                condition=Q(available_credit__gte=0) & Q(available_credit__lte=models.F("credit_limit")),
                name="credit_line_available_within_limit",
            ),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="credit_line_currency_iso"),
        ]
        indexes = [
            # The retention job: lines closed before a cutoff.
            models.Index(fields=["status_changed_at"], name="credit_line_closed_idx", condition=Q(status="closed")),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.currency} {self.credit_limit}"


class CardType(models.TextChoices):
    DEBIT = "DC", _("Debit card")
    CREDIT = "CC", _("Credit card")
    SEMI_CREDIT = "SCC", _("Semi-credit card")
    PREPAID = "PC", _("Prepaid card")


class CardBindingStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    INVALID = "invalid", _("Invalid")
    REPLACED = "replaced", _("Replaced")


class CardBinding(TimeStampedModel):
    """A bank card bound for auto-debit. Never holds the full card number.

    The gateway keeps the card; we keep its token, the BIN (issuer prefix) and
    the last four digits.
    """

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="card_bindings")
    gateway_token = models.CharField(max_length=64, unique=True)
    bin = models.CharField(max_length=10)  # issuer identification prefix, 3–10 digits
    last4 = models.CharField(max_length=4, db_index=True)
    bank_code = models.CharField(max_length=16, blank=True)
    bank_name = models.CharField(max_length=64, blank=True)
    card_type = models.CharField(max_length=3, choices=CardType.choices, default=CardType.DEBIT)
    reserved_phone = EncryptedTextField(blank=True)  # 预留手机号 at the issuing bank
    reserved_phone_last4 = models.CharField(max_length=4, blank=True)
    status = models.CharField(max_length=8, choices=CardBindingStatus.choices, default=CardBindingStatus.ACTIVE)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_reason = models.CharField(max_length=255, blank=True)
    bound_at = models.DateTimeField()
    is_synthetic = models.BooleanField(default=False)

    class Meta:
        constraints = [
            # One card to debit per customer: the active binding.
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(status="active"),
                name="card_binding_one_active_per_customer",
            ),
            models.CheckConstraint(condition=Q(last4__regex=r"^[0-9]{4}$"), name="card_binding_last4_digits"),
            models.CheckConstraint(condition=Q(bin__regex=r"^[0-9]{3,10}$"), name="card_binding_bin_digits"),
        ]
        indexes = [models.Index(fields=["bank_code", "status"], name="card_binding_bank_status_idx")]
        permissions = [("repair_card_binding", "Can repair a card binding")]

    def __str__(self) -> str:
        return f"{self.bank_name or self.bin} ****{self.last4}"


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
    status = models.CharField(max_length=16, choices=BillStatus.choices, default=BillStatus.PENDING)
    dpd = models.PositiveSmallIntegerField(default=0)  # days past due on `dpd_as_of`
    dpd_as_of = models.DateField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    debit_attempts = models.PositiveSmallIntegerField(default=0)  # auto-debit attempts made on this bill
    retry_at = models.DateTimeField(null=True, blank=True)  # UTC; next automatic debit, None = not planned
    # The latest failed attempt's family and code, kept here so the worklist reads one table.
    # Database defaults, so the bulk loaders' COPY need not name these columns.
    last_failure_family = models.CharField(max_length=8, choices=FailureFamily.choices, blank=True, db_default="")
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


class Channel(models.TextChoices):
    AUTO_DEBIT = "auto_debit", _("Auto-debit")
    AGENT = "agent", _("Agent-initiated")
    CUSTOMER = "customer", _("Customer-initiated")


class AttemptStatus(models.TextChoices):
    PENDING = "pending", _("Pending")  # created, not yet sent
    PROCESSING = "processing", _("Processing")  # sent, result not yet known
    UNKNOWN = "unknown", _("Unknown")  # timed out; resolve by query before any new attempt
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled before sending")  # the bill changed while it waited


IN_FLIGHT_ATTEMPT_STATUSES = (AttemptStatus.PENDING, AttemptStatus.PROCESSING, AttemptStatus.UNKNOWN)


class FailureCode(models.TextChoices):
    """Gateway failure codes; ``repayments.gateway.taxonomy`` maps each to its family."""

    CARD_EXPIRED = "card_expired", _("Card expired")
    CARD_CLOSED = "card_closed", _("Card closed")
    CARD_NUMBER_INVALID = "card_number_invalid", _("Card number invalid")
    RESERVED_PHONE_MISMATCH = "reserved_phone_mismatch", _("Reserved phone does not match")
    AUTHORIZATION_REVOKED = "authorization_revoked", _("Debit authorization revoked")
    INSUFFICIENT_FUNDS = "insufficient_funds", _("Insufficient funds")
    EXCEEDS_LIMIT = "exceeds_limit", _("Exceeds the card's limit")
    TIMEOUT = "timeout", _("Gateway timeout")
    BANK_SYSTEM_ERROR = "bank_system_error", _("Bank system error")
    CHANNEL_UNAVAILABLE = "channel_unavailable", _("Channel unavailable")
    NOT_DELIVERED = "not_delivered", _("Request never reached the gateway")
    OTHER = "other", _("Other")


class RepaymentAttempt(TimeStampedModel):
    """One try to collect money for a bill; ``attempt_no`` is the idempotency key at the gateway."""

    attempt_no = models.CharField(max_length=64, unique=True)
    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="attempts")
    card_binding = models.ForeignKey(
        CardBinding, on_delete=models.PROTECT, null=True, blank=True, related_name="attempts"
    )
    channel = models.CharField(max_length=12, choices=Channel.choices, default=Channel.AUTO_DEBIT)
    amount = models.DecimalField(**MONEY)  # in the bill's currency
    status = models.CharField(max_length=12, choices=AttemptStatus.choices, default=AttemptStatus.PENDING)
    failure_code = models.CharField(max_length=40, blank=True)  # FailureCode, or the bank's unknown code
    failure_family = models.CharField(max_length=8, choices=FailureFamily.choices, blank=True)
    failure_message = models.CharField(max_length=255, blank=True)  # the bank's words
    gateway_reference = models.CharField(max_length=64, blank=True)
    requested_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="attempt_amount_positive"),
            # At most one attempt per bill in flight: never two debits for the same money.
            models.UniqueConstraint(
                fields=["bill"],
                condition=Q(status__in=["pending", "processing", "unknown"]),
                name="attempt_one_in_flight_per_bill",
            ),
            models.CheckConstraint(
                condition=Q(status="failed", failure_family__gt="") | ~Q(status="failed"),
                name="attempt_failed_has_family",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["succeeded", "failed"]) | Q(completed_at__isnull=False),
                name="attempt_finished_has_completed_at",
            ),
        ]
        indexes = [
            models.Index(fields=["bill", "-requested_at"], name="attempt_bill_requested_idx"),
            models.Index(
                fields=["failure_family", "-requested_at"],
                name="attempt_failed_family_idx",
                condition=Q(status="failed"),
            ),
            # Incident detection reads the last few minutes' attempts every minute. Attempts
            # are appended in time order, so a BRIN index is tiny and costs inserts nothing.
            BrinIndex(fields=["requested_at"], name="attempt_requested_brin"),
        ]
        permissions = [("retry_debit", "Can trigger a manual debit retry")]

    def __str__(self) -> str:
        return self.attempt_no


class RepairCaseStatus(models.TextChoices):
    OPEN = "open", _("Open")
    RESOLVED = "resolved", _("Resolved")
    CANCELLED = "cancelled", _("Cancelled")


class BindingRepairCase(TimeStampedModel):
    """Work for an agent: a binding failed at the bank and the customer needs a new card."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="repair_cases")
    card_binding = models.ForeignKey(CardBinding, on_delete=models.PROTECT, related_name="repair_cases")
    attempt = models.ForeignKey(RepaymentAttempt, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    failure_code = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=RepairCaseStatus.choices, default=RepairCaseStatus.OPEN)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    new_binding = models.ForeignKey(
        CardBinding, on_delete=models.PROTECT, null=True, blank=True, related_name="resolved_cases"
    )

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["card_binding"], condition=Q(status="open"), name="repair_case_one_open_per_binding"
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="repair_case_status_idx")]

    def __str__(self) -> str:
        return f"repair {self.customer_id} {self.failure_code}"


class ReviewReason(models.TextChoices):
    UNKNOWN_ATTEMPT = "unknown_attempt", _("Callback for an attempt we do not know")
    AMOUNT_MISMATCH = "amount_mismatch", _("Callback amount differs from the attempt")
    MALFORMED = "malformed", _("Malformed callback")
    LATE_SUCCESS = "late_success", _("Bank reports success for an attempt we had closed as failed")


class GatewayReviewItem(TimeStampedModel):
    """A gateway message we refused to apply; someone must look at it."""

    reason = models.CharField(max_length=20, choices=ReviewReason.choices)
    idempotency_key = models.CharField(max_length=64, blank=True, db_index=True)
    attempt = models.ForeignKey(RepaymentAttempt, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    payload = models.JSONField()  # the gateway's JSON as received (tokens, no card numbers)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.reason} {self.idempotency_key}"


class NotificationChannel(models.TextChoices):
    PUSH = "push", _("App push")
    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email")
    IN_APP = "in_app", _("In-app message")


class NotificationEvent(models.TextChoices):
    DEBIT_FAILED_BINDING = "debit_failed_binding", _("Debit failed: card problem")
    DEBIT_FAILED_FUNDS = "debit_failed_funds", _("Debit failed: insufficient funds")
    DEBIT_FAILED_SYSTEM = "debit_failed_system", _("Debit failed: system problem")
    DEBIT_SUCCEEDED = "debit_succeeded", _("Debit succeeded")
    REMINDER_BEFORE_DUE = "reminder_before_due", _("Reminder before the due date")
    REMINDER_DUE_TODAY = "reminder_due_today", _("Reminder on the due date")
    REMINDER_OVERDUE = "reminder_overdue", _("Reminder after the due date")
    BINDING_REPAIRED = "binding_repaired", _("New card bound")
    INCIDENT_APOLOGY = "incident_apology", _("Apology after a system incident")


class NotificationStatus(models.TextChoices):
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class Reminder(TimeStampedModel):
    """One planned reminder: a bill, a slot relative to its due date, a send time."""

    class Status(models.TextChoices):
        PLANNED = "planned", _("Planned")
        SENT = "sent", _("Sent")
        SKIPPED = "skipped", _("Skipped")

    # Planning writes millions of rows a day (benchmarks/RESULTS.md), so this table
    # is kept lean: the customer is the bill's (no column of its own); no index of
    # its own on bill_id (the unique (bill, offset_days) index leads with it); and no
    # database foreign key: Django makes it DEFERRABLE INITIALLY DEFERRED, and its
    # per-row check at commit took 24 of 49 s for 3.3 M rows. Rows are only ever
    # written by reminders_plan's INSERT … SELECT from existing bills, and bills are
    # never deleted (PROTECT here and on every other reference).
    bill = models.ForeignKey(
        Bill, on_delete=models.PROTECT, related_name="reminders", db_index=False, db_constraint=False
    )
    offset_days = models.SmallIntegerField()  # relative to the due date: -7 … +3
    risk_tier = models.CharField(max_length=8, choices=RiskTier.choices)
    scheduled_at = models.DateTimeField()  # UTC; inside the send window in business time
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PLANNED)
    sent_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["scheduled_at"]
        constraints = [
            models.UniqueConstraint(fields=["bill", "offset_days"], name="reminder_one_per_bill_slot"),
        ]
        indexes = [
            models.Index(fields=["scheduled_at"], name="reminder_planned_idx", condition=Q(status="planned")),
        ]

    def __str__(self) -> str:
        return f"{self.bill_id} D{self.offset_days:+d}"


class Notification(TimeStampedModel):
    """One message to a customer on one channel, as sent (or failed)."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="notifications")
    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, null=True, blank=True, related_name="notifications")
    reminder = models.ForeignKey(
        Reminder, on_delete=models.PROTECT, null=True, blank=True, related_name="notifications"
    )
    attempt = models.ForeignKey(
        RepaymentAttempt, on_delete=models.PROTECT, null=True, blank=True, related_name="notifications"
    )
    event = models.CharField(max_length=24, choices=NotificationEvent.choices)
    channel = models.CharField(max_length=8, choices=NotificationChannel.choices)
    language = models.CharField(max_length=8)
    body = models.TextField()  # no personal data beyond the masked card and amounts
    status = models.CharField(max_length=8, choices=NotificationStatus.choices)
    provider_reference = models.CharField(max_length=64, blank=True)
    error = models.CharField(max_length=255, blank=True)
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["-sent_at"]
        indexes = [models.Index(fields=["customer", "-sent_at"], name="notification_customer_idx")]

    def __str__(self) -> str:
        return f"{self.channel} {self.event} {self.customer_id}"


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", _("Awaiting approval")
    APPROVED = "approved", _("Approved")  # and applied to the bill
    REJECTED = "rejected", _("Rejected")


class ExtensionReason(models.TextChoices):
    SYSTEM_FAULT = "system_fault", _("System fault")
    BINDING_REPAIR_PENDING = "binding_repair_pending", _("Binding repair pending")
    HARDSHIP = "hardship", _("Hardship")
    AGENT_ERROR = "agent_error", _("Agent error")
    OTHER = "other", _("Other")


class Extension(TimeStampedModel):
    """A repayment extension (展期) of one bill: the due date moves by ``days``.

    Within the agent policy (``settings.EXTENSION_POLICY``) it is approved on
    request; otherwise it waits for a supervisor who is not the requester.
    """

    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="extensions")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="extensions")
    days = models.PositiveSmallIntegerField()  # calendar days added to the due date
    reason = models.CharField(max_length=24, choices=ExtensionReason.choices)
    note = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    by_policy = models.BooleanField(default=False, help_text=_("Within the agent policy: approved on request."))
    due_date_before = models.DateField(null=True, blank=True)  # set when applied
    due_date_after = models.DateField(null=True, blank=True)
    late_fee_waived = models.DecimalField(**MONEY, default=0)  # in the bill's currency; system faults only
    request_token = models.UUIDField(unique=True)  # one per form: a double submit finds the first

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(days__gte=1, days__lte=90), name="extension_days_range"),
            # Two agents extending the same bill at once: one request survives.
            models.UniqueConstraint(
                fields=["bill"], condition=Q(status="pending"), name="extension_one_pending_per_bill"
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False), name="extension_decided_has_time"
            ),
            # Maker-checker: whoever approves is never the requester (NULL = approved by policy).
            models.CheckConstraint(
                condition=~Q(decided_by=models.F("requested_by")), name="extension_approver_not_requester"
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="extension_pending_idx", condition=Q(status="pending")),
            models.Index(fields=["customer", "-created_at"], name="extension_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.bill_id} +{self.days}d {self.status}"


class Waiver(TimeStampedModel):
    """A late-fee waiver (减免) on one bill; above ``settings.WAIVER_AGENT_LIMIT`` it needs approval."""

    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="waivers")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="waivers")
    amount = models.DecimalField(**MONEY)  # in the bill's currency; part or all of the unwaived late fee
    reason = models.CharField(max_length=24, choices=ExtensionReason.choices)
    note = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    by_policy = models.BooleanField(default=False, help_text=_("Under the agent limit: applied on request."))
    request_token = models.UUIDField(unique=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="waiver_amount_positive"),
            models.UniqueConstraint(fields=["bill"], condition=Q(status="pending"), name="waiver_one_pending_per_bill"),
            models.CheckConstraint(
                condition=~Q(decided_by=models.F("requested_by")), name="waiver_approver_not_requester"
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False), name="waiver_decided_has_time"
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="waiver_pending_idx", condition=Q(status="pending")),
            models.Index(fields=["customer", "-created_at"], name="waiver_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.bill_id} -{self.amount} {self.status}"


class BureauSuppression(TimeStampedModel):
    """Do not report this bill's lateness to the credit bureau (征信) up to ``suppress_until``.

    Written when an extension is applied (a customer given more time is not late)
    or when incident relief reaches the bill (the lateness was our fault). Exactly
    one of ``extension`` and ``incident`` says why. A reversed relief batch sets
    ``revoked_at``; the row itself stays (it is a ledger).
    """

    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="bureau_suppressions")
    extension = models.OneToOneField(
        Extension, on_delete=models.PROTECT, null=True, blank=True, related_name="bureau_suppression"
    )
    incident = models.ForeignKey(
        "Incident", on_delete=models.PROTECT, null=True, blank=True, related_name="bureau_suppressions"
    )
    suppress_until = models.DateField()  # business date, inclusive
    reason = models.CharField(max_length=24, choices=ExtensionReason.choices)
    revoked_at = models.DateTimeField(null=True, blank=True)  # UTC; its relief batch was reversed

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(extension__isnull=False) & Q(incident__isnull=True))
                | (Q(extension__isnull=True) & Q(incident__isnull=False)),
                name="bureau_suppression_one_cause",
            ),
        ]
        indexes = [
            models.Index(fields=["incident", "bill"], name="suppression_incident_idx"),
            models.Index(fields=["-created_at"], name="suppression_created_idx"),
        ]
        permissions = [("view_bureau_ledger", "Can view and export the bureau-suppression ledger")]

    def __str__(self) -> str:
        return f"{self.bill_id} until {self.suppress_until}"


class CustomerNote(TimeStampedModel):
    """A free-text note an agent leaves on a customer; never edited, never deleted."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="notes")
    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, null=True, blank=True, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["customer", "-created_at"], name="note_customer_idx")]

    def __str__(self) -> str:
        return f"note {self.customer_id}"


class ImportJobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    APPLIED = "applied", _("Applied")
    PREVIEWED = "previewed", _("Previewed (dry run)")
    REJECTED = "rejected", _("Rejected")
    FAILED = "failed", _("Failed")


class ImportJob(TimeStampedModel):
    """One analyst upload (issue #6): the file, its options, progress and the outcome.

    Large files run on the queue; the console polls ``rows_done`` / ``rows_total``.
    """

    resource = models.CharField(max_length=24)  # repayments.imports.columns.RESOURCES
    filename = models.CharField(max_length=255)
    content = models.BinaryField()  # the upload, Fernet-encrypted (personal data); cleared once the job has run
    options = models.JSONField(default=dict)  # dry_run, encoding, header_row, skip_footer, apply_valid_rows
    status = models.CharField(max_length=10, choices=ImportJobStatus.choices, default=ImportJobStatus.QUEUED)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)  # counts and notes, never cell values
    error_report = models.BinaryField(blank=True, default=b"")  # CSV: row, column, value, message
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["created_by", "-created_at"], name="import_job_creator_idx")]

    def __str__(self) -> str:
        return f"{self.resource} {self.filename} {self.status}"


class IncidentStatus(models.TextChoices):
    OPEN = "open", _("Open")
    RESOLVED = "resolved", _("Resolved")


class IncidentSource(models.TextChoices):
    DETECTED = "detected", _("Detected automatically")
    DECLARED = "declared", _("Declared by a supervisor")


class Incident(TimeStampedModel):
    """A window of system-family failures on one bank and/or channel (issue #5).

    An empty ``bank_code`` or ``channel`` means every bank or every channel. While
    ``open``, bills whose latest failure is system-family on its bank are not
    punished (``docs/incidents.md``); ``ended_at`` is set when it is resolved.
    """

    bank_code = models.CharField(max_length=16, blank=True)  # "" = every bank
    channel = models.CharField(max_length=12, choices=Channel.choices, blank=True)  # "" = every channel
    started_at = models.DateTimeField()  # UTC, start of the window
    ended_at = models.DateTimeField(null=True, blank=True)  # UTC, end of the window; None while open
    status = models.CharField(max_length=8, choices=IncidentStatus.choices, default=IncidentStatus.OPEN)
    source = models.CharField(max_length=8, choices=IncidentSource.choices)
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )  # None: detected by the system
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    description = models.TextField(blank=True)
    # What detection saw when it opened the incident (empty for declared ones).
    attempts_seen = models.PositiveIntegerField(default=0)
    system_failures_seen = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            # Two detections (or a detection and a supervisor) at once: one open incident per scope.
            models.UniqueConstraint(
                fields=["bank_code", "channel"], condition=Q(status="open"), name="incident_one_open_per_scope"
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                name="incident_window_ordered",
            ),
            models.CheckConstraint(
                condition=Q(status="open", ended_at__isnull=True) | Q(status="resolved", ended_at__isnull=False),
                name="incident_resolved_has_end",
            ),
        ]
        permissions = [("manage_incident", "Can declare and resolve incidents and request or approve relief")]

    def __str__(self) -> str:
        return f"incident {self.pk} {self.bank_code or '*'}/{self.channel or '*'} {self.status}"


class ReliefStatus(models.TextChoices):
    REQUESTED = "requested", _("Awaiting approval")
    APPROVED = "approved", _("Approved, queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Applied")
    REVERSED = "reversed", _("Reversed")


class ReliefBatch(TimeStampedModel):
    """Relief for the bills an incident hurt, requested by one supervisor and approved by another.

    Its bills are fixed at request time (``ReliefItem`` rows, the ledger). Every
    audit event of the batch carries ``audit_id`` as its ``request_id``, so the whole
    batch, its run and its reversal read as one entry in the audit trail.
    """

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="relief_batches")
    days = models.PositiveSmallIntegerField()  # calendar days added to each due date
    note = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=ReliefStatus.choices, default=ReliefStatus.REQUESTED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    reversed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reversed_at = models.DateTimeField(null=True, blank=True)
    audit_id = models.UUIDField(unique=True)
    # Progress: items processed (applied + skipped) of bills_total.
    bills_total = models.PositiveIntegerField(default=0)
    bills_done = models.PositiveIntegerField(default=0)
    bills_applied = models.PositiveIntegerField(default=0)
    bills_skipped = models.PositiveIntegerField(default=0)
    bills_reversed = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(days__gte=1, days__lte=90), name="relief_days_range"),
            # Maker-checker: the approver is never the requester.
            models.CheckConstraint(
                condition=~Q(approved_by=models.F("requested_by")), name="relief_approver_not_requester"
            ),
            models.CheckConstraint(
                condition=Q(status="requested") | Q(approved_by__isnull=False), name="relief_approved_has_approver"
            ),
            # One live batch per incident; a reversed batch makes room for a new one.
            models.UniqueConstraint(
                fields=["incident"], condition=~Q(status="reversed"), name="relief_one_live_per_incident"
            ),
        ]

    def __str__(self) -> str:
        return f"relief {self.pk} incident {self.incident_id} +{self.days}d {self.status}"


class ReliefItem(models.Model):
    """One bill of a relief batch: what it was before (for an exact reversal) and what happened."""

    batch = models.ForeignKey(ReliefBatch, on_delete=models.PROTECT, related_name="items")
    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="relief_items")
    amount_owed = models.DecimalField(**MONEY)  # bill's currency; outstanding when the batch was requested
    processed_at = models.DateTimeField(null=True, blank=True)  # UTC; applied or skipped
    applied = models.BooleanField(default=False)
    skip_reason = models.CharField(max_length=24, blank=True)  # "paid", "debit_in_flight"
    reversed = models.BooleanField(default=False)
    reverse_skip_reason = models.CharField(max_length=24, blank=True)  # "changed_since"
    # The bill as it was just before relief; set when applied.
    due_date_before = models.DateField(null=True, blank=True)
    status_before = models.CharField(max_length=12, blank=True)
    dpd_before = models.PositiveSmallIntegerField(null=True, blank=True)
    dpd_as_of_before = models.DateField(null=True, blank=True)
    late_fee_waived_before = models.DecimalField(**MONEY, null=True, blank=True)
    retry_at_before = models.DateTimeField(null=True, blank=True)
    # What relief set, so a reversal can tell whether the bill changed since.
    due_date_after = models.DateField(null=True, blank=True)
    late_fee_waived_after = models.DecimalField(**MONEY, null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["batch", "bill"], name="relief_item_one_per_batch_bill"),
            models.CheckConstraint(
                condition=~Q(applied=True, processed_at__isnull=True), name="relief_item_applied_processed"
            ),
            models.CheckConstraint(condition=~Q(reversed=True, applied=False), name="relief_item_reversed_applied"),
        ]
        indexes = [
            # The run's next chunk: unprocessed items of a batch in id order.
            models.Index(fields=["batch", "id"], name="relief_item_todo_idx", condition=Q(processed_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"relief {self.batch_id} bill {self.bill_id}"


class IdempotencyKey(models.Model):
    """One API request that moves money or grants relief, by its ``Idempotency-Key`` header.

    The unique (user, key) row is inserted in the request's transaction before the
    service runs, so a concurrent duplicate waits for the first and then replays
    its response; a request that fails leaves no row and may be retried with the
    same key. Rows older than ``API_IDEMPOTENCY_TTL_HOURS`` are purged daily.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # SHA-256 of method, path and body: a reused key is caught
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")]
        indexes = [BrinIndex(fields=["created_at"], name="idempotency_created_brin")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
