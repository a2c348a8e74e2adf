"""django-q2 tasks: thin wrappers that take ids, load fresh rows and call one service.

Every task is safe to run twice: the services claim rows with conditional
updates or unique constraints before acting.
"""

import logging

from baitiao.business_time import business_today
from repayments.services.collection import attempt_notify, attempts_resolve_stale, attempts_send, collection_run
from repayments.services.delinquency import bills_refresh_delinquency
from repayments.services.reminders import reminders_plan, reminders_send_due

logger = logging.getLogger(__name__)


def refresh_delinquency() -> dict[str, int]:
    """Daily 00:05 business time: age open bills to today."""
    return bills_refresh_delinquency(as_of=business_today())


def run_collection() -> dict[str, int]:
    """Every 5 minutes: create due debits and retries, enqueue sending."""
    return collection_run()


def collect_customer(customer_id: int) -> dict[str, int]:
    """An agent's retry: debit one customer's due bills, sending on the same (``critical``) lane."""
    from repayments.services.collection import CRITICAL_QUEUE

    return collection_run(customer_id=customer_id, send_cluster=CRITICAL_QUEUE)


def send_debits(attempt_ids: list[int]) -> dict[str, int]:
    """Send a batch of pending attempts to the gateway."""
    return attempts_send(attempt_ids=attempt_ids)


def resolve_stale_attempts() -> dict[str, int]:
    """Every 2 minutes: settle unknown/processing attempts by querying the gateway."""
    return attempts_resolve_stale()


def notify_attempt(attempt_id: int, event: str, channels: list[str]) -> int:
    """Tell the customer about one attempt's result."""
    return attempt_notify(attempt_id=attempt_id, event=event, channels=channels)


def plan_reminders() -> int:
    """Daily 07:00 business time: plan the next week's reminders."""
    return reminders_plan(as_of=business_today())


def send_reminders() -> dict[str, int]:
    """Every 10 minutes: send the reminders that are due (quiet hours respected)."""
    return reminders_send_due()


def run_import_job(job_id: int) -> str:
    """Queued analyst import (issue #6): run one ImportJob; a second run does nothing."""
    from repayments.services.imports import import_job_run

    return import_job_run(job_id=job_id)


def run_export_job(job_id: int) -> str:
    """Queued analyst export (issue #16): write one ExportJob's file; a second run does nothing."""
    from repayments.services.exports import export_job_run

    return export_job_run(job_id=job_id)


def sweep_export_jobs() -> dict[str, int]:
    """Every five minutes: delete expired export files and fail exports whose worker stopped."""
    from repayments.services.exports import export_jobs_sweep

    return export_jobs_sweep()


def sweep_import_jobs() -> dict[str, int]:
    """Every minute: re-queue or fail import jobs whose worker stopped beating; clear finished uploads."""
    from repayments.services.imports import import_jobs_sweep

    return import_jobs_sweep()


def detect_incidents() -> dict[str, int]:
    """Every minute: open incidents for banks whose system failures spiked; resume stalled relief."""
    from repayments.services.incidents import incident_detect, relief_resume_stale

    opened = incident_detect()
    return {"opened": len(opened), "relief_resumed": relief_resume_stale()}


def run_relief(batch_id: int) -> dict[str, int]:
    """An approved relief batch (issue #5): apply it chunk by chunk; a second run applies nothing twice."""
    from repayments.services.incidents import relief_run

    return relief_run(batch_id=batch_id)


def notify_relief(item_ids: list[int]) -> int:
    """The apology for the bills of one relief chunk; a replay sends nothing twice."""
    from repayments.services.incidents import relief_notify

    return relief_notify(item_ids=item_ids)


def anonymize_expired_customers() -> int:
    """Daily 03:30 business time: anonymize customers whose retention period ran out (PIPL)."""
    from repayments.services.retention import customer_anonymize_expired

    return customer_anonymize_expired()


def refresh_dashboard(trigger: str = "schedule", actor_id: int | None = None) -> dict[str, object]:
    """Every 15 minutes (and on "refresh now"): rebuild the dashboard rollups; a concurrent second run does nothing."""
    from accounts.models import User
    from repayments.services.dashboard import dashboard_refresh

    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    result = dashboard_refresh(trigger=trigger, actor=actor)
    return {"refreshed": result.refreshed, "duration_ms": result.duration_ms, "views_ms": result.view_ms}


def purge_idempotency_keys() -> int:
    """Delete API idempotency records older than ``API_IDEMPOTENCY_TTL_HOURS``; return how many."""
    from repayments.services.idempotency import idempotency_keys_purge

    return idempotency_keys_purge()


def first_run_collection() -> dict[str, int]:
    """Enqueued once by ``manage.py first_run`` (``make run``): the demo collection of a sample of due customers.

    Waits (up to a minute) for the sandbox bank that ``make run`` starts alongside,
    so the first debits are not sent to a bank that is not listening yet. A bank that
    never answers skips the run (left for the next ``make run``): debits sent to it
    would time out and read as a system outage.
    """
    from repayments.services.first_run import first_run_collection as run
    from repayments.services.first_run import gateway_wait

    if not gateway_wait(timeout=60):
        logger.warning("first run skipped: the sandbox bank did not answer /healthz within 60 s")
        return {"skipped": 1}
    return run()
