"""The error report: one line per refused cell, numbered as the spreadsheet shows it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from django.utils.translation import gettext as _
from django.utils.translation import pgettext


@dataclass(frozen=True)
class Problem:
    """One refused cell (or row, or file).

    ``row`` is the spreadsheet's row number (the header is row 1, the first data
    row 2), ``None`` for the whole file; ``column`` is the English column name
    (``""`` for the whole row); ``value`` is the raw cell text as read.
    """

    row: int | None
    column: str
    value: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def __str__(self) -> str:
        """``row 3, column due_date (value '2024-02-30'): message``, in the active language."""
        where = _("file") if self.row is None else _("row %(row)d") % {"row": self.row}
        if self.column:
            where = _("%(where)s, column %(column)s") % {"where": where, "column": self.column}
        if self.value:
            return _("%(where)s (value %(value)s): %(message)s") % {
                "where": where,
                "value": repr(self.value),
                "message": self.message,
            }
        return _("%(where)s: %(message)s") % {"where": where, "message": self.message}


def _mask_middle(value: str) -> str:
    """First character and last four kept: enough to find the cell, not enough to reuse it."""
    from baitiao.masking import mask_national_id

    return mask_national_id(value)


def masked_value(column: str, value: str) -> str:
    """The raw cell as the report may show it: personal columns masked (``docs/csv.md``).

    Reports are stored (``ImportJob.error_report``) and downloaded, so they follow the
    export rule: names, phones, IDs and card numbers are masked.
    """
    from baitiao.masking import mask_name

    if not value or column not in PERSONAL_COLUMNS:
        return value
    return mask_name(value) if column == "name" else _mask_middle(value)


PERSONAL_COLUMNS = frozenset({"name", "phone", "national_id", "reserved_phone", "card_number"})


class FileRefused(ValueError):
    """The file cannot be read as a table for this resource; ``problems`` say why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def problems_csv(problems: Iterable[Problem]) -> bytes:
    """The report as CSV (UTF-8 with BOM so Excel opens the Chinese text): row, column, value, message.

    Written by the product's one CSV writer (``baitiao.csvfiles``: BOM, CRLF, formulas
    neutralised in every cell).
    """
    from baitiao.csvfiles import csv_bytes

    # The header is translated: the console reads the report by position (``repayments.views.data.import_job``).
    header = [
        pgettext("error report header", "row"),
        pgettext("error report header", "column"),
        pgettext("error report header", "value"),
        pgettext("error report header", "message"),
    ]
    rows = (["" if p.row is None else p.row, p.column, p.value, p.message] for p in problems)
    return b"".join(csv_bytes(header, rows))
