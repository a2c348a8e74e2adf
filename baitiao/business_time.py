"""Business time: Asia/Shanghai calendar dates, DPD and delinquency buckets.

Datetimes are stored in UTC; a due date is a calendar date in the business time
zone (``settings.TIME_ZONE``). "Today" is :func:`django.utils.timezone.localdate`.
"""

from __future__ import annotations

import calendar
import datetime as dt

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone


def business_today() -> dt.date:
    """Today's date in the business time zone (Asia/Shanghai)."""
    return timezone.localdate()


def business_datetime(day: dt.date, at: dt.time) -> dt.datetime:
    """An aware datetime for ``at`` o'clock business time on ``day`` (09:00 Shanghai is 01:00 UTC)."""
    return timezone.make_aware(dt.datetime.combine(day, at), timezone.get_default_timezone())


def days_past_due(due_date: dt.date, as_of: dt.date) -> int:
    """Days past due (DPD) of a bill due on ``due_date``, counted on ``as_of``.

    Both are business-time calendar dates. The due date itself is DPD 0; the day
    after is DPD 1. Never negative.
    """
    return max((as_of - due_date).days, 0)


CYCLE_DAYS = 30  # one monthly billing cycle, in days past due


def cycles_past_due(dpd: int) -> int:
    """Billing cycles a delinquent account is behind with ``dpd`` days past due (DPD ≥ 0).

    One cycle per 30 days or part of them, at least one once a minimum payment is
    missed (DPD 0 inside the grace period): 1–30 DPD is one cycle, 31–60 two, as
    the M1, M2 … buckets count (card receivables practice: an account is reported
    in its delinquency cycle). The aging SQL (``repayments.services.delinquency``)
    computes the same. On a mid-month date the UCI ``PAY_0`` = n gives n.
    """
    if dpd < 0:
        raise ValueError(f"negative DPD: {dpd}")
    return max(1, -(-dpd // CYCLE_DAYS))


def bucket_ranges() -> list[tuple[str, int, int | None]]:
    """``(name, lowest DPD, highest DPD or None)`` per bucket, in order.

    Buckets come from ``settings.DELINQUENCY_BUCKETS``: pairs of a name and an
    inclusive upper DPD bound, the last one open (``None``). The default follows
    the industry's monthly convention: M0 current, M1 1–30, M2 31–60, M3 61–90,
    M4+ over 90.

    Raises:
        django.core.exceptions.ImproperlyConfigured: bounds not increasing, or the
            last bucket is not open-ended.
    """
    ranges: list[tuple[str, int, int | None]] = []
    lower = 0
    for index, (name, upper) in enumerate(settings.DELINQUENCY_BUCKETS):
        last = index == len(settings.DELINQUENCY_BUCKETS) - 1
        if (upper is None) != last or (upper is not None and upper < lower):
            raise ImproperlyConfigured("DELINQUENCY_BUCKETS: increasing bounds, only the last one None")
        ranges.append((name, lower, upper))
        lower = (upper or 0) + 1
    return ranges


def delinquency_bucket(dpd: int) -> str:
    """The bucket name (``M0`` … ``M4+``) for ``dpd`` days past due (see :func:`bucket_ranges`)."""
    for name, lower, upper in bucket_ranges():
        if dpd >= lower and (upper is None or dpd <= upper):
            return name
    raise ValueError(f"negative DPD: {dpd}")


def month_end(day: dt.date) -> dt.date:
    """The last calendar day of ``day``'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def add_months(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` after ``day``'s month (may be negative)."""
    index = day.year * 12 + (day.month - 1) + months
    return dt.date(index // 12, index % 12 + 1, 1)
