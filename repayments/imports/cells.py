"""Parsing of single cells as Excel on Chinese Windows writes them.

Every parser takes the cell's text as read from the file and returns a Python
value, or raises :class:`CellError` (a ``ValueError``, so django-import-export
reports it against the column) with a message an analyst can act on.

Rules (``docs/csv.md`` lists them for analysts):

* Codes, IDs, phones and card numbers are text: leading zeros are kept, a final
  ``X`` of a resident ID is kept (upper-cased), and a value Excel damaged is refused:
  scientific notation (``4.40300E+17``), a ``.0`` suffix (the column was a number),
  or an 18-digit number whose tail Excel filled with zeros (it keeps 15 digits).
* Numbers and dates are normalised first with Unicode NFKC: full-width digits,
  full-width punctuation and ideographic spaces become ASCII.
* Money is ``Decimal`` built from the text, never ``float``; more than two places
  are rounded half-up to the cent (``baitiao.money.to_money``).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from baitiao.money import to_money

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

TEXT_FORMAT_HINT = gettext_lazy(
    "In Excel, format this column as Text before typing or pasting the values, then save again."
)

# Excel shows numbers of 12+ digits in scientific notation (General format).
_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:\.\d*)?[eE][+-]?\d+$")
_DOT_ZERO = re.compile(r"^\d+\.0+$")
_GROUPED = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_PLAIN_NUMBER = re.compile(r"^\d+(?:\.\d+)?$|^\.\d+$")
_CURRENCY_PREFIXES = ("NT$", "RMB", "CNY", "TWD", "US$", "HK$", "¥", "$")
_CURRENCY_SUFFIXES = ("元",)

# Largest amount accepted in any money column (yuan / NT$): larger is a typo or damage.
MAX_AMOUNT = Decimal("100000000.00")

# Excel serial day numbers: day 0 is 1899-12-30 (the 1900 leap-year bug included).
_EXCEL_EPOCH = dt.date(1899, 12, 30)
# Serials accepted as dates: 1954-10-04 … 2119-01-10; five digits, never YYYYMMDD.
_EXCEL_SERIAL_RANGE = (20000, 80000)


class CellError(ValueError):
    """A cell's value is refused; the message says why and what to do."""


def _with_hint(message: str) -> str:
    """``message`` followed by the text-format hint, in the active language."""
    # Translators: a sentence followed by the hint to format the column as Text.
    return _("%(problem)s %(hint)s") % {"problem": message, "hint": TEXT_FORMAT_HINT}


# Nouns naming a cell in messages ("The due date ... is empty."); callers mark theirs the same way.
_CODE = pgettext_lazy("import cell", "code")
_NATIONAL_ID = pgettext_lazy("import cell", "national ID")
_PHONE = pgettext_lazy("import cell", "phone")
_AMOUNT = pgettext_lazy("import cell", "amount")
_DATE = pgettext_lazy("import cell", "date")
_PERIOD = pgettext_lazy("import cell", "period")
_TIME = pgettext_lazy("import cell", "time")


def _empty(what: StrOrPromise) -> str:
    return _("The %(what)s is empty.") % {"what": what}


def normalize(raw: object) -> str:
    """The cell as text: NFKC-normalised (full-width → ASCII), trimmed; ``None`` → ``""``."""
    if raw is None:
        return ""
    text = unicodedata.normalize("NFKC", str(raw))
    return text.strip().strip("\u200b\ufeff").strip()


def plain_text(raw: object) -> str:
    """Free text (names, bank names): trimmed, otherwise kept as typed (no NFKC).

    A leading apostrophe before ``= + - @`` is dropped: it is the formula guard our
    own exports add (``baitiao.csvfiles``), so a round trip is lossless.
    """
    text = "" if raw is None else str(raw).strip()
    if len(text) > 1 and text[0] == "'" and text[1] in "=+-@":
        return text[1:]
    return text


def refuse_spreadsheet_damage(text: str, what: StrOrPromise) -> None:
    """Raise if ``text`` is a code that Excel turned into a number.

    Raises:
        CellError: scientific notation or a ``.0`` suffix.
    """
    if _SCIENTIFIC.match(text):
        raise CellError(
            _with_hint(
                _("This is in scientific notation: Excel turned the %(what)s into a number and lost digits.")
                % {"what": what}
            )
        )
    if _DOT_ZERO.match(text):
        raise CellError(
            _with_hint(
                _("This ends in '.0': the spreadsheet stored the %(what)s as a number, which also drops leading zeros.")
                % {"what": what}
            )
        )


