"""Idle session timeout without a session write on every request."""

from __future__ import annotations

import time

from django.conf import settings

REFRESHED_AT = "_refreshed_at"


class IdleTimeoutMiddleware:
    """Extend a logged-in session's expiry at most once per ``SESSION_REFRESH_SECONDS``.

    Django's ``SESSION_SAVE_EVERY_REQUEST`` writes the session row on every
    request (three statements each time). Refreshing once a minute keeps the idle
    timeout (``SESSION_COOKIE_AGE``) to within that minute at a fraction of the writes.
    Place it after ``SessionMiddleware``.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and not session.is_empty() and request.user.is_authenticated:
            now = int(time.time())
            if now - session.get(REFRESHED_AT, 0) >= settings.SESSION_REFRESH_SECONDS:
                session[REFRESHED_AT] = now  # marks it modified: saved with a new expiry
        return response
