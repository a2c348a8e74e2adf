"""Casework by staff: extensions, waivers, bureau suppressions, customer notes."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from baitiao.models import TimeStampedModel
from repayments.models.bills import Bill
from repayments.models.customers import MONEY, Customer


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
    reason = models.CharField(max_length=24, choices=ExtensionReason)
    note = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=ApprovalStatus, default=ApprovalStatus.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    by_policy = models.BooleanField(default=False, help_text=_("Within the agent policy: approved on request."))
    # The due date the request was made against (approval refuses if it moved), then as applied.
    due_date_before = models.DateField(null=True, blank=True)
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
    reason = models.CharField(max_length=24, choices=ExtensionReason)
    note = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=ApprovalStatus, default=ApprovalStatus.PENDING)
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
    reason = models.CharField(max_length=24, choices=ExtensionReason)
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
