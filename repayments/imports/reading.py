"""Reading an uploaded file into a table of text cells with English column names.

* Encoding (CSV): ``auto`` tries a UTF-8 byte-order mark, then strict UTF-8, then
  GB18030 (the superset of GBK that Excel "Save as CSV" writes on Chinese
  Windows), then UTF-16 with a byte-order mark (Excel "Unicode text"); or an
  explicit codec name. Nothing is decoded with replacement characters.
* XLSX: the first sheet, values not formulas (``openpyxl`` read-only).
* The header row is the first non-blank row, or the one given; when the real
  header is further down (a bank's preamble), the error names its row.
* Headers may be English, Chinese or an alias (``repayments.imports.columns``).
* Summary/footer rows (合计, 总计, Total …) are an error naming the row, or are
  skipped with ``skip_footer``; blank rows are ignored; row numbers stay those
  of the spreadsheet.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from repayments.imports.columns import RESOURCES, header_key, header_lookup
from repayments.imports.report import FileRefused, Problem

FOOTER_WORDS = ("合计", "总计", "小计", "汇总", "共计", "total", "subtotal", "sum", "导出时间", "备注", "说明")
_HEADER_SCAN_ROWS = 30


@dataclass
class Table:
    """A file as text cells: ``headers`` are English column names, ``sheet_rows`` the
    spreadsheet row number of each data row."""

    resource: str
    headers: list[str]
    rows: list[list[str]]
    sheet_rows: list[int]
    encoding: str
    header_row: int
    skipped_rows: list[int] = field(default_factory=list)


def decode(content: bytes, encoding: str = "auto") -> tuple[str, str]:
    """The text of a CSV file and the encoding that read it.

    Args:
        content: the file's bytes.
        encoding: ``auto`` or a Python codec name (``utf-8``, ``gbk``, ``gb18030``, ``utf-16``).

    Raises:
        FileRefused: unknown codec, or bytes the encoding cannot read (the message
            names the line).
    """
    if encoding.lower() != "auto":
        try:
            name = codecs.lookup(encoding).name
        except LookupError:
            message = _("Unknown encoding %(encoding)s.") % {"encoding": repr(encoding)}
            raise FileRefused([Problem(None, "", encoding, message)]) from None
        if name == "utf-8" and content.startswith(codecs.BOM_UTF8):
            name = "utf-8-sig"
        try:
            return content.decode(name), name
        except UnicodeDecodeError as exc:
            line = content[: exc.start].count(b"\n") + 1
            message = _("The file is not %(encoding)s: bytes on line %(line)d cannot be read that way.") % {
                "encoding": encoding,
                "line": line,
            }
            raise FileRefused([Problem(line, "", "", message)]) from None
    if content.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    else:
        candidates = ["utf-8", "gb18030"]
    for name in candidates:
        try:
            return content.decode(name), name
        except UnicodeDecodeError:
            continue
    raise FileRefused(
        [
            Problem(
                None,
                "",
                "",
                _("The file is neither UTF-8 nor GBK/GB18030 text. Save it from Excel as 'CSV UTF-8' or as .xlsx."),
            )
        ]
    )


def _xlsx_cell(value: object) -> str:
    """An XLSX cell as the text the analyst sees; floats through ``repr`` (never into money as float)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Excel holds 15 significant digits; an integral value below 1e15 is exact.
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)  # shortest round-trip text: 1234.5, or 4.403001990030712e+17 (refused later)
    return str(value)


