"""Loading the real UCI dataset and generating scale data."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from django.db import transaction

from accounts.models import User
from accounts.services import audit_record
from repayments.datasets.mapping import HolderRows, map_holders
from repayments.datasets.uci import DEFAULT_PATH, UciHolder, read_uci_holders
from repayments.models import Customer, DataSource
from repayments.services.bulk_load import bulk_merge_holders

UCI_CURRENCY = "TWD"  # the UCI amounts are New Taiwan dollars
GENERATED_PREFIX = "GEN-"


def dataset_load_uci(*, path: Path | str = DEFAULT_PATH, as_of: dt.date, actor: User | None = None) -> dict[str, int]:
    """Load the UCI credit-card file: every holder becomes customer ``UCI-nnnnnn``.

    The file is parsed and validated completely before the database is touched;
    the load is one transaction. Re-running adds nothing and changes nothing.

    Args:
        path: the CSV (default: the copy shipped in ``repayments/data/``).
        as_of: business-time date the snapshot describes (see ``docs/dataset.md``).
        actor: the staff user who ran it, or ``None`` for the system.

    Returns:
        Rows newly inserted per table.

    Raises:
        repayments.datasets.uci.DatasetError: the file is missing or malformed;
            nothing was written.
    """
    holders = read_uci_holders(path)
    with transaction.atomic():
        counts = bulk_merge_holders(
            map_holders(
                ((h, f"UCI-{h.id:06d}") for h in holders), as_of=as_of, currency=UCI_CURRENCY, source=DataSource.UCI
            )
        )
        audit_record(
            actor=actor,
            action="dataset.load_uci",
            target_type="dataset",
            target_id=Path(path).name,
            after={"as_of": as_of.isoformat(), "holders": len(holders), "inserted": counts},
        )
    return counts


def _next_generated_number() -> int:
    last = (
        Customer.objects.filter(customer_no__startswith=GENERATED_PREFIX)
        .order_by("-customer_no")
        .values_list("customer_no", flat=True)
        .first()
    )
    match = re.fullmatch(rf"{GENERATED_PREFIX}(\d+)", last or "")
    return int(match.group(1)) + 1 if match else 1


def _resampled(templates: list[UciHolder], number: int, seed: int) -> UciHolder:
    """A synthetic holder: a real holder's whole row drawn at random, amounts jittered ±15 %.

    Drawing whole rows keeps the real correlations between limit, bills, payments
    and status codes; the jitter (integer percent, no floats) keeps rows distinct.
    """
    rng = random.Random(seed * 1_000_003 + number)  # noqa: S311 - load data, not secrets
    template = templates[rng.randrange(len(templates))]
    factor = rng.randrange(85, 116)
    return UciHolder(
        id=number,
        limit=template.limit,
        sex=template.sex,
        education=template.education,
        marriage=template.marriage,
        age=template.age,
        pay_status=template.pay_status,
        bill_amounts=tuple(amount * factor // 100 for amount in template.bill_amounts),
        pay_amounts=tuple(amount * factor // 100 for amount in template.pay_amounts),
        defaulted_next_month=template.defaulted_next_month,
    )


def dataset_generate_load(
    *,
    customers: int,
    as_of: dt.date,
    seed: int = 2005,
    chunk_size: int = 20_000,
    progress: Callable[[int, dict[str, int]], None] | None = None,
) -> dict[str, int]:
    """Append ``customers`` synthetic holders (``GEN-nnnnnnn``) resampled from the UCI data.

    Each chunk of ``chunk_size`` holders is one transaction, so a crash keeps the
    chunks already written; numbering continues after the highest existing
    ``GEN-`` customer, so running it again adds more.

    Args:
        customers: how many holders to add (each with six bills).
        as_of: business-time date the bills are dated against.
        seed: random seed; the same seed and start number give the same holders.
        chunk_size: holders per transaction.
        progress: called after each chunk with the holders done and the chunk's counts.

    Returns:
        Total rows inserted per table.
    """
    templates = read_uci_holders(DEFAULT_PATH)
    start = _next_generated_number()
    totals: dict[str, int] = {}
    done = 0

    def chunk(first: int, size: int) -> Iterator[HolderRows]:
        return map_holders(
            (
                (_resampled(templates, number, seed), f"{GENERATED_PREFIX}{number:07d}")
                for number in range(first, first + size)
            ),
            as_of=as_of,
            currency=UCI_CURRENCY,  # amounts keep the NT$ scale they were drawn from
            source=DataSource.GENERATED,
        )

    while done < customers:
        size = min(chunk_size, customers - done)
        with transaction.atomic():
            counts = bulk_merge_holders(chunk(start + done, size))
        done += size
        for name, value in counts.items():
            totals[name] = totals.get(name, 0) + value
        if progress:
            progress(done, counts)
    with transaction.atomic():
        audit_record(
            actor=None,
            action="dataset.generate_load",
            target_type="dataset",
            target_id="generated",
            after={"as_of": as_of.isoformat(), "customers": customers, "seed": seed, "inserted": totals},
        )
    return totals
