"""Template filters for the console: money and numbers, business time, masked cards, codes in words.

The formats every page shares (docs/console.md, "Formats"): a date-time is
business time (Asia/Shanghai) as ``2026-12-07 22:41``, whatever it came as
(an aware datetime, or an ISO 8601 string in an audit snapshot); money and counts
carry the active language's thousands separators.
"""

import datetime as dt
import json
import re
from decimal import Decimal

from django import template
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from baitiao.masking import mask_card, mask_name, mask_phone
from baitiao.money import format_money, to_money
from repayments.bins import bank_is_known, bank_label
from repayments.imports.columns import RESOURCE_LABELS
from repayments.models import Channel, ExtensionReason, FailureCode, FailureFamily

ISO_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?$")

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
    return format_money(to_money(amount), currency).strip()  # the one money format (baitiao.money)


@register.filter
def number(value):
    """``{{ 1537415363.25|number }}`` → ``1,537,415,363.25``: an int or Decimal with the language's separators.

    A Decimal keeps its places (an amount two, a percentage as computed); anything
    else (a label, ``None``) is returned unchanged.
    """
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return value
    return number_format(value, use_l10n=True, force_grouping=True)


def _business_time(value: dt.datetime | str | None) -> dt.datetime | None:
    if isinstance(value, str):
        value = parse_datetime(value) if ISO_DATETIME.match(value.strip()) else None
    if not isinstance(value, dt.datetime):
        return None
    if timezone.is_naive(value):  # stored times are UTC (USE_TZ); a naive one came from a UTC snapshot
        value = timezone.make_aware(value, dt.UTC)
    return timezone.localtime(value, timezone.get_default_timezone())


@register.filter
def when(value: dt.datetime | str | None) -> str:
    """A moment as the console shows it everywhere: business time (Asia/Shanghai), ``2026-12-07 22:41``.

    The format is ``DATETIME_FORMAT`` of ``baitiao/formats/`` (the same in every language).

    Args:
        value: an aware datetime (stored in UTC), a naive one (taken as UTC) or an
            ISO 8601 string (``2026-12-07T14:41:39Z``, ``…+08:00``).

    Returns:
        The formatted moment; ``""`` for ``None``, so ``|when|default:"—"`` works;
        any other value unchanged as text.
    """
    moment = _business_time(value)
    if moment is None:
        return "" if value is None else str(value)
    return date_format(moment, "DATETIME_FORMAT", use_l10n=True)


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
    """A gateway failure code in the reader's language; unknown bank codes as they came.

    Also a binding's status reason: the words the services write (``BINDING_REASONS``),
    and ``card_expired on A-123`` (the collection engine: the code and the attempt
    that found it) as "Card expired (attempt A-123)".
    """
    if not code:
        return ""
    if code in BINDING_REASONS:
        return str(BINDING_REASONS[code])
    if (found := FOUND_BY_ATTEMPT.match(code)) and found["code"] in FailureCode.values:
        return _("%(reason)s (attempt %(attempt)s)") % {
            "reason": FailureCode(found["code"]).label,
            "attempt": found["attempt"],
        }
    try:
        return str(FailureCode(code).label)
    except ValueError:
        return code


# Reasons the services write on a binding's status (CardBinding.status_reason), for display.
BINDING_REASONS = {
    "replaced by a verified card": gettext_lazy("replaced by a verified card"),
    "re-bound": gettext_lazy("bound again"),
    "customer anonymized": gettext_lazy("customer anonymized"),
}
# The collection engine's status reason for a card the bank refused (services/collection.py).
FOUND_BY_ATTEMPT = re.compile(r"^(?P<code>[a-z_]+) on (?P<attempt>\S+)$")


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


def _moments_in_business_time(value):
    if isinstance(value, dict):
        return {key: _moments_in_business_time(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_moments_in_business_time(item) for item in value]
    if isinstance(value, str | dt.datetime) and (moment := _business_time(value)) is not None:
        return date_format(moment, "DATETIME_FORMAT", use_l10n=True)
    return value


@register.filter
def as_json(value) -> str:
    """An audit snapshot as compact JSON; its moments (UTC ISO strings) in business time as ``|when`` shows them.

    Amounts and dates stay strings as stored; empty for ``None``.
    """
    if value is None:
        return ""
    return json.dumps(_moments_in_business_time(value), ensure_ascii=False, sort_keys=True, cls=DjangoJSONEncoder)


@register.filter
def code_label(code: str) -> str:
    """A stored code in the reader's language: an extension or waiver reason, a failure family or code, a channel.

    An audit event's reason is free text for most actions but the reason code for
    casework (``hardship``); text that is no code comes back as it is.
    """
    if not code:
        return ""
    for choices in (ExtensionReason, FailureFamily, FailureCode, Channel):
        if code in choices.values:
            return str(choices(code).label)
    return str(code)


# What an audit event acted on (``AuditEvent.target_type``: a model label, or a word for what is no row).
TARGET_LABELS = {
    "repayments.customer": gettext_lazy("customer"),
    "repayments.creditline": gettext_lazy("credit line"),
    "repayments.cardbinding": gettext_lazy("card binding"),
    "repayments.bill": gettext_lazy("bill"),
    "repayments.extension": gettext_lazy("extension"),
    "repayments.waiver": gettext_lazy("waiver"),
    "repayments.bureausuppression": gettext_lazy("bureau suppression"),
    "repayments.customernote": gettext_lazy("customer note"),
    "repayments.repaymentattempt": gettext_lazy("repayment attempt"),
    "repayments.bindingrepaircase": gettext_lazy("binding repair case"),
    "repayments.gatewayreviewitem": gettext_lazy("gateway review item"),
    "repayments.importjob": gettext_lazy("import job"),
    "repayments.incident": gettext_lazy("incident"),
    "repayments.reliefbatch": gettext_lazy("relief batch"),
    "repayments.reliefitem": gettext_lazy("relief item"),
    "repayments.reminder": gettext_lazy("reminder"),
    "repayments.notification": gettext_lazy("notification"),
    "repayments.dashboard": gettext_lazy("dashboard"),
    "accounts.user": gettext_lazy("staff user"),
    "accounts.auditevent": gettext_lazy("audit event"),
    "dataset": gettext_lazy("data set"),
    "job": gettext_lazy("job"),
}


@register.filter
def target_label(target_type: str) -> str:
    """An audit event's ``target_type`` (``repayments.extension``) in the reader's language; unknown ones unchanged."""
    return str(TARGET_LABELS.get(target_type, target_type))


@register.filter
def resource_label(name: str) -> str:
    """An import/export resource (``credit-lines``) in the reader's language; unknown names unchanged."""
    return str(RESOURCE_LABELS.get(name, name))


@register.simple_tag
def open_incidents() -> list[dict]:
    """``{% open_incidents as incidents %}``: open incidents for the console banner (cached briefly)."""
    from repayments.selectors.incidents import incidents_open_banner

    return incidents_open_banner()
