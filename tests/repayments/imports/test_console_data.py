"""The analysts' console page: upload, preview, queued jobs with progress, error report, export."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from repayments.models import Customer, ImportJob, ImportJobStatus
from tests.repayments.imports.conftest import CUSTOMERS_CSV


def _upload(client, content: bytes, **fields):
    data = {"resource": "customers", "encoding": "auto", "file": SimpleUploadedFile("客户.csv", content)} | fields
    return client.post(reverse("data:import"), data)


def test_an_analyst_previews_then_applies_a_gbk_file_from_the_console(client, analyst, empty_domain):
    client.force_login(analyst)
    assert client.get(reverse("data:home")).status_code == 200
    preview = _upload(client, CUSTOMERS_CSV.encode("gbk"), dry_run="on")
    job = ImportJob.objects.get()
    assert preview.status_code == 302 and job.status == ImportJobStatus.PREVIEWED and Customer.objects.count() == 0
    page = client.get(preview.url).content.decode()
    assert "The file is valid" in page
    applied = _upload(client, CUSTOMERS_CSV.encode("gbk"))
    assert ImportJob.objects.get(pk=int(applied.url.rstrip("/").split("/")[-1])).status == ImportJobStatus.APPLIED
    assert Customer.objects.count() == 3


def test_a_rejected_upload_shows_each_bad_cell_and_offers_the_error_report(client, analyst, empty_domain):
    client.force_login(analyst)
    response = _upload(client, CUSTOMERS_CSV.replace("440300199003071234", "4.40300E+17").encode())
    job = ImportJob.objects.get()
    assert job.status == ImportJobStatus.REJECTED and not job.upload_chunks.exists()
    page = client.get(response.url).content.decode()
    assert "4******E+17" in page and "4.40300E+17" not in page and "format this column as Text" in page
    report = client.get(reverse("data:import-job-errors", args=[job.pk]))
    assert report.content.decode("utf-8-sig").splitlines()[1].startswith("3,national_id,4******E+17,")


def test_a_large_upload_is_queued_and_run_once_by_the_task(
    client, analyst, empty_domain, monkeypatch, django_capture_on_commit_callbacks, queue_every_upload
):
    from repayments.tasks import run_import_job

    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda name, *args: queued.append((name, args)))
    client.force_login(analyst)
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(client, CUSTOMERS_CSV.encode())
    job = ImportJob.objects.get()
    assert queued == [("repayments.tasks.run_import_job", (job.pk,))] and job.status == ImportJobStatus.QUEUED
    assert "<progress" in client.get(response.url).content.decode()
    assert run_import_job(job.pk) == ImportJobStatus.APPLIED
    assert run_import_job(job.pk) == ImportJobStatus.APPLIED  # a second run does nothing
    job.refresh_from_db()
    assert (job.rows_done, job.rows_total, job.summary["created"]) == (3, 3, 3) and Customer.objects.count() == 3


def test_staff_without_the_import_permission_cannot_open_the_data_page(client, agent):
    client.force_login(agent)
    assert client.get(reverse("data:home")).status_code == 403


def test_a_console_export_is_masked_and_an_unmasked_one_is_refused_without_permission(client, analyst, three_customers):
    client.force_login(analyst)
    response = client.post(reverse("data:export"), {"resource": "customers"})
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "138****8000" in body and "13800138000" not in body
    refused = client.post(reverse("data:export"), {"resource": "customers", "unmask": "on", "reason": "curious"})
    assert refused.status_code == 302


def test_templates_are_offered_per_resource_with_chinese_headers(client, analyst):
    client.force_login(analyst)
    response = client.get(reverse("data:template", args=["card-bindings"]))
    assert response.content.decode("utf-8-sig").startswith("客户编号,支付令牌,卡BIN,卡号后四位")


def test_a_refused_upload_keeps_the_unmask_option_for_a_user_who_may_use_it(client, analyst):
    """Issue #15 (12): the data page after a refused upload is the same page, unmask option included."""
    from django.contrib.auth.models import Permission

    analyst.user_permissions.add(Permission.objects.get(codename="export_personal_data"))
    client.force_login(analyst)
    first = client.get(reverse("data:home")).content.decode()
    refused = client.post(reverse("data:import"), {"resource": "customers", "encoding": "auto"})  # no file
    assert refused.status_code == 400
    assert 'name="unmask"' in first and 'name="unmask"' in refused.content.decode()
