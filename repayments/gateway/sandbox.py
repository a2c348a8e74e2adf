"""The sandbox bank: a small HTTP server that behaves like a real debit channel.

It runs as its own process (``python manage.py sandbox_gateway serve``) and
shares nothing with our database. What it does, like a bank would:

* **Signed requests**: every request must carry a valid ``X-Gateway-Signature``.
* **Asynchronous results**: ``POST /v1/debits`` answers ``202 processing`` at
  once; after a latency the result is decided and POSTed, signed, to our callback
  URL, retried on failure, and now and then delivered twice.
* **Idempotency**: the same key again returns the same debit; the same key with
  another amount or card is refused (``409 idempotency_key_reused``).
* **Deterministic outcomes from the binding** (Stripe-style test tokens,
  ``sbx_<scenario>_<hex>``): ``ok`` debits against a balance, ``lowfunds`` has
  almost none, binding scenarios (``card_expired``, ``card_closed``,
  ``reserved_phone_mismatch``, ``authorization_revoked``, ``card_number_invalid``)
  fail with that code, amounts above the daily limit fail ``exceeds_limit``.
* **Outage switch**: ``POST /sandbox/outage {"mode": "error"}`` fails debits with
  system codes; ``{"mode": "timeout"}`` holds every answer longer than a client
  waits while still processing the debit (the ambiguous case); ``"off"`` ends it.
  ``"only": ["icbc", …]`` limits it to debits whose token contains one of these
  strings: one bank down while the others answer, as real outages go.
* **Card binding** with an SMS step: ``POST /v1/bindings`` then
  ``POST /v1/bindings/<id>/confirm`` with code ``111111`` (UnionPay's test code).
* **A durable ledger** (``--ledger FILE``): like a bank's books, every debit and
  its outcome is journalled before it is answered or called back, so a bank
  that crashes and restarts still knows every debit (``query`` answers as
  before) and settles those it had not decided yet. ``GET /sandbox/ledger`` lists
  every debit with its outcome: the ground truth of who was charged.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from stdnum import luhn

from repayments.gateway.signing import HEADER, SignatureError, sign, verify

logger = logging.getLogger("repayments.sandbox")

DAILY_LIMIT = Decimal("200000")  # per debit, in the currency's major unit (NT$ scale)
SMS_CODE = "111111"  # the fixed code of UnionPay's test environment
BINDING_SCENARIOS = {
    "card_expired",
    "card_closed",
    "reserved_phone_mismatch",
    "authorization_revoked",
    "card_number_invalid",
}
# UnionPay's published test cards (repayments/data/unionpay_test_cards.csv): the
# credit test card fails Luhn on purpose and is accepted anyway.
TEST_CARDS = {
    "6216261000000000018": "13552535506",
    "6221558812340000": "13552535506",
}


@dataclass
class Debit:
    key: str
    token: str
    amount: Decimal
    currency: str
    status: str = "processing"
    code: str = ""
    message: str = ""
    reference: str = field(default_factory=lambda: "SBX" + uuid.uuid4().hex[:20].upper())

    def as_json(self) -> dict[str, Any]:
        return {
            "idempotency_key": self.key,
            "status": self.status,
            "amount": str(self.amount),
            "currency": self.currency,
            "code": self.code,
            "message": self.message,
            "reference": self.reference,
        }


@dataclass
class SandboxConfig:
    secret: str
    callback_url: str
    latency_ms: tuple[int, int] = (50, 300)
    duplicate_rate: float = 0.1
    hold_seconds: float = 8.0  # how long "timeout" mode holds an answer
    seed: int | None = None
    callback_workers: int = 8  # callbacks in flight at once
    ledger_path: str | None = None  # journal of debits (JSON lines); survives a restart
    # Share of debits (0.0–1.0) failed with a system code, as a real bank's everyday
    # errors: decided from the debit's key, so the same debit always fares the same.
    system_failure_rate: float = 0.0


def _scenario(token: str) -> str:
    parts = token.split("_")  # sbx_<scenario>_<hex>; scenarios may contain "_"
    return "_".join(parts[1:-1]) if parts[0] == "sbx" and len(parts) >= 3 else "unknown"


def _unit_interval(text: str) -> float:
    """A number in [0, 1) fixed by ``text`` (SHA-256): the same debit key always draws the same."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / 16**12


