"""Analyst exports: streamed, masked by default, formula-safe, audited.

Rows are read with a server-side cursor (``QuerySet.iterator``) and written as
they come, so memory stays flat whatever the table size. Personal fields are
masked unless the actor holds ``repayments.export_personal_data`` and gives a
reason; every export writes an audit event (``data.export`` or
``data.export_unmasked``). Every text cell goes through
``baitiao.csvfiles.neutralize``.

CSV is UTF-8 with a byte-order mark, which Excel needs to show Chinese text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from baitiao.csvfiles import csv_bytes, neutralize
from baitiao.db_routers import reporting_db
from repayments.imports.columns import EXPORT_MASKS, RESOURCES
from repayments.imports.resources import RESOURCE_CLASSES, render_cell

EXPORT_PERMISSION = "repayments.export_data"
UNMASK_PERMISSION = "repayments.export_personal_data"
FORMATS = ("csv", "xlsx")
_CHUNK = 5000


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


def _audit(*, actor: User | None, resource: str, fmt: str, unmask: bool, reason: str, rows: int | None):
    return audit_record(
        actor=actor,
        action="data.export_unmasked" if unmask else "data.export",
        target_type=f"repayments.{resource}",
        reason=reason.strip(),
        after={"resource": resource, "format": fmt, "masked": not unmask, "rows": rows},
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
    *, resource: str, actor: User | None, unmask: bool = False, reason: str = "", queryset=None
) -> Iterator[bytes]:
    """CSV bytes of ``resource`` for a ``StreamingHttpResponse``; audited before the first byte.

    Raises:
        PermissionDenied: as :func:`data_export`.
    """
    _authorize(actor=actor, unmask=unmask, reason=reason)
    _audit(actor=actor, resource=resource, fmt="csv", unmask=unmask, reason=reason, rows=None)
    return _csv_chunks(resource, export_rows(resource, unmask=unmask, queryset=queryset))


def template_file(resource: str, *, chinese: bool = True) -> bytes:
    """An empty CSV template with the resource's headers (Chinese by default), UTF-8 with BOM."""
    return b"".join(csv_bytes(export_headers(resource, chinese=chinese), []))
