"""Failure taxonomy: each gateway failure code and the family that decides its remedy.

* binding (customer information is wrong): no retry on that card, binding marked
  invalid, a repair case for agents, the customer told at once on every channel;
* funds: a few retries over days, reminders;
* system (ours or the bank's): retry with backoff; a spike opens an incident;
* other (a code we do not know): one retry the next day.

The table with the retry schedule per family is in ``docs/repayment-engine.md``.
"""

from __future__ import annotations

from repayments.models import FailureCode, FailureFamily

FAILURE_FAMILIES: dict[str, FailureFamily] = {
    FailureCode.CARD_EXPIRED: FailureFamily.BINDING,
    FailureCode.CARD_CLOSED: FailureFamily.BINDING,
    FailureCode.CARD_NUMBER_INVALID: FailureFamily.BINDING,
    FailureCode.RESERVED_PHONE_MISMATCH: FailureFamily.BINDING,
    FailureCode.AUTHORIZATION_REVOKED: FailureFamily.BINDING,
    FailureCode.INSUFFICIENT_FUNDS: FailureFamily.FUNDS,
    FailureCode.EXCEEDS_LIMIT: FailureFamily.FUNDS,
    FailureCode.TIMEOUT: FailureFamily.SYSTEM,
    FailureCode.BANK_SYSTEM_ERROR: FailureFamily.SYSTEM,
    FailureCode.CHANNEL_UNAVAILABLE: FailureFamily.SYSTEM,
    FailureCode.NOT_DELIVERED: FailureFamily.SYSTEM,
}


def failure_family(code: str) -> FailureFamily:
    """The family of gateway failure ``code``; codes we do not know are ``other``."""
    return FAILURE_FAMILIES.get(code, FailureFamily.OTHER)
