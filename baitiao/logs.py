"""Structured logs (structlog): JSON lines in production, a request id and the staff user id.

Every log line of the product, ours and the libraries' (Django, django-q2, httpx),
goes through the standard library's ``logging`` and is rendered by one
``structlog.stdlib.ProcessorFormatter`` (``settings.LOGGING``): JSON, one object a
line, when ``LOG_FORMAT=json`` (the default with ``DEBUG`` off), or a readable
console line when ``LOG_FORMAT=console`` (the default with ``DEBUG`` on). Every
process writes its log lines to standard error, never standard output: a management
command's standard output is what it was asked for (a token, a CSV) and nothing else.

Context comes from ``structlog.contextvars``: :class:`RequestContextMiddleware`
binds ``request_id`` and ``user_id`` (the staff user's numeric id, never a
username or email) for the duration of a request; the django-q2 ``pre_execute``
signal binds ``task_id`` and ``task_name`` in a worker (``repayments.apps``).

The rule is that our code never logs personal data (phones, national IDs, names,
emails, card numbers, gateway tokens): it logs ids and codes. :func:`redact_pii` is
defence in depth for what a library or an exception message might carry.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from baitiao.masking import mask_email, mask_national_id, mask_phone

if TYPE_CHECKING:  # the settings import this module: keep Django's request machinery out of it
    from django.http import HttpRequest, HttpResponse
    from structlog.typing import EventDict

    class IdentifiedHttpRequest(HttpRequest):
        """A request once ``RequestContextMiddleware`` has given it its id (for the type checker only)."""

        request_id: str


REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is honoured only when it is short and harmless (letters, digits, - _ . :);
# anything else (too long, spaces, control characters, a phone number) is replaced.
# At least one letter: an all-digit value could be a phone, a resident ID or a card number,
# and the request id is kept in logs and in the append-only audit trail.
_REQUEST_ID_OK = re.compile(r"^(?=[^A-Za-z]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9._:-]{7,63}$")

# Boundaries are "not an ASCII letter or digit", so that the digits inside a hex id
# (a uuid, a django-q2 process name) are not taken for a phone or a card, while
# "手机13812345678" or "phone: 138 1234 5678" still are.
# 18-character resident ID (GB 11643): 17 digits and a digit or X.
_NATIONAL_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
# Card-like numbers: 13 to 19 digits, optionally grouped by single spaces or hyphens.
_CARD = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z])")
# Mainland mobile numbers: 11 digits starting 1[3-9], optionally after +86 / 86.
_PHONE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d){8}(?![0-9A-Za-z])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def _mask_card(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "*" * (len(digits) - 4) + digits[-4:]


def _mask_phone(match: re.Match) -> str:
    return mask_phone(match.group(0))


def redact_text(text: str) -> str:
    """Mask resident IDs, card-like numbers, mainland mobile numbers and emails in ``text``.

    Order matters: an 18-digit ID is also 18 digits of "card", and a grouped card
    number contains 11-digit runs, so IDs go first, then cards, then phones.
    """
    text = _NATIONAL_ID.sub(lambda m: mask_national_id(m.group(0)), text)
    text = _CARD.sub(_mask_card, text)
    text = _PHONE.sub(_mask_phone, text)
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), text)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {key: _redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_redact(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 10**10:
        return redact_text(str(value))  # a phone or card passed as a number
    return value


def redact_pii(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask personal data in every value of the event (defence in depth).

    Runs after ``format_exc_info`` so exception messages and tracebacks are covered.
    Keys starting with ``_`` (structlog's own record references) are left alone.
    """
    return {key: (value if key.startswith("_") else _redact(value)) for key, value in event_dict.items()}


