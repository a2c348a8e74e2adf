"""Refuse control characters in what a request names: its path, query string and form fields.

PostgreSQL cannot hold a NUL character in text (psycopg refuses to send the query,
and ``jsonb`` refuses ``\\u0000``), so a ``%00`` typed or pasted into a search box,
a filter or an address reached the database and turned every page that looks the
value up into a 500. No console input legitimately holds a control character, so
:class:`RefuseControlCharactersMiddleware` answers such a request with a 400 before
any view runs, and no view, form or selector has to think of them again.

Tab, line feed and carriage return stay allowed in query and form values (a note's
lines, a value pasted with a tab); an address allows no control character at all.
Values are never echoed back (a search carries phone numbers): the message names
the parameter only.

The REST API (``/api/``) is left to its own validation, which answers in the API's
machine-readable error shape (``docs/api.md``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

# C0 controls and DEL, except tab, line feed and carriage return.
_CONTROL_IN_VALUE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_IN_PATH = re.compile(r"[\x00-\x1f\x7f]")
_FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
API_PREFIX = "/api/"


def control_character_problem(request: HttpRequest) -> str | None:
    """Why ``request`` is refused: a message naming where a control character is, or ``None``.

    Looks at the decoded path, every query parameter (names and values), and for
    form posts every form field and uploaded file name. Never returns the value.
    """
    if _CONTROL_IN_PATH.search(request.path):
        return _("The address holds a control character (such as a NUL byte); console addresses never do.")
    problem = _first_bad_field(request.GET.lists())
    if problem is not None:
        return _("The query parameter “%(name)s” holds a control character (such as a NUL byte); remove it.") % {
            "name": problem
        }
    if request.method == "POST" and request.content_type in _FORM_CONTENT_TYPES:
        try:
            fields, files = request.POST, request.FILES
        except OSError:  # the client went away mid-upload: CsrfViewMiddleware reports it as Django does
            return None
        problem = _first_bad_field(fields.lists())
        if problem is None:
            problem = _first_bad_field((name, [upload.name for upload in uploads]) for name, uploads in files.lists())
        if problem is not None:
            return _("The form field “%(name)s” holds a control character (such as a NUL byte); remove it.") % {
                "name": problem
            }
    return None


def _first_bad_field(items: Iterable[tuple[str, list]]) -> str | None:
    """The name of the first field whose name or a value holds a control character."""
    for name, values in items:
        if _CONTROL_IN_VALUE.search(name):
            return _("(a parameter name)")
        if any(isinstance(value, str) and _CONTROL_IN_VALUE.search(value) for value in values):
            return name
    return None


class RefuseControlCharactersMiddleware:
    """Answer 400 to a request whose path, query string or form fields hold a control character.

    Place it after ``LocaleMiddleware`` (the message is in the reader's language) and
    before anything that reads the request's values (sessions read only the cookie).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            problem = control_character_problem(request)
            if problem is not None:
                body = render_to_string("400.html", {"message": problem}, request=request)
                return HttpResponse(body, status=400)
        return self.get_response(request)
