"""OpenAPI details shared by every operation: the API-key security scheme and error answers."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorResponse = inline_serializer(
    "ErrorResponse",
    {
        "error": inline_serializer(
            "ErrorDetail",
            {
                "code": serializers.CharField(help_text="Stable, machine-readable."),
                "message": serializers.CharField(help_text="For people."),
                "field": serializers.CharField(
                    required=False, allow_null=True, help_text="Validation errors: which field."
                ),
                "details": serializers.DictField(
                    child=serializers.ListField(child=serializers.CharField()),
                    required=False,
                    help_text="Validation errors: every field and its problems.",
                ),
            },
        )
    },
)

_ERRORS = {
    400: ("Invalid input.", "validation_error", "to: This field is required."),
    401: ("Missing, invalid or revoked API key.", "not_authenticated", "No API key given."),
    403: ("Not allowed (browsable API: CSRF).", "permission_denied", "Permission denied."),
    404: (
        "Not found (or belongs to another account).",
        "not_found",
        "No message with this id.",
    ),
    405: ("Method not allowed.", "method_not_allowed", 'Method "PUT" not allowed.'),
    406: ("Not acceptable.", "not_acceptable", "Could not satisfy the Accept header."),
    415: ("Unsupported media type.", "unsupported_media_type", "Send application/json."),
    429: ("Too many failed authentication attempts.", "throttled", "Try again later."),
}


def error_response(status: int, description: str, code: str, message: str) -> OpenApiResponse:
    return OpenApiResponse(
        ErrorResponse,
        description=description,
        examples=[
            OpenApiExample(code, value={"error": {"code": code, "message": message}}),
        ],
    )


class AutoSchema(SpectacularAutoSchema):
    """Document the uniform error answers on every operation (see ``inbox.api.errors``)."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status, (description, code, message) in _ERRORS.items():
            key = str(status)
            if key not in responses:
                responses[key] = self._get_response_for_code(
                    error_response(status, description, code, message), key
                )
        return responses


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "inbox.api.authentication.ApiKeyAuthentication"
    name = ["ApiKeyBearer", "ApiKeyHeader"]

    def get_security_requirement(self, auto_schema):
        return [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}]  # either header (OR, not AND)

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": "`Authorization: Bearer <key>` (create one with "
                "`python manage.py create_api_key --account NAME`).",
            },
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]


class MembershipSessionScheme(OpenApiAuthenticationExtension):
    target_class = "inbox.api.authentication.MembershipSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
