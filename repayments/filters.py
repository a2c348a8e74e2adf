"""The list filters of the console and the API: one FilterSet per list, one definition per filter.

Every FilterSet here is a :class:`baitiao.filters.StrictFilterSet`: a refused value
is named with its parameter and value (the console shows it on the page and
refuses the export with a 400; the API answers 400), and a list with a refused
filter is empty rather than wider than asked. Every filter uses an index or a
small range. The API's lists read the same classes (``repayments/api/views.py``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING

import django_filters
from django import forms
from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

from baitiao.business_time import bucket_ranges
from baitiao.filters import BusinessDayFilter, CaseChoiceFilter, MonthFilter, StrictFilterSet
from repayments.models import (
    AttemptStatus,
    Bill,
    BillStatus,
    BindingRepairCase,
    BureauSuppression,
    CardBinding,
    CardBindingStatus,
    Channel,
    CreditLine,
    Customer,
    Extension,
    FailureFamily,
    Incident,
    ReliefBatch,
    Reminder,
    RepaymentAttempt,
    RiskTier,
    Waiver,
)


class UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 time turned into UTC while it is cleaned.

    Python accepts offsets up to ±23:59, PostgreSQL only up to ±15:59; a time in UTC
    is the same instant and always fits. One that cannot be said in UTC is refused.
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise forms.ValidationError(_("The time is out of range."), code="overflow") from None


class UtcIsoDateTimeRangeField(django_filters.fields.RangeField):
    """``name_after`` / ``name_before`` as two :class:`UtcIsoDateTimeField`."""

    widget = django_filters.widgets.DateRangeWidget

    def __init__(self, *args, **kwargs):
        super().__init__((UtcIsoDateTimeField(), UtcIsoDateTimeField()), *args, **kwargs)


class UtcIsoDateTimeFromToRangeFilter(django_filters.IsoDateTimeFromToRangeFilter):
    """An ISO 8601 range (``name_after`` / ``name_before``) whose ends are in UTC before they reach the database."""

    field_class = UtcIsoDateTimeRangeField


class CustomerFilter(StrictFilterSet):
    risk_tier = django_filters.ChoiceFilter(choices=RiskTier.choices)

    class Meta:
        model = Customer
        fields = ["customer_no", "risk_tier"]


class CreditLineFilter(StrictFilterSet):
    customer_no = django_filters.CharFilter(field_name="customer__customer_no")

    class Meta:
        model = CreditLine
        fields = ["customer_no", "status", "currency"]


# Amount filters stay below numeric(14, 2)'s range (12 digits before the point).
MAX_AMOUNT = Decimal("999999999999.99")
MAX_DPD = 99_999


class IntegerFilter(django_filters.NumberFilter):
    """A whole-number filter (django-filter's NumberFilter takes decimals)."""

    field_class = forms.IntegerField


def _bucket_choices() -> list[tuple[str, str]]:
    return [(name, name) for name, _low, _high in bucket_ranges()]


def _bank_filter(field_name: str) -> django_filters.CharFilter:
    """A bank code (``ICBC``): letters, digits, underscore, up to 16; case does not matter."""
    return django_filters.CharFilter(field_name=field_name, method="filter_bank", max_length=16, label=_("Bank"))


def _risk_tier_filter(field_name: str) -> django_filters.ChoiceFilter:
    """The customer's risk tier (low, medium, high)."""
    return django_filters.ChoiceFilter(field_name=field_name, choices=RiskTier.choices, label=_("Risk tier"))


class _BankFilterMixin:
    def filter_bank(self, queryset, name, value):
        return queryset.filter(**{name: value.strip().upper()})


class _AssigneeFilterMixin:
    """``assignee``: ``me``, ``unassigned`` or a username; the current user is the request's."""

    request: HttpRequest | None  # set by django-filter's FilterSet, which the mixin is combined with

    def filter_assignee(self, queryset, name, value):  # noqa: ARG002 - django-filter API
        value = value.strip()
        if value == "me":
            return queryset.filter(assigned_to=self.request.user if self.request else None)
        if value == "unassigned":
            return queryset.filter(assigned_to__isnull=True)
        return queryset.filter(assigned_to__username=value)


class BillListFilter(_BankFilterMixin, _AssigneeFilterMixin, StrictFilterSet):
    """The filters every list of bills shares (worklist and ``/api/v1/bills/``): one definition each.

    ``bucket`` (M0 … M4+ by stored DPD, open bills only), ``dpd_min`` / ``dpd_max``
    (whole days, inclusive), ``amount_min`` / ``amount_max`` (amount due, inclusive),
    ``risk_tier``, ``bank`` (issuer of a live card of the customer), ``assignee``.
    """

    bucket = django_filters.ChoiceFilter(
        choices=_bucket_choices,
        method="filter_bucket",
        label=_("Bucket"),
        help_text="Delinquency bucket (M0 … M4+) by stored DPD; open (pending or overdue) bills only.",
    )
    dpd_min = IntegerFilter(field_name="dpd", lookup_expr="gte", min_value=0, max_value=MAX_DPD, label=_("DPD from"))
    dpd_max = IntegerFilter(field_name="dpd", lookup_expr="lte", min_value=0, max_value=MAX_DPD, label=_("DPD to"))
    amount_min = django_filters.NumberFilter(field_name="amount_due", lookup_expr="gte", min_value=0,
                                             max_value=MAX_AMOUNT, label=_("Amount due from"))  # fmt: skip
    amount_max = django_filters.NumberFilter(field_name="amount_due", lookup_expr="lte", min_value=0,
                                             max_value=MAX_AMOUNT, label=_("Amount due to"))  # fmt: skip
    risk_tier = _risk_tier_filter("customer__risk_tier")
    bank = _bank_filter("customer__card_bindings__bank_code")
    assignee = django_filters.CharFilter(method="filter_assignee", max_length=150, label=_("Assigned to"))

    messages = {
        "bucket": _("Bucket: “%(value)s” is not a delinquency bucket."),
        "dpd_min": _("DPD from: “%(value)s” is not a whole number."),
        "dpd_max": _("DPD to: “%(value)s” is not a whole number."),
        "amount_min": _("Amount due from: “%(value)s” is not an amount."),
        "amount_max": _("Amount due to: “%(value)s” is not an amount."),
        "risk_tier": _("Risk tier: “%(value)s” is not one of low, medium, high."),
        "bank": _("Bank: “%(value)s” is not a bank code."),
    }
    ordered_pairs: tuple[tuple[str, str, StrOrPromise], ...] = (
        ("dpd_min", "dpd_max", _("DPD from %(low)s is above DPD to %(high)s: nothing can match.")),
        ("amount_min", "amount_max", _("Amount due from %(low)s is above %(high)s: nothing can match.")),
    )

    class Meta:
        model = Bill
        fields: list[str] = []

    def filter_bucket(self, queryset, name, value):  # noqa: ARG002 - django-filter API
        return queryset.in_bucket(value)  # the choices admit only configured buckets

    def filter_bank(self, queryset, name, value):  # noqa: ARG002 - django-filter API
        # A bank of a live (active or invalid) card of the customer: an EXISTS, not a join (no duplicates).
        return queryset.filter(
            Exists(
                CardBinding.objects.filter(
                    customer_id=OuterRef("customer_id"),
                    bank_code=value.strip().upper(),
                    status__in=[CardBindingStatus.ACTIVE, CardBindingStatus.INVALID],
                )
            )
        )


class BillFilter(BillListFilter):
    """``/api/v1/bills/``: the shared bill filters, plus status (repeatable), due-date range, customer, family."""

    status = django_filters.MultipleChoiceFilter(choices=BillStatus.choices)
    due_date = django_filters.DateFromToRangeFilter(help_text="due_date_after / due_date_before, inclusive.")
    customer_no = django_filters.CharFilter(field_name="customer__customer_no")
    last_failure_family = django_filters.ChoiceFilter(choices=FailureFamily.choices)

    class Meta:
        model = Bill
        fields = ["status", "due_date", "customer_no", "last_failure_family"]


class BillBrowseFilter(BillFilter):
    """The console's list of bills (``/console/bills/``), where the dashboard's rows lead.

    The API's bill filters plus the dashboard's own names for what it groups by:
    ``month_from`` / ``month_to`` (the billing month, ``YYYY-MM``, inclusive) and
    ``currency`` (the credit line's, any case), so a dashboard row's link carries
    the page's filters unchanged; ``last_failure_code`` (the bank's code of the
    bill's latest failed debit, e.g. ``insufficient_funds``) for the failures by reason.
    """

    month_from = MonthFilter(field_name="period", lookup_expr="gte", label=_("Period from"))
    month_to = MonthFilter(field_name="period", lookup_expr="lte", label=_("Period to"))
    currency = django_filters.CharFilter(field_name="credit_line__currency", method="filter_currency", max_length=3,
                                         label=_("Currency"))  # fmt: skip
    last_failure_code = django_filters.CharFilter(field_name="last_failure_code", max_length=40,
                                                  label=_("Latest failure code"))  # fmt: skip

    messages = {
        **BillListFilter.messages,
        "status": _("Status: “%(value)s” is not a bill status."),
        "last_failure_family": _("Failure family: “%(value)s” is not one of binding, system, funds, other."),
        "month_from": _("Period from: “%(value)s” is not a month; use YYYY-MM, e.g. 2026-10."),
        "month_to": _("Period to: “%(value)s” is not a month; use YYYY-MM, e.g. 2026-10."),
    }
    ordered_pairs: tuple[tuple[str, str, StrOrPromise], ...] = (
        *BillListFilter.ordered_pairs,
        ("month_from", "month_to", _("Period: “%(low)s” is after “%(high)s”.")),
    )

    class Meta:
        model = Bill
        fields = ["status", "due_date", "customer_no", "last_failure_family"]

    def filter_currency(self, queryset, name, value):
        return queryset.filter(**{name: value.strip().upper()})


WORKLIST_QUEUES = ["failures", "system", "binding", "funds", "repair", "overdue", "approvals"]


class WorklistFilter(BillListFilter):
    """The agent's worklist: the shared bill filters, plus the queue (tab) and a failure family.

    ``queue`` and ``family`` choose which of the queue's per-family index scans run
    (``repayments/selectors/worklist.py``), so they filter nothing themselves here.
    """

    queue = django_filters.ChoiceFilter(choices=[(q, q) for q in WORKLIST_QUEUES], method="filter_nothing",
                                        label=_("Queue"))  # fmt: skip
    family = django_filters.ChoiceFilter(choices=FailureFamily.choices, method="filter_nothing",
                                         label=_("Failure family"))  # fmt: skip

    messages = {
        **BillListFilter.messages,
        "queue": _("Queue: “%(value)s” is not a queue."),
        "family": _("Failure family: “%(value)s” is not one of binding, system, funds, other."),
    }

    class Meta:
        model = Bill
        fields: list[str] = []

    def filter_nothing(self, queryset, name, value):  # noqa: ARG002 - read by the selector
        return queryset

    def value(self, name: str, default=None):
        """The cleaned value of filter ``name`` (``default`` when absent, blank or refused)."""
        self.is_valid()
        value = self.form.cleaned_data.get(name) if hasattr(self.form, "cleaned_data") else None
        return default if value in (None, "") else value


class AttemptFilter(StrictFilterSet):
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


def _month_start(month: dt.date) -> dt.datetime:
    """00:00 business time of the first day of ``month``, aware."""
    from django.utils import timezone

    return timezone.make_aware(dt.datetime.combine(month.replace(day=1), dt.time(0, 0)))


class AttemptExportFilter(_BankFilterMixin, AttemptFilter):
    """Repayment attempts for an export: the API's attempt filters plus the period and the bank.

    ``month_from`` / ``month_to`` (``YYYY-MM``, inclusive) are business-time months of
    ``requested_at``, as the dashboard counts attempts; ``bank`` is the bank code of the
    debited card.
    """

    month_from = MonthFilter(method="filter_month_from", label=_("Period from"))
    month_to = MonthFilter(method="filter_month_to", label=_("Period to"))
    bank = _bank_filter("card_binding__bank_code")

    messages = {
        "month_from": BillBrowseFilter.messages["month_from"],
        "month_to": BillBrowseFilter.messages["month_to"],
        "bank": BillListFilter.messages["bank"],
    }
    ordered_pairs = (("month_from", "month_to", BillBrowseFilter.ordered_pairs[-1][2]),)

    class Meta:
        model = RepaymentAttempt
        fields = ["status", "failure_family", "channel", "bill_no", "requested_at"]

    def filter_month_from(self, queryset, name, value):  # noqa: ARG002 - django-filter API
        return queryset.filter(requested_at__gte=_month_start(value))

    def filter_month_to(self, queryset, name, value):  # noqa: ARG002 - django-filter API
        following = (value.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        return queryset.filter(requested_at__lt=_month_start(following))


class ReminderFilter(StrictFilterSet):
    bill_no = django_filters.CharFilter(field_name="bill__bill_no")
    scheduled_at = UtcIsoDateTimeFromToRangeFilter()

    class Meta:
        model = Reminder
        fields = ["bill_no", "status", "risk_tier", "scheduled_at"]


class RepairCaseFilter(_BankFilterMixin, _AssigneeFilterMixin, StrictFilterSet):
    """Binding-repair cases (worklist ``repair`` queue and ``/api/v1/binding-repairs/``)."""

    customer_no = django_filters.CharFilter(field_name="customer__customer_no")
    risk_tier = _risk_tier_filter("customer__risk_tier")
    bank = _bank_filter("card_binding__bank_code")
    assignee = django_filters.CharFilter(method="filter_assignee", max_length=150, label=_("Assigned to"))
    messages = {name: BillListFilter.messages[name] for name in ("risk_tier", "bank")}

    class Meta:
        model = BindingRepairCase
        fields = ["status", "customer_no"]


class LedgerFilter(StrictFilterSet):
    """The bureau-suppression ledger (page and CSV for regulators).

    ``customer`` (customer_no), ``bill`` (bill_no), ``period`` (``YYYY-MM``, the
    bill's billing month), ``cause`` (``extension`` or ``incident``), ``since`` /
    ``until`` (business dates the record was made, inclusive), ``revoked=1`` to
    include records whose relief was reversed (left out by default).
    """

    customer = django_filters.CharFilter(field_name="bill__customer__customer_no", max_length=64,
                                         label=_("Customer"))  # fmt: skip
    bill = django_filters.CharFilter(field_name="bill__bill_no", max_length=64, label=_("Bill"))
    period = MonthFilter(field_name="bill__period", label=_("Period"))
    cause = django_filters.ChoiceFilter(choices=[("extension", _("extension")), ("incident", _("incident"))],
                                        method="filter_cause", label=_("Cause"))  # fmt: skip
    since = BusinessDayFilter(field_name="created_at", end="since", label=_("From"))
    until = BusinessDayFilter(field_name="created_at", end="until", label=_("To"))
    revoked = django_filters.ChoiceFilter(choices=[("1", _("include revoked"))], method="filter_nothing",
                                          label=_("Revoked"))  # fmt: skip

    messages = {
        "period": _("Period: “%(value)s” is not a month (YYYY-MM)."),
        "cause": _("Cause: “%(value)s” is not one of extension, incident."),
        "since": _("From: “%(value)s” is not a date (YYYY-MM-DD)."),
        "until": _("To: “%(value)s” is not a date (YYYY-MM-DD)."),
        "revoked": _("Revoked: “%(value)s” is not 1."),
    }
    ordered_pairs = (("since", "until", _("“From” %(low)s is after “To” %(high)s: nothing can match.")),)

    class Meta:
        model = BureauSuppression
        fields: list[str] = []

    def filter_cause(self, queryset, name, value):  # noqa: ARG002 - django-filter API
        return queryset.filter(**{f"{value}__isnull": False})  # the choices admit only the two relations

    def filter_nothing(self, queryset, name, value):  # noqa: ARG002 - applied in filter_queryset
        return queryset

    def filter_queryset(self, queryset):
        """The filters, and revoked records left out unless ``revoked=1``."""
        queryset = super().filter_queryset(queryset)
        if self.form.cleaned_data.get("revoked") != "1":
            queryset = queryset.filter(revoked_at__isnull=True)
        return queryset


class DashboardFilter(StrictFilterSet):
    """The receivables dashboard's filters (``repayments/selectors/dashboard.py``).

    The dashboard reads materialized rollups with SQL, not a queryset, so only this
    FilterSet's validation is used (``parse_dashboard_filters`` turns the cleaned
    values into ``DashboardFilters``). ``bank`` and ``currency`` admit what the data
    holds: pass ``choices`` (``filter_choices()``).
    """

    month_from = MonthFilter(label=_("Period from"))
    month_to = MonthFilter(label=_("Period to"))
    bank = CaseChoiceFilter(choices=[], case="upper", label=_("Bank"))
    risk_tier = CaseChoiceFilter(choices=RiskTier.choices, case="lower", label=_("Risk tier"))
    currency = CaseChoiceFilter(choices=[], case="upper", label=_("Currency"))

    messages = {
        "month_from": _("Period from: “%(value)s” is not a month; use YYYY-MM, e.g. 2026-10."),
        "month_to": _("Period to: “%(value)s” is not a month; use YYYY-MM, e.g. 2026-10."),
        "bank": _("Bank: “%(value)s” is not a bank in the data."),
        "risk_tier": _("Risk tier: “%(value)s” is not one of low, medium, high."),
        "currency": _("Currency: “%(value)s” is not a currency in the data."),
    }
    ordered_pairs = (("month_from", "month_to", _("Period: “%(low)s” is after “%(high)s”.")),)

    def __init__(self, data=None, *, banks: list[str], currencies: list[str], **kwargs):
        """``banks`` and ``currencies``: the codes the rollups hold (the only values admitted)."""
        super().__init__(data, queryset=BureauSuppression.objects.none(), **kwargs)
        self.form.fields["bank"].choices = [(code, code) for code in banks]
        self.form.fields["currency"].choices = [(code, code) for code in currencies]


class ExtensionFilter(StrictFilterSet):
    class Meta:
        model = Extension
        fields = ["status"]


class WaiverFilter(StrictFilterSet):
    class Meta:
        model = Waiver
        fields = ["status"]


class IncidentFilter(StrictFilterSet):
    class Meta:
        model = Incident
        fields = ["status", "bank_code", "source"]


class ReliefBatchFilter(StrictFilterSet):
    incident = IntegerFilter(field_name="incident_id", min_value=1, max_value=2**63 - 1)

    class Meta:
        model = ReliefBatch
        fields = ["status", "incident"]
