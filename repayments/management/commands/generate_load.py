"""``python manage.py generate_load --customers N``: scale data resampled from the UCI holders."""

import time

from django.core.management.base import BaseCommand, CommandError

from repayments.management.commands.load_uci_dataset import parse_as_of
from repayments.services.datasets import dataset_generate_load


class Command(BaseCommand):
    help = "Append N synthetic holders (GEN-nnnnnnn), each with six bills, resampled from the real UCI holders."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, required=True, help="how many holders to add")
        parser.add_argument("--as-of", help="business date the bills are dated against (default: today)")
        parser.add_argument("--seed", type=int, default=2005)
        parser.add_argument("--chunk-size", type=int, default=20_000)

    def handle(self, *args, **options):
        if options["customers"] <= 0:
            raise CommandError("--customers must be a positive number")
        as_of = parse_as_of(options["as_of"])
        started = time.perf_counter()

        def progress(done, _counts):
            rate = done / max(time.perf_counter() - started, 1e-9)
            self.stdout.write(f"  {done:,} / {options['customers']:,} holders ({rate:,.0f}/s)")

        totals = dataset_generate_load(
            customers=options["customers"],
            as_of=as_of,
            seed=options["seed"],
            chunk_size=options["chunk_size"],
            progress=progress,
        )
        elapsed = time.perf_counter() - started
        inserted = ", ".join(f"{name} {value:,}" for name, value in totals.items())
        self.stdout.write(self.style.SUCCESS(f"Generated as of {as_of}: {inserted} in {elapsed:.1f} s"))
