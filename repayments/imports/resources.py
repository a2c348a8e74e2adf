"""django-import-export resources for the five analyst files, keyed by natural keys.

The same classes serve the admin (preview, row errors), the CLI and the console
(both through ``repayments.services.imports``). Each one:

* parses every cell with ``repayments.imports.cells`` (errors name the column);
* reports a key that appears twice in the file on every row that has it;
* resolves ``customer_no`` / ``bill_no`` to rows it loaded in bulk before the
  first row (no query per row);
* hands each parsed row to ``repayments.services.import_rules``, which resolves the
  references and checks the cross-field rules (the ones the database would refuse,
  named by cell instead of by constraint); a row's errors are raised together;
* masks personal data when exporting unless built with ``unmask=True``
  (``repayments.services.exports`` checks the permission and audits);
* reports a row whose values equal the stored ones as unchanged (skipped: nothing
  written, ``updated_at`` kept), so re-importing an export changes nothing;
* reads a masked cell (``138****5678``, as a masked export shows it) that matches the
  stored value's mask as "keep the stored value", and refuses any other masked cell.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from django.core.exceptions import ValidationError
from django.db.models import Model, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy
from import_export import fields, resources, widgets

from baitiao.masking import MASK, mask_token
from repayments.imports import cells
from repayments.imports.cells import CellError
from repayments.imports.columns import (
    ATTEMPT_STATUS_WORDS,
    BILL_STATUS_WORDS,
    BINDING_STATUS_WORDS,
    CHANNEL_WORDS,
    CREDIT_LINE_STATUS_WORDS,
    EXPORT_MASKS,
    RISK_TIER_WORDS,
)
from repayments.imports.report import PERSONAL_COLUMNS, masked_value
from repayments.models import (
    IN_FLIGHT_ATTEMPT_STATUSES,
    OPEN_BILL_STATUSES,
    Bill,
    CardBinding,
    CreditLine,
    Customer,
    RepaymentAttempt,
    principal_owed_expression,
)
from repayments.services import import_rules

_LOOKUP_CHUNK = 5000
_Key = TypeVar("_Key", int, str)  # natural keys (codes) or primary keys


class Parsed(widgets.Widget):
    """A widget that parses with one of ``repayments.imports.cells`` and renders as text.

    Args:
        parse: ``text -> value``; raises ``CellError`` (a ``ValueError``).
        optional: an empty cell gives ``None`` (the field then keeps its value).
    """

    def __init__(self, parse: Callable[[str], Any], *, optional: bool = False) -> None:
        super().__init__(coerce_to_string=True)
        self.parse = parse
        self.optional = optional

    def clean(self, value, row=None, **kwargs):
        text = "" if value is None else str(value)
        if self.optional and not cells.normalize(text):
            return None
        return self.parse(text)

    def render(self, value, obj=None, **kwargs):
        return render_cell(value)


def render_cell(value: object) -> str:
    """A value as export text: dates ISO, money with two places, ``None`` empty."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def _field(name: str, parse: Callable[[str], Any], *, attribute: str | None = None, optional: bool = False):
    return fields.Field(
        attribute=attribute or name,
        column_name=name,
        widget=Parsed(parse, optional=optional),
        saves_null_values=False,  # an empty optional cell keeps the current value
    )


def _key_field(name: str, attribute: str):
    """A natural-key reference (``customer_no`` of a bill): exported through the relation,
    resolved on import by the resource from its bulk-loaded cache."""
    return fields.Field(attribute=attribute, column_name=name, readonly=True)


def _chunks(values: list[_Key]) -> Iterable[list[_Key]]:
    for start in range(0, len(values), _LOOKUP_CHUNK):
        yield values[start : start + _LOOKUP_CHUNK]


def _import_before(instance: Model) -> dict[str, Any] | None:
    """The compared values of ``instance`` as stored before its row was applied (``None``
    for a new row): set by ``NaturalKeyResource.after_init_instance``."""
    before: dict[str, Any] | None = getattr(instance, "import_before", None)
    return before


_code = cells.row_code


