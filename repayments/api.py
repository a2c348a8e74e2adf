"""Machine endpoints. The gateway callback is signed by the bank, not by a staff session."""

from __future__ import annotations

import json
import logging
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from repayments.gateway.client import DebitResult
from repayments.gateway.signing import HEADER, SignatureError, verify
from repayments.models import GatewayReviewItem, ReviewReason
from repayments.services.collection import attempt_apply_result

logger = logging.getLogger(__name__)


@csrf_exempt  # authenticated by the HMAC signature instead of a session
@require_POST
def gateway_callback(request: HttpRequest) -> JsonResponse:
    """``POST /api/v1/gateway/callbacks/``: a debit result from the gateway.

    403 for a missing, wrong or stale signature (nothing changes); 400 for a body
    that is not a debit result (kept for review); 200 ``applied`` or ``replay``;
    422 for an unknown attempt or a mismatched amount (kept for review).
    """
    body = request.body
    try:
        verify(request.headers.get(HEADER), body, settings.GATEWAY_SECRET, settings.GATEWAY_SIGNATURE_TOLERANCE_SECONDS)
    except SignatureError as exc:
        logger.warning("gateway callback refused: %s", exc)
        return JsonResponse({"error": "bad_signature", "detail": str(exc)}, status=403)
    try:
        data = json.loads(body, parse_float=Decimal)  # amounts never pass through float
        if data.get("status") == "succeeded" and data.get("amount") is None:
            raise ValueError("a success must state its amount")
        result = DebitResult.from_json(data)
        if not result.idempotency_key:
            raise ValueError("no idempotency_key")
    except (ValueError, KeyError, TypeError, InvalidOperation, AttributeError):
        GatewayReviewItem.objects.create(
            reason=ReviewReason.MALFORMED, payload={"raw": body.decode(errors="replace")[:2000]}
        )
        return JsonResponse({"error": "malformed", "detail": "not a debit result"}, status=400)
    outcome = attempt_apply_result(result=result, source="callback")
    if outcome.reason in ("unknown_attempt", "amount_mismatch"):
        return JsonResponse({"error": outcome.reason, "idempotency_key": result.idempotency_key}, status=422)
    return JsonResponse({"result": "applied" if outcome.applied else outcome.reason})
