"""Fixtures for the deployment tests: a production-like environment and a replica alias."""

from __future__ import annotations

import base64
import copy
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connections

from tests.engine import ROOT, test_database_url

METRICS_TOKEN = "metrics-token-for-tests-0123456789"


def production_env(**extra: str) -> dict[str, str]:
    """Environment for a child process with DEBUG off and every required secret set.

    Args:
        extra: variables to add or override (strings).
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PROMETHEUS_", "SECURE_", "REDIS_"))
    }
    env.update(
        {
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(60),
            "ALLOWED_HOSTS": "ops.example.com",
            "CSRF_TRUSTED_ORIGINS": "https://ops.example.com",
            "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
            "PII_ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "PII_HASH_KEY": secrets.token_urlsafe(32),
            "GATEWAY_SECRET": secrets.token_urlsafe(32),
            "METRICS_TOKEN": METRICS_TOKEN,
            "DATABASE_URL": test_database_url(),
        }
    )
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``manage.py`` in a child process; returns the completed process (text output)."""
    return subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _register_replica_mirror() -> None:
    """A ``replica`` alias on the test database itself (a test mirror of ``default``).

    Registered when this package is collected, before the test databases are set up,
    so pytest-django treats it as a mirror: a separate connection to the test
    database that sees committed rows only, like a real replica (the session's UCI
    data, not a test's own uncommitted rows). Nothing reads through it unless a test
    sets ``REPORTING_DATABASE = "replica"`` (the ``replica`` fixture).
    """
    if "replica" in connections.settings:
        return  # DATABASE_REPLICA_URL is set: settings made the mirror already
    default = connections.settings["default"]
    config = copy.deepcopy(default)
    config["TEST"] = {**default.get("TEST", {}), "MIRROR": "default"}
    connections.settings["replica"] = config


_register_replica_mirror()


@pytest.fixture
def replica(settings) -> str:
    """Reporting reads go to the ``replica`` alias for this test (mark it ``databases=["default", "replica"]``)."""
    settings.REPORTING_DATABASE = "replica"
    return "replica"


@pytest.fixture
def static_root(tmp_path) -> Path:
    return tmp_path / "static"
