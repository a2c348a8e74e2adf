"""Issue #15 (8): the OpenAPI schema and the docs page are for signed-in staff only (docs/api.md).

They answered anyone in production. Now a request without a credential is refused,
with DEBUG off and on; a console session or an API token opens both.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.repayments.api.conftest import token_client

SCHEMA_ACCEPT = "application/vnd.oai.openapi+json"


@pytest.fixture(params=[False, True], ids=["DEBUG off", "DEBUG on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def test_an_anonymous_request_for_the_schema_is_refused(db, client, debug):
    response = client.get(reverse("api-schema"), HTTP_ACCEPT=SCHEMA_ACCEPT)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert b"/api/v1/bills/" not in response.content


def test_an_anonymous_browser_opening_the_docs_is_sent_to_sign_in(db, client, debug):
    response = client.get(reverse("api-docs"))
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert (location.path, location.query) == (reverse("accounts:login"), "next=/api/docs/")


def test_the_docs_script_is_refused_without_a_credential(db, client, debug):
    response = client.get(reverse("api-docs") + "?script")
    assert response.status_code == 302
    assert b"SwaggerUIBundle" not in response.content


def test_a_wrong_token_is_refused_for_the_schema_and_the_docs(db, debug):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get(reverse("api-schema"), HTTP_ACCEPT=SCHEMA_ACCEPT).status_code == 401
    assert client.get(reverse("api-docs")).status_code == 401


@pytest.mark.parametrize("persona", ["agent", "auditor"])
def test_a_signed_in_console_user_reads_the_schema_and_the_docs(client, request, persona, debug):
    client.force_login(request.getfixturevalue(persona))
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT=SCHEMA_ACCEPT)
    assert schema.status_code == 200 and "/api/v1/bills/" in schema.json()["paths"]
    assert client.get(reverse("api-docs")).status_code == 200


def test_an_api_token_reads_the_schema_as_the_contract_check_does(analyst, debug):
    client = token_client(analyst)
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT=SCHEMA_ACCEPT)
    assert schema.status_code == 200 and "/api/v1/gateway/callbacks/" in schema.json()["paths"]
    assert client.get(reverse("api-docs")).status_code == 200
