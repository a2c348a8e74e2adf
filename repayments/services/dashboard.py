"""Receivables dashboard (issue #7): refresh the materialized rollups.

The rollups (``repayments/migrations/0005_dashboard.py``, ``docs/dashboard.md``)
are refreshed on the queue (schedule ``refresh-dashboard``) or by a supervisor's
"refresh now". ``REFRESH MATERIALIZED VIEW CONCURRENTLY`` keeps the old contents
readable while the new ones are built, so the dashboard never waits.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_record

ROLLUP_VIEWS = (
    "dashboard_bill_rollup",
    "dashboard_attempt_rollup",
    "dashboard_reminder_rollup",
    "dashboard_relief_rollup",
    "dashboard_incident_rollup",
    "dashboard_failure_reason_rollup",  # 0010_dashboard_failure_reasons
)
# pg_advisory lock key ("dashbrd" in ASCII): one refresh at a time across every
# worker and web process; a second one finds it taken and returns at once.
_LOCK_KEY = 0x64617368627264
TRIGGERS = ("schedule", "manual", "command", "relief")  # relief: a batch applied or reversed


@dataclass(frozen=True)
class RefreshResult:
    refreshed: bool  # False: another refresh was running, nothing done
    started_at: dt.datetime | None = None  # UTC
    finished_at: dt.datetime | None = None  # UTC
    duration_ms: int = 0  # wall-clock milliseconds for all rollups
    view_ms: dict[str, int] | None = None  # per rollup, milliseconds


def dashboard_refresh(*, trigger: str, actor: User | None = None) -> RefreshResult:
    """Rebuild every dashboard rollup concurrently and log the refresh time.

    Args:
        trigger: ``"schedule"`` (the queue), ``"manual"`` (the console's "refresh
            now"), ``"command"`` or ``"relief"`` (a relief batch was applied or reversed).
        actor: the staff user of a manual refresh; audited as ``dashboard.refresh``.

    Returns:
        A :class:`RefreshResult`; ``refreshed`` is False when another refresh
        held the lock (this call then does nothing, so the task is idempotent).

    Raises:
        ValueError: unknown ``trigger``.
    """
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {TRIGGERS}, not {trigger!r}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY])
        if not cursor.fetchone()[0]:
            return RefreshResult(refreshed=False)
        try:
            started_at = timezone.now()
            clock = time.perf_counter()
            view_ms: dict[str, int] = {}
            for view in ROLLUP_VIEWS:
                view_clock = time.perf_counter()
                cursor.execute(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {view}")  # constant names
                view_ms[view] = round((time.perf_counter() - view_clock) * 1000)
            duration_ms = round((time.perf_counter() - clock) * 1000)
            finished_at = timezone.now()
            with transaction.atomic():  # the refresh log and its audit event commit together
                cursor.execute(
                    "INSERT INTO dashboard_refresh (started_at, finished_at, duration_ms, trigger, actor_id)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    [started_at, finished_at, duration_ms, trigger, actor.pk if actor else None],
                )
                if actor is not None:
                    audit_record(
                        actor=actor,
                        action="dashboard.refresh",
                        target_type="repayments.dashboard",
                        after={"duration_ms": duration_ms, "trigger": trigger},
                    )
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
    return RefreshResult(
        refreshed=True, started_at=started_at, finished_at=finished_at, duration_ms=duration_ms, view_ms=view_ms
    )


def dashboard_refresh_request(*, actor: User) -> None:
    """A supervisor's "refresh now": audit it and queue the rebuild after commit.

    The rebuild runs on the queue (it takes seconds to minutes on a large
    database, longer than a web request should), as :func:`dashboard_refresh`
    with ``trigger="manual"``, on the ``critical`` lane: never behind a collection
    run's debits or thousands of customer messages (docs/operations.md, "Lanes").
    """
    from django.db import transaction
    from django_q.tasks import async_task

    from baitiao.queues import CRITICAL

    with transaction.atomic():
        audit_record(actor=actor, action="dashboard.refresh_requested", target_type="repayments.dashboard")
        transaction.on_commit(
            lambda: async_task(
                "repayments.tasks.refresh_dashboard", trigger="manual", actor_id=actor.pk, cluster=CRITICAL
            )
        )


def dashboard_export_record(*, actor: User, section: str, filters: dict[str, str], rows: int) -> None:
    """Audit one dashboard CSV download, like every other export (``dashboard.export``).

    Args:
        section: the section key (``repayments.selectors.dashboard.SECTIONS``).
        filters: the filters as query-string values.
        rows: how many data rows the file holds.
    """
    audit_record(
        actor=actor,
        action="dashboard.export",
        target_type="repayments.dashboard",
        after={"section": section, "filters": filters, "rows": rows, "format": "csv"},
    )
