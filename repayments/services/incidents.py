"""System-fault incidents (issue #5): detect an outage, shield its customers, relieve them in one batch.

* :func:`incident_detect` (every minute, on the ``critical`` queue): per bank, the
  share of debits whose result arrived in the last
  ``settings.INCIDENT_DETECTION["window_minutes"]`` that failed with a system-family
  code or timed out; at ``threshold_percent`` of at least ``min_attempts`` it opens
  an incident and alerts the supervisors (console banner, email).
* :func:`incident_declare` / :func:`incident_resolve`: by hand, overlapping refused.
* While an incident is open, the bills it shields (``selectors.incidents``) are not
  punished: system retries back off, reminders are skipped, DPD and late fees do
  not age (``collection.py``, ``reminders.py``, ``delinquency.py``).
* Relief: :func:`relief_request` fixes the bills (``ReliefItem`` rows, the ledger),
  :func:`relief_approve` (another supervisor) queues :func:`relief_run`, which works
  through the items a chunk per transaction: due date + N days, late fee waived,
  a bureau suppression, a re-debit after recovery, an apology. Idempotent and
  resumable: an item is applied once, in the same transaction as its bill.
  :func:`relief_reverse` restores every bill exactly, once.

Every audit event of a batch carries the batch's ``audit_id`` as ``request_id``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django_q.tasks import async_task

from accounts.models import User
from accounts.services import AuditEntry, audit_record, audit_record_many
from baitiao.business_time import business_today
from baitiao.money import format_money
from repayments.bins import bank_is_known
from repayments.models import (
    SQL_CODES,
    ExtensionReason,
    Incident,
    IncidentSource,
    IncidentStatus,
    Notification,
    NotificationChannel,
    NotificationEvent,
    ReliefBatch,
    ReliefItem,
    ReliefSkipReason,
    ReliefStatus,
    outstanding_sql,
)
from repayments.selectors.incidents import (
    BANNER_CACHE_KEY,
    RELIEF_SELECTION,
    relief_selection_params,
    shielded_sql,
)
from repayments.services.collection import CRITICAL_QUEUE, NOTIFY_QUEUE
from repayments.services.delinquency import bills_refresh_delinquency
from repayments.services.errors import RuleViolation

logger = logging.getLogger(__name__)

PERMISSION = "repayments.manage_incident"
# How far ahead of our clock a declared start (or end) may be: the supervisor's
# clock, or the monitoring that told them, may run a little fast. Anything later is
# a mistake (a month typed wrong): such an incident could never be resolved
# ("The end is before the start") and its banner would stay (docs/incidents.md).
CLOCK_SKEW = dt.timedelta(minutes=2)
RELIEF_LOCK_SPACE = 7_002  # pg_advisory_lock(space, batch_id): one runner per batch

# Judged by when each result arrived (``completed_at``: the bank's answer, or the
# timeout that left an attempt ``unknown``), never by when a run created the attempt:
# a long run's debits reach the bank minutes after it began (issue #16). A timeout
# counts as a system failure. The incident starts at the first such debit's send.
DETECT = """
    SELECT cb.bank_code, a.channel,
           count(*) AS settled,
           count(*) FILTER (WHERE a.status = %(attempt_unknown)s
                               OR (a.status = %(attempt_failed)s AND a.failure_family = %(family_system)s))
               AS system_failed,
           min(a.requested_at) FILTER (WHERE a.status = %(attempt_unknown)s
                                          OR (a.status = %(attempt_failed)s AND a.failure_family = %(family_system)s))
               AS first_failure
      FROM repayments_repaymentattempt a
      JOIN repayments_cardbinding cb ON cb.id = a.card_binding_id
     WHERE a.completed_at > %(since)s AND a.completed_at <= %(now)s
       AND a.status IN (%(attempt_succeeded)s, %(attempt_failed)s, %(attempt_unknown)s)
     GROUP BY cb.bank_code, a.channel
"""


def _audit_id(value: uuid.UUID) -> str:
    return str(value)


def _refresh_dashboard_after_commit() -> None:
    """The incident impact on the dashboard shows a batch's result as soon as it is applied or reversed."""
    transaction.on_commit(
        lambda: async_task("repayments.tasks.refresh_dashboard", trigger="relief", cluster=CRITICAL_QUEUE)
    )


def _clear_banner() -> None:
    transaction.on_commit(lambda: cache.delete(BANNER_CACHE_KEY))


def _overlapping(*, bank_code: str, channel: str, start: dt.datetime, end: dt.datetime | None):
    """Incidents whose scope and window meet this one's (an empty bank or channel covers all)."""
    scope = (Q(bank_code="") | Q(bank_code=bank_code) if bank_code else Q()) & (
        Q(channel="") | Q(channel=channel) if channel else Q()
    )
    window = Q(ended_at__isnull=True) | Q(ended_at__gte=start)
    if end is not None:
        window &= Q(started_at__lte=end)
    # A withdrawn incident was declared by mistake: it covers nothing.
    return Incident.objects.filter(scope, window).exclude(status=IncidentStatus.WITHDRAWN)


