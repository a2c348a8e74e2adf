"""Real processes for the operations tests: a private Redis, a private PostgreSQL, the web
server, queue clusters and the sandbox bank, each started, killed and restarted like
on a machine (``kill -9`` of the whole process group, a restart on the same port).

Nothing here is a fake of our own stack: the private servers are the real binaries
(``redis-server``; PostgreSQL from the ``pgserver`` package, which ``requirements.txt``
installs, or Debian's), on 127.0.0.1 and a free port, in a temporary directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from tests.engine import ROOT, free_port, wait_for

PYTHON = sys.executable


def _alive(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


@dataclass
class Service:
    """A child process in its own session, so that killing it kills its children too."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None

    def start(self) -> Service:
        handle = open(self.log, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        handle.close()
        return self

    def kill(self) -> None:
        """``kill -9`` the process and everything it started, as a machine dying would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 10) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


# -- Redis ------------------------------------------------------------------------


@dataclass
class PrivateRedis:
    """``redis-server`` on a free loopback port, no persistence: a restart loses the queue."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_without_faketime(os.environ),
        )
        import redis

        client = redis.Redis.from_url(self.url)
        wait_for(lambda: _ping(client), timeout=10, what="redis-server")
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self, down_seconds: float = 1.0) -> None:
        self.kill()
        time.sleep(down_seconds)
        self.start()


def _without_faketime(environ) -> dict[str, str]:
    """``environ`` without libfaketime's preload, for ``redis-server`` under ``make test-shifted``.

    Redis's allocator (jemalloc) reads the clock while libfaketime is still
    initialising, and the server hangs before it listens (docs/testing.md). Its
    clock takes part in nothing we compare: it holds the queue, no dates.
    """
    preload = ":".join(p for p in environ.get("LD_PRELOAD", "").split(":") if p and "faketime" not in p)
    env = {key: value for key, value in environ.items() if key != "LD_PRELOAD" and not key.startswith("FAKETIME")}
    return {**env, "LD_PRELOAD": preload} if preload else env


def _ping(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def redis_or_skip():
    """A private ``redis-server`` when the binary exists, else the machine's on 6379 (db 13).

    Returns ``(url, stop)``; skips the test with the reason when there is no Redis at all.
    """
    import pytest
    import redis

    if shutil.which("redis-server"):
        server = PrivateRedis().start()
        return server.url, server.kill
    url = "redis://127.0.0.1:6379/13"
    client = redis.Redis.from_url(url)
    if not _ping(client):
        pytest.skip("no Redis: install redis-server (Debian: apt-get install redis-server) or run one on 6379")
    client.flushdb()
    return url, client.flushdb


# -- PostgreSQL -------------------------------------------------------------------


def _pg_bin() -> Path | None:
    """PostgreSQL binaries: the ones the pgserver package ships (16), else Debian's."""
    import pgserver

    shipped = Path(pgserver.__file__).parent / "pginstall" / "bin"
    if (shipped / "pg_ctl").exists():
        return shipped
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return debian[-1].parent if debian else None


def _run_as() -> str | None:
    """PostgreSQL refuses to run as root: the unprivileged user to run it as, if root."""
    if os.geteuid() != 0:
        return None
    try:
        # The user the embedded server runs as; pgserver creates it as it does for itself.
        from pgserver.utils import ensure_user_exists

        ensure_user_exists("pgserver")
    except Exception:  # noqa: BLE001, S110 - fall back to Debian's postgres user below
        pass
    for name in ("pgserver", "postgres"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return ""


def _open_binaries_to(user: str) -> None:
    """What pgserver does before running its binaries as another user: make their path readable."""
    import stat

    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

    binaries = _pg_bin()
    if binaries is None or "pgserver" not in str(binaries):
        return  # Debian's binaries are readable by everyone already
    ensure_prefix_permissions(binaries)
    ensure_folder_permissions(binaries, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
    ensure_folder_permissions(binaries.parent / "lib", stat.S_IRGRP | stat.S_IROTH)


@dataclass
class PrivatePostgres:
    """A throwaway PostgreSQL cluster in a temporary directory, on 127.0.0.1:<free port>."""

    port: int = field(default_factory=free_port)
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="baitiao-pg-")))

    @classmethod
    def available(cls) -> str:
        """Empty when a private server can be run here, else the reason it cannot."""
        if _pg_bin() is None:
            return "no PostgreSQL binaries (pgserver package or Debian's postgresql)"
        if _run_as() == "":
            return "running as root without a 'postgres' or 'pgserver' user to run PostgreSQL"
        return ""

    def _cmd(self, *argv: str) -> list[str]:
        user = _run_as()
        return ["runuser", "-u", user, "--", *argv] if user else list(argv)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> PrivatePostgres:
        user = _run_as()
        if user:
            shutil.chown(self.directory, user)
            _open_binaries_to(user)
        subprocess.run(
            self._cmd(str(_pg_bin() / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"),
            check=True,
            capture_output=True,
        )
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.directory}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
            )
        return self.start()

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            self._cmd(str(_pg_bin() / "pg_ctl"), "-D", str(self.data), "-l", str(self.directory / "log"), *args),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> PrivatePostgres:
        self._ctl("-w", "start")
        return self

    def stop(self) -> None:
        self._ctl("-w", "-m", "fast", "stop")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut, as in a failover or an upgrade."""
        self._ctl("-w", "-m", "fast", "restart")

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.directory, ignore_errors=True)

    def create_database(self, name: str, *, schema_from: str | None = None, template: str | None = None) -> str:
        """Create ``name``, empty, from ``template``, or with the schema of the database at ``schema_from``."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        if schema_from:
            dump = subprocess.run(
                [str(_pg_bin() / "pg_dump"), "--schema-only", "--no-owner", "--no-privileges", schema_from],
                check=True,
                capture_output=True,
            ).stdout
            subprocess.run(
                [str(_pg_bin() / "psql"), "-q", "-v", "ON_ERROR_STOP=1", self.url(name)],
                input=dump,
                check=True,
                capture_output=True,
            )
        return self.url(name)


