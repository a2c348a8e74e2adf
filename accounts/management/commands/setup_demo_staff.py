"""``python manage.py setup_demo_staff``: one demo user per role (demo mode only)."""

import os
import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.demo import demo_username
from accounts.roles import ROLES
from accounts.services import staff_ensure_demo_user

LOGINS_FILE_NAME = "demo-logins.txt"


class Command(BaseCommand):
    help = "Create demo staff users (agent, supervisor, analyst, auditor, admin) and print their logins."

    def handle(self, *args, **options):
        if not settings.DEMO_MODE:
            raise CommandError("Demo staff exist only in demo mode (DEBUG on, DEMO_MODE not off).")
        logins_file = settings.VAR_DIR / LOGINS_FILE_NAME
        known: dict[str, str] = {}
        if logins_file.exists():
            for line in logins_file.read_text(encoding="utf-8").splitlines():
                name, _, password = line.partition(" ")
                known[name] = password.strip()
        for role in ROLES:
            username = demo_username(role)
            password = known.get(username) or secrets.token_urlsafe(9)
            staff_ensure_demo_user(role=role, password=password, reset_password=username not in known)
            known[username] = password
        logins_file.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600 from the start: the passwords are never readable by others.
        fd = os.open(logins_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("".join(f"{name} {pw}\n" for name, pw in sorted(known.items())))
        self.stdout.write("Demo logins (demo mode only; also in var/demo-logins.txt):")
        for name, password in sorted(known.items()):
            self.stdout.write(f"  {name:<18} {password}")