def incident_detect(*, now: dt.datetime | None = None) -> list[Incident]:
    """Open an incident for each bank and channel whose system-failure rate crossed the threshold.

    An attempt counts when its result arrived (``completed_at``, UTC): the bank's
    answer, or the client's timeout (an ``unknown`` attempt counts as a system
    failure). The incident starts at the earliest send (``requested_at``) of those
    failures, so the relief selection, which reads ``requested_at``, finds them all.

    Args:
        now: end of the sliding window of ``settings.INCIDENT_DETECTION["window_minutes"]``
            minutes (UTC aware); default ``timezone.now()``.

    Returns:
        The incidents opened (a bank and channel already under an open incident open none).
    """
    now = now or timezone.now()
    config = settings.INCIDENT_DETECTION
    since = now - dt.timedelta(minutes=config["window_minutes"])
    with connection.cursor() as cursor:
        cursor.execute(DETECT, {**SQL_CODES, "since": since, "now": now})
        rows = cursor.fetchall()
    opened = []
    for bank_code, channel, settled, system_failed, first_failure in rows:
        if not bank_code:
            continue  # cards of unknown issuer: an incident without a bank would cover every bank
        if settled < config["min_attempts"] or system_failed * 100 < config["threshold_percent"] * settled:
            continue
        earlier = _overlapping(bank_code=bank_code, channel=channel, start=first_failure, end=None)
        if earlier.filter(status=IncidentStatus.OPEN).exists():
            continue
        # A supervisor withdrew an incident of this scope within the window: the failures
        # they judged no incident are still in it. Judge afresh once the window has passed.
        if Incident.objects.filter(
            bank_code=bank_code, channel=channel, status=IncidentStatus.WITHDRAWN, withdrawn_at__gt=since
        ).exists():
            continue
        # A new incident starts after any resolved one whose window it would overlap,
        # so no bill's failure falls in two incidents (and gets relief twice).
        last_end = max((i.ended_at for i in earlier if i.ended_at is not None), default=None)
        if last_end is not None and last_end >= first_failure:
            first_failure = last_end + dt.timedelta(microseconds=1)
        description = _("%(failed)s of %(settled)s debits on %(bank)s failed with system codes in %(minutes)s minutes.")
        try:
            with transaction.atomic():
                incident = Incident.objects.create(
                    bank_code=bank_code,
                    channel=channel,
                    started_at=first_failure,
                    source=IncidentSource.DETECTED,
                    description=description
                    % {
                        "failed": system_failed,
                        "settled": settled,
                        "bank": bank_code or "?",
                        "minutes": config["window_minutes"],
                    },
                    attempts_seen=settled,
                    system_failures_seen=system_failed,
                )
                _on_open(incident, actor=None, now=now)
        except IntegrityError:
            continue  # another detector opened it a moment ago
        opened.append(incident)
    return opened


def incident_declare(
    *,
    declared_by: User,
    bank_code: str,
    channel: str,
    started_at: dt.datetime,
    ended_at: dt.datetime | None,
    description: str,
    now: dt.datetime | None = None,
) -> Incident:
    """Declare an incident by hand: open (no end) or a past window (with its end, resolved at once).

    Args:
        declared_by: a supervisor (``repayments.manage_incident``).
        bank_code: a bank of the BIN table (``repayments.bins.known_banks``), e.g.
            ``"ICBC"``, any case; ``""`` for every bank.
        channel: a ``Channel`` value, ``""`` for every channel.
        started_at: start of the window (aware; stored UTC); at most
            :data:`CLOCK_SKEW` after ``now``.
        ended_at: end of the window (aware), ``None`` while it lasts; not before the
            start, at most :data:`CLOCK_SKEW` after ``now``.
        description: what failed; required.
        now: the present (aware); default ``timezone.now()``.

    Raises:
        RuleViolation: no permission, an unknown bank code (named), a start or an end
            in the future (named), an empty description, an end before the start,
            or an incident whose scope and window overlap this one's.
    """
    if not declared_by.has_perm(PERMISSION):
        raise RuleViolation("__all__", _("You may not declare incidents."))
    now = now or timezone.now()
    bank_code = (bank_code or "").strip().upper()
    if bank_code and not bank_is_known(bank_code):
        raise RuleViolation(
            "bank_code", _("“%(code)s” is not a bank we know; choose one from the list.") % {"code": bank_code}
        )
    for name, value in (("started_at", started_at), ("ended_at", ended_at)):
        if value is not None and value > now + CLOCK_SKEW:
            raise RuleViolation(
                name,
                _("%(when)s is in the future (now %(now)s, business time); an incident is declared once it has begun.")
                % {
                    "when": timezone.localtime(value).strftime("%Y-%m-%d %H:%M"),
                    "now": timezone.localtime(now).strftime("%Y-%m-%d %H:%M"),
                },
            )
    if not description.strip():
        raise RuleViolation("description", _("Describe what failed."))
    if ended_at is not None and ended_at < started_at:
        raise RuleViolation("ended_at", _("The end is before the start."))
    try:
        with transaction.atomic():
            # One declaration at a time, so two supervisors cannot both pass the overlap check.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RELIEF_LOCK_SPACE + 1])
            clash = _overlapping(bank_code=bank_code, channel=channel, start=started_at, end=ended_at).first()
            if clash is not None:
                raise RuleViolation(
                    "__all__",
                    _("It overlaps incident %(pk)s (%(scope)s, from %(start)s). Change the window or the scope.")
                    % {
                        "pk": clash.pk,
                        "scope": f"{clash.bank_code or '*'}/{clash.channel or '*'}",
                        "start": timezone.localtime(clash.started_at).strftime("%Y-%m-%d %H:%M"),
                    },
                )
            incident = Incident.objects.create(
                bank_code=bank_code,
                channel=channel,
                started_at=started_at,
                ended_at=ended_at,
                status=IncidentStatus.RESOLVED if ended_at else IncidentStatus.OPEN,
                resolved_by=declared_by if ended_at else None,
                source=IncidentSource.DECLARED,
                declared_by=declared_by,
                description=description.strip(),
            )
            if ended_at is None:
                _on_open(incident, actor=declared_by, now=now)
            else:
                audit_record(actor=declared_by, action="incident.declare", target=incident, after=_snapshot(incident))
    except IntegrityError:
        raise RuleViolation("__all__", _("An open incident for this scope already exists.")) from None
    return incident