def parse_code(raw: object, *, what: StrOrPromise = _CODE, max_length: int = 40) -> str:
    """A natural key (``customer_no``, ``bill_no``, ``attempt_no``): text, kept exactly.

    Args:
        raw: the cell.
        what: the column's name for messages.
        max_length: the model field's length.

    Raises:
        CellError: empty, too long, contains spaces, or damaged by a spreadsheet.
    """
    text = normalize(raw)
    if not text:
        raise CellError(_empty(what))
    refuse_spreadsheet_damage(text, what)
    if len(text) > max_length:
        raise CellError(
            _("The %(what)s has %(length)d characters; at most %(max)d are allowed.")
            % {"what": what, "length": len(text), "max": max_length}
        )
    if any(ch.isspace() for ch in text):
        raise CellError(_("The %(what)s %(value)s contains a space.") % {"what": what, "value": repr(text)})
    return text


def row_code(row: dict, column: str) -> str | None:
    """The code in ``row[column]`` as :func:`parse_code` reads it, or ``None`` when the cell
    is missing, empty or not a valid code (the cell's own parser reports why).

    Args:
        row: ``{column name: raw cell}`` of one file row.
        column: the column holding a natural key (``customer_no``, ``bill_no`` …).
    """
    try:
        return parse_code(row.get(column))
    except CellError:
        return None


def parse_digits(raw: object, *, what: StrOrPromise, lengths: tuple[int, int]) -> str:
    """A number written as digits that must stay text (BIN, last four digits).

    Args:
        raw: the cell.
        what: the column's name for messages.
        lengths: the smallest and largest number of digits.

    Raises:
        CellError: damaged, not digits, or of the wrong length.
    """
    text = normalize(raw).replace(" ", "")
    refuse_spreadsheet_damage(text, what)
    if not text.isdigit():
        raise CellError(_("The %(what)s %(value)s must be digits only.") % {"what": what, "value": repr(text)})
    low, high = lengths
    if not low <= len(text) <= high:
        expected = f"{low}" if low == high else _("%(low)d to %(high)d") % {"low": low, "high": high}
        raise CellError(
            _("The %(what)s %(value)s has %(length)d digits, not %(expected)s (a leading zero lost? %(hint)s)")
            % {"what": what, "value": repr(text), "length": len(text), "expected": expected, "hint": TEXT_FORMAT_HINT}
        )
    return text


def parse_national_id(raw: object) -> str:
    """An 18-character resident identity number (GB 11643-1999), checked with ``stdnum.cn.ric``.

    Returns the compact upper-case form (a final ``x`` becomes ``X``).

    Raises:
        CellError: damaged by a spreadsheet (scientific notation, ``.0``, zero-filled
            tail), wrong length, invalid birth date or check character.
    """
    from stdnum.cn import ric
    from stdnum.exceptions import InvalidChecksum, ValidationError

    text = normalize(raw).replace(" ", "").upper()
    refuse_spreadsheet_damage(text, _NATIONAL_ID)
    if len(text) == 15 and text.isdigit():
        raise CellError(
            _with_hint(
                _(
                    "This is a 15-digit ID: either Excel cut it to 15 digits or it is an old-style ID. "
                    "Only 18-character IDs are accepted."
                )
            )
        )
    try:
        return ric.validate(text)
    except InvalidChecksum:
        if len(text) == 18 and text[15:] == "000":
            raise CellError(
                _with_hint(
                    _(
                        "This ID ends in 000 and its check character is wrong: Excel keeps 15 digits and filled "
                        "the rest with zeros."
                    )
                )
            ) from None
        raise CellError(_("The national ID has a wrong check character: a digit was mistyped.")) from None
    except ValidationError as exc:
        raise CellError(_("This is not a valid 18-character national ID (%(reason)s).") % {"reason": exc}) from None


def parse_mobile(raw: object, *, what: StrOrPromise = _PHONE) -> str:
    """A mainland China mobile number (``phonenumbers``), returned as 11 digits.

    ``+8613800138000``, ``+86 138 0013 8000`` and ``13800138000`` are the same number.

    Raises:
        CellError: damaged, not a number, or not a mainland mobile number.
    """
    import phonenumbers

    text = normalize(raw)
    refuse_spreadsheet_damage(text, what)
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        raise CellError(_("This is not a phone number.")) from None
    if number.country_code != 86 or not phonenumbers.is_valid_number(number):
        raise CellError(_("This is not a valid mainland China phone number."))
    if phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise CellError(_("This is not a mobile number."))
    return str(number.national_number)


