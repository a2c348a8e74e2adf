"""The optional read replica: explicit reporting reads only, writes and migrations on default."""

from __future__ import annotations

import pytest
from django.db import connections, router
from django.test.utils import CaptureQueriesContext

from baitiao.db_routers import reporting_db, reporting_reads
from repayments.models import CreditLine, Customer
from repayments.services.exports import export_rows

REPLICA_DB = pytest.mark.django_db(databases=["default", "replica"])


def test_reporting_reads_use_default_unless_a_replica_is_configured(db):
    assert reporting_db() == "default"
    with CaptureQueriesContext(connections["default"]) as default_queries, reporting_reads() as alias:
        count = Customer.objects.count()
    assert alias == "default"
    assert count > 0
    assert any("repayments_customer" in q["sql"] for q in default_queries)


@REPLICA_DB
def test_reporting_helper_picks_the_replica_when_configured(replica, settings):
    assert reporting_db() == "replica"
    settings.REPORTING_DATABASE = "not-configured"
    assert reporting_db() == "default"


@REPLICA_DB
def test_exports_stream_from_the_replica(replica):
    expected = CreditLine.objects.using("default").count()
    with (
        CaptureQueriesContext(connections["replica"]) as replica_queries,
        CaptureQueriesContext(connections["default"]) as default_queries,
    ):
        rows = list(export_rows("credit-lines"))
    assert len(rows) == expected > 0
    assert any("repayments_creditline" in q["sql"] for q in replica_queries)
    assert not any("repayments_creditline" in q["sql"] for q in default_queries)


@REPLICA_DB
def test_reads_outside_the_reporting_block_stay_on_default(replica):
    with CaptureQueriesContext(connections["replica"]) as replica_queries:
        Customer.objects.count()
        with reporting_reads():
            on_replica = Customer.objects.order_by("id").first()
    assert len(replica_queries) == 1
    assert on_replica._state.db == "replica"


@REPLICA_DB
def test_a_row_read_from_the_replica_is_saved_to_default(replica):
    with reporting_reads():
        customer = Customer.objects.order_by("id").first()
    customer.credit_score = 701
    with CaptureQueriesContext(connections["default"]) as default_queries:
        customer.save(update_fields=["credit_score"])
    assert any(q["sql"].startswith("UPDATE") for q in default_queries)
    assert Customer.objects.using("default").get(pk=customer.pk).credit_score == 701


def test_migrations_never_run_on_the_replica():
    assert router.allow_migrate("replica", "repayments", model_name="bill") is False
    assert router.allow_migrate("default", "repayments", model_name="bill") is True