def _snapshot(incident: Incident) -> dict:
    return {
        "bank_code": incident.bank_code,
        "channel": incident.channel,
        "started_at": incident.started_at,
        "ended_at": incident.ended_at,
        "source": incident.source,
        "status": incident.status,
    }


def _on_open(incident: Incident, *, actor: User | None, now: dt.datetime) -> None:
    """Audit, back off the shielded bills' system retries to the cap, alert the supervisors."""
    action = "incident.detect" if actor is None else "incident.declare"
    audit_record(actor=actor, action=action, target=incident, after=_snapshot(incident))
    cap = dt.timedelta(minutes=settings.RETRY_POLICY["system"]["cap_minutes"])
    with connection.cursor() as cursor:
        # Retrying a failing bank every few minutes only adds load to it; the cap is
        # the longest the engine waits, and resolving the incident brings them back.
        cursor.execute(
            "UPDATE repayments_bill b SET retry_at = %(cap)s, updated_at = now()"  # noqa: S608 - constant SQL
            f" WHERE b.status IN (%(bill_pending)s, %(bill_overdue)s) AND b.retry_at < %(cap)s AND {shielded_sql('b')}",
            {**SQL_CODES, "cap": now + cap},
        )
    _clear_banner()
    transaction.on_commit(lambda: _alert_supervisors(incident.pk))


def _alert_supervisors(incident_id: int) -> None:
    incident = Incident.objects.get(pk=incident_id)
    recipients = sorted(
        {
            user.email
            for user in User.objects.filter(is_active=True)
            .exclude(email="")
            .filter(
                Q(groups__permissions__codename="manage_incident") | Q(user_permissions__codename="manage_incident")
            )
        }
    )
    if not recipients:
        return
    subject = _("[Baitiao Ops] Incident %(pk)s open: %(scope)s") % {
        "pk": incident.pk,
        "scope": incident.bank_code or _("all banks"),
    }
    body = "\n".join(
        [
            incident.description,
            _("Started: %(start)s") % {"start": timezone.localtime(incident.started_at).strftime("%Y-%m-%d %H:%M")},
            _("Dunning, late fees and DPD aging are paused for the affected bills until it is resolved."),
        ]
    )
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except OSError:  # a mail outage must not hide the incident: the banner shows it anyway
        logger.warning("incident %s: alert email failed", incident_id)


def incident_resolve(*, incident_id: int, resolved_by: User, ended_at: dt.datetime | None = None) -> Incident:
    """Close an open incident's window; its shielded bills are retried now.

    Raises:
        RuleViolation: no permission, not open, or an end before the start.
    """
    if not resolved_by.has_perm(PERMISSION):
        raise RuleViolation("__all__", _("You may not resolve incidents."))
    now = timezone.now()
    ended_at = ended_at or now
    with transaction.atomic():
        incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
        if incident is None or incident.status != IncidentStatus.OPEN:
            raise RuleViolation("__all__", _("This incident is not open."))
        if ended_at < incident.started_at:
            raise RuleViolation("ended_at", _("The end is before the start."))
        with connection.cursor() as cursor:
            # Shielded by this incident (it is still open here): the backed-off retries come back now.
            cursor.execute(
                "UPDATE repayments_bill b SET retry_at = %(now)s, updated_at = now()"  # noqa: S608 - constant SQL
                " WHERE b.status IN (%(bill_pending)s, %(bill_overdue)s) AND b.retry_at > %(now)s"
                f" AND {shielded_sql('b')}",
                {**SQL_CODES, "now": now},
            )
            retried = cursor.rowcount
        incident.status, incident.ended_at, incident.resolved_by = IncidentStatus.RESOLVED, ended_at, resolved_by
        incident.save(update_fields=["status", "ended_at", "resolved_by", "updated_at"])
        audit_record(
            actor=resolved_by,
            action="incident.resolve",
            target=incident,
            after={"ended_at": ended_at, "bills_retried": retried},
        )
        _clear_banner()
    return incident


