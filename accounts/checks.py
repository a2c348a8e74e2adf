"""System checks of the accounts app (``manage.py check --deploy``)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import DatabaseError

from accounts.demo import DEMO_USERNAMES

W001 = "accounts.W001"


@register(Tags.security, deploy=True)
def demo_staff_outside_demo_mode(app_configs=None, databases=None, **kwargs) -> list[Warning]:  # noqa: ARG001 - check API
    """``accounts.W001``: active demo staff exist in a database run without demo mode.

    Their logins are refused anyway (``accounts.backends``), but their passwords were
    printed and sit in ``var/demo-logins.txt``; a production database should not hold
    them at all. Reads the database; says nothing when there is none yet (a build
    step running ``check --deploy`` before ``migrate``).
    """
    if settings.DEMO_MODE:
        return []
    from accounts.models import User

    try:
        names = sorted(
            User.objects.filter(username__in=DEMO_USERNAMES, is_active=True).values_list("username", flat=True)
        )
    except DatabaseError:
        return []
    if not names:
        return []
    return [
        Warning(
            f"Active demo staff accounts exist but demo mode is off: {', '.join(names)}.",
            hint="Their logins are refused, but their passwords were printed (var/demo-logins.txt). "
            "Deactivate them in the admin (Staff users: untick Active); the audit trail keeps what they did.",
            id=W001,
        )
    ]
