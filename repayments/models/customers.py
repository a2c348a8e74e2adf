"""Customers, their credit lines and the cards bound for auto-debit."""

from __future__ import annotations

from typing import TypedDict

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from baitiao.models import TimeStampedModel
from baitiao.money import HOME_CURRENCY
from baitiao.pii import EncryptedTextField


class MoneyDigits(TypedDict):
    """The `DecimalField` keyword arguments of a money column (typed so `**MONEY` type-checks)."""

    max_digits: int
    decimal_places: int


MONEY: MoneyDigits = {"max_digits": 14, "decimal_places": 2}


class RiskTier(models.TextChoices):
    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")


class DataSource(models.TextChoices):
    UCI = "uci", _("UCI credit-card dataset")
    GENERATED = "generated", _("Generated load")
    IMPORT = "import", _("Imported")
    CONSOLE = "console", _("Entered in the console")


class Customer(TimeStampedModel):
    """A person holding a credit line (not a staff user)."""

    customer_no = models.CharField(max_length=32, unique=True)
    name = EncryptedTextField(blank=True)
    phone = EncryptedTextField(blank=True)  # mainland mobile, 11 digits, no "+86"
    phone_hash = models.CharField(max_length=64, blank=True, db_index=True)
    phone_last4 = models.CharField(max_length=4, blank=True, db_index=True)
    national_id = EncryptedTextField(blank=True)  # 18-character resident ID (GB 11643)
    national_id_hash = models.CharField(max_length=64, blank=True, db_index=True)
    national_id_last4 = models.CharField(max_length=4, blank=True, db_index=True)
    email = EncryptedTextField(blank=True)
    credit_score = models.SmallIntegerField(null=True, blank=True)  # 350–950, Zhima-style scale
    risk_tier = models.CharField(max_length=8, choices=RiskTier, default=RiskTier.MEDIUM)
    is_synthetic = models.BooleanField(
        default=False, help_text=_("Contact details generated, not real (see docs/dataset.md).")
    )
    source = models.CharField(max_length=16, choices=DataSource, default=DataSource.CONSOLE)
    source_ref = models.CharField(max_length=32, blank=True, help_text=_("ID in the source dataset."))
    language = models.CharField(max_length=8, default="zh-hans", help_text=_("Language of customer messages."))
    # Set by the retention job (repayments/services/retention.py): personal data erased,
    # the customer number, money and dates kept.
    anonymized_at = models.DateTimeField(null=True, blank=True)  # UTC

    class Meta:
        ordering = ["customer_no"]
        constraints = [
            models.CheckConstraint(
                condition=Q(credit_score__isnull=True) | Q(credit_score__gte=350, credit_score__lte=950),
                name="customer_credit_score_range",
            ),
        ]
        indexes = [models.Index(fields=["risk_tier"], name="customer_risk_tier_idx")]
        permissions = [
            ("reveal_personal_data", "Can reveal masked personal data with a reason"),
            ("export_personal_data", "Can export unmasked personal data with a reason"),
            ("view_dashboard", "Can view the receivables dashboard"),
            ("refresh_dashboard", "Can refresh the dashboard's rollups now"),
            ("import_data", "Can import CSV and Excel files"),
            ("export_data", "Can export CSV and Excel files"),
        ]

    def __str__(self) -> str:
        return self.customer_no


class CreditLineStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    FROZEN = "frozen", _("Frozen")
    CLOSED = "closed", _("Closed")


class CreditLine(TimeStampedModel):
    """The revolving line a customer buys on; one per customer."""

    customer = models.OneToOneField(Customer, on_delete=models.PROTECT, related_name="credit_line")
    credit_limit = models.DecimalField(**MONEY)  # in `currency`
    available_credit = models.DecimalField(**MONEY)  # in `currency`; limit minus open balance
    currency = models.CharField(max_length=3, default=HOME_CURRENCY)  # ISO 4217
    status = models.CharField(max_length=8, choices=CreditLineStatus, default=CreditLineStatus.ACTIVE)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(credit_limit__gte=0), name="credit_line_limit_non_negative"),
            models.CheckConstraint(
                condition=Q(available_credit__gte=0) & Q(available_credit__lte=models.F("credit_limit")),
                name="credit_line_available_within_limit",
            ),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="credit_line_currency_iso"),
        ]
        indexes = [
            # The retention job: lines closed before a cutoff.
            models.Index(fields=["status_changed_at"], name="credit_line_closed_idx", condition=Q(status="closed")),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.currency} {self.credit_limit}"


class CardType(models.TextChoices):
    DEBIT = "DC", _("Debit card")
    CREDIT = "CC", _("Credit card")
    SEMI_CREDIT = "SCC", _("Semi-credit card")
    PREPAID = "PC", _("Prepaid card")


class CardBindingStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    INVALID = "invalid", _("Invalid")
    REPLACED = "replaced", _("Replaced")


class CardBinding(TimeStampedModel):
    """A bank card bound for auto-debit. Never holds the full card number.

    The gateway keeps the card; we keep its token, the BIN (issuer prefix) and
    the last four digits.
    """

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="card_bindings")
    gateway_token = models.CharField(max_length=64, unique=True)
    bin = models.CharField(max_length=10)  # issuer identification prefix, 3–10 digits
    last4 = models.CharField(max_length=4, db_index=True)
    bank_code = models.CharField(max_length=16, blank=True)
    bank_name = models.CharField(max_length=64, blank=True)
    card_type = models.CharField(max_length=3, choices=CardType, default=CardType.DEBIT)
    reserved_phone = EncryptedTextField(blank=True)  # 预留手机号 at the issuing bank
    reserved_phone_last4 = models.CharField(max_length=4, blank=True)
    status = models.CharField(max_length=8, choices=CardBindingStatus, default=CardBindingStatus.ACTIVE)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_reason = models.CharField(max_length=255, blank=True)
    bound_at = models.DateTimeField()
    is_synthetic = models.BooleanField(default=False)

    class Meta:
        constraints = [
            # One card to debit per customer: the active binding.
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(status="active"),
                name="card_binding_one_active_per_customer",
            ),
            models.CheckConstraint(condition=Q(last4__regex=r"^[0-9]{4}$"), name="card_binding_last4_digits"),
            models.CheckConstraint(condition=Q(bin__regex=r"^[0-9]{3,10}$"), name="card_binding_bin_digits"),
        ]
        indexes = [models.Index(fields=["bank_code", "status"], name="card_binding_bank_status_idx")]
        permissions = [("repair_card_binding", "Can repair a card binding")]

    def __str__(self) -> str:
        return f"{self.bank_name or self.bin} ****{self.last4}"
