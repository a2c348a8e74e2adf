"""Shared fixtures: the test database cloned from the UCI template (tests/database.py), and staff personas."""

from __future__ import annotations

import pytest
from django.conf import global_settings
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.auth.models import Group
from django.test import override_settings

from accounts.models import User
from accounts.roles import ADMIN, AGENT, ANALYST, AUDITOR, SUPERVISOR
from tests import database
from tests.database import UCI_AS_OF  # noqa: F401 - imported from here by the dataset tests
from tests.engine import EngineClock, database_settle, engine_clock, start_sandbox, truncate_domain

PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
# Every persona's password (tests/e2e logs in with it), hashed once with the test
# hasher (MD5, first in the tests' PASSWORD_HASHERS below) for every persona.
PERSONA_PASSWORD = "correct horse battery staple"
PERSONA_PASSWORD_HASH = MD5PasswordHasher().encode(PERSONA_PASSWORD, "personas")


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """MD5 first in tests, as Django's testing docs advise ("Speeding up the tests").

    Tests that set a password (``create_user``, a login) would otherwise pay the
    production hasher (PBKDF2, 1,000,000 rounds), about half a second each;
    personas use a hash made once (``PERSONA_PASSWORD_HASH``). The real hashers stay in the list, so a
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
def django_db_setup(
    request, django_test_environment, django_db_blocker, django_db_modify_db_settings, django_db_keepdb
):
    """The test database as a clone of the UCI template (tests/database.py), never flushed.

    Replaces pytest-django's fixture of the same name: instead of migrating and
    loading the UCI file at every session, the template ``<test db>_uci`` is built
    once (again only when its key changes, or with ``--create-db``) and the test
    database is a copy of it. Transactional tests run in their own copy of the
    migrated, empty template, so nothing flushes the UCI rows away. ``--reuse-db``
    keeps the test database after the session.
    """
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.test.utils import setup_databases, teardown_databases

    worker = getattr(request.config, "workerinput", {}).get("workerid")
    verbosity = request.config.option.verbose
    with django_db_blocker.unblock():
        test_name = connections[DEFAULT_DB_ALIAS].creation._get_test_db_name()
        uci = database.ensure_templates(
            alias=DEFAULT_DB_ALIAS, test_database=test_name, worker=worker, rebuild=request.config.getvalue("create_db")
        )
        database.clone_database(alias=DEFAULT_DB_ALIAS, template=uci, name=test_name)
        # keepdb: Django finds the copy, checks its migrations are applied, and sets
        # the connection (and any test mirror) to it. No serialized copy for
        # ``serialized_rollback`` (no test uses it): serializing the UCI rows takes minutes.
        db_cfg = setup_databases(verbosity=verbosity, interactive=False, keepdb=True, serialized_aliases=set())
    empty, _ = database.template_names(test_name, worker)
    undo = database.transactional_tests_in_own_database(alias=DEFAULT_DB_ALIAS, template=empty)
    yield
    with django_db_blocker.unblock():
        undo()
        database.end_other_sessions(alias=DEFAULT_DB_ALIAS, database=test_name)
        teardown_databases(db_cfg, verbosity=verbosity, keepdb=django_db_keepdb)


def _persona(role: str) -> User:
    """A staff user ``test_<role>`` in the role's group (admin: staff too), password :data:`PERSONA_PASSWORD`.

    The password hash is computed once per process (:data:`PERSONA_PASSWORD_HASH`),
    not per persona: most tests never log in with a password (``force_login``).
    """
    user = User.objects.create(username=f"test_{role}", password=PERSONA_PASSWORD_HASH, is_staff=role == ADMIN)
    user.groups.add(Group.objects.get(name=role))
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
    """Live tests start from an empty domain (their database has no UCI rows: tests/database.py)."""
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
