"""``/api/v1/campaigns`` (DESIGN §16): create (JSON or CSV), list, detail, pause/resume/cancel.

Recipients are checked by ``statuses.campaigns.recipients`` one by one: a malformed or refused
recipient is listed in ``rejected`` with its index and code, and the rest go ahead. Only a
request that cannot be a campaign at all (no name, an unknown inbox, both or neither of content
and template, more than ``MAX_RECIPIENTS``) is a 400.

Recipients are read by hand rather than by a nested serializer: DRF would build 100,000 field
trees for a full campaign, and one bad recipient must not fail the request.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from inbox import selectors
from inbox.api.pagination import Pagination
from inbox.api.views import ApiView
from inbox.models import Campaign
from inbox.representation import iso
from statuses import campaign_counts
from statuses.campaigns import create, lifecycle
from statuses.campaigns.recipients import recipients_parse
from statuses.machine import Status

CSV_RESERVED = ("to", "customer_message_id")
STATUSES = [s.upper() for s in Status.values]


class CampaignPagination(Pagination):
    ordering = ("-created_at", "-id")


class RecipientSerializer(serializers.Serializer):
    # Documentation only: recipients are read by ``recipients_parse`` (module docstring).
    to = serializers.CharField(help_text="The address on the inbox's channel.")
    parameters = serializers.JSONField(required=False, help_text="A list or an object.")
    customer_message_id = serializers.CharField(required=False, max_length=200)


@extend_schema_field(RecipientSerializer(many=True))
class RecipientsField(serializers.Field):
    """The recipients as given: a JSON list, or an uploaded CSV file (multipart)."""

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "read"):
            return _csv_recipients(data)
        if isinstance(data, str):  # a multipart form field holding JSON
            try:
                return json.loads(data)
            except ValueError as exc:
                raise serializers.ValidationError("A JSON list of recipients.") from exc
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class CampaignCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    inbox = serializers.UUIDField()
    content = serializers.CharField(required=False, allow_blank=False, max_length=65536)
    template = serializers.JSONField(
        required=False,
        help_text="An approved template (WhatsApp: {name, language: {code}}); each recipient's "
        "`parameters` become its body parameters.",
    )
    scheduled_at = serializers.DateTimeField(
        required=False, default_timezone=UTC, help_text="Start then instead of now."
    )
    recipients = RecipientsField(
        required=False,
        help_text="Up to 100,000 objects `{to, parameters?, customer_message_id?}`; "
        "`parameters` is a list (placeholders {{1}}, {{2}}…) or an object ({{name}}). In a "
        "multipart request, a CSV file instead: a `to` column, an optional "
        "`customer_message_id` column and one column per parameter (headers 1, 2, … give a "
        "list, other headers an object).",
    )

    def validate_inbox(self, value):
        inbox = selectors.inbox_get(account=self.context["account"], inbox_id=value)
        if inbox is None:
            raise serializers.ValidationError("No such inbox.")
        return inbox

    def validate_template(self, value):
        if isinstance(value, str):  # a multipart form field
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise serializers.ValidationError("A JSON object.") from exc
        if not isinstance(value, dict):
            raise serializers.ValidationError("A JSON object.")
        return value

    def validate_recipients(self, value):
        if not isinstance(value, list):
            raise serializers.ValidationError("A list of recipients (or a CSV file).")
        if len(value) > create.MAX_RECIPIENTS:
            raise serializers.ValidationError(
                f"At most {create.MAX_RECIPIENTS:,} recipients per campaign (got {len(value):,})."
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("content" in attrs) == ("template" in attrs):
            raise serializers.ValidationError({"content": "Give either content or template."})
        if "recipients" not in attrs:
            raise serializers.ValidationError({"recipients": "This field is required."})
        return attrs


class CampaignCountsSerializer(serializers.Serializer):
    # Documentation only (the answer is built by ``campaign_representation``).
    QUEUED = serializers.IntegerField()
    UNKNOWN = serializers.IntegerField()
    SENT = serializers.IntegerField()
    RECEIVED = serializers.IntegerField()
    DELIVERED = serializers.IntegerField()
    READ = serializers.IntegerField()
    FAILED = serializers.IntegerField()
    EXPIRED = serializers.IntegerField()
    DELETED = serializers.IntegerField()


class CampaignSerializer(serializers.Serializer):
    # Documentation of ``campaign_representation``, the one shape of a campaign.
    id = serializers.UUIDField()
    name = serializers.CharField()
    inbox = serializers.UUIDField()
    channel_type = serializers.CharField()
    status = serializers.CharField(help_text="SCHEDULED, RUNNING, PAUSED, COMPLETED or CANCELLED.")
    total = serializers.IntegerField(help_text="Accepted recipients.")
    materialised = serializers.IntegerField(help_text="Recipients turned into messages so far.")
    rejected_count = serializers.IntegerField()
    counts = CampaignCountsSerializer(help_text="Messages by status, maintained live.")
    content = serializers.CharField()
    template = serializers.JSONField(allow_null=True)
    scheduled_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)


class RejectionSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="0-based position in `recipients` (CSV: row).")
    to = serializers.CharField()
    code = serializers.CharField(
        help_text="invalid_recipient, invalid_address, invalid_parameters, duplicate_recipient, "
        "duplicate_customer_message_id, contact_opted_out, outside_customer_service_window."
    )


class CampaignCreatedSerializer(CampaignSerializer):
    rejected = RejectionSerializer(many=True)


def campaign_representation(campaign: Campaign, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "id": str(campaign.id),
        "name": campaign.name,
        "inbox": str(campaign.inbox_id),
        "channel_type": campaign.inbox.channel_type,
        "status": campaign.status.upper(),
        "total": campaign.total,
        "materialised": campaign.materialised,
        "rejected_count": campaign.rejected,
        "counts": counts,
        "content": campaign.content,
        "template": campaign.template,
        "scheduled_at": iso(campaign.scheduled_at),
        "created_at": iso(campaign.created_at),
        "started_at": iso(campaign.started_at),
        "completed_at": iso(campaign.completed_at),
    }


def _one(campaign: Campaign) -> dict[str, Any]:
    return campaign_representation(campaign, campaign_counts.counts([campaign.id])[campaign.id])


def _csv_recipients(upload) -> list[dict[str, Any]]:
    try:
        text = io.TextIOWrapper(upload, encoding="utf-8-sig", newline="")
        reader = csv.DictReader(text)
        headers = reader.fieldnames or []
        if "to" not in headers:
            raise serializers.ValidationError("The CSV needs a `to` column.")
        names = [h for h in headers if h not in CSV_RESERVED]
        positional = bool(names) and all(h.strip().isdigit() for h in names)
        if positional:
            names.sort(key=lambda h: int(h))
        rows = []
        for row in reader:
            if len(rows) > create.MAX_RECIPIENTS:
                break  # enough to say "too many"
            parameters: Any = None
            if names:
                values = {h: row.get(h) or "" for h in names}
                parameters = list(values.values()) if positional else values
            rows.append(
                {
                    "to": row.get("to") or "",
                    "customer_message_id": row.get("customer_message_id") or None,
                    "parameters": parameters,
                }
            )
        return rows
    except (UnicodeDecodeError, csv.Error) as exc:
        raise serializers.ValidationError(f"Not a readable UTF-8 CSV file ({exc}).") from exc


CREATE_EXAMPLE = OpenApiExample(
    "Order updates",
    request_only=True,
    value={
        "name": "Order shipped",
        "inbox": "6f1c2a9e-3b1d-4a55-9f0e-2d8c6b7a1e42",
        "template": {"name": "order_shipped", "language": {"code": "en_US"}},
        "recipients": [
            {"to": "+15551230001", "parameters": ["Ana", "A-1001"]},
            {"to": "+15551230002", "parameters": ["Bo", "A-1002"], "customer_message_id": "o-2"},
        ],
    },
)


@extend_schema(tags=["campaigns"])
class CampaignListView(ApiView):
    serializer_class = CampaignSerializer
    pagination_class = CampaignPagination
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(summary="List campaigns", responses=CampaignSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginator.paginate_queryset(
            selectors.campaign_list(account=self.account), request, view=self
        )
        counts = campaign_counts.counts([c.id for c in page])
        return self.paginator.get_paginated_response(
            [campaign_representation(c, counts[c.id]) for c in page]
        )

    @extend_schema(
        summary="Create a campaign",
        description="Checks every recipient and answers 201 as soon as the campaign is stored; "
        "the worker then creates the messages (`materialised` grows) and sends them at the "
        "inbox's pace, after interactive messages. Rejected recipients are listed with their "
        "index and a code; the others are accepted. More than 100,000 recipients: 400. "
        "JSON, or multipart with the recipients as a CSV file.",
        request={
            "application/json": CampaignCreateSerializer,
            "multipart/form-data": CampaignCreateSerializer,
        },
        responses={201: CampaignCreatedSerializer},
        examples=[CREATE_EXAMPLE],
    )
    def post(self, request: Request) -> Response:
        data = self.validated(CampaignCreateSerializer, account=self.account)
        recipients, malformed = recipients_parse(data["recipients"])
        campaign, rejected = create.campaign_create(
            account=self.account,
            inbox=data["inbox"],
            name=data["name"],
            recipients=recipients,
            content=data.get("content", ""),
            template=data.get("template"),
            scheduled_at=data.get("scheduled_at"),
        )
        rejections = sorted(malformed + rejected, key=lambda r: r.index)
        body = {
            **_one(campaign),
            "rejected": [{"index": r.index, "to": r.to, "code": r.code} for r in rejections],
        }
        body["rejected_count"] = len(rejections)
        return Response(body, status=status.HTTP_201_CREATED)


CAMPAIGN_ID = OpenApiParameter(
    "campaign_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Campaign id."
)


@extend_schema(tags=["campaigns"], parameters=[CAMPAIGN_ID])
class CampaignDetailView(ApiView):
    serializer_class = CampaignSerializer

    @extend_schema(summary="Get a campaign with its live counts", responses=CampaignSerializer)
    def get(self, request: Request, campaign_id: str) -> Response:
        campaign = self.lookup(selectors.campaign_get, "campaign", campaign_id=campaign_id)
        return Response(_one(campaign))


ACTION_DESCRIPTION = (
    "pause: no further message is handed to the provider (those in flight finish); resume: "
    "sending continues, each message still sent once; cancel: unsent messages end FAILED with "
    "the code `cancelled`. A campaign in a state that does not allow the action: 409 "
    "`campaign_state_conflict`."
)


# One view per action (pause, resume, cancel), so each has its own summary in the schema.
@extend_schema(tags=["campaigns"], parameters=[CAMPAIGN_ID])
class CampaignActionView(ApiView):
    serializer_class = CampaignSerializer

    def act(self, campaign: Campaign) -> Campaign:
        raise NotImplementedError

    def respond_to(self, campaign_id: str) -> Response:
        campaign = self.lookup(selectors.campaign_get, "campaign", campaign_id=campaign_id)
        return Response(_one(self.act(campaign)))


def _action_schema(summary: str):
    return extend_schema(
        summary=summary, request=None, responses=CampaignSerializer, description=ACTION_DESCRIPTION
    )


class CampaignPauseView(CampaignActionView):
    def act(self, campaign: Campaign) -> Campaign:
        return lifecycle.campaign_pause(campaign=campaign)

    @_action_schema("Pause a campaign")
    def post(self, request: Request, campaign_id: str) -> Response:
        return self.respond_to(campaign_id)


class CampaignResumeView(CampaignActionView):
    def act(self, campaign: Campaign) -> Campaign:
        return lifecycle.campaign_resume(campaign=campaign)

    @_action_schema("Resume a paused campaign")
    def post(self, request: Request, campaign_id: str) -> Response:
        return self.respond_to(campaign_id)


class CampaignCancelView(CampaignActionView):
    def act(self, campaign: Campaign) -> Campaign:
        return lifecycle.campaign_cancel(campaign=campaign)

    @_action_schema("Cancel a campaign")
    def post(self, request: Request, campaign_id: str) -> Response:
        return self.respond_to(campaign_id)


ACTIONS = {"pause": CampaignPauseView, "resume": CampaignResumeView, "cancel": CampaignCancelView}
