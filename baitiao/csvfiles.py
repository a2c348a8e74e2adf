"""CSV files for people: formula-safe cells, UTF-8 with a BOM, streamed.

Spreadsheet formula injection (CSV injection): a cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return is run as a formula by Excel and
LibreOffice; the OWASP recommendation ("CSV Injection") is to prefix it with an
apostrophe, which spreadsheets show as text. A plain number (``-1234.50``,
``+8613800138000``) cannot run anything, so it is left alone: negative amounts
stay numbers and phone numbers stay intact.

Every CSV the product writes (console exports, back-office exports, the
dashboard, the audit trail, the bureau ledger, import error reports) goes through
:func:`csv_lines` so that the BOM, the line ending and the neutralising are the
same everywhere.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice

from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")
BOM = "\ufeff"  # Excel on Chinese Windows reads UTF-8 only with it


def neutralize(value: object) -> object:
    """``value`` made safe to open in a spreadsheet; non-strings are returned unchanged.

    ``=HYPERLINK("http://x")`` → ``'=HYPERLINK("http://x")``; ``-12.50`` and
    ``+8613800138000`` are unchanged.
    """
    if not isinstance(value, str) or not value.startswith(_TRIGGERS):
        return value
    if _PLAIN_NUMBER.match(value):
        return value
    return "'" + value


def csv_cell(value: object) -> str:
    """One cell as text: ``None`` empty, a dict or list as sorted JSON, formulas neutralised."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True, cls=DjangoJSONEncoder)
    return str(neutralize(str(value)))


class _Echo:
    """A file-like object whose ``write`` returns the line (csv.writer's streaming idiom)."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Sequence[object], rows: Iterable[Iterable[object]], *, bom: bool = True) -> Iterator[str]:
    """The CSV text, one line at a time: the header, then each row (cells through :func:`csv_cell`).

    Lines end in CRLF (RFC 4180). ``bom``: start with the UTF-8 byte-order mark.
    """
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    yield (BOM if bom else "") + writer.writerow(csv_cell(cell) for cell in header)
    for row in rows:
        yield writer.writerow(csv_cell(cell) for cell in row)


def csv_bytes(
    header: Sequence[object], rows: Iterable[Iterable[object]], *, bom: bool = True, lines_per_chunk: int = 2000
) -> Iterator[bytes]:
    """:func:`csv_lines` as UTF-8 bytes, ``lines_per_chunk`` lines per chunk (for a file or a stream).

    The first chunk holds the header (with the BOM), so a streamed response starts at once.
    """
    lines = csv_lines(header, rows, bom=bom)
    yield next(lines).encode()
    while batch := list(islice(lines, lines_per_chunk)):
        yield "".join(batch).encode()


def csv_response(filename: str, lines: Iterable[str] | Iterable[bytes]) -> StreamingHttpResponse:
    """A streamed ``text/csv`` download of ``lines`` (:func:`csv_lines`, or their UTF-8 bytes) named ``filename``."""
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
