"""Analyst exports: streamed, masked by default, formula-safe, audited.

Rows are read with a server-side cursor (``QuerySet.iterator``) and written as
they come, so memory stays flat whatever the table size. Personal fields are
masked unless the actor holds ``repayments.export_personal_data`` and gives a
reason; every export writes an audit event (``data.export`` or
``data.export_unmasked``). Every text cell goes through
``baitiao.csvfiles.neutralize``.

CSV is UTF-8 with a byte-order mark, which Excel needs to show Chinese text.

Exports from the console take filters (``export_plan``: the resource's FilterSet of
``repayments/filters.py``, e.g. bills by period, status, bank and bucket) and are
counted first: up to ``settings.EXPORTS["sync_max_rows"]`` rows stream at once,
larger ones run on the queue (``export_job_create`` / ``export_job_run``) into a
Fernet-encrypted file (``ExportFileChunk``) downloaded once from the job's page and
deleted then or after ``keep_hours`` (``export_files_expire``). The audit event
records the filters and the row count.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from accounts.models import User
from accounts.services import audit_record
from baitiao.csvfiles import csv_bytes, neutralize
from baitiao.db_routers import reporting_db
from baitiao.filters import StrictFilterSet
from baitiao.pii import fernet
from repayments.filters import AttemptExportFilter, BillBrowseFilter, CreditLineFilter, CustomerFilter
from repayments.imports.columns import EXPORT_MASKS, RESOURCE_LABELS, RESOURCES
from repayments.imports.resources import RESOURCE_CLASSES, render_cell
from repayments.models import ExportFileChunk, ExportJob, ExportJobStatus
from repayments.services.errors import RuleViolation

EXPORT_PERMISSION = "repayments.export_data"
UNMASK_PERMISSION = "repayments.export_personal_data"
FORMATS = ("csv", "xlsx")
_CHUNK = 5000
# The FilterSet that narrows each resource's export (the console's and the API's filters).
EXPORT_FILTERS: dict[str, type[StrictFilterSet] | None] = {
    "customers": CustomerFilter,
    "credit-lines": CreditLineFilter,
    "card-bindings": None,
    "bills": BillBrowseFilter,
    "repayment-attempts": AttemptExportFilter,
}
FILE_CHUNK_BYTES = 1 << 20  # clear bytes per stored piece of an export file
logger = logging.getLogger(__name__)


def export_headers(resource: str, *, chinese: bool = False) -> list[str]:
    """The header row of ``resource`` (English names, or the Chinese ones for templates).

    Raises:
        KeyError: unknown resource.
    """
    names = [c for c in RESOURCES[resource] if c.name != "card_number"]
    return [c.chinese if chinese else c.name for c in names]


def export_rows(resource: str, *, unmask: bool = False, queryset=None) -> Iterator[list]:
    """The rows of ``resource`` as lists of export cells (strings, formula-neutralised).

    Args:
        resource: one of ``RESOURCES``.
        unmask: personal fields in clear; callers must have checked permission (use
            :func:`data_export` / :func:`export_stream`, which do).
        queryset: a filtered queryset of the resource's model (default: all rows).
    """
    # The columns and their model paths are the resource's (one definition for the
    # console, the admin and the command line): ``customer_no`` of a bill reads
    # ``customer__customer_no``, as the import resolves it.
    resource_class = RESOURCE_CLASSES[resource]
    paths = [resource_class.fields[name].attribute for name in export_headers(resource)]
    query = queryset if queryset is not None else resource_class._meta.model.objects.order_by("id")
    # The read replica when there is one (baitiao/db_routers.py): a long export scan
    # stays off the primary. Explicit, because the rows are read lazily, while the
    # response streams, long after any ``with reporting_reads()`` block would end.
    query = query.using(reporting_db())
    # Personal columns (and the card's gateway token, which debits the card) are masked.
    by_name = {} if unmask else EXPORT_MASKS.get(resource, {})
    masks = {index: by_name[name] for index, name in enumerate(export_headers(resource)) if name in by_name}
    for values in query.values_list(*paths).iterator(chunk_size=_CHUNK):
        row = []
        for index, value in enumerate(values):
            text = render_cell(value)
            if index in masks and text:
                text = masks[index](text)
            row.append(neutralize(text))
        yield row


def _authorize(*, actor: User | None, unmask: bool, reason: str) -> None:
    if actor is not None and not actor.has_perm(EXPORT_PERMISSION):
        raise PermissionDenied(_("Exporting needs the export permission."))
    if unmask:
        if actor is None or not actor.has_perm(UNMASK_PERMISSION):
            raise PermissionDenied(_("An unmasked export needs the personal-data export permission."))
        if not reason.strip():
            raise PermissionDenied(_("An unmasked export needs a reason."))


def _audit(
    *,
    actor: User | None,
    resource: str,
    fmt: str,
    unmask: bool,
    reason: str,
    rows: int | None,
    filters: dict[str, list[str]] | None = None,
    target: ExportJob | None = None,
):
    after: dict[str, Any] = {"resource": resource, "format": fmt, "masked": not unmask, "rows": rows}
    if filters is not None:  # the console's exports; the command line's have none
        after["filters"] = filters
    return audit_record(
        actor=actor,
        action="data.export_unmasked" if unmask else "data.export",
        target=target,
        target_type="" if target else f"repayments.{resource}",
        reason=reason.strip(),
        after=after,
    )


def _csv_chunks(resource: str, rows: Iterator[list]) -> Iterator[bytes]:
    return csv_bytes(export_headers(resource), rows)


def _xlsx_bytes(resource: str, rows: Iterator[list], out: BinaryIO) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)  # rows go to a temporary file, not memory
    sheet = book.create_sheet(resource)
    sheet.append(export_headers(resource))
    for row in rows:
        sheet.append(row)  # all text: Excel keeps IDs, phones and leading zeros as typed
    book.save(out)


def data_export(
    *,
    resource: str,
    out: BinaryIO,
    actor: User | None,
    fmt: str = "csv",
    unmask: bool = False,
    reason: str = "",
    queryset=None,
) -> int:
    """Write ``resource`` to ``out`` (CSV or XLSX) and audit it; return the number of rows.

    Args:
        resource: ``customers``, ``credit-lines``, ``card-bindings``, ``bills`` or ``repayment-attempts``.
        out: a binary stream (a file, a response).
        actor: the staff user; ``None`` is the system (command line without ``--actor``).
        fmt: ``csv`` or ``xlsx``.
        unmask: personal data in clear; needs ``repayments.export_personal_data`` and a reason.
        reason: why (required with ``unmask``; written to the audit trail).
        queryset: a filtered queryset of the resource's model.

    Raises:
        PermissionDenied: no export permission, or ``unmask`` without permission or reason.
        ValueError: unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use csv or xlsx")
    _authorize(actor=actor, unmask=unmask, reason=reason)
    counted = 0

    def counting(rows: Iterator[list]) -> Iterator[list]:
        nonlocal counted
        for row in rows:
            counted += 1
            yield row

    rows = counting(export_rows(resource, unmask=unmask, queryset=queryset))
    if fmt == "csv":
        for chunk in _csv_chunks(resource, rows):
            out.write(chunk)
    else:
        _xlsx_bytes(resource, rows, out)
    _audit(actor=actor, resource=resource, fmt=fmt, unmask=unmask, reason=reason, rows=counted)
    return counted


