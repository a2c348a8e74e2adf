"""Deterministic synthetic contact details and card bindings for dataset holders.

The UCI data has no names, phones, IDs or cards. We generate them from the
holder's key with a seeded ``random.Random`` (stable across runs and Python
versions for integer seeds) and flag them ``is_synthetic``. Real fields stay
real: the resident-ID's birth year comes from ``AGE`` and its sex digit from ``SEX``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass
from functools import lru_cache

from stdnum.cn import ric

from repayments.bins import BinInfo, bin_table

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍鹏辉玲建国红梅飞鑫波宇浩凯婷雪琳晨欣怡子涵轩睿博文"
# Mainland mobile prefixes of the three carriers (MIIT numbering plan).
MOBILE_PREFIXES = (
    "130 131 132 133 135 136 137 138 139 150 151 152 153 155 156 157 158 159 "
    "166 175 176 177 178 180 181 182 183 185 186 187 188 189 191 198 199"
).split()
# County-level administrative codes (GB/T 2260) for the first six ID digits; only codes
# that python-stdnum's birth-place table knows, so every generated ID validates.
REGION_CODES = ("110101", "110105", "110108", "310101", "310104", "120101")
MAJOR_BANKS = ("ICBC", "CCB", "ABC", "BOC", "CMB", "COMM", "PSBC", "SPDB", "CIB", "CITIC", "CMBC", "CEB", "SPABANK")

# Share of bindings that will fail at the bank, and how (per 100 holders).
BAD_BINDING_SHARE = (("card_expired", 3), ("card_closed", 2), ("reserved_phone_mismatch", 2))


@dataclass(frozen=True)
class SyntheticContact:
    name: str
    phone: str  # 11-digit mainland mobile
    national_id: str  # 18-character resident ID with a valid check digit
    email: str


@dataclass(frozen=True)
class SyntheticCard:
    scenario: str  # "ok" or the binding failure the sandbox gateway will return
    gateway_token: str
    bin: BinInfo
    last4: str
    reserved_phone: str


def _rng(key: str, purpose: str) -> random.Random:
    seed = int.from_bytes(hashlib.sha256(f"{purpose}:{key}".encode()).digest()[:8], "big")
    return random.Random(seed)  # noqa: S311 - synthetic test data, not secrets


def synthetic_contact(key: str, *, age_in_2005: int, sex: int) -> SyntheticContact:
    """Contact details for the holder ``key`` (e.g. ``"UCI-000001"``).

    Args:
        key: the customer number; the same key always gives the same details.
        age_in_2005: the holder's real ``AGE``; the ID's birth year is 2005 minus it.
        sex: the real ``SEX`` (1 male, 2 female); the ID's 17th digit is odd for male.
    """
    rng = _rng(key, "contact")
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    phone = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
    birth = dt.date(2005 - age_in_2005, 1, 1) + dt.timedelta(days=rng.randrange(365))
    sequence = rng.randrange(50) * 2 + (1 if sex == 1 else 0)  # parity carries sex
    body = f"{rng.choice(REGION_CODES)}{birth:%Y%m%d}{rng.randrange(10):01d}{sequence:02d}"
    national_id = body + ric.calc_check_digit(body + "0")  # the function skips the last character
    email = f"{key.lower().replace('-', '')}@example.com"
    return SyntheticContact(name=name, phone=phone, national_id=national_id, email=email)


@lru_cache(maxsize=1)
def _debit_bins() -> tuple[BinInfo, ...]:
    return tuple(
        info
        for info in bin_table()
        if info.card_type == "DC" and info.bank_code in MAJOR_BANKS and info.card_length in (16, 19)
    )


def synthetic_card(key: str, *, phone: str, low_funds: bool = False) -> SyntheticCard:
    """A bound debit card for holder ``key``.

    The sandbox gateway decides outcomes from the token, like Stripe's test
    tokens: ``sbx_ok_…`` debits against a healthy balance; ``sbx_lowfunds_…``
    (``low_funds``: holders behind on payments in the real data) has almost
    nothing; ``sbx_card_expired_…``, ``sbx_card_closed_…`` and
    ``sbx_reserved_phone_mismatch_…`` fail with that binding code. About 7 % of
    holders get a bad binding (``BAD_BINDING_SHARE``).
    """
    rng = _rng(key, "card")
    roll = rng.randrange(100)
    scenario, threshold = "ok", 0
    for name, share in BAD_BINDING_SHARE:
        threshold += share
        if roll < threshold:
            scenario = name
            break
    if scenario == "ok" and low_funds:
        scenario = "lowfunds"
    info = rng.choice(_debit_bins())
    last4 = f"{rng.randrange(10**4):04d}"
    reserved_phone = phone
    if scenario == "reserved_phone_mismatch":  # the bank still has an old number
        reserved_phone = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
    digest = hashlib.sha256(f"token:{key}".encode()).hexdigest()[:24]
    return SyntheticCard(
        scenario=scenario,
        gateway_token=f"sbx_{scenario}_{digest}",
        bin=info,
        last4=last4,
        reserved_phone=reserved_phone,
    )
