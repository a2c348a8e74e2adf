"""``python manage.py load_uci_dataset [PATH] [--as-of YYYY-MM-DD]``."""

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError

from baitiao.business_time import business_today
from repayments.datasets.uci import DEFAULT_PATH, DatasetError
from repayments.models import Customer, DataSource
from repayments.services.datasets import dataset_load_uci


def parse_as_of(value: str | None) -> dt.date:
    """``--as-of`` as a date; today in business time when omitted."""
    if not value:
        return business_today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--as-of must be a date like 2026-11-30, not {value!r}") from None


class Command(BaseCommand):
    help = "Load the UCI credit-card dataset (30,000 real holders) as customers, lines, bills and attempts."

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", default=str(DEFAULT_PATH), help="CSV file (default: shipped copy)")
        parser.add_argument("--as-of", help="business date the snapshot describes (default: today, Asia/Shanghai)")
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when UCI customers are already loaded (make run)"
        )

    def handle(self, *args, **options):
        as_of = parse_as_of(options["as_of"])
        if options["if_empty"] and Customer.objects.filter(source=DataSource.UCI).exists():
            self.stdout.write("UCI dataset already loaded; skipping.")
            return
        started = time.perf_counter()
        try:
            counts = dataset_load_uci(path=options["path"], as_of=as_of)
        except DatasetError as exc:
            raise CommandError(f"Nothing was loaded. {exc}") from exc
        elapsed = time.perf_counter() - started
        inserted = ", ".join(f"{name} {value:,}" for name, value in counts.items())
        self.stdout.write(self.style.SUCCESS(f"UCI dataset as of {as_of}: inserted {inserted} in {elapsed:.1f} s"))
