"""Soak scenario (issue #8 item 7): agents browse the console while gateway callbacks arrive.

Run through ``benchmarks/soak.py``, which starts gunicorn and the sandbox bank on
127.0.0.1, writes the data file this scenario reads (``SOAK_DATA``: logins,
customer numbers, search terms, and attempts awaiting their result) and runs
locust headless for a bounded time. Loopback only.

* ``Agent``: logs in as a demo agent (CSRF and all), then browses the worklist
  queues, searches (customer number, bill number, last four digits) and opens
  customer pages, with a human pause of 1–3 s between pages.
* ``GatewayCallbacks``: the bank's notification service at a steady rate
  (``constant_throughput``): signed results for attempts that are in flight
  (applied: the bill is booked), and about one in five a second delivery of a
  result already sent (a replay, as banks do).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import threading
from pathlib import Path

from locust import HttpUser, between, constant_throughput, events, task

from repayments.gateway.signing import HEADER, sign

DATA = json.loads(Path(os.environ["SOAK_DATA"]).read_text(encoding="utf-8"))
SECRET = DATA["gateway_secret"]
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
QUEUES = ["failures", "system", "binding", "funds", "repair", "overdue"]

_in_flight = iter(DATA["attempts"])  # each posted once as its first delivery
_delivered: list[dict] = []
_lock = threading.Lock()
_logins = itertools.cycle(DATA["agents"])
_server_errors: dict[str, int] = {}


@events.request.add_listener
def _count_server_errors(name, response=None, **kwargs) -> None:
    """Every 5xx, whatever the endpoint: the soak fails on any (benchmarks/soak.py reads the file)."""
    if response is not None and getattr(response, "status_code", 0) >= 500:
        _server_errors[name] = _server_errors.get(name, 0) + 1


@events.quitting.add_listener
def _write_server_errors(environment, **kwargs) -> None:
    Path(os.environ["SOAK_REPORT"]).write_text(json.dumps({"server_errors": _server_errors}), encoding="utf-8")


class Agent(HttpUser):
    weight = 3
    wait_time = between(1, 3)

    def on_start(self) -> None:
        username, password = next(_logins)
        page = self.client.get("/accounts/login/", name="/accounts/login/")
        token = CSRF.search(page.text)
        response = self.client.post(
            "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token.group(1) if token else ""},
            headers={"Referer": self.host + "/accounts/login/"},
            name="/accounts/login/ (POST)",
        )
        if "/accounts/login/" in response.url:
            response.failure("login refused")

    @task(4)
    def worklist(self) -> None:
        queue = random.choice(QUEUES)
        self.client.get(f"/console/?queue={queue}", name="/console/?queue=[queue]")

    @task(1)
    def worklist_second_page(self) -> None:
        self.client.get("/console/?queue=failures&page=2", name="/console/?page=2")

    @task(3)
    def customer(self) -> None:
        customer_no = random.choice(DATA["customers"])
        self.client.get(f"/console/customers/{customer_no}/", name="/console/customers/[no]/")

    @task(2)
    def search(self) -> None:
        term = random.choice(DATA["searches"])
        self.client.get("/console/search/", params={"q": term}, name="/console/search/?q=[term]")

    @task(1)
    def home(self) -> None:
        self.client.get("/", name="/")


class GatewayCallbacks(HttpUser):
    weight = 1
    wait_time = constant_throughput(float(os.environ.get("SOAK_CALLBACKS_PER_USER", "2")))

    @task
    def callback(self) -> None:
        with _lock:
            body = None
            if random.random() >= 0.2:
                body = next(_in_flight, None)
                if body is not None:
                    _delivered.append(body)
            if body is None and _delivered:
                body = random.choice(_delivered)  # a second delivery: must change nothing
        if body is None:
            return
        raw = json.dumps(body, separators=(",", ":")).encode()
        with self.client.post(
            "/api/v1/gateway/callbacks/",
            data=raw,
            headers={"Content-Type": "application/json", HEADER: sign(raw, SECRET)},
            name="/api/v1/gateway/callbacks/",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
            elif response.json().get("result") not in ("applied", "replay"):
                response.failure(f"unexpected answer {response.text[:200]}")
