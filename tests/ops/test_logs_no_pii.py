"""No personal data in the logs (issue #8): a full run, every line captured and searched.

The web server, the sandbox bank and both django-q2 clusters run as real
processes with ``LOG_FORMAT=json``; their stdout and stderr go to files. What this
test process logs itself (the collection run) is captured with the production
formatter. Then every captured line is searched for each synthetic customer's
phone, national ID, name, email and the card number typed into the console.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from django.conf import settings as django_settings
from django.db import connection

from accounts.models import AuditEvent
from baitiao.logs import make_formatter
from baitiao.pii import pii_hash
from repayments.models import Bill, BillStatus, Customer, Notification
from repayments.services.collection import collection_run
from tests.engine import (
    ROOT,
    Cluster,
    customer_with_due_bill,
    engine_clock,
    free_port,
    wait_for,
)
from tests.engine import test_database_url as child_database_url
from tests.factories import CreditLineFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_domain")]

PASSWORD = "correct horse battery staple"
# Synthetic people. The UnionPay test card is what an agent types into the binding repair.
PEOPLE = [
    # customer_no, scenario, name, phone, national ID, email
    ("PII-BAD", "card_expired", "欧阳锋测", "13912345671", "11010519800101123X", "ouyang.feng@example.com"),
    ("PII-OK1", "ok", "黄药师测", "15887654322", "310101199002027654", "huang.yaoshi@example.com"),
    ("PII-OK2", "ok", "Lin Pingzhi", "18611112233", "440301198812121111", "lin.pingzhi@example.org"),
]
CARD_NUMBER = "6216261000000000018"
BAD_CARD_NUMBER = "6216261000000000019"  # fails the Luhn check
RESERVED_PHONE = "13552535506"
IMPORT_PEOPLE = [
    ("IMP-001", "任盈盈测", "13700001111", "11010519491231002X"),
    ("IMP-002", "令狐冲测", "13700002222", "110105194912310029"),
]
IMPORT_BAD_PHONE = "13700003333"
# What runserver and the sandbox print themselves (not through logging); every other line is JSON.
NOT_LOGGING = re.compile(
    r"^(Performing system checks|System check identified|Django version|Starting development server"
    r"|Quit the server|WARNING: This is a development server|For more information on production servers"
    r"|Sandbox bank on|\w+ \d{1,2}, \d{4} - \d\d:\d\d:\d\d|\s*$)"
)


def _spawn(args: list[str], log_path: Path, **env: str) -> subprocess.Popen:
    out = log_path.open("wb")
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DEBUG": "true",
            "LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": child_database_url(),
            **env,
        },
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


@pytest.fixture
def stack(tmp_path, settings):
    """Sandbox bank, web server, the main, notify and critical clusters: real processes logging to files."""
    web_port, bank_port = free_port(), free_port()
    web_url, bank_url = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{bank_port}"
    common = {
        "GATEWAY_URL": bank_url,
        "GATEWAY_TIMEOUT_MS": "1000",
        "GATEWAY_CALLBACK_URL": f"{web_url}/api/v1/gateway/callbacks/",
    }
    logs = {name: tmp_path / f"{name}.log" for name in ("bank", "web", "worker", "notifier", "critical")}
    processes = [
        _spawn(
            [
                "sandbox_gateway",
                "serve",
                "--port",
                str(bank_port),
                "--callback-url",
                common["GATEWAY_CALLBACK_URL"],
                "--latency-ms",
                "20",
                "80",
                "--duplicate-rate",
                "1.0",
                "--hold-seconds",
                "3",
                "--seed",
                "7",
            ],
            logs["bank"],
        ),
        _spawn(["runserver", f"127.0.0.1:{web_port}", "--noreload"], logs["web"], **common),
    ]
    wait_for(lambda: _up(f"{bank_url}/healthz"), timeout=30, what="sandbox bank")
    wait_for(lambda: _up(f"{web_url}/accounts/login/"), timeout=60, what="web server")
    clusters = [
        Cluster(_spawn(["qcluster"], logs["worker"], **common)),
        Cluster(_spawn(["qcluster"], logs["notifier"], Q_CLUSTER_NAME="notify", **common)),
        Cluster(_spawn(["qcluster"], logs["critical"], Q_CLUSTER_NAME="critical", **common)),  # agents' retries
    ]
    settings.GATEWAY_URL = bank_url
    settings.GATEWAY_TIMEOUT_SECONDS = 1.0
    try:
        yield {"web": web_url, "bank": bank_url, "logs": logs}
    finally:
        for cluster in clusters:
            cluster.stop()
        for process in processes:
            process.terminate()
            process.wait(timeout=15)


@pytest.fixture
def in_process_log():
    """This process's own log lines, rendered by the production JSON formatter."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(make_formatter("json"))
    root = logging.getLogger()
    root.addHandler(handler)
    for name in ("django", "django-q"):
        logging.getLogger(name).addHandler(handler)
    yield buffer
    root.removeHandler(handler)
    for name in ("django", "django-q"):
        logging.getLogger(name).removeHandler(handler)