class NaturalKeyResource(resources.ModelResource):
    """Base of the analyst resources: row problems found across the file, bulk lookups,
    errors keyed by column name.

    Args:
        actor: the staff user importing/exporting (for audit and ``bound_at``), optional.
        unmask: export personal data in clear (the export service checks permission).
    """

    resource_name: ClassVar[str]
    key_column: ClassVar[str]
    # Other column sets that must be unique within one file (besides the key).
    unique_in_file: ClassVar[tuple[tuple[str, ...], ...]] = ()
    # The stored fields a row sets (directly or derived): a row that leaves all of them
    # as they are is unchanged and written nothing (``skip_row``).
    compared_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, actor=None, unmask: bool = False, progress=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.actor = actor
        self.unmask = unmask
        self.progress = progress  # callable(done_rows, total_rows), or None
        self.sheet_rows: list[int] = []
        self.row_problems: dict[int, dict[str, list[str]]] = defaultdict(dict)
        self.existing: dict[str, Any] = {}
        self.now = timezone.now()
        self.written: list[Any] = []  # instances created or updated (saved at the end when in bulk)

    # -- file-wide preparation -------------------------------------------------
    # Resources whose rows may be imported in chunks of one file (``repayments.services.imports``):
    # their only checks across rows are the repeats :meth:`scan` finds. Card bindings (rows
    # applied in order, one active card per customer) and attempts (one in flight per bill)
    # compare rows with each other in ``prepare``, so a file of theirs is imported whole.
    chunkable: ClassVar[bool] = True

    def scan(self, rows: Iterable[tuple[int, dict]]) -> None:
        """Check the rows of a whole file against each other before it is imported in chunks.

        Finds a key (or a ``unique_in_file`` column set) repeated anywhere in the file; the
        problems are kept by spreadsheet row and reported by whichever chunk holds the row.
        Memory grows with the number of distinct keys, not with the cells.

        Args:
            rows: ``(sheet row, {column: cell})`` of every data row, in file order (streamed).
        """
        self.file_problems = defaultdict(dict)
        self._repeats(rows, into=self.file_problems)
        self.scanned = True

    scanned = False
    file_problems: dict[int, dict[str, list[str]]]

    def before_import(self, dataset, **kwargs):
        self.sheet_rows = list(getattr(dataset, "sheet_rows", None) or range(2, len(dataset) + 2))
        self.row_problems = defaultdict(dict)
        self.written = []
        rows = [dict(zip(dataset.headers, values, strict=False)) for values in dataset]
        if self.scanned:
            for sheet_row in self.sheet_rows:
                for column, messages in self.file_problems.get(sheet_row, {}).items():
                    self.row_problems[sheet_row].setdefault(column, []).extend(messages)
        else:
            self._repeats(zip(self.sheet_rows, rows, strict=True), into=self.row_problems)
        self.prepare(rows)

    def _repeats(self, rows: Iterable[tuple[int, dict]], *, into: dict[int, dict[str, list[str]]]) -> None:
        """Add to ``into`` (by sheet row) a problem on every row whose key, or ``unique_in_file``
        column set, another row repeats."""
        groups = ((self.key_column,), *self.unique_in_file)
        seen: dict[tuple[str, ...], dict[tuple, list[tuple[int, str | None]]]] = {g: defaultdict(list) for g in groups}
        for sheet_row, row in rows:
            for columns in groups:
                if any(column not in row for column in columns):
                    continue
                values = tuple(cells.normalize(row[column]) for column in columns)
                if all(values):
                    key = _code(row, self.key_column) if columns != (self.key_column,) else None
                    seen[columns][values].append((sheet_row, key))
        for columns, found in seen.items():
            for values, where in found.items():
                if len(where) < 2:
                    continue
                if columns != (self.key_column,) and len({key for _row, key in where}) == 1:
                    continue  # the same key repeated: already reported on the key column
                what = " + ".join(f"{c} {v}" for c, v in zip(columns, values, strict=True))
                for sheet_row, _key in where:
                    others = ", ".join(str(other) for other, _k in where if other != sheet_row)
                    message = _(
                        "%(what)s appears more than once in this file (also on row %(rows)s); "
                        "each must be on one row only."
                    ) % {"what": what, "rows": others}
                    into[sheet_row].setdefault(columns[-1], []).append(message)

    def after_import_row(self, row, row_result, **kwargs):
        number = kwargs.get("row_number", 0)
        if self.progress is not None and (number % 1000 == 0 or number == len(self.sheet_rows)):
            self.progress(number, len(self.sheet_rows))

    def add_problem(self, number: int, column: str, message: str) -> None:
        """A problem on data row ``number`` (1-based in the dataset being imported)."""
        self.row_problems[self.sheet_row(number)].setdefault(column, []).append(message)

    def prepare(self, rows: list[dict]) -> None:
        """Load existing rows and referenced rows for the whole file (override)."""

    def sheet_row(self, number: int) -> int:
        """The spreadsheet row of data row ``number`` (1-based)."""
        return self.sheet_rows[number - 1] if 0 < number <= len(self.sheet_rows) else number + 1

    # -- per row ------------------------------------------------------------------
    def get_instance(self, instance_loader, row):
        key = _code(row, self.key_column)
        return self.existing.get(key) if key else None

    def after_init_instance(self, instance, new, row, **kwargs):
        # What the row is compared with to tell an unchanged row (see ``skip_row``).
        instance.import_before = None if new else self.snapshot(instance)

    def snapshot(self, instance) -> dict[str, Any]:
        """The values of ``compared_fields`` on ``instance``."""
        return {name: getattr(instance, name) for name in self.compared_fields}

    def skip_row(self, instance, original, row, import_validation_errors=None):
        """An existing row whose file values leave every compared field as stored is
        unchanged: it is reported as skipped and not written, so its ``updated_at`` (the
        API's ``version``) stays. A row with problems is never skipped (it is reported)."""
        before = _import_before(instance)
        if import_validation_errors or before is None:
            return False
        return self.snapshot(instance) == before

    def import_field(self, field, instance, row, is_m2m=False, **kwargs):
        mask = EXPORT_MASKS.get(self.resource_name, {}).get(field.column_name)
        # As the column's parser reads it: our exports' formula guard (a leading ') dropped.
        text = cells.normalize(cells.plain_text(row.get(field.column_name))) if mask else ""
        if mask is None or MASK not in text:
            return super().import_field(field, instance, row, is_m2m, **kwargs)
        # A masked export's cell: it stands for the stored value when it is that value's
        # mask (the field is left as stored), and for nothing otherwise.
        stored = getattr(instance, field.attribute, "") if instance.pk else ""
        shown = cells.normalize(mask(stored)) if stored else ""
        if shown and shown.upper() == text.upper():
            return None
        if shown:
            raise CellError(
                _(
                    "This is a masked value (as an export without personal data in clear shows it) and it does not "
                    "match the stored value, shown as %(stored)s. Give the value in clear, or leave the cell empty "
                    "to keep the stored value."
                )
                % {"stored": shown}
            )
        raise CellError(
            _(
                "This is a masked value (as an export without personal data in clear shows it) and there is no "
                "stored value it could stand for. Give the value in clear."
            )
        )

    def import_instance(self, instance, row, **kwargs):
        errors: dict[str, list[str]] = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as exc:
            column_of = {f.attribute: f.column_name for f in self.fields.values()}
            for attribute, messages in exc.message_dict.items():
                errors.setdefault(column_of.get(attribute, attribute), []).extend(messages)
        for column, messages in self.row_problems.get(self.sheet_row(kwargs.get("row_number", 0)), {}).items():
            errors.setdefault(column, []).extend(messages)
        self.complete(instance, row, errors, new=instance.pk is None)
        # The admin preview lists the values of refused rows: personal ones masked (the
        # instance already holds what it needs).
        for column in PERSONAL_COLUMNS.intersection(row):
            row[column] = masked_value(column, cells.normalize(row[column]))
        if errors:
            raise ValidationError(errors)

    def complete(self, instance, row: dict, errors: dict[str, list[str]], *, new: bool) -> None:
        """Hand the parsed row to its function in ``repayments.services.import_rules``, which
        resolves references and checks the cross-field rules, adding messages to ``errors``
        (override: one call, no rule here)."""

    def before_save_instance(self, instance, row, **kwargs):
        instance.updated_at = self.now  # bulk_update does not run auto_now
        self.written.append(instance)

    def get_bulk_update_fields(self):
        return self.model_update_fields

    model_update_fields: ClassVar[list[str]] = []

    def applied(self, result, kwargs: dict) -> bool:
        """Whether this import is being written for real: not a dry run, and no row refused
        (a refused row rolls the whole import back)."""
        return not self._is_dry_run(kwargs) and not result.has_errors() and not result.has_validation_errors()