def incident_withdraw(*, incident_id: int, withdrawn_by: User, reason: str, now: dt.datetime | None = None) -> Incident:
    """Withdraw an incident declared by mistake, and undo what it did; audited as ``incident.withdraw``.

    What is undone: an open incident stops shielding its bills, whose backed-off
    debits are retried now and whose status and DPD catch up with the aging rule at
    once (``bills_refresh_delinquency``); the banner goes; a relief batch still
    awaiting approval is cancelled (``relief.cancel``). Relief that was approved or
    applied is not undone here: withdrawing is refused until that batch has been
    reversed (:func:`relief_reverse`), so every relieved bill is restored by the
    one exact reversal there is. Reminders skipped while it was open are not sent
    late. A withdrawn incident covers nothing: it takes no relief, is never
    resolved, and does not count as an overlap for a new declaration.

    Args:
        incident_id: an open or resolved incident.
        withdrawn_by: a supervisor (``repayments.manage_incident``).
        reason: why (at least five characters), kept on the incident and in the audit trail.
        now: the present (aware); default ``timezone.now()``.

    Raises:
        RuleViolation: no permission, a reason too short, no such incident, already
            withdrawn, or a relief batch approved, running or applied (reverse it first).
    """
    if not withdrawn_by.has_perm(PERMISSION):
        raise RuleViolation("__all__", _("You may not withdraw incidents."))
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise RuleViolation("reason", _("Give a reason of at least five characters."))
    now = now or timezone.now()
    with transaction.atomic():
        incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
        if incident is None:
            raise RuleViolation("__all__", _("No such incident."))
        if incident.status == IncidentStatus.WITHDRAWN:
            raise RuleViolation("__all__", _("This incident has already been withdrawn."))
        batches = list(incident.relief_batches.select_for_update().order_by("pk"))
        live = [b for b in batches if b.status in (ReliefStatus.APPROVED, ReliefStatus.RUNNING, ReliefStatus.DONE)]
        if live:
            raise RuleViolation(
                "__all__",
                _("Relief %(pk)s is %(status)s: reverse it once it is applied, then withdraw the incident.")
                % {"pk": live[0].pk, "status": live[0].get_status_display()},
            )
        before = _snapshot(incident)
        was_open = incident.status == IncidentStatus.OPEN
        shielded_before = _shielded_open_bills() if was_open else []
        cancelled = [b.pk for b in batches if b.status == ReliefStatus.REQUESTED]
        incident.status, incident.withdrawn_by, incident.withdrawn_at = IncidentStatus.WITHDRAWN, withdrawn_by, now
        incident.withdraw_reason = reason
        incident.save(update_fields=["status", "withdrawn_by", "withdrawn_at", "withdraw_reason", "updated_at"])
        # The bills it held back: shielded before, not by another open incident now.
        released = sorted(set(shielded_before) - set(_shielded_open_bills(among=shielded_before))) if was_open else []
        retried: list[int] = []
        if released:
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE repayments_bill SET retry_at = %(now)s, updated_at = now()"
                    " WHERE id = ANY(%(ids)s) AND retry_at > %(now)s RETURNING id",
                    {"now": now, "ids": released},
                )
                retried = [row[0] for row in cursor.fetchall()]
            # No longer shielded: status and DPD as if it had never been declared.
            bills_refresh_delinquency(as_of=timezone.localdate(now), audit=False, bill_ids=released)
        for batch in batches:
            if batch.pk in cancelled:
                batch.status = ReliefStatus.CANCELLED
                batch.save(update_fields=["status", "updated_at"])
                audit_record(
                    actor=withdrawn_by,
                    action="relief.cancel",
                    target=batch,
                    reason=reason,
                    before={"status": ReliefStatus.REQUESTED.value},
                    after={"status": ReliefStatus.CANCELLED.value, "incident_withdrawn": incident.pk},
                    request_id=_audit_id(batch.audit_id),
                )
        audit_record(
            actor=withdrawn_by,
            action="incident.withdraw",
            target=incident,
            reason=reason,
            before=before,
            after={**_snapshot(incident), "bills_retried": len(retried), "relief_cancelled": cancelled},
        )
        _clear_banner()
    return incident


