"""Liveness, readiness and the Prometheus scrape (docs/deploy.md).

``/healthz``
    liveness: the process answers. No database, no network; always cheap.
``/readyz``
    readiness, with django-health-check's checks run concurrently: ``database``
    (and ``database-replica`` when configured), ``queue`` (no ready task and no
    schedule has waited longer than ``READINESS_QUEUE_MAX_AGE_SECONDS``, which holds
    only while a django-q2 cluster is consuming; works with the ORM broker and
    with Redis), ``redis`` when ``REDIS_URL`` is set, and ``gateway`` (the bank
    gateway answers ``GATEWAY_HEALTH_PATH`` within the timeout). JSON listing each
    check by name; 503 when any fails. Error texts name the dependency and the kind
    of failure, never a URL, host or credential.
``/metrics``
    django-prometheus's metrics (requests, database) plus the domain gauges of
    :mod:`repayments.metrics`; only with ``DEBUG``, a bearer ``METRICS_TOKEN`` or
    from ``METRICS_ALLOWED_NETWORKS``. With ``PROMETHEUS_MULTIPROC_DIR`` set
    (gunicorn.conf.py does) the process metrics are aggregated over all workers.

:class:`OpsEndpointsMiddleware` answers these three paths before host validation,
the HTTPS redirect, sessions and login, because load balancers, kubelets and
Prometheus call them by pod IP over plain HTTP and carry no session.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hmac
import ipaddress
import os
from collections.abc import Callable

import httpx
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.module_loading import import_string
from django.views.decorators.cache import never_cache
from health_check import checks as hc_checks
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView

# --- checks -----------------------------------------------------------------


@dataclasses.dataclass
class Database(hc_checks.Database):
    """``SELECT 1`` on a database alias, in the request's thread (so in its connection and transaction)."""

    async def run(self) -> None:
        await sync_to_async(super().run, thread_sensitive=True)()


@dataclasses.dataclass
class QueueFreshness(HealthCheck):
    """The django-q2 queues are being consumed.

    Fails when a ready task has waited longer than ``max_age_seconds`` on any queue,
    or when an active schedule is overdue by that much (the scheduler runs inside a
    cluster: a schedule that never advances means no cluster is up). Both are read
    from the broker and the database, so the check is right with the ORM broker
    and with Redis, on any machine.

    Args:
        max_age_seconds: the staleness limit, in seconds.
    """

    max_age_seconds: int = 600

    async def run(self) -> None:
        await sync_to_async(self._run, thread_sensitive=True)()

    def _run(self) -> None:
        from django_q.models import Schedule

        from baitiao.queues import queue_names, queue_oldest_task_age

        now = timezone.now()
        for name in queue_names():
            age = queue_oldest_task_age(name, now=now)
            if age is not None and age > self.max_age_seconds:
                raise ServiceUnavailable(f"queue {name}: the oldest ready task has waited {age:.0f} s")
        limit = now - dt.timedelta(seconds=self.max_age_seconds)
        overdue = Schedule.objects.filter(next_run__lt=limit).exclude(repeats=0).order_by("next_run").first()
        if overdue is not None:
            late = (now - overdue.next_run).total_seconds()
            raise ServiceUnavailable(f"schedule {overdue.name or overdue.pk} is {late:.0f} s overdue: no cluster runs")


