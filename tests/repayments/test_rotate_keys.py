"""Key rotation (issue #8): rotate_pii_keys re-encrypts every personal value with the newest key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import AuditEvent
from baitiao.pii import pii_decrypt
from repayments.models import CardBinding, Customer
from tests.factories import CardBindingFactory

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
# The newest key is the dev key the session's 30,000 UCI holders are encrypted with, so
# the run skips them (they are current) and rotates only the rows written under OLD_KEY.
NEW_KEY = "ZGV2LW9ubHktcGlpLWtleS0wMDAwMDAwMDAwMDAwMDA="


def raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608 - fixed names
        return cursor.fetchone()[0]


def test_rotation_moves_every_value_to_the_new_key_and_a_second_run_does_nothing(settings, capsys):
    settings.PII_ENCRYPTION_KEYS = [OLD_KEY]
    binding = CardBindingFactory(customer__phone="13700001234", customer__email="rot@example.com")
    customer = binding.customer
    old_token = raw("repayments_customer", "phone", customer.pk)
    assert Fernet(OLD_KEY.encode()).decrypt(old_token.encode()) == b"13700001234"

    settings.PII_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    with pytest.raises(CommandError):
        call_command("rotate_pii_keys", "--check")
    call_command("rotate_pii_keys", "--chunk", "500")
    assert "rotated: 5 (repayments_customer 4, repayments_cardbinding 1" in capsys.readouterr().out

    # Readable with the new key alone: the old key can now be removed.
    settings.PII_ENCRYPTION_KEYS = [NEW_KEY]
    new_token = raw("repayments_customer", "phone", customer.pk)
    assert new_token != old_token
    assert pii_decrypt(new_token) == "13700001234"
    assert Customer.objects.get(pk=customer.pk).email == "rot@example.com"
    assert CardBinding.objects.get(pk=binding.pk).reserved_phone == "13700001234"
    # Every customer (the 30,000 UCI holders too) opens with the new key alone.
    assert sum(1 for c in Customer.objects.only("name", "phone", "national_id", "email").iterator() if c.phone) > 1

    events = AuditEvent.objects.filter(action="pii.rotate_keys")
    assert events.count() == 1
    call_command("rotate_pii_keys", "--check")  # nothing left under an older key
    call_command("rotate_pii_keys")
    assert "rotated: 0" in capsys.readouterr().out
    assert raw("repayments_customer", "phone", customer.pk) == new_token  # idempotent: not rewritten
    assert events.count() == 1


def test_rotation_re_encrypts_the_pieces_of_an_upload_waiting_on_the_queue(settings, analyst):
    from repayments.services import imports

    settings.PII_ENCRYPTION_KEYS = [OLD_KEY]
    settings.IMPORT_LIMITS = {**settings.IMPORT_LIMITS, "inline_max_bytes": 0}
    content = b"customer_no,credit_score\r\nC0001,720\r\n"
    job = imports.import_job_create(actor=analyst, resource="customers", filename="c.csv", content=content, options={})
    piece = job.upload_chunks.get()
    assert Fernet(OLD_KEY.encode()).decrypt(bytes(piece.data)) == content

    settings.PII_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    call_command("rotate_pii_keys")
    settings.PII_ENCRYPTION_KEYS = [NEW_KEY]  # the old key is gone: the upload still opens
    with imports.import_job_upload(job_id=job.pk) as upload:
        assert upload.read() == content
