"""Every django-q2 schedule of the product, declared in one place.

``python manage.py setup_schedules`` creates or updates them idempotently (by
name). Cron expressions are evaluated by django-q2 in ``settings.TIME_ZONE``,
the business time zone: ``5 0 * * *`` fires at 00:05 Asia/Shanghai (16:05 UTC).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str
    cron: str  # business time (Asia/Shanghai)
    description: str


SCHEDULES: tuple[ScheduleSpec, ...] = (
    ScheduleSpec(
        name="refresh-delinquency",
        func="repayments.tasks.refresh_delinquency",
        cron="5 0 * * *",
        description="Age open bills: overdue status and DPD (00:05 business time).",
    ),
)