def _login(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=20, follow_redirects=False)
    client.get("/accounts/login/")
    response = client.post(
        "/accounts/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
    )
    assert response.status_code == 302, f"login of {username} failed"
    return client


def _post(client: httpx.Client, url: str, data: dict, **kwargs) -> httpx.Response:
    return client.post(url, data={**data, "csrfmiddlewaretoken": client.cookies["csrftoken"]}, **kwargs)


def _unreadable_customer() -> Customer:
    """A customer whose phone was encrypted with a key we no longer have: its page is a 500."""
    from cryptography.fernet import Fernet

    customer = CreditLineFactory(customer__customer_no="PII-LOSTKEY").customer  # no bill: nothing to debit

    stranger = Fernet(Fernet.generate_key()).encrypt(b"13911110000").decode()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE repayments_customer SET phone = %s WHERE id = %s", [stranger, customer.pk])
    return customer


def _full_run(stack, agent, analyst) -> dict:
    """Everything that might leak: debits and failures, repair, search, reveal, import, errors."""
    clock = engine_clock()
    web = stack["web"]
    customers = {}
    for no, scenario, name, phone, national_id, email in PEOPLE:
        customer, _, binding = customer_with_due_bill(
            due=clock.today, customer_no=no, scenario=scenario, amount="120.50"
        )
        customer.name, customer.phone, customer.national_id, customer.email = name, phone, national_id, email
        customer.phone_hash, customer.phone_last4 = pii_hash(phone), phone[-4:]
        customer.national_id_hash, customer.national_id_last4 = pii_hash(national_id), national_id[-4:]
        customer.save()
        binding.reserved_phone = phone
        binding.save(update_fields=["reserved_phone"])
        customers[no] = customer
    lost = _unreadable_customer()

    # The collection run (in this process): the bank answers on the clusters; one binding failure.
    assert collection_run(now=clock.now)["attempts"] == 3
    bad = customers["PII-BAD"]
    wait_for(
        lambda: Notification.objects.filter(customer=bad, event="debit_failed_binding", status="sent").exists(),
        timeout=90,
        what="the binding-failure message",
    )

    # A failed login whose "username" is a customer's phone number.
    anon = httpx.Client(base_url=web, timeout=20)
    anon.get("/accounts/login/")
    anon.post(
        "/accounts/login/",
        data={"username": PEOPLE[1][3], "password": "wrong", "csrfmiddlewaretoken": anon.cookies["csrftoken"]},
    )

    agent_client = _login(web, agent.username)
    traced = agent_client.get("/console/", headers={"X-Request-ID": "ops-trace-0001"})
    assert traced.status_code == 200
    assert traced.headers["X-Request-ID"] == "ops-trace-0001"
    forged = agent_client.get("/console/", headers={"X-Request-ID": "no good\tid"})
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["X-Request-ID"])
    for _, _, _, phone, national_id, _ in PEOPLE:
        # One hit goes straight to the customer (302); by GET the number is in the URL's query string.
        assert agent_client.get("/console/search/", params={"q": phone}).status_code == 302
        assert _post(agent_client, "/console/search/", {"q": national_id}).status_code == 302
    page = f"/console/customers/{bad.customer_no}/"
    assert agent_client.get(page).status_code == 200
    revealed = _post(agent_client, page + "reveal/", {"field": "phone", "reason": "customer asked on the phone"})
    assert PEOPLE[0][3] in revealed.text  # the reveal works (and is audited), but is not logged
    _post(agent_client, page + "reveal/", {"field": "national_id", "reason": "identity check for ticket 42"})

    # Binding repair: a mistyped card first, then the real one and the SMS code.
    wrong = _post(agent_client, page + "binding/", {"card_number": BAD_CARD_NUMBER, "reserved_phone": RESERVED_PHONE})
    assert wrong.status_code == 200
    started = _post(agent_client, page + "binding/", {"card_number": CARD_NUMBER, "reserved_phone": RESERVED_PHONE})
    assert started.status_code == 302, started.text[:500]
    confirmed = _post(agent_client, page + "binding/confirm/", {"sms_code": "111111", "reason": "new card bound"})
    assert confirmed.status_code == 302
    wait_for(
        lambda: Bill.objects.filter(customer=bad, status=BillStatus.PAID).exists(),
        timeout=90,
        what="the retry on the new card",
    )
    _post(agent_client, page + "notes/", {"body": f"customer's new number is {PEOPLE[0][3]}"})

    # Error paths: an unknown customer (404), a row no key opens (500), a forged gateway callback.
    assert agent_client.get("/console/customers/NO-SUCH-CUSTOMER/").status_code == 404
    assert agent_client.get(f"/console/customers/{lost.customer_no}/").status_code == 500
    forged_callback = httpx.post(
        f"{web}/api/v1/gateway/callbacks/",
        content=json.dumps({"phone": PEOPLE[2][3], "card": CARD_NUMBER}),
        headers={"Content-Type": "application/json", "X-Signature": "t=1,v1=deadbeef"},
        timeout=10,
    )
    assert forged_callback.status_code >= 400

    # An analyst imports customers with phones and IDs; one row is bad, so nothing is applied.
    analyst_client = _login(web, analyst.username)
    rows = [f"{no},{name},{phone},{nid},700,low" for no, name, phone, nid in IMPORT_PEOPLE]
    rows.append(f"IMP-003,坏行测,{IMPORT_BAD_PHONE},123456789012345678,9999,low")
    content = ("customer_no,name,phone,national_id,credit_score,risk_tier\n" + "\n".join(rows) + "\n").encode()
    imported = analyst_client.post(
        "/console/data/import/",
        data={"resource": "customers", "encoding": "auto", "csrfmiddlewaretoken": analyst_client.cookies["csrftoken"]},
        files={"file": ("customers.csv", content, "text/csv")},
    )
    assert imported.status_code == 302
    job_page = analyst_client.get(imported.headers["location"])
    assert job_page.status_code == 200
    assert not Customer.objects.filter(customer_no="IMP-001").exists()  # all rows or none
    return {"agent": agent, "bad": bad}


