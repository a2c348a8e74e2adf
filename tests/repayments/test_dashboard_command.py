"""``manage.py refresh_dashboard`` rebuilds the rollups now, logged and audited as the service does."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import AuditEvent


def _last_refresh() -> tuple[str, int | None] | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT trigger, actor_id FROM dashboard_refresh ORDER BY finished_at DESC, id DESC LIMIT 1")
        return cursor.fetchone()


def test_the_refresh_dashboard_command_rebuilds_the_rollups_and_logs_trigger_command(db, capsys):
    call_command("refresh_dashboard")
    assert "Dashboard refreshed in" in capsys.readouterr().out
    assert _last_refresh() == ("command", None)


def test_the_refresh_dashboard_command_with_an_actor_is_audited_as_a_dashboard_refresh(supervisor):
    call_command("refresh_dashboard", "--actor", supervisor.username)
    assert _last_refresh() == ("command", supervisor.pk)
    event = AuditEvent.objects.get(action="dashboard.refresh")
    assert (event.actor, event.after["trigger"]) == (supervisor, "command")


def test_the_refresh_dashboard_command_refuses_an_actor_without_the_permission(agent):
    with pytest.raises(CommandError, match="refresh_dashboard permission"):
        call_command("refresh_dashboard", "--actor", agent.username)
    assert not AuditEvent.objects.filter(action="dashboard.refresh").exists()