def _shielded_open_bills(*, among: list[int] | None = None) -> list[int]:
    """Ids of the open bills an open incident shields now (``among`` these ids, when given)."""
    sql = (
        "SELECT b.id FROM repayments_bill b WHERE b.status IN (%(bill_pending)s, %(bill_overdue)s)"  # noqa: S608 - constant SQL
        f" AND {shielded_sql('b')}"
    )
    params: dict[str, Any] = dict(SQL_CODES)
    if among is not None:
        sql += " AND b.id = ANY(%(among)s)"
        params["among"] = among
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def relief_request(*, incident_id: int, requested_by: User, days: int, note: str = "") -> ReliefBatch:
    """Ask for relief of every bill the (resolved) incident hurt; the bills are fixed now.

    Args:
        incident_id: a resolved incident (its window is known).
        requested_by: a supervisor (``repayments.manage_incident``).
        days: calendar days added to each due date (1 … ``INCIDENT_RELIEF["max_days"]``).
        note: why, kept on the batch and in the audit trail.

    Raises:
        RuleViolation: no permission, days out of range, the incident still open,
            a live batch already exists, or no bill to relieve.
    """
    if not requested_by.has_perm(PERMISSION):
        raise RuleViolation("__all__", _("You may not request relief."))
    max_days = settings.INCIDENT_RELIEF["max_days"]
    if not 1 <= days <= max_days:
        raise RuleViolation(
            "days", _("Days must be between 1 and %(max)s; got %(days)s.") % {"max": max_days, "days": days}
        )
    try:
        with transaction.atomic():
            incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
            if incident is None:
                raise RuleViolation("__all__", _("No such incident."))
            if incident.status != IncidentStatus.RESOLVED:
                raise RuleViolation("__all__", _("Resolve the incident first: relief needs the end of its window."))
            batch = ReliefBatch.objects.create(
                incident=incident, days=days, note=note.strip(), requested_by=requested_by, audit_id=uuid.uuid4()
            )
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO repayments_reliefitem (batch_id, bill_id, amount_owed, applied, skip_reason,"  # noqa: S608
                    " reversed, reverse_skip_reason, status_before)"
                    f" SELECT %(batch)s, sel.bill_id, sel.owed, false, '', false, '', '' FROM ({RELIEF_SELECTION}) sel",
                    {"batch": batch.pk, **relief_selection_params(incident, until=timezone.now())},
                )
                total = cursor.rowcount
            if not total:
                raise RuleViolation("__all__", _("No bill to relieve: none failed with a system code and is unpaid."))
            batch.bills_total = total
            batch.save(update_fields=["bills_total", "updated_at"])
            audit_record(
                actor=requested_by,
                action="relief.request",
                target=batch,
                reason=note.strip(),
                after={"incident": incident.pk, "days": days, "bills": total},
                request_id=_audit_id(batch.audit_id),
            )
    except IntegrityError:
        raise RuleViolation("__all__", _("This incident already has a relief batch.")) from None
    return batch


def relief_approve(*, batch_id: int, approved_by: User) -> ReliefBatch:
    """Approve a requested batch (never one's own) and queue its run.

    Raises:
        RuleViolation: no permission, the approver is the requester, or not awaiting approval.
    """
    if not approved_by.has_perm(PERMISSION):
        raise RuleViolation("__all__", _("You may not approve relief."))
    with transaction.atomic():
        batch = ReliefBatch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None:
            raise RuleViolation("__all__", _("No such relief batch."))
        if batch.requested_by_id == approved_by.pk:
            raise RuleViolation("__all__", _("You cannot approve your own relief batch; another supervisor must."))
        if batch.status != ReliefStatus.REQUESTED:
            raise RuleViolation(
                "__all__",
                _("This batch is not awaiting approval: %(status)s.") % {"status": batch.get_status_display()},
            )
        batch.status, batch.approved_by, batch.approved_at = ReliefStatus.APPROVED, approved_by, timezone.now()
        batch.save(update_fields=["status", "approved_by", "approved_at", "updated_at"])
        audit_record(
            actor=approved_by,
            action="relief.approve",
            target=batch,
            after={"incident": batch.incident_id, "days": batch.days, "bills": batch.bills_total},
            request_id=_audit_id(batch.audit_id),
        )
        transaction.on_commit(lambda: async_task("repayments.tasks.run_relief", batch.pk, cluster=CRITICAL_QUEUE))
    return batch


