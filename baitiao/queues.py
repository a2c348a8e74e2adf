"""The product's django-q2 queues ("lanes"), read from the broker (ORM or Redis): names, depth, oldest task's age.

Used by the readiness probe (``baitiao.probes``) and the Prometheus gauges
(``repayments.metrics``).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

# The lanes (docs/operations.md): a django-q2 cluster each, named as in settings.Q_CLUSTER.
CRITICAL = "critical"  # detection, relief runs, agents' retries, the dashboard refresh
NOTIFY = "notify"  # customer messages
BULK = None  # the main cluster ("baitiao"): collection runs, debits, housekeeping


def queue_names() -> list[str]:
    """The django-q2 queues of the product: the main cluster's and each ALT_CLUSTERS one (``critical``, ``notify``)."""
    conf = settings.Q_CLUSTER
    return [conf["name"], *conf.get("ALT_CLUSTERS", {})]


def lane_workers(name: str) -> int:
    """Workers of lane ``name`` as configured (``Q_WORKERS``, ``Q_CRITICAL_WORKERS``, ``Q_NOTIFY_WORKERS``)."""
    conf = settings.Q_CLUSTER
    if name == conf["name"]:
        return int(conf["workers"])
    return int(conf.get("ALT_CLUSTERS", {}).get(name, {}).get("workers", conf["workers"]))


def lanes_state(*, now: dt.datetime | None = None) -> dict[str, dict[str, object]]:
    """Every lane's backlog, as /readyz shows it.

    Args:
        now: the reference time (aware datetime); default ``timezone.now()``.

    Returns:
        ``{name: {"workers": n, "depth": tasks ready, "oldest_task_age_seconds": s or None}}``
        in the order of :func:`queue_names`.
    """
    now = now or timezone.now()
    state: dict[str, dict[str, object]] = {}
    for name in queue_names():
        age = queue_oldest_task_age(name, now=now)
        state[name] = {
            "workers": lane_workers(name),
            "depth": queue_depth(name),
            "oldest_task_age_seconds": round(age, 1) if age is not None else None,
        }
    return state


def queue_depth(name: str) -> int:
    """Tasks ready to run on queue ``name`` (ORM: not locked by a worker; Redis: list length)."""
    from django_q.brokers import get_broker

    return get_broker(list_key=name).queue_size()


def queue_oldest_task_age(name: str, *, now: dt.datetime | None = None) -> float | None:
    """Seconds since the oldest ready task of queue ``name`` was enqueued; None when it is empty.

    django-q2 stamps each task with its enqueue time (``task["started"]``). With the
    ORM broker the oldest ready row is the lowest id not locked by a worker; with
    Redis it is the head of the list (tasks are pushed right and popped left).

    Args:
        name: the queue (cluster) name, e.g. ``"baitiao"`` or ``"notify"``.
        now: the reference time (aware datetime); default ``timezone.now()``.
    """
    from django_q.brokers import get_broker
    from django_q.brokers.orm import ORM
    from django_q.brokers.redis_broker import Redis
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    now = now or timezone.now()
    broker = get_broker(list_key=name)
    if isinstance(broker, ORM):
        row = (
            OrmQ.objects.using(settings.Q_CLUSTER["orm"])
            .filter(key=broker.list_key, lock__lte=now)
            .order_by("id")
            .first()
        )
        if row is None:
            return None
        started = row.task.get("started") if isinstance(row.task, dict) else None
        started = started or row.lock
    elif isinstance(broker, Redis):
        payload = broker.connection.lindex(broker.list_key, 0)
        if payload is None:
            return None
        started = SignedPackage.loads(payload).get("started")
        if started is None:
            return None
    else:  # another broker: no cheap way to peek
        return None
    return max(0.0, (now - started).total_seconds())
