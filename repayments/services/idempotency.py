"""Housekeeping of the API's Idempotency-Key records (repayments/api/idempotency.py)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from repayments.models import IdempotencyKey


def idempotency_keys_purge(*, now: dt.datetime | None = None) -> int:
    """Delete records older than ``settings.API_IDEMPOTENCY_TTL_HOURS`` (hours); return the count.

    A retry after that runs anew, so clients must not retry older requests with the same key.
    """
    cutoff = (now or timezone.now()) - dt.timedelta(hours=settings.API_IDEMPOTENCY_TTL_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
