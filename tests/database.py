"""The test databases: the UCI data loaded once into a template, and cheap clones of it.

Loading the UCI file (30,000 holders, ~180,000 statements) took half a minute at
every pytest session, and the flush that ends each transactional test threw it
away for every test after it. Instead, on the test server:

* ``<test db>_empty`` (migrated) and ``<test db>_uci`` (the same plus the UCI file
  as of :data:`UCI_AS_OF`) are *template databases*, built once and again only
  when their inputs change. Their key (:func:`current_template_key`: a hash of
  every installed app's migrations, the data files and the code that maps them,
  the PII keys and the as-of date) is stored as each database's comment; a
  template whose comment differs is rebuilt. An advisory lock makes concurrent
  sessions and xdist workers wait for one build.
* The session's test database (``test_baitiao``, ``test_baitiao_gw0``… under
  xdist) is ``CREATE DATABASE … TEMPLATE <test db>_uci``: a copy, seconds.
  Ordinary tests roll back inside it, so the UCI rows are never flushed away.
* Transactional tests (``django_db(transaction=True)``, ``live_server``) commit
  for real, so they run in their own database, ``<test db>_tx``, a copy of the
  small ``_empty`` template (:func:`transactional_tests_in_own_database`), flushed
  after each of them as Django does. They start from an empty domain (roles and
  permissions in place) and cannot remove the session's UCI rows. Restoring the
  UCI rows after each of them instead (a new copy of the 180 MB template) cost
  3–5 s per test on a busy server, against ~1.7 s for the flush.

``pytest --create-db`` rebuilds the templates even when their key matches.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Iterable
from importlib import import_module
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections

ROOT = Path(__file__).resolve().parent.parent
# The business date every dataset test is pinned to (the numbers in docs/dataset.md).
UCI_AS_OF = dt.date(2026, 11, 15)
UCI_SUFFIX = "_uci"
EMPTY_SUFFIX = "_empty"
TRANSACTIONAL_SUFFIX = "_tx"
# pg_advisory_lock key held while a template is checked or built (any session, any worker).
TEMPLATE_LOCK_ID = 7_000_351
# Code whose output is stored in the template besides the migrations: the UCI load
# and what it calls, and the role sync that runs after migrate.
LOADER_SOURCES = (
    "repayments/data",
    "repayments/datasets",
    "repayments/bins.py",
    "repayments/services/datasets.py",
    "repayments/services/bulk_load.py",
    "repayments/services/delinquency.py",
    "baitiao/pii.py",
    "baitiao/money.py",
    "baitiao/business_time.py",
    "accounts/roles.py",
    "accounts/services.py",
)


def template_inputs() -> list[Path]:
    """The files a template's content depends on: every installed app's migrations and :data:`LOADER_SOURCES`."""
    files: list[Path] = []
    for app in apps.get_app_configs():
        try:
            module = import_module(f"{app.name}.migrations")
        except ImportError:
            continue
        files.extend(Path(folder) for folder in getattr(module, "__path__", []))
    files.extend(ROOT / source for source in LOADER_SOURCES)
    return files


def template_key(paths: Iterable[Path], extra: Iterable[str] = ()) -> str:
    """A hex SHA-256 over the files under ``paths`` (names and bytes) and the ``extra`` strings.

    Args:
        paths: files or folders; folders are walked (``__pycache__`` skipped), in name order.
        extra: further inputs (settings, dates) as strings.

    Raises:
        FileNotFoundError: a path does not exist (a renamed source must be renamed here too).
    """
    digest = hashlib.sha256()
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"template input {path} does not exist")
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for file in files if path.is_dir() else [path]:
            digest.update(str(file.relative_to(file.anchor)).encode() + b"\0" + file.read_bytes() + b"\0")
    for value in extra:
        digest.update(value.encode() + b"\0")
    return digest.hexdigest()


def current_template_key() -> str:
    """The key of a template built now: :func:`template_inputs`, the PII keys' digest and :data:`UCI_AS_OF`."""
    import django

    pii = hashlib.sha256("\n".join([*map(str, settings.PII_ENCRYPTION_KEYS), str(settings.PII_HASH_KEY)]).encode())
    return template_key(template_inputs(), [django.__version__, pii.hexdigest(), UCI_AS_OF.isoformat()])


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _admin_execute(alias: str, *statements: tuple[str, list] | str) -> list:
    """Run statements on the server's maintenance database (autocommit); the last one's rows."""
    rows: list = []
    with connections[alias]._nodb_cursor() as cursor:  # Django's own route for CREATE/DROP DATABASE
        for statement in statements:
            sql, params = (statement, None) if isinstance(statement, str) else statement
            cursor.execute(sql, params)
            rows = cursor.fetchall() if cursor.description else []
    return rows


