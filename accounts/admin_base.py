"""Admin building blocks for tables with millions of rows and an audited back office."""

from __future__ import annotations

from typing import ClassVar

from django import forms
from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.utils.functional import cached_property

from accounts.services import audit_record


class EstimatedCountPaginator(Paginator):
    """Uses ``pg_class.reltuples`` for an unfiltered queryset instead of ``COUNT(*)``."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list  # the admin's changelist queryset
        if isinstance(queryset, QuerySet) and not queryset.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [queryset.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > 10_000:
                return int(row[0])
        return super().count


class AuditedModelAdmin(admin.ModelAdmin):
    """Base admin: estimated counts, a required reason, and an audit event with before/after."""

    paginator: ClassVar[type[Paginator]] = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    ordering = ("-id",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The reason is a form field, not a model field: keep it out of the model form's fields.
        if kwargs.get("fields"):
            kwargs["fields"] = [name for name in kwargs["fields"] if name != "audit_reason"]
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (AuditReasonFormMixin, form), {})

    def save_model(self, request, obj, form, change):
        before = {
            name: form.initial.get(name)
            for name in form.changed_data
            if name != "audit_reason" and "password" not in name  # never secrets in the trail
        }
        super().save_model(request, obj, form, change)
        after = {name: form.cleaned_data.get(name) for name in before}
        audit_record(
            actor=request.user,
            action="admin.change" if change else "admin.add",
            target=obj,
            reason=form.cleaned_data["audit_reason"],
            before=_jsonable(before) if change else None,
            after=_jsonable(after),
            ip_address=request.META.get("REMOTE_ADDR"),
        )

    def has_delete_permission(self, request, obj=None):
        return False  # domain rows are closed or cancelled, never deleted


class AuditReasonFormMixin(forms.Form):
    audit_reason = forms.CharField(
        label="Reason for this change",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required. Written to the audit trail with the changed values.",
    )


def _jsonable(values: dict) -> dict:
    return {name: value.pk if hasattr(value, "pk") else value for name, value in values.items()}
