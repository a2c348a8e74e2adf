"""Card numbers typed by an agent: what card validation refuses, and the sandbox's test cards (issue #15)."""

from __future__ import annotations

import pytest

from repayments.services.bindings import BindingError, card_number_check

SANDBOX_CARD_FAILING_LUHN = "6221558812340000"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("6.22848E+18", "spreadsheet"),
        ("6222 0212 3456 789X", "digits only"),
        ("62220212345", "12 to 19 digits"),
        ("6222021234567890127", "Luhn"),
        ("9999990000000000006", "No bank issues"),
    ],
)
def test_a_mistyped_or_damaged_card_number_is_refused_with_the_reason(raw, message, settings):
    settings.LANGUAGE_CODE = "en"
    with pytest.raises(BindingError, match=message) as refused:
        card_number_check(raw)
    assert refused.value.field == "card_number"


def test_a_valid_number_is_returned_as_digits_with_its_issuer():
    check = card_number_check(" 6222-0212 3456 7890 128 ")
    assert (check.digits, check.issuer.bank_code) == ("6222021234567890128", "ICBC")


def test_the_sandbox_test_card_that_fails_luhn_is_accepted_only_with_the_sandbox_gateway(settings):
    settings.GATEWAY_SANDBOX = True
    assert card_number_check(SANDBOX_CARD_FAILING_LUHN).issuer.bank_code == "SPABANK"
    settings.GATEWAY_SANDBOX = False
    with pytest.raises(BindingError, match="Luhn"):
        card_number_check(SANDBOX_CARD_FAILING_LUHN)
