"""The request type of console views: signed in, with django-htmx's details.

Types only, no behaviour: ``login_required`` guarantees ``request.user`` is a
staff ``User`` (never ``AnonymousUser``) and ``HtmxMiddleware`` sets
``request.htmx`` on every request, which plain ``HttpRequest`` does not say.
"""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from accounts.models import User


class AuthenticatedHttpRequest(HttpRequest):
    """Annotate ``request`` with this in a view behind ``login_required`` (django-stubs' documented pattern)."""

    user: User
    htmx: HtmxDetails
