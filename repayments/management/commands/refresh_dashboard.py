"""``manage.py refresh_dashboard``: rebuild the dashboard rollups now (docs/dashboard.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Refresh the receivables dashboard's materialized rollups now (REFRESH MATERIALIZED VIEW CONCURRENTLY; "
        "readers are never blocked). Logged with trigger 'command'; audited as dashboard.refresh with --actor. "
        "Does nothing when another refresh is running."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--actor", help="username recorded in the audit trail (needs repayments.refresh_dashboard); default: system"
        )

    def handle(self, *args, **options):
        from accounts.models import User
        from repayments.services.dashboard import dashboard_refresh

        actor = None
        if options["actor"]:
            actor = User.objects.filter(username=options["actor"]).first()
            if actor is None or not actor.has_perm("repayments.refresh_dashboard"):
                raise CommandError(f"{options['actor']}: no such user with the refresh_dashboard permission")
        result = dashboard_refresh(trigger="command", actor=actor)
        if not result.refreshed:
            self.stdout.write("Another refresh is running; nothing was done (its numbers will be the newest).")
            return
        views = ", ".join(f"{view} {ms} ms" for view, ms in (result.view_ms or {}).items())
        self.stdout.write(f"Dashboard refreshed in {result.duration_ms} ms ({views}).")
