"""Risk-tiered reminders: planned set-based, sent in batches inside the send window.

* Tier: the customer's risk tier, raised to ``high`` for a customer's first bill.
* Cadence: ``settings.REMINDER_CADENCE`` gives the slots (days relative to the
  due date) per tier; one reminder per bill per slot (a unique constraint).
* Send time: ``settings.REMINDER_SEND_TIME`` business time on the slot's day.
* Sending: never in quiet hours (``settings.REMINDER_QUIET_HOURS``, 21:00–08:00
  business time: deferred to 08:00); at most ``settings.REMINDER_DAILY_CAP``
  reminders per customer per business day (the rest move to the next day);
  skipped once the bill is paid or extended, or while an open incident shields it
  (issue #5); channels push → SMS → email, the first that delivers wins.
"""

from __future__ import annotations

import datetime as dt
import time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from baitiao.business_time import business_datetime, days_past_due
from baitiao.money import format_money
from repayments.models import (
    SQL_CODES,
    Bill,
    BillStatus,
    NotificationEvent,
    NotificationStatus,
    Reminder,
    outstanding_sql,
)
from repayments.models import Notification as NotificationModel
from repayments.selectors.incidents import shielded_sql

# The tier is worked out once per bill (a materialized CTE: left to the planner,
# the first-bill probe ran once per bill *and slot*, 13 M times for 1.2 M bills),
# then joined to its tier's slots. Only bills whose due date can put a slot inside
# the window are read.
PLAN = """
    WITH open_bills AS MATERIALIZED (
        SELECT b.id, b.due_date,
               CASE WHEN NOT EXISTS (SELECT 1 FROM repayments_bill older
                                      WHERE older.customer_id = b.customer_id AND older.period < b.period)
                    THEN %(tier_high)s ELSE c.risk_tier END AS tier
          FROM repayments_bill b
          JOIN repayments_customer c ON c.id = b.customer_id
         WHERE b.status IN (%(bill_pending)s, %(bill_overdue)s)
           AND {outstanding} > 0
           AND b.due_date BETWEEN %(due_from)s AND %(due_to)s
    )
    INSERT INTO repayments_reminder (bill_id, offset_days, risk_tier, scheduled_at, status, skip_reason,
        created_at, updated_at)
    SELECT ob.id, slot.offset_days, ob.tier,
           ((ob.due_date + slot.offset_days) + %(send_time)s::time) AT TIME ZONE %(tz)s,
           %(reminder_planned)s, '', now(), now()
      FROM open_bills ob
      JOIN unnest(%(tiers)s::text[], %(offsets)s::int[]) AS slot(tier, offset_days) ON slot.tier = ob.tier
     WHERE ob.due_date + slot.offset_days BETWEEN %(today)s AND %(horizon)s
    ON CONFLICT (bill_id, offset_days) DO NOTHING
""".replace("{outstanding}", outstanding_sql("b"))


def reminders_plan(*, as_of: dt.date, horizon_days: int = 7) -> int:
    """Plan reminders whose slot day falls between ``as_of`` and ``as_of + horizon_days``.

    One INSERT … SELECT over all open bills; re-running adds nothing.

    Args:
        as_of: business-time date (normally today).
        horizon_days: how far ahead to plan.

    Returns:
        Reminders newly planned.
    """
    tiers, offsets = [], []
    for tier, slots in settings.REMINDER_CADENCE.items():
        for offset in slots:
            tiers.append(tier)
            offsets.append(offset)
    horizon = as_of + dt.timedelta(days=horizon_days)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            PLAN,
            {
                **SQL_CODES,
                "send_time": settings.REMINDER_SEND_TIME,
                "tz": settings.TIME_ZONE,
                "tiers": tiers,
                "offsets": offsets,
                "today": as_of,
                "horizon": horizon,
                # A slot day d = due + offset is in [as_of, horizon] only for these due dates.
                "due_from": as_of - dt.timedelta(days=max(offsets)),
                "due_to": horizon - dt.timedelta(days=min(offsets)),
            },
        )
        return cursor.rowcount


def _parse(hhmm: str) -> dt.time:
    hour, minute = hhmm.split(":")
    return dt.time(int(hour), int(minute))


def in_quiet_hours(moment: dt.datetime) -> bool:
    """Whether ``moment`` falls in the quiet hours (business time; the window wraps midnight)."""
    start, end = (_parse(t) for t in settings.REMINDER_QUIET_HOURS)
    local = timezone.localtime(moment).time()
    return local >= start or local < end


def _next_window_start(moment: dt.datetime) -> dt.datetime:
    start, end = (_parse(t) for t in settings.REMINDER_QUIET_HOURS)
    local = timezone.localtime(moment)
    day = local.date() if local.time() < end else local.date() + dt.timedelta(days=1)
    return business_datetime(day, end)


def _event_for(reminder: Reminder) -> str:
    if reminder.offset_days < 0:
        return NotificationEvent.REMINDER_BEFORE_DUE
    if reminder.offset_days == 0:
        return NotificationEvent.REMINDER_DUE_TODAY
    return NotificationEvent.REMINDER_OVERDUE


