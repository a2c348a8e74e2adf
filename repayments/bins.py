"""Issuer lookup from the Chinese BIN table shipped in ``repayments/data/cn_card_bins.csv``.

Rule (from the table's sources, hexindai/bcbc and caijf/bankcard): match the
**longest** listed prefix among rows whose ``card_length`` equals the card's
length; a prefix alone is not enough (``622302`` is GDRCC for 16 digits and ICBC
for 18).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

BIN_TABLE_PATH = Path(__file__).resolve().parent / "data" / "cn_card_bins.csv"


@dataclass(frozen=True)
class BinInfo:
    bin: str
    bank_name: str
    bank_code: str
    card_type: str  # DC, CC, SCC, PC
    card_length: int


@lru_cache(maxsize=1)
def bin_table() -> tuple[BinInfo, ...]:
    """All rows of the BIN table, in file order."""
    with BIN_TABLE_PATH.open(encoding="utf-8", newline="") as handle:
        return tuple(
            BinInfo(
                bin=row["bin"],
                bank_name=row["bank_name"],
                bank_code=row["bank_code"],
                card_type=row["card_type"],
                card_length=int(row["card_length"]),
            )
            for row in csv.DictReader(handle)
        )


@lru_cache(maxsize=1)
def _by_length() -> dict[int, dict[str, BinInfo]]:
    index: dict[int, dict[str, BinInfo]] = {}
    for info in bin_table():
        index.setdefault(info.card_length, {})[info.bin] = info
    return index


def bin_lookup(card_number: str) -> BinInfo | None:
    """The issuer of ``card_number`` (digits only), or ``None`` when no listed BIN fits.

    Args:
        card_number: the full card number as digits; it is only read, never kept.
    """
    by_prefix = _by_length().get(len(card_number), {})
    for size in range(min(10, len(card_number)), 2, -1):
        info = by_prefix.get(card_number[:size])
        if info is not None:
            return info
    return None


def bank_choices() -> list[tuple[str, str]]:
    """``(bank_code, label)`` of the known banks our customers' cards are with (for filters).

    The codes are read from the card bindings (one index scan) and cached for ten
    minutes; only banks of the BIN table are offered, each once, labelled in the
    active language (:func:`bank_label`) and ordered by that label.
    """
    from django.core.cache import cache

    from repayments.models import CardBinding

    codes = cache.get("repayments:bank_codes")
    if codes is None:
        codes = list(
            CardBinding.objects.exclude(bank_code="")
            .values_list("bank_code", flat=True)
            .order_by("bank_code")
            .distinct("bank_code")
        )
        cache.set("repayments:bank_codes", codes, 600)
    return sorted(((code, bank_label(code)) for code in codes if bank_is_known(code)), key=lambda item: item[1])


# English names of the banks, by code, for English pages (docs/console.md, "Banks").
# The BIN table gives every bank's Chinese name; these are the names the banks
# publish in English, for the national, joint-stock and larger city and foreign
# banks. A bank not listed reads as its Chinese name with its code on English pages.
BANK_NAMES_EN = {
    "ABC": "Agricultural Bank of China",
    "BJBANK": "Bank of Beijing",
    "BJRCB": "Beijing Rural Commercial Bank",
    "BOC": "Bank of China",
    "BOHAIB": "China Bohai Bank",
    "CCB": "China Construction Bank",
    "CDB": "China Development Bank",
    "CEB": "China Everbright Bank",
    "CIB": "Industrial Bank",
    "CITI": "Citibank (China)",
    "CITIC": "China CITIC Bank",
    "CMB": "China Merchants Bank",
    "CMBC": "China Minsheng Bank",
    "COMM": "Bank of Communications",
    "CQBANK": "Bank of Chongqing",
    "CZBANK": "China Zheshang Bank",
    "DBS": "DBS Bank",
    "EGBANK": "Evergrowing Bank",
    "GCB": "Bank of Guangzhou",
    "GDB": "China Guangfa Bank",
    "HKBEA": "The Bank of East Asia",
    "HSBANK": "Huishang Bank",
    "HSBC": "HSBC Bank (China)",
    "HXBANK": "Hua Xia Bank",
    "HZCB": "Bank of Hangzhou",
    "ICBC": "Industrial and Commercial Bank of China",
    "JSBANK": "Bank of Jiangsu",
    "MYBANK": "MYbank",
    "NBBANK": "Bank of Ningbo",
    "NJCB": "Bank of Nanjing",
    "PSBC": "Postal Savings Bank of China",
    "QDCCB": "Bank of Qingdao",
    "SCB": "Standard Chartered Bank (China)",
    "SHBANK": "Bank of Shanghai",
    "SHRCB": "Shanghai Rural Commercial Bank",
    "SPABANK": "Ping An Bank",
    "SPDB": "Shanghai Pudong Development Bank",
    "TCCB": "Bank of Tianjin",
    "XMBANK": "Xiamen Bank",
    "XWBANK": "XW Bank",
    "ZYB": "Zhongyuan Bank",
}


@dataclass(frozen=True)
class Bank:
    code: str  # the issuer code of the BIN table, e.g. "ICBC"
    name_zh: str  # the Chinese name of the BIN table
    name_en: str  # the English name; "" when none is on file (BANK_NAMES_EN)

    def label(self, language: str) -> str:
        """The bank's name for a reader of ``language`` (a Django language code, e.g. ``zh-hans``, ``en``)."""
        if language.lower().startswith("zh"):
            return self.name_zh
        return self.name_en or f"{self.name_zh} ({self.code})"


@lru_cache(maxsize=1)
def known_banks() -> dict[str, Bank]:
    """Every bank of the BIN table by code: the banks we have (incidents, filters, labels)."""
    banks: dict[str, Bank] = {}
    for info in bin_table():
        if info.bank_code and info.bank_code not in banks:
            banks[info.bank_code] = Bank(info.bank_code, info.bank_name, BANK_NAMES_EN.get(info.bank_code, ""))
    return banks


def bank_label(code: str, language: str | None = None) -> str:
    """The one name of a bank on every page: its name in the reader's language.

    Args:
        code: a bank code (``ICBC``); any case.
        language: a Django language code; default the active language.

    Returns:
        The Chinese name on Chinese pages, the English name (or, when none is on
        file, the Chinese name and the code) on others; an unknown code as it is,
        ``""`` for ``""``. CSV exports write the code, never this label.
    """
    from django.utils.translation import get_language

    bank = known_banks().get((code or "").strip().upper())
    if bank is None:
        return code or ""
    return bank.label(language or get_language() or "en")


def bank_is_known(code: str) -> bool:
    """Whether ``code`` (exact, upper case) is a bank of the BIN table."""
    return code in known_banks()


class BankCode(str):
    """A bank code in a table that is both shown and exported (the dashboard's sections).

    Pages show it by its label in the reader's language (Django templates render
    ``__html__``); CSV files write ``str(cell)``, the code itself.
    """

    __slots__ = ()

    def __html__(self) -> str:
        from django.utils.html import escape

        return escape(bank_label(self))
