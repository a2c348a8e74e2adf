"""Back-office admin for staff and the (read-only) audit trail."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.paginator import Paginator

from accounts.admin_base import AuditedModelAdmin
from accounts.models import AuditEvent, User

_PRIVILEGE_FIELDS = ("is_superuser", "user_permissions")


@admin.register(User)
class UserAdmin(AuditedModelAdmin, DjangoUserAdmin):
    """Staff accounts. Role changes and deactivation are audited with a reason.

    Only a superuser may grant superuser status or individual permissions: the
    admin role manages staff through role groups and cannot escalate itself.
    """

    list_display = ("username", "email", "is_active", "is_staff", "last_login")
    list_filter = ("is_active", "is_staff", "groups")
    search_fields = ("username", "email")
    ordering = ("username",)
    paginator = Paginator  # Django's own (a small table: the exact count is cheap)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in _PRIVILEGE_FIELDS]})
            for name, options in fieldsets
        ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        # AuditedModelAdmin adds the reason field; DjangoUserAdmin picks add vs change form.
        return super().get_form(request, obj, change=change, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: audit events keep pointing at the user


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the database rejects UPDATE and DELETE anyway."""

    list_display = ("occurred_at", "actor_label", "action", "target_type", "target_id", "reason")
    list_filter = ("action",)
    search_fields = ("=actor_label", "=target_id", "action")
    show_full_result_count = False
    list_select_related = ("actor",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