def _customers_by_no(numbers: Iterable[str]) -> dict[str, Customer]:
    found: dict[str, Customer] = {}
    query = Customer.objects.only("id", "customer_no")
    for chunk in _chunks(sorted(set(numbers))):
        found.update({c.customer_no: c for c in query.filter(customer_no__in=chunk)})
    return found


class CustomerResource(NaturalKeyResource):
    resource_name = "customers"
    key_column = "customer_no"

    customer_no = _field(
        "customer_no", lambda v: cells.parse_code(v, what=pgettext_lazy("import cell", "customer_no"), max_length=32)
    )
    name = _field("name", cells.plain_text, optional=True)
    phone = _field("phone", cells.parse_mobile, optional=True)
    national_id = _field("national_id", cells.parse_national_id, optional=True)
    credit_score = _field(
        "credit_score",
        lambda v: cells.parse_int(v, what=pgettext_lazy("import cell", "credit score"), low=350, high=950),
        optional=True,
    )
    risk_tier = _field(
        "risk_tier",
        lambda v: cells.parse_choice(v, what=pgettext_lazy("import cell", "risk tier"), words=RISK_TIER_WORDS),
        optional=True,
    )

    model_update_fields = [
        "name",
        "phone",
        "phone_hash",
        "phone_last4",
        "national_id",
        "national_id_hash",
        "national_id_last4",
        "credit_score",
        "risk_tier",
        "updated_at",
    ]
    compared_fields = tuple(model_update_fields[:-1])

    class Meta:
        model = Customer
        fields = ("customer_no", "name", "phone", "national_id", "credit_score", "risk_tier")
        import_id_fields = ("customer_no",)
        use_bulk = True
        batch_size = 2000
        skip_diff = True
        clean_model_instances = False

    def prepare(self, rows):
        numbers = [n for n in (_code(r, "customer_no") for r in rows) if n]
        self.existing = {}
        for chunk in _chunks(sorted(set(numbers))):
            self.existing.update({c.customer_no: c for c in Customer.objects.filter(customer_no__in=chunk)})

    def complete(self, instance, row, errors, *, new):
        import_rules.customer_row_check(customer=instance, row=row, errors=errors, new=new)

    def dehydrate_name(self, customer: Customer) -> str:
        return _shown(customer.name, self.unmask, "customers", "name")

    def dehydrate_phone(self, customer: Customer) -> str:
        return _shown(customer.phone, self.unmask, "customers", "phone")

    def dehydrate_national_id(self, customer: Customer) -> str:
        return _shown(customer.national_id, self.unmask, "customers", "national_id")


