"""The cross-field rules of the analyst imports, one function per file.

The django-import-export resources (``repayments.imports.resources``) only parse cells
(``repayments.imports.cells``) and load what a file refers to in bulk before its first
row; for every row they hand the parsed instance to the function of its file here, which
resolves references, derives the stored values a row implies, and checks the rules the
database would refuse, so that an error names the cell instead of a constraint.

Each function takes the row's instance as parsed (not saved), the raw row, and
``errors`` (``{column name: [message, ...]}``, holding the cell errors already found);
it adds a message per broken rule to ``errors`` and sets the derived fields on the
instance. It raises nothing for bad input and writes nothing: the resource refuses a
row with errors, and a refused row rolls the whole import back. A rule is skipped when
a cell it reads already has an error, so every cell is reported once.

The fast path (``repayments.imports.fastpath``) applies the same rules to whole files
in SQL, with the same messages.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from baitiao.money import HOME_CURRENCY, ZERO
from baitiao.pii import pii_hash
from repayments.bins import bin_table
from repayments.gateway.taxonomy import failure_family
from repayments.imports import cells
from repayments.models import (
    IN_FLIGHT_ATTEMPT_STATUSES,
    OPEN_BILL_STATUSES,
    AttemptStatus,
    Bill,
    BillStatus,
    CardBinding,
    CardBindingStatus,
    CreditLine,
    CreditLineStatus,
    Customer,
    DataSource,
    RepaymentAttempt,
)

Errors = dict[str, list[str]]
"""Messages of one row by column name."""


def _error(errors: Errors, column: str, message: str) -> None:
    errors.setdefault(column, []).append(message)


def no_customer_message(row: dict) -> str:
    """The message for a row whose ``customer_no`` names no stored customer.

    Args:
        row: ``{column name: raw cell}`` of one file row.
    """
    raw = cells.normalize(row.get("customer_no"))
    if not raw:
        return _("The customer_no is empty.")
    return _("No customer has customer_no %(value)s; import the customer first.") % {"value": repr(raw)}


def _bin_bank(bin_: str) -> tuple[str, str, str] | None:
    """(bank name, bank code, card type) of the longest listed prefix of ``bin_``, any card length."""
    best = None
    for info in bin_table():
        if bin_.startswith(info.bin) and (best is None or len(info.bin) > len(best.bin)):
            best = info
    return (best.bank_name, best.bank_code, best.card_type) if best else None


def customer_row_check(*, customer: Customer, row: dict, errors: Errors, new: bool) -> None:
    """Derive what a customers-file row implies.

    Sets the keyed hash and last four digits of a valid phone and national ID (for exact
    lookup and display), and marks a new customer as imported (``DataSource.IMPORT``).

    Args:
        customer: the row's customer as parsed (not saved).
        row: ``{column name: raw cell}`` of the row.
        errors: the row's messages by column (cell errors so far); added to, never raised.
        new: whether the row creates the customer.
    """
    if customer.phone and "phone" not in errors:
        customer.phone_hash, customer.phone_last4 = pii_hash(customer.phone), customer.phone[-4:]
    if customer.national_id and "national_id" not in errors:
        customer.national_id_hash = pii_hash(customer.national_id)
        customer.national_id_last4 = customer.national_id[-4:]
    if new:
        customer.source = DataSource.IMPORT


def credit_line_row_check(
    *,
    line: CreditLine,
    row: dict,
    errors: Errors,
    new: bool,
    customers: dict[str, Customer],
    owed: dict[int, Decimal],
    now: dt.datetime,
) -> None:
    """Check and complete a credit-lines-file row.

    Rules: the ``customer_no`` names a stored customer; a new line defaults to CNY and
    active; the available credit is the limit less the principal the customer owes on
    open bills (yuan), between zero and the limit; a status change stamps
    ``status_changed_at``.

    Args:
        line: the row's credit line as parsed (not saved); an existing one carries
            ``tracker_status``, its stored status.
        row: ``{column name: raw cell}`` of the row.
        errors: the row's messages by column (cell errors so far); added to, never raised.
        new: whether the row creates the line.
        customers: the file's customers by ``customer_no``.
        owed: principal owed on open bills by customer id, in yuan.
        now: the import's time (aware), for ``status_changed_at``.
    """
    number = cells.row_code(row, "customer_no")
    customer = customers.get(number) if number else None
    if customer is None:
        _error(errors, "customer_no", no_customer_message(row))
        return
    if new:
        line.customer = customer
        line.currency = line.currency or HOME_CURRENCY
        line.status = line.status or CreditLineStatus.ACTIVE
    if "limit" not in errors and line.credit_limit is not None:
        customer_owes = max(owed.get(customer.pk) or ZERO, ZERO)
        line.available_credit = min(max(line.credit_limit - customer_owes, ZERO), line.credit_limit)
    if not new and getattr(line, "tracker_status", None) != line.status:
        line.status_changed_at = now


def card_binding_row_check(
    *,
    binding: CardBinding,
    row: dict,
    errors: Errors,
    new: bool,
    customers: dict[str, Customer],
    active: dict[int, CardBinding],
    file_status: dict[str, str],
    now: dt.datetime,
) -> None:
    """Check and complete a card-bindings-file row.

    Rules: a full card number is refused (checked, never stored: only the gateway binds a
    card, with the customer's SMS code); the ``customer_no`` names a stored customer; a row
    gives a ``gateway_token``; a new binding needs ``bin`` and ``last4`` and defaults to
    active; a token stays with its customer; the bank and card type come from the BIN
    table; a customer has one active card unless the file retires the stored one; a
    status change stamps ``status_changed_at``.

    Args:
        binding: the row's binding as parsed (not saved); an existing one carries
            ``tracker_status``, its stored status.
        row: ``{column name: raw cell}`` of the row.
        errors: the row's messages by column (cell errors so far); added to, never raised.
        new: whether the row creates the binding.
        customers: the file's customers by ``customer_no``.
        active: the stored active binding by customer id.
        file_status: the status the file finally gives each gateway token.
        now: the import's time (aware), for ``bound_at`` and ``status_changed_at``.
    """
    card_number = cells.normalize(row.get("card_number"))
    if card_number:
        from repayments.services.bindings import BindingError, card_number_check

        try:
            card_number_check(card_number)
        except BindingError as exc:
            _error(errors, "card_number", str(exc))
        else:
            _error(
                errors,
                "card_number",
                _(
                    "A card number cannot be bound from a file: the bank sends the customer an SMS code to "
                    "confirm. Bind the card in the console, or import the gateway_token, bin and last4 the "
                    "gateway returned."
                ),
            )
        return
    number = cells.row_code(row, "customer_no")
    customer = customers.get(number) if number else None
    if customer is None:
        _error(errors, "customer_no", no_customer_message(row))
        return
    if not cells.normalize(row.get("gateway_token")) and "gateway_token" not in errors:
        _error(errors, "gateway_token", _("Give the gateway_token (with bin and last4) of a card the gateway bound."))
        return
    if new:
        binding.customer = customer
        binding.bound_at = now
        for column in ("bin", "last4"):
            if not getattr(binding, column) and column not in errors:
                _error(errors, column, _("The %(column)s is required for a new binding.") % {"column": column})
        binding.status = binding.status or CardBindingStatus.ACTIVE
    elif binding.customer_id != customer.pk:
        _error(
            errors,
            "customer_no",
            _("Token %(token)s is bound to customer %(customer)s, not %(number)s.")
            % {"token": binding.gateway_token, "customer": binding.customer.customer_no, "number": number},
        )
    if binding.bin and "bin" not in errors:
        issuer = _bin_bank(binding.bin)
        if issuer:
            binding.bank_name = binding.bank_name or issuer[0]
            binding.bank_code = binding.bank_code or issuer[1]
            binding.card_type = issuer[2] if new else binding.card_type
    if binding.reserved_phone and "reserved_phone" not in errors:
        binding.reserved_phone_last4 = binding.reserved_phone[-4:]
    current = active.get(customer.pk)
    if (
        binding.status == CardBindingStatus.ACTIVE
        and current is not None
        and current.gateway_token != binding.gateway_token
        and file_status.get(current.gateway_token, "active") == "active"
    ):
        _error(
            errors,
            "status",
            _(
                "Customer %(number)s already has an active card ****%(last4)s; "
                "add a row setting that card to replaced or invalid above this one."
            )
            % {"number": number, "last4": current.last4},
        )
    if not new and "status" not in errors and binding.status != getattr(binding, "tracker_status", None):
        binding.status_changed_at = now


def bill_row_check(
    *,
    bill: Bill,
    row: dict,
    errors: Errors,
    new: bool,
    customers: dict[str, Customer],
    periods: dict[tuple[int, dt.date], str],
) -> None:
    """Check and complete a bills-file row.

    Rules: an import never lowers the amount paid nor reopens a closed bill, and leaves
    the aging's pending/overdue verdict; the ``customer_no`` names a stored customer and a
    bill stays with its customer; a new bill defaults to pending with 0.00 paid; the
    statement balance defaults to the amount due; the due date is not before the
    statement date; the amount due equals the statement balance (0.00 when negative) and
    the minimum due is not above it (yuan); one bill per customer and month; an approved
    extension's due date stays; the past-due amount is capped at the amount due; a paid
    bill owes nothing and a carried-forward one carries its unpaid rest.

    Args:
        bill: the row's bill as parsed (not saved); an existing one carries
            ``booked_before`` (``(amount_paid, status)`` as stored) and ``file_due_before``
            (``(due_date, original_due_date)`` as stored).
        row: ``{column name: raw cell}`` of the row.
        errors: the row's messages by column (cell errors so far); added to, never raised.
        new: whether the row creates the bill.
        customers: the file's customers by ``customer_no``.
        periods: the stored ``bill_no`` by ``(customer id, period)``.
    """
    number = cells.row_code(row, "customer_no")
    booked_before: tuple[Decimal, str] | None = getattr(bill, "booked_before", None)
    if not new and booked_before is not None:
        # Money the engine has collected is never taken back by a file, and a
        # closed bill is never reopened (it would be debited again).
        paid_before, status_before = booked_before
        if "amount_paid" not in errors and bill.amount_paid is not None and bill.amount_paid < paid_before:
            _error(
                errors,
                "amount_paid",
                _(
                    "The file says %(paid)s paid, but %(collected)s has already been collected "
                    "on this bill; an import never lowers the amount paid."
                )
                % {"paid": bill.amount_paid, "collected": paid_before},
            )
        if status_before not in OPEN_BILL_STATUSES and bill.status in OPEN_BILL_STATUSES:
            _error(
                errors,
                "status",
                _("The bill is already %(before)s; an import cannot reopen it as %(status)s.")
                % {"before": status_before, "status": bill.status},
            )
        elif status_before in OPEN_BILL_STATUSES and bill.status in OPEN_BILL_STATUSES:
            # Pending or overdue is the aging's verdict (it runs on every bill an import
            # writes), not the file's: a statement file saying "open" for a bill that has
            # since turned overdue is not a change.
            bill.status = status_before
    customer = customers.get(number) if number else None
    if customer is None:
        _error(errors, "customer_no", no_customer_message(row))
    elif new:
        bill.customer = customer
    elif bill.customer_id != customer.pk:
        _error(
            errors,
            "customer_no",
            _("Bill %(bill)s belongs to customer %(customer)s.")
            % {"bill": bill.bill_no, "customer": bill.customer.customer_no},
        )
    if new:
        bill.status = bill.status or BillStatus.PENDING
        if bill.amount_paid is None:
            bill.amount_paid = ZERO
    if bill.statement_balance is None and bill.amount_due is not None:
        bill.statement_balance = bill.amount_due
    dates_ok = not {"statement_date", "due_date"} & errors.keys()
    if dates_ok and bill.due_date < bill.statement_date:
        _error(
            errors,
            "due_date",
            _("The due date %(due)s is before the statement date %(statement)s.")
            % {"due": bill.due_date, "statement": bill.statement_date},
        )
    amounts_ok = not {"statement_balance", "amount_due", "minimum_due"} & errors.keys()
    if amounts_ok:
        if bill.amount_due != max(bill.statement_balance, ZERO):
            _error(
                errors,
                "amount_due",
                _(
                    "The amount due %(due)s must equal the statement balance %(balance)s "
                    "(or 0.00 when the balance is negative)."
                )
                % {"due": bill.amount_due, "balance": bill.statement_balance},
            )
        if bill.minimum_due > bill.amount_due:
            _error(
                errors,
                "minimum_due",
                _("The minimum due %(minimum)s is above the amount due %(due)s.")
                % {"minimum": bill.minimum_due, "due": bill.amount_due},
            )
    if customer is not None and "period" not in errors:
        other = periods.get((customer.pk, bill.period))
        if other and other != bill.bill_no:
            _error(
                errors,
                "period",
                _("Customer %(number)s already has bill %(bill)s for %(month)s.")
                % {"number": number, "bill": other, "month": f"{bill.period:%Y-%m}"},
            )
    if dates_ok:
        _due_dates(bill, new)
    if bill.amount_due is not None and bill.past_due_amount > bill.amount_due:
        bill.past_due_amount = bill.amount_due  # past due is part of the balance; aging redoes it
    money_ok = not {"statement_balance", "amount_due", "amount_paid", "status"} & errors.keys()
    if money_ok and bill.amount_due is not None and bill.amount_paid is not None and bill.status:
        _closed_statement(bill, errors)


def _closed_statement(bill: Bill, errors: Errors) -> None:
    """What a paid or carried-forward statement implies, checked before the database does.

    ``carried_forward`` is the statement's unpaid rest (``Bill.outstanding`` with nothing
    carried yet), which must be above zero; a ``paid`` one must owe nothing. Every other
    status carries nothing.
    """
    bill.carried_forward = ZERO
    rest = bill.outstanding  # amount due + unwaived late fee − paid, never below zero
    if bill.status == BillStatus.CARRIED_FORWARD:
        if rest > 0:
            bill.carried_forward = rest
        else:
            _error(
                errors,
                "status",
                _(
                    "The bill is carried forward, but nothing is left to carry: the amount paid %(paid)s covers "
                    "the amount due %(due)s and any unwaived late fee. Mark it paid."
                )
                % {"paid": bill.amount_paid, "due": bill.amount_due},
            )
    elif bill.status == BillStatus.PAID and rest > 0:
        _error(
            errors,
            "amount_paid",
            _(
                "The bill is marked paid, but the amount paid %(paid)s is below the %(owed)s it owes "
                "(amount due plus unwaived late fee). Correct the amount paid or the status."
            )
            % {"paid": bill.amount_paid, "owed": bill.amount_paid + rest},
        )


def _due_dates(bill: Bill, new: bool) -> None:
    """The file's due date is the statement's; an approved extension on an existing bill stays."""
    file_due = bill.due_date
    due_before: tuple[dt.date, dt.date] | None = getattr(bill, "file_due_before", None)
    if new or due_before is None:
        bill.original_due_date = file_due
        return
    old_due, old_original = due_before
    extended = old_due > old_original
    if extended and file_due == old_due:
        # The file repeats the extended date (our own export shows the current due
        # date): nothing moved, and the statement's own date stays the original.
        bill.original_due_date = old_original
        return
    bill.original_due_date = file_due
    bill.due_date = old_due if extended and old_due >= file_due else file_due


def repayment_attempt_row_check(
    *,
    attempt: RepaymentAttempt,
    row: dict,
    errors: Errors,
    new: bool,
    bills: dict[str, Bill],
    in_flight: dict[int, str],
) -> None:
    """Check and complete a repayment-attempts-file row.

    Rules: the ``bill_no`` names a stored bill and an attempt stays with its bill; a new
    attempt defaults to the ``auto_debit`` channel; a time in the same second as the
    stored one keeps the stored time; the amount is above zero (yuan); the failure family
    follows the failure code; a failed attempt has a failure code; a succeeded or failed
    one a completion time, not before its request time; a bill has at most one attempt
    in flight.

    Args:
        attempt: the row's attempt as parsed (not saved); an existing one carries
            ``import_before`` (its compared fields as stored).
        row: ``{column name: raw cell}`` of the row.
        errors: the row's messages by column (cell errors so far); added to, never raised.
        new: whether the row creates the attempt.
        bills: the file's bills by ``bill_no``.
        in_flight: the ``attempt_no`` of the stored attempt in flight by bill id.
    """
    bill_no = cells.row_code(row, "bill_no")
    bill = bills.get(bill_no) if bill_no else None
    if bill is None:
        raw = cells.normalize(row.get("bill_no"))
        message = (
            _("No bill has bill_no %(value)s; import the bill first.") % {"value": repr(raw)} if raw else _("Empty.")
        )
        _error(errors, "bill_no", message)
    elif new:
        attempt.bill = bill
    elif attempt.bill_id != bill.pk:
        _error(
            errors,
            "bill_no",
            _("Attempt %(attempt)s belongs to bill %(bill)s.")
            % {"attempt": attempt.attempt_no, "bill": attempt.bill.bill_no},
        )
    if new:
        attempt.channel = attempt.channel or "auto_debit"
    else:
        _same_second(attempt)
    if "amount" not in errors and attempt.amount is not None and attempt.amount <= 0:
        _error(errors, "amount", _("The amount of an attempt must be above zero."))
    if "status" in errors:
        return
    attempt.failure_family = failure_family(attempt.failure_code) if attempt.failure_code else ""
    if attempt.status == AttemptStatus.FAILED and not attempt.failure_code and "failure_code" not in errors:
        _error(errors, "failure_code", _("A failed attempt needs the bank's failure code."))
    finished = attempt.status in (AttemptStatus.SUCCEEDED, AttemptStatus.FAILED)
    if finished and not attempt.completed_at and "completed_at" not in errors:
        _error(errors, "completed_at", _("A succeeded or failed attempt needs the time it completed."))
    if (
        attempt.completed_at
        and attempt.requested_at
        and not {"completed_at", "requested_at"} & errors.keys()
        and attempt.completed_at < attempt.requested_at
    ):
        _error(errors, "completed_at", _("The attempt completed before it was requested."))
    if bill is not None and attempt.status in IN_FLIGHT_ATTEMPT_STATUSES:
        other = in_flight.get(bill.pk)
        if other and other != attempt.attempt_no:
            _error(
                errors,
                "status",
                _("Bill %(bill)s already has attempt %(attempt)s in flight.") % {"bill": bill_no, "attempt": other},
            )


def _same_second(attempt: RepaymentAttempt) -> None:
    """A file time in the same second as the stored one keeps the stored time: files (and
    our exports) show whole seconds, the gateway records microseconds."""
    before: dict[str, Any] = getattr(attempt, "import_before", None) or {}
    for name in ("requested_at", "completed_at"):
        stored, given = before.get(name), getattr(attempt, name)
        if stored is not None and given is not None and given == stored.replace(microsecond=0):
            setattr(attempt, name, stored)
