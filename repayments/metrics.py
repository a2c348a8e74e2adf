"""Domain metrics for Prometheus, read from the database at scrape time.

:class:`DomainCollector` runs a handful of cheap queries per scrape (each under
``statement_timeout``), so every gunicorn worker reports the same numbers and no
process has to keep counters:

``baitiao_debits_recent{status, family}``
    repayment attempts requested in the trailing ``METRICS_WINDOW_HOURS``, by
    outcome and failure family (family is empty unless the status is ``failed``).
    The window is read through the BRIN index on ``requested_at``.
``baitiao_reminders_sent_recent{channel}``
    reminder messages sent in the same window, by channel. Notifications have no
    index on ``sent_at``; rows are written when sent, so ``id`` order is time order
    and the window's first id is found by a binary search on the primary key
    (about 25 index probes at 10 M rows), then only the window's rows are counted.
``baitiao_notices_dropped_recent{reason}``
    customer messages dropped in the same window because they stopped being true
    while queued (the bill was paid, the incident resolved), by reason; read like
    the reminders above.
``baitiao_queue_depth{queue}`` and ``baitiao_queue_oldest_task_age_seconds{queue}``
    django-q2 tasks ready to run per queue, i.e. per lane (``baitiao`` the main/bulk
    cluster, ``critical``, ``notify``: docs/operations.md), and how long the oldest
    of them has waited since it was enqueued. Works with the ORM broker and with Redis.
``baitiao_incidents_open``
    system-fault incidents currently open.
``baitiao_domain_metrics_errors{group}``
    1 when a group's query failed or timed out on this scrape (its series are missing).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Model, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from baitiao.queues import queue_depth, queue_names, queue_oldest_task_age
from repayments.models import (
    AttemptStatus,
    FailureFamily,
    Incident,
    IncidentStatus,
    NoticeDropReason,
    Notification,
    NotificationChannel,
    NotificationStatus,
    RepaymentAttempt,
)

logger = logging.getLogger(__name__)

# A scrape must never pile up behind a slow query (milliseconds per statement).
STATEMENT_TIMEOUT_MS = 5000


def first_id_since(model: type[Model], field: str, since: dt.datetime) -> int | None:
    """The lowest primary key whose ``field`` is at or after ``since``, by binary search on the key.

    Assumes ``field`` grows with the primary key (rows written in time order), which
    holds for append-only logs such as notifications. Costs O(log n) index probes.

    Args:
        model: a model with an integer primary key ``id``.
        field: an indexed-or-not datetime field of that model.
        since: aware datetime.

    Returns:
        The id, or None when no row is that recent.
    """
    rows = model._default_manager.order_by("id").values_list("id", field)
    last = rows.reverse().first()
    if last is None or last[1] < since:
        return None
    first = rows[0]  # exists, since a last row does
    if first[1] >= since:
        return first[0]
    lo, hi = first[0], last[0]  # row lo is older than since; the first row at or after hi is not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        row_id, value = rows.filter(id__gte=mid)[0]  # row hi at least
        if value >= since:
            hi = mid
        else:
            lo = max(mid, min(row_id, hi - 1))
    return rows.filter(id__gte=hi)[0][0]


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


class DomainCollector(Collector):
    """Collects the domain gauges from the database; register it on a fresh registry per scrape."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        window = settings.METRICS_WINDOW_HOURS
        since = now - dt.timedelta(hours=window)
        errors = _gauge("baitiao_domain_metrics_errors", "1 when this group's query failed on this scrape.", ["group"])
        for group, produce in (
            ("debits", lambda: self._debits(since, window)),
            ("reminders", lambda: self._reminders(since, window)),
            ("notices", lambda: self._notices_dropped(since, window)),
            ("queue", lambda: self._queues(now)),
            ("incidents", self._incidents),
        ):
            try:
                with transaction.atomic():
                    with connection.cursor() as cursor:
                        cursor.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
                    metrics = list(produce())
            except Exception:  # a metrics scrape reports a failed group, it never fails whole
                logger.exception("domain metrics group %s failed", group)
                errors.add_metric([group], 1)
                continue
            errors.add_metric([group], 0)
            yield from metrics
        yield errors

    def _debits(self, since: dt.datetime, window: int) -> Iterator[Metric]:
        counts = {
            (row["status"], row["failure_family"]): row["n"]
            for row in RepaymentAttempt.objects.filter(requested_at__gte=since)
            .values("status", "failure_family")
            .annotate(n=Count("id"))
            .order_by()
        }
        gauge = _gauge(
            "baitiao_debits_recent",
            f"Repayment attempts requested in the last {window} h, by status and failure family.",
            ["status", "family"],
        )
        # Every series every time (zeros included), so rates and alerts never see gaps.
        for status in AttemptStatus.values:
            families = FailureFamily.values if status == AttemptStatus.FAILED else [""]
            for family in families:
                gauge.add_metric([status, family], counts.pop((status, family), 0))
        for (status, family), n in counts.items():  # anything outside the taxonomy still shows
            gauge.add_metric([status, family], n)
        yield gauge

    def _reminders(self, since: dt.datetime, window: int) -> Iterator[Metric]:
        gauge = _gauge(
            "baitiao_reminders_sent_recent",
            f"Reminder messages sent in the last {window} h, by channel.",
            ["channel"],
        )
        counts: dict[str, int] = {}
        start = first_id_since(Notification, "sent_at", since)
        if start is not None:
            counts = {
                row["channel"]: row["n"]
                for row in Notification.objects.filter(
                    Q(id__gte=start),
                    sent_at__gte=since,
                    reminder__isnull=False,
                    status=NotificationStatus.SENT,
                )
                .values("channel")
                .annotate(n=Count("id"))
                .order_by()
            }
        for channel in NotificationChannel.values:
            gauge.add_metric([channel], counts.get(channel, 0))
        yield gauge

    def _notices_dropped(self, since: dt.datetime, window: int) -> Iterator[Metric]:
        gauge = _gauge(
            "baitiao_notices_dropped_recent",
            f"Customer messages dropped in the last {window} h because they stopped being true while queued.",
            ["reason"],
        )
        counts: dict[str, int] = {}
        start = first_id_since(Notification, "sent_at", since)
        if start is not None:
            counts = {
                row["error"]: row["n"]
                for row in Notification.objects.filter(
                    Q(id__gte=start), sent_at__gte=since, status=NotificationStatus.DROPPED
                )
                .values("error")
                .annotate(n=Count("id"))
                .order_by()
            }
        for reason in NoticeDropReason.values:
            gauge.add_metric([reason], counts.get(reason, 0))
        yield gauge

    def _queues(self, now: dt.datetime) -> Iterator[Metric]:
        depth = _gauge("baitiao_queue_depth", "django-q2 tasks ready to run, per queue.", ["queue"])
        age = _gauge(
            "baitiao_queue_oldest_task_age_seconds",
            "Seconds the oldest ready task has waited since it was enqueued (0 when the queue is empty).",
            ["queue"],
        )
        for name in queue_names():
            depth.add_metric([name], queue_depth(name))
            age.add_metric([name], queue_oldest_task_age(name, now=now) or 0.0)
        yield depth
        yield age

    def _incidents(self) -> Iterator[Metric]:
        gauge = _gauge("baitiao_incidents_open", "System-fault incidents currently open.", [])
        gauge.add_metric([], Incident.objects.filter(status=IncidentStatus.OPEN).count())
        yield gauge