def test_a_full_run_logs_json_with_request_and_user_ids_and_no_personal_data(stack, in_process_log, agent, analyst):
    from django.contrib.auth.hashers import make_password

    for user in (agent, analyst):
        # The web server is another process with the production hashers (not the tests' MD5).
        user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
        user.save(update_fields=["password"])
    _full_run(stack, agent, analyst)
    assert AuditEvent.objects.filter(action="customer.reveal").count() == 2

    captured: dict[str, list[str]] = {
        name: path.read_text("utf-8").splitlines() for name, path in stack["logs"].items()
    }
    captured["test-process"] = in_process_log.getvalue().splitlines()

    # 1. Nothing personal in any line of any process.
    secrets = {CARD_NUMBER, BAD_CARD_NUMBER, RESERVED_PHONE, IMPORT_BAD_PHONE, "13911110000"}
    for _, _, name, phone, national_id, email in PEOPLE:
        secrets |= {name, phone, national_id, email, national_id.lower()}
    for _, name, phone, national_id in IMPORT_PEOPLE:
        secrets |= {name, phone, national_id}
    leaks = [
        (process, secret, line[:300])
        for process, lines in captured.items()
        for line in lines
        for secret in secrets
        if secret in line
    ]
    assert leaks == []

    # 2. The logs are not empty, and every line is a JSON object (bar runserver's banner).
    entries: dict[str, list[dict]] = {}
    for process, lines in captured.items():
        assert lines or process == "test-process", f"{process} logged nothing"
        entries[process] = []
        banner = [line for line in lines if not line.startswith("{")]
        assert all(NOT_LOGGING.match(line) for line in banner), banner
        assert len(banner) <= 10
        entries[process] = [json.loads(line) for line in lines if line.startswith("{")]
    assert all(entry.get("level") and entry.get("timestamp") for lines in entries.values() for entry in lines)

    # 3. Request lines carry the request id and the staff user's numeric id, never a username.
    access = [entry for entry in entries["web"] if entry.get("logger") == "baitiao.access"]
    assert len(access) >= 20
    assert all(entry["request_id"] and "user_id" in entry for entry in access)
    agent_lines = [entry for entry in access if entry["user_id"] == agent.pk]
    assert len(agent_lines) >= 10
    assert any(entry["request_id"] == "ops-trace-0001" for entry in agent_lines)
    assert all("?" not in entry["path"] for entry in access)  # no query strings (searches carry phones)
    assert not any(agent.username in line for lines in captured.values() for line in lines if "AXES" not in line)
    statuses = {entry["status"] for entry in access}
    assert {200, 302, 404, 500} <= statuses
    # Django's own lines about a request carry its id: the 500's traceback, the 404 and 403 warnings.
    django_request = [e for e in entries["web"] if e.get("logger") == "django.request"]
    assert {e["level"] for e in django_request} >= {"warning", "error"}
    assert all(e.get("request_id") for e in django_request)
    assert all(e["user_id"] == agent.pk for e in django_request if "/console/" in e["event"])
    assert all("exception" in e for e in django_request if e["level"] == "error")
    # The clusters and the bank write JSON too.
    assert entries["worker"] and entries["notifier"] and entries["bank"]
    assert django_settings.LOG_FORMAT in ("json", "console")