@dataclasses.dataclass
class Gateway(HealthCheck):
    """The bank gateway answers an unauthenticated GET within the timeout (any status below 500).

    Args:
        url: the health URL (never shown in results: it may carry credentials).
        timeout_seconds: connect and read timeout, in seconds.
    """

    url: str = dataclasses.field(default="", repr=False)
    timeout_seconds: float = 2.0

    @property
    def timeout(self) -> dt.timedelta:  # the library's overall budget for this check
        return dt.timedelta(seconds=self.timeout_seconds)

    async def run(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_seconds) as client:
                response = await client.get(self.url)
        except httpx.TimeoutException as exc:
            raise ServiceUnavailable("gateway did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"gateway unreachable ({type(exc).__name__})") from exc
        if response.status_code >= 500:
            raise ServiceUnavailable(f"gateway answered HTTP {response.status_code}")


def readiness_checks() -> list[tuple[str, HealthCheck]]:
    """The named readiness checks for the current settings (evaluated per request)."""
    from baitiao.db_routers import reporting_db

    named: list[tuple[str, HealthCheck]] = [("database", Database(alias="default"))]
    if reporting_db() != "default":
        named.append(("database-replica", Database(alias=reporting_db())))
    named.append(("queue", QueueFreshness(max_age_seconds=settings.READINESS_QUEUE_MAX_AGE_SECONDS)))
    if settings.REDIS_URL:
        from health_check.contrib.redis import Redis
        from redis.asyncio import Redis as RedisClient

        url = settings.REDIS_URL
        timeout = settings.READINESS_GATEWAY_TIMEOUT_SECONDS

        def client_factory() -> RedisClient:
            return RedisClient.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)

        named.append(("redis", Redis(client_factory=client_factory)))
    named.append(
        (
            "gateway",
            Gateway(
                url=settings.GATEWAY_URL.rstrip("/") + settings.GATEWAY_HEALTH_PATH,
                timeout_seconds=settings.READINESS_GATEWAY_TIMEOUT_SECONDS,
            ),
        )
    )
    return named


# --- views ------------------------------------------------------------------


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: answers while the process can serve a request; checks no dependency."""
    return JsonResponse({"status": "ok"})


class ReadinessView(HealthCheckView):
    """Every readiness check by name, as JSON: ``{"status": "ok"|"unavailable", "checks": {...}}``.

    200 when every check passes, 503 otherwise (load balancers take the instance out
    of rotation). Each check reports ``status``, ``seconds`` it took and, on failure,
    ``error``: a sentence without hosts or credentials. ``lanes`` lists each queue
    lane (``critical``, ``baitiao``, ``notify``) with its workers, backlog (``depth``)
    and ``oldest_task_age_seconds``, for a person reading the probe.
    """

    async def get(self, request, *args, **kwargs):
        named = readiness_checks()
        results = await asyncio.gather(*(check.get_result() for _, check in named))
        report = {}
        for (name, _check), result in zip(named, results, strict=True):
            entry: dict[str, object] = {
                "status": "unavailable" if result.error else "ok",
                "seconds": round(result.time_taken, 4),
            }
            if result.error:
                entry["error"] = str(result.error)
            report[name] = entry
        failed = any(result.error for result in results)
        return JsonResponse(
            {"status": "unavailable" if failed else "ok", "checks": report, "lanes": await _lanes()},
            status=503 if failed else 200,
        )


readyz = ReadinessView.as_view()


async def _lanes() -> dict[str, dict[str, object]]:
    """Each queue lane's workers, backlog and oldest task age (``baitiao.queues.lanes_state``); ``{}`` if unreadable."""
    from baitiao.queues import lanes_state

    try:
        return await sync_to_async(lanes_state, thread_sensitive=True)()
    except Exception:  # the queue check already reports a broker that cannot be read
        return {}


def _metrics_allowed(request: HttpRequest) -> bool:
    if settings.DEBUG:
        return True
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return True
    try:
        # The TCP peer, never X-Forwarded-For: a client could write that header itself.
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(net, strict=False) for net in settings.METRICS_ALLOWED_NETWORKS)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus exposition: process metrics (all workers when multiprocess) and domain gauges."""
    import prometheus_client
    from prometheus_client import multiprocess

    if not _metrics_allowed(request):
        response = HttpResponse("metrics need a bearer token or an allowed network\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process_registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(process_registry)
    else:
        process_registry = prometheus_client.REGISTRY
    domain_registry = prometheus_client.CollectorRegistry()
    for path in settings.METRICS_COLLECTORS:
        domain_registry.register(import_string(path)())
    body = prometheus_client.generate_latest(process_registry) + prometheus_client.generate_latest(domain_registry)
    return HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)


# --- middleware -------------------------------------------------------------

_ENDPOINTS: dict[str, Callable] = {
    "/healthz": healthz,
    "/readyz": async_to_sync(readyz),
    "/metrics": metrics,
}


class OpsEndpointsMiddleware:
    """Serve ``/healthz``, ``/readyz`` and ``/metrics`` ahead of the rest of the stack.

    Place it first (after django-prometheus's before-middleware). Everything else
    passes through untouched.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = _ENDPOINTS.get(request.path_info.rstrip("/"))
        if view is None or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        return view(request)