def ensure_template(
    *, alias: str, name: str, key: str, build: Callable[[], None], source: str | None = None, rebuild: bool = False
) -> bool:
    """Make sure the template database ``name`` exists with comment ``key``; build it if not.

    The build goes to ``<name>_build`` and is renamed into place only once
    complete, with the key as its comment, so an interrupted build never passes
    for a template. Concurrent callers wait on an advisory lock and reuse the
    template the first one built.

    Args:
        alias: the connection alias whose server holds the template.
        name: the template database's name.
        key: what the template must have been built from (see :func:`current_template_key`).
        build: fills the database that ``alias`` points at when called (migrate, load).
        source: the template to start the build from (default: the server's ``template1``).
        rebuild: build even when the key matches.

    Returns:
        Whether the template was (re)built.

    Raises:
        Whatever ``build`` raises; the half-built database is dropped first.
    """
    building = f"{name}_build"
    lock = connections[alias]._nodb_cursor()
    cursor = lock.__enter__()
    try:
        cursor.execute("SELECT pg_advisory_lock(%s)", [TEMPLATE_LOCK_ID])
        cursor.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name])
        found = cursor.fetchone()
        if found and found[0] == key and not rebuild:
            return False
        cursor.execute(f"DROP DATABASE IF EXISTS {_quote(building)} WITH (FORCE)")
        cursor.execute(f"CREATE DATABASE {_quote(building)}" + (f" TEMPLATE {_quote(source)}" if source else ""))
        try:
            with pointed_at(alias, building):
                build()
        except BaseException:
            cursor.execute(f"DROP DATABASE IF EXISTS {_quote(building)} WITH (FORCE)")
            raise
        cursor.execute(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")
        cursor.execute(f"ALTER DATABASE {_quote(building)} RENAME TO {_quote(name)}")
        cursor.execute(f"COMMENT ON DATABASE {_quote(name)} IS %s", [key])
        return True
    finally:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [TEMPLATE_LOCK_ID])
        lock.__exit__(None, None, None)


class pointed_at:  # noqa: N801 - used as a context manager, like a function
    """``with pointed_at(alias, database):`` the alias (and its test mirrors) talk to ``database``."""

    def __init__(self, alias: str, database: str) -> None:
        self.alias, self.database = alias, database

    def __enter__(self) -> None:
        self.saved = {name: connections[name].settings_dict["NAME"] for name in _alias_and_mirrors(self.alias)}
        for name in self.saved:
            connections[name].close()
            connections[name].settings_dict["NAME"] = self.database

    def __exit__(self, *exc) -> None:
        for name, database in self.saved.items():
            connections[name].close()
            connections[name].settings_dict["NAME"] = database


def _alias_and_mirrors(alias: str) -> list[str]:
    return [alias] + [
        other for other in connections.settings if connections.settings[other].get("TEST", {}).get("MIRROR") == alias
    ]


def clone_database(*, alias: str, template: str, name: str, attempts: int = 5) -> None:
    """(Re)create ``name`` as a copy of ``template`` on ``alias``'s server; the old ``name`` is dropped.

    Sessions still connected to the old database (a live server's last request)
    are ended (``DROP DATABASE … WITH (FORCE)``); this thread's connections are
    closed and reopen on the new database at their next query.

    Args:
        alias: the connection alias whose server holds both databases.
        template: the template database's name.
        name: the database to (re)create.
        attempts: tries when the template is busy (a concurrent clone's copy), 0.5 s apart.

    Raises:
        django.db.OperationalError: the copy still failed after ``attempts`` tries.
    """
    for name_ in _alias_and_mirrors(alias):
        connections[name_].close()
    # The default strategy (WAL_LOG on PostgreSQL 15+) costs the template's size.
    # FILE_COPY forces a checkpoint of the whole server: 7–23 s on a shared one.
    for attempt in range(attempts):
        try:
            _admin_execute(
                alias,
                f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)",
                f"CREATE DATABASE {_quote(name)} TEMPLATE {_quote(template)}",
            )
            return
        except OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


def template_names(test_database: str, worker: str | None) -> tuple[str, str]:
    """The ``(empty, uci)`` templates of ``test_database`` (its name without the xdist ``_gwN`` suffix)."""
    base = test_database.removesuffix(f"_{worker}") if worker else test_database
    return f"{base}{EMPTY_SUFFIX}", f"{base}{UCI_SUFFIX}"


