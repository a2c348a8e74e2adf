"""The API's filter backend: the shared FilterSets (``repayments/filters.py``), strictly.

A list parameter the API knows is either applied or refused: ``?requested_at_before=``
(blank) and ``?status=nonsense`` are a 400 naming the parameter and its value, in
the API's error shape, never a list wider than the client asked for. The schema
says so: every free-text filter has ``minLength: 1``.
"""

from __future__ import annotations

from django import forms
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from rest_framework.exceptions import ValidationError

from baitiao.filters import StrictFilterSet

# Any text without a NUL character (PostgreSQL text cannot hold one; the API refuses it).
NO_NUL_PATTERN = "^[^\\u0000]*$"


class StrictFilterBackend(DjangoFilterBackend):
    """django-filter's DRF backend with the FilterSets' ``refuse_blank`` on.

    A view's ``filterset_fields`` shortcut builds a :class:`StrictFilterSet` too, but
    the API's lists name their FilterSet in ``repayments/filters.py``.
    """

    filterset_base = StrictFilterSet

    def get_filterset_kwargs(self, request, queryset, view):
        """django-filter's arguments plus ``refuse_blank=True`` (``baitiao.filters.StrictFilterSet``)."""
        return {**super().get_filterset_kwargs(request, queryset, view), "refuse_blank": True}

    def filter_queryset(self, request, queryset, view):
        """The filtered queryset.

        Raises:
            ValidationError: (400) ``{param: ["label: “value” …"]}`` for every refused parameter.
        """
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise ValidationError(filterset.errors, code="invalid")
        return filterset.qs


class StrictFilterExtension(DjangoFilterExtension):
    """drf-spectacular's django-filter parameters with what the FilterSets enforce.

    Free text states ``minLength: 1`` (a blank is refused) and its ``maxLength``;
    numbers their ``minimum`` / ``maximum``; callable choices (the delinquency
    buckets) their enum.
    """

    target_class = "repayments.api.filtering.StrictFilterBackend"
    priority = 1

    def _get_explicit_filter_choices(self, filter_field):
        # drf-spectacular leaves callable choices out (they might query the database);
        # ours read settings only (the delinquency buckets), so the enum is stated.
        choices = filter_field.extra.get("choices")
        if callable(choices):
            return [value for value, _label in choices()]
        return super()._get_explicit_filter_choices(filter_field)

    def resolve_filter_field(self, auto_schema, model, filterset_class, field_name, filter_field):
        """drf-spectacular's parameters for one filter, with the bounds its form field enforces."""
        parameters = super().resolve_filter_field(auto_schema, model, filterset_class, field_name, filter_field)
        bounds = {"max_length": "maxLength", "min_value": "minimum", "max_value": "maximum"}
        for parameter in parameters:
            schema = parameter.get("schema", {})
            if schema.get("type") == "string" and "enum" not in schema and "format" not in schema:
                schema["minLength"] = 1  # blank is refused (StrictFilterSet.refuse_blank)
                schema["pattern"] = NO_NUL_PATTERN  # a NUL is refused before any query (ReadViewSet.initial)
            if issubclass(filter_field.field_class, forms.DecimalField):  # a subclass of IntegerField
                schema.pop("format", None)
                schema["type"] = "number"
            elif issubclass(filter_field.field_class, forms.IntegerField):
                schema.pop("format", None)
                schema["type"] = "integer"
            for option, keyword in bounds.items():
                value = filter_field.extra.get(option)
                if value is not None:
                    schema[keyword] = int(value) if option == "max_length" or value == int(value) else float(value)
        return parameters
