"""factory_boy factories for the domain; every value is a string/int/Decimal, never float."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from baitiao.pii import pii_hash
from repayments.models import Bill, BillStatus, CardBinding, CreditLine, Customer, DataSource


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    customer_no = factory.Sequence(lambda n: f"T-{n:06d}")
    name = "测试用户"
    phone = factory.Sequence(lambda n: f"139{n:08d}")
    phone_hash = factory.LazyAttribute(lambda o: pii_hash(o.phone))
    phone_last4 = factory.LazyAttribute(lambda o: o.phone[-4:])
    national_id = "11010519491231002X"
    national_id_hash = factory.LazyAttribute(lambda o: pii_hash(o.national_id))
    national_id_last4 = factory.LazyAttribute(lambda o: o.national_id[-4:])
    credit_score = 700
    source = DataSource.CONSOLE


class CreditLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CreditLine

    customer = factory.SubFactory(CustomerFactory)
    credit_limit = Decimal("10000.00")
    available_credit = Decimal("10000.00")
    currency = "CNY"


class CardBindingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CardBinding

    customer = factory.SubFactory(CustomerFactory)
    gateway_token = factory.Sequence(lambda n: f"sbx_ok_test{n:08d}")
    bin = "622202"
    last4 = "0123"
    bank_code = "ICBC"
    bank_name = "中国工商银行"
    reserved_phone = factory.LazyAttribute(lambda o: o.customer.phone)
    bound_at = factory.LazyFunction(timezone.now)


class BillFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Bill

    credit_line = factory.SubFactory(CreditLineFactory)
    customer = factory.LazyAttribute(lambda o: o.credit_line.customer)
    bill_no = factory.Sequence(lambda n: f"TB-{n:08d}")
    due_date = dt.date(2026, 11, 20)
    statement_date = factory.LazyAttribute(lambda o: o.due_date - dt.timedelta(days=19))
    period = factory.LazyAttribute(lambda o: (o.statement_date.replace(day=1) - dt.timedelta(days=1)).replace(day=1))
    original_due_date = factory.LazyAttribute(lambda o: o.due_date)
    amount_due = Decimal("1000.00")
    statement_balance = factory.LazyAttribute(lambda o: Decimal(o.amount_due))
    minimum_due = Decimal("100.00")
    status = BillStatus.PENDING
