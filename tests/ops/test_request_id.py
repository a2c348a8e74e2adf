"""An incoming X-Request-ID is kept only when it cannot be personal data (it goes into the audit trail)."""

from __future__ import annotations

import re

import pytest
from django.test import RequestFactory

from baitiao.logs import request_id_from


@pytest.mark.parametrize("value", ["ops-trace-0001", "lb-3f2a9c1e", "Root-1-67891233-abcdef"])
def test_a_well_formed_request_id_is_kept(value):
    assert request_id_from(RequestFactory().get("/", HTTP_X_REQUEST_ID=value)) == value


@pytest.mark.parametrize(
    "value",
    ["13812345678", "11010519491231002X", "req-11010519491231002X", "6222021234567890128", "card6222021234567890128",
     "no good\tid", "x" * 65, "short"],
)  # fmt: skip
def test_a_request_id_that_could_be_a_phone_id_or_card_is_replaced(value):
    assigned = request_id_from(RequestFactory().get("/", HTTP_X_REQUEST_ID=value))
    assert assigned != value and re.fullmatch(r"[0-9a-f]{32}", assigned)
