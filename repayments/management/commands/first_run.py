"""``python manage.py first_run``: on a fresh database, queue the demo collection (``make run``)."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django_q.tasks import async_task

from accounts.models import AuditEvent
from repayments.services.collection import CRITICAL_QUEUE
from repayments.services.first_run import FIRST_RUN_ACTION


class Command(BaseCommand):
    help = "Queue the first run's demo collection (a sample of due customers) unless it ran before."

    def handle(self, *args, **options):
        if not settings.GATEWAY_SANDBOX:
            self.stdout.write("Not against the sandbox bank (GATEWAY_SANDBOX off): no demo collection.")
            return
        if AuditEvent.objects.filter(action=FIRST_RUN_ACTION).exists():
            self.stdout.write("First-run collection already done; skipping.")
            return
        # On the critical lane: it starts with `make run` and is not behind the bulk lane's work.
        async_task("repayments.tasks.first_run_collection", cluster=CRITICAL_QUEUE)
        self.stdout.write(
            self.style.SUCCESS("First run: a demo collection of due customers is queued (worklist in about a minute).")
        )