def export_stream(
    *,
    resource: str,
    actor: User | None,
    unmask: bool = False,
    reason: str = "",
    queryset=None,
    plan: ExportPlan | None = None,
) -> Iterator[bytes]:
    """CSV bytes of ``resource`` for a ``StreamingHttpResponse``; audited before the first byte.

    Args:
        plan: the filtered, counted export (:func:`export_plan`); its filters and row
            count go to the audit event. Without it the whole table (or ``queryset``),
            audited with ``rows: null`` (not counted).

    Raises:
        PermissionDenied: as :func:`data_export`.
    """
    _authorize(actor=actor, unmask=unmask, reason=reason)
    if plan is not None:
        resource, queryset = plan.resource, plan.queryset
    _audit(
        actor=actor,
        resource=resource,
        fmt="csv",
        unmask=unmask,
        reason=reason,
        rows=plan.rows if plan else None,
        filters=plan.filters if plan else None,
    )
    return _csv_chunks(resource, export_rows(resource, unmask=unmask, queryset=queryset))


# --- filtered exports, queued when long ---------------------------------------------------


@dataclass(frozen=True)
class ExportPlan:
    """An export as asked for: its resource, the filtered rows, the filters as validated, how many rows."""

    resource: str
    queryset: QuerySet
    filters: dict[str, list[str]]  # query parameters that narrowed it, {name: [values]}
    rows: int

    @property
    def queued(self) -> bool:
        """Too many rows for a web request: the export runs on the queue."""
        return self.rows > settings.EXPORTS["sync_max_rows"]


