"""The static checks CI runs (`make typecheck`, `make lint`) hold on the tree as committed.

They run the pinned tools from the virtualenv, exactly as the Makefile does, so a
type error or a forbidden import fails the suite with the tool's own message.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own pinned tools, fixed arguments
        [str(BIN / command[0]), *command[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_mypy_with_django_stubs_finds_no_error_in_baitiao_accounts_and_repayments():
    # The Django plugin imports the settings but never connects: no database is needed.
    result = _run("mypy", env={"DATABASE_URL": "postgres://typecheck@127.0.0.1:1/not-connected"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
    # The configured packages were all checked (a config that checked nothing would pass too).
    checked = int(result.stdout.rsplit(" in ", 1)[1].split()[0])
    assert checked > 100


def test_baitiao_imports_no_app_and_accounts_does_not_import_repayments():
    result = _run("lint-imports", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "baitiao imports neither repayments nor accounts KEPT" in result.stdout
    assert "accounts does not import repayments KEPT" in result.stdout
    assert "2 kept, 0 broken" in result.stdout