def _shared_processors() -> list[Callable]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def make_formatter(log_format: str = "json") -> structlog.stdlib.ProcessorFormatter:
    """The one formatter of ``settings.LOGGING``: ``"json"`` (one object a line) or ``"console"``.

    Used through ``{"()": "baitiao.logs.make_formatter", "log_format": ...}``; tests
    attach it to a handler to see exactly what production writes.
    """
    renderer = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_pii,
            renderer,
        ],
    )


def configure_structlog() -> None:
    """Route ``structlog.get_logger()`` calls through the standard library (and so our formatter)."""
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


class DropQueryStrings(logging.Filter):
    """Cut the query string out of a web server's request line (``"GET /x?q=138… HTTP/1.1"``).

    runserver's ``django.server`` records carry the request line as their first
    argument; a search by phone number would otherwise write the number to the log.
    """

    _QUERY = re.compile(r"\?[^ \"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple) and isinstance(record.args[0], str):
            record.args = (self._QUERY.sub("", record.args[0]), *record.args[1:])
        elif isinstance(record.msg, str) and "?" in record.msg and not record.args:
            record.msg = self._QUERY.sub("", record.msg)
        return True


access_logger = structlog.get_logger("baitiao.access")


def request_id_from(request: HttpRequest) -> str:
    """The incoming ``X-Request-ID`` when well formed, else a new random id (32 hex characters)."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    # Never a value that holds a phone-, ID- or card-length run of digits (it is kept in the audit trail).
    if incoming and _REQUEST_ID_OK.match(incoming) and not re.search(r"\d{11,}", incoming):
        return incoming
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Bind ``request_id`` and ``user_id`` to every log line of a request; write one access line.

    Place it early (right after ``SessionMiddleware``) so that the CSRF check's and
    every later middleware's lines carry the id; ``user_id`` is bound in
    ``process_view``, once ``AuthenticationMiddleware`` has run. The id is echoed in the
    ``X-Request-ID`` response header and kept on ``request.request_id`` (the audit
    trail stores it, see ``accounts.services.audit_record``). The access line has the
    method, the path without its query string (searches carry phone numbers), the
    status and the duration: never the query, the body or the username.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: IdentifiedHttpRequest) -> HttpResponse:
        structlog.contextvars.clear_contextvars()
        request_id = request_id_from(request)
        request.request_id = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id, user_id=None)
        started = time.monotonic()
        response = self.get_response(request)
        # A login or logout during the request changes who it is.
        structlog.contextvars.bind_contextvars(user_id=_user_id(request))
        response[REQUEST_ID_HEADER] = request_id
        access_logger.info(
            "request",
            method=request.method,
            path=request.path,
            status=response.status_code,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        # The context is not cleared here but when the response is closed (Django's
        # ``request_finished``, see :func:`clear_request_context`): Django logs 4xx
        # responses ("Not Found: …") after the middleware chain has returned, and
        # those lines should carry the request's id too.
        return response

    def process_view(self, request: HttpRequest, *_args: Any) -> None:
        structlog.contextvars.bind_contextvars(user_id=_user_id(request))


def _user_id(request: HttpRequest) -> int | None:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user.pk
    return None


def clear_request_context(**_: Any) -> None:
    """``request_finished`` receiver: the thread's next log lines belong to no request."""
    structlog.contextvars.clear_contextvars()


def current_request_id() -> str:
    """The request id bound to this context ("" outside a request)."""
    return str(structlog.contextvars.get_contextvars().get("request_id", ""))


def bind_task_context(sender: Any = None, func: Any = None, task: dict | None = None, **_: Any) -> None:
    """django-q2 ``pre_execute`` receiver: a worker's log lines carry the task's id and name."""
    structlog.contextvars.clear_contextvars()
    task = task or {}
    structlog.contextvars.bind_contextvars(
        task_id=task.get("id", ""), task_name=task.get("name", ""), task_func=str(task.get("func", ""))
    )


def clear_task_context(**_: Any) -> None:
    """django-q2 ``post_execute_in_worker`` receiver: forget the finished task."""
    structlog.contextvars.clear_contextvars()