def _filtered(resource: str, filters: Mapping[str, list[str]]) -> tuple[QuerySet, StrictFilterSet | None]:
    model = RESOURCE_CLASSES[resource]._meta.model
    filterset_class = EXPORT_FILTERS[resource]
    if filterset_class is None or not filters:
        return model.objects.order_by("id"), None
    from django.http import QueryDict

    data = QueryDict(mutable=True)
    for name, values in filters.items():
        data.setlist(name, values)
    filterset = filterset_class(data, queryset=model.objects.all())
    return filterset.qs.order_by("id"), filterset


def export_plan(*, resource: str, params: Mapping[str, list[str]]) -> ExportPlan:
    """Validate an export's filters with the resource's FilterSet and count the rows they select.

    Args:
        resource: one of ``RESOURCES``.
        params: ``{name: [values]}`` of the filters (blank values are left out): for
            bills ``month_from`` / ``month_to`` (billing month, YYYY-MM), ``status``
            (repeatable), ``bank`` (bank code), ``bucket`` (M0 … M4+) and the rest of
            :class:`repayments.filters.BillBrowseFilter`; for the other resources their
            FilterSet in ``EXPORT_FILTERS``.

    Returns:
        The plan (one ``COUNT(*)`` over the filtered rows).

    Raises:
        RuleViolation: unknown resource (field ``resource``); a filter the resource has
            not, or a refused value (field: the parameter; the message names it and the value).
    """
    if resource not in RESOURCES:
        raise RuleViolation("resource", _("Data: “%(value)s” is not a resource.") % {"value": resource})
    given = {name: [v for v in values if v.strip()] for name, values in params.items()}
    given = {name: values for name, values in given.items() if values}
    filterset_class = EXPORT_FILTERS[resource]
    known = set(filterset_class(queryset=None).parameters()) if filterset_class else set()
    for name in given:
        if name not in known:
            takers = [
                str(RESOURCE_LABELS[r])
                for r, f in EXPORT_FILTERS.items()
                if f and name in f(queryset=None).parameters()
            ]
            message = _("The %(resource)s export cannot be filtered by “%(name)s” (%(value)s).") % {
                "resource": RESOURCE_LABELS[resource],
                "name": name,
                "value": ", ".join(given[name]),
            }
            if takers:
                message += " " + _("Choose %(takers)s as the data to export, or clear that filter.") % {
                    "takers": " / ".join(takers)
                }
            raise RuleViolation(name, message)
    queryset, filterset = _filtered(resource, given)
    if filterset is not None and filterset.problems():
        problem = filterset.problems()[0]
        raise RuleViolation(problem.param, problem.message)
    return ExportPlan(resource=resource, queryset=queryset, filters=given, rows=queryset.count())


