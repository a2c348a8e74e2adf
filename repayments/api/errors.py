"""API errors: every 4xx/5xx body has one machine-readable shape.

The shape is drf-standardized-errors' (``{"type": …, "errors": [{"code", "detail",
"attr"}]}``); this module adds the mapping of our services' refusals to it.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_standardized_errors.handler import ExceptionHandler
from rest_framework import exceptions, serializers, status

from repayments.services.errors import RuleViolation


class Conflict(exceptions.APIException):
    """409: the request is well formed but the bill's state forbids it now (nothing changed)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The request conflicts with the current state.")
    default_code = "conflict"


class IdempotencyKeyReused(exceptions.APIException):
    """422: an Idempotency-Key was sent again with a different request."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = _("This Idempotency-Key was used for a different request.")
    default_code = "idempotency_key_reused"


class ApiExceptionHandler(ExceptionHandler):
    """Turns a service's :class:`RuleViolation` into an API error.

    A refusal tied to one input (``field`` set) is a 400 validation error naming
    that field; a refusal of the whole request (the bill is closed, changed since
    it was read, a debit is at the bank, a request is already waiting) is a 409.
    """

    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, RuleViolation):
            if exc.field and exc.field != "__all__":
                return exceptions.ValidationError({exc.field: [str(exc)]}, code="invalid")
            return Conflict(detail=str(exc), code="rule_violation")
        return super().convert_known_exceptions(exc)


class ErrorItemSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable: required, unknown_field, rule_violation, …")
    detail = serializers.CharField(help_text="For a person; follows the request's language.")
    attr = serializers.CharField(allow_null=True, help_text="The input field (or header) at fault, if any.")


class ErrorResponseSerializer(serializers.Serializer):
    """The body of every 400, 403, 409 and 422 (drf-standardized-errors' shape)."""

    type = serializers.ChoiceField(choices=["validation_error", "client_error", "server_error"])
    # DRF's metaclass moves declared fields out of the class, so this does not replace
    # ``Serializer.errors`` at run time; the stubs cannot express that.
    errors = ErrorItemSerializer(many=True)  # type: ignore[assignment]
