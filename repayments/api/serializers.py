"""API representations. Personal data leaves only masked; amounts are decimal strings.

Input serializers refuse unknown fields (:class:`StrictSerializer`): a client that
misspells ``days`` as ``day`` gets a 400 naming the field instead of a default.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from baitiao.masking import mask_card, mask_email, mask_name, mask_national_id, mask_phone
from repayments.bins import known_banks
from repayments.models import (
    MONEY,
    AttemptStatus,
    Bill,
    BindingRepairCase,
    CardBinding,
    Channel,
    CreditLine,
    Customer,
    Extension,
    ExtensionReason,
    Incident,
    ReliefBatch,
    Reminder,
    RepaymentAttempt,
    Waiver,
)

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

MAX_AMOUNT = Decimal("999999999999.99")
# A positive amount as a decimal string: up to 12 digits, up to 2 decimals, not zero.
POSITIVE_AMOUNT_PATTERN = r"^(?:[1-9][0-9]{0,11}(?:\.[0-9]{1,2})?|0\.(?:0[1-9]|[1-9][0-9]?))$"


@extend_schema_field({"type": "string", "format": "decimal", "pattern": POSITIVE_AMOUNT_PATTERN, "example": "12.50"})
class PositiveAmountField(serializers.DecimalField):
    """An input amount above zero as a decimal string (``"12.50"``), exactly as its pattern says.

    DRF's own checks run first (their codes: ``min_value``, ``max_digits``,
    ``max_decimal_places``, ``invalid``); then the text itself must match
    :data:`POSITIVE_AMOUNT_PATTERN` (no sign, exponent, spaces or leading zeros).
    """

    def __init__(self, **kwargs):
        super().__init__(**MONEY, min_value=Decimal("0.01"), max_value=MAX_AMOUNT, **kwargs)

    def run_validation(self, data=serializers.empty):
        value = super().run_validation(data)
        if isinstance(data, str) and not re.fullmatch(POSITIVE_AMOUNT_PATTERN, data):
            self.fail("invalid")
        return value


class UtcDateTimeField(serializers.DateTimeField):
    """An input time in ISO 8601, returned in UTC (the same instant).

    A time without an offset is business time (Asia/Shanghai), like everywhere in
    the product. Python accepts offsets up to ±23:59 and PostgreSQL only ±15:59, so
    the value is converted to UTC before it reaches the database; a time that
    cannot be expressed in UTC is a 400 (``overflow``).
    """

    def enforce_timezone(self, value: dt.datetime) -> dt.datetime:
        value = super().enforce_timezone(value)  # naive -> business time
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            self.fail("overflow")


def utc_datetime(**kwargs) -> serializers.DateTimeField:
    """An input time field: see :class:`UtcDateTimeField`."""
    return UtcDateTimeField(**kwargs)


# The JSON type each input field accepts, as the schema states it: DRF would otherwise
# turn 0 into "0" for a text field and "5" into 5 for a whole number.
_JSON_TYPES: tuple[tuple[type, tuple[type, ...], StrOrPromise], ...] = (
    (serializers.BooleanField, (bool,), gettext_lazy("true or false")),
    (serializers.IntegerField, (int,), gettext_lazy("a whole number")),
    (serializers.CharField, (str,), gettext_lazy("a string")),
    (serializers.ChoiceField, (str,), gettext_lazy("a string")),
    (serializers.DateTimeField, (str,), gettext_lazy("a string (ISO 8601)")),
    (serializers.DecimalField, (str,), gettext_lazy("a decimal string")),
)


class StrictSerializer(serializers.Serializer):
    """An input serializer that takes exactly what its schema says.

    Refused with a 400 naming the field: a field it does not know
    (``unknown_field``; the schema says ``additionalProperties: false``) and a value
    of another JSON type than the field's (``invalid``: ``0`` for a text, ``"5"``
    or ``true`` for a whole number, a JSON number for an amount).
    """

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [_("Unknown field.")] for name in unknown}, code="unknown_field"
                )
            wrong = {}
            for name, field in self.fields.items():
                value = data.get(name)
                if name not in data or field.read_only or (value is None and field.allow_null):
                    continue
                for field_class, types, expected in _JSON_TYPES:
                    if isinstance(field, field_class):
                        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
                            wrong[name] = [_("Expected %(type)s.") % {"type": expected}]
                        break
            if wrong:
                raise serializers.ValidationError(wrong, code="invalid")
        return super().to_internal_value(data)


class CustomerSerializer(serializers.ModelSerializer):
    """A customer with every personal field masked (``138****5678``)."""

    name = serializers.SerializerMethodField()
    phone = serializers.SerializerMethodField()
    national_id = serializers.SerializerMethodField()
    email = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = ["customer_no", "name", "phone", "national_id", "email", "risk_tier", "credit_score", "language",
                  "created_at"]  # fmt: skip

    def get_name(self, obj: Customer) -> str:
        return mask_name(obj.name)

    def get_phone(self, obj: Customer) -> str:
        return mask_phone(obj.phone)

    def get_national_id(self, obj: Customer) -> str:
        return mask_national_id(obj.national_id)

    def get_email(self, obj: Customer) -> str:
        return mask_email(obj.email)


class CreditLineSerializer(serializers.ModelSerializer):
    customer_no = serializers.CharField(source="customer.customer_no", read_only=True)

    class Meta:
        model = CreditLine
        fields = ["customer_no", "credit_limit", "available_credit", "currency", "status", "status_changed_at",
                  "created_at"]  # fmt: skip


class BillSerializer(serializers.ModelSerializer):
    """A bill; ``version`` is what a later extension/waiver/retry sends back as ``bill_version``."""

    customer_no = serializers.CharField(source="customer.customer_no", read_only=True)
    currency = serializers.CharField(source="credit_line.currency", read_only=True)
    outstanding = serializers.DecimalField(**MONEY, read_only=True)
    bucket = serializers.CharField(
        read_only=True, allow_null=True, help_text="M0 … M4+ for an open bill; null for a closed one."
    )
    version = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = Bill
        fields = ["bill_no", "customer_no", "period", "statement_date", "due_date", "original_due_date", "currency",
                  "statement_balance", "amount_due", "minimum_due", "amount_paid", "late_fee", "late_fee_waived",
                  "carried_forward", "outstanding", "status", "dpd", "dpd_as_of", "bucket", "past_due_amount",
                  "past_due_since", "cycles_past_due", "debit_attempts", "retry_at",
                  "last_failure_family", "last_failure_code", "last_failure_at", "closed_at", "version"]  # fmt: skip


class AttemptSerializer(serializers.ModelSerializer):
    bill_no = serializers.CharField(source="bill.bill_no", read_only=True)
    card = serializers.SerializerMethodField()

    class Meta:
        model = RepaymentAttempt
        fields = ["attempt_no", "bill_no", "channel", "amount", "status", "failure_code", "failure_family",
                  "failure_message", "card", "requested_at", "completed_at"]  # fmt: skip

    def get_card(self, obj: RepaymentAttempt) -> str | None:
        binding = obj.card_binding
        return mask_card(binding.last4, binding.bin) if binding else None


class CardBindingSerializer(serializers.ModelSerializer):
    card = serializers.SerializerMethodField()
    reserved_phone = serializers.SerializerMethodField()

    class Meta:
        model = CardBinding
        fields = ["card", "bank_code", "bank_name", "card_type", "reserved_phone", "status", "bound_at"]

    def get_card(self, obj: CardBinding) -> str:
        return mask_card(obj.last4, obj.bin)

    def get_reserved_phone(self, obj: CardBinding) -> str:
        return mask_phone(obj.reserved_phone) if obj.reserved_phone else ""


class ExtensionSerializer(serializers.ModelSerializer):
    bill_no = serializers.CharField(source="bill.bill_no", read_only=True)
    customer_no = serializers.CharField(source="customer.customer_no", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, allow_null=True)

    class Meta:
        model = Extension
        fields = ["id", "bill_no", "customer_no", "days", "reason", "note", "status", "by_policy", "requested_by",
                  "decided_by", "decided_at", "decision_note", "due_date_before", "due_date_after",
                  "late_fee_waived", "created_at"]  # fmt: skip


class WaiverSerializer(serializers.ModelSerializer):
    bill_no = serializers.CharField(source="bill.bill_no", read_only=True)
    customer_no = serializers.CharField(source="customer.customer_no", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, allow_null=True)

    class Meta:
        model = Waiver
        fields = ["id", "bill_no", "customer_no", "amount", "reason", "note", "status", "by_policy", "requested_by",
                  "decided_by", "decided_at", "decision_note", "created_at"]  # fmt: skip


class BillVersionMixin(serializers.Serializer):
    bill_version = utc_datetime(
        required=False, help_text="The bill's `version` as read; a bill changed since is refused (409)."
    )


class ExtensionRequestSerializer(BillVersionMixin, StrictSerializer):
    bill_no = serializers.CharField(max_length=40)
    days = serializers.IntegerField(min_value=1, max_value=settings.EXTENSION_POLICY["max_days"])
    reason = serializers.ChoiceField(choices=ExtensionReason.choices)
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class WaiverRequestSerializer(BillVersionMixin, StrictSerializer):
    bill_no = serializers.CharField(max_length=40)
    amount = PositiveAmountField()
    reason = serializers.ChoiceField(choices=ExtensionReason.choices)
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class DecisionSerializer(StrictSerializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class RetrySerializer(BillVersionMixin, StrictSerializer):
    pass


class RepairCaseSerializer(serializers.ModelSerializer):
    customer_no = serializers.CharField(source="customer.customer_no", read_only=True)
    card = serializers.SerializerMethodField()
    new_card = serializers.SerializerMethodField()

    class Meta:
        model = BindingRepairCase
        fields = ["id", "customer_no", "card", "failure_code", "status", "created_at", "resolved_at", "new_card"]

    def get_card(self, obj: BindingRepairCase) -> str:
        return mask_card(obj.card_binding.last4, obj.card_binding.bin)

    def get_new_card(self, obj: BindingRepairCase) -> str | None:
        return mask_card(obj.new_binding.last4, obj.new_binding.bin) if obj.new_binding else None


# The formats the binding service accepts (repayments/services/bindings.py), stated in the
# schema as patterns: 12–19 digits, single spaces or dashes between them allowed
# (card_number_check); a mainland mobile number, optionally +86 / 86 first (mobile_check).
# The service still checks what a pattern cannot (Luhn, the BIN table, a live number).
# The refusal names the field, not the value: a card number or phone is personal data.
CARD_NUMBER_PATTERN = r"^[0-9](?:[ -]?[0-9]){11,18}$"
MOBILE_PATTERN = r"^(?:\+?86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]){8}$"


class BindingStartSerializer(StrictSerializer):
    customer_no = serializers.CharField(max_length=32)
    card_number = serializers.RegexField(
        CARD_NUMBER_PATTERN,
        max_length=37,
        write_only=True,
        trim_whitespace=False,
        error_messages={
            "invalid": gettext_lazy("A card number is 12 to 19 digits (single spaces or dashes between them).")
        },
        help_text="12–19 digits; single spaces or dashes between digits are allowed.",
    )
    reserved_phone = serializers.RegexField(
        MOBILE_PATTERN,
        max_length=20,
        write_only=True,
        trim_whitespace=False,
        error_messages={
            "invalid": gettext_lazy("A reserved phone is a mainland mobile number: 11 digits starting 13–19.")
        },
        help_text="A mainland China mobile number, 11 digits starting 13–19, optionally after +86.",
    )


class BindingChallengeSerializer(serializers.Serializer):
    challenge = serializers.CharField(help_text="Send back with the SMS code within 10 minutes.")
    card = serializers.CharField()
    bank_name = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds.")


class BindingConfirmSerializer(StrictSerializer):
    challenge = serializers.CharField(max_length=4000)
    sms_code = serializers.CharField(max_length=8)
    reason = serializers.CharField(max_length=500)


class ReminderSerializer(serializers.ModelSerializer):
    bill_no = serializers.CharField(source="bill.bill_no", read_only=True)

    class Meta:
        model = Reminder
        fields = ["id", "bill_no", "offset_days", "risk_tier", "scheduled_at", "status", "sent_at", "skip_reason"]


class IncidentSerializer(serializers.ModelSerializer):
    declared_by = serializers.CharField(source="declared_by.username", read_only=True, allow_null=True)
    resolved_by = serializers.CharField(source="resolved_by.username", read_only=True, allow_null=True)

    class Meta:
        model = Incident
        fields = ["id", "bank_code", "channel", "started_at", "ended_at", "status", "source", "declared_by",
                  "resolved_by", "description", "attempts_seen", "system_failures_seen"]  # fmt: skip


class IncidentDeclareSerializer(StrictSerializer):
    # The banks we know (the BIN table), so the schema states them; "" = every bank.
    bank_code = serializers.ChoiceField(
        choices=[("", "every bank"), *((code, code) for code in sorted(known_banks()))],
        required=False,
        allow_blank=True,
        default="",
    )
    channel = serializers.ChoiceField(choices=[("", "every channel"), *Channel.choices], required=False, default="")
    started_at = utc_datetime()
    ended_at = utc_datetime(required=False, allow_null=True, default=None)
    description = serializers.CharField(max_length=2000)


class IncidentResolveSerializer(StrictSerializer):
    ended_at = utc_datetime(required=False, allow_null=True, default=None)


class ReliefBatchSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    approved_by = serializers.CharField(source="approved_by.username", read_only=True, allow_null=True)

    class Meta:
        model = ReliefBatch
        fields = ["id", "incident", "days", "note", "status", "requested_by", "approved_by", "approved_at",
                  "bills_total", "bills_done", "bills_applied", "bills_skipped", "bills_reversed", "started_at",
                  "finished_at", "reversed_at"]  # fmt: skip


class ReliefRequestSerializer(StrictSerializer):
    days = serializers.IntegerField(min_value=1, max_value=settings.INCIDENT_RELIEF["max_days"])
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class ReliefReverseSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000)


class AttemptStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=AttemptStatus.choices, **kwargs)
