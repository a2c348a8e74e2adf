"""Every handed case in tests/fixtures/cases/import/ (copied from shared/cases) gives its expected outcome.

Each case's ``steps`` run in order against an empty domain; each step's outcome is
``applied`` or ``rejected`` and its report names at least the cells listed in
``errors``; afterwards the database holds exactly what ``after`` says.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from repayments.models import Bill, CardBinding, CreditLine, Customer, RepaymentAttempt
from repayments.services.imports import data_import

CASES = Path(__file__).resolve().parents[2] / "fixtures" / "cases" / "import"

# resource -> (model, natural key lookup, field name in "after" -> attribute path)
MODELS = {
    "customers": (Customer, "customer_no", {}),
    "credit-lines": (CreditLine, "customer__customer_no", {"limit": "credit_limit"}),
    "card-bindings": (CardBinding, "gateway_token", {}),
    "bills": (Bill, "bill_no", {}),
    "repayment-attempts": (RepaymentAttempt, "attempt_no", {}),
}


def _shown(value: object) -> str:
    """A stored value written the way expected.json writes it."""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _actual(spec: str) -> str:
    resource, *rest = spec.split(":")
    model, key, renames = MODELS[resource]
    if rest == ["count"]:
        return str(model.objects.count())
    key_value, field = rest
    row = model.objects.get(**{key: key_value})
    return _shown(getattr(row, renames.get(field, field)))


@pytest.mark.parametrize("fast_path", [False, True], ids=["resource-path", "copy-fast-path"])
@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_each_handed_import_case_gives_the_outcome_its_expected_json_describes(case, fast_path, empty_domain):
    spec = json.loads((CASES / case / "expected.json").read_text(encoding="utf-8"))
    for number, step in enumerate(spec["steps"], start=1):
        path = CASES / case / step["file"]
        outcome = data_import(
            resource=step["resource"],
            content=path.read_bytes(),
            filename=path.name,
            actor=None,
            dry_run=step["dry_run"],
            fast_path=fast_path,  # bills and attempts only; the other resources ignore it
        )
        where = f"{case} step {number} ({step['resource']} {step['file']})"
        if step["expect"] == "applied":
            assert outcome.applied and not outcome.problems, f"{where}: {[str(p) for p in outcome.problems]}"
        else:
            assert step["expect"] == "rejected"
            assert not outcome.applied and outcome.problems, where
        named = {(p.row, p.column) for p in outcome.problems}
        for cell in step["errors"]:
            assert (cell["row"], cell["column"]) in named, (
                f"{where}: {cell} not in {[str(p) for p in outcome.problems]}"
            )
        for problem in outcome.problems:
            assert problem.message, where
    for field, expected in spec["after"].items():
        # Counts are JSON numbers, everything else the exact text.
        assert _actual(field) == (str(expected) if isinstance(expected, int) else expected), f"{case}: {field}"