def test_a_task_logs_its_task_id_and_name(in_process_log):
    from django_q.signals import post_execute_in_worker, pre_execute

    pre_execute.send(sender="django_q", func=print, task={"id": "abc123", "name": "alpha-bravo", "func": "x.y"})
    logging.getLogger("repayments.tasks").info("working on %s", "13912345671")
    post_execute_in_worker.send(sender="django_q", func=print, task={"id": "abc123"})
    logging.getLogger("repayments.tasks").info("after")
    first, second = (json.loads(line) for line in in_process_log.getvalue().splitlines()[-2:])
    assert (first["task_id"], first["task_name"]) == ("abc123", "alpha-bravo")
    assert first["event"] == "working on 139****5671"  # redacted: defence in depth
    assert "task_id" not in second


def test_redaction_masks_phones_ids_and_card_numbers_in_any_value():
    from baitiao.logs import redact_pii

    event = redact_pii(
        None,
        "info",
        {
            "event": "card 6216 2610 0000 0000 018, id 11010519491231002x, call +86 139-1234-5671",
            "nested": {"phones": ["15887654322"], "card": 6216261000000000018},
            "amount": Decimal("12.50"),
            "count": 3,
        },
    )
    text = json.dumps(event, default=str)
    for secret in ("6216 2610 0000 0000 018", "6216261000000000018", "11010519491231002", "1391234", "15887654322"):
        assert secret not in text
    assert "****5671" in text and "0018" in text
    # Digits inside hex ids (uuids, django-q2 process names) are not personal data.
    process = "Process-b1234567890123413d96d97ae448769f75 ready, request 9f0c2a13812345678a"
    assert redact_pii(None, "info", {"event": process})["event"] == process
    assert event["amount"] == Decimal("12.50") and event["count"] == 3


def test_audit_events_carry_the_request_id_and_the_context_ends_with_the_response(client, agent):
    from django.urls import reverse

    from baitiao.logs import current_request_id

    CreditLineFactory(customer__customer_no="RID-0001")
    client.force_login(agent)
    response = client.post(
        reverse("console:customer-reveal", args=["RID-0001"]),
        {"field": "phone", "reason": "customer asked on the phone"},
        headers={"X-Request-ID": "ticket-4711-abc"},
    )
    assert response.status_code == 200
    assert response["X-Request-ID"] == "ticket-4711-abc"
    assert AuditEvent.objects.get(action="customer.reveal", customer_no="RID-0001").request_id == "ticket-4711-abc"
    assert current_request_id() == ""  # cleared when the response was closed
