"""How the API's operations are described in its OpenAPI schema (drf-spectacular)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_standardized_errors.openapi import AutoSchema

from repayments.api.filtering import NO_NUL_PATTERN
from repayments.api.idempotency import IDEMPOTENCY_PARAMETER, is_idempotent


class ApiAutoSchema(AutoSchema):
    """drf-standardized-errors' schema (one error shape), plus the ``Idempotency-Key`` header.

    Every operation whose handler is wrapped by ``repayments.api.idempotency.idempotent``
    states the header with the rule the wrapper enforces (required, 8–255 printable
    ASCII characters), so the schema and the server cannot disagree on which
    operations need it.
    """

    def get_override_parameters(self) -> list:
        parameters = list(super().get_override_parameters())
        handler = getattr(self.view, getattr(self.view, "action", None) or self.method.lower(), None)
        if is_idempotent(handler):
            parameters.append(IDEMPOTENCY_PARAMETER)
        return parameters


class StrictSerializerExtension(OpenApiSerializerExtension):
    """Input serializers refuse unknown fields (``StrictSerializer``): the schema says so (``additionalProperties``)."""

    target_class = "repayments.api.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        for field in schema.get("properties", {}).values():
            # DRF's text fields refuse NUL characters (400 null_characters_not_allowed): say so.
            if field.get("type") == "string" and not {"enum", "format", "pattern"} & set(field):
                field["pattern"] = NO_NUL_PATTERN
        return schema
