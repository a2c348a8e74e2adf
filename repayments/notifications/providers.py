"""Delivery providers. Email uses Django's email framework; SMS and push sit behind
a small provider interface, with sandbox providers that behave like real ones
(number validation, devices that are not registered, provider references).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import phonenumbers
from django.conf import settings
from django.core.mail import send_mail
from django.utils.module_loading import import_string


class DeliveryError(Exception):
    """The provider refused or could not deliver; ``code`` says why (e.g. ``no_device``)."""

    def __init__(self, code: str, message: str = "") -> None:
        self.code = code
        super().__init__(f"{code}: {message}" if message else code)


@dataclass(frozen=True)
class Delivery:
    reference: str


class SmsProvider(Protocol):
    def send(self, *, phone: str, body: str) -> Delivery: ...


class PushProvider(Protocol):
    def send(self, *, customer_no: str, title: str, body: str) -> Delivery: ...


class SandboxSmsProvider:
    """Accepts valid mainland mobile numbers (``phonenumbers``); delivers nowhere."""

    def send(self, *, phone: str, body: str) -> Delivery:
        try:
            number = phonenumbers.parse(phone, "CN")
        except phonenumbers.NumberParseException:
            raise DeliveryError("invalid_number") from None
        if not phonenumbers.is_valid_number(number) or number.country_code != 86:
            raise DeliveryError("invalid_number")
        if len(body) > 500:
            raise DeliveryError("too_long")
        return Delivery(reference="SMS" + uuid.uuid4().hex[:16].upper())


class SandboxPushProvider:
    """About 60 % of customers have the app: decided from the customer number, stably."""

    def send(self, *, customer_no: str, title: str, body: str) -> Delivery:
        if int(hashlib.sha256(customer_no.encode()).hexdigest()[:4], 16) % 10 >= 6:
            raise DeliveryError("no_device", "no registered app installation")
        return Delivery(reference="PUSH" + uuid.uuid4().hex[:16].upper())


class EmailProvider:
    """Django's email framework: SMTP in production, files under ``var/mail`` in development."""

    def send(self, *, address: str, subject: str, body: str) -> Delivery:
        if not address:
            raise DeliveryError("no_address")
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address])
        return Delivery(reference="MAIL" + uuid.uuid4().hex[:16].upper())


@lru_cache(maxsize=4)
def _provider(path: str):
    return import_string(path)()


def sms_provider() -> SmsProvider:
    """The configured SMS provider (``settings.SMS_PROVIDER``)."""
    return _provider(settings.SMS_PROVIDER)


def push_provider() -> PushProvider:
    """The configured push provider (``settings.PUSH_PROVIDER``)."""
    return _provider(settings.PUSH_PROVIDER)


def email_provider() -> EmailProvider:
    return _provider("repayments.notifications.providers.EmailProvider")
