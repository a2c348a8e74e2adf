"""HMAC-SHA256 signatures over timestamp and body, in both directions.

Header ``X-Gateway-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
``HMAC-SHA256(secret, f"{t}.{body}")`` — the scheme Stripe documents for its
webhooks. A signature older or newer than ``tolerance`` seconds is refused, so a
captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

HEADER = "X-Gateway-Signature"

# What a well-formed header holds, and nothing else: unix seconds in ASCII digits (no
# sign, spaces, underscores or other scripts' digits, all of which int() would take;
# at most 15 digits, so the age check's float arithmetic cannot overflow) and a
# SHA-256 hex digest. fullmatch, so a trailing newline is refused too.
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_DIGEST = re.compile(r"[0-9a-f]{64}")


class SignatureError(Exception):
    """The signature header is missing, malformed, wrong or stale."""


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The header value for ``body`` signed now (or at ``timestamp``, unix seconds)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def parse_header(header: str | None) -> tuple[int, str]:
    """Split a signature header into its timestamp (unix seconds) and hex digest.

    Items are ``key=value`` separated by commas; unknown keys are ignored, so the
    scheme can grow (as Stripe's does), but ``t`` and ``v1`` must each appear once.

    Raises:
        SignatureError: missing or malformed, whatever the header holds (never
            another exception: the callback answers 403 before any other work).
    """
    if not header:
        raise SignatureError("missing signature")
    parts: dict[str, str] = {}
    for item in header.split(","):
        key, sep, value = item.partition("=")
        if not sep or key in parts:
            raise SignatureError("malformed signature header")
        parts[key] = value
    timestamp, digest = parts.get("t", ""), parts.get("v1", "")
    if not _TIMESTAMP.fullmatch(timestamp) or not _DIGEST.fullmatch(digest):
        raise SignatureError("malformed signature header")
    return int(timestamp), digest


def verify(header: str | None, body: bytes, secret: str, tolerance: int = 300, now: float | None = None) -> int:
    """Check ``header`` for ``body``; return its timestamp (unix seconds).

    Args:
        header: the ``X-Gateway-Signature`` value as received (any text, or ``None``).
        body: the exact request body the signature covers.
        secret: the shared HMAC secret.
        tolerance: seconds the timestamp may differ from ``now``.
        now: the present in unix seconds; default the clock.

    Raises:
        SignatureError: missing, malformed, wrong, or outside ``tolerance`` seconds of
            ``now``; no other exception for any header.
    """
    timestamp, given = parse_header(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("stale signature")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise SignatureError("signature mismatch")
    return timestamp
