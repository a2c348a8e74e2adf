"""Links from an audit event to what it is about, registered by the apps that own the targets.

``accounts`` never imports ``repayments`` (an import contract): the audit event page
only knows a ``target_type`` (``repayments.bill``) and a ``target_id``. Each app
registers, in its ``AppConfig.ready``, a function per target type that turns the id
into a link (``repayments/audit_links.py``). A function returns ``None`` when the
target is gone or the reader may not open its page, so the page never shows a dead
or forbidden link.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from accounts.models import User


@dataclass(frozen=True)
class TargetLink:
    """A link to an audit event's target: what to show and where it leads."""

    label: str
    url: str


TargetLinker = Callable[[str, User], TargetLink | None]
_LINKERS: dict[str, TargetLinker] = {}


def register_target_link(target_type: str, linker: TargetLinker) -> None:
    """Register ``linker(target_id, reader)`` for events whose ``target_type`` is ``target_type`` (``app.model``)."""
    _LINKERS[target_type] = linker


def target_link(target_type: str, target_id: str, reader: User) -> TargetLink | None:
    """The link to an event's target for ``reader``, or ``None`` (no linker, gone, or not permitted)."""
    linker = _LINKERS.get(target_type)
    if linker is None or not target_id:
        return None
    return linker(target_id, reader)


def _user_link(target_id: str, reader: User) -> TargetLink | None:
    from django.urls import reverse

    if not target_id.isdigit() or not (reader.is_staff and reader.has_perm("accounts.view_user")):
        return None
    user = User.objects.filter(pk=int(target_id)).only("username").first()
    if user is None:
        return None
    return TargetLink(label=user.username, url=reverse("admin:accounts_user_change", args=[user.pk]))


register_target_link("accounts.user", _user_link)
