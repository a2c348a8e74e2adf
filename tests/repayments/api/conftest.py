"""API clients authenticated with real Knox tokens, one per role."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.services import api_token_issue


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=user, days=1, reason='test')}")
    return client


@pytest.fixture
def api_as():
    """``api_as(user)``: an API client sending that user's token."""
    return token_client
