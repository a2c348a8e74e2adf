"""Django admin for the credit domain, built for tables with millions of rows.

* No unfiltered ``COUNT(*)``: the paginator uses PostgreSQL's planner estimate
  when the changelist has no filter, and ``show_full_result_count`` is off.
* Foreign keys are ``raw_id_fields`` / ``autocomplete_fields``, lists use
  ``list_select_related``, changelists sort by the primary key.
* Personal data is never shown in clear here: encrypted fields are excluded
  from forms and shown masked. Revealing is a console action with a reason.
* Every add and change asks for a reason and writes an audit event with the
  values before and after; nothing is deleted.
"""

from __future__ import annotations

from django.contrib import admin

from accounts.admin_base import AuditedModelAdmin
from baitiao.masking import mask_card, mask_email, mask_name, mask_national_id, mask_phone
from baitiao.pii import pii_hash
from repayments.imports.admin import AnalystImportExportMixin
from repayments.models import (
    Bill,
    BindingRepairCase,
    CardBinding,
    CreditLine,
    Customer,
    GatewayReviewItem,
    Notification,
    Reminder,
    RepaymentAttempt,
)


@admin.register(Customer)
class CustomerAdmin(AnalystImportExportMixin, AuditedModelAdmin):
    analyst_resource = "customers"
    list_display = ("customer_no", "masked_name", "masked_phone", "risk_tier", "credit_score", "source")
    list_filter = ("risk_tier", "source", "is_synthetic")
    search_fields = ("=customer_no",)
    exclude = ("name", "phone", "phone_hash", "national_id", "national_id_hash", "email")
    readonly_fields = (
        "masked_name",
        "masked_phone",
        "masked_national_id",
        "masked_email",
        "phone_last4",
        "national_id_last4",
        "source",
        "source_ref",
        "is_synthetic",
    )

    @admin.display(description="name")
    def masked_name(self, obj: Customer) -> str:
        return mask_name(obj.name)

    @admin.display(description="phone")
    def masked_phone(self, obj: Customer) -> str:
        return mask_phone(obj.phone)

    @admin.display(description="national ID")
    def masked_national_id(self, obj: Customer) -> str:
        return mask_national_id(obj.national_id)

    @admin.display(description="email")
    def masked_email(self, obj: Customer) -> str:
        return mask_email(obj.email)

    def get_search_results(self, request, queryset, search_term):
        """A full phone or ID number is matched through its keyed hash, never in clear."""
        term = search_term.strip()
        digits = term.replace(" ", "")
        if len(digits) == 11 and digits.isdigit():
            return queryset.filter(phone_hash=pii_hash(digits)), False
        if len(digits) == 18 and digits[:17].isdigit():
            return queryset.filter(national_id_hash=pii_hash(digits)), False
        if len(digits) == 4 and digits.isdigit():
            return queryset.filter(phone_last4=digits) | queryset.filter(national_id_last4=digits), False
        return super().get_search_results(request, queryset, search_term)


@admin.register(CreditLine)
class CreditLineAdmin(AnalystImportExportMixin, AuditedModelAdmin):
    """Status (freeze / close) is editable with a reason; money moves only through services."""

    analyst_resource = "credit-lines"

    list_display = ("customer", "currency", "credit_limit", "available_credit", "status")
    readonly_fields = ("customer", "credit_limit", "available_credit", "currency", "status_changed_at")

    def has_add_permission(self, request):
        return False

    list_filter = ("status", "currency")
    list_select_related = ("customer",)
    raw_id_fields = ("customer",)
    search_fields = ("=customer__customer_no",)


@admin.register(CardBinding)
class CardBindingAdmin(AnalystImportExportMixin, AuditedModelAdmin):
    analyst_resource = "card-bindings"
    list_display = ("customer", "card", "bank_name", "card_type", "status", "status_changed_at")
    list_filter = ("status", "card_type", "bank_code")
    list_select_related = ("customer",)
    raw_id_fields = ("customer",)
    search_fields = ("=customer__customer_no", "=last4", "=gateway_token")
    exclude = ("reserved_phone",)
    readonly_fields = (
        "customer",
        "gateway_token",
        "bin",
        "last4",
        "bank_code",
        "card_type",
        "masked_reserved_phone",
        "status",
        "status_changed_at",
        "status_reason",
        "bound_at",
        "is_synthetic",
    )

    def has_add_permission(self, request):
        return False  # cards are bound through the gateway's verified flow only

    @admin.display(description="card")
    def card(self, obj: CardBinding) -> str:
        return mask_card(obj.last4, obj.bin)

    @admin.display(description="reserved phone")
    def masked_reserved_phone(self, obj: CardBinding) -> str:
        return mask_phone(obj.reserved_phone)


@admin.register(Bill)
class BillAdmin(AnalystImportExportMixin, AuditedModelAdmin):
    analyst_resource = "bills"
    list_display = (
        "bill_no",
        "customer",
        "period",
        "due_date",
        "amount_due",
        "amount_paid",
        "late_fee",
        "status",
        "dpd",
    )
    list_filter = ("status",)
    list_select_related = ("customer",)
    search_fields = ("=bill_no", "=customer__customer_no")

    def get_readonly_fields(self, request, obj=None):
        # Amounts, dates and status change only through services (extensions,
        # waivers, collection), which apply the policies and maker-checker rules.
        return [field.name for field in Bill._meta.concrete_fields]

    def has_add_permission(self, request):
        return False  # bills come from statements: the loader and the importer