def parse_int(raw: object, *, what: StrOrPromise, low: int, high: int) -> int:
    """A whole number in ``[low, high]``; ``720.0`` is accepted as 720 (a number column).

    Raises:
        CellError: not a whole number or out of range.
    """
    text = normalize(raw).replace(",", "")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise CellError(_("The %(what)s %(value)s is not a number.") % {"what": what, "value": repr(text)}) from None
    if not number.is_finite() or number != number.to_integral_value():
        raise CellError(_("The %(what)s %(value)s is not a whole number.") % {"what": what, "value": repr(text)})
    if not low <= number <= high:
        raise CellError(
            _("The %(what)s %(value)s is outside %(low)d–%(high)d.")
            % {"what": what, "value": text, "low": low, "high": high}
        )
    return int(number)


def parse_amount(raw: object, *, what: StrOrPromise = _AMOUNT, allow_negative: bool = False) -> Decimal:
    """Money as exact ``Decimal`` with two places, rounded half-up (``baitiao.money.to_money``).

    Accepts thousands separators in groups of three (``1,234.50``), a currency
    prefix (``¥``, ``NT$``, ``RMB``, ``CNY``) or ``元`` suffix, full-width digits and
    spaces, a leading minus or accounting parentheses (``(12.00)``) where negative
    amounts are allowed.

    Args:
        raw: the cell.
        what: the column's name for messages.
        allow_negative: only ``statement_balance`` may be negative (a credit balance).

    Raises:
        CellError: empty, not an amount, badly grouped separators, scientific
            notation, negative where not allowed, or above ``MAX_AMOUNT``.
    """
    text = normalize(raw).replace(" ", "")
    original = text
    if not text:
        raise CellError(_empty(what))
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1]
    if text.startswith("-"):
        negative, text = not negative, text[1:]
    elif text.startswith("+"):
        text = text[1:]
    for prefix in _CURRENCY_PREFIXES:
        if text.upper().startswith(prefix):
            text = text[len(prefix) :]
            break
    for suffix in _CURRENCY_SUFFIXES:
        text = text.removesuffix(suffix)
    if text.startswith("-") and not negative:  # "¥-12.00"
        negative, text = True, text[1:]
    if _SCIENTIFIC.match(text):
        raise CellError(
            _(
                "The %(what)s %(value)s is in scientific notation; write the exact amount "
                "(format the column as Number with 2 decimal places)."
            )
            % {"what": what, "value": repr(original)}
        )
    if "," in text:
        if not _GROUPED.match(text):
            raise CellError(
                _("The %(what)s %(value)s has misplaced thousands separators.")
                % {"what": what, "value": repr(original)}
            )
        text = text.replace(",", "")
    if not _PLAIN_NUMBER.match(text):
        raise CellError(_("The %(what)s %(value)s is not an amount.") % {"what": what, "value": repr(original)})
    amount = to_money(text)
    if negative:
        amount = -amount
    if amount < 0 and not allow_negative:
        raise CellError(_("The %(what)s %(value)s is negative.") % {"what": what, "value": repr(original)})
    if abs(amount) > MAX_AMOUNT:
        raise CellError(
            _("The %(what)s %(value)s is above %(max)s: a typo or a damaged cell.")
            % {"what": what, "value": repr(original), "max": f"{MAX_AMOUNT:,.2f}"}
        )
    return amount


_DATE_PATTERNS = (
    re.compile(r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})$"),
    re.compile(r"^(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})$"),
    re.compile(r"^(?P<y>\d{4})\.(?P<m>\d{1,2})\.(?P<d>\d{1,2})$"),
    re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$"),
    re.compile(r"^(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日?$"),
)
_PERIOD_PATTERNS = (
    re.compile(r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})$"),
    re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})$"),
    re.compile(r"^(?P<y>\d{4})年(?P<m>\d{1,2})月?$"),
)
# Not `_TIME`: that name is the noun of time cells above (the default `what` of parse_datetime).
_CLOCK = re.compile(r"^(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,6}))?)?$")


def _date_part(text: str, what: StrOrPromise) -> dt.date:
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            try:
                return dt.date(int(match["y"]), int(match["m"]), int(match["d"]))
            except ValueError:
                raise CellError(
                    _("The %(what)s %(value)s is not a real calendar date.") % {"what": what, "value": repr(text)}
                ) from None
    serial = text.removesuffix(".0") if _DOT_ZERO.match(text) else text
    if serial.isdigit() and _EXCEL_SERIAL_RANGE[0] <= int(serial) <= _EXCEL_SERIAL_RANGE[1]:
        return _EXCEL_EPOCH + dt.timedelta(days=int(serial))
    if re.match(r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}$", text):
        raise CellError(
            _(
                "The %(what)s %(value)s puts the day or month first, which is ambiguous; write the year first "
                "(2024-03-05 or 2024年3月5日)."
            )
            % {"what": what, "value": repr(text)}
        )
    raise CellError(
        _("The %(what)s %(value)s is not a date (write 2024-03-05, 2024/3/5, 20240305 or 2024年3月5日).")
        % {"what": what, "value": repr(text)}
    )


