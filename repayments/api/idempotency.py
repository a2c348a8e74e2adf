"""``Idempotency-Key`` for the API's POSTs that move money or grant relief.

A client sends a unique key (a UUID, say) with each such request and the same
key when it retries. The first request's response is stored and replayed for
every retry with the same key and body; a different body under the same key is
refused (422); a retry while the first is still running waits for it. This is
the behaviour of the IETF draft "The Idempotency-Key HTTP Header Field"
(draft-ietf-httpapi-idempotency-key-header) and of payment APIs such as Stripe's.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar, cast

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from repayments.api.errors import IdempotencyKeyReused
from repayments.api.permissions import staff_user
from repayments.models import IdempotencyKey

_P = ParamSpec("_P")
_V = TypeVar("_V")  # the viewset

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
# Printable ASCII without spaces, 8–255 characters (a UUID fits; an empty or huge key does not).
# One rule, enforced by `idempotent` and stated in the schema by IDEMPOTENCY_PARAMETER.
KEY_MIN_LENGTH = 8
KEY_MAX_LENGTH = 255
KEY_PATTERN = "^[!-~]+$"  # "!" is 0x21, "~" is 0x7e; a JSON-Schema (ECMA 262) pattern as well
_KEY_RE = re.compile(rf"^[!-~]{{{KEY_MIN_LENGTH},{KEY_MAX_LENGTH}}}$")

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type={"type": "string", "minLength": KEY_MIN_LENGTH, "maxLength": KEY_MAX_LENGTH, "pattern": KEY_PATTERN},
    location=OpenApiParameter.HEADER,
    required=True,
    description="A unique key per operation (8–255 printable ASCII characters, e.g. a UUID). "
    "Send the same key when retrying: the first response is replayed and nothing happens twice.",
)


# The function attribute that marks a handler wrapped by `idempotent` (read by `is_idempotent`).
_MARK = "idempotent"


class IdempotencyKeyMissing(exceptions.ValidationError):
    """400: the header is absent or malformed."""


class IdempotentRequest(Request):
    """The request a view method wrapped by :func:`idempotent` receives.

    Types only, no behaviour (like ``accounts.http.AuthenticatedHttpRequest``): the
    wrapper sets ``idempotency_key`` on DRF's own ``Request`` before calling the method.
    """

    idempotency_key: str  # the client's Idempotency-Key header, checked against KEY_PATTERN


def request_token(user_id: int, key: str) -> uuid.UUID:
    """The service-level one-time token derived from the client's key (stable across retries)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"baitiao-api:{user_id}:{key}")


def _fingerprint(request: Request) -> str:
    """SHA-256 of method, path and the parsed body in canonical form (key order does not matter).

    The parsed body, not the raw bytes: with a session, the CSRF check has already
    read the stream, and ``{"a":1,"b":2}`` is the same request as ``{"b":2,"a":1}``.
    Raises DRF's ParseError (400) for a malformed body.
    """
    digest = hashlib.sha256()
    for part in (request.method or "", request.get_full_path(), json.dumps(request.data, sort_keys=True, default=str)):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def idempotent(
    view_method: Callable[Concatenate[_V, IdempotentRequest, _P], Response],
) -> Callable[Concatenate[_V, Request, _P], Response]:
    """Decorate a DRF view method so that it runs at most once per ``Idempotency-Key``.

    The key row and the service's writes commit together, so a crash between them
    cannot record a success that did not happen. The wrapped method gets the key
    as ``request.idempotency_key`` (it declares ``request: IdempotentRequest``); the
    operation's schema states the header (:data:`IDEMPOTENCY_PARAMETER`,
    ``repayments/api/schema.py``), so no idempotent endpoint can leave it out.

    Raises (as API errors):
        ValidationError (400): the header is missing or malformed.
        IdempotencyKeyReused (422): the key was used for a different request.
        NotAuthenticated (401): no signed-in user (the view lacks ``RolePermission``).
    """

    @functools.wraps(view_method)
    def wrapper(self: _V, request: Request, *args: _P.args, **kwargs: _P.kwargs) -> Response:
        key = request.headers.get(HEADER, "")
        if not _KEY_RE.match(key):
            raise IdempotencyKeyMissing(
                {HEADER: [_("Send an Idempotency-Key header of 8–255 printable characters (e.g. a UUID).")]},
                code="idempotency_key_required",
            )
        user = staff_user(request)
        fingerprint = _fingerprint(request)
        with transaction.atomic():
            with connection.cursor() as cursor:
                # Waits on the unique index while another request with this key is running.
                cursor.execute(
                    f"INSERT INTO {IdempotencyKey._meta.db_table} "  # noqa: S608 - table name from the model
                    "(user_id, key, method, path, fingerprint, created_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (user_id, key) DO NOTHING RETURNING id",
                    [user.pk, key, request.method, request.path[:255], fingerprint, timezone.now()],
                )
                row = cursor.fetchone()
            if row is None:
                earlier = IdempotencyKey.objects.get(user=user, key=key)
                if earlier.fingerprint != fingerprint:
                    raise IdempotencyKeyReused()
                response = Response(earlier.response_body, status=earlier.status_code)
                response[REPLAY_HEADER] = "true"
                return response
            keyed = cast(IdempotentRequest, request)  # becomes one on the next line
            keyed.idempotency_key = key
            response = view_method(self, keyed, *args, **kwargs)
            if response.status_code >= 400:
                # Nothing was done: forget the key so that a corrected retry may use it.
                transaction.set_rollback(True)
                return response
            IdempotencyKey.objects.filter(pk=row[0]).update(
                status_code=response.status_code, response_body=response.data
            )
        return response

    setattr(wrapper, _MARK, True)  # read by the schema (repayments/api/schema.py)
    return wrapper


def is_idempotent(handler) -> bool:
    """Whether a view handler (function or bound method) is wrapped by :func:`idempotent`."""
    return bool(getattr(handler, _MARK, False))
