"""Contract check: schemathesis fuzzes the live API from its own OpenAPI schema, with every check.

Runs the ``schemathesis`` command line against a live server on the test
database, with a real API token of an admin (so every operation gets past the
role check and reaches the serializers and services), in both data-generation
modes: positive (requests the schema allows must not be refused as malformed)
and negative (requests the schema forbids must be refused). It must find no
server error, no response outside the schema (status code, content type, headers,
body), no schema-valid request refused with a 400 and no schema-violating request
accepted: the schema says exactly what the server enforces.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from accounts.services import api_token_issue
from repayments.models import Extension, Incident
from tests.factories import BillFactory, CardBindingFactory


def _failures(output: str) -> str:
    """The operations and findings of a failed run, without the request dumps (for the assertion)."""
    keep = re.compile(r"^(_{3,} .* _{3,}|- ST\d+ .*|\[\d{3}\] .*|`\{.*|Failures:|.*unique failures.*)$")
    return "\n".join(line[:300] for line in output.splitlines() if keep.match(line.strip()))


@pytest.mark.django_db(transaction=True)
def test_schemathesis_with_every_check_and_both_data_modes_finds_nothing(live_server, tmp_path):
    from tests.conftest import _persona

    admin, agent = _persona("admin"), _persona("agent")
    bill = BillFactory(status="overdue", dpd=10)
    CardBindingFactory(customer=bill.customer)
    Extension.objects.create(bill=bill, customer=bill.customer, days=30, reason="hardship", requested_by=agent,
                             request_token=uuid.uuid4())  # fmt: skip
    Incident.objects.create(bank_code="ICBC", started_at="2026-11-01T00:00:00Z", source="declared", description="x")
    token = api_token_issue(user=admin, days=1, reason="contract test")
    schemathesis = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [
            str(schemathesis),
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            f"{live_server.url}/api/schema/",
            "--header",
            f"Authorization: Token {token}",
            "--checks",
            "all",
            "--mode",
            "all",  # positive and negative data
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "10"),
            "--seed",
            "20261130",
            "--generation-database",
            "none",
            "--workers",
            "1",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = result.stdout + result.stderr
    (tmp_path / "schemathesis.log").write_text(output)
    assert result.returncode == 0, _failures(output) or output[-8000:]
    selected, tested = re.search(r"Selected: (\d+)/(\d+)", output), re.search(r"Tested: (\d+)", output)
    assert selected and tested and int(tested[1]) == int(selected[1]) == int(selected[2]) >= 35, output[-2000:]
    assert "Coverage (in" in output and "Fuzzing (in" in output  # both generating phases ran