def parse_date(raw: object, *, what: StrOrPromise = _DATE) -> dt.date:
    """A calendar date: ``2024-03-05``, ``2024/3/5``, ``2024.3.5``, ``20240305``, ``2024年3月5日``
    or an Excel serial day number (``45356``); a time of ``00:00[:00]`` after it is ignored.

    Raises:
        CellError: empty, unknown form, a day-first form, or not a real date.
    """
    text = normalize(raw)
    if not text:
        raise CellError(_empty(what))
    date_text, _sep, time_text = text.replace("T", " ").partition(" ")
    if time_text and time_text.strip() not in ("00:00", "00:00:00", "0:00", "0:00:00"):
        raise CellError(
            _("The %(what)s %(value)s has a time of day; a date is expected.") % {"what": what, "value": repr(text)}
        )
    return _date_part(date_text, what)


def parse_period(raw: object, *, what: StrOrPromise = _PERIOD) -> dt.date:
    """A billing month as its first day: ``2024-03``, ``2024/3``, ``202403``, ``2024年3月`` or any full date.

    Raises:
        CellError: not a month.
    """
    text = normalize(raw)
    if not text:
        raise CellError(_empty(what))
    for pattern in _PERIOD_PATTERNS:
        match = pattern.match(text)
        if match:
            month = int(match["m"])
            if not 1 <= month <= 12:
                raise CellError(
                    _("The %(what)s %(value)s has no month %(month)d.")
                    % {"what": what, "value": repr(text), "month": month}
                )
            return dt.date(int(match["y"]), month, 1)
    try:
        return parse_date(text, what=what).replace(day=1)
    except CellError:
        raise CellError(
            _("The %(what)s %(value)s is not a month (write 2024-03 or 2024年3月).")
            % {"what": what, "value": repr(text)}
        ) from None


def parse_datetime(raw: object, *, what: StrOrPromise = _TIME) -> dt.datetime:
    """A moment: a date in any :func:`parse_date` form, a space or ``T``, and ``H:MM[:SS]``.

    A time without a UTC offset is business time (Asia/Shanghai); a date alone is
    00:00 business time. ``+08:00`` / ``Z`` offsets are honoured (the result is then in UTC). Returns an aware datetime.

    Raises:
        CellError: not a date and time.
    """
    text = normalize(raw)
    if not text:
        raise CellError(_empty(what))
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None:
        date_text, _sep, time_text = text.replace("T", " ").partition(" ")
        day = _date_part(date_text, what)
        moment = dt.time(0, 0)
        if time_text.strip():
            match = _CLOCK.match(time_text.strip())
            if not match:
                raise CellError(
                    _("The %(what)s %(value)s has a time that is not H:MM or H:MM:SS.")
                    % {"what": what, "value": repr(text)}
                )
            try:
                moment = dt.time(int(match["H"]), int(match["M"]), int(match["S"] or 0))
            except ValueError:
                raise CellError(
                    _("The %(what)s %(value)s is not a real time of day.") % {"what": what, "value": repr(text)}
                ) from None
        parsed = dt.datetime.combine(day, moment)
    if timezone.is_naive(parsed):
        return timezone.make_aware(parsed, timezone.get_default_timezone())
    # A stated offset: the same instant in UTC (Python accepts offsets up to ±23:59,
    # PostgreSQL only up to ±15:59).
    return parsed.astimezone(dt.UTC)


def parse_choice(raw: object, *, what: StrOrPromise, words: dict[str, str], default: str | None = None) -> str:
    """A status or code from English or Chinese words (case-insensitive).

    Args:
        raw: the cell.
        what: the column's name for messages.
        words: lower-case word → stored value (``repayments.imports.columns``).
        default: the value of an empty cell; ``None`` makes an empty cell an error.

    Raises:
        CellError: empty without a default, or a word we do not know.
    """
    text = normalize(raw)
    if not text:
        if default is None:
            raise CellError(_empty(what))
        return default
    value = words.get(text.lower())
    if value is None:
        allowed = ", ".join(sorted(set(words.values())))
        raise CellError(
            _("The %(what)s %(value)s is not one we know (allowed: %(allowed)s; Chinese words in docs/csv.md).")
            % {"what": what, "value": repr(text), "allowed": allowed}
        )
    return value
