"""REST API of WhatsApp message templates (DESIGN §13): list, sync, create, delete.

Shapes, examples and views in one module so the template API reads in one place; the work
is done by ``statuses.templates`` (provider calls, writes) and ``inbox.template_selectors``.
"""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from inbox import selectors, template_selectors
from inbox.api.schema import ErrorResponse
from inbox.api.views import ApiView
from inbox.models import Template
from statuses import templates

# Meta's limits: a template's components are a handful of small objects.
MAX_COMPONENTS = 10


class TemplateSerializer(serializers.ModelSerializer):
    inbox = serializers.UUIDField(source="inbox_id", read_only=True)
    parameters = serializers.SerializerMethodField(
        help_text="How many placeholders a send must fill: {header: N, body: M}."
    )

    class Meta:
        model = Template
        fields = [
            "id",
            "inbox",
            "name",
            "language",
            "category",
            "status",
            "quality_score",
            "rejected_reason",
            "components",
            "parameters",
            "provider_template_id",
            "updated_at",
        ]
        read_only_fields = fields

    @staticmethod
    def get_parameters(template: Template) -> dict[str, int]:
        return {"header": template.header_params, "body": template.body_params}


class TemplateCreateSerializer(serializers.Serializer):
    inbox = serializers.UUIDField()
    name = serializers.CharField(
        max_length=512,
        validators=[
            RegexValidator(
                templates.NAME_PATTERN,
                "Lowercase letters, digits and underscores only (Meta's rule).",
            )
        ],
    )
    language = serializers.RegexField(
        r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$", max_length=15, help_text="e.g. en_US."
    )
    category = serializers.ChoiceField(choices=Template.Category.choices)
    components = serializers.ListField(
        child=serializers.DictField(), min_length=1, max_length=MAX_COMPONENTS
    )

    def validate_inbox(self, value: Any):
        inbox = selectors.inbox_get(account=self.context["account"], inbox_id=value)
        if inbox is None:
            raise serializers.ValidationError("No such inbox.")
        if inbox.channel_type not in templates.TEMPLATE_CHANNEL_TYPES:
            raise serializers.ValidationError("Templates need a whatsapp_cloud or 360dialog inbox.")
        return inbox


SyncResultSerializer = inline_serializer(
    "TemplateSyncResult",
    {
        "synced": serializers.IntegerField(help_text="Templates the provider listed."),
        "created": serializers.IntegerField(),
        "updated": serializers.IntegerField(),
        "removed": serializers.IntegerField(help_text="Gone from the provider: now DELETED."),
    },
)

_TEMPLATE_VALUE = {
    "id": 7,
    "inbox": "9b1e2d55-7a0c-4c8e-b7f5-2f6a3e1d4c90",
    "name": "order_update",
    "language": "en_US",
    "category": "UTILITY",
    "status": "APPROVED",
    "quality_score": "GREEN",
    "rejected_reason": "",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
        {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."},
    ],
    "parameters": {"header": 1, "body": 2},
    "provider_template_id": "1234567890",
    "updated_at": "2026-01-05T10:00:00Z",
}
PROVIDER_ERROR = OpenApiResponse(
    ErrorResponse,
    description="The provider refused: its code and message are passed through.",
    examples=[
        OpenApiExample(
            "provider_error",
            value={
                "error": {
                    "code": "provider_error",
                    "message": "The provider refused: Invalid parameter (code 100).",
                    "provider_code": "100",
                    "provider_message": "Invalid parameter",
                }
            },
        )
    ],
)
UNREACHABLE = OpenApiResponse(ErrorResponse, description="provider_unreachable")
TEMPLATE_FILTERS = [
    OpenApiParameter("inbox", OpenApiTypes.UUID),
    OpenApiParameter(
        "status",
        OpenApiTypes.STR,
        description="One or more, comma-separated: " + ", ".join(Template.Status.values),
    ),
    OpenApiParameter("category", OpenApiTypes.STR, enum=Template.Category.values),
    OpenApiParameter("name", OpenApiTypes.STR, description="Part of the name."),
]


@extend_schema(tags=["templates"])
class TemplateListView(ApiView):
    serializer_class = TemplateSerializer

    @extend_schema(
        summary="List WhatsApp templates",
        parameters=TEMPLATE_FILTERS,
        responses=TemplateSerializer(many=True),
        examples=[OpenApiExample("Approved", value=[_TEMPLATE_VALUE], response_only=True)],
    )
    def get(self, request: Request) -> Response:
        return self.paginated(
            template_selectors.template_list(account=self.account, filters=request.query_params)
        )

    @extend_schema(
        summary="Create a template (submitted to Meta for review)",
        description="The name is checked (`^[a-z0-9_]{1,512}$`) before the provider is "
        "called. Answers 201 with the provider's status (usually PENDING); a webhook or a "
        "sync brings the verdict.",
        request=TemplateCreateSerializer,
        responses={201: TemplateSerializer, 400: PROVIDER_ERROR, 502: UNREACHABLE},
        examples=[
            OpenApiExample(
                "Order update",
                value={
                    "inbox": _TEMPLATE_VALUE["inbox"],
                    "name": "order_update",
                    "language": "en_US",
                    "category": "UTILITY",
                    "components": _TEMPLATE_VALUE["components"],
                },
                request_only=True,
            ),
            OpenApiExample(
                "Pending", value={**_TEMPLATE_VALUE, "status": "PENDING"}, response_only=True
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        data = self.validated(TemplateCreateSerializer, account=self.account)
        template = templates.template_create(**data)
        return self.respond(template, status.HTTP_201_CREATED)


@extend_schema(
    tags=["templates"],
    parameters=[OpenApiParameter("template_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
)
class TemplateDetailView(ApiView):
    serializer_class = TemplateSerializer

    def get_template(self, template_id: str) -> Template:
        return self.lookup(template_selectors.template_get, "template", template_id=template_id)

    @extend_schema(summary="Get a template", responses=TemplateSerializer)
    def get(self, request: Request, template_id: str) -> Response:
        return self.respond(self.get_template(template_id))

    @extend_schema(
        summary="Delete a template at the provider",
        description="The template is deleted at the provider and kept here as DELETED "
        "(messages sent with it keep their link).",
        responses={204: None, 400: PROVIDER_ERROR, 502: UNREACHABLE},
    )
    def delete(self, request: Request, template_id: str) -> Response:
        templates.template_delete(template=self.get_template(template_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    tags=["templates"],
    parameters=[OpenApiParameter("inbox_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
)
class InboxTemplateSyncView(ApiView):
    serializer_class = TemplateSerializer

    @extend_schema(
        summary="Sync an inbox's templates from the provider",
        description="Reads every template (following the provider's paging) and stores it; "
        "a template the provider no longer lists becomes DELETED.",
        request=None,
        responses={200: SyncResultSerializer, 400: PROVIDER_ERROR, 502: UNREACHABLE},
        examples=[
            OpenApiExample(
                "Synced",
                value={"synced": 12, "created": 2, "updated": 1, "removed": 0},
                response_only=True,
            )
        ],
    )
    def post(self, request: Request, inbox_id: str) -> Response:
        inbox = self.lookup(selectors.inbox_get, "inbox", inbox_id=inbox_id)
        result = templates.templates_sync(inbox=inbox)
        return Response(
            {
                "synced": result.synced,
                "created": result.created,
                "updated": result.updated,
                "removed": result.removed,
            }
        )
