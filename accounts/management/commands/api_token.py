"""``manage.py api_token <username> --days 90 --reason "…"``: issue an API token (printed once)."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import api_token_issue


class Command(BaseCommand):
    help = "Issue a REST API token for a staff user; it is printed once and stored hashed."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--days", type=int, default=90, help="Validity in days (1–365).")
        parser.add_argument("--reason", required=True, help="Why: kept in the audit trail.")

    def handle(self, *args, username: str, days: int, reason: str, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        try:
            token = api_token_issue(user=user, days=days, reason=reason)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(token)
