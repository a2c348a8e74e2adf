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
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import BinaryIO

from django.conf import settings
from django.utils.translation import gettext as _

from repayments.imports.columns import RESOURCES, header_key, header_lookup
from repayments.imports.report import FileRefused, Problem

FOOTER_WORDS = ("合计", "总计", "小计", "汇总", "共计", "total", "subtotal", "sum", "导出时间", "备注", "说明")
_HEADER_SCAN_ROWS = 30


def limits() -> dict[str, int]:
    """The import limits (``settings.IMPORT_LIMITS``; ``docs/csv.md`` "Limits")."""
    return settings.IMPORT_LIMITS


_LIMIT_SETTINGS = {
    "max_bytes": "IMPORT_MAX_BYTES",
    "xlsx_max_unzipped_bytes": "IMPORT_XLSX_MAX_UNZIPPED_BYTES",
    "max_rows": "IMPORT_MAX_ROWS",
    "max_columns": "IMPORT_MAX_COLUMNS",
    "max_cells": "IMPORT_MAX_CELLS",
}


def over_limit(limit: str, value: int, *, what: str, row: int | None = None) -> FileRefused:
    """The refusal of a file over one of ``IMPORT_LIMITS``, naming the limit and the file's value.

    Args:
        limit: a key of ``settings.IMPORT_LIMITS`` (``max_bytes``, ``max_rows`` …).
        value: what the file has (bytes, rows, columns or cells).
        what: the quantity in words, e.g. ``_("bytes")``.
        row: the spreadsheet row where the limit was passed, if any.
    """
    message = _(
        "The file has %(value)s %(what)s; at most %(limit)s are accepted (setting %(setting)s). "
        "Split the file, or remove the stray cells far below or right of the data."
    ) % {"value": f"{value:,}", "what": what, "limit": f"{limits()[limit]:,}", "setting": _LIMIT_SETTINGS[limit]}
    return FileRefused([Problem(row, "", "", message)])


def check_upload_size(size: int) -> None:
    """Refuse an upload of more than ``IMPORT_LIMITS["max_bytes"]`` before reading it.

    Args:
        size: the upload's size in bytes.

    Raises:
        FileRefused: over the limit (the message names the limit and the size).
    """
    if size > limits()["max_bytes"]:
        raise over_limit("max_bytes", size, what=_("bytes"))


Source = bytes | BinaryIO
_READ_CHUNK = 1 << 20


def _as_file(source: Source) -> BinaryIO:
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source))
    source.seek(0)
    return source


def _size(file: BinaryIO) -> int:
    file.seek(0, io.SEEK_END)
    size = file.tell()
    file.seek(0)
    return size


def _chunks(file: BinaryIO) -> Iterator[bytes]:
    file.seek(0)
    while chunk := file.read(_READ_CHUNK):
        yield chunk


def _decodes(file: BinaryIO, name: str) -> int | None:
    """``None`` when the whole file decodes strictly with codec ``name``, else the line of the first bad byte."""
    decoder = codecs.getincrementaldecoder(name)(errors="strict")
    lines = 1
    chunk = b""
    for chunk in _chunks(file):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            return lines + chunk[: max(exc.start, 0)].count(b"\n")
        lines += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return lines
    return None


def detect_encoding(source: Source, encoding: str = "auto") -> str:
    """The codec that reads the CSV file ``source`` strictly, reading it a chunk at a time.

    Args:
        source: the file's bytes or a seekable binary file.
        encoding: ``auto`` or a Python codec name (``utf-8``, ``gbk``, ``gb18030``, ``utf-16``).

    Raises:
        FileRefused: unknown codec, or bytes the encoding cannot read (the message
            names the line).
    """
    file = _as_file(source)
    head = file.read(4)
    file.seek(0)
    if encoding.lower() != "auto":
        try:
            name = codecs.lookup(encoding).name
        except LookupError:
            message = _("Unknown encoding %(encoding)s.") % {"encoding": repr(encoding)}
            raise FileRefused([Problem(None, "", encoding, message)]) from None
        if name == "utf-8" and head.startswith(codecs.BOM_UTF8):
            name = "utf-8-sig"
        line = _decodes(file, name)
        if line is not None:
            message = _("The file is not %(encoding)s: bytes on line %(line)d cannot be read that way.") % {
                "encoding": encoding,
                "line": line,
            }
            raise FileRefused([Problem(line, "", "", message)])
        return name
    if head.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    else:
        candidates = ["utf-8", "gb18030"]
    for name in candidates:
        if _decodes(file, name) is None:
            return name
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