class _Scheduler:
    """Run ``action(key)`` after a delay on a bounded pool of threads."""

    def __init__(self, action, *, workers: int) -> None:
        self.action = action
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox-callback")
        self.due: list[tuple[float, int, str]] = []
        self.counter = 0
        self.wakeup = threading.Condition()
        threading.Thread(target=self._run, name="sandbox-scheduler", daemon=True).start()

    def schedule(self, delay: float, key: str) -> None:
        with self.wakeup:
            self.counter += 1
            heapq.heappush(self.due, (time.monotonic() + delay, self.counter, key))
            self.wakeup.notify()

    def _run(self) -> None:
        while True:
            with self.wakeup:
                while not self.due or self.due[0][0] > time.monotonic():
                    self.wakeup.wait(timeout=(self.due[0][0] - time.monotonic()) if self.due else None)
                _, _, key = heapq.heappop(self.due)
            self.pool.submit(self.action, key)


class SandboxBank:
    """The bank's state and rules; thread-safe. The HTTP layer is :class:`Handler`."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.debits: dict[str, Debit] = {}
        self.balances: dict[str, Decimal] = {}
        self.bindings: dict[str, dict[str, str]] = {}
        self.outage = "off"
        self.outage_only: tuple[str, ...] = ()  # token substrings the outage hits; empty: every debit
        self.lock = threading.Lock()
        self.random = random.Random(config.seed)  # noqa: S311 - simulation, not security
        self.callbacks_sent = 0
        self.http = httpx.Client(timeout=5.0)
        # Like a bank's notification service: results go out through a small pool of
        # senders, so a burst of debits becomes a steady stream of callbacks rather
        # than one thread (and one connection to us) per debit.
        self.settlements = _Scheduler(self._settle, workers=config.callback_workers)
        self.ledger = None
        if config.ledger_path:
            self._replay_ledger(config.ledger_path)
            self.ledger = open(config.ledger_path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the bank

    # -- ledger -------------------------------------------------------------------
    def _journal(self, debit: Debit) -> None:
        """Append the debit's current state (under ``self.lock``); flushed before anyone hears of it."""
        if self.ledger is not None:
            self.ledger.write(json.dumps({**debit.as_json(), "token": debit.token}) + "\n")
            self.ledger.flush()

    def _replay_ledger(self, path: str) -> None:
        """Rebuild debits and balances from the journal; settle what was still processing."""
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line cut short by the crash: its debit was never answered
            self.debits[row["idempotency_key"]] = Debit(
                key=row["idempotency_key"],
                token=row["token"],
                amount=Decimal(row["amount"]),
                currency=row["currency"],
                status=row["status"],
                code=row["code"],
                message=row["message"],
                reference=row["reference"],
            )
        for debit in self.debits.values():
            if debit.status == "succeeded":
                self.balances[debit.token] = self._balance(debit.token) - debit.amount
            elif debit.status == "processing":
                self.settlements.schedule(self.random.uniform(*self.config.latency_ms) / 1000, debit.key)
        logger.warning("sandbox ledger %s: %d debits replayed", path, len(self.debits))

    def ledger_entries(self) -> dict[str, Any]:
        with self.lock:
            return {"debits": [debit.as_json() for debit in self.debits.values()]}

    # -- debits -------------------------------------------------------------------
    def debit(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            key = str(payload["idempotency_key"])
            token = str(payload["token"])
            amount = Decimal(str(payload["amount"]))
            currency = str(payload["currency"])
        except (KeyError, InvalidOperation):
            return 400, {"code": "bad_request", "message": "idempotency_key, token, amount, currency required"}
        if not key or amount <= 0:
            return 400, {"code": "bad_request", "message": "positive amount and a key required"}
        with self.lock:
            existing = self.debits.get(key)
            if existing is not None:
                if (existing.token, existing.amount) != (token, amount):
                    return 409, {"code": "idempotency_key_reused", "message": "key used with another debit"}
                return 200, existing.as_json()
            debit = Debit(key=key, token=token, amount=amount, currency=currency)
            down = self.outage != "off" and (not self.outage_only or any(part in token for part in self.outage_only))
            if down and self.outage == "error":
                debit.status = "failed"
                debit.code = self.random.choice(["bank_system_error", "channel_unavailable"])
                debit.message = "核心系统繁忙 / core banking system busy"
                self.debits[key] = debit
                self._journal(debit)
                return 200, debit.as_json()
            self.debits[key] = debit
            self._journal(debit)
            hold = down and self.outage == "timeout"
        delay = self.random.uniform(*self.config.latency_ms) / 1000
        if hold:  # a slow bank is slow all the way: the result comes after the held answer
            delay += self.config.hold_seconds
        self.settlements.schedule(delay, key)
        if hold:
            time.sleep(self.config.hold_seconds)
        return 202, debit.as_json()

    def _settle(self, key: str) -> None:
        with self.lock:
            debit = self.debits[key]
            if debit.status != "processing":
                return
            self._decide(debit)
            self._journal(debit)
            body = debit.as_json()
            copies = 2 if self.random.random() < self.config.duplicate_rate else 1
        for _ in range(copies):
            self._deliver(body)

    def _decide(self, debit: Debit) -> None:
        if _unit_interval(debit.key) < self.config.system_failure_rate:
            debit.status, debit.message = "failed", "核心系统繁忙 / core banking system busy"
            debit.code = "bank_system_error" if _unit_interval("code:" + debit.key) < 0.5 else "channel_unavailable"
            return
        scenario = _scenario(debit.token)
        if scenario in BINDING_SCENARIOS:
            debit.status, debit.code, debit.message = "failed", scenario, "持卡人信息有误 / cardholder data invalid"
            return
        if scenario not in ("ok", "lowfunds"):
            debit.status, debit.code, debit.message = "failed", "card_number_invalid", "unknown token"
            return
        if debit.amount > DAILY_LIMIT:
            debit.status, debit.code, debit.message = "failed", "exceeds_limit", "超过单笔限额 / over the limit"
            return
        balance = self._balance(debit.token)
        if debit.amount > balance:
            self.balances[debit.token] = balance
            debit.status, debit.code, debit.message = "failed", "insufficient_funds", "余额不足 / insufficient funds"
            return
        self.balances[debit.token] = balance - debit.amount
        debit.status = "succeeded"

    def _balance(self, token: str) -> Decimal:
        """The card's balance now: what the ledger left, or the opening balance its token implies."""
        if token in self.balances:
            return self.balances[token]
        seed = int(hashlib.sha256(token.encode()).hexdigest()[:8], 16)
        return Decimal(seed % 500) if _scenario(token) == "lowfunds" else Decimal(100_000 + seed % 1_000_000)

    def _deliver(self, body: dict[str, Any]) -> None:
        raw = json.dumps(body, separators=(",", ":")).encode()
        for attempt in range(5):  # banks retry callbacks with backoff
            try:
                response = self.http.post(
                    self.config.callback_url,
                    content=raw,
                    headers={"Content-Type": "application/json", HEADER: sign(raw, self.config.secret)},
                )
                with self.lock:
                    self.callbacks_sent += 1
                if response.status_code < 500:
                    return
            except httpx.HTTPError as exc:
                logger.info("callback to %s failed: %s", self.config.callback_url, exc)
            time.sleep(0.2 * 2**attempt)

    def query(self, key: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            debit = self.debits.get(key)
            if debit is None:
                return 404, {"code": "not_found", "idempotency_key": key}
            return 200, debit.as_json()

    # -- bindings -----------------------------------------------------------------
    def bind(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        number = "".join(ch for ch in str(payload.get("card_number", "")) if ch.isdigit())
        phone = "".join(ch for ch in str(payload.get("reserved_phone", "")) if ch.isdigit())
        if number in TEST_CARDS:
            if phone != TEST_CARDS[number]:
                return 422, {"code": "reserved_phone_mismatch", "message": "预留手机号不符 / reserved phone differs"}
        elif not (12 <= len(number) <= 19) or not luhn.is_valid(number):
            return 422, {"code": "card_number_invalid", "message": "卡号无效 / invalid card number"}
        request_id = uuid.uuid4().hex
        token = "sbx_ok_" + hashlib.sha256(f"card:{number}".encode()).hexdigest()[:24]
        with self.lock:
            # The card number itself is not kept: only what the token needs.
            self.bindings[request_id] = {"token": token, "bin": number[:6], "last4": number[-4:]}
        return 200, {"bind_request_id": request_id, "bin": number[:6], "last4": number[-4:]}

    def confirm(self, request_id: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            pending = self.bindings.get(request_id)
            if pending is None:
                return 404, {"code": "bind_request_expired", "message": "unknown or expired binding request"}
            if str(payload.get("sms_code", "")) != SMS_CODE:
                return 422, {"code": "sms_code_invalid", "message": "验证码错误 / wrong SMS code"}
            del self.bindings[request_id]
        return 200, pending

    def set_outage(self, mode: str, only: list[str] | None = None) -> tuple[int, dict[str, Any]]:
        """Switch the outage: ``mode`` off, error or timeout; ``only`` token substrings it hits (default all)."""
        if mode not in ("off", "error", "timeout"):
            return 400, {"code": "bad_request", "message": "mode is off, error or timeout"}
        if not isinstance(only, list) or not all(isinstance(part, str) and part for part in only):
            return 400, {"code": "bad_request", "message": "only is a list of non-empty strings"}
        with self.lock:
            self.outage, self.outage_only = mode, tuple(only)
        logger.warning("sandbox outage mode: %s %s", mode, ",".join(only) or "(every debit)")
        return 200, {"outage": mode, "only": only}

    def state(self) -> dict[str, Any]:
        with self.lock:
            statuses: dict[str, int] = {}
            for debit in self.debits.values():
                statuses[debit.status] = statuses.get(debit.status, 0) + 1
            return {"outage": self.outage, "debits": statuses, "callbacks_sent": self.callbacks_sent}


class Handler(BaseHTTPRequestHandler):
    bank: SandboxBank  # set on the server class by serve()
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s %s", self.address_string(), format % args)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _authenticated(self, body: bytes) -> bool:
        try:
            verify(self.headers.get(HEADER), body, self.bank.config.secret)
        except SignatureError as exc:
            self._send(401, {"code": "bad_signature", "message": str(exc)})
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 - stdlib API
        body = self._body()
        if self.path == "/healthz":
            return self._send(200, {"status": "ok"})
        if self.path == "/sandbox/state":
            return self._send(200, self.bank.state())
        if self.path == "/sandbox/ledger":
            return self._send(200, self.bank.ledger_entries())
        if self.path.startswith("/v1/debits/") and self._authenticated(body):
            return self._send(*self.bank.query(self.path.removeprefix("/v1/debits/")))
        if not self.path.startswith("/v1/"):
            self._send(404, {"code": "not_found"})
        return None

    def do_POST(self) -> None:  # noqa: N802 - stdlib API
        body = self._body()
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return self._send(400, {"code": "bad_request", "message": "body is not JSON"})
        if self.path == "/sandbox/outage":
            return self._send(*self.bank.set_outage(str(payload.get("mode", "")), payload.get("only", [])))
        if not self._authenticated(body):
            return None
        if self.path == "/v1/debits":
            return self._send(*self.bank.debit(payload))
        if self.path == "/v1/bindings":
            return self._send(*self.bank.bind(payload))
        if self.path.startswith("/v1/bindings/") and self.path.endswith("/confirm"):
            request_id = self.path.removeprefix("/v1/bindings/").removesuffix("/confirm")
            return self._send(*self.bank.confirm(request_id, payload))
        return self._send(404, {"code": "not_found"})


def serve(host: str, port: int, config: SandboxConfig) -> None:
    """Run the sandbox bank until interrupted."""
    bank = SandboxBank(config)
    handler = type("BoundHandler", (Handler,), {"bank": bank})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    logger.warning("sandbox bank on http://%s:%s, callbacks to %s", host, port, config.callback_url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
