"""Fixtures of the live engine tests: an empty domain, the sandbox bank as a process."""

from __future__ import annotations

import pytest

from tests.engine import start_sandbox, truncate_domain


@pytest.fixture
def empty_domain(transactional_db):
    """Live tests start without the session's UCI data (it would be debited too)."""
    truncate_domain()


@pytest.fixture
def live_bank(live_server, settings):
    """Start the sandbox bank calling back our live server; ``live_bank(hold_seconds=…)``."""
    banks = []

    def start(**options):
        bank = start_sandbox(f"{live_server.url}/api/v1/gateway/callbacks/", **options)
        settings.GATEWAY_URL = bank.url
        settings.GATEWAY_TIMEOUT_SECONDS = 1.0
        banks.append(bank)
        return bank

    yield start
    for bank in banks:
        bank.stop()
