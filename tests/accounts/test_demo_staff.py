"""Demo staff work in demo mode only (issue #15, item 9): refused logins and a deploy check."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import User
from accounts.roles import ANALYST
from accounts.services import api_token_issue, staff_ensure_demo_user

# Not imported from accounts.checks: importing it would register the check, hiding an unregistered one.
W001 = "accounts.W001"
PASSWORD = "printed-demo-password-42"  # as setup_demo_staff prints and keeps in var/demo-logins.txt


@pytest.fixture
def demo_analyst(db) -> User:
    user, _ = staff_ensure_demo_user(role=ANALYST, password=PASSWORD, reset_password=True)
    return user


def _log_in(client, username: str, password: str):
    return client.post(reverse("accounts:login"), {"username": username, "password": password})


def test_a_demo_user_logs_in_in_demo_mode(client, demo_analyst, settings):
    settings.DEMO_MODE = True
    response = _log_in(client, "demo_analyst", PASSWORD)
    assert response.status_code == 302
    assert client.get(reverse("console:worklist")).status_code == 200


def test_a_demo_user_cannot_log_in_outside_demo_mode(client, demo_analyst, analyst, settings):
    settings.DEMO_MODE = False  # DEBUG off or DEMO_MODE=false: settings derive it from both
    response = _log_in(client, "demo_analyst", PASSWORD)
    assert response.status_code == 200  # the login form again, with its error
    assert response.context["form"].errors
    assert "_auth_user_id" not in client.session
    assert _log_in(client, analyst.username, "correct horse battery staple").status_code == 302  # real staff can


def test_a_demo_session_opened_in_demo_mode_ends_when_demo_mode_is_off(client, demo_analyst, settings):
    settings.DEMO_MODE = True
    client.force_login(demo_analyst)
    assert client.get(reverse("console:worklist")).status_code == 200
    settings.DEMO_MODE = False
    response = client.get(reverse("console:worklist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_a_demo_users_api_token_opens_nothing_outside_demo_mode(demo_analyst, settings):
    settings.DEMO_MODE = True
    token = api_token_issue(user=demo_analyst, days=1, reason="demo")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/customers/").status_code == 200
    settings.DEMO_MODE = False
    assert client.get("/api/v1/customers/").status_code == 403
    with pytest.raises(ValueError, match="demo mode only"):
        api_token_issue(user=demo_analyst, days=1, reason="demo")
    with pytest.raises(CommandError, match="demo mode only"):
        call_command("api_token", "demo_analyst", "--days", "1", "--reason", "x", stdout=io.StringIO())


def _check_deploy() -> str:
    out = io.StringIO()
    call_command("check", "--deploy", "--tag", "security", stdout=out, stderr=out)
    return out.getvalue()


def test_check_deploy_warns_about_active_demo_staff_outside_demo_mode(demo_analyst, settings):
    settings.DEMO_MODE = False
    output = _check_deploy()
    assert "(accounts.W001) Active demo staff accounts exist but demo mode is off: demo_analyst." in output


def test_check_deploy_is_quiet_about_demo_staff_in_demo_mode_and_once_they_are_deactivated(demo_analyst, settings):
    settings.DEMO_MODE = True
    assert W001 not in _check_deploy()
    settings.DEMO_MODE = False
    demo_analyst.is_active = False
    demo_analyst.save(update_fields=["is_active"])
    assert W001 not in _check_deploy()


def test_a_colleague_whose_name_starts_with_demo_is_not_demo_staff(client, settings, db):
    settings.DEMO_MODE = False
    User.objects.create_user(username="demo_lee", password=PASSWORD)
    assert _log_in(client, "demo_lee", PASSWORD).status_code == 302
    assert W001 not in _check_deploy()
