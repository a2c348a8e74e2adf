"""Authentication backend: Django's ModelBackend reading a user's permissions in one query."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Q

from accounts.demo import demo_user_refused


class RoleModelBackend(ModelBackend):
    """``ModelBackend`` whose permission lookup is one query instead of two; demo staff only in demo mode.

    Django reads the user's own and their groups' permissions separately; staff here
    get permissions through role groups (``accounts.roles``), and every console page
    checks some, so one UNION-free query (``OR`` over both relations) saves a round
    trip per request. The cache attributes are the ones ModelBackend uses.

    Demo staff (``accounts.demo``) are refused outside demo mode here, at every
    request, rather than deactivated at startup: nothing is written when a process
    starts (several start at once, some before ``migrate``), turning demo mode back on
    gives them back, and one check covers every way in. ``user_can_authenticate``
    refuses the password login and, through ``get_user``, a session opened earlier;
    an empty permission set refuses everything an API token could do.
    """

    def user_can_authenticate(self, user):
        return super().user_can_authenticate(user) and not demo_user_refused(user)

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None or demo_user_refused(user_obj):
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                perms = Permission.objects.all()
            else:
                perms = Permission.objects.filter(Q(user=user_obj) | Q(group__user=user_obj))
            user_obj._perm_cache = {
                f"{app_label}.{codename}"
                for app_label, codename in perms.values_list("content_type__app_label", "codename").distinct()
            }
        return user_obj._perm_cache
