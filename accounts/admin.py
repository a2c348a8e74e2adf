"""Back-office admin for staff and the (read-only) audit trail."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import AuditEvent, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "is_active", "is_staff", "last_login")
    list_filter = ("is_active", "is_staff", "groups")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the database rejects UPDATE and DELETE anyway."""

    list_display = ("occurred_at", "actor_label", "action", "target_type", "target_id", "reason")
    list_filter = ("action",)
    search_fields = ("=actor_label", "=target_id", "action")
    date_hierarchy = "occurred_at"
    show_full_result_count = False
    list_select_related = ("actor",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