def export_job_create(*, plan: ExportPlan, actor: User, unmask: bool = False, reason: str = "") -> ExportJob:
    """Queue a long export: the job, with its filters and row count, run by :func:`export_job_run` after commit.

    Raises:
        PermissionDenied: as :func:`data_export`.
    """
    _authorize(actor=actor, unmask=unmask, reason=reason)
    from django_q.tasks import async_task

    with transaction.atomic():
        job = ExportJob.objects.create(
            resource=plan.resource,
            filters=plan.filters,
            masked=not unmask,
            reason=reason.strip(),
            rows_total=plan.rows,
            created_by=actor,
        )
        audit_record(
            actor=actor,
            action="data.export_queued",
            target=job,
            reason=reason.strip(),
            after={"resource": plan.resource, "filters": plan.filters, "rows": plan.rows, "masked": not unmask},
        )
        transaction.on_commit(lambda: async_task("repayments.tasks.run_export_job", job.pk))
    return job


def export_job_run(*, job_id: int) -> str:
    """Write a queued export's CSV into its encrypted file, updating ``rows_done``; audit it when done.

    Idempotent: only a ``queued`` job is claimed (a second run finds it taken and
    returns its status); a run that fails marks the job ``failed`` with the reason.

    Returns:
        The job's status after the run.
    """
    claimed = ExportJob.objects.filter(pk=job_id, status=ExportJobStatus.QUEUED).update(
        status=ExportJobStatus.RUNNING, updated_at=timezone.now()
    )
    job = ExportJob.objects.select_related("created_by").get(pk=job_id)
    if not claimed:
        return job.status
    try:
        with override(settings.LANGUAGE_CODE):
            queryset, _filterset = _filtered(job.resource, job.filters)
            box = fernet()
            every = settings.EXPORTS["progress_rows"]
            done = size = number = 0
            buffer = bytearray()

            def counting(rows: Iterator[list]) -> Iterator[list]:
                nonlocal done
                for row in rows:
                    done += 1
                    if done % every == 0:
                        ExportJob.objects.filter(pk=job_id).update(rows_done=done, updated_at=timezone.now())
                    yield row

            rows = counting(export_rows(job.resource, unmask=not job.masked, queryset=queryset))
            for chunk in _csv_chunks(job.resource, rows):
                buffer += chunk
                while len(buffer) >= FILE_CHUNK_BYTES:
                    piece, buffer = bytes(buffer[:FILE_CHUNK_BYTES]), buffer[FILE_CHUNK_BYTES:]
                    ExportFileChunk.objects.create(job_id=job_id, number=number, data=box.encrypt(piece))
                    number, size = number + 1, size + len(piece)
            ExportFileChunk.objects.create(job_id=job_id, number=number, data=box.encrypt(bytes(buffer)))
            size += len(buffer)
        now = timezone.now()
        with transaction.atomic():
            ExportJob.objects.filter(pk=job_id).update(
                status=ExportJobStatus.DONE,
                rows_done=done,
                file_bytes=size,
                finished_at=now,
                expires_at=now + dt.timedelta(hours=settings.EXPORTS["keep_hours"]),
                updated_at=now,
            )
            _audit(
                actor=job.created_by,
                resource=job.resource,
                fmt="csv",
                unmask=not job.masked,
                reason=job.reason,
                rows=done,
                filters=job.filters,
                target=job,
            )
    except Exception as exc:
        logger.exception("export job failed", extra={"job_id": job_id})
        ExportFileChunk.objects.filter(job_id=job_id).delete()
        ExportJob.objects.filter(pk=job_id).update(
            status=ExportJobStatus.FAILED, failure=type(exc).__name__, finished_at=timezone.now()
        )
        return ExportJobStatus.FAILED
    return ExportJobStatus.DONE


