"""Failure taxonomy and retry policy (no database)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from baitiao.business_time import business_datetime
from repayments.gateway.signing import SignatureError, sign, verify
from repayments.gateway.taxonomy import failure_family
from repayments.services.collection import retry_time

NOW = business_datetime(dt.date(2026, 11, 30), dt.time(9, 0))


@pytest.mark.parametrize(
    ("code", "family"),
    [
        ("card_expired", "binding"),
        ("card_closed", "binding"),
        ("card_number_invalid", "binding"),
        ("reserved_phone_mismatch", "binding"),
        ("authorization_revoked", "binding"),
        ("insufficient_funds", "funds"),
        ("exceeds_limit", "funds"),
        ("timeout", "system"),
        ("bank_system_error", "system"),
        ("channel_unavailable", "system"),
        ("something_new", "other"),
    ],
)
def test_every_gateway_code_has_its_family(code, family):
    assert failure_family(code) == family


@pytest.mark.parametrize(("failures", "minutes"), [(1, 5), (2, 10), (3, 20), (5, 80), (6, 120), (8, 120)])
def test_system_failures_back_off_to_a_cap(failures, minutes):
    assert retry_time(family="system", failures=failures, now=NOW) == NOW + dt.timedelta(minutes=minutes)


def test_system_failures_beyond_the_tries_wait_for_the_next_morning():
    assert timezone.localtime(retry_time(family="system", failures=9, now=NOW)).date() == dt.date(2026, 12, 1)


def test_funds_failures_retry_one_three_five_days_after_the_first_decline():
    first = retry_time(family="funds", failures=1, now=NOW, streak_started=NOW)
    second = retry_time(family="funds", failures=2, now=first, streak_started=NOW)
    third = retry_time(family="funds", failures=3, now=second, streak_started=NOW)
    mornings = [first, second, third]
    assert [timezone.localtime(m).date().day for m in mornings] == [1, 3, 5]
    assert all(timezone.localtime(m).hour == 9 for m in mornings)
    assert retry_time(family="funds", failures=4, now=NOW) is None


def test_binding_failures_are_never_retried_automatically():
    assert retry_time(family="binding", failures=1, now=NOW) is None


def test_signatures_cover_body_and_time():
    body = b'{"a":1}'
    header = sign(body, "s3cret", timestamp=1_700_000_000)
    assert verify(header, body, "s3cret", now=1_700_000_100) == 1_700_000_000
    with pytest.raises(SignatureError, match="mismatch"):
        verify(header, b'{"a":2}', "s3cret", now=1_700_000_100)
    with pytest.raises(SignatureError, match="stale"):
        verify(header, body, "s3cret", now=1_700_000_400)
