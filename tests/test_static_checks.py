"""The static checks CI runs (`make typecheck`, `make lint`) hold on the tree as committed.

They run the pinned tools from the virtualenv, exactly as the Makefile does, so a
type error or a forbidden import fails the suite with the tool's own message.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
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


def test_mypy_ignores_the_errors_of_no_module_of_ours():
    # `ignore_errors` hides every error of a module; only missing third-party stubs may be
    # waived (`ignore_missing_imports`), never our own code's errors (#15).
    overrides = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["overrides"]
    ignored = {module for block in overrides if block.get("ignore_errors") for module in block["module"]}
    assert ignored == set()
    assert all("ignore_errors" not in block for block in overrides)


def test_every_type_ignore_names_its_error_code_and_says_why():
    # A bare `# type: ignore` hides every error on its line; a coded one hides one kind, and
    # the comment on it or on the line above says which stub gap it works around.
    bare, unexplained = [], []
    for package in ("baitiao", "accounts", "repayments"):
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = path.read_text().splitlines()
            for number, line in enumerate(lines, start=1):
                if "# type: ignore" not in line:
                    continue
                where = f"{path.relative_to(ROOT)}:{number}"
                if not re.search(r"# type: ignore\[[a-z-]+(, *[a-z-]+)*\]", line):
                    bare.append(where)
                before = lines[number - 2].strip() if number > 1 else ""
                if not (re.search(r"# type: ignore\[[^\]]*\]\s*(#|-)\s*\S", line) or before.startswith("#")):
                    unexplained.append(where)
    assert bare == []
    assert unexplained == []


def test_baitiao_imports_no_app_and_accounts_does_not_import_repayments():
    result = _run("lint-imports", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "baitiao imports neither repayments nor accounts KEPT" in result.stdout
    assert "accounts does not import repayments KEPT" in result.stdout
    assert "2 kept, 0 broken" in result.stdout
