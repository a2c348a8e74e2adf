"""The test databases (tests/database.py): the UCI template built once, copies that keep its rows."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import DEFAULT_DB_ALIAS, connection, connections

from accounts.roles import ADMIN, AGENT, ANALYST, AUDITOR, SUPERVISOR
from repayments.models import Bill, Customer, DataSource
from tests import database
from tests.factories import CustomerFactory

UCI_HOLDERS = 30_000


def _uci_customers() -> int:
    return Customer.objects.filter(source=DataSource.UCI).count()


def _comment_of(name: str) -> str | None:
    """The database's comment; ``"absent"`` when there is no such database."""
    with connection._nodb_cursor() as cursor:
        cursor.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name])
        row = cursor.fetchone()
    return row[0] if row else "absent"


@pytest.mark.django_db
def test_an_ordinary_test_sees_every_uci_row():
    assert _uci_customers() == UCI_HOLDERS
    assert Bill.objects.filter(credit_line__customer__source=DataSource.UCI).count() > 5 * UCI_HOLDERS


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_runs_in_its_own_migrated_database_without_the_uci_rows():
    assert connection.settings_dict["NAME"].endswith(database.TRANSACTIONAL_SUFFIX)
    assert _uci_customers() == 0
    assert set(Group.objects.values_list("name", flat=True)) >= {AGENT, SUPERVISOR, ANALYST, AUDITOR, ADMIN}
    CustomerFactory(customer_no="SPEED-0001")


@pytest.mark.django_db(transaction=True)
def test_the_next_transactional_test_gets_a_fresh_copy_without_the_last_ones_rows():
    """Runs after the test above (pytest-django keeps the order within transactional tests)."""
    assert not Customer.objects.filter(customer_no="SPEED-0001").exists()


def test_after_the_transactional_tests_the_session_database_still_holds_the_uci_rows(
    django_db_setup, django_db_blocker
):
    """A test without the database marker runs after every transactional test of its module."""
    with django_db_blocker.unblock():
        assert not connection.settings_dict["NAME"].endswith(database.TRANSACTIONAL_SUFFIX)
        assert _uci_customers() == UCI_HOLDERS


def test_the_session_database_is_a_copy_of_templates_built_from_the_current_inputs(
    django_db_setup, django_db_blocker, request
):
    worker = getattr(request.config, "workerinput", {}).get("workerid")
    with django_db_blocker.unblock():
        for template in database.template_names(connection.settings_dict["NAME"], worker):
            assert _comment_of(template) == database.current_template_key()


def test_the_template_key_follows_file_names_contents_and_extra_inputs(tmp_path):
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_initial.py").write_text("operations = []\n")
    data = tmp_path / "holders.csv"
    data.write_text("ID,LIMIT_BAL\n1,20000\n")
    key = database.template_key([migrations, data], ["2026-11-15"])

    assert database.template_key([migrations, data], ["2026-11-15"]) == key
    assert database.template_key([migrations, data], ["2026-11-16"]) != key
    data.write_text("ID,LIMIT_BAL\n1,20001\n")
    assert database.template_key([migrations, data], ["2026-11-15"]) != key
    data.write_text("ID,LIMIT_BAL\n1,20000\n")
    (migrations / "0002_more.py").write_text("operations = []\n")
    assert database.template_key([migrations, data], ["2026-11-15"]) != key


def test_the_template_key_refuses_a_missing_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="gone.py"):
        database.template_key([tmp_path / "gone.py"])


def test_the_template_inputs_cover_every_migration_and_the_uci_file():
    names = {str(path) for path in database.template_inputs()}
    assert any(name.endswith("repayments/migrations") for name in names)
    assert any(name.endswith("accounts/migrations") for name in names)
    assert any(name.endswith("django_q/migrations") for name in names)
    assert str(database.ROOT / "repayments" / "data") in names


def test_a_template_is_built_once_and_rebuilt_only_when_its_key_changes(django_db_setup, django_db_blocker, request):
    worker = getattr(request.config, "workerinput", {}).get("workerid") or "main"
    name = f"test_template_probe_{worker}"
    builds: list[str] = []

    def build():
        builds.append(connection.settings_dict["NAME"])
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE probe (build int)")
            cursor.execute("INSERT INTO probe VALUES (%s)", [len(builds)])

    def probe_rows(database_name: str) -> list[int]:
        with database.pointed_at(DEFAULT_DB_ALIAS, database_name), connection.cursor() as cursor:
            cursor.execute("SELECT build FROM probe")
            return [row[0] for row in cursor.fetchall()]

    with django_db_blocker.unblock():
        session_database = connection.settings_dict["NAME"]
        try:
            assert database.ensure_template(alias=DEFAULT_DB_ALIAS, name=name, key="a", build=build)
            assert not database.ensure_template(alias=DEFAULT_DB_ALIAS, name=name, key="a", build=build)
            assert builds == [f"{name}_build"]
            assert _comment_of(name) == "a"

            assert database.ensure_template(alias=DEFAULT_DB_ALIAS, name=name, key="b", build=build)
            assert database.ensure_template(alias=DEFAULT_DB_ALIAS, name=name, key="b", build=build, rebuild=True)
            assert len(builds) == 3 and _comment_of(name) == "b"
            assert probe_rows(name) == [3]

            database.clone_database(alias=DEFAULT_DB_ALIAS, template=name, name=f"{name}_copy")
            assert probe_rows(f"{name}_copy") == [3]
        finally:
            with connection._nodb_cursor() as cursor:
                for leftover in (name, f"{name}_build", f"{name}_copy"):
                    cursor.execute(f'DROP DATABASE IF EXISTS "{leftover}" WITH (FORCE)')
        assert connections[DEFAULT_DB_ALIAS].settings_dict["NAME"] == session_database


def test_a_failed_build_leaves_no_template_behind(django_db_setup, django_db_blocker, request):
    worker = getattr(request.config, "workerinput", {}).get("workerid") or "main"
    name = f"test_template_broken_{worker}"

    def build():
        raise RuntimeError("the data file is malformed")

    with django_db_blocker.unblock():
        with pytest.raises(RuntimeError, match="malformed"):
            database.ensure_template(alias=DEFAULT_DB_ALIAS, name=name, key="a", build=build)
        assert _comment_of(name) == "absent"
        assert _comment_of(f"{name}_build") == "absent"
