"""Repayment attempts against the bank gateway, binding repairs, gateway review items, API idempotency."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from baitiao.models import TimeStampedModel
from repayments.models.bills import Bill, FailureFamily
from repayments.models.customers import MONEY, CardBinding, Customer


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
    channel = models.CharField(max_length=12, choices=Channel, default=Channel.AUTO_DEBIT)
    amount = models.DecimalField(**MONEY)  # in the bill's currency
    status = models.CharField(max_length=12, choices=AttemptStatus, default=AttemptStatus.PENDING)
    failure_code = models.CharField(max_length=40, blank=True)  # FailureCode, or the bank's unknown code
    failure_family = models.CharField(max_length=8, choices=FailureFamily.choices, blank=True)
    failure_message = models.CharField(max_length=255, blank=True)  # the bank's words
    gateway_reference = models.CharField(max_length=64, blank=True)
    # When the debit was sent to the bank (UTC); until it is sent, when a run created it.
    requested_at = models.DateTimeField()
    # When its result arrived (UTC): the bank's final answer, or for an ``unknown``
    # attempt the client's timeout, replaced by the answer once it comes.
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
            # Incident detection windows on when results arrived (issue #16). Results do not
            # arrive in insertion order, so a B-tree, not a BRIN.
            models.Index(fields=["completed_at"], name="attempt_completed_idx"),
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
    status = models.CharField(max_length=10, choices=RepairCaseStatus, default=RepairCaseStatus.OPEN)
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

    reason = models.CharField(max_length=20, choices=ReviewReason)
    idempotency_key = models.CharField(max_length=64, blank=True, db_index=True)
    attempt = models.ForeignKey(RepaymentAttempt, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    payload = models.JSONField()  # the gateway's JSON as received (tokens, no card numbers)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.reason} {self.idempotency_key}"


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
