"""The framework-free helpers in baitiao/: money, business time, masking, personal-data crypto."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import phonenumbers
import pytest
import time_machine
from stdnum.cn import ric

from baitiao.business_time import business_datetime, business_today, days_past_due, delinquency_bucket
from baitiao.masking import mask_card, mask_name, mask_national_id, mask_phone
from baitiao.money import percent_of, to_money
from baitiao.pii import pii_decrypt, pii_encrypt, pii_hash, pii_rotate
from repayments.datasets.synthetic import BAD_BINDING_SHARE, synthetic_card, synthetic_contact


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1234.5", "1234.50"), ("0.005", "0.01"), ("-0.005", "-0.01"), (5, "5.00"), ("5e+05", "500000.00")],
)
def test_money_rounds_half_up_to_the_cent(raw, expected):
    assert to_money(raw) == Decimal(expected)


def test_money_refuses_float():
    with pytest.raises(TypeError, match="float"):
        to_money(0.1)


def test_money_refuses_text_that_is_not_a_number():
    with pytest.raises(ValueError, match="not a decimal amount"):
        to_money("12,34")


def test_percent_of_rounds_half_up():
    assert percent_of(Decimal("123.45"), 10) == Decimal("12.35")


@pytest.mark.parametrize(
    ("dpd", "bucket"), [(0, "M0"), (1, "M1"), (30, "M1"), (31, "M2"), (60, "M2"), (61, "M3"), (90, "M3"), (91, "M4+")]
)
def test_delinquency_bucket_boundaries(dpd, bucket):
    assert delinquency_bucket(dpd) == bucket


def test_days_past_due_is_zero_on_and_before_the_due_date():
    due = dt.date(2026, 11, 30)
    assert days_past_due(due, due) == 0
    assert days_past_due(due, dt.date(2026, 11, 1)) == 0
    assert days_past_due(due, dt.date(2026, 12, 1)) == 1


@time_machine.travel(dt.datetime(2026, 11, 30, 16, 30, tzinfo=dt.UTC))
def test_business_today_is_shanghai_date():
    # 16:30 UTC on the 30th is 00:30 on 1 December in Shanghai.
    assert business_today() == dt.date(2026, 12, 1)


def test_nine_oclock_shanghai_is_one_oclock_utc():
    moment = business_datetime(dt.date(2026, 11, 30), dt.time(9, 0))
    assert moment.astimezone(dt.UTC) == dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)


def test_masks_keep_just_enough_to_recognise():
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138 1234 5678") == "138****5678"
    assert mask_national_id("11010519491231002x") == "1*************002X"
    assert mask_card("0123", "622202") == "6222 **** **** 0123"


def test_pii_round_trips_and_rotates_keys(settings):
    token = pii_encrypt("13812345678")
    assert "13812345678" not in token
    assert pii_decrypt(token) == "13812345678"
    new_key = "bmV3LWtleS1mb3Itcm90YXRpb24tdGVzdHMtMDAwMDA="
    settings.PII_ENCRYPTION_KEYS = [new_key, *settings.PII_ENCRYPTION_KEYS]
    rotated = pii_rotate(token)
    settings.PII_ENCRYPTION_KEYS = [new_key]
    assert pii_decrypt(rotated) == "13812345678"


def test_pii_hash_ignores_formatting():
    assert pii_hash("138 1234-5678") == pii_hash("13812345678")
    assert pii_hash("11010519491231002x") == pii_hash("11010519491231002X")


def test_synthetic_contacts_are_valid_and_deterministic():
    for n in range(1, 201):
        key = f"UCI-{n:06d}"
        contact = synthetic_contact(key, age_in_2005=30, sex=1 + n % 2)
        assert contact == synthetic_contact(key, age_in_2005=30, sex=1 + n % 2)
        assert phonenumbers.is_valid_number(phonenumbers.parse(contact.phone, "CN")), contact.phone
        assert ric.is_valid(contact.national_id), contact.national_id
        assert contact.national_id[6:10] == "1975"  # born 2005 - AGE
        assert int(contact.national_id[16]) % 2 == (1 if 1 + n % 2 == 1 else 0)  # odd for male


def test_about_seven_percent_of_bindings_are_bad():
    scenarios = [synthetic_card(f"UCI-{n:06d}", phone="13800000000").scenario for n in range(1, 30_001)]
    bad = {name: scenarios.count(name) for name, _ in BAD_BINDING_SHARE}
    assert 0.06 < sum(bad.values()) / len(scenarios) < 0.08
    assert all(count > 0 for count in bad.values())


def test_cycles_past_due_count_thirty_days_or_part_as_one_cycle_like_the_buckets():
    from baitiao.business_time import cycles_past_due

    assert [cycles_past_due(d) for d in (0, 1, 30, 31, 60, 61, 229)] == [1, 1, 1, 2, 2, 3, 8]
    with pytest.raises(ValueError, match="negative"):
        cycles_past_due(-1)
