"""System-fault incidents and the relief batches that make customers whole."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from baitiao.models import TimeStampedModel
from repayments.models.bills import Bill
from repayments.models.collection import Channel
from repayments.models.customers import MONEY


class IncidentStatus(models.TextChoices):
    OPEN = "open", _("Open")
    RESOLVED = "resolved", _("Resolved")
    WITHDRAWN = "withdrawn", _("Withdrawn")  # declared by mistake; its effects undone (docs/incidents.md)


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
    status = models.CharField(max_length=10, choices=IncidentStatus, default=IncidentStatus.OPEN)
    source = models.CharField(max_length=8, choices=IncidentSource)
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )  # None: detected by the system
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    description = models.TextField(blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)  # UTC
    withdraw_reason = models.TextField(blank=True)
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
                condition=Q(status="open", ended_at__isnull=True)
                | Q(status="resolved", ended_at__isnull=False)
                | Q(status="withdrawn", withdrawn_at__isnull=False),
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
    DONE = "done", pgettext_lazy("relief status", "Applied")  # not the import result "Applied"
    REVERSED = "reversed", _("Reversed")
    CANCELLED = "cancelled", _("Cancelled")  # still awaiting approval when its incident was withdrawn


class ReliefSkipReason(models.TextChoices):
    """Why a relief item was not applied (``skip_reason``) or not reversed (``reverse_skip_reason``)."""

    PAID = "paid", _("Paid meanwhile")
    DEBIT_IN_FLIGHT = "debit_in_flight", _("A debit was at the bank")
    CHANGED_SINCE = "changed_since", _("Changed since relief (not reversed)")


class ReliefBatch(TimeStampedModel):
    """Relief for the bills an incident hurt, requested by one supervisor and approved by another.

    Its bills are fixed at request time (``ReliefItem`` rows, the ledger). Every
    audit event of the batch carries ``audit_id`` as its ``request_id``, so the whole
    batch, its run and its reversal read as one entry in the audit trail.
    """

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="relief_batches")
    days = models.PositiveSmallIntegerField()  # calendar days added to each due date
    note = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=ReliefStatus, default=ReliefStatus.REQUESTED)
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
                condition=Q(status__in=["requested", "cancelled"]) | Q(approved_by__isnull=False),
                name="relief_approved_has_approver",
            ),
            # One live batch per incident; a reversed (or cancelled) batch makes room for a new one.
            models.UniqueConstraint(
                fields=["incident"],
                condition=~Q(status__in=["reversed", "cancelled"]),
                name="relief_one_live_per_incident",
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
