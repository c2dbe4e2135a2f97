"""Cursor pagination: stable under concurrent inserts and updates, no COUNT, no OFFSET scan."""

from __future__ import annotations

from typing import Any

from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.response import Response


class Pagination(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("created_at", "id")


class MessageFeedPagination(Pagination):
    """``GET /api/v1/messages`` is a change feed: ordered by ``(updated_at, id)``.

    A message that changes while a client pages moves behind the cursor and is returned again
    on a later page, so no change is ever skipped (a page may repeat a message, never miss
    one). ``poll`` is present even on the last page: it returns only messages changed after
    the last one shown, so a client follows the feed by requesting ``poll`` again later.
    """

    ordering = ("updated_at", "id")

    def get_paginated_response(self, data: Any) -> Response:
        response = super().get_paginated_response(data)
        response.data["poll"] = self.get_poll_link()
        return response

    def get_poll_link(self) -> str:
        if not self.page:
            return self.base_url if self.cursor is None else self.encode_cursor(self.cursor)
        position = self._get_position_from_instance(self.page[-1], self.ordering)
        return self.encode_cursor(Cursor(offset=0, reverse=False, position=position))

    def get_paginated_response_schema(self, schema: dict) -> dict:
        result = super().get_paginated_response_schema(schema)
        result["required"] = [*result.get("required", []), "poll"]
        result["properties"]["poll"] = {
            "type": "string",
            "format": "uri",
            "description": "Request this later to receive only messages changed since.",
        }
        return result


class ConversationMessagePagination(Pagination):
    ordering = ("created_at", "id")


class ConversationPagination(Pagination):
    ordering = ("-last_message_at", "-id")


class AttemptPagination(Pagination):
    ordering = ("-attempted_at", "-id")