def _xlsx_rows(content: bytes) -> list[list[str]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        message = _("This is not a readable .xlsx file (%(reason)s).") % {"reason": exc}
        raise FileRefused([Problem(None, "", "", message)]) from None
    try:
        sheet = book.worksheets[0]
        return [[_xlsx_cell(cell) for cell in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def _csv_rows(text: str) -> list[list[str]]:
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        message = _("The CSV file is malformed: %(reason)s.") % {"reason": exc}
        raise FileRefused([Problem(None, "", "", message)]) from None


def is_xlsx(content: bytes, filename: str = "") -> bool:
    """Whether the upload is an XLSX workbook (by name or by its ZIP signature)."""
    return filename.lower().endswith((".xlsx", ".xlsm")) or content.startswith(b"PK\x03\x04")


def _blank(row: list[str]) -> bool:
    return all(not (cell or "").strip() for cell in row)


def _is_footer(row: list[str]) -> bool:
    first = next((cell.strip() for cell in row if cell and cell.strip()), "")
    key = header_key(first)
    return any(key.startswith(header_key(word)) for word in FOOTER_WORDS)


def read_table(
    content: bytes,
    *,
    resource: str,
    filename: str = "",
    encoding: str = "auto",
    header_row: int | None = None,
    skip_footer: bool = False,
) -> Table:
    """Read ``content`` (CSV or XLSX) as a table for ``resource``.

    Args:
        content: the uploaded bytes.
        resource: ``customers``, ``credit-lines``, ``card-bindings``, ``bills`` or ``repayment-attempts``.
        filename: the uploaded name (``.xlsx`` selects the workbook reader).
        encoding: ``auto`` or a codec name (CSV only).
        header_row: the spreadsheet row (1-based) holding the headers; rows above are skipped.
        skip_footer: skip a summary row (合计/Total…) and everything after it instead of refusing.

    Raises:
        FileRefused: empty file, no data rows, header not found or not on the given
            row, unknown/duplicate/missing columns, a footer row, extra cells.
    """
    if resource not in RESOURCES:
        message = _("Unknown resource; use one of %(resources)s.") % {"resources": ", ".join(RESOURCES)}
        raise FileRefused([Problem(None, "", resource, message)])
    if not content.strip():
        raise FileRefused([Problem(None, "", "", _("The file is empty."))])
    if is_xlsx(content, filename):
        rows, used = _xlsx_rows(content), "xlsx"
    else:
        text, used = decode(content, encoding)
        rows = _csv_rows(text)
    lookup = header_lookup(resource)
    known = {column.name: column for column in RESOURCES[resource]}

    if header_row is None:
        index = next((i for i, row in enumerate(rows) if not _blank(row)), None)
        if index is None:
            raise FileRefused([Problem(None, "", "", _("The file is empty."))])
        if not any(header_key(cell) in lookup for cell in rows[index]):
            for later in range(index + 1, min(len(rows), index + _HEADER_SCAN_ROWS)):
                if sum(header_key(cell) in lookup for cell in rows[later]) >= 2:
                    raise FileRefused(
                        [
                            Problem(
                                index + 1,
                                "",
                                masked_preamble(",".join(rows[index])[:80]),
                                _(
                                    "The column headers are on row %(row)d, not on the first row. Delete the rows "
                                    "above them, or import with header row %(row)d (--header-row %(row)d)."
                                )
                                % {"row": later + 1},
                            )
                        ]
                    )
    else:
        index = header_row - 1
        if not 0 <= index < len(rows):
            raise FileRefused([Problem(header_row, "", "", _("The file has no such row."))])

    header_cells = rows[index]
    headers: list[str] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    while header_cells and not header_cells[-1].strip():
        header_cells = header_cells[:-1]  # Excel keeps empty trailing header cells
    for position, cell in enumerate(header_cells):
        name = lookup.get(header_key(cell))
        if name is None:
            columns = ", ".join(f"{c.name} ({c.chinese})" for c in RESOURCES[resource])
            message = (
                _("An empty column header.")
                if not cell.strip()
                else _("Unknown column %(header)s for %(resource)s; the columns are %(columns)s.")
                % {"header": repr(cell.strip()), "resource": resource, "columns": columns}
            )
            problems.append(Problem(index + 1, cell.strip(), cell, message))
        elif name in seen:
            problems.append(
                Problem(
                    index + 1,
                    name,
                    cell,
                    _("Column %(name)s appears twice (columns %(first)d and %(second)d).")
                    % {"name": name, "first": seen[name] + 1, "second": position + 1},
                )
            )
        else:
            seen[name] = position
        headers.append(name or cell.strip())
    missing = [c for c in known.values() if c.required and c.name not in seen]
    for column in missing:
        problems.append(
            Problem(
                index + 1,
                column.name,
                "",
                _("The required column %(name)s (%(chinese)s) is missing.")
                % {"name": column.name, "chinese": column.chinese},
            )
        )
    if problems:
        raise FileRefused(problems)

    data, sheet_rows, skipped = [], [], []
    width = len(headers)
    for offset, row in enumerate(rows[index + 1 :], start=index + 2):
        if _blank(row):
            continue
        if _is_footer(row):
            if skip_footer:
                skipped.extend(range(offset, len(rows) + 1))
                break
            problems.append(
                Problem(
                    offset,
                    "",
                    next(c for c in row if c.strip()),
                    _(
                        "This looks like a summary or footer row. Delete it, or import with 'skip footer rows' "
                        "(--skip-footer), which skips it and every row after it."
                    ),
                )
            )
            continue
        if len(row) > width and not _blank(row[width:]):
            message = _("The row has %(cells)d cells; the header has %(width)d.") % {"cells": len(row), "width": width}
            problems.append(Problem(offset, "", "", message))
            continue
        data.append([(cell or "") for cell in row[:width]] + [""] * (width - len(row)))
        sheet_rows.append(offset)
    if problems:
        raise FileRefused(problems)
    if not data:
        raise FileRefused([Problem(None, "", "", _("The file has a header row but no data rows."))])
    return Table(
        resource=resource,
        headers=headers,
        rows=data,
        sheet_rows=sheet_rows,
        encoding=used,
        header_row=index + 1,
        skipped_rows=skipped,
    )


def table_dataset(table: Table):
    """The table as a ``tablib.Dataset`` for django-import-export; ``sheet_rows`` rides along."""
    import tablib

    dataset = tablib.Dataset(*[tuple(row) for row in table.rows], headers=table.headers)
    dataset.sheet_rows = table.sheet_rows
    return dataset


def masked_preamble(line: str) -> str:
    """A line above the header as the report may show it: digits and names after a colon masked.

    Exports from banks and wallets start with lines such as ``姓名：张三`` or
    ``支付宝账户：138…``; the report names the line but never repeats such values.
    """
    label, sep, value = line.replace("：", ":").partition(":")
    if not sep:
        return line if not any(ch.isdigit() for ch in line) else "*" * len(line)
    return f"{label}: {'*' * min(len(value.strip()), 8)}"
