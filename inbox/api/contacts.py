"""``/api/v1/contacts`` (DESIGN §14): list and read contacts with their consent, and opt one
out or back in (``PATCH``, recorded as a consent event with source ``api``)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from inbox import consent, contacts
from inbox.api.views import ApiView
from inbox.models import ConsentEvent, ConsentSource, Contact


class ConsentEventSerializer(serializers.ModelSerializer):
    message = serializers.UUIDField(source="message_id", read_only=True, allow_null=True)

    class Meta:
        model = ConsentEvent
        fields = ["kind", "scope", "source", "detail", "occurred_at", "message"]
        read_only_fields = fields


class SourceField(serializers.ChoiceField):
    """Where the opt-out came from; null while the contact is not opted out."""

    def __init__(self, **kwargs):
        super().__init__(choices=ConsentSource.choices, allow_null=True, read_only=True, **kwargs)

    def to_representation(self, value: str) -> str | None:
        return value or None


class ContactWithConsentSerializer(serializers.ModelSerializer):
    inbox = serializers.UUIDField(source="inbox_id", read_only=True)
    opt_out_source = SourceField()

    class Meta:
        model = Contact
        fields = [
            "id",
            "inbox",
            "address",
            "name",
            "opted_out",
            "opted_out_at",
            "opt_out_source",
            "marketing_opted_out",
            "marketing_opted_out_at",
            "last_inbound_at",
            "created_at",
        ]
        read_only_fields = fields


class ContactDetailSerializer(ContactWithConsentSerializer):
    consent_events = serializers.SerializerMethodField(
        help_text="The newest consent changes (up to 50), newest first."
    )

    class Meta(ContactWithConsentSerializer.Meta):
        fields = [*ContactWithConsentSerializer.Meta.fields, "consent_events"]
        read_only_fields = fields

    @extend_schema_field(ConsentEventSerializer(many=True))
    def get_consent_events(self, contact: Contact) -> list[dict]:
        events = contacts.contact_consent_events(contact=contact)
        return ConsentEventSerializer(events, many=True).data


class ContactUpdateSerializer(serializers.Serializer):
    opted_out = serializers.BooleanField(
        required=False, help_text="false: the contact opted back in; true: opt them out."
    )
    marketing_opted_out = serializers.BooleanField(
        required=False, help_text="The same for marketing templates only (WhatsApp)."
    )

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError("Give opted_out and/or marketing_opted_out.")
        return attrs


CONTACT_FILTERS = [
    OpenApiParameter("inbox", OpenApiTypes.UUID, description="Only this inbox's contacts."),
    OpenApiParameter("opted_out", OpenApiTypes.BOOL, description="Opted out (of everything)."),
    OpenApiParameter("q", OpenApiTypes.STR, description="Part of the name or address."),
]


@extend_schema(tags=["contacts"])
class ContactListView(ApiView):
    serializer_class = ContactWithConsentSerializer

    @extend_schema(
        summary="List contacts, oldest first",
        description="Each contact belongs to one inbox and carries its consent (DESIGN §14).",
        parameters=CONTACT_FILTERS,
        responses=ContactWithConsentSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        return self.paginated(
            contacts.contact_list(account=self.account, filters=request.query_params)
        )


CONTACT_ID = OpenApiParameter(
    "contact_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Contact id."
)


@extend_schema(tags=["contacts"], parameters=[CONTACT_ID])
class ContactDetailView(ApiView):
    serializer_class = ContactDetailSerializer

    def get_contact(self, contact_id: str) -> Contact:
        return self.lookup(contacts.contact_get, "contact", contact_id=contact_id)

    @extend_schema(
        summary="Get a contact and its consent history", responses=ContactDetailSerializer
    )
    def get(self, request: Request, contact_id: str) -> Response:
        return self.respond(self.get_contact(contact_id))

    @extend_schema(
        summary="Opt a contact out or back in",
        description='`{"opted_out": false}` records the contact\'s re-consent (source `api`); '
        "`true` opts them out: sends to them are then refused with 422 `contact_opted_out`. "
        "A value the contact already has records nothing.",
        request=ContactUpdateSerializer,
        responses=ContactDetailSerializer,
        examples=[OpenApiExample("Opted back in", value={"opted_out": False}, request_only=True)],
    )
    def patch(self, request: Request, contact_id: str) -> Response:
        contact = self.get_contact(contact_id)
        data = self.validated(ContactUpdateSerializer)
        contact = consent.contact_consent_set(contact=contact, actor=self._actor(), **data)
        return self.respond(contact)

    def _actor(self) -> str:
        api_key = self.request.auth.api_key
        if api_key is not None:
            return f"API key {api_key.prefix}…"
        return f"user {self.request.user}"
