"""Demo staff (``demo_<role>``): who they are, and that they work in demo mode only.

``manage.py setup_demo_staff`` creates one user per role and prints their passwords
(also kept in ``var/demo-logins.txt``), for local runs with ``DEBUG`` on. A database
that once ran in demo mode keeps those users; with ``DEBUG`` or ``DEMO_MODE`` off
their passwords must open nothing. ``accounts.backends.RoleModelBackend`` refuses
them (login, existing sessions, permissions, so API tokens too) and
``accounts.checks`` makes ``manage.py check --deploy`` name them.
"""

from __future__ import annotations

from django.conf import settings

from accounts.roles import ROLES

DEMO_USERNAME_PREFIX = "demo_"
# Exactly the names setup_demo_staff creates: a real colleague called "demo_lee" is not a demo user.
DEMO_USERNAMES = frozenset(f"{DEMO_USERNAME_PREFIX}{role}" for role in ROLES)


def demo_username(role: str) -> str:
    """The demo user's username for ``role`` (one of ``accounts.roles.ROLES``)."""
    return f"{DEMO_USERNAME_PREFIX}{role}"


def is_demo_user(user) -> bool:
    """Whether ``user`` is one of the demo staff ``setup_demo_staff`` creates."""
    return user.get_username() in DEMO_USERNAMES


def demo_user_refused(user) -> bool:
    """Whether ``user`` is demo staff and demo mode is off (``settings.DEMO_MODE``, which needs ``DEBUG``)."""
    return not settings.DEMO_MODE and is_demo_user(user)
