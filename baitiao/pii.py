"""Personal data at rest: encrypted model fields and a keyed lookup hash.

Encryption is Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography`` through
``MultiFernet``, so keys rotate: the first key in ``settings.PII_ENCRYPTION_KEYS``
encrypts, every listed key decrypts, and ``pii_rotate`` re-encrypts with the first.
We wrap it ourselves rather than use a field package because the maintained
choices do not offer the keyed hash and last-digits columns that search needs.

Exact lookup (a full phone number typed by an agent) goes through
:func:`pii_hash`, an HMAC-SHA256 with ``settings.PII_HASH_KEY`` over the
normalised value, stored next to the ciphertext and indexed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

_NOT_ALNUM = re.compile(r"[\W_]+")


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet() -> MultiFernet:
    """The ``MultiFernet`` for the configured keys (cached per key set)."""
    return _fernet(tuple(settings.PII_ENCRYPTION_KEYS))


def pii_encrypt(value: str) -> str:
    """Encrypt ``value`` (UTF-8) and return the Fernet token as text."""
    return fernet().encrypt(value.encode()).decode()


def pii_decrypt(token: str) -> str:
    """Decrypt a token made by :func:`pii_encrypt`.

    Raises:
        cryptography.fernet.InvalidToken: no configured key opens it.
    """
    return fernet().decrypt(token.encode()).decode()


def pii_rotate(token: str) -> str:
    """Re-encrypt ``token`` with the current (first) key."""
    return fernet().rotate(token.encode()).decode()


def normalize_for_hash(value: str) -> str:
    """Digits and letters only, upper case, without a leading ``+86`` on a mobile number.

    ``+86 138 1234-5678``, ``138 1234-5678`` and ``13812345678`` hash alike; so do
    ``…002x`` and ``…002X``.
    """
    text = _NOT_ALNUM.sub("", value).upper()
    if len(text) == 13 and text.startswith("86") and text.isdigit():
        text = text[2:]
    return text


def pii_hash(value: str) -> str:
    """Keyed hash (HMAC-SHA256, hex) of the normalised value, for exact lookup."""
    return hmac.new(settings.PII_HASH_KEY.encode(), normalize_for_hash(value).encode(), hashlib.sha256).hexdigest()


class EncryptedTextField(models.TextField):
    """A text column holding a Fernet token; Python sees the clear text.

    Not searchable by content: pair it with a hash column (:func:`pii_hash`) and a
    clear last-digits column where lookup is needed.
    """

    description = "Text encrypted at rest (Fernet)"

    def from_db_value(self, value, expression, connection):  # noqa: ARG002 - Django API
        if value is None or value == "":
            return value
        try:
            return pii_decrypt(value)
        except InvalidToken as exc:
            raise InvalidToken(f"{self.model.__name__}.{self.name}: no configured PII key opens this value") from exc

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return pii_encrypt(value)