def _shown(value: str, unmask: bool, resource: str, column: str) -> str:
    """A personal value as an export shows it: in clear, or with the resource's mask."""
    if not value or unmask:
        return value or ""
    return EXPORT_MASKS[resource][column](value)


class CreditLineResource(NaturalKeyResource):
    resource_name = "credit-lines"
    key_column = "customer_no"

    customer_no = _key_field("customer_no", "customer__customer_no")
    limit = _field(
        "limit", lambda v: cells.parse_amount(v, what=pgettext_lazy("import cell", "limit")), attribute="credit_limit"
    )
    currency = _field("currency", lambda v: _currency(v), optional=True)
    status = _field(
        "status",
        lambda v: cells.parse_choice(v, what=pgettext_lazy("import cell", "status"), words=CREDIT_LINE_STATUS_WORDS),
        optional=True,
    )

    model_update_fields = ["credit_limit", "available_credit", "currency", "status", "status_changed_at", "updated_at"]
    compared_fields = ("credit_limit", "available_credit", "currency", "status")

    class Meta:
        model = CreditLine
        fields = ("customer_no", "limit", "currency", "status")
        import_id_fields = ("customer_no",)
        use_bulk = True
        batch_size = 2000
        skip_diff = True
        clean_model_instances = False

    def get_queryset(self):
        return CreditLine.objects.select_related("customer")

    def prepare(self, rows):
        numbers = [n for n in (_code(r, "customer_no") for r in rows) if n]
        self.customers = _customers_by_no(numbers)
        ids = [c.pk for c in self.customers.values()]
        self.existing = {}
        self.owed: dict[int, Decimal] = {}
        for chunk in _chunks(ids):
            for line in CreditLine.objects.select_related("customer").filter(customer_id__in=chunk):
                self.existing[line.customer.customer_no] = line
            # The principal owed on open bills (late fees use no credit), as
            # ``repayments.services.credit_lines`` recomputes it after a bills import.
            self.owed.update(
                Bill.objects.filter(customer_id__in=chunk, status__in=OPEN_BILL_STATUSES)
                .values("customer_id")
                .annotate(owed=Sum(principal_owed_expression()))
                .values_list("customer_id", "owed")
            )

    def complete(self, instance, row, errors, *, new):
        import_rules.credit_line_row_check(
            line=instance, row=row, errors=errors, new=new, customers=self.customers, owed=self.owed, now=self.now
        )

    def after_init_instance(self, instance, new, row, **kwargs):
        super().after_init_instance(instance, new, row, **kwargs)
        instance.tracker_status = instance.status


