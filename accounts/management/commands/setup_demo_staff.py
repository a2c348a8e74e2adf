"""``python manage.py setup_demo_staff``: one demo user per role (demo mode only)."""

import secrets

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User
from accounts.roles import ADMIN, ROLES
from accounts.services import audit_record

LOGINS_FILE_NAME = "demo-logins.txt"


class Command(BaseCommand):
    help = "Create demo staff users (agent, supervisor, analyst, auditor, admin) and print their logins."

    def handle(self, *args, **options):
        if not settings.DEMO_MODE:
            raise CommandError("Demo staff exist only in demo mode (DEBUG on, DEMO_MODE not off).")
        logins_file = settings.VAR_DIR / LOGINS_FILE_NAME
        known = {}
        if logins_file.exists():
            for line in logins_file.read_text(encoding="utf-8").splitlines():
                name, _, password = line.partition(" ")
                known[name] = password.strip()
        with transaction.atomic():
            for role in ROLES:
                username = f"demo_{role}"
                password = known.get(username) or secrets.token_urlsafe(9)
                user, created = User.objects.get_or_create(
                    username=username, defaults={"first_name": f"Demo {role}", "is_staff": role == ADMIN}
                )
                if created or username not in known:
                    user.set_password(password)
                    user.save(update_fields=["password"])
                    audit_record(actor=None, action="staff.create_demo", target=user, after={"role": role})
                user.groups.set([Group.objects.get(name=role)])
                known[username] = password
        logins_file.parent.mkdir(parents=True, exist_ok=True)
        logins_file.write_text("".join(f"{name} {pw}\n" for name, pw in sorted(known.items())), encoding="utf-8")
        logins_file.chmod(0o600)
        self.stdout.write("Demo logins (demo mode only; also in var/demo-logins.txt):")
        for name, password in sorted(known.items()):
            self.stdout.write(f"  {name:<18} {password}")
