"""The console's role permissions, applied to API actions."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class RolePermission(BasePermission):
    """Allow an action when the user holds every Django permission the view names for it.

    A view sets ``action_permissions = {"list": [...], "approve": [...]}``; an
    action it does not name is refused, so a new action is closed until someone
    decides who may call it (the same rule as the console's matrix,
    docs/permissions.md).
    """

    message = _("Your role may not do this.")

    def has_permission(self, request: Request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        action = getattr(view, "action", None) or request.method.lower()
        required = view.action_permissions.get(action)
        if required is None:
            return False
        return request.user.has_perms(required)