def export_job_file(*, job: ExportJob, now: dt.datetime | None = None) -> Iterator[bytes]:
    """The finished job's CSV, decrypted a chunk at a time; the file is deleted once it has all been read.

    The download is claimed first (``downloaded_at`` set where it was empty, one
    conditional UPDATE): of two requests at once only one gets the file, never two
    halves of it. A file past its ``expires_at`` is not served, even before the sweep
    has deleted it.

    Args:
        job: the export job.
        now: the moment of the request (aware, UTC; default now).

    Raises:
        ExportJob.DoesNotExist: the job is not ``done`` (still running, failed, or already
            cleared), its file expired, or another request is downloading it.
        RuntimeError: (while iterating) a chunk of the file disappeared mid-download.
    """
    now = now or timezone.now()
    claimed = ExportJob.objects.filter(
        pk=job.pk, status=ExportJobStatus.DONE, downloaded_at__isnull=True, expires_at__gt=now
    ).update(downloaded_at=now, updated_at=now)
    if not claimed:
        raise ExportJob.DoesNotExist(f"export job {job.pk} has no file to download (status {job.status})")
    box = fernet()
    ids = list(ExportFileChunk.objects.filter(job_id=job.pk).order_by("number").values_list("id", flat=True))

    def chunks() -> Iterator[bytes]:
        for chunk_id in ids:
            token = ExportFileChunk.objects.filter(pk=chunk_id).values_list("data", flat=True).first()
            if token is None:  # never a silently cut file: the response fails
                raise RuntimeError(f"export job {job.pk}: chunk {chunk_id} disappeared during the download")
            yield box.decrypt(bytes(token))
        with transaction.atomic():
            ExportFileChunk.objects.filter(job_id=job.pk).delete()
            ExportJob.objects.filter(pk=job.pk, status=ExportJobStatus.DONE).update(
                status=ExportJobStatus.CLEARED, updated_at=timezone.now()
            )

    return chunks()


def export_jobs_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Every few minutes: delete expired export files, and fail exports whose worker stopped.

    * A ``done`` job past its ``expires_at`` (or claimed for download an hour ago and
      never finished: the connection dropped) loses its file (:func:`export_files_expire`).
    * A ``running`` job whose progress has not moved for ``EXPORTS["stale_seconds"]``
      lost its worker (killed, or the queue's 300 s timeout): it is failed and its
      partial file deleted; the analyst asks again.

    Args:
        now: the reference time (aware, UTC; default now).

    Returns:
        ``{"expired": n, "failed": m}``.
    """
    now = now or timezone.now()
    stale_before = now - dt.timedelta(seconds=settings.EXPORTS["stale_seconds"])
    stale = list(
        ExportJob.objects.filter(status=ExportJobStatus.RUNNING, updated_at__lt=stale_before).values_list(
            "id", flat=True
        )
    )
    failed = 0
    for job_id in stale:
        with transaction.atomic():
            failed += ExportJob.objects.filter(
                pk=job_id, status=ExportJobStatus.RUNNING, updated_at__lt=stale_before
            ).update(status=ExportJobStatus.FAILED, failure="worker stopped", finished_at=now, updated_at=now)
            ExportFileChunk.objects.filter(job_id=job_id, job__status=ExportJobStatus.FAILED).delete()
    return {"expired": export_files_expire(now=now), "failed": failed}


def export_files_expire(*, now: dt.datetime | None = None) -> int:
    """Delete the files of finished exports past their ``expires_at`` (UTC, default now); return how many.

    A download claimed more than an hour ago that never finished (the connection
    dropped) counts as expired too: the file was for that one download.
    """
    now = now or timezone.now()
    expired = list(
        ExportJob.objects.filter(status=ExportJobStatus.DONE)
        .filter(Q(expires_at__lte=now) | Q(downloaded_at__lte=now - dt.timedelta(hours=1)))
        .values_list("id", flat=True)
    )
    if expired:
        with transaction.atomic():
            ExportFileChunk.objects.filter(job_id__in=expired).delete()
            ExportJob.objects.filter(pk__in=expired, status=ExportJobStatus.DONE).update(
                status=ExportJobStatus.CLEARED, updated_at=now
            )
    return len(expired)


def template_file(resource: str, *, chinese: bool = True) -> bytes:
    """An empty CSV template with the resource's headers (Chinese by default), UTF-8 with BOM."""
    return b"".join(csv_bytes(export_headers(resource, chinese=chinese), []))
