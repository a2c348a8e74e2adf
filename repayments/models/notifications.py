"""Reminders planned per bill and the notifications sent to customers."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from baitiao.models import TimeStampedModel
from repayments.models.bills import Bill
from repayments.models.collection import RepaymentAttempt
from repayments.models.customers import Customer, RiskTier


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
    # Not sent: what it would have said stopped being true while it waited in the queue
    # (issue #16); ``error`` holds the NoticeDropReason.
    DROPPED = "dropped", _("Dropped (no longer true)")


class NoticeDropReason(models.TextChoices):
    BILL_SETTLED = "bill_settled", _("The bill was paid or closed meanwhile")
    INCIDENT_RESOLVED = "incident_resolved", _("The incident was resolved meanwhile")


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
    event = models.CharField(max_length=24, choices=NotificationEvent)
    channel = models.CharField(max_length=8, choices=NotificationChannel)
    language = models.CharField(max_length=8)
    body = models.TextField()  # no personal data beyond the masked card and amounts
    status = models.CharField(max_length=8, choices=NotificationStatus)
    provider_reference = models.CharField(max_length=64, blank=True)
    error = models.CharField(max_length=255, blank=True)
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["-sent_at"]
        indexes = [models.Index(fields=["customer", "-sent_at"], name="notification_customer_idx")]

    def __str__(self) -> str:
        return f"{self.channel} {self.event} {self.customer_id}"
