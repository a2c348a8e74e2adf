"""The base of every list filter, console and API alike (django-filter ``FilterSet``).

A filter definition (its field, lookup, validation and message) lives once in a
FilterSet (``repayments/filters.py``, ``accounts/filters.py``); the console's pages,
its CSV exports and the API's lists all read it. What this base adds to
django-filter:

* :meth:`StrictFilterSet.problems`: every refused value as a :class:`ParamProblem`
  naming the query parameter (``requested_at_before``, not ``requested_at``), the
  value as sent, and a sentence for a person. Range filters are checked one end
  at a time, so the message names the end that is wrong.
* ``refuse_blank``: the API refuses ``?name=`` (a client that sends a parameter
  means a value); the console's forms send every field, blank meaning "all".
* ``ordered_pairs``: on a console page a "from" above its "to" matches nothing and
  is refused with a message; an API client gets the empty list it asked for.
* :attr:`StrictFilterSet.qs` is empty while any value is refused: a mistyped
  filter never widens a list or an export to more than was asked for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import django_filters
import django_filters.constants
import django_filters.fields
from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


@dataclass(frozen=True)
class ParamProblem:
    """One refused query parameter: its name, the value as sent, and the message (names both)."""

    param: str
    value: str
    message: str


def _text(error: forms.ValidationError) -> str:
    return " ".join(str(message) for message in error.messages)


class StrictFilterSet(django_filters.FilterSet):
    """A FilterSet whose refusals name parameter and value, and whose ``qs`` never widens.

    Subclasses may set:

    * ``messages``: ``{param: "Label: “%(value)s” is not …"}`` for a refusal worded
      for that parameter; otherwise the message is "label: “value”: the field's error".
    * ``ordered_pairs``: ``((low_param, high_param, message), …)`` whose message may
      use ``%(low)s`` and ``%(high)s`` (the values as sent).
    """

    messages: dict[str, StrOrPromise] = {}
    ordered_pairs: tuple[tuple[str, str, StrOrPromise], ...] = ()

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None, refuse_blank: bool = False):
        """``data`` is the query string (``request.GET``); ``refuse_blank`` makes ``?name=`` a problem."""
        super().__init__(data=data, queryset=queryset, request=request, prefix=prefix)
        self.refuse_blank = refuse_blank
        if refuse_blank:
            # A client's text is matched as sent: a value of spaces or control characters
            # stripped to "" would otherwise filter nothing (a wider list than asked for).
            for field in self.form.fields.values():
                if isinstance(field, forms.CharField):
                    field.strip = False

    # --- which query parameters belong to which filter --------------------------------

    def parameters(self) -> dict[str, tuple[str, int | None]]:
        """Every query parameter this FilterSet reads: ``{param: (filter name, end index or None)}``."""
        names: dict[str, tuple[str, int | None]] = {}
        for name, field in self.form.fields.items():
            suffixes = getattr(field.widget, "suffixes", None)
            if suffixes:
                for index, suffix in enumerate(suffixes):
                    names[f"{name}_{suffix}" if suffix else name] = (name, index)
            else:
                names[name] = (name, None)
        return names

    def _label(self, param: str, name: str) -> str:
        label = self.filters[name].label if name in self.filters else None
        return str(label) if label and param == name else param

    def _message(self, param: str, name: str, value: str, error: str) -> str:
        template = self.messages.get(param)
        if template:
            return template % {"value": value}
        return _("%(label)s: “%(value)s” is not accepted: %(error)s") % {
            "label": self._label(param, name),
            "value": value,
            "error": error,
        }

    # --- validation --------------------------------------------------------------------

    def problems(self) -> list[ParamProblem]:
        """Every refused parameter, in the FilterSet's field order (empty when all are valid).

        A parameter is refused when its value does not clean (wrong type, not a
        choice, out of range), when it is blank and ``refuse_blank`` is set, or when
        the low end of an ordered pair is above the high end.
        """
        cached: list[ParamProblem] | None = getattr(self, "_problems", None)
        if cached is not None:
            return cached
        found: list[ParamProblem] = []
        if self.is_bound:
            self.form.is_valid()
            data = self.data
            for param, (name, index) in self.parameters().items():
                if param not in data:
                    continue
                values = data.getlist(param) if hasattr(data, "getlist") else [data.get(param)]
                field = self.form.fields[name]
                for raw in values:
                    raw = "" if raw is None else str(raw)
                    if raw == "" if self.refuse_blank else not raw.strip():
                        if self.refuse_blank:
                            found.append(
                                ParamProblem(param, raw, _("%(param)s: “%(value)s” is empty: give a value or leave "
                                                      "the parameter out.") % {"param": param, "value": raw})
                            )  # fmt: skip
                        continue
                    error = self._clean_error(field, index, raw, name)
                    if error is not None:
                        found.append(ParamProblem(param, raw, self._message(param, name, raw, error)))
            if not found and not self.refuse_blank:
                # A person typed a range upside down: say so. A client's empty range is an
                # answer (an empty list), not a malformed request.
                found += self._pair_problems()
        self._problems = found
        return found

    def _clean_error(self, field: forms.Field, index: int | None, raw: str, name: str) -> str | None:
        """The error text for one value of one parameter, or None when it cleans."""
        if index is not None and isinstance(field, forms.MultiValueField):  # one end of a range: clean it alone
            try:
                field.fields[index].clean(raw)
            except forms.ValidationError as error:
                return _text(error)
            return None
        if isinstance(field, forms.MultipleChoiceField):
            try:
                field.validate([raw])
            except forms.ValidationError as error:
                return _text(error)
            return None
        if name in self.form.errors:
            return " ".join(self.form.errors[name])
        return None

    def _pair_problems(self) -> list[ParamProblem]:
        found = []
        for low_param, high_param, message in self.ordered_pairs:
            low, high = self.form.cleaned_data.get(low_param), self.form.cleaned_data.get(high_param)
            if low is not None and high is not None and low not in ("", []) and high not in ("", []) and low > high:
                raw_low, raw_high = self.data.get(low_param, "").strip(), self.data.get(high_param, "").strip()
                found.append(ParamProblem(high_param, raw_high, message % {"low": raw_low, "high": raw_high}))
        return found

    def is_valid(self) -> bool:
        """True when the form is valid and :meth:`problems` found nothing."""
        return super().is_valid() and not self.problems()

    @property
    def errors(self) -> dict[str, list[str]]:
        """``{param: [message]}`` for every refused parameter (django-filter's DRF backend raises these)."""
        errors: dict[str, list[str]] = {}
        for problem in self.problems():
            errors.setdefault(problem.param, []).append(problem.message)
        return errors

    @property
    def error_messages(self) -> list[str]:
        """The messages of :meth:`problems`, for a console page."""
        return [problem.message for problem in self.problems()]

    @property
    def qs(self):
        """The filtered queryset; empty while any value is refused (never widened)."""
        if not hasattr(self, "_qs"):
            if self.is_bound and self.problems():
                self._qs = self.queryset.none()
            else:
                self._qs = super().qs
        return self._qs


class BusinessDayFilter(django_filters.DateFilter):
    """A business date (``YYYY-MM-DD`` only) bounding a time field, inclusive of the whole day.

    ``end="since"`` keeps rows at or after 00:00 business time (``TIME_ZONE``) of the
    date; ``end="until"`` keeps rows before 00:00 of the next day. ``9999-12-31`` as
    ``until`` filters nothing ("until the end of time").
    """

    def __init__(self, *, field_name: str, end: str, **kwargs):
        """``field_name``: an aware ``DateTimeField``; ``end``: ``"since"`` or ``"until"``."""
        if end not in ("since", "until"):
            raise ValueError(f"end must be 'since' or 'until', not {end!r}")
        self.end = end
        super().__init__(field_name=field_name, input_formats=["%Y-%m-%d"], **kwargs)

    def filter(self, qs, value):
        if value in django_filters.constants.EMPTY_VALUES:
            return qs
        lookup = "gte"
        if self.end == "until":
            if value == dt.date.max:
                return qs
            value += dt.timedelta(days=1)
            lookup = "lt"
        start = timezone.make_aware(dt.datetime.combine(value, dt.time(0, 0)))
        return qs.filter(**{f"{self.field_name}__{lookup}": start})


class MonthField(forms.DateField):
    """A calendar month written ``YYYY-MM`` (from 1900), cleaned to its first day."""

    input_formats = ["%Y-%m"]

    def to_python(self, value):
        month = super().to_python(value)
        if month is not None and month.year < 1900:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return month


class MonthFilter(django_filters.DateFilter):
    """A ``YYYY-MM`` month matched against a date field holding first days of months (or a range end)."""

    field_class = MonthField


class CaseChoiceField(django_filters.fields.ChoiceField):
    """A choice typed in any case and with spaces around it (``" icbc "`` is ``ICBC``)."""

    def __init__(self, *args, case: str = "upper", **kwargs):
        self.case = case
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        value = super().to_python(value).strip()
        return value.upper() if self.case == "upper" else value.lower()


class CaseChoiceFilter(django_filters.ChoiceFilter):
    """A :class:`django_filters.ChoiceFilter` whose value is compared upper- or lower-cased (``case=``)."""

    field_class = CaseChoiceField
