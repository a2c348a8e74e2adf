"""Money: ``Decimal`` with two places, built from ``str``/``int``, never ``float``.

Amounts are in the currency of the credit line (yuan for CNY, New Taiwan dollars
for TWD). One rounding rule everywhere: half-up to the cent.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

#: The lender's own currency (ISO 4217): a credit line's when nothing else is known.
HOME_CURRENCY = "CNY"

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def to_money(value: Decimal | int | str) -> Decimal:
    """Return ``value`` as a ``Decimal`` rounded half-up to two places.

    Args:
        value: a ``Decimal``, an ``int`` or a decimal string (``"1234.5"``, ``"5e+05"``).

    Raises:
        TypeError: ``value`` is a ``float`` (binary floats cannot hold cents exactly)
            or another type.
        ValueError: the string is not a finite decimal number.
    """
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError("money must not be built from float or bool")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(f"not a decimal amount: {value!r}") from exc
    else:
        raise TypeError(f"cannot make money from {type(value).__name__}")
    if not number.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return number.quantize(CENT, rounding=ROUND_HALF_UP)


def percent_of(amount: Decimal, percent: Decimal | int | str) -> Decimal:
    """``percent`` % of ``amount``, rounded half-up to the cent.

    ``percent_of(Decimal("123.45"), 10)`` is ``Decimal("12.35")``.

    Raises:
        TypeError: ``percent`` is a ``float``.
    """
    if isinstance(percent, float):
        raise TypeError("percent must not be a float")
    return to_money(amount * Decimal(percent) / Decimal(100))


def format_money(amount: Decimal, currency: str) -> str:
    """``"TWD 1,234.50"``: the currency code, thousands separators, two places."""
    return f"{currency} {amount:,.2f}"