@admin.register(RepaymentAttempt)
class RepaymentAttemptAdmin(AnalystImportExportMixin, AuditedModelAdmin):
    analyst_resource = "repayment-attempts"
    list_display = (
        "attempt_no",
        "bill",
        "channel",
        "amount",
        "status",
        "failure_family",
        "failure_code",
        "requested_at",
    )
    list_filter = ("status", "channel", "failure_family")
    list_select_related = ("bill",)
    search_fields = ("=attempt_no", "=bill__bill_no")

    def has_change_permission(self, request, obj=None):
        return False  # attempts are records of what the bank said

    def has_add_permission(self, request):
        return False


class ReadOnlyAdmin(AuditedModelAdmin):
    """Records written by the engine: browsable, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(BindingRepairCase)
class BindingRepairCaseAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "failure_code", "status", "assigned_to", "created_at", "resolved_at")
    list_filter = ("status", "failure_code")
    list_select_related = ("customer", "assigned_to")
    search_fields = ("=customer__customer_no",)


@admin.register(GatewayReviewItem)
class GatewayReviewItemAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "reason", "idempotency_key", "resolved_at")
    list_filter = ("reason",)
    search_fields = ("=idempotency_key",)


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyAdmin):
    list_display = ("bill", "offset_days", "risk_tier", "scheduled_at", "status", "skip_reason")
    list_filter = ("status", "risk_tier", "offset_days")
    list_select_related = ("bill",)
    search_fields = ("=bill__bill_no", "=bill__customer__customer_no")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("sent_at", "customer", "event", "channel", "status", "error")
    list_filter = ("channel", "event", "status")
    list_select_related = ("customer",)
    search_fields = ("=customer__customer_no",)


# Casework of the agent console: written only through the console's services
# (maker-checker, audit), so the back office only reads it.
from repayments.models import BureauSuppression, CustomerNote, Extension, Waiver  # noqa: E402


@admin.register(Extension)
class ExtensionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "bill", "days", "reason", "status", "requested_by", "decided_by", "by_policy")
    list_filter = ("status", "reason", "by_policy")
    list_select_related = ("bill", "requested_by", "decided_by")
    search_fields = ("=bill__bill_no", "=customer__customer_no")
    raw_id_fields = ("bill", "customer")


@admin.register(Waiver)
class WaiverAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "bill", "amount", "reason", "status", "requested_by", "decided_by", "by_policy")
    list_filter = ("status", "reason", "by_policy")
    list_select_related = ("bill", "requested_by", "decided_by")
    search_fields = ("=bill__bill_no", "=customer__customer_no")
    raw_id_fields = ("bill", "customer")


@admin.register(BureauSuppression)
class BureauSuppressionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "bill", "suppress_until", "reason")
    list_select_related = ("bill",)
    search_fields = ("=bill__bill_no",)
    raw_id_fields = ("bill", "extension")


@admin.register(CustomerNote)
class CustomerNoteAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "customer", "author")
    list_select_related = ("customer", "author")
    search_fields = ("=customer__customer_no",)
    raw_id_fields = ("customer", "bill")


# Incidents and relief: changed only through the services (declare, resolve, withdraw,
# relief with maker-checker), each audited; the admin browses them and links to the
# console page where the actions are, and resolves through the service.
from django.contrib import messages  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils.html import format_html  # noqa: E402

from repayments.models import Incident, ReliefBatch  # noqa: E402
from repayments.services.errors import RuleViolation  # noqa: E402


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = ("id", "status", "bank_code", "channel", "started_at", "ended_at", "source", "console_page")
    list_filter = ("status", "source", "channel")
    list_select_related = ("declared_by", "resolved_by", "withdrawn_by")
    search_fields = ("=bank_code",)
    raw_id_fields = ("declared_by", "resolved_by", "withdrawn_by")
    actions = ["resolve_now"]

    def get_view_on_site_url(self, obj=None):
        return reverse("console:incident-detail", args=[obj.pk]) if obj is not None else None

    @admin.display(description="console")
    def console_page(self, obj: Incident) -> str:
        return format_html('<a href="{}">{}</a>', reverse("console:incident-detail", args=[obj.pk]), "open")

    @admin.action(description="Resolve the selected open incidents now (through the service, audited)")
    def resolve_now(self, request, queryset):
        from repayments.services.incidents import incident_resolve

        for incident in queryset.filter(status="open"):
            try:
                incident_resolve(incident_id=incident.pk, resolved_by=request.user)
            except RuleViolation as exc:
                self.message_user(request, f"{incident}: {exc}", level=messages.ERROR)
            else:
                self.message_user(request, f"{incident}: resolved")


@admin.register(ReliefBatch)
class ReliefBatchAdmin(ReadOnlyAdmin):
    list_display = ("id", "incident", "days", "status", "bills_total", "bills_applied", "bills_reversed", "audit_id")
    list_filter = ("status",)
    list_select_related = ("incident",)
    search_fields = ("=audit_id",)
    raw_id_fields = ("incident", "requested_by", "approved_by", "reversed_by")
