"""Analyst imports: a file in, all of it applied or none of it, one audit event.

The CLI (``manage.py import_data``), the console page and the queued task call
:func:`data_import`; the admin uses the same resources
(``repayments.imports.resources``) through django-import-export.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, BinaryIO

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from baitiao.business_time import business_today
from baitiao.pii import fernet
from repayments.imports.reading import (
    Table,
    check_upload_size,
    limits,
    parsed_size,
    read_table,
    table_dataset,
)
from repayments.imports.report import FileRefused, Problem, masked_value, problems_csv
from repayments.imports.resources import RESOURCE_CLASSES
from repayments.models import OPEN_BILL_STATUSES, BillStatus, ImportJob, ImportJobStatus, ImportUploadChunk
from repayments.services.credit_lines import credit_lines_refresh_available
from repayments.services.delinquency import bills_refresh_delinquency
from repayments.services.errors import RuleViolation

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

# Bills/attempts files with more data rows than this go through the COPY fast path.
FAST_PATH_MIN_ROWS = 50_000


@dataclass
class ImportOutcome:
    """What an import did. ``applied`` is true when rows were written (never on a dry run).

    ``created``, ``updated`` and ``unchanged`` count the applied (or, on a dry run, the
    valid) rows: an unchanged row names an existing record whose stored values already
    equal the file's; nothing is written for it and its ``updated_at`` stays.
    """

    resource: str
    filename: str
    dry_run: bool
    applied: bool = False
    encoding: str = ""
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected_rows: int = 0
    skipped_rows: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    audit_event_id: int | None = None
    fast_path: bool = False

    @property
    def status(self) -> str:
        """``preview_ok``, ``preview_errors``, ``applied``, ``applied_valid_rows`` or ``rejected``."""
        if self.dry_run:
            return "preview_errors" if self.problems else "preview_ok"
        if not self.applied:
            return "rejected"
        return "applied_valid_rows" if self.problems else "applied"

    def error_report(self) -> bytes:
        """The problems as a CSV file (row, column, value, message)."""
        return problems_csv(self.problems)

    def summary(self) -> dict[str, object]:
        """JSON-able counts for the audit trail and the job record (no cell values: they may be personal)."""
        return {
            "resource": self.resource,
            "file": self.filename,
            "status": self.status,
            "encoding": self.encoding,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected_rows": self.rejected_rows,
            "problems": len(self.problems),
            "skipped_rows": len(self.skipped_rows),
            "fast_path": self.fast_path,
        }


def _problems(result, table: Table, resource) -> list[Problem]:
    """Row/column/value problems from an import-export ``Result``, spreadsheet-numbered."""
    problems: list[Problem] = []
    position = {name: i for i, name in enumerate(table.headers)}
    _sheet_rows, held_rows = table.held()
    for error in result.base_errors:
        problems.append(Problem(None, "", "", _("The database refused the file: %(error)s") % {"error": error.error}))
    for number, errors in result.row_errors():
        for error in errors:
            message = _("The database refused this row: %(error)s") % {"error": error.error}
            problems.append(Problem(resource.sheet_row(number), "", "", message))
    for invalid in result.invalid_rows:
        values = held_rows[invalid.number - 1]
        for column, messages in invalid.error_dict.items():
            value = values[position[column]] if column in position else ""
            shown = column if column in position else ""
            for message in messages:
                problems.append(Problem(resource.sheet_row(invalid.number), shown, masked_value(shown, value), message))
    order = {name: i for i, name in enumerate(table.headers)}
    problems.sort(key=lambda p: (p.row or 0, order.get(p.column, -1)))
    return problems


# Rows per call of a resource: a long file is imported in chunks of this many rows, all
# in one transaction (so all of it or none of it is written), with memory for one chunk.
CHUNK_ROWS = 5_000


@dataclass
class _Pass:
    """What one pass of the resources over a file found and wrote (before commit)."""

    problems: list[Problem] = field(default_factory=list)
    bad_rows: set[int] = field(default_factory=set)  # sheet rows with problems
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    new_lines: set[int] = field(default_factory=set)  # customers given a zero-limit credit line
    written: list[int] = field(default_factory=list)  # primary keys created or updated


def _resource_pass(
    table: Table, *, actor: User | None, progress=None, skip_rows: frozenset[int] = frozenset()
) -> _Pass:
    """Run the table's resource over every row (but ``skip_rows``), a chunk at a time.

    Rows are written (inside the caller's transaction, which decides whether to keep
    them): later chunks see what earlier ones wrote, as one import of the whole file would.
    Rows are compared with each other over the whole file first (``scan``); a resource
    whose rows depend on each other in order (``chunkable = False``) gets the file in one chunk.
    """
    resource_class = RESOURCE_CLASSES[table.resource]
    chunkable = resource_class.chunkable

    def rows() -> Iterator[tuple[int, list[str]]]:
        return ((n, cells) for n, cells in table.iter_rows() if n not in skip_rows)

    file_problems = None
    if chunkable and table.row_count > CHUNK_ROWS:
        scanner = resource_class(actor=actor)
        scanner.scan((n, dict(zip(table.headers, cells, strict=True))) for n, cells in rows())
        file_problems = scanner.file_problems
    size = CHUNK_ROWS if chunkable else max(table.row_count, 1)
    found = _Pass()
    done = 0
    chunks = (table.subset([c for _n, c in batch], [n for n, _c in batch]) for batch in _batched(rows(), size))
    for chunk in chunks:
        offset = done
        chunk_progress = None if progress is None else (lambda d, _t, o=offset: progress(o + d, table.row_count))
        extra = {"settle": False} if table.resource == "bills" else {}
        resource = resource_class(actor=actor, progress=chunk_progress, **extra)
        if file_problems is not None:
            resource.scanned, resource.file_problems = True, file_problems
        result = resource.import_data(
            table_dataset(chunk),
            dry_run=False,  # the caller's transaction rolls a dry run back, after every chunk ran
            use_transactions=True,
            rollback_on_validation_errors=True,
            raise_errors=False,
        )
        found.problems.extend(_problems(result, chunk, resource))
        sheet_rows, held_rows = chunk.held()
        bad = _bad_rows(result, len(held_rows))
        found.bad_rows.update(sheet_rows[number - 1] for number in bad)
        if not bad:
            found.created += result.totals.get("new", 0)
            found.updated += result.totals.get("update", 0)
            found.unchanged += result.totals.get("skip", 0)  # ``NaturalKeyResource.skip_row``
            found.new_lines.update(getattr(resource, "new_lines", None) or ())
            if table.resource == "bills":  # settled once after the last chunk
                found.written.extend(instance.pk for instance in resource.written)
        done += len(held_rows)
    order = {name: i for i, name in enumerate(table.headers)}
    found.problems.sort(key=lambda p: (p.row or 0, order.get(p.column, -1)))
    return found


def _batched(rows: Iterator[tuple[int, list[str]]], size: int) -> Iterator[list[tuple[int, list[str]]]]:
    while batch := list(islice(rows, size)):
        yield batch


def _sha256(file: BinaryIO) -> str:
    digest = hashlib.sha256()
    file.seek(0)
    while chunk := file.read(1 << 20):
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


def data_import(
    *,
    resource: str,
    content: bytes | BinaryIO,
    actor: User | None,
    filename: str = "",
    dry_run: bool = False,
    encoding: str = "auto",
    header_row: int | None = None,
    skip_footer: bool = False,
    apply_valid_rows: bool = False,
    fast_path: bool | None = None,
    progress=None,
) -> ImportOutcome:
    """Import one analyst file: validate every row, then apply all of it or nothing.

    The file is read as a stream and imported in chunks of ``CHUNK_ROWS`` rows (bills and
    attempts files of ``FAST_PATH_MIN_ROWS`` rows or more through the COPY fast path), all
    in one transaction, so memory stays flat whatever the file's size.

    Args:
        resource: ``customers``, ``credit-lines``, ``card-bindings``, ``bills`` or ``repayment-attempts``.
        content: the file's bytes, or a seekable binary file (CSV in any encoding
            ``reading.detect_encoding`` accepts, or XLSX), within ``settings.IMPORT_LIMITS``.
        actor: the analyst, or ``None`` for the system; recorded in the audit event.
        filename: the uploaded name (``.xlsx`` selects the workbook reader; shown in the audit).
        dry_run: validate and report only; nothing is written (no audit event either).
        encoding: ``auto`` or a codec name.
        header_row: the spreadsheet row with the headers, when it is not the first non-blank one.
        skip_footer: skip a 合计/Total row and everything below it instead of refusing the file.
        apply_valid_rows: apply the rows without problems and report the others (the error
            report lists them); without it a single problem rejects the whole file.
        fast_path: ``True``/``False`` to force or forbid the COPY path for bills and
            attempts; ``None`` uses it from ``FAST_PATH_MIN_ROWS`` rows.
        progress: optional ``callable(done_rows, total_rows)``, called every few thousand rows.

    Returns:
        An :class:`ImportOutcome`; ``problems`` name the spreadsheet row, column and raw value.
        It never raises for bad input: a file that cannot be read, or is over a limit (the
        problem names the limit and the file's value), is an outcome with problems.
    """
    outcome = ImportOutcome(resource=resource, filename=filename, dry_run=dry_run)
    file = io.BytesIO(content) if isinstance(content, bytes | bytearray) else content
    digest = _sha256(file)
    try:
        table = read_table(
            file,
            resource=resource,
            filename=filename,
            encoding=encoding,
            header_row=header_row,
            skip_footer=skip_footer,
        )
    except FileRefused as exc:
        outcome.problems = exc.problems
        return _finish(outcome, actor=actor, digest=digest)
    outcome.encoding, outcome.rows, outcome.skipped_rows = table.encoding, table.row_count, table.skipped_rows
    if table.skipped_rows:
        outcome.notes.append(
            _("Skipped footer rows %(first)d–%(last)d.")
            % {"first": table.skipped_rows[0], "last": table.skipped_rows[-1]}
        )

    use_fast = fast_path if fast_path is not None else table.row_count >= FAST_PATH_MIN_ROWS
    if use_fast and resource in ("bills", "repayment-attempts"):
        from repayments.imports.fastpath import fast_import

        outcome.fast_path = True
        with transaction.atomic():
            fast_import(table, outcome=outcome, dry_run=dry_run, apply_valid_rows=apply_valid_rows, progress=progress)
            return _finish(outcome, actor=actor, digest=digest)

    with transaction.atomic():
        found = None
        with transaction.atomic():
            first = _resource_pass(table, actor=actor, progress=progress)
            if first.problems or dry_run:
                transaction.set_rollback(True)  # a dry run, or a file with problems: nothing stays
            if not first.problems:
                found = first
        outcome.problems = first.problems
        outcome.rejected_rows = len(first.bad_rows)
        if first.problems and apply_valid_rows and not dry_run:
            # Second pass over the rows without problems; if it finds more (a row that relied
            # on a refused one), nothing is applied and those problems are added.
            with transaction.atomic():
                second = _resource_pass(table, actor=actor, skip_rows=frozenset(first.bad_rows))
                if second.problems:
                    transaction.set_rollback(True)
                    outcome.problems = sorted(outcome.problems + second.problems, key=lambda p: p.row or 0)
                elif second.created + second.updated + second.unchanged:
                    found = second
        if found is not None:
            _count(outcome, found, resource=resource, dry_run=dry_run)
        return _finish(outcome, actor=actor, digest=digest)


def _bad_rows(result, total: int) -> set[int]:
    """Data-row numbers (1-based) with problems; all of them when the database refused the file."""
    if result.base_errors:
        return set(range(1, total + 1))
    return {row.number for row in result.invalid_rows} | {number for number, _errors in result.row_errors()}


def _count(outcome: ImportOutcome, found: _Pass, *, resource: str, dry_run: bool) -> None:
    outcome.created, outcome.updated, outcome.unchanged = found.created, found.updated, found.unchanged
    outcome.applied = not dry_run
    if found.new_lines:
        outcome.notes.append(new_lines_note(len(found.new_lines)))
    if resource == "bills" and not dry_run and found.written:
        outcome.notes.append(settled_note(bills_import_settle(bill_ids=found.written)))


def new_lines_note(count: int) -> str:
    """The note of a bills import that gave ``count`` customers a zero-limit credit line."""
    return _(
        "%(count)d customers had no credit line; each got one with limit 0.00 CNY. "
        "Import a credit-lines file to set the limits."
    ) % {"count": count}


def settled_note(settled: dict[str, object]) -> str:
    """The note of a bills import that aged its bills and refreshed available credit (:func:`bills_import_settle`)."""
    return (
        _(
            "The %(bills)d bills written were aged to %(as_of)s (%(overdue)d overdue now), and the available credit "
            "of their %(customers)d customers was recomputed."
        )
        % settled
    )


def bills_import_settle(*, bill_ids: Sequence[int]) -> dict[str, object]:
    """Bring the bills an import just wrote up to date at once, in the import's transaction.

    1. Age them to today (business time) as the nightly job would
       (``bills_refresh_delinquency`` restricted to them, without its own audit event:
       the import's ``data.import`` event records the import): status, DPD, past-due
       amount, late fee.
    2. Clear the past-due state of those a file closed (paid, carried forward, nothing due).
    3. Recompute the available credit of their customers
       (``credit_lines_refresh_available``: limit − principal owed).

    Called by the bills resource after an applied import and by the fast path; not on a
    dry run (nothing is kept).

    Args:
        bill_ids: primary keys of the bills created or updated (unchanged rows excluded).

    Returns:
        ``bills`` (how many), ``as_of`` (ISO date aged to), ``overdue`` (of them, overdue
        after aging), ``customers`` (whose credit line was recomputed) and
        ``credit_lines`` (how many lines changed).
    """
    ids = sorted(set(bill_ids))
    as_of = business_today()
    if not ids:
        return {"bills": 0, "as_of": as_of.isoformat(), "overdue": 0, "customers": 0, "credit_lines": 0}
    bills_refresh_delinquency(as_of=as_of, audit=False, bill_ids=ids)
    with connection.cursor() as cursor:
        # A file that closed a statement (paid, carried forward, nothing due) closes its
        # delinquency too: nothing is past due on a closed statement, no debit is planned.
        cursor.execute(
            "UPDATE repayments_bill SET past_due_amount = 0, past_due_since = NULL, cycles_past_due = 0, dpd = 0,"
            " retry_at = NULL, closed_at = COALESCE(closed_at, now()), updated_at = now()"
            " WHERE id = ANY(%(ids)s) AND NOT (status = ANY(%(open)s))"
            " AND (past_due_amount <> 0 OR past_due_since IS NOT NULL OR cycles_past_due <> 0 OR dpd <> 0"
            "      OR retry_at IS NOT NULL OR closed_at IS NULL)",
            {"ids": ids, "open": [str(status) for status in OPEN_BILL_STATUSES]},
        )
        cursor.execute(
            "SELECT array_agg(DISTINCT customer_id), count(*) FILTER (WHERE status = %s)"
            " FROM repayments_bill WHERE id = ANY(%s)",
            [BillStatus.OVERDUE.value, ids],
        )
        customers, overdue = cursor.fetchone()
    customers = customers or []
    return {
        "bills": len(ids),
        "as_of": as_of.isoformat(),
        "overdue": overdue,
        "customers": len(customers),
        "credit_lines": credit_lines_refresh_available(customer_ids=customers),
    }


def _finish(outcome: ImportOutcome, *, actor: User | None, digest: str) -> ImportOutcome:
    """Write the audit event of a real (not dry-run) import, applied or rejected."""
    if not outcome.dry_run:
        event = audit_record(
            actor=actor,
            action="data.import" if outcome.applied else "data.import_rejected",
            target_type=f"repayments.{outcome.resource}",
            after={**outcome.summary(), "sha256": digest},
        )
        outcome.audit_event_id = event.pk
    return outcome


IMPORT_OPTIONS = ("dry_run", "encoding", "header_row", "skip_footer", "apply_valid_rows")
# Kept in ``ImportJob.options`` beside the import options: the language the uploader's
# console was in, so a job run by the worker reports its problems in that language.
LANGUAGE_OPTION = "language"
# Clear bytes per stored piece of an upload (``ImportUploadChunk``), each its own Fernet token.
UPLOAD_CHUNK_BYTES = 1 << 20
UNFINISHED = (ImportJobStatus.QUEUED, ImportJobStatus.RUNNING)

logger = logging.getLogger(__name__)


def _pieces(source: bytes | BinaryIO) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray):
        for start in range(0, len(source), UPLOAD_CHUNK_BYTES):
            yield bytes(source[start : start + UPLOAD_CHUNK_BYTES])
        return
    source.seek(0)
    while piece := source.read(UPLOAD_CHUNK_BYTES):
        yield piece


def _upload_store(job: ImportJob, source: bytes | BinaryIO) -> int:
    """Store ``source`` encrypted as the job's chunks, one piece in memory at a time; return its size in bytes."""
    box = fernet()
    size = 0
    number = -1
    for number, piece in enumerate(_pieces(source)):
        size += len(piece)
        check_upload_size(size)
        ImportUploadChunk.objects.create(job=job, number=number, data=box.encrypt(piece))
    if number < 0:
        ImportUploadChunk.objects.create(job=job, number=0, data=box.encrypt(b""))
    return size


@contextmanager
def import_job_upload(*, job_id: int) -> Iterator[BinaryIO]:
    """The job's upload, decrypted a chunk at a time into an anonymous temporary file.

    The file has no name on disk (it is unlinked at creation), so it disappears when it
    is closed or the process dies, whatever the way.

    Args:
        job_id: an ``ImportJob`` primary key.

    Raises:
        ImportJob.DoesNotExist: the job has no stored upload (it was cleared).
    """
    box = fernet()
    with tempfile.TemporaryFile() as file:
        stored = 0
        chunks = ImportUploadChunk.objects.filter(job_id=job_id).order_by("number").values_list("data", flat=True)
        for data in chunks.iterator(chunk_size=2):
            file.write(box.decrypt(bytes(data)))
            stored += 1
        if not stored:
            raise ImportJob.DoesNotExist(f"import job {job_id} has no stored upload")
        file.seek(0)
        yield file


def import_job_create(
    *, actor: User, resource: str, filename: str, content: bytes | BinaryIO, options: dict[str, object]
) -> ImportJob:
    """Record an upload and import it: at once when small, otherwise on the queue (after commit).

    The upload is stored encrypted a megabyte at a time (``ImportUploadChunk``) and read
    back the same way, so the web process never holds a big file; only uploads up to
    ``IMPORT_LIMITS["inline_max_bytes"]`` (an XLSX: unzipped) are parsed in the request.

    Args:
        actor: the analyst (needs ``repayments.import_data``; the view checks it).
        resource: one of ``repayments.imports.columns.RESOURCES``.
        filename: the uploaded name.
        content: the file's bytes, or a seekable binary file (a Django ``UploadedFile``).
        options: keyword options of :func:`data_import` (only ``IMPORT_OPTIONS`` are kept).
            The active language (``translation.get_language()``) is recorded with them:
            the job's messages and notes are written in it, also when the worker runs it.

    Raises:
        ValueError: unknown resource or option.
        FileRefused: the upload is larger than ``IMPORT_LIMITS["max_bytes"]`` (nothing is stored).
    """
    if resource not in RESOURCE_CLASSES:
        raise ValueError(f"unknown resource {resource!r}")
    unknown = set(options) - set(IMPORT_OPTIONS)
    if unknown:
        raise ValueError(f"unknown import options {sorted(unknown)}")
    source = io.BytesIO(content) if isinstance(content, bytes | bytearray) else content
    stored = {**options, LANGUAGE_OPTION: translation.get_language() or settings.LANGUAGE_CODE}
    # The upload holds personal data: encrypted at rest like every other copy, and
    # cleared once the job has run (whatever the outcome; the sweep clears what is left).
    with transaction.atomic():
        job = ImportJob.objects.create(resource=resource, filename=filename[:255], options=stored, created_by=actor)
        job.upload_bytes = _upload_store(job, source)
        job.save(update_fields=["upload_bytes"])
    if parsed_size(source, filename) <= limits()["inline_max_bytes"]:
        import_job_run(job_id=job.pk)
        job.refresh_from_db()
    else:
        transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _enqueue(job_id: int) -> None:
    from django_q.tasks import async_task

    async_task("repayments.tasks.run_import_job", job_id)


class _ProgressWriter:
    """Writes a job's progress on its own connection, so the console sees it while the
    import's transaction is still open; at most once a second."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.last = 0.0
        self.connection: BaseDatabaseWrapper | None = None

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 1.0 and done < total:
            return
        self.last = now
        if self.connection is None:
            self.connection = connections.create_connection("default")
        with self.connection.cursor() as cursor:
            cursor.execute(
                "UPDATE repayments_importjob SET rows_done = %s, rows_total = %s WHERE id = %s",
                [done, total, self.job_id],
            )

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


class _Heartbeat(threading.Thread):
    """Beats ``heartbeat_at`` of the run that claimed a job, every ``heartbeat_seconds``,
    on its own connection (the import's transaction stays open for minutes).

    It beats as long as the worker process lives: a killed worker (``kill -9``, the queue's
    timeout) stops beating, and :func:`import_jobs_sweep` takes the job back.
    """

    def __init__(self, job_id: int, attempt: int) -> None:
        super().__init__(name=f"import-job-{job_id}-heartbeat", daemon=True)
        self.job_id, self.attempt = job_id, attempt
        self.stopped = threading.Event()

    def run(self) -> None:
        connection = connections.create_connection("default")
        try:
            while not self.stopped.wait(settings.IMPORT_JOBS["heartbeat_seconds"]):
                with connection.cursor() as cursor:
                    cursor.execute(
                        "UPDATE repayments_importjob SET heartbeat_at = now()"
                        " WHERE id = %s AND status = %s AND attempts = %s",
                        [self.job_id, ImportJobStatus.RUNNING.value, self.attempt],
                    )
        except Exception:  # a lost connection: the beat stops, the sweep decides
            logger.warning("import job heartbeat stopped", extra={"job_id": self.job_id}, exc_info=True)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=30)


def import_job_run(*, job_id: int) -> str:
    """Run a queued import job once (a second call does nothing); return its final status.

    The job is claimed with a conditional UPDATE (queued → running, ``attempts`` + 1), so
    two workers never run it at once. While it runs a heartbeat thread beats
    ``heartbeat_at``. The import and the job's outcome are written in one transaction,
    and only if this run still owns the job (same ``attempts``, still running): when the
    sweep has meanwhile failed or re-queued it (this worker's beat had stopped), the import
    is rolled back. The stored upload is deleted when it finishes, fails or raises.
    Problems and notes are written in the language recorded when the job was created
    (English for a job recorded without one).

    Args:
        job_id: an ``ImportJob`` primary key.

    Returns:
        The job's status after this call.

    Raises:
        Exception: whatever the import raised unexpectedly (the job is then failed, with
            a message on its page, and nothing of it is written).
    """
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJobStatus.QUEUED).update(
        status=ImportJobStatus.RUNNING, attempts=F("attempts") + 1, claimed_at=now, heartbeat_at=now, updated_at=now
    )
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    if not claimed:
        return job.status
    attempt = job.attempts
    options = dict(job.options)
    language = options.pop(LANGUAGE_OPTION, None) or settings.LANGUAGE_CODE
    progress = _ProgressWriter(job_id)
    beat = _Heartbeat(job_id, attempt)
    beat.start()
    try:
        with translation.override(language), import_job_upload(job_id=job_id) as upload, transaction.atomic():
            outcome = data_import(
                resource=job.resource,
                content=upload,
                actor=job.created_by,
                filename=job.filename,
                progress=progress,
                **options,
            )
            report = outcome.error_report() if outcome.problems else b""  # its header is translated too
            if outcome.dry_run:
                status = ImportJobStatus.PREVIEWED
            else:
                status = ImportJobStatus.APPLIED if outcome.applied else ImportJobStatus.REJECTED
            owned = ImportJob.objects.filter(pk=job_id, status=ImportJobStatus.RUNNING, attempts=attempt).update(
                status=status,
                rows_total=outcome.rows,
                rows_done=outcome.rows,
                summary={**outcome.summary(), "notes": outcome.notes},
                error_report=report,
                failure="",
                finished_at=timezone.now(),
                updated_at=timezone.now(),
            )
            if not owned:
                # The sweep gave this run up while it worked: keep nothing of it.
                transaction.set_rollback(True)
    except Exception as exc:
        with translation.override(language):
            failure = _(
                "The import stopped with an unexpected error (%(error)s). Nothing was written: the file is "
                "imported in one transaction, which was rolled back. Upload it again; if it fails again, tell "
                "the operators the job number."
            ) % {"error": type(exc).__name__}
        _job_fail(job_id, failure=failure, attempt=attempt)
        raise
    finally:
        beat.stop()
        progress.close()
    _uploads_not_needed(timezone.now()).filter(job_id=job_id).delete()
    return ImportJob.objects.values_list("status", flat=True).get(pk=job_id)


def _clean_preview(now: dt.datetime) -> Q:
    """Jobs whose upload is kept: a preview without a problem, finished within ``keep_preview_hours``."""
    kept_since = now - dt.timedelta(hours=settings.IMPORT_JOBS["keep_preview_hours"])
    return Q(job__status=ImportJobStatus.PREVIEWED, job__summary__problems=0, job__finished_at__gte=kept_since)


def _uploads_not_needed(now: dt.datetime):
    """Stored upload chunks no job needs: neither unfinished nor a recent clean preview (see ``import_job_apply``)."""
    return ImportUploadChunk.objects.exclude(job__status__in=UNFINISHED).exclude(_clean_preview(now))


def import_job_can_apply(job: ImportJob, *, now: dt.datetime | None = None) -> bool:
    """Whether ``job`` is a clean preview whose upload is still kept (its page offers "Apply")."""
    now = now or timezone.now()
    kept = ImportUploadChunk.objects.filter(_clean_preview(now), job_id=job.pk)
    return job.status == ImportJobStatus.PREVIEWED and kept.exists()


def import_job_apply(*, job_id: int, actor: User) -> ImportJob:
    """Apply the upload of a clean preview without uploading it again: a new job with the same file and options.

    The preview's encrypted upload (kept ``IMPORT_JOBS["keep_preview_hours"]`` after a
    preview without problems) moves to the new job, which runs like an upload (small
    at once, big on the queue); the preview records the job that applied it. Only
    once: a second "Apply" finds no upload.

    Args:
        job_id: the previewed ``ImportJob``.
        actor: the analyst; only the one who uploaded the file may apply it.

    Returns:
        The new job (its status after an inline run, or queued).

    Raises:
        RuleViolation: (field ``__all__``) not the uploader's, not a clean preview, or
            its upload is no longer kept (applied already, or expired): upload the file again.
    """
    now = timezone.now()
    with transaction.atomic():
        preview = ImportJob.objects.select_for_update().filter(pk=job_id).first()
        if preview is None or preview.created_by_id != actor.pk:
            raise RuleViolation("__all__", _("Only the analyst who uploaded a file can apply it."))
        if not import_job_can_apply(preview, now=now):
            raise RuleViolation(
                "__all__",
                _("This preview cannot be applied (it had problems, was applied already, or its file is no "
                  "longer kept): upload the file again."),
            )  # fmt: skip
        options = {**preview.options, "dry_run": False}
        job = ImportJob.objects.create(
            resource=preview.resource,
            filename=preview.filename,
            options=options,
            upload_bytes=preview.upload_bytes,
            created_by=actor,
        )
        ImportUploadChunk.objects.filter(job_id=preview.pk).update(job_id=job.pk)
        preview.summary = {**preview.summary, "applied_by_job": job.pk}
        preview.save(update_fields=["summary", "updated_at"])
    inline = preview.upload_bytes <= limits()["inline_max_bytes"] and not preview.filename.lower().endswith(".xlsx")
    if inline:
        import_job_run(job_id=job.pk)
        job.refresh_from_db()
    else:
        transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _job_fail(job_id: int, *, failure: str, attempt: int | None = None) -> bool:
    """Fail an unfinished job with ``failure`` (shown on its page) and delete its upload; whether it was failed."""
    with transaction.atomic():
        jobs = ImportJob.objects.filter(pk=job_id, status__in=UNFINISHED)
        if attempt is not None:
            jobs = jobs.filter(attempts=attempt)
        now = timezone.now()
        failed = jobs.update(status=ImportJobStatus.FAILED, failure=failure, finished_at=now, updated_at=now)
        if failed:
            ImportUploadChunk.objects.filter(job_id=job_id).delete()
    return bool(failed)


def _audit_sweep(job: ImportJob, *, action: str, stale_since: dt.datetime | None) -> None:
    """The system's audit event for a job the sweep took back (``import.requeue``) or gave up (``import.fail``)."""
    audit_record(
        actor=None,
        action=action,
        target=job,
        before={"status": job.status, "attempts": job.attempts, "rows_done": job.rows_done},
        after={"stale_since": stale_since.isoformat() if stale_since else None, "by": "sweep-import-jobs"},
    )


def import_jobs_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Take back import jobs whose worker stopped, and clear every upload no job needs (every minute).

    * A ``running`` job whose heartbeat is older than ``IMPORT_JOBS["stale_seconds"]`` lost
      its worker (killed, crashed, or stopped by the queue's 300 s timeout). Its import was
      one transaction, which PostgreSQL rolled back with the worker's connection: nothing
      of it was written. It is queued again while it has had fewer than
      ``IMPORT_JOBS["max_attempts"]`` runs and still has its upload; otherwise it is
      failed with a message naming the row it had reached and what to do.
    * A ``queued`` job no worker took within ``IMPORT_JOBS["abandon_queued_hours"]`` is failed.
    * The stored upload of every job that is neither queued nor running is deleted, but
      for a clean preview's within ``IMPORT_JOBS["keep_preview_hours"]`` ("Apply").

    A job whose worker is writing its outcome at that moment (its row is locked) is left
    alone. Safe to run twice or concurrently. Each job taken back or given up gets an audit
    event of the system (``import.requeue`` or ``import.fail``, actor ``None``).

    Args:
        now: the reference time (aware datetime, UTC); default ``timezone.now()``.

    Returns:
        Counts: ``requeued``, ``failed`` (stale running jobs given up), ``abandoned``
        (queued jobs given up) and ``uploads_cleared`` (jobs whose upload was deleted).
    """
    config = settings.IMPORT_JOBS
    now = now or timezone.now()
    stale_before = now - dt.timedelta(seconds=config["stale_seconds"])
    counts = {"requeued": 0, "failed": 0, "abandoned": 0, "uploads_cleared": 0}
    stale = ImportJob.objects.filter(status=ImportJobStatus.RUNNING, heartbeat_at__lt=stale_before)
    for job_id in stale.values_list("pk", flat=True):
        with transaction.atomic():
            job = (
                ImportJob.objects.select_for_update(skip_locked=True)
                .filter(pk=job_id, status=ImportJobStatus.RUNNING, heartbeat_at__lt=stale_before)
                .first()
            )
            if job is None:
                continue  # finished meanwhile, or its worker holds it
            has_upload = ImportUploadChunk.objects.filter(job_id=job_id).exists()
            if job.attempts < config["max_attempts"] and has_upload:
                ImportJob.objects.filter(pk=job_id).update(
                    status=ImportJobStatus.QUEUED,
                    claimed_at=None,
                    heartbeat_at=None,
                    rows_done=0,
                    rows_total=0,  # counted again by the next run
                    updated_at=now,
                )
                _audit_sweep(job, action="import.requeue", stale_since=job.heartbeat_at)
                transaction.on_commit(partial(_enqueue, job_id))
                counts["requeued"] += 1
            else:
                language = job.options.get(LANGUAGE_OPTION) or settings.LANGUAGE_CODE
                with translation.override(language):
                    failure = _stale_failure(job)
                if _job_fail(job_id, failure=failure, attempt=job.attempts):
                    _audit_sweep(job, action="import.fail", stale_since=job.heartbeat_at)
                counts["failed"] += 1
    abandon_before = now - dt.timedelta(hours=config["abandon_queued_hours"])
    for job in ImportJob.objects.filter(status=ImportJobStatus.QUEUED, updated_at__lt=abandon_before):
        language = job.options.get(LANGUAGE_OPTION) or settings.LANGUAGE_CODE
        with translation.override(language):
            failure = _(
                "No worker started this import within %(hours)d hours (is the queue cluster running?). "
                "Nothing was written and the upload was deleted; upload the file again."
            ) % {"hours": config["abandon_queued_hours"]}
        with transaction.atomic():  # the event commits with the failure
            if _job_fail(job.pk, failure=failure):
                _audit_sweep(job, action="import.fail", stale_since=job.updated_at)
                counts["abandoned"] += 1
    finished = _uploads_not_needed(now)
    counts["uploads_cleared"] = len(set(finished.values_list("job_id", flat=True)))
    finished.delete()
    return counts


def _stale_failure(job: ImportJob) -> str:
    """The failure message of a job whose worker stopped beating (in the active language)."""
    return _(
        "The worker running this import stopped without finishing (its last sign of life was at %(beat)s, "
        "after %(done)s of %(total)s rows; %(attempts)d runs tried). Nothing was written: the file is imported "
        "in one transaction, which the database rolled back when the worker stopped. The upload was deleted. "
        "A file this large may need longer than the queue allows (300 s per run): split it into smaller files, "
        "or import it with the command line (manage.py import_data), which has no time limit."
    ) % {
        "beat": timezone.localtime(job.heartbeat_at).strftime("%Y-%m-%d %H:%M:%S") if job.heartbeat_at else "—",
        "done": f"{job.rows_done:,}",
        "total": f"{job.rows_total:,}" if job.rows_total else "?",
        "attempts": job.attempts,
    }
