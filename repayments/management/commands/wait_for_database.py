"""``python manage.py wait_for_database [--timeout 60]``: wait until PostgreSQL answers.

django-q2's ``qcluster`` exits at once ("failed to start", exit code 1) when the
database is unreachable as it starts (its ORM broker connects in the sentinel);
under honcho (``make run``) one exiting process stops all the others. The
Procfile runs this first, so a database that is briefly down at start (a restart,
a failover, the machine booting) makes the cluster report and wait, then start:
``wait_for_database && exec manage.py qcluster`` (``docs/resilience.md``).
"""

from __future__ import annotations

import logging
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connections

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Wait until the database accepts connections (reporting every failed try), or fail after --timeout."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait in all (default 60)")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between tries (default 1)")
        parser.add_argument("--database", default="default")

    def handle(self, *args, **options):
        deadline = time.monotonic() + options["timeout"]
        connection = connections[options["database"]]
        tries = 0
        while True:
            tries += 1
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
                break
            except OperationalError as exc:
                connection.close()
                if time.monotonic() >= deadline:
                    raise CommandError(
                        f"database unreachable after {options['timeout']:.0f} s ({tries} tries): {exc}"
                    ) from exc
                logger.error("database unreachable (try %d), retrying in %.0f s: %s", tries, options["interval"], exc)
                time.sleep(options["interval"])
        connection.close()
        if tries > 1:
            logger.warning("database reachable after %d tries", tries)
        self.stdout.write("database reachable")
