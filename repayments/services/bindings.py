"""Card-binding repair: verify a new card through the gateway, retire the old one, retry."""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from stdnum import luhn
from stdnum.exceptions import ValidationError as StdnumValidationError

from accounts.models import User
from accounts.services import audit_record
from baitiao.masking import phone_digits
from repayments.bins import BinInfo, bin_lookup
from repayments.gateway.client import BindChallenge, GatewayError, GatewayTimeout, GatewayUnreachable, get_gateway
from repayments.models import BindingRepairCase, CardBinding, CardBindingStatus, Customer, RepairCaseStatus
from repayments.services.collection import bills_retry_after_rebinding
from repayments.services.errors import RuleViolation


class BindingError(RuleViolation):
    """A card or phone the agent typed is refused; ``field`` names the form field."""


@dataclass(frozen=True)
class CardCheck:
    digits: str
    issuer: BinInfo


def card_number_check(raw: str) -> CardCheck:
    """Validate a card number typed or pasted by an agent; return its digits and issuer.

    Refuses Excel damage (``6.22848E+18``), wrong length, a failed Luhn check
    (python-stdnum; ISO/IEC 7812-1 Annex B) and a BIN that is not in our table.
    Only with the sandbox bank (``settings.GATEWAY_SANDBOX``, demo mode) do its
    UnionPay test cards skip the Luhn check (``6221558812340000`` fails it); a
    production deployment validates every number.

    Raises:
        BindingError: with ``field="card_number"`` and a message for the agent.
    """
    text = raw.strip().replace(" ", "").replace("-", "")
    if "e+" in text.lower() or "." in text:
        raise BindingError("card_number", _("This looks like a number damaged by a spreadsheet (e.g. 6.22848E+18)."))
    if not text.isdigit():
        raise BindingError("card_number", _("A card number has digits only."))
    if not 12 <= len(text) <= 19:
        raise BindingError("card_number", _("A card number has 12 to 19 digits, not %(count)s.") % {"count": len(text)})
    from repayments.gateway.sandbox import TEST_CARDS

    if not (settings.GATEWAY_SANDBOX and text in TEST_CARDS):
        try:
            luhn.validate(text)
        except StdnumValidationError:
            raise BindingError("card_number", _("The check digit is wrong (Luhn): a digit was mistyped.")) from None
    issuer = bin_lookup(text)
    if issuer is None:
        raise BindingError(
            "card_number",
            _("No bank issues %(count)s-digit cards starting %(prefix)s.") % {"count": len(text), "prefix": text[:6]},
        )
    return CardCheck(digits=text, issuer=issuer)


def mobile_check(raw: str) -> str:
    """A mainland mobile number (``phonenumbers``) as 11 digits.

    Raises:
        BindingError: with ``field="reserved_phone"``.
    """
    import phonenumbers

    try:
        number = phonenumbers.parse(raw, "CN")
    except phonenumbers.NumberParseException:
        raise BindingError("reserved_phone", _("Not a phone number.")) from None
    if number.country_code != 86 or not phonenumbers.is_valid_number(number):
        raise BindingError("reserved_phone", _("Not a valid mainland China mobile number."))
    if phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise BindingError("reserved_phone", _("The reserved phone must be a mobile number."))
    return phone_digits(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def card_binding_start(*, customer: Customer, card_number: str, reserved_phone: str, actor: User) -> BindChallenge:
    """Check the new card and ask the bank to text a code to the reserved phone.

    The full card number goes to the gateway and nowhere else (not stored, not logged).

    Raises:
        BindingError: the card or phone is refused here or by the bank.
    """
    check = card_number_check(card_number)
    phone = mobile_check(reserved_phone)
    try:
        challenge = get_gateway().bind_card(card_number=check.digits, reserved_phone=phone)
    except (GatewayTimeout, GatewayUnreachable):
        raise BindingError("card_number", _("The bank did not answer. Nothing was bound; please try again.")) from None
    except GatewayError as exc:
        field = "reserved_phone" if exc.code == "reserved_phone_mismatch" else "card_number"
        raise BindingError(field, _("The bank refused the card: %(code)s.") % {"code": exc.code}) from exc
    audit_record(
        actor=actor,
        action="binding.start",
        target=customer,
        after={"bin": check.digits[:6], "last4": check.digits[-4:], "bank": check.issuer.bank_code},
    )
    return replace(
        challenge,
        bank_code=check.issuer.bank_code,
        bank_name=check.issuer.bank_name,
        card_type=check.issuer.card_type,
    )


def card_binding_confirm(
    *, customer: Customer, challenge: BindChallenge, sms_code: str, reserved_phone: str, actor: User, reason: str
) -> CardBinding:
    """Finish the binding with the SMS code; retire the old binding; retry open bills at once.

    Args:
        customer: whose card it is.
        challenge: from :func:`card_binding_start`.
        sms_code: the code the customer read out.
        reserved_phone: the verified reserved phone (stored encrypted).
        actor: the agent.
        reason: why, for the audit trail.

    Raises:
        BindingError: wrong or expired SMS code.
    """
    phone = mobile_check(reserved_phone)  # before the bank binds anything
    try:
        bound = get_gateway().confirm_binding(bind_request_id=challenge.bind_request_id, sms_code=sms_code)
    except (GatewayTimeout, GatewayUnreachable):
        raise BindingError("sms_code", _("The bank did not answer. Please ask for a new code and try again.")) from None
    except GatewayError as exc:
        raise BindingError("sms_code", _("The bank did not accept the code: %(code)s.") % {"code": exc.code}) from exc
    now = timezone.now()
    with transaction.atomic():
        Customer.objects.select_for_update().get(pk=customer.pk)  # one repair at a time per customer
        old = list(
            CardBinding.objects.filter(
                customer=customer, status__in=[CardBindingStatus.ACTIVE, CardBindingStatus.INVALID]
            )
        )
        CardBinding.objects.filter(pk__in=[b.pk for b in old]).update(
            status=CardBindingStatus.REPLACED, status_changed_at=now, status_reason="replaced by a verified card"
        )
        binding, _created = CardBinding.objects.get_or_create(
            gateway_token=bound.token,
            defaults={
                "customer": customer,
                "bin": bound.bin,
                "last4": bound.last4,
                "bank_code": challenge.bank_code,
                "bank_name": challenge.bank_name,
                "card_type": challenge.card_type,
                "reserved_phone": phone,
                "reserved_phone_last4": phone[-4:],
                "bound_at": now,
            },
        )
        if binding.customer_id != customer.pk:
            raise BindingError("card_number", _("This card is already bound to another customer."))
        if binding.status != CardBindingStatus.ACTIVE:  # the customer re-bound a card used before
            binding.status, binding.status_changed_at, binding.status_reason = CardBindingStatus.ACTIVE, now, "re-bound"
            binding.save(update_fields=["status", "status_changed_at", "status_reason", "updated_at"])
        BindingRepairCase.objects.filter(customer=customer, status=RepairCaseStatus.OPEN).update(
            status=RepairCaseStatus.RESOLVED, resolved_at=now, resolved_by=actor, new_binding=binding, updated_at=now
        )
        audit_record(
            actor=actor,
            action="binding.replace",
            target=binding,
            customer=customer,
            reason=reason,
            before={"bindings": [f"{b.bin}…{b.last4} {b.status}" for b in old]},
            after={"binding": f"{binding.bin}…{binding.last4}", "bank": binding.bank_code},
        )
        bills_retry_after_rebinding(customer_id=customer.pk, actor=actor)
    return binding