# One chunk of a batch, under the locks of its items and bills. The statements run
# in order: skip paid bills, skip bills with a debit at the bank (its amount was
# fixed from the bill as it was), record the before-values and mark the rest
# applied, then change the bills, write the suppressions and the audit events.
_IN_FLIGHT = """
    EXISTS (SELECT 1 FROM repayments_repaymentattempt a
             WHERE a.bill_id = i.bill_id
               AND a.status IN (%(attempt_pending)s, %(attempt_processing)s, %(attempt_unknown)s))
"""
# Items whose bill has a debit at the bank wait (processed_at stays NULL): the batch
# stays running and the minute job re-queues it, so they are relieved once the
# debit has settled (or skipped as paid if it succeeded), never dropped.
_CHUNK_ITEMS = """
    SELECT i.id FROM repayments_reliefitem i
     WHERE i.batch_id = %(batch)s AND i.processed_at IS NULL AND NOT {in_flight}
     ORDER BY i.id LIMIT %(chunk)s
       FOR UPDATE OF i
""".replace("{in_flight}", _IN_FLIGHT)
_LOCK_BILLS = """
    SELECT b.id FROM repayments_bill b
     WHERE b.id IN (SELECT bill_id FROM repayments_reliefitem WHERE id = ANY(%(ids)s))
     ORDER BY b.id FOR UPDATE
"""
_SKIP_PAID = """
    UPDATE repayments_reliefitem i SET processed_at = %(now)s, skip_reason = %(skip_paid)s
      FROM repayments_bill b
     WHERE b.id = i.bill_id AND i.id = ANY(%(ids)s)
       AND (b.status NOT IN (%(bill_pending)s, %(bill_overdue)s) OR {outstanding} = 0)
""".replace("{outstanding}", outstanding_sql("b"))
_MARK_APPLIED = """
    UPDATE repayments_reliefitem i
       SET processed_at = %(now)s, applied = true,
           due_date_before = b.due_date, status_before = b.status, dpd_before = b.dpd,
           dpd_as_of_before = b.dpd_as_of, late_fee_waived_before = b.late_fee_waived, retry_at_before = b.retry_at,
           due_date_after = b.due_date + %(days)s, late_fee_waived_after = b.late_fee
      FROM repayments_bill b
     WHERE b.id = i.bill_id AND i.id = ANY(%(ids)s) AND i.processed_at IS NULL
       AND NOT {in_flight}
    RETURNING i.id
""".replace("{in_flight}", _IN_FLIGHT)
# As an approved extension does (services/extensions.py): status and DPD for today
# with the new due date; the whole unwaived late fee waived (the bill was late
# because of us); the next debit soon after recovery.
_APPLY_BILLS = """
    UPDATE repayments_bill b
       SET due_date = i.due_date_after,
           -- The past-due schedule moves with the due date; DPD from the oldest missed due date.
           past_due_since = b.past_due_since + %(days)s,
           late_fee_waived = i.late_fee_waived_after,
           status = CASE WHEN b.past_due_amount > 0
                          AND COALESCE(b.past_due_since + %(days)s, i.due_date_after) + %(grace)s < %(today)s::date
                         THEN %(bill_overdue)s ELSE %(bill_pending)s END,
           dpd = CASE WHEN b.past_due_amount > 0
                       AND COALESCE(b.past_due_since + %(days)s, i.due_date_after) + %(grace)s < %(today)s::date
                      THEN %(today)s::date - COALESCE(b.past_due_since + %(days)s, i.due_date_after) ELSE 0 END,
           dpd_as_of = %(today)s, retry_at = %(redebit)s, updated_at = %(now)s
      FROM repayments_reliefitem i
     WHERE i.bill_id = b.id AND i.id = ANY(%(applied)s)
"""
_SUPPRESS = """
    INSERT INTO repayments_bureausuppression (bill_id, extension_id, incident_id, suppress_until, reason,
        revoked_at, created_at, updated_at)
    SELECT i.bill_id, NULL, %(incident)s, i.due_date_after + %(grace)s, %(reason)s, NULL, %(now)s, %(now)s
      FROM repayments_reliefitem i WHERE i.id = ANY(%(applied)s)
"""
# One audit event per bill (the customer's history shows it), set-based; all under the batch's audit id.
_RELIEF_VALUES = "jsonb_build_object('due_date', i.due_date_after, 'late_fee_waived', i.late_fee_waived_after::text)"
_ORIGINAL_VALUES = (
    "jsonb_build_object('due_date', i.due_date_before, 'status', i.status_before, 'dpd', i.dpd_before,"
    " 'late_fee_waived', i.late_fee_waived_before::text, 'retry_at', i.retry_at_before)"
)
_AUDIT_ITEMS = """
    SELECT b.id::text, c.customer_no, {before}, {after}
      FROM repayments_reliefitem i
      JOIN repayments_bill b ON b.id = i.bill_id
      JOIN repayments_customer c ON c.id = b.customer_id
     WHERE i.id = ANY(%(applied)s)
     ORDER BY b.id
"""
_AUDIT_APPLY = _AUDIT_ITEMS.format(before=_ORIGINAL_VALUES, after=_RELIEF_VALUES)
_AUDIT_REVERSE = _AUDIT_ITEMS.format(before=_RELIEF_VALUES, after=_ORIGINAL_VALUES)


def _audit_items(cursor, sql: str, params: dict, *, actor: User | None) -> int:
    """One audit event per relieved (or restored) bill, with its before/after values, through
    the audit API's bulk variant (``accounts.services.audit_record_many``)."""
    cursor.execute(sql, params)

    def decoded(value):  # Django's psycopg setup reads json/jsonb as text
        return json.loads(value) if isinstance(value, str) else value

    entries = [
        AuditEntry(
            target_type="repayments.bill",
            target_id=bill_id,
            customer_no=number,
            before=decoded(before),
            after=decoded(after),
        )
        for bill_id, number, before, after in cursor.fetchall()
    ]
    return audit_record_many(
        actor=actor, action=params["action"], entries=entries, occurred_at=params["now"], request_id=params["audit_id"]
    )


def relief_run(*, batch_id: int, chunk: int | None = None, max_chunks: int | None = None) -> dict[str, int]:
    """Apply an approved batch, a chunk of items per transaction; safe to run twice or after a crash.

    Only one runner works on a batch at a time (a session advisory lock); a second
    one returns at once. Items already processed are never touched again.

    Args:
        batch_id: an approved (or running, after a crash) batch.
        chunk: items per transaction (default ``INCIDENT_RELIEF["chunk"]``).
        max_chunks: stop after this many chunks (tests: a crash half-way).

    Returns:
        Counts of this run: ``applied``, ``skipped``, ``chunks``; ``busy`` 1 when another runner has it.
    """
    chunk = chunk or settings.INCIDENT_RELIEF["chunk"]
    counts = {"applied": 0, "skipped": 0, "chunks": 0, "busy": 0}
    now = timezone.now()
    claimed = ReliefBatch.objects.filter(pk=batch_id, status__in=[ReliefStatus.APPROVED, ReliefStatus.RUNNING]).update(
        status=ReliefStatus.RUNNING, updated_at=now
    )
    if not claimed:
        return counts  # requested, done or reversed: nothing to do
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [RELIEF_LOCK_SPACE, batch_id])
        if not cursor.fetchone()[0]:
            counts["busy"] = 1
            return counts
    try:
        batch = ReliefBatch.objects.select_related("incident", "approved_by").get(pk=batch_id)
        if batch.started_at is None:
            ReliefBatch.objects.filter(pk=batch_id, started_at__isnull=True).update(started_at=now)
        while max_chunks is None or counts["chunks"] < max_chunks:
            applied, skipped = _run_chunk(batch, chunk)
            if applied is None:
                break
            counts["applied"] += applied
            counts["skipped"] += skipped
            counts["chunks"] += 1
        else:
            return counts
        if ReliefItem.objects.filter(batch_id=batch_id, processed_at__isnull=True).exists():
            return counts  # bills with a debit at the bank: the minute job runs the batch again
        with transaction.atomic():
            if ReliefBatch.objects.filter(pk=batch_id, status=ReliefStatus.RUNNING).update(
                status=ReliefStatus.DONE, finished_at=timezone.now(), updated_at=timezone.now()
            ):
                batch.refresh_from_db()
                audit_record(
                    actor=batch.approved_by,
                    action="relief.done",
                    target=batch,
                    after={
                        "applied": batch.bills_applied,
                        "skipped": batch.bills_skipped,
                        "total": batch.bills_total,
                    },
                    request_id=_audit_id(batch.audit_id),
                )
                _refresh_dashboard_after_commit()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [RELIEF_LOCK_SPACE, batch_id])
    return counts


