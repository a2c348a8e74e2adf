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
    """``(bank_code, bank_name)`` of the banks our customers' cards are with, by name (for filters).

    Read from the card bindings (one index scan) and cached for ten minutes; a bank
    appears once even when the BIN table names it under several codes' rows.
    """
    from django.core.cache import cache

    from repayments.models import CardBinding

    choices = cache.get("repayments:bank_choices")
    if choices is None:
        rows = (
            CardBinding.objects.exclude(bank_code="")
            .values_list("bank_code", "bank_name")
            .order_by("bank_code")
            .distinct("bank_code")
        )
        choices = sorted(rows, key=lambda item: item[1])
        cache.set("repayments:bank_choices", choices, 600)
    return choices
