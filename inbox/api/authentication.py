"""Who is calling: an account API key, or a logged-in agent (browsable API).

Both authenticators set ``request.auth`` to an :class:`AccountAccess`, so views scope every
query by ``request.auth.account`` without caring how the caller proved who it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from inbox import caches
from inbox.api import throttling
from inbox.models import Account, ApiKey, Membership, hash_api_key

# last_used_at is a hint for admins ("is this key still in use?"), not an audit log: writing it
# on every request would turn every read into a write, so it is refreshed at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class AccountAccess:
    account: Account
    api_key: ApiKey | None = None


@dataclass(frozen=True)
class ApiClient:
    """The ``request.user`` of an API-key request (there is no Django user behind a key)."""

    account: Account
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False
    is_superuser: bool = False

    def __str__(self) -> str:
        return f"API client of {self.account}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; one indexed lookup by hash,
    kept a few seconds (``inbox.caches``)."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiClient, AccountAccess] | None:
        raw_key = self.raw_key(request)
        if raw_key is None:
            return None
        api_key = caches.api_key_get(hash_api_key(raw_key))  # no query while cached
        if api_key is None:
            throttling.auth_failure_record(request)
            raise exceptions.AuthenticationFailed("Invalid API key.", code="invalid_api_key")
        if not api_key.is_active:
            throttling.auth_failure_record(request)
            raise exceptions.AuthenticationFailed(
                "This API key has been revoked.", code="revoked_api_key"
            )
        self.touch(api_key)
        return ApiClient(api_key.account), AccountAccess(api_key.account, api_key)

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'

    def raw_key(self, request: Request) -> str | None:
        """The key the request presents, None if none; a malformed header is refused. Also
        read by the API's hot path (``inbox.api.hot``), from a plain Django request."""
        header = authentication.get_authorization_header(request).decode("latin-1").strip()
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != self.keyword.lower():
                # Basic/Digest/... belong to someone else; let the next authenticator try.
                return None
            value = value.strip()
            if not value or " " in value:
                raise exceptions.AuthenticationFailed(
                    "Malformed Authorization header: use 'Bearer <key>'.", code="invalid_api_key"
                )
            return value
        value = request.META.get("HTTP_X_API_KEY", "").strip()
        return value or None

    @staticmethod
    def touch(api_key: ApiKey) -> None:
        """Note that the key was used (at most once per ``LAST_USED_RESOLUTION``)."""
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now
            caches.api_key_touched(api_key)


class MembershipSessionAuthentication(authentication.SessionAuthentication):
    """A logged-in agent acts for the account of their membership (browsable API)."""

    def authenticate(self, request: Request) -> tuple[object, AccountAccess] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        membership = Membership.objects.select_related("account").filter(user_id=user.pk).first()
        if membership is None:
            return None
        return user, AccountAccess(membership.account)
