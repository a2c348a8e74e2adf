"""Analyst console pages: upload an import (preview or apply), follow its progress,
download the error report and templates, export with masking (``docs/csv.md``)."""

from __future__ import annotations

from itertools import islice
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounts.http import AuthenticatedHttpRequest
from baitiao.csvfiles import csv_response
from repayments.imports.columns import RESOURCE_LABELS, RESOURCES
from repayments.imports.reading import check_upload_size
from repayments.imports.report import FileRefused
from repayments.models import BillStatus, ExportJob, ExportJobStatus, ImportJob, ImportJobStatus
from repayments.services.errors import RuleViolation
from repayments.services.exports import (
    export_job_create,
    export_job_file,
    export_plan,
    export_stream,
    template_file,
)
from repayments.services.imports import import_job_apply, import_job_can_apply, import_job_create

RESOURCE_CHOICES = [(name, RESOURCE_LABELS[name]) for name in RESOURCES]


class ImportForm(forms.Form):
    resource = forms.ChoiceField(label=_("Data"), choices=RESOURCE_CHOICES)
    file = forms.FileField(label=_("CSV or XLSX file"))
    dry_run = forms.BooleanField(label=_("Preview only (write nothing)"), required=False, initial=True)
    encoding = forms.ChoiceField(
        label=_("Encoding"),
        choices=[("auto", _("Detect (UTF-8, then GBK)")), ("utf-8", "UTF-8"), ("gbk", "GBK"), ("gb18030", "GB18030")],
        initial="auto",
    )
    header_row = forms.IntegerField(label=_("Header row"), required=False, min_value=1)
    skip_footer = forms.BooleanField(label=_("Skip summary/footer rows (合计…)"), required=False)
    apply_valid_rows = forms.BooleanField(label=_("Apply the valid rows, report the others"), required=False)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            check_upload_size(upload.size)
        except FileRefused as exc:
            raise forms.ValidationError(exc.problems[0].message) from None
        return upload


class ExportForm(forms.Form):
    resource = forms.ChoiceField(label=_("Data"), choices=RESOURCE_CHOICES)
    unmask = forms.BooleanField(label=_("Personal data in clear"), required=False)
    reason = forms.CharField(label=_("Reason (required in clear)"), required=False, max_length=500)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("unmask") and not (data.get("reason") or "").strip():
            self.add_error("reason", _("An export in clear needs a reason."))
        return data


