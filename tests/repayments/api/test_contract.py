"""Contract check: schemathesis fuzzes the live API from its own OpenAPI schema.

Runs the ``schemathesis`` command line against a live server on the test
database, as an admin (so every operation gets past the role check and reaches
the serializers and services). It must find no server error and no response that
breaks the schema (status code, content type, body).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from accounts.services import api_token_issue
from repayments.models import Extension, Incident
from tests.factories import BillFactory, CardBindingFactory

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_server_error_and_no_response_outside_the_schema(live_server, tmp_path):
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
            "run",
            f"{live_server.url}/api/schema/",
            "--header",
            f"Authorization: Token {token}",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"),
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
    assert result.returncode == 0, output[-8000:]
    assert "passed" in output.lower()
