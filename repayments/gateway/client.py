"""The gateway interface and its HTTP client.

Every bank/payment channel is reached over HTTP with signed JSON. A debit is
identified by our idempotency key (the attempt number): sending the same key
twice never debits twice. Results arrive asynchronously at
``POST /api/v1/gateway/callbacks/``; ``query`` reads the channel's record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import httpx
from django.conf import settings

from repayments.gateway.signing import HEADER, sign


class GatewayError(Exception):
    """The channel answered with an error we cannot map to a debit outcome."""

    def __init__(self, code: str, message: str = "") -> None:
        self.code = code
        super().__init__(f"{code}: {message}" if message else code)


class GatewayTimeout(Exception):
    """No answer in time: the outcome is unknown and must be resolved by ``query``."""


class GatewayUnreachable(Exception):
    """The request was not delivered (connection refused, DNS): nothing happened at the channel."""


@dataclass(frozen=True)
class DebitResult:
    """The channel's view of one debit.

    ``status`` is ``processing`` (result follows by callback), ``succeeded``,
    ``failed`` or ``not_found`` (``query`` only: the channel never got it).
    ``amount`` is in the currency's major unit (yuan, NT$) as a ``Decimal``.
    """

    idempotency_key: str
    status: str
    amount: Decimal | None = None
    code: str = ""
    message: str = ""
    reference: str = ""
    currency: str = ""  # ISO 4217, when the channel reports it

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DebitResult:
        amount = data.get("amount")
        return cls(
            idempotency_key=str(data.get("idempotency_key", "")),
            status=str(data["status"]),
            amount=Decimal(str(amount)) if amount is not None else None,
            code=str(data.get("code") or ""),
            message=str(data.get("message") or ""),
            reference=str(data.get("reference") or ""),
            currency=str(data.get("currency") or ""),
        )


@dataclass(frozen=True)
class BindChallenge:
    """A pending card binding; the bank has sent an SMS code to the reserved phone."""

    bind_request_id: str
    bin: str
    last4: str
    # Filled by our side from the BIN table, so the binding can be recorded after confirmation.
    bank_code: str = ""
    bank_name: str = ""
    card_type: str = "DC"


@dataclass(frozen=True)
class BoundCard:
    """A verified binding: the channel's token stands for the card from now on."""

    token: str
    bin: str
    last4: str


class HttpGateway:
    """Client of a gateway speaking the sandbox's protocol (``docs/repayment-engine.md``).

    Args:
        base_url: e.g. ``http://127.0.0.1:8099``.
        secret: shared HMAC secret for request and callback signatures.
        timeout: seconds to wait for an answer before the outcome counts as unknown.
    """

    def __init__(self, base_url: str, secret: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)))

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> httpx.Response:
        body = json.dumps(payload or {}, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", HEADER: sign(body, self.secret)}
        try:
            return self.client.request(method, self.base_url + path, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                raise GatewayUnreachable(str(exc)) from exc
            raise GatewayTimeout(str(exc)) from exc
        except httpx.TransportError as exc:
            # Connection refused or reset before a response: a reset after sending
            # is ambiguous, so only a connect error counts as "not delivered".
            if isinstance(exc, httpx.ConnectError):
                raise GatewayUnreachable(str(exc)) from exc
            raise GatewayTimeout(str(exc)) from exc

    def debit(self, *, idempotency_key: str, token: str, amount: Decimal, currency: str) -> DebitResult:
        """Ask the channel to debit ``amount`` (major units, e.g. yuan) from the card behind ``token``.

        Raises:
            GatewayTimeout: no answer in time (outcome unknown).
            GatewayUnreachable: not delivered.
            GatewayError: the channel refused the request itself (e.g. key reused with another amount).
        """
        response = self._call(
            "POST",
            "/v1/debits",
            {"idempotency_key": idempotency_key, "token": token, "amount": str(amount), "currency": currency},
        )
        return self._debit_result(response)

    def query(self, *, idempotency_key: str) -> DebitResult:
        """The channel's record of the debit with ``idempotency_key`` (``not_found`` if none)."""
        response = self._call("GET", f"/v1/debits/{idempotency_key}")
        if response.status_code == 404:
            return DebitResult(idempotency_key=idempotency_key, status="not_found")
        return self._debit_result(response)

    def bind_card(self, *, card_number: str, reserved_phone: str) -> BindChallenge:
        """Start binding a card; the bank texts a code to ``reserved_phone``.

        The card number is sent to the channel and nowhere else; it is not kept.

        Raises:
            GatewayError: the bank refused (e.g. ``card_number_invalid``, ``reserved_phone_mismatch``).
        """
        response = self._call("POST", "/v1/bindings", {"card_number": card_number, "reserved_phone": reserved_phone})
        data = self._json(response)
        return BindChallenge(bind_request_id=data["bind_request_id"], bin=data["bin"], last4=data["last4"])

    def confirm_binding(self, *, bind_request_id: str, sms_code: str) -> BoundCard:
        """Finish a binding with the SMS code the customer read out.

        Raises:
            GatewayError: wrong or expired code (``sms_code_invalid``, ``bind_request_expired``).
        """
        response = self._call("POST", f"/v1/bindings/{bind_request_id}/confirm", {"sms_code": sms_code})
        data = self._json(response)
        return BoundCard(token=data["token"], bin=data["bin"], last4=data["last4"])

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise GatewayError("bad_response", f"HTTP {response.status_code}, not JSON") from None
        if response.status_code >= 400:
            raise GatewayError(str(data.get("code", "error")), str(data.get("message", "")))
        return data

    def _debit_result(self, response: httpx.Response) -> DebitResult:
        return DebitResult.from_json(self._json(response))


@lru_cache(maxsize=1)
def _gateway(base_url: str, secret: str, timeout: float) -> HttpGateway:
    return HttpGateway(base_url, secret, timeout)


def get_gateway() -> HttpGateway:
    """The configured gateway (``GATEWAY_URL``, ``GATEWAY_SECRET``, ``GATEWAY_TIMEOUT_SECONDS``)."""
    return _gateway(settings.GATEWAY_URL, settings.GATEWAY_SECRET, settings.GATEWAY_TIMEOUT_SECONDS)
