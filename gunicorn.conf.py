"""gunicorn configuration for the web process in production (docs/deploy.md).

    gunicorn baitiao.wsgi            # reads ./gunicorn.conf.py by itself

Every value can be changed from the environment. gthread workers: a streamed
export can take minutes, and a threaded worker keeps reporting to the arbiter while
it runs, where a sync worker would be killed after ``timeout``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# The CPUs this process may use (not the host's count: a container on a big node sees them all).
_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# WEB_CONCURRENCY is the conventional name (Heroku, Render, Dokku).
workers = _int("WEB_CONCURRENCY", min(2 * _cores + 1, 9))  # each holds up to `threads` DB connections
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = _int("GUNICORN_THREADS", 4)
# Seconds a worker may stay silent before the arbiter kills it, and the grace a
# worker gets to finish its requests on a restart or SIGTERM (rolling deploys).
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then (slow leaks), not all at once (jitter).
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 200)
# The heartbeat file on a RAM disk: on an overlay or network filesystem its writes
# can block, and the arbiter would kill healthy workers.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108 - a directory, not a temp file
# Proxies whose X-Forwarded-* headers are trusted (comma-separated IPs or "*"
# behind a load balancer that always overwrites them).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Logs on standard error for the platform to collect (in each worker settings.LOGGING takes
# the access logger over from gunicorn's stdout handler: docs/operations.md). The access line has the path
# without its query string (%(U)s, not %(r)s), and no referrer: query strings carry
# search terms such as phone numbers and names (personal data).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s" %({x-request-id}o)s'

# Prometheus: every worker writes its metrics to files in one directory and
# /metrics adds them up (prometheus_client's multiprocess mode), so a scrape that
# lands on any worker sees them all. The directory is emptied at start and a dead
# worker's live gauges are dropped.
# Default: a directory of this master's own on the RAM disk, removed at exit.
_own_metrics_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _own_metrics_dir:
    _ram = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())  # noqa: S108
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_ram / f"baitiao-prometheus-{os.getpid()}")


def _clear_metric_files() -> None:
    # Only prometheus_client's own files: the directory may be one the operator chose.
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def on_starting(server) -> None:
    _clear_metric_files()


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    _clear_metric_files()
    if _own_metrics_dir:
        Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).rmdir()
