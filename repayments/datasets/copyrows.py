"""PostgreSQL COPY text encoding of mapped holders, done where the rows are made.

Encoding in the mapping workers hands the loader ready bytes: no Python objects
cross the process boundary and the loader only streams them into COPY. The
format is PostgreSQL's text COPY format (``COPY … FROM STDIN``): tab-separated
fields, ``\\N`` for NULL, backslash escapes for backslash, tab, newline and
carriage return (PostgreSQL documentation, "COPY", section "Text Format").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from repayments.datasets.mapping import HolderRows

# Staging table -> (rows, COPY text). The order is the order of the merge.
EncodedChunk = dict[str, tuple[int, bytes]]
STAGE_TABLES = ("stage_customer", "stage_credit_line", "stage_card_binding", "stage_bill", "stage_attempt")

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _field(value: object) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in a COPY row")
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot COPY a {type(value).__name__}")


def copy_line(row: tuple) -> str:
    """One row in COPY text format, with its newline."""
    return "\t".join(_field(value) for value in row) + "\n"


def encode_holders(holders: Iterable[HolderRows]) -> EncodedChunk:
    """COPY text per staging table for ``holders``."""
    lines: dict[str, list[str]] = {table: [] for table in STAGE_TABLES}
    for rows in holders:
        lines["stage_customer"].append(copy_line(rows.customer))
        lines["stage_credit_line"].append(copy_line(rows.credit_line))
        lines["stage_card_binding"].append(copy_line(rows.card_binding))
        lines["stage_bill"].extend(copy_line(bill) for bill in rows.bills)
        lines["stage_attempt"].extend(copy_line(attempt) for attempt in rows.attempts)
    return {table: (len(text), "".join(text).encode()) for table, text in lines.items()}
