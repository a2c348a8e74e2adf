""" "Apply" after a clean preview: the same upload, kept encrypted, is applied without choosing it again (#16)."""

from __future__ import annotations

import datetime as dt

import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from repayments.models import Customer, ImportJob, ImportJobStatus, ImportUploadChunk
from repayments.services.imports import import_jobs_sweep
from tests.repayments.imports.conftest import CUSTOMERS_CSV


def _preview(client, content: bytes) -> ImportJob:
    upload = SimpleUploadedFile("客户.csv", content)
    client.post(reverse("data:import"), {"resource": "customers", "encoding": "auto", "file": upload, "dry_run": "on"})
    return ImportJob.objects.latest("pk")


def test_a_clean_preview_is_applied_with_one_click_and_only_once(client, analyst, empty_domain):
    client.force_login(analyst)
    preview = _preview(client, CUSTOMERS_CSV.encode("gbk"))
    assert preview.status == ImportJobStatus.PREVIEWED and Customer.objects.count() == 0
    assert ImportUploadChunk.objects.filter(job=preview).exists()  # kept for "Apply"
    assert b"C0001" not in b"".join(bytes(c.data) for c in ImportUploadChunk.objects.filter(job=preview))
    page = client.get(reverse("data:import-job", args=[preview.pk])).content.decode()
    assert reverse("data:import-apply", args=[preview.pk]) in page
    response = client.post(reverse("data:import-apply", args=[preview.pk]))
    applied = ImportJob.objects.latest("pk")
    assert response.url == reverse("data:import-job", args=[applied.pk])
    assert (applied.status, applied.options["dry_run"], applied.options["encoding"]) == ("applied", False, "auto")
    assert Customer.objects.count() == 3
    assert not ImportUploadChunk.objects.exists()  # the applied job's upload is cleared as any job's
    preview.refresh_from_db()
    assert preview.summary["applied_by_job"] == applied.pk
    again = client.post(reverse("data:import-apply", args=[preview.pk]), follow=True)
    assert any("cannot be applied" in str(m) for m in again.context["messages"])
    assert ImportJob.objects.count() == 2


def test_a_preview_with_problems_keeps_no_file_and_cannot_be_applied(client, analyst, empty_domain):
    client.force_login(analyst)
    preview = _preview(client, CUSTOMERS_CSV.replace("440300199003071234", "4.40300E+17").encode())
    assert preview.summary["problems"] > 0 and not ImportUploadChunk.objects.filter(job=preview).exists()
    assert (
        reverse("data:import-apply", args=[preview.pk])
        not in client.get(reverse("data:import-job", args=[preview.pk])).content.decode()
    )
    client.post(reverse("data:import-apply", args=[preview.pk]))
    assert Customer.objects.count() == 0 and ImportJob.objects.count() == 1


def test_another_analyst_cannot_apply_someone_elses_preview(client, analyst, admin_user, empty_domain):
    client.force_login(analyst)
    preview = _preview(client, CUSTOMERS_CSV.encode("gbk"))
    client.force_login(admin_user)  # an admin opens others' jobs, but only the uploader applies
    client.post(reverse("data:import-apply", args=[preview.pk]))
    assert Customer.objects.count() == 0 and ImportJob.objects.count() == 1


def test_the_sweep_clears_a_clean_previews_file_after_the_keeping_time(client, analyst, empty_domain, settings):
    client.force_login(analyst)
    preview = _preview(client, CUSTOMERS_CSV.encode("gbk"))
    import_jobs_sweep()
    assert ImportUploadChunk.objects.filter(job=preview).exists()
    later = preview.finished_at + dt.timedelta(hours=settings.IMPORT_JOBS["keep_preview_hours"], minutes=1)
    with time_machine.travel(later, tick=False):
        assert timezone.now() == later
        assert import_jobs_sweep()["uploads_cleared"] == 1
    assert not ImportUploadChunk.objects.filter(job=preview).exists()
    client.post(reverse("data:import-apply", args=[preview.pk]))
    assert Customer.objects.count() == 0
