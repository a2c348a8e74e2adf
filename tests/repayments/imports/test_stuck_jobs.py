"""Queued imports whose worker stops (issue #15, defect 2): resumed or failed within minutes,
never half written, and their encrypted upload cleared.

The worker beats ``heartbeat_at``; the ``sweep-import-jobs`` schedule (every minute) takes
back a running job whose beat stopped. Times are relative to the present, never a date.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from repayments.models import Customer, ImportJob, ImportJobStatus, ImportUploadChunk
from repayments.schedules import SCHEDULES
from repayments.services import imports
from tests.repayments.imports.conftest import CUSTOMERS_CSV


@pytest.fixture
def enqueued(monkeypatch):
    """Tasks the code hands to the queue, as ``(function path, args)``."""
    calls = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda name, *args, **kwargs: calls.append((name, args)))
    return calls


def _queued_job(analyst) -> ImportJob:
    job = imports.import_job_create(
        actor=analyst, resource="customers", filename="customers.csv", content=CUSTOMERS_CSV.encode(), options={}
    )
    assert job.status == ImportJobStatus.QUEUED and job.upload_chunks.exists()
    return job


def _worker_died(job: ImportJob, *, attempts: int, silent_for: dt.timedelta, rows_done: int = 2) -> None:
    """The job as a worker leaves it when it is killed: running, its beat ``silent_for`` old."""
    last_beat = timezone.now() - silent_for
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJobStatus.RUNNING,
        attempts=attempts,
        claimed_at=last_beat,
        heartbeat_at=last_beat,
        rows_done=rows_done,
        rows_total=3,
    )


def test_the_sweep_is_a_schedule_that_runs_every_minute():
    sweep = next(s for s in SCHEDULES if s.func == "repayments.tasks.sweep_import_jobs")
    assert sweep.cron == "* * * * *"


def test_a_job_whose_worker_stopped_beating_is_queued_again_and_then_applied_once(
    analyst, empty_domain, queue_every_upload, enqueued, django_capture_on_commit_callbacks
):
    job = _queued_job(analyst)
    _worker_died(job, attempts=1, silent_for=dt.timedelta(minutes=2))

    with django_capture_on_commit_callbacks(execute=True):
        counts = imports.import_jobs_sweep()

    job.refresh_from_db()
    assert counts["requeued"] == 1 and job.status == ImportJobStatus.QUEUED
    assert job.rows_done == 0 and job.rows_total == 0  # the progress of the lost run is not shown as the new one's
    event = AuditEvent.objects.get(action="import.requeue", target_id=str(job.pk))
    assert event.actor is None and event.before["status"] == ImportJobStatus.RUNNING and event.before["rows_done"] == 2
    assert enqueued[-1] == ("repayments.tasks.run_import_job", (job.pk,))
    assert imports.import_job_run(job_id=job.pk) == ImportJobStatus.APPLIED
    job.refresh_from_db()
    assert job.attempts == 2 and Customer.objects.count() == 3 and not job.upload_chunks.exists()


def test_a_job_that_stopped_on_its_last_run_is_failed_with_a_message_and_its_upload_deleted(
    client, analyst, empty_domain, queue_every_upload, enqueued
):
    job = _queued_job(analyst)
    _worker_died(job, attempts=2, silent_for=dt.timedelta(minutes=2))

    counts = imports.import_jobs_sweep()

    job.refresh_from_db()
    assert counts["failed"] == 1 and job.status == ImportJobStatus.FAILED and job.finished_at is not None
    assert not ImportUploadChunk.objects.filter(job=job).exists() and enqueued == []
    assert "stopped without finishing" in job.failure and "after 2 of 3 rows" in job.failure
    assert "Nothing was written" in job.failure
    assert AuditEvent.objects.filter(action="import.fail", target_id=str(job.pk), actor=None).count() == 1
    client.force_login(analyst)
    page = client.get(reverse("data:import-job", args=[job.pk])).content.decode()
    assert 'data-testid="job-failure"' in page and "stopped without finishing" in page
    assert "<progress" not in page  # no longer shown as running


def test_a_job_whose_worker_still_beats_is_left_alone(analyst, empty_domain, queue_every_upload, enqueued):
    job = _queued_job(analyst)
    _worker_died(job, attempts=1, silent_for=dt.timedelta(seconds=5))
    assert imports.import_jobs_sweep()["requeued"] == 0
    job.refresh_from_db()
    assert job.status == ImportJobStatus.RUNNING and job.upload_chunks.exists()
    assert not AuditEvent.objects.filter(target_id=str(job.pk), action__in=["import.requeue", "import.fail"]).exists()


def test_the_sweep_judges_staleness_at_the_moment_it_is_given(analyst, empty_domain, queue_every_upload, enqueued):
    job = _queued_job(analyst)
    _worker_died(job, attempts=1, silent_for=dt.timedelta(seconds=5))
    assert imports.import_jobs_sweep(now=timezone.now() + dt.timedelta(minutes=5))["requeued"] == 1


def test_a_run_the_sweep_gave_up_keeps_nothing_it_wrote(analyst, empty_domain, queue_every_upload, monkeypatch):
    """A worker that was only slow (its beat late) finds the job taken back: its import rolls back."""
    job = _queued_job(analyst)
    real_import = imports.data_import

    def import_then_lose_the_job(**kwargs):
        outcome = real_import(**kwargs)
        # Meanwhile the sweep re-queued it, and another worker claimed it (attempt 2).
        ImportJob.objects.filter(pk=job.pk).update(attempts=2)
        return outcome

    monkeypatch.setattr(imports, "data_import", import_then_lose_the_job)
    assert imports.import_job_run(job_id=job.pk) == ImportJobStatus.RUNNING
    assert Customer.objects.count() == 0  # the rows it had written were rolled back
    assert job.upload_chunks.exists()  # the run that owns the job still needs the upload


def test_a_queued_job_no_worker_took_for_a_day_is_failed_and_its_upload_deleted(
    analyst, empty_domain, queue_every_upload, enqueued
):
    job = _queued_job(analyst)
    ImportJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - dt.timedelta(hours=25))
    assert imports.import_jobs_sweep()["abandoned"] == 1
    assert AuditEvent.objects.filter(action="import.fail", target_id=str(job.pk)).count() == 1
    job.refresh_from_db()
    assert job.status == ImportJobStatus.FAILED and "No worker started this import" in job.failure
    assert not job.upload_chunks.exists()


def test_the_sweep_deletes_the_upload_left_by_any_finished_job(analyst, empty_domain, queue_every_upload, enqueued):
    job = _queued_job(analyst)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJobStatus.APPLIED, finished_at=timezone.now())
    assert imports.import_jobs_sweep()["uploads_cleared"] == 1
    assert not ImportUploadChunk.objects.filter(job=job).exists()


def test_an_unexpected_error_fails_the_job_writes_nothing_and_deletes_the_upload(
    analyst, empty_domain, queue_every_upload, monkeypatch
):
    job = _queued_job(analyst)
    real_import = imports.data_import

    def import_then_break(**kwargs):
        real_import(**kwargs)
        raise RuntimeError("disk full")

    monkeypatch.setattr(imports, "data_import", import_then_break)
    with pytest.raises(RuntimeError):
        imports.import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportJobStatus.FAILED and "RuntimeError" in job.failure and "disk full" not in job.failure
    assert Customer.objects.count() == 0 and not job.upload_chunks.exists()


def test_an_upload_is_stored_encrypted_in_chunks_and_read_back_whole(
    analyst, empty_domain, queue_every_upload, monkeypatch
):
    content = CUSTOMERS_CSV.encode() * 2_000  # 340 KB
    monkeypatch.setattr(imports, "UPLOAD_CHUNK_BYTES", 64 * 1024)
    job = imports.import_job_create(actor=analyst, resource="customers", filename="c.csv", content=content, options={})
    chunks = list(job.upload_chunks.order_by("number").values_list("data", flat=True))
    assert len(chunks) == -(-len(content) // (64 * 1024)) and job.upload_bytes == len(content)
    assert all(b"C0001" not in bytes(data) for data in chunks)  # encrypted at rest
    with imports.import_job_upload(job_id=job.pk) as upload:
        assert upload.read() == content