_shared: PrivatePostgres | None = None


def shared_postgres() -> PrivatePostgres:
    """One private server per test process, with a migrated template database ``ops_template``.

    Built with ``manage.py migrate`` (not from the session's test database), so the
    tests here do not depend on the session's data and cannot touch it. Skips the
    test with the reason when no private server can run here.
    """
    global _shared
    import atexit

    import pytest

    if _shared is None:
        reason = PrivatePostgres.available()
        if reason:
            pytest.skip(reason)
        server = PrivatePostgres().init()
        atexit.register(server.destroy)
        url = server.create_database("ops_template")
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--no-input"],
            cwd=ROOT,
            env=base_env(DATABASE_URL=url),
            check=True,
            capture_output=True,
            timeout=600,
        )
        _shared = server
    return _shared


# -- our processes ----------------------------------------------------------------


def base_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "DEBUG": "true", "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)
    return {**env, **extra}


def sandbox_service(log_dir: Path, *, port: int, callback_url: str, ledger: Path, env: dict[str, str]) -> Service:
    return Service(
        "gateway",
        [
            PYTHON,
            "manage.py",
            "sandbox_gateway",
            "serve",
            "--port",
            str(port),
            "--callback-url",
            callback_url,
            "--latency-ms",
            "50",
            "300",
            "--duplicate-rate",
            "0.1",
            "--hold-seconds",
            "3",
            "--ledger",
            str(ledger),
        ],
        env,
        log_dir / "gateway.log",
    )


def web_service(log_dir: Path, *, port: int, env: dict[str, str]) -> Service:
    """gunicorn, as in production (the project's gunicorn.conf.py when there is one), on loopback."""
    return Service(
        "web",
        [
            str(Path(PYTHON).parent / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "baitiao.wsgi:application",
        ],
        {**env, "WEB_CONCURRENCY": "2"},
        log_dir / "web.log",
    )


def cluster_service(log_dir: Path, name: str, env: dict[str, str]) -> Service:
    return Service(name, [PYTHON, "manage.py", "qcluster"], env, log_dir / f"{name}.log")


def wait_http(url: str, timeout: float = 60, what: str = "service") -> None:
    wait_for(lambda: _alive(url), timeout=timeout, interval=0.3, what=what)


def enqueue(redis_url: str, func: str, *args, cluster: str = "baitiao") -> None:
    """Put one task on the shared Redis queue, as ``async_task`` on another machine would.

    The test process itself runs on the ORM broker (no ``REDIS_URL``): this builds the
    django-q2 Redis broker for ``redis_url`` and hands it to ``async_task``.
    """
    from django_q.brokers.redis_broker import Redis
    from django_q.conf import Conf
    from django_q.tasks import async_task

    saved = Conf.REDIS
    Conf.REDIS = redis_url
    try:
        broker = Redis(list_key=cluster)
    finally:
        Conf.REDIS = saved
    async_task(func, *args, broker=broker)
