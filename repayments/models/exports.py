"""Analyst exports that run on the queue (issue #16): the job and its encrypted file."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from baitiao.models import TimeStampedModel


class ExportJobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Ready to download")
    FAILED = "failed", _("Failed")
    CLEARED = "cleared", _("Downloaded or expired (file deleted)")


class ExportJob(TimeStampedModel):
    """One export too long for a web request: its filters, progress and, once done, its file.

    The file holds personal data (masked or not), so it is kept Fernet-encrypted in
    :class:`ExportFileChunk` rows, like an import's upload, and deleted when it has
    been downloaded once or when it expires (``expires_at``), whichever comes first.
    """

    resource = models.CharField(max_length=24)  # repayments.imports.columns.RESOURCES
    filters = models.JSONField(default=dict, blank=True)  # query parameters as validated, {name: [values]}
    masked = models.BooleanField(default=True)
    reason = models.TextField(blank=True)  # required for an export in clear
    status = models.CharField(max_length=10, choices=ExportJobStatus, default=ExportJobStatus.QUEUED)
    rows_total = models.PositiveIntegerField(default=0)  # counted when the export was asked for
    rows_done = models.PositiveIntegerField(default=0)
    file_bytes = models.PositiveBigIntegerField(default=0)  # size of the finished CSV, bytes
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)  # the file is deleted after this (UTC)
    downloaded_at = models.DateTimeField(null=True, blank=True)
    failure = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_by", "-created_at"], name="export_job_creator_idx"),
            models.Index(fields=["expires_at"], name="export_job_expiry_idx", condition=models.Q(status="done")),
        ]

    def __str__(self) -> str:
        return f"{self.resource} export {self.status}"


class ExportFileChunk(models.Model):
    """One piece of a finished export's CSV, Fernet-encrypted; deleted after download or expiry."""

    job = models.ForeignKey(ExportJob, on_delete=models.CASCADE, related_name="file_chunks")
    number = models.PositiveIntegerField()  # 0, 1, 2 … in file order
    data = models.BinaryField()  # Fernet token of the chunk's bytes

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="export_file_chunk_unique")]

    def __str__(self) -> str:
        return f"{self.job_id}#{self.number}"
