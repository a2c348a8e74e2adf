"""Single cells as Excel on Chinese Windows writes them: parsed exactly or refused with a reason."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from baitiao.csvfiles import neutralize
from repayments.imports import cells
from repayments.imports.cells import CellError


@pytest.mark.parametrize("damaged", ["4.40300E+17", "4.403001990030712e+17", "6.22848E+18"])
def test_a_national_id_in_scientific_notation_is_refused_with_the_text_format_hint(damaged):
    with pytest.raises(CellError, match="scientific notation.*format this column as Text"):
        cells.parse_national_id(damaged)


def test_a_national_id_whose_tail_excel_filled_with_zeros_is_refused():
    with pytest.raises(CellError, match="filled the rest with zeros"):
        cells.parse_national_id("440300199003071000")


def test_a_national_id_ending_in_x_is_kept_and_upper_cased():
    assert cells.parse_national_id("11010519491231002x") == "11010519491231002X"


def test_a_national_id_with_a_wrong_check_character_is_refused():
    with pytest.raises(CellError, match="check character"):
        cells.parse_national_id("110105194912310021")


def test_leading_zeros_of_codes_and_card_digits_are_kept():
    assert cells.parse_code("00123", what="customer_no") == "00123"
    assert cells.parse_digits("0123", what="last four digits", lengths=(4, 4)) == "0123"


def test_a_code_with_a_dot_zero_suffix_is_refused_rather_than_silently_stripped():
    with pytest.raises(CellError, match=r"ends in '\.0'"):
        cells.parse_code("12345.0", what="customer_no")


def test_a_last4_that_lost_its_leading_zero_is_refused():
    with pytest.raises(CellError, match="3 digits"):
        cells.parse_digits("123", what="last four digits", lengths=(4, 4))


@pytest.mark.parametrize(
    "text", ["2024-03-05", "2024/3/5", "2024.3.5", "20240305", "2024年3月5日", "45356", "２０２４-０３-０５"]
)
def test_every_accepted_date_form_gives_the_same_day(text):
    assert cells.parse_date(text) == dt.date(2024, 3, 5)


@pytest.mark.parametrize("text", ["3/5/2024", "05.03.2024"])
def test_a_day_or_month_first_date_is_refused_as_ambiguous(text):
    with pytest.raises(CellError, match="ambiguous"):
        cells.parse_date(text)


def test_an_impossible_date_is_refused():
    with pytest.raises(CellError, match="not a real calendar date"):
        cells.parse_date("2024/2/30")


@pytest.mark.parametrize("text", ["2024-03", "2024/3", "202403", "2024年3月", "2024-03-17"])
def test_a_period_is_the_first_day_of_its_month(text):
    assert cells.parse_period(text) == dt.date(2024, 3, 1)


def test_a_time_without_offset_is_business_time():
    moment = cells.parse_datetime("2024/3/5 9:00")
    assert moment.utcoffset() == dt.timedelta(hours=8) and moment.hour == 9


@pytest.mark.parametrize("text", ["2024-03-05T09:00:00+19:29", "2024-03-05T09:00:00-21:03", "2024-03-05T09:00Z"])
def test_a_stated_offset_becomes_the_same_instant_in_utc_which_postgresql_can_store(text):
    """Python accepts offsets PostgreSQL refuses (over ±15:59): found by the API's fuzzing."""
    moment = cells.parse_datetime(text)
    assert moment.utcoffset() == dt.timedelta(0)
    assert moment == dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,234.50", "1234.50"),
        ("¥2,000.00", "2000.00"),
        ("￥2,000", "2000.00"),
        ("NT$1,000", "1000.00"),
        ("１２３.４５", "123.45"),
        (" 12.35 ", "12.35"),
        ("1 234.50", "1234.50"),
        ("100元", "100.00"),
        ("0", "0.00"),
    ],
)
def test_amounts_as_analysts_write_them_become_exact_decimals(text, expected):
    assert cells.parse_amount(text) == Decimal(expected)


def test_amounts_with_more_than_two_places_round_half_up_without_float():
    # As a binary float 1234.565 is 1234.56499…; exact decimal arithmetic rounds it up.
    assert cells.parse_amount("1234.565") == Decimal("1234.57")
    assert cells.parse_amount("0.005") == Decimal("0.01")


def test_a_negative_balance_is_accepted_only_where_allowed():
    assert cells.parse_amount("-12.50", allow_negative=True) == Decimal("-12.50")
    assert cells.parse_amount("(12.50)", allow_negative=True) == Decimal("-12.50")
    with pytest.raises(CellError, match="negative"):
        cells.parse_amount("-12.50")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1,23.4", "thousands separators"),
        ("1.2E+05", "scientific notation"),
        ("abc", "not an amount"),
        ("999999999999", "typo or a damaged cell"),
        ("", "empty"),
    ],
)
def test_damaged_or_absurd_amounts_are_refused(text, reason):
    with pytest.raises(CellError, match=reason):
        cells.parse_amount(text)


@pytest.mark.parametrize("text", ["+8613800138000", "+86 138 0013 8000", "13800138000", "１３８００１３８０００"])
def test_a_mobile_number_is_stored_as_eleven_digits(text):
    assert cells.parse_mobile(text) == "13800138000"


def test_a_phone_in_scientific_notation_is_refused():
    with pytest.raises(CellError, match="scientific notation"):
        cells.parse_mobile("1.38001E+10")


@pytest.mark.parametrize(
    ("word", "value"), [("open", "pending"), ("逾期", "overdue"), ("已还清", "paid"), ("PAID", "paid")]
)
def test_bill_status_words_in_english_and_chinese_are_understood(word, value):
    from repayments.imports.columns import BILL_STATUS_WORDS

    assert cells.parse_choice(word, what="status", words=BILL_STATUS_WORDS) == value


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("+8613800138000", "+8613800138000"),
        ("-1234.50", "-1234.50"),
        ("张三", "张三"),
    ],
)
def test_formulas_are_neutralised_but_phone_numbers_and_negative_amounts_are_not(cell, safe):
    assert neutralize(cell) == safe


def test_our_own_formula_guard_is_removed_on_import_so_a_round_trip_is_lossless():
    assert cells.plain_text("'=1+1") == "=1+1"
    assert cells.plain_text("O'Brien") == "O'Brien"


def test_docs_csv_names_every_column_in_english_and_chinese():
    from pathlib import Path

    from repayments.imports.columns import RESOURCES

    text = (Path(__file__).resolve().parents[3] / "docs" / "csv.md").read_text(encoding="utf-8")
    for resource, columns in RESOURCES.items():
        assert f"### {resource}" in text
        for column in columns:
            assert f"| `{column.name}` | {column.chinese} |" in text, (resource, column.name)


@pytest.mark.parametrize(
    ("parse", "noun"),
    [
        (cells.parse_code, "code"),
        (cells.parse_amount, "amount"),
        (cells.parse_date, "date"),
        (cells.parse_period, "period"),
        (cells.parse_datetime, "time"),
    ],
)
def test_an_empty_cell_is_refused_naming_the_column_by_its_default_noun(parse, noun):
    # The noun is the parser's default `what`, never the repr of some other module constant.
    with pytest.raises(CellError) as refused:
        parse("")
    assert str(refused.value) == f"The {noun} is empty."
