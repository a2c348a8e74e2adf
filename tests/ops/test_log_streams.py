"""Logs go to standard error (issue #15, item 13): standard output is what a command was asked for.

``TOKEN=$(manage.py api_token …)`` used to capture an ``AXES: BEGIN …`` log line with
the token. Each process here is a real child process on the test database, with
its two streams read apart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
from knox.auth import TokenAuthentication

from tests.engine import ROOT, Cluster, free_port, wait_for
from tests.engine import test_database_url as child_database_url

# The child processes read committed rows: the persona must be committed, so these
# tests are transactional (and run after the others, as pytest-django orders them).
pytestmark = pytest.mark.django_db(transaction=True)


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "DEBUG": "true",
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": child_database_url(),
    }


def _log_lines(text: str) -> list[dict]:
    """The JSON log lines of a stream (every line that is a JSON object)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_commands_standard_output_holds_only_its_output_and_the_logs_go_to_standard_error(analyst):
    result = subprocess.run(
        [sys.executable, "manage.py", "api_token", analyst.username, "--days", "1", "--reason", "x"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.removesuffix("\n")
    assert token and "\n" not in token  # one line: the token, as `TOKEN=$(…)` wants it
    user, _ = TokenAuthentication().authenticate_credentials(token.encode())
    assert user == analyst
    logs = _log_lines(result.stderr)
    assert any(entry["event"].startswith("AXES: BEGIN") for entry in logs), result.stderr
    assert all(entry["level"] and entry["timestamp"] for entry in logs)


def test_the_web_process_and_the_cluster_log_to_standard_error_only(tmp_path):
    port = free_port()
    streams = {}
    processes = {}
    for name, args in {
        "web": ["runserver", f"127.0.0.1:{port}", "--noreload"],
        "cluster": ["qcluster"],
    }.items():
        streams[name] = (tmp_path / f"{name}.out", tmp_path / f"{name}.err")
        processes[name] = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=_env(),
            stdout=streams[name][0].open("wb"),
            stderr=streams[name][1].open("wb"),
            start_new_session=True,
        )
    try:

        def web_answers() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(web_answers, timeout=60, what="the web server")
        wait_for(lambda: "ready for work" in streams["cluster"][1].read_text("utf-8"), timeout=60, what="the cluster")
    finally:
        for process in processes.values():
            Cluster(process).stop()  # SIGTERM to the process group, SIGKILL if it lingers
    web_out, web_err = (path.read_text("utf-8") for path in streams["web"])
    cluster_out, cluster_err = (path.read_text("utf-8") for path in streams["cluster"])
    access = [entry for entry in _log_lines(web_err) if entry.get("logger") == "baitiao.access"]
    assert [entry["path"] for entry in access] == ["/accounts/login/"] * len(access) and access
    assert _log_lines(cluster_err)
    # Standard output: runserver's own banner ("Starting development server at …"), no log line.
    assert _log_lines(web_out) == [] and "Starting development server" in web_out
    assert cluster_out.strip() == ""
