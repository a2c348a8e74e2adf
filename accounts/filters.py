"""The audit trail's filters, for its page and its CSV export (one definition each)."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _

from accounts.models import AuditEvent
from baitiao.filters import BusinessDayFilter, StrictFilterSet


class AuditFilter(StrictFilterSet):
    """Audit events by actor, action prefix, customer and business dates; staff events only by default.

    ``actor`` is the username at the time, ``action`` a prefix (``customer.reveal``),
    ``customer`` a customer_no, ``since`` / ``until`` business dates (YYYY-MM-DD,
    inclusive), ``system=1`` also lists the jobs' own events (many, naming no staff member).
    """

    actor = django_filters.CharFilter(field_name="actor_label", max_length=150, label=_("Actor"))
    action = django_filters.CharFilter(field_name="action", lookup_expr="startswith", max_length=100,
                                       label=_("Action"))  # fmt: skip
    customer = django_filters.CharFilter(field_name="customer_no", max_length=64, label=_("Customer"))
    since = BusinessDayFilter(field_name="occurred_at", end="since", label=_("From"))
    until = BusinessDayFilter(field_name="occurred_at", end="until", label=_("To"))
    system = django_filters.ChoiceFilter(choices=[("1", _("include the jobs' events"))], method="filter_system",
                                         label=_("System events"))  # fmt: skip

    messages = {
        "since": _("From: “%(value)s” is not a date (YYYY-MM-DD)."),
        "until": _("To: “%(value)s” is not a date (YYYY-MM-DD)."),
        "system": _("System events: “%(value)s” is not 1."),
    }
    ordered_pairs = (("since", "until", _("“From” %(low)s is after “To” %(high)s: nothing can match.")),)

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def filter_system(self, queryset, name, value):  # noqa: ARG002 - applied in filter_queryset
        return queryset

    def filter_queryset(self, queryset):
        """The filters, and the jobs' events left out unless ``system=1``."""
        queryset = super().filter_queryset(queryset)
        if self.form.cleaned_data.get("system") != "1":
            queryset = queryset.filter(actor__isnull=False)
        return queryset
