"""HMAC-SHA256 signatures over timestamp and body, in both directions.

Header ``X-Gateway-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
``HMAC-SHA256(secret, f"{t}.{body}")`` — the scheme Stripe documents for its
webhooks. A signature older or newer than ``tolerance`` seconds is refused, so a
captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Gateway-Signature"


class SignatureError(Exception):
    """The signature header is missing, malformed, wrong or stale."""


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The header value for ``body`` signed now (or at ``timestamp``, unix seconds)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(header: str | None, body: bytes, secret: str, tolerance: int = 300, now: float | None = None) -> int:
    """Check ``header`` for ``body``; return its timestamp (unix seconds).

    Raises:
        SignatureError: missing, malformed, wrong, or outside ``tolerance`` seconds of ``now``.
    """
    if not header:
        raise SignatureError("missing signature")
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (ValueError, KeyError):
        raise SignatureError("malformed signature header") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("stale signature")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not given.isascii() or not hmac.compare_digest(expected, given):
        raise SignatureError("signature mismatch")
    return timestamp
