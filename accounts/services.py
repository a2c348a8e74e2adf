"""Writes of the accounts app: the audit trail."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from accounts.demo import demo_user_refused, demo_username
from accounts.models import AuditEvent, User
from baitiao.logs import current_request_id

SYSTEM_ACTOR = "system"


def audit_record(
    *,
    actor: User | None,
    action: str,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str = "",
    customer: models.Model | None = None,
    customer_no: str = "",
    reason: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    ip_address: str | None = None,
    request_id: str = "",
) -> AuditEvent:
    """Append one event to the audit trail and return it.

    Call it inside the service's ``transaction.atomic`` so the event commits (or
    rolls back) with the change it describes.

    Args:
        actor: the staff user, or ``None`` for the system (jobs, loaders).
        action: dotted verb, e.g. ``"customer.reveal"``, ``"dataset.load"``.
        target: the model instance acted on; sets ``target_type`` (``app.model``) and ``target_id``.
        customer: the ``repayments.Customer`` the action concerns (the target itself when
            it is one); stored as its ``customer_no``.
        customer_no: the same, when only the number is at hand.
        reason: the reason the actor gave (required by the calling service where policy says so).
        before / after: JSON-serialisable snapshots of the changed fields only; never
            clear personal data.
        ip_address: the request's client address, when there is a request.
        request_id: groups events; by default the id of the web request in progress
            (``baitiao.logs``), so an event leads to that request's log lines.
    """
    if target is not None:
        target_type = target._meta.label_lower
        target_id = str(target.pk)
        if customer is None and target._meta.label_lower == "repayments.customer":
            customer = target
    return AuditEvent.objects.create(
        actor=actor,
        actor_label=actor.get_username() if actor else SYSTEM_ACTOR,
        action=action,
        target_type=target_type,
        target_id=target_id,
        customer_no=getattr(customer, "customer_no", "") or customer_no,
        reason=reason,
        before=before,
        after=after,
        ip_address=ip_address,
        request_id=request_id or current_request_id(),
    )


@dataclass(frozen=True)
class AuditEntry:
    """One event of :func:`audit_record_many`: what it is about and the changed fields.

    ``before`` / ``after`` are JSON-serialisable snapshots of the changed fields only;
    never clear personal data.
    """

    target_type: str
    target_id: str
    customer_no: str = ""
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


def audit_record_many(
    *,
    actor: User | None,
    action: str,
    entries: Iterable[AuditEntry],
    reason: str = "",
    occurred_at: dt.datetime | None = None,
    request_id: str = "",
    batch_size: int = 2000,
) -> int:
    """Append one event per entry, all of the same actor and action, in bulk INSERTs.

    For set-based services that change thousands of rows at once (incident relief): the
    events are rows like :func:`audit_record`'s, inserted ``batch_size`` at a time.
    Nothing is ever updated or deleted (the table's trigger refuses it). Call it inside
    the service's ``transaction.atomic``.

    Args:
        actor: the staff user, or ``None`` for the system.
        action: dotted verb, e.g. ``"relief.apply"``.
        entries: the events' targets and snapshots.
        reason: the reason the actor gave, the same for every event.
        occurred_at: when (UTC, aware); default now.
        request_id: groups the events (e.g. a relief batch's audit id); default the web request's id.
        batch_size: rows per INSERT.

    Returns:
        How many events were written.
    """
    when = occurred_at or timezone.now()
    label = actor.get_username() if actor else SYSTEM_ACTOR
    group = request_id or current_request_id()
    events = (
        AuditEvent(
            occurred_at=when,
            actor=actor,
            actor_label=label,
            action=action,
            target_type=entry.target_type,
            target_id=entry.target_id,
            customer_no=entry.customer_no,
            reason=reason,
            before=entry.before,
            after=entry.after,
            request_id=group,
        )
        for entry in entries
    )
    written = 0
    while batch := list(islice(events, batch_size)):
        AuditEvent.objects.bulk_create(batch)
        written += len(batch)
    return written


@transaction.atomic
def staff_ensure_demo_user(*, role: str, password: str, reset_password: bool) -> tuple[User, bool]:
    """Create (or repair) the demo user ``demo_<role>`` holding exactly that role.

    Demo mode only; the caller checks ``settings.DEMO_MODE``.

    Args:
        role: one of ``accounts.roles.ROLES``.
        password: the clear demo password to set.
        reset_password: set ``password`` even when the user exists.

    Returns:
        The user and whether it was created.
    """
    from django.contrib.auth.models import Group

    from accounts.roles import ADMIN

    user, created = User.objects.get_or_create(
        username=demo_username(role), defaults={"first_name": f"Demo {role}", "is_staff": role == ADMIN}
    )
    if created or reset_password:
        user.set_password(password)
        user.save(update_fields=["password"])
    user.groups.set([Group.objects.get(name=role)])
    if created:
        audit_record(actor=None, action="staff.create_demo", target=user, after={"role": role})
    return user, created


def api_token_issue(*, user: User, days: int, reason: str, issued_by: User | None = None) -> str:
    """Issue an API token for ``user`` valid ``days`` days; return it (shown once, stored hashed).

    The token carries the user's role permissions (docs/api.md). Knox keeps only a
    hash; a lost token is revoked and a new one issued.

    Raises:
        ValueError: ``days`` outside 1 … 365, an empty reason, an inactive user, or a
            demo user outside demo mode (``accounts.demo``).
    """
    import datetime as dt

    from knox.models import AuthToken

    if not 1 <= days <= 365:
        raise ValueError(f"days must be between 1 and 365; got {days}")
    if not reason.strip():
        raise ValueError("say why the token is issued")
    if not user.is_active:
        raise ValueError(f"user {user.username} is inactive")
    if demo_user_refused(user):
        raise ValueError(f"user {user.username} is demo staff: demo users work in demo mode only")
    with transaction.atomic():
        instance, token = AuthToken.objects.create(user=user, expiry=dt.timedelta(days=days))
        audit_record(
            actor=issued_by,
            action="api_token.issue",
            target=user,
            reason=reason.strip(),
            after={"token_key": instance.token_key, "expiry": instance.expiry.isoformat()},
        )
    return token