def _run_chunk(batch: ReliefBatch, chunk: int) -> tuple[int | None, int]:
    """One transaction: the next ``chunk`` items. ``(None, 0)`` when none is left."""
    now = timezone.now()
    incident = batch.incident
    recovered = max(incident.ended_at or now, now)
    params = {
        **SQL_CODES,
        "batch": batch.pk,
        "chunk": chunk,
        "now": now,
        "days": batch.days,
        "grace": settings.GRACE_PERIOD_DAYS,
        "today": business_today(),
        "redebit": recovered + dt.timedelta(minutes=settings.INCIDENT_RELIEF["redebit_after_minutes"]),
        "incident": incident.pk,
        "reason": ExtensionReason.SYSTEM_FAULT.value,
        "action": "relief.apply",
        "audit_id": _audit_id(batch.audit_id),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CHUNK_ITEMS, params)
        params["ids"] = [row[0] for row in cursor.fetchall()]
        if not params["ids"]:
            return None, 0
        cursor.execute(_LOCK_BILLS, params)
        cursor.execute(_SKIP_PAID, params)
        skipped = cursor.rowcount
        cursor.execute(_MARK_APPLIED, params)
        params["applied"] = [row[0] for row in cursor.fetchall()]
        if params["applied"]:
            cursor.execute(_APPLY_BILLS, params)
            cursor.execute(_SUPPRESS, params)
            _audit_items(cursor, _AUDIT_APPLY, params, actor=batch.approved_by)
        applied = len(params["applied"])
        ReliefBatch.objects.filter(pk=batch.pk).update(
            bills_done=F("bills_done") + applied + skipped,
            bills_applied=F("bills_applied") + applied,
            bills_skipped=F("bills_skipped") + skipped,
            updated_at=now,
        )
        if applied:
            item_ids = params["applied"]
            transaction.on_commit(lambda: async_task("repayments.tasks.notify_relief", item_ids, cluster=NOTIFY_QUEUE))
    return applied, skipped


def relief_resume_stale(*, now: dt.datetime | None = None, stale_seconds: int = 120) -> int:
    """Queue the run again for batches approved or running whose progress stopped (a worker died).

    The runner's advisory lock makes a second runner of a live batch return at once.
    """
    now = now or timezone.now()
    stale = list(
        ReliefBatch.objects.filter(
            status__in=[ReliefStatus.APPROVED, ReliefStatus.RUNNING],
            updated_at__lt=now - dt.timedelta(seconds=stale_seconds),
        ).values_list("pk", flat=True)
    )
    for batch_id in stale:
        async_task("repayments.tasks.run_relief", batch_id, cluster=CRITICAL_QUEUE)
    return len(stale)


def relief_notify(*, item_ids: list[int]) -> int:
    """Send the apology for each applied, unreversed item that has not had it; returns messages written."""
    from repayments.services.notifications import notification_send

    items = list(
        ReliefItem.objects.filter(id__in=item_ids, applied=True, reversed=False).select_related(
            "bill__customer", "bill__credit_line", "batch"
        )
    )
    told = set(
        Notification.objects.filter(
            bill_id__in=[item.bill_id for item in items], event=NotificationEvent.INCIDENT_APOLOGY
        ).values_list("bill_id", flat=True)
    )
    written = 0
    for item in items:
        if item.bill_id in told:
            continue  # a replayed task, or an earlier batch of the incident: told once
        bill = item.bill
        written += len(
            notification_send(
                customer=bill.customer,
                event=NotificationEvent.INCIDENT_APOLOGY,
                channels=[NotificationChannel.IN_APP, NotificationChannel.SMS],
                fallback=False,
                context={
                    "bill_no": bill.bill_no,
                    "due_date": bill.due_date.isoformat(),
                    "amount": format_money(bill.outstanding, bill.credit_line.currency),
                },
                bill=bill,
            )
        )
    return written