@login_required
@permission_required("repayments.import_data", raise_exception=True)
def data_home(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Upload form, templates, recent imports of this analyst, export form."""
    return render(request, "console/data/home.html", _home_context(request, form=ImportForm()))


def _home_context(request: AuthenticatedHttpRequest, *, form: ImportForm) -> dict:
    """The data page's context, the same after a refused upload as on a first visit."""
    from baitiao.business_time import bucket_ranges
    from repayments.bins import bank_choices

    return {
        "form": form,
        # Its own ids: the import form has a "resource" field too (one id per page).
        "export_form": ExportForm(auto_id="id_export_%s"),
        "export_jobs": ExportJob.objects.filter(created_by=request.user)[:10],
        "sync_max_rows": settings.EXPORTS["sync_max_rows"],
        "bill_statuses": BillStatus.choices,
        "buckets": [name for name, _low, _high in bucket_ranges()],
        "banks": bank_choices(),
        "jobs": ImportJob.objects.filter(created_by=request.user).defer("error_report")[:20],
        "resources": RESOURCES,
        "can_unmask": request.user.has_perm("repayments.export_personal_data"),
    }


@login_required
@permission_required("repayments.import_data", raise_exception=True)
@require_POST
def import_upload(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Create the import job (small files run now, big ones on the queue) and show it."""
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return render(request, "console/data/home.html", _home_context(request, form=form), status=400)
    data = form.cleaned_data
    upload = data["file"]
    options = {name: data[name] for name in ("dry_run", "encoding", "skip_footer", "apply_valid_rows")}
    if data["header_row"]:
        options["header_row"] = data["header_row"]
    job = import_job_create(
        actor=request.user, resource=data["resource"], filename=upload.name, content=upload, options=options
    )
    return redirect("data:import-job", job_id=job.pk)


def _own_job(request: AuthenticatedHttpRequest, job_id: int) -> ImportJob:
    job = get_object_or_404(ImportJob, pk=job_id)
    if job.created_by_id != request.user.pk and not request.user.is_superuser:
        raise Http404
    return job


@login_required
@permission_required("repayments.import_data", raise_exception=True)
def import_job(request: AuthenticatedHttpRequest, job_id: int) -> HttpResponse:
    """One import: progress while it runs (the page refreshes itself), then its outcome."""
    job = _own_job(request, job_id)
    problems = []
    if job.error_report:
        import csv
        import io

        # By position: the header row is in the language the import ran in.
        reader = csv.reader(io.StringIO(bytes(job.error_report).decode("utf-8-sig")))
        next(reader, None)
        keys = ("row", "column", "value", "message")
        problems = [dict(zip(keys, cells, strict=False)) for cells in islice(reader, 200)]
    running = job.status in (ImportJobStatus.QUEUED, ImportJobStatus.RUNNING)
    can_apply = not problems and job.created_by_id == request.user.pk and import_job_can_apply(job)
    context = {"job": job, "problems": problems, "running": running, "can_apply": can_apply}
    return render(request, "console/data/job.html", context)


@login_required
@permission_required("repayments.import_data", raise_exception=True)
@require_POST
def import_apply(request: AuthenticatedHttpRequest, job_id: int) -> HttpResponse:
    """Apply a clean preview's file without choosing it again (a new job), then show that job."""
    job = _own_job(request, job_id)
    try:
        applied = import_job_apply(job_id=job.pk, actor=request.user)
    except RuleViolation as exc:
        messages.error(request, str(exc))
        return redirect("data:import-job", job_id=job.pk)
    return redirect("data:import-job", job_id=applied.pk)


@login_required
@permission_required("repayments.import_data", raise_exception=True)
def import_job_errors(request: AuthenticatedHttpRequest, job_id: int) -> HttpResponse:
    """The job's full error report as CSV."""
    job = _own_job(request, job_id)
    if not job.error_report:
        raise Http404
    response = HttpResponse(bytes(job.error_report), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response


@login_required
@permission_required("repayments.import_data", raise_exception=True)
def template_download(request: AuthenticatedHttpRequest, resource: str) -> HttpResponse:
    """An empty CSV with the resource's Chinese headers (``?lang=en`` for English)."""
    if resource not in RESOURCES:
        raise Http404
    content = template_file(resource, chinese=request.GET.get("lang") != "en")
    response = HttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{resource}-template.csv"'
    return response


_EXPORT_FORM_FIELDS = {"csrfmiddlewaretoken", "resource", "unmask", "reason"}


@login_required
@permission_required("repayments.export_data", raise_exception=True)
@require_POST
def export_download(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    """An export with its filters: streamed at once when short, queued with a progress page when long.

    Masked unless the user may and gives a reason; audited with the filters and the
    row count. A refused filter is shown on the data page and nothing is exported.
    """
    form = ExportForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("data:home")
    data = form.cleaned_data
    params = {name: request.POST.getlist(name) for name in request.POST if name not in _EXPORT_FORM_FIELDS}
    try:
        plan = export_plan(resource=data["resource"], params=params)
        if plan.queued:
            job = export_job_create(plan=plan, actor=request.user, unmask=data["unmask"], reason=data["reason"])
            return redirect("data:export-job", job_id=job.pk)
        chunks = export_stream(
            resource=data["resource"], actor=request.user, unmask=data["unmask"], reason=data["reason"], plan=plan
        )
    except (PermissionDenied, RuleViolation) as exc:
        messages.error(request, str(exc))
        return redirect("data:home")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return csv_response(f"{data['resource']}-{stamp}.csv", chunks)


def _own_export(request: AuthenticatedHttpRequest, job_id: int) -> ExportJob:
    job = get_object_or_404(ExportJob, pk=job_id)
    if job.created_by_id != request.user.pk:
        raise Http404  # a file of personal data is for the analyst who asked for it
    return job


@login_required
@permission_required("repayments.export_data", raise_exception=True)
def export_job(request: AuthenticatedHttpRequest, job_id: int) -> HttpResponse:
    """A queued export: its filters and progress (htmx polls ``?poll=1``, not session activity), then the link."""
    job = _own_export(request, job_id)
    running = job.status in (ExportJobStatus.QUEUED, ExportJobStatus.RUNNING)
    return render(request, "console/data/export_job.html", {"job": job, "running": running})


@login_required
@permission_required("repayments.export_data", raise_exception=True)
def export_job_download(request: AuthenticatedHttpRequest, job_id: int) -> HttpResponseBase:
    """The finished export's CSV, once: the file is deleted when it has been sent (or at expiry)."""
    job = _own_export(request, job_id)
    try:
        chunks = export_job_file(job=job)
    except ExportJob.DoesNotExist:
        raise Http404(_("This export has no file: it is not finished, or was downloaded or expired.")) from None
    stamp = timezone.localtime(job.finished_at).strftime("%Y%m%d-%H%M")
    return csv_response(f"{job.resource}-{stamp}.csv", chunks)
