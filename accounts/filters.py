"""The audit trail's filters, for its page and its CSV export (one definition each)."""

from __future__ import annotations

import uuid

import django_filters
from django import forms
from django.db.models import Subquery
from django.utils.translation import gettext_lazy as _

from accounts.models import AuditEvent
from baitiao.filters import BusinessDayFilter, StrictFilterSet


class BatchField(forms.CharField):
    """A relief batch: its audit id (a UUID) or its number (a whole number), cleaned to a ``UUID`` or an ``int``."""

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return ""
        if value.isascii() and value.isdigit() and len(value) <= 18:
            return int(value)
        try:
            return uuid.UUID(value)
        except ValueError:
            raise forms.ValidationError(_("not a batch number or audit id"), code="invalid") from None


class BatchFilter(django_filters.Filter):
    """Events of one relief batch: every event carrying its audit id as ``request_id``.

    A batch number is turned into its audit id through the batch's own
    ``relief.request`` event (``accounts`` does not read the relief tables).
    """

    field_class = BatchField

    def filter(self, qs, value):
        if value in ("", None):
            return qs
        if isinstance(value, uuid.UUID):
            return qs.filter(request_id=str(value))
        requested = AuditEvent.objects.filter(
            target_type="repayments.reliefbatch", target_id=str(value), action="relief.request"
        ).values("request_id")[:1]
        return qs.filter(request_id=Subquery(requested)).exclude(request_id="")


class AuditFilter(StrictFilterSet):
    """Audit events by actor, action prefix, customer, target, request, batch and business dates.

    ``actor`` is the username at the time, ``action`` a prefix (``customer.reveal``),
    ``customer`` a customer_no, ``target_type`` (``repayments.bill``) and
    ``target_id`` the target's primary key, ``request`` a request id (the id a web
    request's log lines carry, or a relief batch's audit id), ``batch`` a relief batch
    (its audit id or its number: every event of the batch), ``since`` / ``until``
    business dates (YYYY-MM-DD, inclusive), ``system=1`` also lists the jobs' own
    events (many, naming no staff member). Staff events only by default; with a
    ``request`` or ``batch`` filter the jobs' events of that request are listed too
    (a relief run's events are the batch's, whoever ran it).
    """

    actor = django_filters.CharFilter(field_name="actor_label", max_length=150, label=_("Actor"))
    action = django_filters.CharFilter(field_name="action", lookup_expr="startswith", max_length=100,
                                       label=_("Action"))  # fmt: skip
    customer = django_filters.CharFilter(field_name="customer_no", max_length=64, label=_("Customer"))
    target_type = django_filters.CharFilter(field_name="target_type", max_length=64, label=_("Target type"))
    target_id = django_filters.CharFilter(field_name="target_id", max_length=64, label=_("Target id"))
    request = django_filters.CharFilter(field_name="request_id", max_length=64, label=_("Request id"))
    batch = BatchFilter(label=_("Relief batch"))
    since = BusinessDayFilter(field_name="occurred_at", end="since", label=_("From"))
    until = BusinessDayFilter(field_name="occurred_at", end="until", label=_("To"))
    system = django_filters.ChoiceFilter(choices=[("1", _("include the jobs' events"))], method="filter_system",
                                         label=_("System events"))  # fmt: skip

    messages = {
        "since": _("From: “%(value)s” is not a date (YYYY-MM-DD)."),
        "until": _("To: “%(value)s” is not a date (YYYY-MM-DD)."),
        "system": _("System events: “%(value)s” is not 1."),
        "batch": _("Relief batch: “%(value)s” is neither a batch number nor an audit id."),
    }
    ordered_pairs = (("since", "until", _("“From” %(low)s is after “To” %(high)s: nothing can match.")),)

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def filter_system(self, queryset, name, value):  # noqa: ARG002 - applied in filter_queryset
        return queryset

    def filter_queryset(self, queryset):
        """The filters, and the jobs' events left out unless ``system=1`` or a request or batch is asked for."""
        queryset = super().filter_queryset(queryset)
        data = self.form.cleaned_data
        if data.get("system") != "1" and not (data.get("request") or data.get("batch")):
            queryset = queryset.filter(actor__isnull=False)
        return queryset
