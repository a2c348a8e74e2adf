"""Template filters for the console: money with its currency, masked cards, failure codes."""

import json
from decimal import Decimal

from django import template
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.translation import gettext_lazy

from baitiao.masking import mask_card, mask_name, mask_phone
from baitiao.money import format_money
from repayments.bins import bank_is_known, bank_label
from repayments.models import FailureCode

register = template.Library()


@register.filter
def money(amount: Decimal | None, currency: str = "") -> str:
    """``{{ bill.amount_due|money:"TWD" }}`` → ``TWD 1,234.50``; no amount → ``—``.

    No amount is ``None`` or the empty string a template gives for a relation that
    is not there (a customer without a credit line, in the search results): a dash,
    not a server error.
    """
    if amount is None or amount == "":
        return "—"
    return format_money(amount, currency).strip()


@register.filter(name="bank_label")
def bank_label_filter(code: str, fallback: str = "") -> str:
    """``{{ incident.bank_code|bank_label }}``: the bank's one name on every page, in the reader's language.

    The Chinese name on Chinese pages, the English one on English pages
    (``repayments.bins.bank_label``); a code the BIN table lacks reads as ``fallback``
    (e.g. the binding's stored bank name) or, without one, as the code. ``""`` stays ``""``.
    """
    if not code:
        return fallback or ""
    if not bank_is_known(code.strip().upper()):
        return fallback or code
    return bank_label(code)


@register.filter
def card_mask(last4: str, bin_: str = "") -> str:
    """``{{ binding.last4|card_mask:binding.bin }}`` → ``622848 **** **** 1234``."""
    return mask_card(last4, bin_)


@register.filter
def failure_label(code: str) -> str:
    """A gateway failure code in the reader's language; unknown bank codes as they came."""
    if not code:
        return ""
    if code in BINDING_REASONS:
        return str(BINDING_REASONS[code])
    try:
        return str(FailureCode(code).label)
    except ValueError:
        return code


# Reasons the services write on a binding's status (CardBinding.status_reason), for display.
BINDING_REASONS = {
    "replaced by a verified card": gettext_lazy("replaced by a verified card"),
    "re-bound": gettext_lazy("bound again"),
}


@register.filter(name="mask_name")
def mask_name_filter(value: str) -> str:
    return mask_name(value or "")


@register.filter(name="mask_phone")
def mask_phone_filter(value: str) -> str:
    return mask_phone(value or "")


@register.filter
def sub(left: Decimal, right: Decimal) -> Decimal:
    """``{{ bill.late_fee|sub:bill.late_fee_waived }}``: exact Decimal subtraction."""
    return left - right


@register.filter
def as_json(value) -> str:
    """An audit snapshot as compact JSON (amounts and dates as strings); empty for ``None``."""
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, cls=DjangoJSONEncoder)


@register.simple_tag
def open_incidents() -> list[dict]:
    """``{% open_incidents as incidents %}``: open incidents for the console banner (cached briefly)."""
    from repayments.selectors.incidents import incidents_open_banner

    return incidents_open_banner()
