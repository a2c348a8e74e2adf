"""django-q2 tasks: thin wrappers that load fresh state and call one service."""

from baitiao.business_time import business_today
from repayments.services.delinquency import bills_refresh_delinquency


def refresh_delinquency() -> dict[str, int]:
    """Daily 00:05 business time: age open bills to today (idempotent)."""
    return bills_refresh_delinquency(as_of=business_today())
