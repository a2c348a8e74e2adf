"""Encryption-key rotation: re-encrypt every stored personal value with the newest key.

``settings.PII_ENCRYPTION_KEYS`` is a MultiFernet list, newest first: the first key
encrypts, every key decrypts. After a new key is put first, old values still open
with the old key; :func:`pii_keys_rotate` rewrites each one under the new key so
that the old key can then be removed (procedure: docs/operations.md).

A value already readable with the first key is left alone, so the job is
idempotent and resumable: after a crash, run it again and it carries on with what
is left. Rows are read in primary-key chunks (bounded memory) and written back
with one ``UPDATE … FROM unnest(ids, old tokens, new tokens)`` per column and chunk,
matching on the token read: a value changed meanwhile by the application (which
already encrypts with the first key) is not overwritten.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import connection, transaction

from accounts.models import User
from accounts.services import audit_record
from baitiao.pii import fernet

logger = logging.getLogger(__name__)

# (table, encrypted text columns, encrypted binary columns): every place a Fernet token is stored.
ENCRYPTED_COLUMNS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("repayments_customer", ("name", "phone", "national_id", "email"), ()),
    ("repayments_cardbinding", ("reserved_phone",), ()),
    ("repayments_importuploadchunk", (), ("data",)),  # a piece of an upload waiting to be imported
)


@dataclass
class RotationReport:
    rotated: int = 0  # values re-encrypted under the first key
    current: int = 0  # values already under the first key
    per_table: dict[str, int] = field(default_factory=dict)  # rotated per table


def _is_current(newest: Fernet, token: bytes) -> bool:
    try:
        newest.decrypt(token)
    except InvalidToken:
        return False
    return True


def pii_keys_rotate(*, chunk: int = 1000, check_only: bool = False, actor: User | None = None) -> RotationReport:
    """Re-encrypt every encrypted value not yet under the first of ``settings.PII_ENCRYPTION_KEYS``.

    Args:
        chunk: rows read per query and written per transaction.
        check_only: count what would be rotated, write nothing (``rotated`` is then
            the number of values still under an older key).
        actor: the staff user running it (``None``: the system); recorded in the audit event.

    Returns:
        The counts. One audit event (``pii.rotate_keys``) is written per run that rotated something.

    Raises:
        cryptography.fernet.InvalidToken: a stored value no configured key opens
            (a key was removed too early): the run stops at that row, nothing of
            its chunk is written.
        ValueError: ``chunk`` below 1.
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    newest = Fernet(settings.PII_ENCRYPTION_KEYS[0].encode())
    multi = fernet()
    report = RotationReport()
    for table, text_columns, binary_columns in ENCRYPTED_COLUMNS:
        columns = (*text_columns, *binary_columns)
        select = f"SELECT id, {', '.join(columns)} FROM {table} WHERE id > %s ORDER BY id LIMIT %s"  # noqa: S608
        last_id = 0
        rotated_here = 0
        # Uploads can be megabytes each: a few at a time.
        limit = min(chunk, 10) if binary_columns else chunk
        while True:
            with connection.cursor() as cursor:
                cursor.execute(select, [last_id, limit])
                rows = cursor.fetchall()
            if not rows:
                break
            last_id = rows[-1][0]
            updates: dict[str, list[tuple[int, object, object]]] = {column: [] for column in columns}
            for row in rows:
                for column, value in zip(columns, row[1:], strict=True):
                    if not value:
                        continue
                    binary = column in binary_columns
                    token = bytes(value) if binary else value.encode()
                    if _is_current(newest, token):
                        report.current += 1
                        continue
                    new = multi.rotate(token)  # raises InvalidToken when no key opens it
                    updates[column].append((row[0], bytes(value) if binary else value, new if binary else new.decode()))
            changed = sum(len(items) for items in updates.values())
            if changed and not check_only:
                with transaction.atomic(), connection.cursor() as cursor:
                    for column, items in updates.items():
                        if not items:
                            continue
                        kind = "bytea" if column in binary_columns else "text"
                        ids, olds, news = (list(part) for part in zip(*items, strict=True))
                        # One statement per column and chunk; a value changed since the read is skipped.
                        cursor.execute(
                            f"UPDATE {table} AS t SET {column} = u.new"  # noqa: S608 - names from ENCRYPTED_COLUMNS
                            f" FROM unnest(%s::bigint[], %s::{kind}[], %s::{kind}[]) AS u(id, old, new)"
                            f" WHERE t.id = u.id AND t.{column} = u.old",
                            [ids, olds, news],
                        )
            rotated_here += changed
        report.per_table[table] = rotated_here
        report.rotated += rotated_here
    if report.rotated and not check_only:
        with transaction.atomic():
            audit_record(
                actor=actor,
                action="pii.rotate_keys",
                target_type="job",
                after={
                    "rotated": report.rotated,
                    "per_table": report.per_table,
                    "keys": len(settings.PII_ENCRYPTION_KEYS),
                },
            )
    logger.info(
        "pii key rotation: %s rotated, %s already current%s",
        report.rotated,
        report.current,
        " (check only)" if check_only else "",
    )
    return report