def _currency(raw: str) -> str:
    text = cells.normalize(raw).upper()
    if len(text) != 3 or not text.isalpha() or not text.isascii():
        raise CellError(
            _("The currency %(value)s is not a three-letter ISO 4217 code (CNY, TWD).") % {"value": repr(text)}
        )
    return text


class CardBindingResource(NaturalKeyResource):
    """Card bindings by gateway token; a full card number is checked and refused (never stored).

    The gateway binds a card only with the SMS code the customer receives
    (``card_binding_start`` / ``card_binding_confirm``), so a file cannot bind a
    new card: it can record bindings the gateway already made.
    """

    resource_name = "card-bindings"
    key_column = "gateway_token"
    chunkable = False  # rows compared with each other in ``prepare`` (one active card per customer)

    customer_no = _key_field("customer_no", "customer__customer_no")
    card_number = fields.Field(column_name="card_number", readonly=True)
    gateway_token = _field(
        "gateway_token",
        lambda v: cells.parse_code(v, what=pgettext_lazy("import cell", "gateway_token"), max_length=64),
        optional=True,
    )
    bin = _field(
        "bin", lambda v: cells.parse_digits(v, what=pgettext_lazy("import cell", "BIN"), lengths=(3, 10)), optional=True
    )
    last4 = _field(
        "last4",
        lambda v: cells.parse_digits(v, what=pgettext_lazy("import cell", "last four digits"), lengths=(4, 4)),
        optional=True,
    )
    bank_name = _field("bank_name", cells.plain_text, optional=True)
    reserved_phone = _field(
        "reserved_phone",
        lambda v: cells.parse_mobile(v, what=pgettext_lazy("import cell", "reserved phone")),
        optional=True,
    )
    status = _field(
        "status",
        lambda v: cells.parse_choice(v, what=pgettext_lazy("import cell", "status"), words=BINDING_STATUS_WORDS),
        optional=True,
    )

    class Meta:
        model = CardBinding
        fields = (
            "customer_no",
            "card_number",
            "gateway_token",
            "bin",
            "last4",
            "bank_name",
            "reserved_phone",
            "status",
        )
        import_id_fields = ("gateway_token",)
        use_bulk = False  # rows may retire and add a customer's active card in order
        skip_diff = True
        clean_model_instances = False

    compared_fields = (
        "customer_id",
        "bin",
        "last4",
        "bank_name",
        "bank_code",
        "card_type",
        "reserved_phone",
        "reserved_phone_last4",
        "status",
    )

    def get_queryset(self):
        return CardBinding.objects.select_related("customer")

    def get_export_fields(self, selected_fields=None):
        return [f for f in super().get_export_fields(selected_fields) if f.column_name != "card_number"]

    def before_import(self, dataset, **kwargs):
        if "gateway_token" not in dataset.headers:  # a card-number file: each row is refused below
            dataset.append_col([""] * len(dataset), header="gateway_token")
        super().before_import(dataset, **kwargs)

    def prepare(self, rows):
        self.customers = _customers_by_no(n for n in (_code(r, "customer_no") for r in rows) if n)
        self._unmask_tokens(rows)
        tokens = [t for t in (self.token(r) for r in rows) if t]
        self.existing = {}
        for chunk in _chunks(sorted(set(tokens))):
            self.existing.update(
                {
                    b.gateway_token: b
                    for b in CardBinding.objects.select_related("customer").filter(gateway_token__in=chunk)
                }
            )
        # The active card of each customer in the database, and the file's final word per token.
        ids = [c.pk for c in self.customers.values()]
        self.active: dict[int, CardBinding] = {}
        for id_chunk in _chunks(ids):
            self.active.update(
                {b.customer_id: b for b in CardBinding.objects.filter(customer_id__in=id_chunk, status="active")}
            )
        self.file_status = {}
        for row in rows:
            token = self.token(row)
            if token:
                word = cells.normalize(row.get("status"))
                self.file_status[token] = BINDING_STATUS_WORDS.get(word.lower(), "active" if not word else word)
        active_rows: dict[int, list[int]] = defaultdict(list)
        for number, row in enumerate(rows, start=1):
            token, customer = self.token(row), self.customers.get(_code(row, "customer_no") or "")
            if token and customer and self.file_status.get(token) == "active":
                active_rows[customer.pk].append(number)
        for numbers in active_rows.values():
            if len(numbers) > 1:
                for number in numbers:
                    others = ", ".join(str(self.sheet_row(n)) for n in numbers if n != number)
                    self.add_problem(
                        number,
                        "status",
                        _("A customer has one active card; row %(rows)s also makes one active.") % {"rows": others},
                    )

    def _unmask_tokens(self, rows: list[dict]) -> None:
        """Masked tokens (``sbx_****5678``, a masked export) → the customer's binding that shows so.

        A token is the key: a masked one names the binding of the row's customer whose
        token has that mask, when exactly one does; otherwise it stays masked and is
        refused (``import_field``).
        """
        self.unmasked: dict[tuple[str, str], str] = {}
        wanted = {
            (number, token)
            for number, token in ((_code(r, "customer_no"), _code(r, "gateway_token")) for r in rows)
            if number in self.customers and token and MASK in token
        }
        if not wanted:
            return
        by_customer: dict[int, list[str]] = defaultdict(list)
        ids = sorted({self.customers[number].pk for number, _token in wanted})
        for chunk in _chunks(ids):
            for customer_id, token in CardBinding.objects.filter(customer_id__in=chunk).values_list(
                "customer_id", "gateway_token"
            ):
                by_customer[customer_id].append(token)
        for number, masked in wanted:
            matches = [t for t in by_customer[self.customers[number].pk] if mask_token(t) == masked]
            if len(matches) == 1:
                self.unmasked[(number, masked)] = matches[0]

    def token(self, row: dict) -> str | None:
        """The row's gateway token, a masked one resolved to the stored token it stands for."""
        token = _code(row, "gateway_token")
        if token and MASK in token:
            return self.unmasked.get((_code(row, "customer_no") or "", token), token)
        return token

    def get_instance(self, instance_loader, row):
        token = self.token(row)
        return self.existing.get(token) if token else None

    def complete(self, instance, row, errors, *, new):
        import_rules.card_binding_row_check(
            binding=instance,
            row=row,
            errors=errors,
            new=new,
            customers=self.customers,
            active=self.active,
            file_status=self.file_status,
            now=self.now,
        )

    def after_init_instance(self, instance, new, row, **kwargs):
        super().after_init_instance(instance, new, row, **kwargs)
        instance.tracker_status = instance.status

    def dehydrate_gateway_token(self, binding: CardBinding) -> str:
        return _shown(binding.gateway_token, self.unmask, "card-bindings", "gateway_token")

    def dehydrate_reserved_phone(self, binding: CardBinding) -> str:
        return _shown(binding.reserved_phone, self.unmask, "card-bindings", "reserved_phone")

    def dehydrate_card_number(self, binding: CardBinding) -> str:
        return ""


