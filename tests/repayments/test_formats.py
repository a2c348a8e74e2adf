"""One format everywhere (issue #16): moments in business time, numbers with separators, codes in words.

The filters of ``repayments/templatetags/console.py`` and the formats of
``baitiao/formats/``, in both languages. No database: pure rendering.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation

from repayments.templatetags.console import (
    as_json,
    code_label,
    failure_label,
    money,
    number,
    resource_label,
    target_label,
    when,
)

LANGUAGES = ["en", "zh-hans"]
# 22:41:39 in Shanghai: the bureau ledger's and the audit JSON's moment of issue #16.
MOMENT_UTC = dt.datetime(2026, 12, 7, 14, 41, 39, tzinfo=dt.UTC)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    "value",
    [
        MOMENT_UTC,
        MOMENT_UTC.replace(tzinfo=None),  # naive: taken as UTC, as stored
        "2026-12-07T22:41:39+08:00",  # the ledger row's ISO string
        "2026-12-07T14:41:39Z",
        "2026-12-07T14:41:39.123456+00:00",  # an audit snapshot's UTC string
    ],
)
def test_every_moment_is_shown_in_business_time_to_the_minute_in_both_languages(language, value):
    with translation.override(language):
        assert when(value) == "2026-12-07 22:41"


def test_a_missing_moment_is_empty_so_a_default_can_show_a_dash_and_text_stays_text():
    assert when(None) == ""
    assert Template('{% load console %}{{ v|when|default:"—" }}').render(Context({"v": None})) == "—"
    assert when("not a time") == "not a time"
    assert when("2026-12-07") == "2026-12-07"  # a date is not a moment


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_plain_datetime_in_a_template_has_the_same_format_as_the_filter(language):
    with translation.override(language):
        rendered = Template("{{ at }} {{ day }}").render(Context({"at": MOMENT_UTC, "day": dt.date(2026, 12, 7)}))
    assert rendered == "2026-12-07 22:41 2026-12-07"  # not "Dec. 7, 2026" nor "2026年12月7日"


@pytest.mark.parametrize("language", LANGUAGES)
def test_audit_json_shows_its_moments_in_business_time_and_leaves_the_rest_as_recorded(language):
    snapshot = {
        "approved_at": "2026-12-07T14:41:39.5+00:00",
        "due_date": "2026-12-20",
        "amount": "1234.50",
        "items": [{"at": "2026-12-07T14:41:39Z"}],
        "note": None,
    }
    with translation.override(language):
        shown = as_json(snapshot)
    assert shown == (
        '{"amount": "1234.50", "approved_at": "2026-12-07 22:41", "due_date": "2026-12-20",'
        ' "items": [{"at": "2026-12-07 22:41"}], "note": null}'
    )
    assert as_json(None) == ""


@pytest.mark.parametrize("language", LANGUAGES)
def test_numbers_and_money_carry_thousands_separators_in_both_languages(language):
    with translation.override(language):
        assert number(Decimal("1537415363.25")) == "1,537,415,363.25"  # the dashboard cell of issue #16
        assert number(27402) == "27,402"
        assert number(Decimal("12.5")) == "12.5"  # a percentage keeps its places
        assert money(Decimal("1234567.5"), "CNY") == "CNY 1,234,567.50"
        assert money(None) == "—"


def test_number_leaves_labels_and_missing_values_alone():
    assert number("2026-10") == "2026-10"
    assert number(None) is None
    assert number(True) is True


@pytest.mark.parametrize(
    ("code", "english", "chinese"),
    [
        ("system_fault", "System fault", "系统故障"),
        ("hardship", "Hardship", "困难"),
        ("binding", "Binding (customer information)", None),
        ("agent", "Agent-initiated", None),
        ("a reason typed by a person", "a reason typed by a person", "a reason typed by a person"),
    ],
)
def test_stored_codes_are_shown_in_words(code, english, chinese):
    with translation.override("en"):
        assert code_label(code) == english
    with translation.override("zh-hans"):
        shown = code_label(code)
    assert (shown == chinese) if chinese else (shown != code)


def test_a_card_refused_by_the_bank_is_explained_not_shown_as_its_code():
    with translation.override("en"):
        assert failure_label("card_expired on A-000123") == "Card expired (attempt A-000123)"
    with translation.override("zh-hans"):
        shown = failure_label("card_expired on A-000123")
    assert "card_expired" not in shown and "A-000123" in shown


def test_resources_and_audit_targets_are_named_in_the_readers_language():
    with translation.override("zh-hans"):
        assert resource_label("credit-lines") == "授信额度"
        assert target_label("repayments.extension") == "展期"
    assert resource_label("nonsense") == "nonsense"
    assert target_label("plugin.thing") == "plugin.thing"
