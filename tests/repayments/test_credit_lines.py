"""Zero-limit credit lines opened for customers a bills import names (``credit_lines_open_missing``)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from repayments.models import CreditLine, CreditLineStatus
from repayments.services.credit_lines import credit_lines_open_missing
from tests.factories import CreditLineFactory, CustomerFactory


@pytest.mark.django_db
def test_only_customers_without_a_line_get_a_zero_limit_one_and_only_they_are_returned():
    lined, bare = CreditLineFactory().customer, CustomerFactory()
    before = CreditLine.objects.get(customer=lined).credit_limit

    assert credit_lines_open_missing(customer_ids=[bare.pk, lined.pk, bare.pk]) == [bare.pk]

    line = CreditLine.objects.get(customer=bare)
    assert (line.credit_limit, line.available_credit) == (0, 0)
    assert (line.currency, line.status) == ("CNY", CreditLineStatus.ACTIVE)
    assert CreditLine.objects.get(customer=lined).credit_limit == before
    assert credit_lines_open_missing(customer_ids=[bare.pk]) == []  # a second call opens nothing
    assert credit_lines_open_missing(customer_ids=[]) == []


def test_two_imports_naming_the_same_new_customer_at_once_both_succeed(empty_domain):
    customer = CustomerFactory()
    first_inserted, results, errors = threading.Event(), {}, []

    def first():
        try:
            with transaction.atomic():
                results["first"] = credit_lines_open_missing(customer_ids=[customer.pk])
                first_inserted.set()
                # Hold the transaction open while the second import tries the same customer.
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_sleep(1)")
        except Exception as error:  # noqa: BLE001 - reported to the test thread
            errors.append(error)
            first_inserted.set()
        finally:
            connection.close()

    def second():
        first_inserted.wait(timeout=30)
        try:
            with transaction.atomic():  # waits on the unique index until the first commits
                results["second"] = credit_lines_open_missing(customer_ids=[customer.pk])
        except Exception as error:  # noqa: BLE001 - reported to the test thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert results == {"first": [customer.pk], "second": []}
    assert CreditLine.objects.filter(customer=customer).count() == 1
