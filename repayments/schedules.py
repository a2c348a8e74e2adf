"""Every django-q2 schedule of the product, declared in one place.

``python manage.py setup_schedules`` creates or updates them idempotently (by
name). Cron expressions are evaluated by django-q2 in ``settings.TIME_ZONE``,
the business time zone: ``5 0 * * *`` fires at 00:05 Asia/Shanghai (16:05 UTC).

Each schedule names its lane (docs/operations.md, "Lanes"): django-q2's
``Schedule.cluster``. Only that cluster's scheduler picks it up, and the task goes
to that cluster's queue; ``None`` is the main (bulk) cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from baitiao.queues import BULK, CRITICAL, NOTIFY


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str
    cron: str  # business time (Asia/Shanghai)
    description: str
    run_when_created: bool = False  # fire once right away on a fresh install (make run's first start)
    cluster: str | None = BULK  # the lane: CRITICAL, NOTIFY, or BULK (the main cluster)


SCHEDULES: tuple[ScheduleSpec, ...] = (
    ScheduleSpec(
        name="refresh-delinquency",
        func="repayments.tasks.refresh_delinquency",
        cron="5 0 * * *",
        description="Age open bills: overdue status, DPD, late fees (00:05 business time).",
    ),
    ScheduleSpec(
        name="first-debits",
        func="repayments.tasks.run_collection",
        cron="0 9 * * *",
        description="Start the due date's first debits at 09:00 business time (01:00 UTC) sharp.",
    ),
    ScheduleSpec(
        name="collection-run",
        func="repayments.tasks.run_collection",
        cron="*/5 * * * *",
        description="Debit bills falling due (from 09:00) and retries that are due.",
        run_when_created=True,
    ),
    ScheduleSpec(
        name="resolve-stale-attempts",
        func="repayments.tasks.resolve_stale_attempts",
        cron="*/2 * * * *",
        description="Settle unknown or silent attempts by querying the gateway.",
    ),
    ScheduleSpec(
        name="plan-reminders",
        func="repayments.tasks.plan_reminders",
        cron="0 7 * * *",
        description="Plan the coming week's reminders per risk tier (07:00 business time).",
        run_when_created=True,
    ),
    ScheduleSpec(
        name="send-reminders",
        func="repayments.tasks.send_reminders",
        cron="*/10 * * * *",
        description="Send due reminders outside quiet hours, within the daily cap.",
        cluster=NOTIFY,
    ),
    ScheduleSpec(
        name="detect-incidents",
        func="repayments.tasks.detect_incidents",
        cron="* * * * *",
        description="Open an incident when a bank's system-failure rate spikes; resume stalled relief batches.",
        cluster=CRITICAL,
    ),
    ScheduleSpec(
        name="sweep-export-jobs",
        func="repayments.tasks.sweep_export_jobs",
        cron="*/5 * * * *",
        description="Delete expired export files (personal data); fail exports whose worker stopped.",
    ),
    ScheduleSpec(
        name="sweep-import-jobs",
        func="repayments.tasks.sweep_import_jobs",
        cron="* * * * *",
        description="Re-queue or fail import jobs whose worker stopped (crash, 300 s timeout); delete uploads of "
        "finished jobs.",
    ),
    ScheduleSpec(
        name="refresh-dashboard",
        func="repayments.tasks.refresh_dashboard",
        cron="*/15 * * * *",
        description="Rebuild the receivables dashboard's rollups (REFRESH MATERIALIZED VIEW CONCURRENTLY).",
        run_when_created=True,
        cluster=CRITICAL,
    ),
    ScheduleSpec(
        name="anonymize-expired-customers",
        func="repayments.tasks.anonymize_expired_customers",
        cron="30 3 * * *",
        description="Anonymize customers whose line closed more than the retention period ago (03:30 business time).",
    ),
    ScheduleSpec(
        name="purge-idempotency-keys",
        func="repayments.tasks.purge_idempotency_keys",
        cron="45 3 * * *",
        description="Forget API Idempotency-Keys older than API_IDEMPOTENCY_TTL_HOURS (03:45 business time).",
    ),
)
