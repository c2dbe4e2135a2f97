"""REST API views (DESIGN §7): parse, authorize, call one selector or service, serialize.

Every object is looked up within ``request.auth.account``; another account's object is a 404
exactly like a missing one. Errors are rendered by ``inbox.api.errors.exception_handler``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import exceptions, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer

from inbox import selectors
from inbox import services as inbox_services
from inbox.api import examples, message_input, serializers
from inbox.api.authentication import AccountAccess
from inbox.api.pagination import (
    AttemptPagination,
    ConversationMessagePagination,
    ConversationPagination,
    MessageFeedPagination,
    Pagination,
)
from inbox.api.permissions import HasAccount
from inbox.exceptions import WrongChannel
from inbox.models import Account, Message
from statuses import outbound, outgoing, read_receipts
from statuses import services as status_services
from statuses.catalogue import FAMILY_SLUGS, ChannelType, Family
from statuses.machine import Status
from statuses.models import StatusEvent

# Polling hints for non-terminal messages (seconds): soon while the send is in progress,
# slower once the provider has it and we wait for the contact's phone.
RETRY_AFTER = {Status.QUEUED: 2, Status.UNKNOWN: 10}
RETRY_AFTER_DEFAULT = 30

RETRY_AFTER_HEADER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=True,
    description="Only while the message is not terminal: seconds to wait before polling again.",
)


def _uuid_path(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.UUID, OpenApiParameter.PATH, description=description)


def _int_path(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.INT, OpenApiParameter.PATH, description=description)


FAMILY_PATH = OpenApiParameter(
    "family",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    enum=sorted(FAMILY_SLUGS),
    description="The channel family, lowercase (whatsapp, sms, facebook, …).",
)

MESSAGE_FILTERS = [
    OpenApiParameter(
        "status",
        OpenApiTypes.STR,
        description="UPPERCASE status, several comma-separated (e.g. `DELIVERED,READ`): "
        + ", ".join(serializers.STATUS_VALUES),
    ),
    OpenApiParameter("channel", OpenApiTypes.STR, enum=Family.values, description="Family."),
    OpenApiParameter("channel_type", OpenApiTypes.STR, enum=ChannelType.values),
    OpenApiParameter("inbox", OpenApiTypes.UUID),
    OpenApiParameter("conversation", OpenApiTypes.INT),
    OpenApiParameter("direction", OpenApiTypes.STR, enum=Message.Direction.values),
    OpenApiParameter("is_terminal", OpenApiTypes.BOOL),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="Exclusive."),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="Exclusive."),
    OpenApiParameter(
        "updated_after",
        OpenApiTypes.DATETIME,
        description="Only messages whose last change was written after this instant "
        "(exclusive). A starting point by the clock, to use once: then follow `next` and "
        "`poll`, whose cursor is the exact way to receive every later change.",
    ),
]

FEED_DESCRIPTION = (
    "A change feed. Messages are ordered by their last change (a position the database "
    "stamps on every write), never by a timestamp, and the cursor is that exact position: "
    "no offset, no cut-off, any page size, any number of messages changed together.\n\n"
    "**Contract.** Following `next` until it is null, then `poll` (present on every page) "
    "again and again, a client receives every committed change: "
    "each message is listed after its latest change, exactly once per pass over messages "
    "that do not change meanwhile; a message that changes again is listed again, with its "
    "new state (at-least-once per message, latest state wins — key your copy by `id`). "
    "Changes are handed out only once no transaction that could commit an earlier position "
    "is still in progress, so a write that commits late is delayed, never skipped; a page "
    "may therefore end (`next` null) while changes are being committed: keep polling.\n\n"
    "Filters (`status`, `inbox`, …) narrow what is listed and are kept in the links. A "
    "message that changes so that it no longer matches a filter is simply not listed "
    "again on that filtered feed; follow the unfiltered feed to see every change."
)


def retry_after(message: Message) -> int | None:
    if message.is_terminal:
        return None
    return RETRY_AFTER.get(message.status, RETRY_AFTER_DEFAULT)


# Every endpoint: account-scoped lookups, validated input, ``serializer_class`` output. (A comment,
# not a docstring: drf-spectacular would print a class docstring as every operation's description.)
class ApiView(GenericAPIView):
    permission_classes = [HasAccount]
    pagination_class = Pagination

    @property
    def account(self) -> Account:
        auth: AccountAccess = self.request.auth
        return auth.account

    def lookup(self, selector: Callable[..., Any], what: str, **ids: Any) -> Any:
        """``selector(account=…, **ids)``, or a 404 (another account's object is "missing")."""
        instance = selector(account=self.account, **ids)
        if instance is None:
            raise self.not_found(what)
        return instance

    def not_found(self, what: str) -> exceptions.NotFound:
        return exceptions.NotFound(f"No {what} with this id.")

    def validated(self, serializer_class: type[Serializer], **context: Any) -> dict[str, Any]:
        """The request body checked by ``serializer_class``; a 400 naming the field if not."""
        data = serializer_class(data=self.request.data, context=context)
        data.is_valid(raise_exception=True)
        return data.validated_data

    def respond(
        self, instance: Any, code: int = status.HTTP_200_OK, serializer_class=None
    ) -> Response:
        serializer_class = serializer_class or self.serializer_class
        return Response(serializer_class(instance).data, status=code)

    def paginated(self, queryset) -> Response:
        page = self.paginator.paginate_queryset(queryset, self.request, view=self)
        data = self.serializer_class(page, many=True, context={"request": self.request}).data
        return self.paginator.get_paginated_response(data)


# Views of messages, generic or of one channel family (``family=None``: every family). A single
# message is answered with the ``Retry-After`` polling hint while it is not terminal.
class MessageView(ApiView):
    serializer_class = serializers.MessageSerializer

    def get_message(self, message_id: str, family: str | None = None) -> Message:
        return self.lookup(selectors.message_get, "message", message_id=message_id, family=family)

    def list_messages(self, family: str | None = None) -> Response:
        filters = self.request.query_params
        return self.paginated(
            selectors.message_list(account=self.account, filters=filters, family=family)
        )

    def message_response(self, message: Message, code: int = status.HTTP_200_OK) -> Response:
        response = self.respond(message, code)
        seconds = retry_after(message)
        if seconds is not None:
            response["Retry-After"] = str(seconds)
        return response


# ---------------------------------------------------------------------------------------------
# Inboxes
# ---------------------------------------------------------------------------------------------


@extend_schema(tags=["inboxes"])
class InboxListView(ApiView):
    serializer_class = serializers.InboxSerializer

    @extend_schema(
        summary="List inboxes",
        responses=serializers.InboxSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        return self.paginated(selectors.inbox_list(account=self.account))

    @extend_schema(
        summary="Connect a channel (create an inbox)",
        description="Required config keys depend on `channel_type` (DESIGN §4.1); a missing "
        "key is a 400 naming it. Secrets are write-only: the answer lists which are set.",
        request=serializers.InboxCreateSerializer,
        responses={201: serializers.InboxSerializer},
        examples=examples.INBOX_CREATE,
    )
    def post(self, request: Request) -> Response:
        data = self.validated(serializers.InboxCreateSerializer)
        inbox = inbox_services.inbox_create(account=self.account, **data)
        return self.respond(inbox, status.HTTP_201_CREATED)


@extend_schema(tags=["inboxes"], parameters=[_uuid_path("inbox_id", "Inbox id.")])
class InboxDetailView(ApiView):
    serializer_class = serializers.InboxSerializer

    def get_inbox(self, inbox_id: str):
        return self.lookup(selectors.inbox_get, "inbox", inbox_id=inbox_id)

    @extend_schema(summary="Get an inbox", responses=serializers.InboxSerializer)
    def get(self, request: Request, inbox_id: str) -> Response:
        return self.respond(self.get_inbox(inbox_id))

    @extend_schema(
        summary="Update an inbox",
        description="`config` is merged into the current one (a key set to null is removed) "
        "and the result is checked like on create.",
        request=serializers.InboxUpdateSerializer,
        responses=serializers.InboxSerializer,
        examples=examples.INBOX_UPDATE,
    )
    def patch(self, request: Request, inbox_id: str) -> Response:
        inbox = self.get_inbox(inbox_id)
        data = self.validated(serializers.InboxUpdateSerializer, inbox=inbox)
        return self.respond(inbox_services.inbox_update(inbox=inbox, **data))


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------


@extend_schema(tags=["messages"])
class MessageListView(MessageView):
    pagination_class = MessageFeedPagination

    @extend_schema(
        summary="List messages (change feed)",
        description=FEED_DESCRIPTION,
        parameters=MESSAGE_FILTERS,
        responses=serializers.MessageSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        return self.list_messages()

    @extend_schema(
        summary="Send a message",
        description="Queues the message and answers 202 with it (`status: QUEUED`). A "
        "repeated `customer_message_id` answers 200 with the existing message instead. "
        "Free text outside WhatsApp/Messenger/Instagram's 24-hour window: 422 "
        "`outside_customer_service_window` (send a template). A WhatsApp template the inbox "
        "has synced must be APPROVED (422 `template_not_approved`) and get one parameter per "
        "placeholder (422 `template_parameters_mismatch`); `template.parameters` "
        "(`{header?: [...], body?: [...]}`) is expanded into Cloud API `components`.",
        request=serializers.MessageCreateSerializer,
        responses={
            202: OpenApiResponse(serializers.MessageSerializer, description="Queued."),
            200: OpenApiResponse(
                serializers.MessageSerializer,
                description="Already sent with this customer_message_id: the existing message.",
            ),
            422: OpenApiResponse(
                examples.ERROR_RESPONSE,
                description="Outside the customer-service window, or a template refused.",
            ),
        },
        parameters=[RETRY_AFTER_HEADER],
        examples=examples.MESSAGE_CREATE,
    )
    def post(self, request: Request) -> Response:
        data = message_input.message_create_input(request.data, self.account) or self.validated(
            serializers.MessageCreateSerializer, account=self.account
        )
        message, created = outbound.message_create_outgoing(account=self.account, **data)
        return self.message_response(
            message, status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        )


@extend_schema(tags=["messages"], parameters=[_uuid_path("message_id", "Message id.")])
class MessageDetailView(MessageView):
    @extend_schema(
        summary="Get a message and its current status",
        responses=serializers.MessageSerializer,
        parameters=[RETRY_AFTER_HEADER],
        examples=examples.MESSAGE,
    )
    def get(self, request: Request, message_id: str) -> Response:
        return self.message_response(self.get_message(message_id))


@extend_schema(tags=["messages"], parameters=[_uuid_path("message_id", "Message id.")])
class MessageEventsView(MessageView):
    serializer_class = serializers.StatusEventSerializer
    pagination_class = None

    @extend_schema(
        summary="A message's status history, oldest first",
        description="Every status event of every attempt: applied, recorded without change, "
        "stale (older attempt) — with the provider's raw status and error.",
        responses=serializers.StatusEventSerializer(many=True),
        examples=examples.EVENTS,
    )
    def get(self, request: Request, message_id: str) -> Response:
        message = self.get_message(message_id)
        events = selectors.message_events(message=message)
        context = {"channel_type": message.channel_type}
        return Response(self.serializer_class(events, many=True, context=context).data)


@extend_schema(tags=["messages"])
class MessageStatusLookupView(MessageView):
    serializer_class = serializers.ChannelMessageSerializer

    @extend_schema(
        summary="Look a message up by your customer_message_id",
        parameters=[
            OpenApiParameter("customer_message_id", OpenApiTypes.STR, OpenApiParameter.PATH),
            OpenApiParameter(
                "channel",
                OpenApiTypes.STR,
                enum=Family.values,
                description="Only a message of this channel family (400 for an unknown one).",
            ),
            RETRY_AFTER_HEADER,
        ],
        responses=serializers.ChannelMessageSerializer,
    )
    def get(self, request: Request, customer_message_id: str) -> Response:
        family = request.query_params.get("channel")
        if family is not None and family.upper() not in Family.values:
            raise exceptions.ValidationError(
                {"channel": f"Unknown channel; one of {', '.join(Family.values)}."}
            )
        message = selectors.message_get_by_customer_id(
            account=self.account,
            customer_message_id=customer_message_id,
            family=family.upper() if family else None,
        )
        if message is None:
            raise exceptions.NotFound("No message with this customer_message_id.")
        return self.message_response(message)


@extend_schema(tags=["messages"], parameters=[_uuid_path("message_id", "Message id.")])
class MessageResendView(MessageView):
    @extend_schema(
        summary="Resend a failed or expired message (a new attempt)",
        request=None,
        responses={
            202: serializers.MessageSerializer,
            409: OpenApiResponse(examples.ERROR_RESPONSE, description="not_resendable"),
            422: OpenApiResponse(
                examples.ERROR_RESPONSE,
                description="resend_will_not_help: the error code is permanent in the catalogue",
            ),
        },
        parameters=[RETRY_AFTER_HEADER],
    )
    def post(self, request: Request, message_id: str) -> Response:
        message = outbound.message_resend(message=self.get_message(message_id))
        return self.message_response(message, status.HTTP_202_ACCEPTED)


@extend_schema(tags=["messages"], parameters=[_uuid_path("message_id", "Message id.")])
class MessageStatusReportView(MessageView):
    @extend_schema(
        summary="Report a status (api channel only)",
        description="For inboxes of channel type `api`: tell Tickmark the message was "
        "DELIVERED, READ or FAILED. Merged by the same rule as provider webhooks (a late "
        "report never downgrades). Other channels: 409 `wrong_channel`.",
        request=serializers.StatusReportSerializer,
        responses={
            200: serializers.MessageSerializer,
            409: OpenApiResponse(examples.ERROR_RESPONSE, description="wrong_channel"),
        },
        parameters=[RETRY_AFTER_HEADER],
        examples=examples.STATUS_REPORT,
    )
    def post(self, request: Request, message_id: str) -> Response:
        message = self.get_message(message_id)
        if message.channel_type != ChannelType.API:
            raise WrongChannel(
                f"Statuses are reported by the provider on {message.channel_type} inboxes; "
                "only messages of api inboxes take reports."
            )
        if message.direction != Message.Direction.OUTGOING:
            raise WrongChannel("Only outgoing messages have a delivery status.")
        data = self.validated(serializers.StatusReportSerializer)
        error = data.get("error") or {}
        status_services.message_status_report(
            message=message,
            status=data["status"].lower(),
            source=StatusEvent.Source.API,
            occurred_at=data.get("occurred_at"),
            error_code=error.get("code", ""),
            error_title=error.get("title", ""),
            error_detail=error.get("detail", ""),
        )
        message.refresh_from_db()
        return self.message_response(message)


# ---------------------------------------------------------------------------------------------
# Per-channel views: the generic message views narrowed to the family in the path
# ---------------------------------------------------------------------------------------------


def _family(slug: str) -> str:
    family = FAMILY_SLUGS.get(slug)
    if family is None:
        raise exceptions.NotFound(f"Unknown channel {slug!r}.")
    return family


@extend_schema(tags=["channels"], parameters=[FAMILY_PATH])
class ChannelMessageListView(MessageView):
    serializer_class = serializers.ChannelMessageSerializer
    pagination_class = MessageFeedPagination

    @extend_schema(
        summary="List one channel family's messages (change feed)",
        description=FEED_DESCRIPTION,
        operation_id="channel_messages_list",
        parameters=[p for p in MESSAGE_FILTERS if p.name not in ("channel",)],
        responses=serializers.ChannelMessageSerializer(many=True),
    )
    def get(self, request: Request, family: str) -> Response:
        return self.list_messages(_family(family))


@extend_schema(tags=["channels"], parameters=[FAMILY_PATH, _uuid_path("message_id", "Message id.")])
class ChannelMessageDetailView(MessageView):
    serializer_class = serializers.ChannelMessageSerializer

    @extend_schema(
        summary="Get a message of one channel family",
        operation_id="channel_messages_retrieve",
        responses=serializers.ChannelMessageSerializer,
        parameters=[RETRY_AFTER_HEADER],
    )
    def get(self, request: Request, family: str, message_id: str) -> Response:
        return self.message_response(self.get_message(message_id, _family(family)))


# ---------------------------------------------------------------------------------------------
# Conversations
# ---------------------------------------------------------------------------------------------


@extend_schema(tags=["conversations"])
class ConversationListView(ApiView):
    serializer_class = serializers.ConversationSerializer
    pagination_class = ConversationPagination

    @extend_schema(
        summary="List conversations, most recent activity first",
        description="Paged by `(last_message_at, id)` exactly (no conversation twice or "
        "skipped among those not changing meanwhile). A conversation with new activity moves "
        "to the front, ahead of the pages already read: start again from the first page to "
        "see it; `GET /api/v1/messages` is the feed of every change.",
        responses=serializers.ConversationSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        return self.paginated(selectors.conversation_list(account=self.account))


@extend_schema(tags=["conversations"], parameters=[_int_path("conversation_id", "Id.")])
class ConversationMessagesView(ApiView):
    serializer_class = serializers.MessageSerializer
    pagination_class = ConversationMessagePagination

    @extend_schema(
        summary="A conversation's messages, oldest first",
        responses=serializers.MessageSerializer(many=True),
    )
    def get(self, request: Request, conversation_id: str) -> Response:
        conversation = self.lookup(
            selectors.conversation_get, "conversation", conversation_id=conversation_id
        )
        return self.paginated(
            selectors.message_list(account=self.account, conversation=conversation)
        )


@extend_schema(tags=["conversations"], parameters=[_int_path("conversation_id", "Id.")])
class ConversationReadView(ApiView):
    serializer_class = serializers.ConversationReadSerializer

    @extend_schema(
        summary="Mark a conversation read by an agent",
        description="Stamps `read_by_agent_at` on the inbound messages no agent had read, "
        "resets `unread_count`, and — unless the inbox's `send_read_receipts` is off — queues "
        "one read receipt to the provider for them (WhatsApp Cloud, 360dialog: the newest "
        "message is marked read; Messenger, Instagram: the thread is marked seen). 200: the "
        "messages are marked when it answers; only the provider call happens later, once per "
        "message whoever reads, retried on failure. Repeating it marks nothing new.",
        request=None,
        responses={
            200: serializers.ConversationReadSerializer,
            404: OpenApiResponse(examples.ERROR_RESPONSE, description="not_found"),
        },
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = self.lookup(
            selectors.conversation_get, "conversation", conversation_id=conversation_id
        )
        reading = read_receipts.conversation_read(conversation=conversation)
        return Response(
            {
                "conversation": conversation.id,
                "marked_read": reading.marked,
                "read_receipt": reading.receipt,
            }
        )


# ---------------------------------------------------------------------------------------------
# Outgoing webhooks
# ---------------------------------------------------------------------------------------------


@extend_schema(tags=["webhooks"])
class WebhookListView(ApiView):
    serializer_class = serializers.WebhookSerializer

    @extend_schema(
        summary="List webhook subscriptions",
        responses=serializers.WebhookSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        return self.paginated(selectors.webhook_list(account=self.account))

    @extend_schema(
        summary="Subscribe to events",
        description="Events: `message.created`, `message.status_changed`. Each request is "
        "signed: `X-Tickmark-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "
        '"<t>.<raw body>")>`. The secret is shown only in this answer. Failed deliveries are '
        "retried with exponential backoff; a subscription failing for 24 hours is disabled "
        "(`is_active: false`, `disabled_reason`).",
        request=serializers.WebhookCreateSerializer,
        responses={201: serializers.WebhookCreatedSerializer},
        examples=examples.WEBHOOK_CREATE,
    )
    def post(self, request: Request) -> Response:
        data = self.validated(serializers.WebhookCreateSerializer)
        subscription = outgoing.subscription_create(account=self.account, **data)
        return self.respond(
            subscription, status.HTTP_201_CREATED, serializers.WebhookCreatedSerializer
        )


class _WebhookView(ApiView):
    def get_subscription(self, webhook_id: str):
        return self.lookup(selectors.webhook_get, "webhook subscription", webhook_id=webhook_id)


@extend_schema(tags=["webhooks"], parameters=[_int_path("webhook_id", "Subscription id.")])
class WebhookDetailView(_WebhookView):
    serializer_class = serializers.WebhookSerializer

    @extend_schema(summary="Get a webhook subscription", responses=serializers.WebhookSerializer)
    def get(self, request: Request, webhook_id: str) -> Response:
        return self.respond(self.get_subscription(webhook_id))

    @extend_schema(summary="Unsubscribe", responses={204: None})
    def delete(self, request: Request, webhook_id: str) -> Response:
        outgoing.subscription_delete(subscription=self.get_subscription(webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["webhooks"], parameters=[_int_path("webhook_id", "Subscription id.")])
class WebhookDeliveriesView(_WebhookView):
    serializer_class = serializers.WebhookAttemptSerializer
    pagination_class = AttemptPagination

    @extend_schema(
        summary="Delivery attempts of a subscription, newest first",
        responses=serializers.WebhookAttemptSerializer(many=True),
    )
    def get(self, request: Request, webhook_id: str) -> Response:
        subscription = self.get_subscription(webhook_id)
        return self.paginated(selectors.webhook_attempts(subscription=subscription))
