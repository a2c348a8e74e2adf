"""The fast path for big bills and repayment-attempts files: COPY, set-based checks, one merge.

1. Each cell is parsed in Python by the same rules as the resources
   (``repayments.imports.cells``), with a shortcut for values already in
   canonical form (``1234.50``, ``2024-03-20``) and a cache for the few distinct
   dates, months and status words a file holds.
2. The canonical rows are COPYed into a temporary staging table together with
   their spreadsheet row numbers.
3. The rules that involve other rows or the database run as SQL over the whole
   table: repeated keys, unknown customers or bills, a bill of another customer,
   due date before statement date, amount due vs balance, minimum due, one bill
   per customer and month, a paid bill that still owes, a carried-forward one with
   nothing to carry, one attempt in flight per bill.
4. Without problems (or with "apply valid rows", after deleting the bad rows)
   one ``INSERT … ON CONFLICT (natural key) DO UPDATE … WHERE (stored) IS DISTINCT
   FROM (new)`` merges the table: a row equal to the stored one is not written (its
   ``updated_at`` stays) and is counted as unchanged.
5. The bills written are aged at once and their customers' available credit is
   recomputed (``repayments.services.imports.bills_import_settle``).

The caller (``repayments.services.imports.data_import``) holds the transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

from django.db import connection, transaction
from django.utils.translation import gettext_lazy, pgettext_lazy

from repayments.gateway.taxonomy import FAILURE_FAMILIES
from repayments.imports import cells
from repayments.imports.cells import CellError
from repayments.imports.columns import ATTEMPT_STATUS_WORDS, BILL_STATUS_WORDS, CHANNEL_WORDS
from repayments.imports.reading import Table
from repayments.imports.report import Problem
from repayments.models import (
    IN_FLIGHT_ATTEMPT_STATUSES,
    OPEN_BILL_STATUSES,
    AttemptStatus,
    BillStatus,
    Channel,
    CreditLineStatus,
    FailureFamily,
    outstanding_sql,
)
from repayments.services.imports import bills_import_settle, new_lines_note, settled_note

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

_CANONICAL_AMOUNT = re.compile(r"^[0-9]{1,8}(?:\.[0-9]{1,2})?$")  # ASCII only; below cells.MAX_AMOUNT
_CANONICAL_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-./]{0,63}$", re.ASCII)
_MAX_PROBLEMS = 10_000
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _cached(parse: Callable[[str], object]) -> Callable[[str], str]:
    @lru_cache(maxsize=4096)
    def run(text: str) -> str:
        value = parse(text)
        return value.isoformat() if hasattr(value, "isoformat") else str(value)

    return run


def _code(what: StrOrPromise, max_length: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if len(text) <= max_length and _CANONICAL_CODE.match(text):
            return text
        return cells.parse_code(text, what=what, max_length=max_length)

    return parse


def _amount(what: StrOrPromise, *, allow_negative: bool = False, optional: bool = False) -> Callable[[str], str | None]:
    def parse(text: str) -> str | None:
        if _CANONICAL_AMOUNT.match(text):
            return text
        if optional and not cells.normalize(text):
            return None
        return str(cells.parse_amount(text, what=what, allow_negative=allow_negative))

    return parse


def _optional(parse: Callable[[str], str]) -> Callable[[str], str | None]:
    def run(text: str) -> str | None:
        return parse(text) if cells.normalize(text) else None

    return run


_DATE = _cached(cells.parse_date)
_PERIOD = _cached(cells.parse_period)


@lru_cache(maxsize=65536)
def _moment(text: str) -> str:
    return cells.parse_datetime(text).isoformat()


def _word(words: dict[str, str], what: StrOrPromise) -> Callable[[str], str]:
    return _cached(lambda text: cells.parse_choice(text, what=what, words=words))


_PARSERS: dict[str, dict[str, Callable[[str], str | None]]] = {
    "bills": {
        "bill_no": _code(pgettext_lazy("import cell", "bill_no"), 40),
        "customer_no": _code(pgettext_lazy("import cell", "customer_no"), 32),
        "period": _PERIOD,
        "statement_date": _DATE,
        "due_date": _DATE,
        "statement_balance": _amount(
            pgettext_lazy("import cell", "statement balance"), allow_negative=True, optional=True
        ),
        "amount_due": _amount(pgettext_lazy("import cell", "amount due")),
        "minimum_due": _amount(pgettext_lazy("import cell", "minimum due")),
        "amount_paid": _amount(pgettext_lazy("import cell", "amount paid"), optional=True),
        "status": _optional(_word(BILL_STATUS_WORDS, pgettext_lazy("import cell", "status"))),
    },
    "repayment-attempts": {
        "attempt_no": _code(pgettext_lazy("import cell", "attempt_no"), 64),
        "bill_no": _code(pgettext_lazy("import cell", "bill_no"), 40),
        "channel": _optional(_word(CHANNEL_WORDS, pgettext_lazy("import cell", "channel"))),
        "amount": _amount(pgettext_lazy("import cell", "amount")),
        "status": _word(ATTEMPT_STATUS_WORDS, pgettext_lazy("import cell", "status")),
        "failure_code": _optional(_code(pgettext_lazy("import cell", "failure code"), 40)),
        "requested_at": _moment,
        "completed_at": _optional(_moment),
    },
}

_STAGING = {
    "bills": """sheet_row integer, bill_no text, customer_no text, period date, statement_date date,
        due_date date, statement_balance numeric(14,2), amount_due numeric(14,2), minimum_due numeric(14,2),
        amount_paid numeric(14,2), status text""",
    "repayment-attempts": """sheet_row integer, attempt_no text, bill_no text, channel text,
        amount numeric(14,2), status text, failure_code text, requested_at timestamptz,
        completed_at timestamptz""",
}

# Statuses reach the SQL below as parameters.
_PARAMS: dict[str, str | list[str]] = {
    "pending": BillStatus.PENDING.value,
    "paid": BillStatus.PAID.value,
    "carried_forward": BillStatus.CARRIED_FORWARD.value,
    "open": [str(status) for status in OPEN_BILL_STATUSES],
    "in_flight": [str(status) for status in IN_FLIGHT_ATTEMPT_STATUSES],
    "failed": AttemptStatus.FAILED.value,
    "finished": [AttemptStatus.SUCCEEDED.value, AttemptStatus.FAILED.value],
    "auto_debit": Channel.AUTO_DEBIT.value,
    "line_active": CreditLineStatus.ACTIVE.value,
    "family_other": FailureFamily.OTHER.value,
}

# The bills rows as they will be stored (alias ``r``): an empty optional cell keeps the
# stored value (or takes the default); pending vs overdue of a bill already open is the
# aging's verdict, not the file's (the bills written are aged right after the merge); the
# stored late fee is owed on top of the amount due; ``carried_forward`` is 0 so that
# ``outstanding_sql("r")`` is the statement's unpaid rest (what a carried-forward
# statement carries).
_BILL_ROWS = """(
    SELECT s.sheet_row, s.bill_no, s.customer_no, s.period, s.statement_date, s.due_date,
           coalesce(s.statement_balance, e.statement_balance, s.amount_due) AS statement_balance,
           s.amount_due, s.minimum_due, coalesce(s.amount_paid, e.amount_paid, 0) AS amount_paid,
           CASE WHEN s.status = ANY(%(open)s) AND e.status = ANY(%(open)s) THEN e.status
                ELSE coalesce(s.status, e.status, %(pending)s) END AS status,
           coalesce(e.late_fee, 0) AS late_fee, coalesce(e.late_fee_waived, 0) AS late_fee_waived,
           0 AS carried_forward, e.due_date AS stored_due, e.original_due_date AS stored_original
      FROM stage s LEFT JOIN repayments_bill e ON e.bill_no = s.bill_no) AS r"""
_REST = outstanding_sql("r")

# (column, message, SQL returning sheet_row, the offending value and a second value) — set-based
# checks. Messages take %(value)s, %(quoted)s (the value as Python shows a string) and %(rows)s.
_CHECKS = {
    "bills": [
        (
            "bill_no",
            gettext_lazy(
                "bill_no %(value)s appears more than once in this file (rows %(rows)s); each must be on one row only."
            ),
            """SELECT sheet_row, bill_no, rows FROM (
                   SELECT sheet_row, bill_no, count(*) OVER w AS n, string_agg(sheet_row::text, ', ') OVER w AS rows
                   FROM stage WINDOW w AS (PARTITION BY bill_no)) d WHERE n > 1""",
        ),
        (
            "customer_no",
            gettext_lazy("No customer has customer_no %(quoted)s; import the customer first."),
            """SELECT s.sheet_row, s.customer_no, '' FROM stage s
               LEFT JOIN repayments_customer c ON c.customer_no = s.customer_no WHERE c.id IS NULL""",
        ),
        (
            "customer_no",
            gettext_lazy("Bill %(rows)s belongs to another customer."),
            """SELECT s.sheet_row, s.customer_no, s.bill_no FROM stage s
               JOIN repayments_bill b ON b.bill_no = s.bill_no
               JOIN repayments_customer c ON c.customer_no = s.customer_no WHERE b.customer_id <> c.id""",
        ),
        # Money the engine has collected is never taken back by a file, and a closed
        # bill is never reopened (it would be debited again).
        (
            "amount_paid",
            gettext_lazy(
                "The file says %(value)s paid, but %(rows)s has already been collected on this bill; "
                "an import never lowers the amount paid."
            ),
            """SELECT s.sheet_row, s.amount_paid::text, b.amount_paid::text FROM stage s
               JOIN repayments_bill b ON b.bill_no = s.bill_no
               WHERE s.amount_paid IS NOT NULL AND s.amount_paid < b.amount_paid""",
        ),
        (
            "status",
            gettext_lazy("The bill is already %(rows)s; an import cannot reopen it as %(value)s."),
            """SELECT s.sheet_row, s.status, b.status FROM stage s
               JOIN repayments_bill b ON b.bill_no = s.bill_no
               WHERE NOT b.status = ANY(%(open)s) AND s.status = ANY(%(open)s)""",
        ),
        (
            "status",
            gettext_lazy(
                "The bill is carried forward, but nothing is left to carry: the amount paid %(rows)s covers "
                "the amount due and any unwaived late fee. Mark it paid."
            ),
            f"""SELECT sheet_row, status, amount_paid::text FROM {_BILL_ROWS}
                WHERE status = %(carried_forward)s AND {_REST} = 0""",  # noqa: S608 - constant SQL
        ),
        (
            "amount_paid",
            gettext_lazy(
                "The bill is marked paid, but the amount paid %(value)s is below the %(rows)s it owes "
                "(amount due plus unwaived late fee). Correct the amount paid or the status."
            ),
            f"""SELECT sheet_row, amount_paid::text, (amount_paid + {_REST})::text FROM {_BILL_ROWS}
                WHERE status = %(paid)s AND {_REST} > 0""",  # noqa: S608 - constant SQL
        ),
        (
            "due_date",
            gettext_lazy("The due date %(value)s is before the statement date %(rows)s."),
            "SELECT sheet_row, due_date::text, statement_date::text FROM stage WHERE due_date < statement_date",
        ),
        (
            "amount_due",
            gettext_lazy(
                "The amount due %(value)s must equal the statement balance %(rows)s (or 0.00 when it is negative)."
            ),
            """SELECT sheet_row, amount_due::text, coalesce(statement_balance, amount_due)::text FROM stage
               WHERE amount_due <> greatest(coalesce(statement_balance, amount_due), 0)""",
        ),
        (
            "minimum_due",
            gettext_lazy("The minimum due %(value)s is above the amount due %(rows)s."),
            "SELECT sheet_row, minimum_due::text, amount_due::text FROM stage WHERE minimum_due > amount_due",
        ),
        (
            "period",
            gettext_lazy("The customer already has bill %(rows)s for this month."),
            """SELECT s.sheet_row, to_char(s.period, 'YYYY-MM'), b.bill_no FROM stage s
               JOIN repayments_customer c ON c.customer_no = s.customer_no
               JOIN repayments_bill b ON b.customer_id = c.id AND b.period = s.period AND b.bill_no <> s.bill_no""",
        ),
        (
            "period",
            gettext_lazy("customer_no + period %(value)s appears more than once in this file (rows %(rows)s)."),
            """SELECT s.sheet_row, to_char(s.period, 'YYYY-MM'), d.rows FROM stage s
               JOIN (SELECT customer_no, period, string_agg(sheet_row::text, ', ') AS rows FROM stage
                     GROUP BY customer_no, period HAVING count(DISTINCT bill_no) > 1) d
                 ON d.customer_no = s.customer_no AND d.period = s.period""",
        ),
    ],
    "repayment-attempts": [
        (
            "attempt_no",
            gettext_lazy(
                "attempt_no %(value)s appears more than once in this file (rows %(rows)s); "
                "each must be on one row only."
            ),
            """SELECT sheet_row, attempt_no, rows FROM (
                   SELECT sheet_row, attempt_no, count(*) OVER w AS n, string_agg(sheet_row::text, ', ') OVER w AS rows
                   FROM stage WINDOW w AS (PARTITION BY attempt_no)) d WHERE n > 1""",
        ),
        (
            "bill_no",
            gettext_lazy("No bill has bill_no %(quoted)s; import the bill first."),
            """SELECT s.sheet_row, s.bill_no, '' FROM stage s
               LEFT JOIN repayments_bill b ON b.bill_no = s.bill_no WHERE b.id IS NULL""",
        ),
        (
            "bill_no",
            gettext_lazy("Attempt %(rows)s belongs to another bill."),
            """SELECT s.sheet_row, s.bill_no, s.attempt_no FROM stage s
               JOIN repayments_repaymentattempt a ON a.attempt_no = s.attempt_no
               JOIN repayments_bill b ON b.bill_no = s.bill_no WHERE a.bill_id <> b.id""",
        ),
        (
            "amount",
            gettext_lazy("The amount of an attempt must be above zero."),
            "SELECT sheet_row, amount::text, '' FROM stage WHERE amount <= 0",
        ),
        (
            "failure_code",
            gettext_lazy("A failed attempt needs the bank's failure code."),
            "SELECT sheet_row, '', '' FROM stage WHERE status = %(failed)s AND failure_code IS NULL",
        ),
        (
            "completed_at",
            gettext_lazy("A succeeded or failed attempt needs the time it completed."),
            "SELECT sheet_row, '', '' FROM stage WHERE status = ANY(%(finished)s) AND completed_at IS NULL",
        ),
        (
            "completed_at",
            gettext_lazy("The attempt completed before it was requested."),
            "SELECT sheet_row, completed_at::text, '' FROM stage WHERE completed_at < requested_at",
        ),
        (
            "status",
            gettext_lazy("A bill has at most one attempt in flight; another is %(rows)s."),
            """SELECT s.sheet_row, s.status, coalesce(a.attempt_no, d.rows) FROM stage s
               JOIN repayments_bill b ON b.bill_no = s.bill_no
               LEFT JOIN repayments_repaymentattempt a ON a.bill_id = b.id AND a.attempt_no <> s.attempt_no
                    AND a.status = ANY(%(in_flight)s)
               LEFT JOIN (SELECT bill_no, string_agg(sheet_row::text, ', ') AS rows, count(*) AS n FROM stage
                          WHERE status = ANY(%(in_flight)s) GROUP BY bill_no) d
                    ON d.bill_no = s.bill_no AND d.n > 1
               WHERE s.status = ANY(%(in_flight)s) AND (a.id IS NOT NULL OR d.n > 1)""",
        ),
    ],
}

_BILL_COLUMNS = (
    "period, statement_date, due_date, original_due_date, statement_balance, amount_due, minimum_due, "
    "amount_paid, status, carried_forward"
)
_ATTEMPT_COLUMNS = "channel, amount, status, failure_code, failure_family, requested_at, completed_at"


def _stored(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{name.strip()}" for name in columns.split(","))


# Each upsert returns (created, updated, ids of the bills written — NULL for attempts); a
# row equal to the stored one is not updated (``WHERE … IS DISTINCT FROM``), so it keeps
# its ``updated_at``.
_MERGE = {
    "bills": """
    WITH lines AS (
        INSERT INTO repayments_creditline (customer_id, credit_limit, available_credit, currency, status,
            created_at, updated_at)
        SELECT DISTINCT c.id, 0, 0, 'CNY', %(line_active)s, now(), now() FROM stage s
        JOIN repayments_customer c ON c.customer_no = s.customer_no
        LEFT JOIN repayments_creditline l ON l.customer_id = c.id WHERE l.id IS NULL
        RETURNING id, customer_id)
    SELECT count(*) FROM lines""",
    # An approved extension stays: a stored due date moved past the statement's keeps
    # its place when the file gives the statement's date (which becomes the original),
    # and a file repeating the extended date (our export) changes neither.
    "bills-upsert": f"""
    WITH up AS (
        INSERT INTO repayments_bill AS b (bill_no, customer_id, credit_line_id, {_BILL_COLUMNS}, late_fee,
            late_fee_waived, dpd, debit_attempts, created_at, updated_at)
        SELECT r.bill_no, c.id, l.id, r.period, r.statement_date,
            CASE WHEN r.stored_due > r.stored_original AND r.stored_due >= r.due_date
                 THEN r.stored_due ELSE r.due_date END,
            CASE WHEN r.stored_due > r.stored_original AND r.stored_due = r.due_date
                 THEN r.stored_original ELSE r.due_date END,
            r.statement_balance, r.amount_due, r.minimum_due, r.amount_paid, r.status,
            CASE WHEN r.status = %(carried_forward)s THEN {_REST} ELSE 0 END,
            0, 0, 0, 0, now(), now()
        FROM {_BILL_ROWS}
        JOIN repayments_customer c ON c.customer_no = r.customer_no
        JOIN repayments_creditline l ON l.customer_id = c.id
        ON CONFLICT (bill_no) DO UPDATE
        SET ({_BILL_COLUMNS}, updated_at) = ({_stored("EXCLUDED", _BILL_COLUMNS)}, now()),
            -- Past due is part of the balance (aging right after redoes it).
            past_due_amount = LEAST(b.past_due_amount, EXCLUDED.amount_due)
        WHERE ({_stored("b", _BILL_COLUMNS)}) IS DISTINCT FROM ({_stored("EXCLUDED", _BILL_COLUMNS)})
        RETURNING b.id, (xmax = 0) AS inserted)
    SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted), array_agg(id) FROM up""",  # noqa: S608
    # Files show whole seconds: a time in the stored one's second keeps the stored time.
    "repayment-attempts-upsert": f"""
    WITH up AS (
        INSERT INTO repayments_repaymentattempt AS a (attempt_no, bill_id, {_ATTEMPT_COLUMNS}, failure_message,
            gateway_reference, created_at, updated_at)
        SELECT s.attempt_no, b.id, coalesce(s.channel, e.channel, %(auto_debit)s), s.amount, s.status,
            coalesce(s.failure_code, ''), CASE WHEN s.failure_code IS NULL THEN ''
                ELSE coalesce(f.family, %(family_other)s) END,
            CASE WHEN date_trunc('second', e.requested_at) = s.requested_at THEN e.requested_at
                 ELSE s.requested_at END,
            CASE WHEN date_trunc('second', e.completed_at) = s.completed_at THEN e.completed_at
                 ELSE s.completed_at END,
            '', '', now(), now()
        FROM stage s
        JOIN repayments_bill b ON b.bill_no = s.bill_no
        LEFT JOIN repayments_repaymentattempt e ON e.attempt_no = s.attempt_no
        LEFT JOIN families f ON f.code = s.failure_code
        ON CONFLICT (attempt_no) DO UPDATE
        SET ({_ATTEMPT_COLUMNS}, updated_at) = ({_stored("EXCLUDED", _ATTEMPT_COLUMNS)}, now())
        WHERE ({_stored("a", _ATTEMPT_COLUMNS)}) IS DISTINCT FROM ({_stored("EXCLUDED", _ATTEMPT_COLUMNS)})
        RETURNING (xmax = 0) AS inserted)
    SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted), NULL FROM up""",  # noqa: S608
}


def _copy_text(value: str | None) -> str:
    return "\\N" if value is None else value.translate(_ESCAPES)


def fast_import(table: Table, *, outcome, dry_run: bool, apply_valid_rows: bool, progress=None) -> None:
    """Validate and merge a big bills or attempts table; fill ``outcome`` (an ``ImportOutcome``).

    Args:
        table: the file as read by ``repayments.imports.reading.read_table``.
        outcome: the ``ImportOutcome`` to fill (problems, counts, applied).
        dry_run: validate and count, then roll back the merge.
        apply_valid_rows: merge the rows without problems.
        progress: optional ``callable(done_rows, total_rows)``.

    Must run inside ``transaction.atomic`` (the staging table is dropped on commit).
    """
    resource = table.resource
    parsers = _PARSERS[resource]
    columns = list(parsers)
    position = {name: table.headers.index(name) if name in table.headers else None for name in columns}
    total = table.row_count
    problems: list[Problem] = []
    with connection.cursor() as cursor:
        # Dropped at the end too: two imports may share one transaction (tests, a batch).
        cursor.execute("DROP TABLE IF EXISTS stage, families")
        cursor.execute(f"CREATE TEMPORARY TABLE stage ({_STAGING[resource]}) ON COMMIT DROP")  # noqa: S608
        with cursor.copy(f"COPY stage (sheet_row, {', '.join(columns)}) FROM STDIN") as copy:  # noqa: S608
            lines: list[str] = []
            # Streamed: a long table is read again from its file, never held whole.
            for index, (sheet_row, values) in enumerate(table.iter_rows(), start=1):
                out = [str(sheet_row)]
                bad = False
                for name in columns:
                    where = position[name]
                    raw = values[where] if where is not None else ""
                    try:
                        out.append(_copy_text(parsers[name](raw)))
                    except CellError as exc:
                        if len(problems) < _MAX_PROBLEMS:
                            problems.append(Problem(sheet_row, name, raw, str(exc)))
                        bad = True
                if not bad:
                    lines.append("\t".join(out) + "\n")
                if len(lines) >= 20_000:
                    copy.write("".join(lines))
                    lines = []
                    if progress is not None:
                        progress(index // 2, total)  # parsing is about half the work
            copy.write("".join(lines))
        for column, message, sql in _CHECKS[resource]:
            cursor.execute(sql + f" ORDER BY 1 LIMIT {_MAX_PROBLEMS}", _PARAMS)  # noqa: S608 - fixed SQL
            for sheet_row, value, rows in cursor.fetchall():
                text = str(message) % {"value": value, "quoted": repr(value), "rows": rows}
                problems.append(Problem(sheet_row, column, value or "", text))
        if progress is not None:
            progress(total * 3 // 4, total)
        order = {name: i for i, name in enumerate(table.headers)}
        problems.sort(key=lambda p: (p.row or 0, order.get(p.column, -1)))
        outcome.problems = problems
        bad_rows = sorted({p.row for p in problems if p.row is not None})
        outcome.rejected_rows = len(bad_rows)
        if problems and not (apply_valid_rows and not dry_run):
            cursor.execute("DROP TABLE stage")
            return
        if bad_rows:
            cursor.execute("DELETE FROM stage WHERE sheet_row = ANY(%s)", [bad_rows])
        with transaction.atomic():
            new_lines = 0
            settled = None
            if resource == "bills":
                cursor.execute(_MERGE["bills"], _PARAMS)
                new_lines = cursor.fetchone()[0]
            else:
                cursor.execute("CREATE TEMPORARY TABLE families (code text PRIMARY KEY, family text) ON COMMIT DROP")
                with cursor.copy("COPY families FROM STDIN") as copy:
                    copy.write("".join(f"{code}\t{family}\n" for code, family in FAILURE_FAMILIES.items()))
            cursor.execute("SELECT count(*) FROM stage")
            merged = cursor.fetchone()[0]
            cursor.execute(_MERGE[f"{resource}-upsert"], _PARAMS)
            outcome.created, outcome.updated, written = cursor.fetchone()
            outcome.unchanged = merged - outcome.created - outcome.updated
            if dry_run:
                transaction.set_rollback(True)
            elif resource == "bills" and written:
                settled = bills_import_settle(bill_ids=written)
        cursor.execute("DROP TABLE IF EXISTS stage, families")
        outcome.applied = not dry_run
        if new_lines:
            outcome.notes.append(new_lines_note(new_lines))
        if settled:
            outcome.notes.append(settled_note(settled))
        if progress is not None:
            progress(total, total)