_REVERSE_CHANGED = """
    UPDATE repayments_reliefitem i SET reverse_skip_reason = %(skip_changed_since)s
      FROM repayments_bill b
     WHERE b.id = i.bill_id AND i.batch_id = %(batch)s AND i.applied AND NOT i.reversed
       AND (b.due_date <> i.due_date_after OR b.late_fee_waived <> i.late_fee_waived_after
            OR b.status NOT IN (%(bill_pending)s, %(bill_overdue)s))
"""
_REVERSE_BILLS = """
    UPDATE repayments_bill b
       SET due_date = i.due_date_before, status = i.status_before, dpd = i.dpd_before,
           past_due_since = b.past_due_since - (i.due_date_after - i.due_date_before),
           dpd_as_of = i.dpd_as_of_before, late_fee_waived = i.late_fee_waived_before,
           retry_at = i.retry_at_before, updated_at = %(now)s
      FROM repayments_reliefitem i
     WHERE i.bill_id = b.id AND i.batch_id = %(batch)s AND i.applied AND NOT i.reversed
       AND i.reverse_skip_reason = ''
"""
_REVERSE_ITEMS = """
    UPDATE repayments_reliefitem SET reversed = true
     WHERE batch_id = %(batch)s AND applied AND NOT reversed AND reverse_skip_reason = ''
    RETURNING id
"""
_REVOKE_SUPPRESSIONS = """
    UPDATE repayments_bureausuppression s SET revoked_at = %(now)s, updated_at = %(now)s
      FROM repayments_reliefitem i
     WHERE i.id = ANY(%(applied)s) AND s.bill_id = i.bill_id AND s.incident_id = %(incident)s
       AND s.revoked_at IS NULL
"""


def relief_reverse(*, batch_id: int, reversed_by: User, reason: str) -> ReliefBatch:
    """Undo an applied batch: every bill gets back exactly the values it had before; once only.

    A bill that changed since relief (paid, extended again, waived again) keeps its
    current values and is reported (``reverse_skip_reason = "changed_since"``).

    Raises:
        RuleViolation: no permission, no reason, the batch is not applied, or already reversed.
    """
    if not reversed_by.has_perm(PERMISSION):
        raise RuleViolation("__all__", _("You may not reverse relief."))
    if len(reason.strip()) < 5:
        raise RuleViolation("reason", _("Give a reason of at least five characters."))
    now = timezone.now()
    with transaction.atomic():
        batch = ReliefBatch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None:
            raise RuleViolation("__all__", _("No such relief batch."))
        if batch.status == ReliefStatus.REVERSED:
            raise RuleViolation("__all__", _("This batch has already been reversed."))
        if batch.status != ReliefStatus.DONE:
            raise RuleViolation(
                "__all__",
                _("Only an applied batch can be reversed; this one is %(status)s.")
                % {"status": batch.get_status_display()},
            )
        params: dict[str, Any] = {
            **SQL_CODES,
            "batch": batch.pk,
            "now": now,
            "incident": batch.incident_id,
            "action": "relief.reverse",
            "audit_id": _audit_id(batch.audit_id),
        }
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT b.id FROM repayments_bill b JOIN repayments_reliefitem i ON i.bill_id = b.id"
                " WHERE i.batch_id = %(batch)s AND i.applied ORDER BY b.id FOR UPDATE OF b",
                params,
            )
            cursor.execute(_REVERSE_CHANGED, params)
            cursor.execute(_REVERSE_BILLS, params)
            cursor.execute(_REVERSE_ITEMS, params)
            params["applied"] = [row[0] for row in cursor.fetchall()]
            cursor.execute(_REVOKE_SUPPRESSIONS, params)
            # before: relief's values; after: the originals restored
            _audit_items(cursor, _AUDIT_REVERSE, params, actor=reversed_by)
            cursor.execute("SELECT bill_id FROM repayments_reliefitem WHERE id = ANY(%(applied)s)", params)
            reversed_bills = [row[0] for row in cursor.fetchall()]
        # The restored dates with what was paid since: status, DPD and past due by the aging rule.
        bills_refresh_delinquency(as_of=timezone.localdate(now), audit=False, bill_ids=reversed_bills)
        batch.status, batch.reversed_by, batch.reversed_at = ReliefStatus.REVERSED, reversed_by, now
        batch.bills_reversed = len(params["applied"])
        batch.save(update_fields=["status", "reversed_by", "reversed_at", "bills_reversed", "updated_at"])
        audit_record(
            actor=reversed_by,
            action="relief.reverse_batch",
            target=batch,
            reason=reason.strip(),
            after={"reversed": batch.bills_reversed, "changed_since": batch.bills_applied - batch.bills_reversed},
            request_id=_audit_id(batch.audit_id),
        )
        _refresh_dashboard_after_commit()
    return batch


def relief_refusals(batch: ReliefBatch) -> dict[str, int]:
    """Items skipped (by reason) and reversal refusals of ``batch``, for the console."""
    counts = dict(
        batch.items.exclude(skip_reason="")
        .values_list("skip_reason")
        .annotate(n=Count("id"))
        .values_list("skip_reason", "n")
    )
    changed = batch.items.filter(reverse_skip_reason=ReliefSkipReason.CHANGED_SINCE).count()
    if changed:
        counts["changed_since"] = changed
    return counts
