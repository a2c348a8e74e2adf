"""Reading the UCI "Default of Credit Card Clients" file strictly.

The file (``repayments/data/uci_credit_card_default.csv``) is the Kaggle-format
export: CRLF line ends, an unquoted header, integers that R's ``write.csv``
sometimes wrote in scientific notation (``5e+05``). Every value is read as an
exact integer; anything else stops the load with the file, line and column.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "uci_credit_card_default.csv"

PAY_STATUS_COLUMNS = ("PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6")  # Sep … Apr 2005
BILL_COLUMNS = tuple(f"BILL_AMT{n}" for n in range(1, 7))  # Sep … Apr 2005
PAY_AMOUNT_COLUMNS = tuple(f"PAY_AMT{n}" for n in range(1, 7))  # Sep … Apr 2005
COLUMNS = (
    "ID",
    "LIMIT_BAL",
    "SEX",
    "EDUCATION",
    "MARRIAGE",
    "AGE",
    *PAY_STATUS_COLUMNS,
    *BILL_COLUMNS,
    *PAY_AMOUNT_COLUMNS,
    "default.payment.next.month",
)


class DatasetError(ValueError):
    """A problem in a dataset file, located by file, line and column."""

    def __init__(self, path: Path | str, line: int | None, column: str | None, message: str) -> None:
        self.path, self.line, self.column = str(path), line, column
        where = self.path
        if line is not None:
            where += f", line {line}"
        if column:
            where += f", column {column}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class UciHolder:
    """One card holder as published. Amounts are whole New Taiwan dollars.

    Tuples run from the latest month (September 2005) back to April 2005.
    """

    id: int
    limit: int  # LIMIT_BAL, NT$
    sex: int  # 1 male, 2 female
    education: int  # 1–4 documented; 0, 5, 6 occur undocumented
    marriage: int  # 1–3 documented; 0 occurs undocumented
    age: int  # years, in 2005
    pay_status: tuple[int, ...]  # PAY_0, PAY_2..PAY_6: -2 no use, -1 paid duly, 0 revolving, n months late
    bill_amounts: tuple[int, ...]  # BILL_AMT1..6, may be negative (credit balance)
    pay_amounts: tuple[int, ...]  # PAY_AMT1..6, may exceed the bill
    defaulted_next_month: bool


def _exact_int(raw: str, path: Path, line: int, column: str) -> int:
    text = raw.strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise DatasetError(path, line, column, f"not a number: {raw!r}") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise DatasetError(path, line, column, f"not a whole number: {raw!r}")
    return int(number)


def read_uci_holders(path: Path | str = DEFAULT_PATH) -> list[UciHolder]:
    """Parse and validate the whole file before anything is written.

    Args:
        path: the CSV file; defaults to the copy shipped with the project.

    Returns:
        The holders in file order.

    Raises:
        DatasetError: the file is missing or unreadable, the header differs from
            the published columns, a row has the wrong number of columns, a value
            is not an exact integer, an ID repeats, or a limit is not positive.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, None, None, "file not found")
    holders: list[UciHolder] = []
    seen: dict[int, int] = {}
    try:
        with path.open(encoding="ascii", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise DatasetError(path, 1, None, "the file is empty")
            header = [name.strip().strip('"') for name in header]
            if tuple(header) != COLUMNS:
                raise DatasetError(
                    path, 1, None, f"unexpected header; expected the {len(COLUMNS)} UCI columns {', '.join(COLUMNS)}"
                )
            for row in reader:
                line = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # a trailing blank line
                if len(row) != len(COLUMNS):
                    raise DatasetError(path, line, None, f"expected {len(COLUMNS)} columns, found {len(row)}")
                values = {name: _exact_int(raw, path, line, name) for name, raw in zip(COLUMNS, row, strict=True)}
                holder_id = values["ID"]
                if holder_id in seen:
                    raise DatasetError(path, line, "ID", f"ID {holder_id} repeats line {seen[holder_id]}")
                seen[holder_id] = line
                if values["LIMIT_BAL"] <= 0:
                    raise DatasetError(path, line, "LIMIT_BAL", f"credit limit must be positive: {row[1]!r}")
                holders.append(
                    UciHolder(
                        id=holder_id,
                        limit=values["LIMIT_BAL"],
                        sex=values["SEX"],
                        education=values["EDUCATION"],
                        marriage=values["MARRIAGE"],
                        age=values["AGE"],
                        pay_status=tuple(values[c] for c in PAY_STATUS_COLUMNS),
                        bill_amounts=tuple(values[c] for c in BILL_COLUMNS),
                        pay_amounts=tuple(values[c] for c in PAY_AMOUNT_COLUMNS),
                        defaulted_next_month=values["default.payment.next.month"] == 1,
                    )
                )
    except UnicodeDecodeError as exc:
        raise DatasetError(path, None, None, f"not an ASCII CSV file ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DatasetError(path, None, None, f"malformed CSV: {exc}") from None
    if not holders:
        raise DatasetError(path, None, None, "no data rows")
    return holders
