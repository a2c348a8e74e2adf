"""The gateway's debit-result callback. Signed by the bank (HMAC), not by a staff credential."""

from __future__ import annotations

import json
import logging
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from repayments.api.errors import ErrorResponseSerializer
from repayments.gateway.client import DebitResult
from repayments.gateway.signing import HEADER, SignatureError, verify
from repayments.models import MONEY, AttemptStatus, GatewayReviewItem, ReviewReason
from repayments.services.collection import attempt_apply_result

logger = logging.getLogger(__name__)


class CallbackRefused(exceptions.APIException):
    """422: a well-formed, signed result we cannot apply (kept for review)."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = _("The result cannot be applied; it is kept for review.")
    default_code = "unprocessable"


class _RawBody(BaseParser):
    """Leave the body unparsed: the signature covers the exact bytes."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):  # noqa: ARG002 - DRF parser API
        return {}


_RESULT_DOC = inline_serializer(
    "DebitResultCallback",
    {
        "idempotency_key": serializers.CharField(help_text="Our attempt number."),
        "status": serializers.ChoiceField(choices=[AttemptStatus.SUCCEEDED, AttemptStatus.FAILED]),
        "amount": serializers.DecimalField(**MONEY, required=False),
        "failure_code": serializers.CharField(required=False),
        "failure_message": serializers.CharField(required=False),
        "gateway_reference": serializers.CharField(required=False),
    },
)


class GatewayCallbackView(APIView):
    """``POST /api/v1/gateway/callbacks/``: a debit result from the gateway.

    403 for a missing, malformed, wrong or stale signature (nothing changes, nothing
    else is read: any header, however malformed, is a 403, never an error); 400 for
    a body that is not a debit result (kept for review); 200 ``applied`` (a late
    success too) or ``replay`` (the bank may call back more than once); 422 for
    an unknown attempt, or an amount or currency that differs from the attempt's
    (kept for review, nothing booked).
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []  # the bank's volume; a forged call costs one HMAC check
    parser_classes = [_RawBody]

    @extend_schema(
        operation_id="gateway_callback",
        request=_RESULT_DOC,
        parameters=[
            OpenApiParameter(
                HEADER,
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="t=<unix seconds>,v1=<hex HMAC-SHA256 of 't.body'> with the shared gateway secret.",
            )
        ],
        responses={
            200: inline_serializer("CallbackResult", {"result": serializers.CharField()}),
            400: ErrorResponseSerializer,
            403: ErrorResponseSerializer,
            422: ErrorResponseSerializer,
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        body = request._request.body
        try:
            verify(
                request.headers.get(HEADER), body, settings.GATEWAY_SECRET, settings.GATEWAY_SIGNATURE_TOLERANCE_SECONDS
            )
        except SignatureError as exc:
            logger.warning("gateway callback refused: %s", exc)
            raise exceptions.PermissionDenied(detail=str(exc), code="bad_signature") from None
        try:
            result = _debit_result(body)
        except (ValueError, KeyError, TypeError, InvalidOperation, AttributeError):
            # PostgreSQL text and jsonb cannot hold NUL: kept visible, not as the character.
            raw = body.decode(errors="replace")[:2000].replace("\x00", "\\u0000")
            GatewayReviewItem.objects.create(reason=ReviewReason.MALFORMED, payload={"raw": raw})
            raise exceptions.ParseError(detail="Not a debit result.", code="malformed") from None
        outcome = attempt_apply_result(result=result, source="callback")
        if outcome.reason in ("unknown_attempt", "amount_mismatch"):
            raise CallbackRefused(detail=f"{outcome.reason}: {result.idempotency_key}", code=outcome.reason)
        return Response({"result": "applied" if outcome.applied else outcome.reason})


def _debit_result(body: bytes) -> DebitResult:
    """The debit result in a callback body.

    Raises:
        ValueError (or KeyError, TypeError, InvalidOperation, AttributeError): not a
            JSON object with an ``idempotency_key`` and a ``status``; a success without
            its amount; an amount that is not a finite number; text PostgreSQL cannot
            store (a NUL character, or a lone surrogate escape UTF-8 cannot encode),
            which no bank sends.
    """
    data = json.loads(body, parse_float=Decimal)  # amounts never pass through float
    if data.get("status") == "succeeded" and data.get("amount") is None:
        raise ValueError("a success must state its amount")
    result = DebitResult.from_json(data)
    if not result.idempotency_key:
        raise ValueError("no idempotency_key")
    if result.amount is not None and not result.amount.is_finite():
        raise ValueError("the amount is not a number")
    texts = (result.idempotency_key, result.status, result.code, result.message, result.reference, result.currency)
    for text in texts:
        text.encode()  # UnicodeEncodeError (a ValueError) for a lone surrogate such as "\ud800"
        if "\x00" in text:
            raise ValueError("a NUL character")
    return result


gateway_callback = GatewayCallbackView.as_view()
