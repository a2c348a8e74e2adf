"""Raw SQL never spells a status or a family: it takes them as parameters (issue #15, ``SQL_CODES``)."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

from django.db import models as django_models

from repayments import models

ROOT = Path(__file__).resolve().parents[2]
SQL = re.compile(r"\b(SELECT|UPDATE|INSERT|DELETE|WHERE|FILTER|CASE)\b")
CHOICES = [
    value
    for name in dir(models)
    if isinstance(choice := getattr(models, name), type) and issubclass(choice, django_models.TextChoices)
    for value in choice.values
] + list(models.Reminder.Status.values)


def _sql_literals(path: Path) -> list[tuple[int, str]]:
    """Single-quoted literals inside the SQL string constants of ``path`` (Python code is double-quoted)."""
    found = []
    for token in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
        if token.type == tokenize.STRING and SQL.search(token.string):
            found += [(token.start[0], literal) for literal in re.findall(r"'([a-z_]+)'", token.string)]
    return found


def test_no_sql_statement_compares_with_a_spelled_status_or_family():
    codes = set(CHOICES) - {""}
    spelled = [
        f"{path.relative_to(ROOT)}:{line}: '{literal}'"
        for package in ("repayments", "accounts", "baitiao")
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
        for line, literal in _sql_literals(path)
        if literal in codes
    ]
    assert spelled == [], "pass these as parameters (repayments.models.SQL_CODES):\n" + "\n".join(spelled)


def test_the_sql_codes_are_the_models_choices():
    assert {"pending", "overdue", "paid", "failed", "succeeded", "system", "open", "active"} <= set(
        models.SQL_CODES.values()
    )
    assert set(models.SQL_CODES.values()) <= set(CHOICES)
