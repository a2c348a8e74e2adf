"""Analyst imports: a file in, all of it applied or none of it, one audit event.

The CLI (``manage.py import_data``), the console page and the queued task call
:func:`data_import`; the admin uses the same resources
(``repayments.imports.resources``) through django-import-export.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from baitiao.business_time import business_today
from baitiao.pii import fernet
from repayments.imports.reading import Table, read_table, table_dataset
from repayments.imports.report import FileRefused, Problem, masked_value, problems_csv
from repayments.imports.resources import RESOURCE_CLASSES
from repayments.models import OPEN_BILL_STATUSES, BillStatus, ImportJob, ImportJobStatus
from repayments.services.credit_lines import credit_lines_refresh_available
from repayments.services.delinquency import bills_refresh_delinquency

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
    for error in result.base_errors:
        problems.append(Problem(None, "", "", _("The database refused the file: %(error)s") % {"error": error.error}))
    for number, errors in result.row_errors():
        for error in errors:
            message = _("The database refused this row: %(error)s") % {"error": error.error}
            problems.append(Problem(resource.sheet_row(number), "", "", message))
    for invalid in result.invalid_rows:
        values = table.rows[invalid.number - 1]
        for column, messages in invalid.error_dict.items():
            value = values[position[column]] if column in position else ""
            shown = column if column in position else ""
            for message in messages:
                problems.append(Problem(resource.sheet_row(invalid.number), shown, masked_value(shown, value), message))
    order = {name: i for i, name in enumerate(table.headers)}
    problems.sort(key=lambda p: (p.row or 0, order.get(p.column, -1)))
    return problems


def _run(table: Table, *, actor: User | None, dry_run: bool, progress=None):
    resource = RESOURCE_CLASSES[table.resource](actor=actor, progress=progress)
    result = resource.import_data(
        table_dataset(table),
        dry_run=dry_run,
        use_transactions=True,
        rollback_on_validation_errors=True,
        raise_errors=False,
    )
    return resource, result, _problems(result, table, resource)


def data_import(
    *,
    resource: str,
    content: bytes,
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

    Args:
        resource: ``customers``, ``credit-lines``, ``card-bindings``, ``bills`` or ``repayment-attempts``.
        content: the file's bytes (CSV in any encoding ``reading.decode`` accepts, or XLSX).
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
        It never raises for bad input: a file that cannot be read is an outcome with problems.
    """
    outcome = ImportOutcome(resource=resource, filename=filename, dry_run=dry_run)
    digest = hashlib.sha256(content).hexdigest()
    try:
        table = read_table(
            content,
            resource=resource,
            filename=filename,
            encoding=encoding,
            header_row=header_row,
            skip_footer=skip_footer,
        )
    except FileRefused as exc:
        outcome.problems = exc.problems
        return _finish(outcome, actor=actor, digest=digest)
    outcome.encoding, outcome.rows, outcome.skipped_rows = table.encoding, len(table.rows), table.skipped_rows
    if table.skipped_rows:
        outcome.notes.append(
            _("Skipped footer rows %(first)d–%(last)d.")
            % {"first": table.skipped_rows[0], "last": table.skipped_rows[-1]}
        )

    use_fast = fast_path if fast_path is not None else len(table.rows) >= FAST_PATH_MIN_ROWS
    if use_fast and resource in ("bills", "repayment-attempts"):
        from repayments.imports.fastpath import fast_import

        outcome.fast_path = True
        with transaction.atomic():
            fast_import(table, outcome=outcome, dry_run=dry_run, apply_valid_rows=apply_valid_rows, progress=progress)
            return _finish(outcome, actor=actor, digest=digest)

    with transaction.atomic():
        resource_obj, result, problems = _run(table, actor=actor, dry_run=dry_run, progress=progress)
        outcome.problems = problems
        if not problems:
            _count(outcome, result, resource_obj)
            outcome.applied = not dry_run
        else:
            bad = _bad_rows(result, len(table.rows))
            outcome.rejected_rows = len(bad)
            if apply_valid_rows and not dry_run:
                _apply_valid_rows(table, bad, outcome=outcome, actor=actor)
        return _finish(outcome, actor=actor, digest=digest)


def _bad_rows(result, total: int) -> set[int]:
    """Data-row numbers (1-based) with problems; all of them when the database refused the file."""
    if result.base_errors:
        return set(range(1, total + 1))
    return {row.number for row in result.invalid_rows} | {number for number, _errors in result.row_errors()}


def _apply_valid_rows(table: Table, bad: set[int], *, outcome: ImportOutcome, actor: User | None) -> None:
    """Second pass over the rows without problems; if it finds more (a row that relied on
    a refused one), nothing is applied and those problems are added."""
    keep = [i for i in range(len(table.rows)) if i + 1 not in bad]
    if not keep:
        return
    valid = Table(
        resource=table.resource,
        headers=table.headers,
        rows=[table.rows[i] for i in keep],
        sheet_rows=[table.sheet_rows[i] for i in keep],
        encoding=table.encoding,
        header_row=table.header_row,
    )
    resource_obj, result, more = _run(valid, actor=actor, dry_run=False)
    if more:
        outcome.problems = sorted(outcome.problems + more, key=lambda p: p.row or 0)
        return
    _count(outcome, result, resource_obj)
    outcome.applied = True


