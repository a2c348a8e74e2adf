"""Loading the real UCI dataset and generating scale data."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import random
import re
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from functools import lru_cache, partial
from pathlib import Path

from django.db import connection, transaction

from accounts.models import User
from accounts.services import audit_record
from repayments.datasets.copyrows import EncodedChunk, encode_holders
from repayments.datasets.mapping import map_holder, map_holders
from repayments.datasets.uci import DEFAULT_PATH, UciHolder, read_uci_holders
from repayments.models import Customer, DataSource
from repayments.services.bulk_load import holders_bulk_merge
from repayments.services.delinquency import bills_refresh_delinquency

GENERATE_LOCK_ID = 7_000_350  # advisory lock key for generate_load (UCI dataset id 350)
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
        counts = holders_bulk_merge(
            chunks=map_holders(
                ((h, f"UCI-{h.id:06d}") for h in holders), as_of=as_of, currency=UCI_CURRENCY, source=DataSource.UCI
            )
        )
        # Overdue bills get their DPD and late fees by the same rule as every night.
        bills_refresh_delinquency(as_of=as_of, audit=False)
        audit_record(
            actor=actor,
            action="dataset.load_uci",
            target_type="dataset",
            target_id=Path(path).name,
            after={"as_of": as_of.isoformat(), "holders": len(holders), "inserted": counts},
        )
    return counts


class GenerateLoadBusy(Exception):
    """Another ``generate_load`` is numbering customers right now."""


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


def _generated_batch(numbers: range, *, seed: int, as_of: dt.date) -> EncodedChunk:
    """Worker side of :func:`dataset_generate_load`: resample, map and COPY-encode one batch."""
    templates = read_uci_templates()
    return encode_holders(
        map_holder(
            _resampled(templates, number, seed),
            customer_no=f"{GENERATED_PREFIX}{number:07d}",
            as_of=as_of,
            currency=UCI_CURRENCY,  # amounts keep the NT$ scale they were drawn from
            source=DataSource.GENERATED,
        )
        for number in numbers
    )


@lru_cache(maxsize=1)
def read_uci_templates() -> list[UciHolder]:
    """The shipped UCI holders, parsed once per process (workers inherit them by fork)."""
    return read_uci_holders(DEFAULT_PATH)


def dataset_generate_load(
    *,
    customers: int,
    as_of: dt.date,
    seed: int = 2005,
    chunk_size: int = 20_000,
    progress: Callable[[int, dict[str, int]], None] | None = None,
    actor: User | None = None,
) -> dict[str, int]:
    """Append ``customers`` synthetic holders (``GEN-nnnnnnn``) resampled from the UCI data.

    Each chunk of ``chunk_size`` holders is one transaction, so a crash keeps the
    chunks already written; numbering continues after the highest existing
    ``GEN-`` customer, so running it again adds more. Resampling and mapping run
    in a process pool one chunk ahead of the database writes.

    Args:
        customers: how many holders to add (each with six bills).
        as_of: business-time date the bills are dated against.
        seed: random seed; the same seed and start number give the same holders.
        chunk_size: holders per transaction.
        progress: called after each chunk with the holders done and the chunk's counts.
        actor: the staff user who ran it, or ``None`` for the system.

    Returns:
        Total rows inserted per table.

    Raises:
        GenerateLoadBusy: another ``generate_load`` holds the numbering lock.
    """
    read_uci_templates()
    with connection.cursor() as cursor:  # session lock: one generator at a time numbers GEN- customers
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [GENERATE_LOCK_ID])
        if not cursor.fetchone()[0]:
            raise GenerateLoadBusy("another generate_load is running")
    try:
        return _generate(
            customers=customers, as_of=as_of, seed=seed, chunk_size=chunk_size, progress=progress, actor=actor
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [GENERATE_LOCK_ID])


def _generate(
    *, customers, as_of, seed, chunk_size, progress, actor
) -> dict[str, int]:  # parse before forking so every worker inherits it
    start = _next_generated_number()
    end = start + customers
    totals: dict[str, int] = {}
    done = 0
    batch = 2_000
    work = partial(_generated_batch, seed=seed, as_of=as_of)
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1, mp_context=multiprocessing.get_context("fork")) as pool:
        in_flight: deque[list[Future]] = deque()

        def write_oldest_chunk() -> None:
            nonlocal done
            futures = in_flight.popleft()
            chunks = [future.result() for future in futures]
            with transaction.atomic():
                counts = holders_bulk_merge(chunks=chunks)
            done += sum(chunk["stage_customer"][0] for chunk in chunks)
            for name, value in counts.items():
                totals[name] = totals.get(name, 0) + value
            if progress:
                progress(done, counts)

        for first in range(start, end, chunk_size):
            last = min(first + chunk_size, end)
            in_flight.append([pool.submit(work, range(a, min(a + batch, last))) for a in range(first, last, batch)])
            if len(in_flight) > 1:  # keep one chunk being mapped while the previous one is written
                write_oldest_chunk()
        while in_flight:
            write_oldest_chunk()
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="dataset.generate_load",
            target_type="dataset",
            target_id="generated",
            after={"as_of": as_of.isoformat(), "customers": customers, "seed": seed, "inserted": totals},
        )
    return totals
