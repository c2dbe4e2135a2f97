from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from inbox.api.authentication import AccountAccess


class HasAccount(BasePermission):
    """The caller acts for an account: an API key, or an agent with a membership."""

    def has_permission(self, request: Request, view) -> bool:
        return isinstance(request.auth, AccountAccess)