def ensure_templates(*, alias: str, test_database: str, worker: str | None, rebuild: bool = False) -> str:
    """Build the ``_empty`` and ``_uci`` templates of ``test_database`` unless current; returns the UCI one.

    Args:
        alias: the connection alias of the test server.
        test_database: the session's test database name (``connection.creation._get_test_db_name()``).
        worker: the xdist worker id (``gw0``…), ``None`` without xdist.
        rebuild: rebuild both even if their key matches (``pytest --create-db``).

    Raises:
        Whatever migrate or the UCI load raise (``DatasetError`` for a bad file); no template is left half-built.
    """
    empty, uci = template_names(test_database, worker)
    key = current_template_key()
    ensure_template(alias=alias, name=empty, key=key, build=migrate_template, rebuild=rebuild)
    ensure_template(alias=alias, name=uci, key=key, build=load_uci_template, source=empty, rebuild=rebuild)
    return uci


def migrate_template() -> None:
    """Migrate the database the default alias points at (roles and permissions come with ``post_migrate``)."""
    from django.core.management import call_command

    call_command("migrate", database=DEFAULT_DB_ALIAS, interactive=False, run_syncdb=True, verbosity=0)


def load_uci_template() -> None:
    """Load the UCI file as of :data:`UCI_AS_OF` into the (migrated) database the default alias points at."""
    from repayments.services.datasets import dataset_load_uci

    dataset_load_uci(as_of=UCI_AS_OF)


def end_other_sessions(*, alias: str, database: str) -> int:
    """Terminate every other session of ``database`` (a live server's or a worker's idle connection).

    Django drops the test database at the end of the session and PostgreSQL
    refuses while anything is connected ("being accessed by other users").

    Returns:
        How many sessions were ended.
    """
    rows = _admin_execute(
        alias,
        (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [database],
        ),
    )
    return len(rows)


def transactional_tests_in_own_database(*, alias: str, template: str) -> Callable[[], None]:
    """Run every transactional test in ``<test db>_tx``, a copy of ``template``, not the session's database.

    Django's ``TransactionTestCase`` runs in the session's database and empties
    every table afterwards, the UCI rows included. Here its fixture setup points
    ``alias`` (and its test mirrors) at ``<test db>_tx`` (copied from ``template``
    for the first transactional test, and again after a flush that failed), and
    its teardown flushes that database and points them back. ``TestCase``
    (pytest-django's ordinary ``db`` tests) has its own fixture methods and is
    not affected.

    Args:
        alias: the connection alias of the session's test database.
        template: the template their database is copied from (the ``_empty`` one).

    Returns:
        A function that restores Django's methods and drops ``<test db>_tx``.
    """
    from django.test import TransactionTestCase

    session_database = connections[alias].settings_dict["NAME"]
    own = f"{session_database}{TRANSACTIONAL_SUFFIX}"
    original_setup = TransactionTestCase.__dict__["_fixture_setup"]
    original_teardown = TransactionTestCase._fixture_teardown
    switched: list[pointed_at] = []
    state = {"fresh_copy_needed": True}

    def _fixture_setup(cls) -> None:
        # pytest-django reaches this twice per test (setUpClass runs _pre_setup eagerly).
        if not switched and alias in cls._databases_names(include_mirrors=False):
            if state["fresh_copy_needed"]:
                clone_database(alias=alias, template=template, name=own)
                state["fresh_copy_needed"] = False
            switched.append(pointed_at(alias, own))
            switched[0].__enter__()
        original_setup.__func__(cls)

    def _fixture_teardown(self) -> None:
        if not switched:
            original_teardown(self)
            return
        try:
            # Django's flush, on the test's own database: measured cheaper than a new copy
            # (1.7 s against 3.5 s per test on a busy server; DROP DATABASE checkpoints).
            original_teardown(self)
        except BaseException:
            state["fresh_copy_needed"] = True  # a flush that failed left rows behind
            raise
        finally:
            switched.pop().__exit__(None, None, None)

    TransactionTestCase._fixture_setup = classmethod(_fixture_setup)
    TransactionTestCase._fixture_teardown = _fixture_teardown

    def undo() -> None:
        TransactionTestCase._fixture_setup = original_setup
        TransactionTestCase._fixture_teardown = original_teardown
        _admin_execute(alias, f"DROP DATABASE IF EXISTS {_quote(own)} WITH (FORCE)")

    return undo
