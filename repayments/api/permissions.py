"""The console's role permissions, applied to API actions."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.models import User


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
        action = getattr(view, "action", None) or (request.method or "").lower()
        required = view.action_permissions.get(action)
        if required is None:
            return False
        return request.user.has_perms(required)


def staff_user(request: Request) -> User:
    """The signed-in staff user of an API request that :class:`RolePermission` let through.

    DRF types ``request.user`` as ``User | AnonymousUser``; behind ``RolePermission``
    it is always a ``User``, and this says so to the type checker (the API's
    counterpart of ``accounts.http.AuthenticatedHttpRequest``).

    Args:
        request: a DRF request, after the view's permission checks.

    Raises:
        NotAuthenticated: (401) the request has no signed-in user, i.e. the view is
            not guarded by ``RolePermission`` (a programming error, answered as DRF would).
    """
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user
