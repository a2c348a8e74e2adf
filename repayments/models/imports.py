"""CSV/XLSX import jobs run on the queue."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from baitiao.models import TimeStampedModel


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
    status = models.CharField(max_length=10, choices=ImportJobStatus, default=ImportJobStatus.QUEUED)
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
