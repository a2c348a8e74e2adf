"""Roles as groups, and the permissions each role holds.

This table is the permission matrix of the console (``docs/permissions.md``
explains it); ``sync_roles`` makes the groups match it exactly and runs after
every ``migrate``.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

AGENT = "agent"
SUPERVISOR = "supervisor"
ANALYST = "analyst"
AUDITOR = "auditor"
ADMIN = "admin"
ROLES = (AGENT, SUPERVISOR, ANALYST, AUDITOR, ADMIN)
ROLE_LABELS = {
    AGENT: _("agent"),
    SUPERVISOR: _("supervisor"),
    ANALYST: _("analyst"),
    AUDITOR: _("auditor"),
    ADMIN: _("admin"),
}

_READ_DOMAIN = [
    "repayments.view_customer",
    "repayments.view_creditline",
    "repayments.view_cardbinding",
    "repayments.view_bill",
    "repayments.view_repaymentattempt",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    AGENT: [
        *_READ_DOMAIN,
        "repayments.reveal_personal_data",
        "repayments.repair_card_binding",
        "repayments.request_extension",
        "repayments.request_waiver",
        "repayments.retry_debit",
        "repayments.work_cases",
    ],
    SUPERVISOR: [
        *_READ_DOMAIN,
        "repayments.reveal_personal_data",
        "repayments.repair_card_binding",
        "repayments.request_extension",
        "repayments.approve_extension",
        "repayments.request_waiver",
        "repayments.approve_waiver",
        "repayments.retry_debit",
        "repayments.work_cases",
        "repayments.view_dashboard",
        "repayments.refresh_dashboard",
        "repayments.manage_incident",
        "repayments.view_bureau_ledger",
    ],
    ANALYST: [
        *_READ_DOMAIN,
        "repayments.view_dashboard",
        "repayments.import_data",
        "repayments.export_data",
    ],
    AUDITOR: [
        *_READ_DOMAIN,
        "accounts.view_auditevent",
        "accounts.view_audit_trail",
        "accounts.export_audit_trail",
        "repayments.view_bureau_ledger",
    ],
}


def _permissions(names: list[str]) -> list[Permission]:
    query = Q(pk__in=[])
    for name in names:
        app_label, codename = name.split(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    found = list(Permission.objects.filter(query).select_related("content_type"))
    missing = set(names) - {f"{p.content_type.app_label}.{p.codename}" for p in found}
    if missing:
        raise LookupError(f"permissions named in ROLE_PERMISSIONS do not exist: {sorted(missing)}")
    return found


@transaction.atomic
def sync_roles() -> None:
    """Create the role groups and set each one's permissions to exactly ``ROLE_PERMISSIONS``.

    The ``admin`` role holds every permission of our apps and of ``auth``.

    Raises:
        LookupError: a permission named in ``ROLE_PERMISSIONS`` does not exist.
    """
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        if role == ADMIN:
            perms = Permission.objects.filter(
                content_type__app_label__in=["accounts", "repayments", "auth", "django_q"]
            )
            group.permissions.set(perms)
        else:
            group.permissions.set(_permissions(ROLE_PERMISSIONS[role]))


def sync_roles_after_migrate(sender, **kwargs) -> None:  # noqa: ARG001 - signal API
    """post_migrate receiver: permissions exist only after every app migrated."""
    from django.apps import apps

    if not apps.is_installed("repayments"):
        return
    from django.contrib.auth.management import create_permissions

    # Permissions are created by another post_migrate receiver whose order is not
    # guaranteed; create them first so that sync_roles finds them.
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=kwargs.get("using", "default"))
    sync_roles()
