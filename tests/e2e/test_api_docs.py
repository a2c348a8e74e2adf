"""The self-hosted API docs page renders under the console's Content-Security-Policy."""

from __future__ import annotations

import pytest


@pytest.mark.django_db(transaction=True)
def test_the_api_docs_page_renders_every_group_from_our_own_static_files(login, live_server):
    from tests.conftest import _persona

    page = login(_persona("agent"))
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url) if not request.url.startswith(live_server.url)
            and not request.url.startswith("data:") else None)  # fmt: skip
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector("text=/api/v1/bills/", timeout=30_000)
    for tag in ("bills", "extensions", "gateway"):
        assert page.locator(f"#operations-tag-{tag}").count() == 1
    assert outside == []  # no CDN: everything from our server
    assert not [p for p in problems if "Content Security Policy" in p], problems
