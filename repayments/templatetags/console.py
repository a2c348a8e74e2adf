"""Template filters for the console: money with its currency."""

from decimal import Decimal

from django import template

from baitiao.money import format_money

register = template.Library()


@register.filter
def money(amount: Decimal | None, currency: str = "") -> str:
    """``{{ bill.amount_due|money:"TWD" }}`` → ``TWD 1,234.50``."""
    if amount is None:
        return "—"
    return format_money(amount, currency).strip()
