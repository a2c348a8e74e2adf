"""django-filter FilterSets for the API's lists (every filter uses an index or a small range)."""

from __future__ import annotations

import datetime as dt

import django_filters
from rest_framework.exceptions import ValidationError

from baitiao.business_time import bucket_ranges
from repayments.models import (
    AttemptStatus,
    Bill,
    BillStatus,
    BindingRepairCase,
    Channel,
    CreditLine,
    Customer,
    FailureFamily,
    Reminder,
    RepaymentAttempt,
    RiskTier,
)


class UtcIsoDateTimeFromToRangeFilter(django_filters.IsoDateTimeFromToRangeFilter):
    """An ISO 8601 range whose ends are turned into UTC before they reach the database.

    Python accepts offsets up to ±23:59, PostgreSQL only up to ±15:59; a time in UTC
    is the same instant and always fits.
    """

    def filter(self, qs, value):
        if value:
            try:
                value = slice(*(end.astimezone(dt.UTC) if end else None for end in (value.start, value.stop)))
            except OverflowError:
                raise ValidationError({self.field_name: ["The time is out of range."]}, code="overflow") from None
        return super().filter(qs, value)


class CustomerFilter(django_filters.FilterSet):
    risk_tier = django_filters.ChoiceFilter(choices=RiskTier.choices)

    class Meta:
        model = Customer
        fields = ["customer_no", "risk_tier"]


class CreditLineFilter(django_filters.FilterSet):
    customer_no = django_filters.CharFilter(field_name="customer__customer_no")

    class Meta:
        model = CreditLine
        fields = ["customer_no", "status", "currency"]


class BillFilter(django_filters.FilterSet):
    """Bills by status (repeatable), due-date range (business dates), delinquency bucket, customer."""

    status = django_filters.MultipleChoiceFilter(choices=BillStatus.choices)
    due_date = django_filters.DateFromToRangeFilter(help_text="due_date_after / due_date_before, inclusive.")
    bucket = django_filters.ChoiceFilter(
        choices=lambda: [(name, name) for name, _low, _high in bucket_ranges()],
        method="filter_bucket",
        help_text="Delinquency bucket (M0 … M4+) by stored DPD; open (pending or overdue) bills only.",
    )
    customer_no = django_filters.CharFilter(field_name="customer__customer_no")
    last_failure_family = django_filters.ChoiceFilter(choices=FailureFamily.choices)

    class Meta:
        model = Bill
        fields = ["status", "due_date", "bucket", "customer_no", "last_failure_family"]

    def filter_bucket(self, queryset, name, value):  # noqa: ARG002 - django-filter API
        return queryset.in_bucket(value)  # the choices admit only configured buckets


class AttemptFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=AttemptStatus.choices)
    failure_family = django_filters.ChoiceFilter(choices=FailureFamily.choices)
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    bill_no = django_filters.CharFilter(field_name="bill__bill_no")
    requested_at = UtcIsoDateTimeFromToRangeFilter(
        help_text="requested_at_after / requested_at_before, ISO 8601 with an offset."
    )

    class Meta:
        model = RepaymentAttempt
        fields = ["status", "failure_family", "channel", "bill_no", "requested_at"]


class ReminderFilter(django_filters.FilterSet):
    bill_no = django_filters.CharFilter(field_name="bill__bill_no")
    scheduled_at = UtcIsoDateTimeFromToRangeFilter()

    class Meta:
        model = Reminder
        fields = ["bill_no", "status", "risk_tier", "scheduled_at"]


class RepairCaseFilter(django_filters.FilterSet):
    customer_no = django_filters.CharFilter(field_name="customer__customer_no")

    class Meta:
        model = BindingRepairCase
        fields = ["status", "customer_no"]
