"""Production settings: `check --deploy` is clean; gunicorn + WhiteNoise serve static files and probes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.engine import ROOT, free_port, wait_for
from tests.ops.conftest import METRICS_TOKEN, manage, production_env


def test_check_deploy_passes_without_warnings_in_production(db):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output
    assert "WARNINGS" not in output


def test_check_deploy_flags_a_short_secret_key(db):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(SECRET_KEY="too-short"))
    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr


def test_with_redis_the_cache_is_redis_and_sessions_are_cached_db(db):
    import redis

    url = "redis://127.0.0.1:6379/15"
    code = (
        "from django.conf import settings; from django.core.cache import cache; "
        "print(settings.SESSION_ENGINE); print(settings.CACHES['default']['BACKEND']); "
        "cache.set('ops-test-probe', 'shared', 60)"
    )
    result = manage("shell", "-c", code, env=production_env(REDIS_URL=url))
    assert result.returncode == 0, result.stderr
    engine, backend = result.stdout.strip().splitlines()[-2:]
    assert engine == "django.contrib.sessions.backends.cached_db"
    assert backend == "django.core.cache.backends.redis.RedisCache"
    client = redis.Redis.from_url(url)
    keys = client.keys("baitiao:*ops-test-probe")
    assert len(keys) == 1  # written by another process: shared, not per-process memory
    client.delete(*keys)


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, tmp_path_factory):
    """collectstatic then gunicorn with gunicorn.conf.py, DEBUG off, once for the module.

    Yields (base URL, STATIC_ROOT, the gunicorn process). It reads the test database's
    committed rows (the session's UCI data) through its own connections.
    """
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    static_root = tmp_path / "static"
    port = free_port()
    env = production_env(
        STATIC_ROOT=str(static_root),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
        METRICS_ALLOWED_NETWORKS="192.0.2.0/24",  # not the test's own address: the token is needed
        GATEWAY_URL=f"http://127.0.0.1:{free_port()}",
    )
    # Our own files only: compressing the big third-party bundles (Swagger UI, the
    # admin) takes minutes on a busy machine and proves nothing more here.
    third_party = ("drf_spectacular_sidecar", "admin", "rest_framework", "django_htmx")
    ignore = [arg for app in third_party for arg in ("-i", app)]
    collected = manage("collectstatic", "--noinput", *ignore, env=env, timeout=300)
    assert collected.returncode == 0, collected.stderr
    log_path = tmp_path / "gunicorn.log"
    log = log_path.open("wb")  # a file, not a pipe: nobody reads a pipe until the end, and it could fill
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "gunicorn", "baitiao.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return process.poll() is not None  # stop waiting when it died

    wait_for(up, timeout=60, what="gunicorn")
    assert process.poll() is None, log_path.read_text()
    try:
        yield base, static_root, process, log_path
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def test_gunicorn_serves_hashed_compressed_static_files_through_whitenoise(gunicorn):
    base, static_root, _process, _log = gunicorn
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    hashed = manifest["console/console.js"]
    assert hashed != "console/console.js"
    headers = {"Host": "ops.example.com", "X-Forwarded-Proto": "https", "Accept-Encoding": "gzip"}
    response = httpx.get(f"{base}/static/{hashed}", headers=headers, timeout=5)
    assert response.status_code == 200
    assert response.content == (ROOT / "static" / "console" / "console.js").read_bytes()
    assert response.headers["content-encoding"] == "gzip"
    assert "immutable" in response.headers["cache-control"]
    # Plain HTTP to the console is redirected to HTTPS; probes by pod IP are not.
    plain = httpx.get(f"{base}/accounts/login/", headers={"Host": "ops.example.com"}, timeout=5)
    assert plain.status_code == 301
    assert plain.headers["location"].startswith("https://")
    probe = httpx.get(f"{base}/healthz", headers={"Host": "10.0.0.5"}, timeout=5)
    assert probe.status_code == 200


def test_gunicorn_metrics_add_up_all_workers_and_need_the_token(gunicorn):
    base, _static_root, _process, _log = gunicorn
    for _ in range(6):
        httpx.get(f"{base}/healthz", timeout=5)
    assert httpx.get(f"{base}/metrics", timeout=10).status_code == 401
    response = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    assert response.status_code == 200
    text = response.text
    for name in (
        "django_http_requests_before_middlewares_total",
        "baitiao_debits_recent",
        "baitiao_reminders_sent_recent",
        "baitiao_queue_depth",
        "baitiao_queue_oldest_task_age_seconds",
        "baitiao_incidents_open",
    ):
        assert name in text, name
    # multiprocess mode: the counter is one sum over the workers (no per-pid series)
    total = [line for line in text.splitlines() if line.startswith("django_http_requests_before_middlewares_total ")]
    assert len(total) == 1 and float(total[0].split()[1]) >= 6
    # The domain queries ran against the database in the worker
    for group in ("debits", "reminders", "queue", "incidents"):
        assert f'baitiao_domain_metrics_errors{{group="{group}"}} 0.0' in text


def test_gunicorn_access_log_leaves_query_strings_out(gunicorn):
    base, _static_root, process, log_path = gunicorn
    httpx.get(f"{base}/healthz?phone=13800138000", headers={"Host": "ops.example.com"}, timeout=5)
    os.killpg(process.pid, signal.SIGTERM)  # last test of the module: stop it to read all its output
    process.wait(timeout=30)
    output = log_path.read_text()
    assert "GET /healthz HTTP/1.1" in output
    assert "13800138000" not in output


def test_queue_depth_and_age_are_read_from_redis_with_the_redis_broker(db):
    """With REDIS_URL the queue is a Redis list; the metrics read its length and its oldest task."""
    queue = f"ops-test-{os.getpid()}"
    code = (
        "import json; from django_q.tasks import async_task; from django_q.brokers import get_broker; "
        "from baitiao.queues import queue_depth, queue_oldest_task_age; "
        f"async_task('math.floor', 1.5, cluster='{queue}'); async_task('math.floor', 2.5, cluster='{queue}'); "
        f"print(json.dumps([queue_depth('{queue}'), queue_oldest_task_age('{queue}'), "
        f"type(get_broker('{queue}')).__name__])); get_broker('{queue}').delete_queue()"
    )
    result = manage("shell", "-c", code, env=production_env(REDIS_URL="redis://127.0.0.1:6379/15"))
    assert result.returncode == 0, result.stderr
    depth, age, broker = json.loads(result.stdout.strip().splitlines()[-1])
    assert broker == "Redis"
    assert depth == 2
    assert 0 <= age < 60
