"""Receivables true to the data (issue #14): one balance per holder, delinquency by cycles past due.

The expected numbers are recounted from the raw UCI file with plain ``csv`` and
``Decimal`` only (no product code), by the rule of docs/dataset.md: a holder owes
their latest statement balance (``BILL_AMT1``, positive part); ``PAY_0`` = n ≥ 1
puts that whole balance n cycles past due, in bucket M1 … M4+ on a mid-month date.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.db.models import F, Sum
from django.urls import reverse

from repayments.datasets.uci import DEFAULT_PATH
from repayments.models import Bill, BillStatus, Channel, RepaymentAttempt
from repayments.selectors.dashboard import DashboardFilters, section_buckets
from repayments.selectors.receivables import portfolio_summary
from repayments.services.dashboard import dashboard_refresh
from tests.repayments.api.conftest import token_client

pytestmark = pytest.mark.django_db

BUCKETS = ("M0", "M1", "M2", "M3", "M4+")


def recount_from_the_csv() -> dict[str, dict]:
    """Per bucket on a mid-month date: holders and principal owed, from the raw file alone.

    Returns ``{"M0": {"holders": n, "principal": Decimal, "customers": {…}}, …}``.
    """
    counts = {name: {"holders": 0, "principal": Decimal(0), "customers": set()} for name in BUCKETS}
    with DEFAULT_PATH.open(newline="") as handle:
        for row in csv.DictReader(handle):
            balance = Decimal(row["BILL_AMT1"])  # "5e+05" is an exact integer for Decimal too
            if balance <= 0:
                continue
            behind = int(row["PAY_0"])
            bucket = BUCKETS[min(behind, 4)] if behind >= 1 else "M0"
            counts[bucket]["holders"] += 1
            counts[bucket]["principal"] += balance
            counts[bucket]["customers"].add(f"UCI-{int(row['ID']):06d}")
    return counts


@pytest.fixture(scope="module")
def recount() -> dict[str, dict]:
    return recount_from_the_csv()


def test_what_holders_owe_in_principal_is_the_sum_of_their_latest_positive_statements(recount):
    principal = Bill.objects.open().aggregate(owed=Sum(F("amount_due") - F("amount_paid")))["owed"]
    assert principal == sum(slot["principal"] for slot in recount.values()) == Decimal("1537381257")


def test_holders_and_principal_per_bucket_equal_the_recount_by_cycles_past_due(recount):
    rows = (
        Bill.objects.open()
        .with_bucket()
        .values("bucket")
        .annotate(principal=Sum(F("amount_due") - F("amount_paid")))
        .values_list("bucket", "principal")
    )
    holders = defaultdict(set)
    for bucket, number in Bill.objects.open().with_bucket().values_list("bucket", "customer__customer_no"):
        holders[bucket].add(number)
    assert {bucket: principal for bucket, principal in rows} == {b: s["principal"] for b, s in recount.items()}
    assert {bucket: len(numbers) for bucket, numbers in holders.items()} == {
        b: s["holders"] for b, s in recount.items()
    }
    assert holders["M2"] == recount["M2"]["customers"]
    # One open statement per holder: nobody owes twice.
    assert Bill.objects.open().count() == sum(s["holders"] for s in recount.values())


def test_every_holder_behind_with_a_balance_is_delinquent_and_nobody_else(recount):
    delinquent = set(Bill.objects.overdue().values_list("customer__customer_no", flat=True))
    assert delinquent == set().union(*(recount[b]["customers"] for b in BUCKETS[1:]))


def test_no_statement_says_paid_or_carried_forward_while_money_is_outstanding():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, count(*) FROM repayments_bill"
            " WHERE amount_due + late_fee - late_fee_waived - amount_paid - carried_forward > 0"
            " AND status NOT IN ('pending', 'overdue') GROUP BY 1"
        )
        assert cursor.fetchall() == []
    assert not Bill.objects.filter(status=BillStatus.PAID, amount_paid__lt=F("amount_due")).exists()
    carried = Bill.objects.filter(status=BillStatus.CARRIED_FORWARD)
    assert carried.exists()
    assert not carried.exclude(carried_forward=F("amount_due") - F("amount_paid")).exists()


def test_historical_payments_are_customer_repayments_and_no_debit_takes_more_than_was_due():
    # The file records payments, not debits: no auto-debit at all, so none above its bill.
    assert not RepaymentAttempt.objects.filter(channel=Channel.AUTO_DEBIT).exists()
    assert RepaymentAttempt.objects.filter(channel=Channel.CUSTOMER).count() == 120_276
    # Each payment is booked on its statement up to what the statement owed; an
    # overpayment's excess is the next statement's credit, not booked twice.
    booked = {}
    for bill_id, amount_due, amount_paid in Bill.objects.filter(attempts__isnull=False).values_list(
        "id", "amount_due", "amount_paid"
    ):
        booked[bill_id] = (amount_due, amount_paid)
    for bill_id, amount in RepaymentAttempt.objects.values_list("bill_id", "amount"):
        amount_due, amount_paid = booked[bill_id]
        assert amount_paid == min(amount, amount_due), bill_id
    assert RepaymentAttempt.objects.filter(amount__gt=F("bill__amount_due")).count() == 11_584 + 833


def test_the_minimum_due_agrees_with_the_status_codes_but_for_the_counted_exceptions():
    """Code 0 ("minimum paid") statements paid their 2 % minimum, except the 3,678 documented ones."""
    exceptions = total = 0
    with DEFAULT_PATH.open(newline="") as handle:
        for row in csv.DictReader(handle):
            codes = [int(row[c]) for c in ("PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5")]
            for k in range(1, 6):
                balance, paid = Decimal(row[f"BILL_AMT{k + 1}"]), Decimal(row[f"PAY_AMT{k}"])
                if balance > 0 and codes[k - 1] == 0:
                    total += 1
                    exceptions += paid < (balance * 2 / 100).quantize(Decimal("0.01"))
    assert (exceptions, total) == (3_678, 76_700)  # docs/dataset.md, "Exceptions of the raw data"


def test_landing_page_dashboard_api_and_csv_export_show_the_same_totals(client, supervisor):
    summary = portfolio_summary()
    landing = {row.bucket: (row.bills, row.balance.get("TWD", Decimal("0.00"))) for row in summary.buckets}

    dashboard_refresh(trigger="command")
    dashboard = {
        bucket: (bills, balance)
        for bucket, currency, bills, balance in section_buckets(DashboardFilters()).rows
        if currency == "TWD"
    }
    client.force_login(supervisor)
    response = client.get(reverse("console:dashboard-export") + "?section=buckets")
    assert response.status_code == 200
    exported = {}
    for row in list(csv.reader(b"".join(response.streaming_content).decode("utf-8-sig").splitlines()))[1:]:
        bucket, currency, bills, balance = row
        if currency == "TWD":
            exported[bucket] = (int(bills.replace(",", "")), Decimal(balance.replace(",", "")))
    assert landing == dashboard == exported
    assert sum(bills for bills, _balance in landing.values()) == summary.open_bills

    # The API lists every open bill of a bucket with what it owes: the same sums
    # (the delinquent buckets in full; M0 is 22,273 rows of the same query).
    api = token_client(supervisor)
    for bucket in ("M1", "M2", "M3", "M4+"):
        bills, owed = 0, Decimal("0.00")
        url = reverse("api:bill-list") + "?" + urlencode({"bucket": bucket, "page_size": 500})
        while url:
            body = api.get(url).json()
            bills += len(body["results"])
            owed += sum(Decimal(row["outstanding"]) for row in body["results"])
            url = body["next"]
        assert (bills, owed) == landing[bucket], bucket
