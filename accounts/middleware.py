"""Idle session timeout without a session write on every request; polling is not activity."""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect

REFRESHED_AT = "_refreshed_at"
# Self-refreshing pages add ``?poll=1`` to the requests they make by themselves: the
# import job page's meta refresh, the customer page's and the incident page's htmx
# polling (templates/console/...). A header would not do: htmx sends ``HX-Trigger``
# for clicks as well, and a meta refresh sends no header of its own.
POLL_PARAM = "poll"


def is_poll(request: HttpRequest) -> bool:
    """Whether ``request`` was made by a page refreshing itself, not by the person using it."""
    return request.GET.get(POLL_PARAM) == "1"


class IdleTimeoutMiddleware:
    """Extend a logged-in session's expiry at most once per ``SESSION_REFRESH_SECONDS``, never for a poll.

    Django's ``SESSION_SAVE_EVERY_REQUEST`` writes the session row on every
    request (three statements each time). Refreshing once a minute keeps the idle
    timeout (``SESSION_COOKIE_AGE``) to within that minute at a fraction of the writes.

    A page left open that polls (every 2 or 3 s) would otherwise keep its session
    alive forever: polls (:func:`is_poll`) are served while the session lives but do
    not extend it, so the session ends ``SESSION_COOKIE_AGE`` after the person's last
    own request, and the next poll is sent to the login page like any other request.
    An htmx poll gets that redirect as ``HX-Redirect``, so the whole page goes to the
    login form instead of htmx swapping the form into the polled panel.
    Place it after ``SessionMiddleware`` and ``AuthenticationMiddleware``.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and not session.is_empty() and request.user.is_authenticated and not is_poll(request):
            now = int(time.time())
            if now - session.get(REFRESHED_AT, 0) >= settings.SESSION_REFRESH_SECONDS:
                session[REFRESHED_AT] = now  # marks it modified: saved with a new expiry
        if request.headers.get("HX-Request") == "true" and _is_login_redirect(response):
            # htmx would follow a 302 itself and swap the login form into the panel.
            return HttpResponseClientRedirect(response["Location"])
        return response


def _is_login_redirect(response: HttpResponse) -> bool:
    return response.status_code == 302 and response.get("Location", "").startswith(resolve_url(settings.LOGIN_URL))