REMINDER_LOCK_SPACE = 7_001  # first key of pg_advisory_xact_lock(space, customer_id)

REMINDER_EVENTS = [
    NotificationEvent.REMINDER_BEFORE_DUE,
    NotificationEvent.REMINDER_DUE_TODAY,
    NotificationEvent.REMINDER_OVERDUE,
]


def reminders_send_due(
    *, now: dt.datetime | None = None, batch: int = 500, budget_seconds: float = 240
) -> dict[str, int]:
    """Send the planned reminders that are due, until none is left or the time budget is spent.

    Each reminder is claimed, checked, sent and recorded in its own short
    transaction (``SKIP LOCKED``), under a per-customer advisory lock so that two
    runs at once cannot both pass the daily cap. A crash between the provider's
    acceptance and the commit can send one message twice (at-least-once), never
    lose the record of one that committed.

    Returns:
        Counts: ``sent``, ``skipped``, ``deferred``.
    """
    now = now or timezone.now()
    counts = {"sent": 0, "skipped": 0, "deferred": 0}
    if in_quiet_hours(now):
        return counts  # nothing goes out at night; the next run inside the window sends
    counts["skipped"] += _skip_shielded(now)
    deadline = time.monotonic() + budget_seconds
    while time.monotonic() < deadline:
        due = list(
            Reminder.objects.filter(status=Reminder.Status.PLANNED, scheduled_at__lte=now)
            .order_by("scheduled_at")
            .values_list("id", flat=True)[:batch]
        )
        if not due:
            break
        for reminder_id in due:
            outcome = _send_one(reminder_id, now)
            if outcome:
                counts[outcome] += 1
            if time.monotonic() >= deadline:
                break
    return counts


# Dunning a customer whose debit failed because of an open incident (issue #5) would
# blame them for our fault: their due reminders are skipped, in one statement.
SKIPPED_FOR_INCIDENT = "incident"  # the reminder's skip_reason
SKIP_SHIELDED = f"""
    UPDATE repayments_reminder r SET status = %(reminder_skipped)s, skip_reason = %(skip_incident)s, updated_at = now()
      FROM repayments_bill b
     WHERE b.id = r.bill_id AND r.status = %(reminder_planned)s AND r.scheduled_at <= %(now)s
       AND {shielded_sql("b")}
"""  # noqa: S608 - constant SQL, no input


def _skip_shielded(now: dt.datetime) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(SKIP_SHIELDED, {**SQL_CODES, "skip_incident": SKIPPED_FOR_INCIDENT, "now": now})
        return cursor.rowcount


@transaction.atomic
def _send_one(reminder_id: int, now: dt.datetime) -> str | None:
    from repayments.services.notifications import notification_send

    reminder = (
        Reminder.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("bill__credit_line", "bill__customer")
        .filter(id=reminder_id, status=Reminder.Status.PLANNED)
        .first()
    )
    if reminder is None:
        return None  # another run has it
    bill: Bill = reminder.bill
    customer = bill.customer
    if bill.status not in (BillStatus.PENDING, BillStatus.OVERDUE) or bill.outstanding <= 0:
        reason = "paid"
    elif bill.due_date > bill.original_due_date:
        reason = "extended"
    else:
        reason = ""
    if reason:
        reminder.status, reminder.skip_reason = Reminder.Status.SKIPPED, reason
        reminder.save(update_fields=["status", "skip_reason", "updated_at"])
        return "skipped"
    today = timezone.localtime(now).date()
    with connection.cursor() as cursor:  # one customer's cap is checked by one run at a time
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [REMINDER_LOCK_SPACE, customer.pk])
    sent_today = NotificationModel.objects.filter(
        customer_id=customer.pk,
        event__in=REMINDER_EVENTS,
        status=NotificationStatus.SENT,
        sent_at__gte=business_datetime(today, dt.time(0, 0)),
    ).count()
    if sent_today >= settings.REMINDER_DAILY_CAP:
        reminder.scheduled_at = _next_window_start(business_datetime(today, dt.time(23, 0)))
        reminder.save(update_fields=["scheduled_at", "updated_at"])
        return "deferred"
    binding = customer.card_bindings.filter(status="active").first()
    context = {
        "amount": format_money(bill.outstanding, bill.credit_line.currency),
        "bill_no": bill.bill_no,
        "last4": binding.last4 if binding else "",
        "due_date": bill.due_date.isoformat(),
        "dpd": days_past_due(bill.due_date, today),
    }
    sent = notification_send(
        customer=customer,
        event=_event_for(reminder),
        channels=list(settings.REMINDER_CHANNELS),
        fallback=True,
        context=context,
        bill=bill,
        reminder=reminder,
        now=now,
    )
    delivered = any(n.status == NotificationStatus.SENT for n in sent)
    reminder.status = Reminder.Status.SENT if delivered else Reminder.Status.SKIPPED
    reminder.skip_reason = "" if delivered else "no channel delivered"
    reminder.sent_at = now
    reminder.save(update_fields=["status", "skip_reason", "sent_at", "updated_at"])
    return "sent" if delivered else "skipped"
