"""Exports filtered by the shared FilterSets, long ones queued with progress and a one-time download (issue #16)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from repayments.models import Bill, BillStatus, Customer, ExportFileChunk, ExportJob, ExportJobStatus
from repayments.services.exports import export_files_expire
from repayments.tasks import run_export_job

pytestmark = pytest.mark.django_db


def _csv(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def _download(response) -> list[list[str]]:
    return _csv(b"".join(response.streaming_content))


def test_a_short_filtered_export_streams_only_the_filtered_rows_and_audits_filters_and_count(client, analyst):
    client.force_login(analyst)
    response = client.post(
        reverse("data:export"),
        {"resource": "bills", "status": "overdue", "bucket": "M2", "month_from": "", "bank": ""},
    )
    assert response.status_code == 200
    rows = _download(response)
    expected = set(Bill.objects.filter(status=BillStatus.OVERDUE).in_bucket("M2").values_list("bill_no", flat=True))
    assert 0 < len(expected) <= 10_000
    assert {row[0] for row in rows[1:]} == expected
    assert len(rows) - 1 == len(expected)
    event = AuditEvent.objects.filter(action="data.export").latest("pk")
    assert event.after["rows"] == len(expected)
    assert event.after["filters"] == {"status": ["overdue"], "bucket": ["M2"]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"resource": "bills", "bucket": "M9"}, "Bucket: “M9” is not a delinquency bucket."),
        ({"resource": "bills", "month_from": "2026-13"}, "Period from: “2026-13” is not a month; use YYYY-MM"),
        (
            {"resource": "customers", "bucket": "M2"},
            "The Customers export cannot be filtered by “bucket” (M2). Choose Bills as the data to export",
        ),
    ],
)
def test_a_refused_export_filter_is_named_and_nothing_is_exported(client, analyst, data, message):
    client.force_login(analyst)
    response = client.post(reverse("data:export"), data, follow=True)
    assert response.redirect_chain[-1][0] == reverse("data:home")
    assert any(message in str(m) for m in response.context["messages"])
    assert not AuditEvent.objects.filter(action__startswith="data.export").exists()


@pytest.fixture
def queued_customers_export(client, analyst, settings):
    settings.EXPORTS = {**settings.EXPORTS, "sync_max_rows": 10, "progress_rows": 100}
    client.force_login(analyst)
    response = client.post(reverse("data:export"), {"resource": "customers", "risk_tier": "high"})
    job = ExportJob.objects.get(created_by=analyst)
    assert response.status_code == 302
    assert response["Location"] == reverse("data:export-job", args=[job.pk])
    return job


def test_a_long_export_is_queued_with_its_count_and_shows_its_progress_until_the_download_link(
    client, analyst, queued_customers_export
):
    job = queued_customers_export
    high = Customer.objects.filter(risk_tier="high")
    assert (job.status, job.rows_total, job.filters) == (ExportJobStatus.QUEUED, high.count(), {"risk_tier": ["high"]})
    page = client.get(reverse("data:export-job", args=[job.pk]), {"poll": "1"})
    html = page.content.decode()
    assert 'hx-trigger="every 2s"' in html and "?poll=1" in html
    assert f"0 of {high.count():,} rows written." in html
    assert 'data-testid="export-download"' not in html

    assert run_export_job(job.pk) == ExportJobStatus.DONE
    assert run_export_job(job.pk) == ExportJobStatus.DONE  # a second run does nothing
    job.refresh_from_db()
    assert (job.rows_done, job.status) == (high.count(), ExportJobStatus.DONE)
    chunk = ExportFileChunk.objects.filter(job=job).first()
    assert b"customer_no" not in bytes(chunk.data)  # stored encrypted
    html = client.get(reverse("data:export-job", args=[job.pk])).content.decode()
    assert "hx-trigger" not in html
    assert reverse("data:export-job-download", args=[job.pk]) in html

    rows = _download(client.get(reverse("data:export-job-download", args=[job.pk])))
    assert {row[0] for row in rows[1:]} == set(high.values_list("customer_no", flat=True))
    phones = [row[rows[0].index("phone")] for row in rows[1:] if row[rows[0].index("phone")]]
    assert phones and all("****" in phone for phone in phones)  # masked
    event = AuditEvent.objects.get(action="data.export", target_id=str(job.pk))
    assert event.after["rows"] == high.count() and event.after["filters"] == {"risk_tier": ["high"]}
    # One download: the file is gone after it.
    assert not ExportFileChunk.objects.filter(job=job).exists()
    assert ExportJob.objects.get(pk=job.pk).status == ExportJobStatus.CLEARED
    assert client.get(reverse("data:export-job-download", args=[job.pk])).status_code == 404


def test_an_unclaimed_file_is_deleted_when_it_expires(queued_customers_export):
    job = queued_customers_export
    run_export_job(job.pk)
    job.refresh_from_db()
    assert export_files_expire(now=job.expires_at - dt.timedelta(seconds=1)) == 0
    assert export_files_expire(now=job.expires_at) == 1
    assert not ExportFileChunk.objects.filter(job=job).exists()
    assert ExportJob.objects.get(pk=job.pk).status == ExportJobStatus.CLEARED


def test_another_analysts_export_is_not_found(client, queued_customers_export, admin_user):
    run_export_job(queued_customers_export.pk)
    client.force_login(admin_user)
    assert client.get(reverse("data:export-job", args=[queued_customers_export.pk])).status_code == 404
    url = reverse("data:export-job-download", args=[queued_customers_export.pk])
    assert client.get(url).status_code == 404


def test_attempts_export_by_period_and_bank_of_the_debited_card(client, analyst, settings):
    from repayments.models import RepaymentAttempt

    sample = RepaymentAttempt.objects.filter(card_binding__isnull=False).select_related("card_binding").first()
    month = timezone.localtime(sample.requested_at).date().replace(day=1)
    bank = sample.card_binding.bank_code
    start = timezone.make_aware(dt.datetime.combine(month, dt.time(0, 0)))
    end = timezone.make_aware(dt.datetime.combine((month + dt.timedelta(days=32)).replace(day=1), dt.time(0, 0)))
    expected = set(
        RepaymentAttempt.objects.filter(
            card_binding__bank_code=bank, requested_at__gte=start, requested_at__lt=end
        ).values_list("attempt_no", flat=True)
    )
    settings.EXPORTS = {**settings.EXPORTS, "sync_max_rows": len(expected)}  # exactly at the threshold: at once
    client.force_login(analyst)
    period = month.strftime("%Y-%m")
    data = {"resource": "repayment-attempts", "month_from": period, "month_to": period, "bank": bank.lower()}
    response = client.post(reverse("data:export"), data)
    assert response.status_code == 200
    assert {row[0] for row in _download(response)[1:]} == expected
    event = AuditEvent.objects.filter(action="data.export").latest("pk")
    assert event.after["rows"] == len(expected)


def test_of_two_downloads_at_once_only_one_gets_the_file_and_it_is_whole(queued_customers_export):
    from repayments.services.exports import export_job_file

    job = queued_customers_export
    run_export_job(job.pk)
    job.refresh_from_db()
    first = export_job_file(job=job)  # claimed: the second request finds it taken
    with pytest.raises(ExportJob.DoesNotExist):
        export_job_file(job=job)
    content = b"".join(first)
    assert len(_csv(content)) == job.rows_done + 1  # the header and every row
    assert ExportJob.objects.get(pk=job.pk).status == ExportJobStatus.CLEARED


def test_an_expired_file_is_not_served_even_before_the_sweep(queued_customers_export):
    from repayments.services.exports import export_job_file

    job = queued_customers_export
    run_export_job(job.pk)
    job.refresh_from_db()
    with pytest.raises(ExportJob.DoesNotExist):
        export_job_file(job=job, now=job.expires_at)


def test_the_sweep_fails_an_export_whose_worker_stopped_and_deletes_its_partial_file(queued_customers_export):
    from repayments.schedules import SCHEDULES
    from repayments.services.exports import export_jobs_sweep

    assert next(s for s in SCHEDULES if s.func == "repayments.tasks.sweep_export_jobs").cron == "*/5 * * * *"
    job = queued_customers_export
    stopped = timezone.now() - dt.timedelta(minutes=11)
    ExportJob.objects.filter(pk=job.pk).update(status=ExportJobStatus.RUNNING, updated_at=stopped)
    ExportFileChunk.objects.create(job=job, number=0, data=b"partial")
    assert export_jobs_sweep(now=timezone.now())["failed"] == 1
    job.refresh_from_db()
    assert job.status == ExportJobStatus.FAILED and not ExportFileChunk.objects.filter(job=job).exists()


def test_a_download_that_never_finished_is_cleared_after_an_hour(queued_customers_export):
    from repayments.services.exports import export_job_file

    job = queued_customers_export
    run_export_job(job.pk)
    job.refresh_from_db()
    export_job_file(job=job)  # claimed, never read: the connection dropped
    assert export_files_expire(now=timezone.now() + dt.timedelta(minutes=61)) == 1
    assert not ExportFileChunk.objects.filter(job=job).exists()
