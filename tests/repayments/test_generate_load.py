"""Scale data resampled from the real holders."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command

from repayments.models import Bill, Customer, DataSource

pytestmark = pytest.mark.django_db


def test_generate_load_appends_numbered_holders_with_six_bills_each():
    call_command("generate_load", "--customers", "30", "--as-of", "2026-11-30", "--chunk-size", "20")
    generated = Customer.objects.filter(source=DataSource.GENERATED)
    assert generated.count() == 30
    assert Bill.objects.filter(customer__source=DataSource.GENERATED).count() == 180
    call_command("generate_load", "--customers", "5", "--as-of", "2026-11-30")
    assert generated.order_by("-customer_no").first().customer_no == "GEN-0000035"


def test_generated_holders_follow_the_real_limits():
    from repayments.datasets.uci import read_uci_holders

    call_command("generate_load", "--customers", "50", "--as-of", "2026-11-30")
    real_limits = {h.limit for h in read_uci_holders()}
    limits = Customer.objects.filter(source=DataSource.GENERATED).values_list("credit_line__credit_limit", flat=True)
    assert {int(limit) for limit in limits} <= real_limits
    latest = Bill.objects.filter(customer__source=DataSource.GENERATED, due_date=dt.date(2026, 11, 30))
    assert latest.count() == 50


def test_generated_holders_have_the_same_revolving_shape_one_open_statement_each():
    from django.db.models import Count, F, Q

    call_command("generate_load", "--customers", "40", "--as-of", "2026-11-15")
    per_holder = (
        Bill.objects.filter(customer__source=DataSource.GENERATED)
        .values("customer_id")
        .annotate(
            open=Count("id", filter=Q(status__in=["pending", "overdue"])),
            open_latest=Count("id", filter=Q(status__in=["pending", "overdue"], period=dt.date(2026, 10, 1))),
        )
    )
    assert len(per_holder) == 40
    assert all(row["open"] == row["open_latest"] <= 1 for row in per_holder)
    assert any(row["open"] == 1 for row in per_holder)
    carried = Bill.objects.filter(customer__source=DataSource.GENERATED, status="carried_forward")
    assert carried.exists() and not carried.exclude(carried_forward=F("amount_due") - F("amount_paid")).exists()