def _unreadable_xlsx(reason: object) -> FileRefused:
    message = _("This is not a readable .xlsx file (%(reason)s).") % {"reason": reason}
    return FileRefused([Problem(None, "", "", message)])


def xlsx_unzipped_size(source: Source) -> int:
    """The bytes an XLSX holds once unzipped, from the ZIP directory (nothing is inflated).

    Raises:
        FileRefused: not a ZIP file.
    """
    try:
        with zipfile.ZipFile(_as_file(source)) as archive:
            return sum(item.file_size for item in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _unreadable_xlsx(exc) from None


def parsed_size(source: Source, filename: str = "") -> int:
    """The bytes a parser reads from ``source``: its size, or for an XLSX its unzipped size.

    A compressed workbook of 1 MB can hold 50 MB of sheet XML: the web process decides
    by this whether it may parse an upload itself (``IMPORT_LIMITS["inline_max_bytes"]``).
    An XLSX that is not a readable ZIP counts its own size (it is refused at once anyway).
    """
    file = _as_file(source)
    size = _size(file)
    if not is_xlsx(file.read(8), filename):
        file.seek(0)
        return size
    file.seek(0)
    try:
        return max(size, xlsx_unzipped_size(file))
    except FileRefused:
        return size
    finally:
        file.seek(0)


def _xlsx_rows(file: BinaryIO) -> Iterator[list[str]]:
    """The first sheet's rows as text, streamed (openpyxl read-only), within ``IMPORT_LIMITS``.

    The sheet's declared dimension (``<dimension ref="A1:XFD1048576"/>``) is checked before
    the first row is read; then each row is read as long as its own cells (openpyxl
    would pad every row to the dimension's width, so a single cell at row 200,000,
    column 200 cost 40 million empty cells, or cut rows to a smaller dimension), and
    checked as it comes.
    """
    import openpyxl

    unzipped = xlsx_unzipped_size(file)
    if unzipped > limits()["xlsx_max_unzipped_bytes"]:
        raise over_limit("xlsx_max_unzipped_bytes", unzipped, what=_("bytes once unzipped"))
    file.seek(0)
    try:
        book = openpyxl.load_workbook(file, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise _unreadable_xlsx(exc) from None
    try:
        sheet = book.worksheets[0]
        declared_rows, declared_columns = sheet.max_row or 0, sheet.max_column or 0
        if declared_columns > limits()["max_columns"]:
            raise over_limit("max_columns", declared_columns, what=_("columns (sheet dimension)"))
        if declared_rows > limits()["max_rows"]:
            raise over_limit("max_rows", declared_rows, what=_("rows (sheet dimension)"))
        if declared_rows * declared_columns > limits()["max_cells"]:
            raise over_limit("max_cells", declared_rows * declared_columns, what=_("cells (sheet dimension)"))
        # Read each row as long as its own cells, not padded (or cut) to the declared
        # dimension: a lying dimension can neither hide a cell nor cost empty ones.
        sheet.reset_dimensions()
        max_rows, max_columns = limits()["max_rows"], limits()["max_columns"]
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            if number > max_rows:
                raise over_limit("max_rows", number, what=_("rows at least"), row=number)
            if len(row) > max_columns:
                if any(value is not None for value in row[max_columns:]):
                    raise over_limit("max_columns", len(row), what=_("columns"), row=number)
                row = row[:max_columns]
            yield [_xlsx_cell(value) for value in row]
    finally:
        book.close()


def _csv_rows(file: BinaryIO, encoding: str) -> Iterator[list[str]]:
    """The CSV file's rows, streamed from ``file`` (comma- or tab-separated, by the first line)."""
    file.seek(0)
    head = codecs.getincrementaldecoder(encoding)(errors="replace").decode(file.read(64 * 1024))
    first_line = head.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    file.seek(0)
    text = io.TextIOWrapper(file, encoding=encoding, newline="")
    max_rows = limits()["max_rows"]
    try:
        for number, row in enumerate(csv.reader(text, delimiter=delimiter), start=1):
            if number > max_rows:
                raise over_limit("max_rows", number, what=_("rows at least"), row=number)
            yield row
    except csv.Error as exc:
        message = _("The CSV file is malformed: %(reason)s.") % {"reason": exc}
        raise FileRefused([Problem(None, "", "", message)]) from None
    finally:
        text.detach()  # the caller owns the file


def is_xlsx(content: bytes, filename: str = "") -> bool:
    """Whether the upload is an XLSX workbook (by name or by its ZIP signature); ``content``: its first bytes."""
    return filename.lower().endswith((".xlsx", ".xlsm")) or content.startswith(b"PK\x03\x04")


def _blank(row: list[str]) -> bool:
    return all(not (cell or "").strip() for cell in row)


def _is_footer(row: list[str]) -> bool:
    first = next((cell.strip() for cell in row if cell and cell.strip()), "")
    key = header_key(first)
    return any(key.startswith(header_key(word)) for word in FOOTER_WORDS)


# Tables up to this many data rows are kept in memory; longer ones are read again from
# the file whenever they are walked (``Table.iter_rows``), so memory stays flat.
KEEP_ROWS = 10_000


@dataclass
class Table:
    """A file as text cells: ``headers`` are English column names.

    A small table holds its rows (``rows``, and ``sheet_rows``: the spreadsheet row number
    of each); a long one (more than ``KEEP_ROWS``) holds ``rows = None`` and reads them
    again from its file on each :meth:`iter_rows` (the file must stay open meanwhile).
    ``row_count`` is the number of data rows either way.
    """

    resource: str
    headers: list[str]
    rows: list[list[str]] | None
    sheet_rows: list[int] | None
    encoding: str
    header_row: int
    skipped_rows: list[int] = field(default_factory=list)
    row_count: int = -1
    reread: Callable[[], Iterator[tuple[int, list[str]]]] | None = None

    def __post_init__(self) -> None:
        if self.row_count < 0:
            self.row_count = len(self.rows or [])

    def iter_rows(self) -> Iterator[tuple[int, list[str]]]:
        """``(sheet row, cells)`` of every data row, in file order."""
        if self.rows is not None:
            yield from zip(self.sheet_rows or [], self.rows, strict=True)
        elif self.reread is not None:
            yield from self.reread()

    def held(self) -> tuple[list[int], list[list[str]]]:
        """``(sheet_rows, rows)`` of a table that holds its rows, as every :meth:`subset` does.

        Raises:
            ValueError: a long table, whose rows are read again from its file (use :meth:`iter_rows`).
        """
        if self.rows is None or self.sheet_rows is None:
            raise ValueError(f"This {self.resource} table of {self.row_count} rows does not hold them in memory.")
        return self.sheet_rows, self.rows

    def subset(self, rows: list[list[str]], sheet_rows: list[int]) -> Table:
        """An in-memory table with these rows and the same headers."""
        return Table(
            resource=self.resource,
            headers=self.headers,
            rows=rows,
            sheet_rows=sheet_rows,
            encoding=self.encoding,
            header_row=self.header_row,
        )


def read_table(
    content: Source,
    *,
    resource: str,
    filename: str = "",
    encoding: str = "auto",
    header_row: int | None = None,
    skip_footer: bool = False,
) -> Table:
    """Read ``content`` (CSV or XLSX) as a table for ``resource``, within ``IMPORT_LIMITS``.

    The file is read as a stream; its rows are kept only when there are at most
    ``KEEP_ROWS`` of them (see :class:`Table`).

    Args:
        content: the uploaded bytes, or a seekable binary file (kept open while the table is used).
        resource: ``customers``, ``credit-lines``, ``card-bindings``, ``bills`` or ``repayment-attempts``.
        filename: the uploaded name (``.xlsx`` selects the workbook reader).
        encoding: ``auto`` or a codec name (CSV only).
        header_row: the spreadsheet row (1-based) holding the headers; rows above are skipped.
        skip_footer: skip a summary row (合计/Total…) and everything after it instead of refusing.

    Raises:
        FileRefused: empty file, over a limit (bytes, unzipped bytes, rows, columns, cells:
            the message names the limit and the file's value), no data rows, header not
            found or not on the given row, unknown/duplicate/missing columns, a footer
            row, extra cells.
    """
    if resource not in RESOURCES:
        message = _("Unknown resource; use one of %(resources)s.") % {"resources": ", ".join(RESOURCES)}
        raise FileRefused([Problem(None, "", resource, message)])
    file = _as_file(content)
    size = _size(file)
    check_upload_size(size)
    head = file.read(_READ_CHUNK)
    file.seek(0)
    if not head.strip() and size <= len(head):
        raise FileRefused([Problem(None, "", "", _("The file is empty."))])
    if is_xlsx(head, filename):
        used = "xlsx"

        def raw_rows() -> Iterator[list[str]]:
            return _xlsx_rows(file)
    else:
        used = detect_encoding(file, encoding)

        def raw_rows() -> Iterator[list[str]]:
            return _csv_rows(file, used)

    lookup = header_lookup(resource)
    known = {column.name: column for column in RESOURCES[resource]}
    numbered = enumerate(raw_rows())
    index, header_cells = _find_header(numbered, lookup, header_row)

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

    width = len(headers)
    data: list[list[str]] | None = []
    sheet_rows: list[int] | None = []
    skipped: list[int] = []
    count = 0
    footer_at = None
    last_row = index + 1
    for position, row in numbered:
        offset = last_row = position + 1
        if footer_at is not None:
            continue  # counting the rows below a skipped footer
        if _blank(row):
            continue
        if _is_footer(row):
            if skip_footer:
                footer_at = offset
                continue
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
        count += 1
        if data is not None and sheet_rows is not None:
            data.append(_fit(row, width))
            sheet_rows.append(offset)
            if count > KEEP_ROWS:
                data = sheet_rows = None  # a long file: walked again from the file when needed
    if footer_at is not None:
        skipped = list(range(footer_at, last_row + 1))
    if problems:
        raise FileRefused(problems)
    if not count:
        raise FileRefused([Problem(None, "", "", _("The file has a header row but no data rows."))])

    def reread() -> Iterator[tuple[int, list[str]]]:
        for position, row in islice(enumerate(raw_rows()), index + 1, None):
            if _blank(row):
                continue
            if _is_footer(row):
                return
            yield position + 1, _fit(row, width)

    return Table(
        resource=resource,
        headers=headers,
        rows=data,
        sheet_rows=sheet_rows,
        encoding=used,
        header_row=index + 1,
        skipped_rows=skipped,
        row_count=count,
        reread=reread,
    )


def _fit(row: list[str], width: int) -> list[str]:
    return [(cell or "") for cell in row[:width]] + [""] * (width - len(row))


def _find_header(
    numbered: Iterator[tuple[int, list[str]]], lookup: dict[str, str], header_row: int | None
) -> tuple[int, list[str]]:
    """The header's 0-based row index and cells; ``numbered`` is left just after it.

    Raises:
        FileRefused: no non-blank row, the given row does not exist, or the first
            non-blank row is not a header while a later one (within 30 rows) is.
    """
    if header_row is not None:
        for position, row in numbered:
            if position == header_row - 1:
                return position, row
        raise FileRefused([Problem(header_row, "", "", _("The file has no such row."))])
    for position, row in numbered:
        if _blank(row):
            continue
        if any(header_key(cell) in lookup for cell in row):
            return position, row
        # Not a header: a bank's preamble above it? Look a few rows further.
        for later, candidate in islice(numbered, _HEADER_SCAN_ROWS - 1):
            if sum(header_key(cell) in lookup for cell in candidate) >= 2:
                raise FileRefused(
                    [
                        Problem(
                            position + 1,
                            "",
                            masked_preamble(",".join(row)[:80]),
                            _(
                                "The column headers are on row %(row)d, not on the first row. Delete the rows "
                                "above them, or import with header row %(row)d (--header-row %(row)d)."
                            )
                            % {"row": later + 1},
                        )
                    ]
                )
        return position, row  # reported below as unknown columns
    raise FileRefused([Problem(None, "", "", _("The file is empty."))])


def table_dataset(table: Table):
    """The table as a ``tablib.Dataset`` for django-import-export; ``sheet_rows`` rides along.

    The whole table in memory: the import service passes chunks (``Table.subset``); the
    admin's import, which needs one dataset, passes the file (``docs/csv.md``).
    """
    import tablib

    numbered = list(table.iter_rows())
    dataset = tablib.Dataset(*[tuple(cells) for _number, cells in numbered], headers=table.headers)
    dataset.sheet_rows = [number for number, _cells in numbered]
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
