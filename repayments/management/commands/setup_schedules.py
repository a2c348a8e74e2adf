"""``python manage.py setup_schedules``: create or update the queue schedules (idempotent)."""

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from repayments.schedules import SCHEDULES


class Command(BaseCommand):
    help = "Create or update every django-q2 schedule declared in repayments/schedules.py."

    @transaction.atomic
    def handle(self, *args, **options):
        for spec in SCHEDULES:
            schedule, created = Schedule.objects.select_for_update().get_or_create(
                name=spec.name,
                defaults={
                    "func": spec.func,
                    "schedule_type": Schedule.CRON,
                    "cron": spec.cron,
                    "repeats": -1,
                    "cluster": spec.cluster,
                },
            )
            if created and spec.run_when_created:
                schedule.next_run = timezone.now()  # the cluster runs it as soon as it starts
                schedule.save(update_fields=["next_run"])
            verb = "created" if created else "up to date"
            if not created and (schedule.func, schedule.cron) != (spec.func, spec.cron):
                schedule.func, schedule.cron, schedule.schedule_type = spec.func, spec.cron, Schedule.CRON
                schedule.next_run = schedule.calculate_next_run()
                schedule.save()
                verb = "updated"
            if not created and schedule.cluster != spec.cluster:
                # Moved to another lane (issue #16): only that cluster's scheduler picks it up now.
                schedule.cluster = spec.cluster
                schedule.save(update_fields=["cluster"])
                verb = "updated"
            lane = spec.cluster or "main"
            self.stdout.write(f"  schedule {spec.name:<28} {spec.cron:<12} {lane:<9} {verb}")