class BillResource(NaturalKeyResource):
    resource_name = "bills"
    key_column = "bill_no"
    unique_in_file = (("customer_no", "period"),)

    def __init__(self, *, settle: bool = True, **kwargs) -> None:
        """``settle``: age the written bills and refresh available credit after an applied
        import (``bills_import_settle``); the import service passes ``False`` and settles
        once after the last chunk of a file."""
        super().__init__(**kwargs)
        self.settle = settle
        self.new_lines: list[int] = []
        self.settled: dict[str, object] | None = None

    bill_no = _field(
        "bill_no", lambda v: cells.parse_code(v, what=pgettext_lazy("import cell", "bill_no"), max_length=40)
    )
    customer_no = _key_field("customer_no", "customer__customer_no")
    period = _field("period", cells.parse_period)
    statement_date = _field(
        "statement_date", lambda v: cells.parse_date(v, what=pgettext_lazy("import cell", "statement date"))
    )
    due_date = _field("due_date", lambda v: cells.parse_date(v, what=pgettext_lazy("import cell", "due date")))
    statement_balance = _field(
        "statement_balance",
        lambda v: cells.parse_amount(v, what=pgettext_lazy("import cell", "statement balance"), allow_negative=True),
        optional=True,
    )
    amount_due = _field("amount_due", lambda v: cells.parse_amount(v, what=pgettext_lazy("import cell", "amount due")))
    minimum_due = _field(
        "minimum_due", lambda v: cells.parse_amount(v, what=pgettext_lazy("import cell", "minimum due"))
    )
    amount_paid = _field(
        "amount_paid", lambda v: cells.parse_amount(v, what=pgettext_lazy("import cell", "amount paid")), optional=True
    )
    status = _field(
        "status",
        lambda v: cells.parse_choice(v, what=pgettext_lazy("import cell", "status"), words=BILL_STATUS_WORDS),
        optional=True,
    )

    model_update_fields = [
        "period",
        "statement_date",
        "due_date",
        "original_due_date",
        "statement_balance",
        "amount_due",
        "minimum_due",
        "amount_paid",
        "status",
        "carried_forward",
        "past_due_amount",
        "updated_at",
    ]
    compared_fields = ("customer_id", *model_update_fields[:-1])

    class Meta:
        model = Bill
        fields = (
            "bill_no",
            "customer_no",
            "period",
            "statement_date",
            "due_date",
            "statement_balance",
            "amount_due",
            "minimum_due",
            "amount_paid",
            "status",
        )
        import_id_fields = ("bill_no",)
        use_bulk = True
        batch_size = 2000
        skip_diff = True
        clean_model_instances = False

    def get_queryset(self):
        return Bill.objects.select_related("customer")

    def prepare(self, rows):
        self.customers = _customers_by_no(n for n in (_code(r, "customer_no") for r in rows) if n)
        numbers = [n for n in (_code(r, "bill_no") for r in rows) if n]
        self.existing = {}
        for chunk in _chunks(sorted(set(numbers))):
            self.existing.update(
                {b.bill_no: b for b in Bill.objects.select_related("customer").filter(bill_no__in=chunk)}
            )
        # (customer, period) -> bill_no already in the database, for the one-bill-per-period rule.
        self.periods: dict[tuple[int, dt.date], str] = {}
        ids = [c.pk for c in self.customers.values()]
        for id_chunk in _chunks(ids):
            for customer_id, period, bill_no in Bill.objects.filter(customer_id__in=id_chunk).values_list(
                "customer_id", "period", "bill_no"
            ):
                self.periods[(customer_id, period)] = bill_no
        # A customer without a credit line gets one with limit 0 (a service: the rule and the
        # write are not the resource's); the import's notes say how many.
        from repayments.services.credit_lines import credit_lines_open_missing

        self.new_lines = credit_lines_open_missing(customer_ids=ids)
        self.lines: dict[int, int] = {}
        for id_chunk in _chunks(ids):
            self.lines.update(CreditLine.objects.filter(customer_id__in=id_chunk).values_list("customer_id", "id"))

    def after_init_instance(self, instance, new, row, **kwargs):
        super().after_init_instance(instance, new, row, **kwargs)
        instance.file_due_before = None if new else (instance.due_date, instance.original_due_date)
        instance.booked_before = None if new else (instance.amount_paid, instance.status)

    def complete(self, instance, row, errors, *, new):
        import_rules.bill_row_check(
            bill=instance, row=row, errors=errors, new=new, customers=self.customers, periods=self.periods
        )

    def before_save_instance(self, instance, row, **kwargs):
        super().before_save_instance(instance, row, **kwargs)
        if instance.credit_line_id is None:
            instance.credit_line_id = self.lines[instance.customer_id]

    def after_import(self, dataset, result, **kwargs):
        super().after_import(dataset, result, **kwargs)
        self.settled = None
        if self.settle and self.written and self.applied(result, kwargs):
            from repayments.services.imports import bills_import_settle

            self.settled = bills_import_settle(bill_ids=[bill.pk for bill in self.written])


