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
    """One analyst upload (issue #6): its options, progress and the outcome.

    The file itself is kept encrypted in :class:`ImportUploadChunk` rows only until the job
    has run (or failed, or was abandoned). Large files run on the queue; the console polls
    ``rows_done`` / ``rows_total``. A running job's worker beats ``heartbeat_at``; the
    ``sweep-import-jobs`` schedule re-queues or fails a job whose worker stopped beating
    (``repayments.services.imports.import_jobs_sweep``).
    """

    resource = models.CharField(max_length=24)  # repayments.imports.columns.RESOURCES
    filename = models.CharField(max_length=255)
    upload_bytes = models.PositiveBigIntegerField(default=0)  # size of the upload, bytes
    options = models.JSONField(default=dict)  # dry_run, encoding, header_row, skip_footer, apply_valid_rows
    status = models.CharField(max_length=10, choices=ImportJobStatus, default=ImportJobStatus.QUEUED)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)  # counts and notes, never cell values
    error_report = models.BinaryField(blank=True, default=b"")  # CSV: row, column, value, message
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # runs claimed so far
    claimed_at = models.DateTimeField(null=True, blank=True)  # when the current run claimed it
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # the current run's last beat
    failure = models.TextField(blank=True)  # why a failed job failed, shown on the job page

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_by", "-created_at"], name="import_job_creator_idx"),
            models.Index(
                fields=["status", "heartbeat_at"],
                name="import_job_unfinished_idx",
                condition=models.Q(status__in=["queued", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.resource} {self.filename} {self.status}"


class ImportUploadChunk(models.Model):
    """One piece of an import job's upload, Fernet-encrypted (the file holds personal data).

    Uploads are stored and read a chunk at a time (``IMPORT_UPLOAD_CHUNK_BYTES`` of clear
    bytes each), so neither the web process nor the worker holds a whole file in memory;
    the rows are deleted when the job finishes, fails or is abandoned.
    """

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="upload_chunks")
    number = models.PositiveIntegerField()  # 0, 1, 2 … in file order
    data = models.BinaryField()  # Fernet token of the chunk's bytes

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="import_upload_chunk_unique")]

    def __str__(self) -> str:
        return f"{self.job_id}#{self.number}"
