"""``python manage.py rotate_pii_keys``: re-encrypt stored personal data with the newest key.

Put the new key first in ``PII_ENCRYPTION_KEYS`` (keep the old ones after it), deploy,
run this, then ``--check``; only when it reports nothing left may the old key go.
Idempotent and resumable: values already under the first key are skipped.
"""

from django.core.management.base import BaseCommand, CommandError

from repayments.services.keys import pii_keys_rotate


class Command(BaseCommand):
    help = "Re-encrypt every encrypted personal value with the first key of PII_ENCRYPTION_KEYS (docs/operations.md)."

    def add_arguments(self, parser):
        parser.add_argument("--chunk", type=int, default=1000, help="rows per query and transaction (default 1000)")
        parser.add_argument(
            "--check",
            action="store_true",
            help="write nothing; exit with status 1 while any value is still under an older key",
        )

    def handle(self, *args, chunk: int, check: bool, **options):
        report = pii_keys_rotate(chunk=chunk, check_only=check)
        tables = ", ".join(f"{table} {count}" for table, count in report.per_table.items())
        if check:
            self.stdout.write(f"under an older key: {report.rotated} ({tables}); current: {report.current}")
            if report.rotated:
                raise CommandError("values remain under an older key: run rotate_pii_keys without --check")
            return
        self.stdout.write(f"rotated: {report.rotated} ({tables}); already current: {report.current}")