class RepaymentAttemptResource(NaturalKeyResource):
    """Repayment attempts as the bank reported them. Importing an attempt records it;
    it does not move money on the bill (``amount_paid`` comes with the bills file)."""

    resource_name = "repayment-attempts"
    key_column = "attempt_no"
    chunkable = False  # rows compared with each other in ``prepare`` (one attempt in flight per bill)

    attempt_no = _field(
        "attempt_no", lambda v: cells.parse_code(v, what=pgettext_lazy("import cell", "attempt_no"), max_length=64)
    )
    bill_no = _key_field("bill_no", "bill__bill_no")
    channel = _field(
        "channel",
        lambda v: cells.parse_choice(v, what=pgettext_lazy("import cell", "channel"), words=CHANNEL_WORDS),
        optional=True,
    )
    amount = _field("amount", lambda v: cells.parse_amount(v, what=pgettext_lazy("import cell", "amount")))
    status = _field(
        "status",
        lambda v: cells.parse_choice(v, what=pgettext_lazy("import cell", "status"), words=ATTEMPT_STATUS_WORDS),
    )
    failure_code = _field(
        "failure_code", lambda v: cells.parse_code(v, what=pgettext_lazy("import cell", "failure code")), optional=True
    )
    requested_at = _field(
        "requested_at", lambda v: cells.parse_datetime(v, what=pgettext_lazy("import cell", "requested time"))
    )
    completed_at = _field(
        "completed_at",
        lambda v: cells.parse_datetime(v, what=pgettext_lazy("import cell", "completed time")),
        optional=True,
    )

    model_update_fields = [
        "channel",
        "amount",
        "status",
        "failure_code",
        "failure_family",
        "requested_at",
        "completed_at",
        "updated_at",
    ]
    compared_fields = ("bill_id", *model_update_fields[:-1])

    class Meta:
        model = RepaymentAttempt
        fields = (
            "attempt_no",
            "bill_no",
            "channel",
            "amount",
            "status",
            "failure_code",
            "requested_at",
            "completed_at",
        )
        import_id_fields = ("attempt_no",)
        use_bulk = True
        batch_size = 2000
        skip_diff = True
        clean_model_instances = False

    def get_queryset(self):
        return RepaymentAttempt.objects.select_related("bill")

    def prepare(self, rows):
        bill_numbers = sorted({n for n in (_code(r, "bill_no") for r in rows) if n})
        self.bills: dict[str, Bill] = {}
        for chunk in _chunks(bill_numbers):
            self.bills.update({b.bill_no: b for b in Bill.objects.only("id", "bill_no").filter(bill_no__in=chunk)})
        numbers = sorted({n for n in (_code(r, "attempt_no") for r in rows) if n})
        self.existing = {}
        for chunk in _chunks(numbers):
            self.existing.update(
                {a.attempt_no: a for a in RepaymentAttempt.objects.select_related("bill").filter(attempt_no__in=chunk)}
            )
        self.in_flight: dict[int, str] = {}
        ids = [b.pk for b in self.bills.values()]
        for id_chunk in _chunks(ids):
            attempts = RepaymentAttempt.objects.filter(bill_id__in=id_chunk, status__in=IN_FLIGHT_ATTEMPT_STATUSES)
            self.in_flight.update(attempts.values_list("bill_id", "attempt_no"))
        in_flight_rows: dict[str, list[int]] = defaultdict(list)
        for number, row in enumerate(rows, start=1):
            status = ATTEMPT_STATUS_WORDS.get(cells.normalize(row.get("status")).lower())
            bill_no = _code(row, "bill_no")
            if bill_no and status in IN_FLIGHT_ATTEMPT_STATUSES:
                in_flight_rows[bill_no].append(number)
        for row_numbers in in_flight_rows.values():
            if len(row_numbers) > 1:
                for number in row_numbers:
                    others = ", ".join(str(self.sheet_row(n)) for n in row_numbers if n != number)
                    self.add_problem(
                        number,
                        "status",
                        _("A bill has at most one attempt in flight; row %(rows)s is another.") % {"rows": others},
                    )

    def complete(self, instance, row, errors, *, new):
        import_rules.repayment_attempt_row_check(
            attempt=instance, row=row, errors=errors, new=new, bills=self.bills, in_flight=self.in_flight
        )


RESOURCE_CLASSES: dict[str, type[NaturalKeyResource]] = {
    "customers": CustomerResource,
    "credit-lines": CreditLineResource,
    "card-bindings": CardBindingResource,
    "bills": BillResource,
    "repayment-attempts": RepaymentAttemptResource,
}
