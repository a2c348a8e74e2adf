"""The staff personas (tests/conftest.py): created without hashing, able to log in with the shared password."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import override_settings
from django.urls import reverse

from accounts.roles import ADMIN, AGENT, ANALYST, AUDITOR, SUPERVISOR
from tests.conftest import PERSONA_PASSWORD, _persona

ROLES = [AGENT, SUPERVISOR, ANALYST, AUDITOR, ADMIN]


class CountingHasher(MD5PasswordHasher):
    """The test hasher, counting the passwords it hashes."""

    hashed = 0

    def encode(self, password, salt):
        CountingHasher.hashed += 1
        return super().encode(password, salt)


@pytest.mark.django_db
@override_settings(PASSWORD_HASHERS=["tests.test_personas.CountingHasher"])
def test_personas_are_created_without_hashing_a_password():
    CountingHasher.hashed = 0
    users = [_persona(role) for role in ROLES]
    assert CountingHasher.hashed == 0
    assert [user.groups.get().name for user in users] == ROLES
    assert [user.is_staff for user in users] == [False, False, False, False, True]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_each_persona_logs_in_with_the_shared_password(client, role):
    user = _persona(role)
    response = client.post(reverse("accounts:login"), {"username": user.username, "password": PERSONA_PASSWORD})
    assert response.status_code == 302, response.content[:300]
    assert int(client.session["_auth_user_id"]) == user.pk
