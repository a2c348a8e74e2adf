"""Sending customer notifications and keeping every message on record."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone, translation

from repayments.models import (
    Bill,
    Customer,
    Notification,
    NotificationChannel,
    NotificationStatus,
    Reminder,
    RepaymentAttempt,
)
from repayments.notifications.providers import DeliveryError, email_provider, push_provider, sms_provider

logger = logging.getLogger(__name__)

ALL_CHANNELS = [NotificationChannel.PUSH, NotificationChannel.SMS, NotificationChannel.EMAIL]


def notification_render(*, event: str, language: str, context: dict[str, Any]) -> str:
    """The message text for ``event`` in ``language`` (``zh-hans`` or ``en``)."""
    with translation.override(language):
        return " ".join(render_to_string("notifications/messages.txt", {"event": event, **context}).split())


def _deliver(channel: str, customer: Customer, body: str) -> str:
    if channel == NotificationChannel.PUSH:
        return push_provider().send(customer_no=customer.customer_no, title="白条 Baitiao", body=body).reference
    if channel == NotificationChannel.SMS:
        return sms_provider().send(phone=customer.phone, body=body).reference
    if channel == NotificationChannel.EMAIL:
        return email_provider().send(address=customer.email, subject="白条 Baitiao", body=body).reference
    if channel == NotificationChannel.IN_APP:
        return "INAPP"  # stored message shown in the app's inbox: the record is the delivery
    raise DeliveryError("unknown_channel", channel)


def notification_send(
    *,
    customer: Customer,
    event: str,
    channels: list[str],
    fallback: bool,
    context: dict[str, Any],
    bill: Bill | None = None,
    reminder: Reminder | None = None,
    attempt: RepaymentAttempt | None = None,
    now: dt.datetime | None = None,
) -> list[Notification]:
    """Send one message on ``channels`` and record each try as a ``Notification``.

    Args:
        customer: the recipient; contact details are read decrypted, never stored in the body.
        event: a ``NotificationEvent`` value; selects the text.
        channels: ``NotificationChannel`` values, in order.
        fallback: stop at the first channel that delivers (reminders: push → SMS →
            email); otherwise try every channel (a failed debit: "tell the customer on
            every channel that still works").
        context: template values: ``amount`` (formatted with currency), ``bill_no``,
            ``last4``, ``due_date``, ``dpd``, ``reason``, ``retry_date``.
        bill / reminder / attempt: what the message is about, for the customer's history.
        now: the sending moment (UTC); default ``timezone.now()``.

    Returns:
        The notifications written, sent and failed.
    """
    body = notification_render(event=event, language=customer.language or "zh-hans", context=context)
    written = []
    for channel in channels:
        status, reference, error = NotificationStatus.SENT, "", ""
        try:
            reference = _deliver(channel, customer, body)
        except DeliveryError as exc:
            status, error = NotificationStatus.FAILED, exc.code
        except OSError as exc:  # SMTP and socket errors: recorded, never raised into the caller
            status, error = NotificationStatus.FAILED, f"transport: {exc.__class__.__name__}"
            logger.warning("notification %s via %s failed: %s", event, channel, exc.__class__.__name__)
        written.append(
            Notification(
                customer=customer,
                bill=bill,
                reminder=reminder,
                attempt=attempt,
                event=event,
                channel=channel,
                language=customer.language or "zh-hans",
                body=body,
                status=status,
                provider_reference=reference,
                error=error,
                sent_at=now or timezone.now(),
            )
        )
        if fallback and status == NotificationStatus.SENT:
            break
    return Notification.objects.bulk_create(written)
