"""Masking of personal data for display and export.

Masks follow the common practice of Chinese financial apps (and GB/T 35273-2020,
the personal-information security specification, which asks for
de-identification on display): keep just enough to recognise the value.
"""

from __future__ import annotations

MASK = "*"


def mask_name(name: str) -> str:
    """``张三丰`` → ``张**``; Latin names keep their first letter. Empty stays empty."""
    name = name.strip()
    if not name:
        return ""
    return name[0] + MASK * max(len(name) - 1, 1)


def phone_digits(phone: str) -> str:
    """Digits only, without the mainland country code: ``+86 138-1234-5678`` → ``13812345678``."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


def mask_phone(phone: str) -> str:
    """``13812345678`` → ``138****5678``; shorter numbers keep only the last four."""
    digits = phone_digits(phone)
    if len(digits) == 11:
        return digits[:3] + MASK * 4 + digits[-4:]
    return MASK * max(len(digits) - 4, 0) + digits[-4:]


def mask_national_id(national_id: str) -> str:
    """``11010519491231002X`` → ``1*************002X``: first digit and last four."""
    value = national_id.strip().upper()
    if len(value) <= 5:
        return MASK * len(value)
    return value[0] + MASK * (len(value) - 5) + value[-4:]


def mask_card(last4: str, bin_: str = "") -> str:
    """``6222 **** **** 1234``-style card display from the BIN's first four and the last four."""
    head = bin_[:4] if bin_ else MASK * 4
    return f"{head} **** **** {last4}"


def mask_email(email: str) -> str:
    """``zhangsan@example.com`` → ``z*******@example.com``."""
    local, _, domain = email.partition("@")
    if not domain:
        return mask_name(email)
    return mask_name(local) + "@" + domain


def mask_token(token: str) -> str:
    """A card's gateway token (it debits the card) as exports show it: ``sbx_****5678``. Empty stays empty."""
    if not token:
        return ""
    return f"{token[:4]}{MASK * 4}{token[-4:]}"
