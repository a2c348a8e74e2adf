"""Roles are groups whose permissions match accounts.roles.ROLE_PERMISSIONS exactly."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import override_settings

from accounts.models import User
from accounts.roles import ROLE_PERMISSIONS, ROLES, sync_roles

pytestmark = pytest.mark.django_db


def group_permissions(role: str) -> set[str]:
    group = Group.objects.get(name=role)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


@pytest.mark.parametrize("role", sorted(ROLE_PERMISSIONS))
def test_each_role_holds_exactly_its_permissions(role):
    assert group_permissions(role) == set(ROLE_PERMISSIONS[role])


def test_admin_role_holds_exactly_every_permission_of_our_apps():
    from django.contrib.auth.models import Permission

    expected = {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.filter(
            content_type__app_label__in=["accounts", "repayments", "auth", "django_q"]
        ).select_related("content_type")
    }
    assert group_permissions("admin") == expected
    assert "repayments.approve_extension" in expected


def test_sync_roles_repairs_a_drifted_group():
    Group.objects.get(name="agent").permissions.clear()
    sync_roles()
    assert group_permissions("agent") == set(ROLE_PERMISSIONS["agent"])


def test_agent_cannot_approve_extensions_but_supervisor_can(agent, supervisor):
    assert not agent.has_perm("repayments.approve_extension")
    assert supervisor.has_perm("repayments.approve_extension")
    assert agent.has_perm("repayments.request_extension")


def test_auditor_reads_the_audit_trail_and_analyst_does_not(auditor, analyst):
    assert auditor.has_perm("accounts.view_audit_trail")
    assert not analyst.has_perm("accounts.view_audit_trail")
    assert not auditor.has_perm("repayments.reveal_personal_data")


def test_demo_staff_get_one_user_per_role(tmp_path, settings):
    settings.VAR_DIR = tmp_path
    with override_settings(DEMO_MODE=True):
        call_command("setup_demo_staff")
    for role in ROLES:
        user = User.objects.get(username=f"demo_{role}")
        assert user.role_names == [role]
    assert User.objects.get(username="demo_admin").is_staff


def test_demo_staff_are_refused_outside_demo_mode():
    with override_settings(DEMO_MODE=False), pytest.raises(CommandError, match="demo mode"):
        call_command("setup_demo_staff")
