"""Django admin for the credit domain, built for tables with millions of rows.

* No unfiltered ``COUNT(*)``: the paginator uses PostgreSQL's planner estimate
  when the changelist has no filter, and ``show_full_result_count`` is off.
* Foreign keys are ``raw_id_fields`` / ``autocomplete_fields``, lists use
  ``list_select_related``, changelists sort by the primary key.
* Personal data is never shown in clear here: encrypted fields are excluded
  from forms and shown masked. Revealing is a console action with a reason.
* Every add, change and delete writes an audit event.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.utils.functional import cached_property

from accounts.services import audit_record
from baitiao.masking import mask_card, mask_email, mask_name, mask_national_id, mask_phone
from baitiao.pii import pii_hash
from repayments.models import Bill, CardBinding, CreditLine, Customer, RepaymentAttempt


class EstimatedCountPaginator(Paginator):
    """Uses ``pg_class.reltuples`` for an unfiltered queryset instead of ``COUNT(*)``."""

    @cached_property
    def count(self) -> int:
        query = self.object_list.query
        if not query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [self.object_list.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > 10_000:
                return int(row[0])
        return super().count


class AuditedModelAdmin(admin.ModelAdmin):
    """Base admin: estimated counts, and an audit event for every write."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    ordering = ("-id",)

    def _audit(self, request, obj, action: str, message) -> None:
        audit_record(
            actor=request.user,
            action=f"admin.{action}",
            target=obj,
            after={"change": str(message)} if message else None,
            ip_address=request.META.get("REMOTE_ADDR"),
        )

    def log_addition(self, request, obj, message):
        self._audit(request, obj, "add", message)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._audit(request, obj, "change", message)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._audit(request, obj, "delete", "")
        return super().log_deletions(request, queryset)


@admin.register(Customer)
class CustomerAdmin(AuditedModelAdmin):
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
class CreditLineAdmin(AuditedModelAdmin):
    list_display = ("customer", "currency", "credit_limit", "available_credit", "status")
    list_filter = ("status", "currency")
    list_select_related = ("customer",)
    raw_id_fields = ("customer",)
    search_fields = ("=customer__customer_no",)


@admin.register(CardBinding)
class CardBindingAdmin(AuditedModelAdmin):
    list_display = ("customer", "card", "bank_name", "card_type", "status", "status_changed_at")
    list_filter = ("status", "card_type", "bank_code")
    list_select_related = ("customer",)
    raw_id_fields = ("customer",)
    search_fields = ("=customer__customer_no", "=last4", "=gateway_token")
    exclude = ("reserved_phone",)
    readonly_fields = ("gateway_token", "bin", "last4", "masked_reserved_phone")

    @admin.display(description="card")
    def card(self, obj: CardBinding) -> str:
        return mask_card(obj.last4, obj.bin)

    @admin.display(description="reserved phone")
    def masked_reserved_phone(self, obj: CardBinding) -> str:
        return mask_phone(obj.reserved_phone)


@admin.register(Bill)
class BillAdmin(AuditedModelAdmin):
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
    raw_id_fields = ("customer", "credit_line")
    search_fields = ("=bill_no", "=customer__customer_no")


@admin.register(RepaymentAttempt)
class RepaymentAttemptAdmin(AuditedModelAdmin):
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
    raw_id_fields = ("bill", "card_binding")
    search_fields = ("=attempt_no", "=bill__bill_no")