def _count(outcome: ImportOutcome, result, resource_obj) -> None:
    outcome.created = result.totals.get("new", 0)
    outcome.updated = result.totals.get("update", 0)
    outcome.unchanged = result.totals.get("skip", 0)  # ``NaturalKeyResource.skip_row``
    lines = getattr(resource_obj, "new_lines", None)
    if lines:
        outcome.notes.append(new_lines_note(len(lines)))
    settled = getattr(resource_obj, "settled", None)
    if settled:
        outcome.notes.append(settled_note(settled))


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


# Uploads up to this size are imported during the request; larger ones on the queue.
INLINE_MAX_BYTES = 2_000_000
IMPORT_OPTIONS = ("dry_run", "encoding", "header_row", "skip_footer", "apply_valid_rows")
# Kept in ``ImportJob.options`` beside the import options: the language the uploader's
# console was in, so a job run by the worker reports its problems in that language.
LANGUAGE_OPTION = "language"


def import_job_create(
    *, actor: User, resource: str, filename: str, content: bytes, options: dict[str, object]
) -> ImportJob:
    """Record an upload and import it: at once when small, otherwise on the queue (after commit).

    Args:
        actor: the analyst (needs ``repayments.import_data``; the view checks it).
        resource: one of ``repayments.imports.columns.RESOURCES``.
        filename: the uploaded name.
        content: the file's bytes.
        options: keyword options of :func:`data_import` (only ``IMPORT_OPTIONS`` are kept).
            The active language (``translation.get_language()``) is recorded with them:
            the job's messages and notes are written in it, also when the worker runs it.

    Raises:
        ValueError: unknown resource or option.
    """
    if resource not in RESOURCE_CLASSES:
        raise ValueError(f"unknown resource {resource!r}")
    unknown = set(options) - set(IMPORT_OPTIONS)
    if unknown:
        raise ValueError(f"unknown import options {sorted(unknown)}")
    stored = {**options, LANGUAGE_OPTION: translation.get_language() or settings.LANGUAGE_CODE}
    # The upload holds personal data: encrypted at rest like every other copy, and
    # cleared once the job has run (whatever the outcome).
    job = ImportJob.objects.create(
        resource=resource,
        filename=filename[:255],
        content=fernet().encrypt(content),
        options=stored,
        created_by=actor,
    )
    if len(content) <= INLINE_MAX_BYTES:
        import_job_run(job_id=job.pk)
        job.refresh_from_db()
    else:
        from django_q.tasks import async_task

        transaction.on_commit(lambda: async_task("repayments.tasks.run_import_job", job.pk))
    return job


class _ProgressWriter:
    """Writes a job's progress on its own connection, so the console sees it while the
    import's transaction is still open; at most once a second."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.last = 0.0
        self.connection = None

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


def import_job_run(*, job_id: int) -> str:
    """Run a queued import job once (a second call does nothing); return its final status.

    The job is claimed with a conditional UPDATE (queued → running), so two workers
    never run it twice. The uploaded bytes are cleared when it finishes. Problems and
    notes are written in the language recorded when the job was created (English for
    a job recorded without one).
    """
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJobStatus.QUEUED).update(
        status=ImportJobStatus.RUNNING, updated_at=timezone.now()
    )
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    if not claimed:
        return job.status
    options = dict(job.options)
    language = options.pop(LANGUAGE_OPTION, None) or settings.LANGUAGE_CODE
    progress = _ProgressWriter(job_id)
    try:
        with translation.override(language):
            outcome = data_import(
                resource=job.resource,
                content=fernet().decrypt(bytes(job.content)),
                actor=job.created_by,
                filename=job.filename,
                progress=progress,
                **options,
            )
            report = outcome.error_report() if outcome.problems else b""  # its header is translated too
    except Exception:
        # The upload holds personal data: it is not kept after a failed run either.
        ImportJob.objects.filter(pk=job_id).update(
            status=ImportJobStatus.FAILED, content=b"", finished_at=timezone.now(), updated_at=timezone.now()
        )
        raise
    finally:
        progress.close()
    if outcome.dry_run:
        status = ImportJobStatus.PREVIEWED
    else:
        status = ImportJobStatus.APPLIED if outcome.applied else ImportJobStatus.REJECTED
    ImportJob.objects.filter(pk=job_id).update(
        status=status,
        rows_total=outcome.rows,
        rows_done=outcome.rows,
        summary={**outcome.summary(), "notes": outcome.notes},
        error_report=report,
        content=b"",
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )
    return status
