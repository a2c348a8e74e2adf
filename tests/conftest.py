"""Shared fixtures: the real UCI data loaded once per session, and staff personas."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import global_settings
from django.contrib.auth.models import Group
from django.test import override_settings

from accounts.models import User
from accounts.roles import ADMIN, AGENT, ANALYST, AUDITOR, SUPERVISOR
from tests.engine import EngineClock, database_settle, engine_clock, start_sandbox, truncate_domain

PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
# The business date every dataset test is pinned to (the numbers in docs/dataset.md).
UCI_AS_OF = dt.date(2026, 11, 15)


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """MD5 first in tests, as Django's testing docs advise ("Speeding up the tests").

    Every persona hashes a password; the production hasher (PBKDF2, 1,000,000
    rounds) cost about half a second each. The real hashers stay in the list, so a
    hash made with one of them still verifies, and child processes (a live web
    server under tests/ops) keep the production settings: a password they check is
    made with ``make_password(…, hasher="pbkdf2_sha256")``.
    """
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]):
        yield


@pytest.fixture(autouse=True)
def _live_sessions_settle_before_flush(request):
    """Transactional tests: let the live server's last request finish before the flush.

    Requesting ``transactional_db`` here (the test asks for it anyway) sets this up
    after pytest-django's database fixture and before the sandbox bank, the cluster
    or the browser, so its teardown runs after those stopped and before the flush.
    """
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction")) or bool(
        {"transactional_db", "live_server"} & set(request.fixturenames)
    )
    if not transactional:
        yield
        return
    request.getfixturevalue("transactional_db")
    yield
    database_settle()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Load the full UCI file once into the test database; tests roll back around it."""
    from repayments.services.datasets import dataset_load_uci

    with django_db_blocker.unblock():
        dataset_load_uci(as_of=UCI_AS_OF)


def _persona(role: str) -> User:
    user = User.objects.create_user(username=f"test_{role}", password="correct horse battery staple")
    user.groups.add(Group.objects.get(name=role))
    if role == ADMIN:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return user


@pytest.fixture
def agent(db) -> User:
    return _persona(AGENT)


@pytest.fixture
def supervisor(db) -> User:
    return _persona(SUPERVISOR)


@pytest.fixture
def analyst(db) -> User:
    return _persona(ANALYST)


@pytest.fixture
def auditor(db) -> User:
    return _persona(AUDITOR)


@pytest.fixture
def admin_user(db) -> User:
    return _persona(ADMIN)


@pytest.fixture
def clock() -> EngineClock:
    """The real present for tests that talk to live processes (see :class:`tests.engine.EngineClock`)."""
    return engine_clock()


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


@pytest.fixture(autouse=True)
def _english_after_each_test():
    """Django's test client leaves the last request's language active; start every test in English."""
    from django.utils import translation

    yield
    translation.activate("en")
