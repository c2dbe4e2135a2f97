"""Keyset pagination: exact for any number of ties and any page size; no COUNT, no OFFSET.

DRF's ``CursorPagination`` positions its cursor on the first ordering field only and skips the
rows already seen at that value with an offset capped at 1,000, so a group of more than ~1,000
rows sharing one ``updated_at`` (one status webhook) lost rows. Here the cursor is the full
ordering — whose last field is unique — and the next page is ``WHERE (a, b) > (x, y)``.

``GET /api/v1/messages`` (and the per-channel lists) is a change feed on top of that: ordered
by the position a database trigger stamps on every write, and cut at a horizon below which no
transaction can still commit a change (docs/change-feed.md).
"""

from __future__ import annotations

import binascii
import contextlib
import json
from base64 import urlsafe_b64decode, urlsafe_b64encode
from datetime import datetime
from typing import Any
from uuid import UUID

from django.core.exceptions import ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from django.db.models import F, Field, Lookup, Model, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination, _positive_int
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

INVALID_CURSOR = "Invalid cursor: use the `next`, `previous` or `poll` link as given."


class Pagination(CursorPagination):
    """A keyset on the whole ``ordering`` (its last field must be unique)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering: tuple[str, ...] = ("created_at", "id")
    cursor_query_description = "Opaque position: take it from a `next` or `previous` link."

    # -- reading a page ------------------------------------------------------------------------

    def paginate_queryset(
        self, queryset: QuerySet, request: Request, view: Any = None
    ) -> list[Model]:
        self.request = request
        self.base_url = request.build_absolute_uri()
        self.page_size = self.get_page_size(request)
        self.model = queryset.model
        self.position, self.reverse = self.decode_keyset_cursor(request)

        queryset = self.restrict(queryset)
        if self.position is not None:
            queryset = queryset.filter(self.beyond(self.position, self.reverse))
        order = [_flip(term) for term in self.ordering] if self.reverse else list(self.ordering)
        rows = list(queryset.order_by(*order)[: self.page_size + 1])
        more = len(rows) > self.page_size
        self.page = rows[: self.page_size]
        if self.reverse:
            self.page.reverse()
        # Coming from a cursor, rows exist on the side we came from.
        self.has_next = True if self.reverse else more
        self.has_previous = more if self.reverse else self.position is not None
        if (self.has_previous or self.has_next) and self.template is not None:
            self.display_page_controls = True
        return self.page

    def restrict(self, queryset: QuerySet) -> QuerySet:
        """Rows a page may show at all (the change feed adds its horizon here)."""
        return queryset

    def get_page_size(self, request: Request) -> int:
        with contextlib.suppress(KeyError, ValueError):
            return _positive_int(
                request.query_params[self.page_size_query_param],
                strict=True,
                cutoff=self.max_page_size,
            )
        return self.page_size

    def beyond(self, position: tuple, reverse: bool) -> Lookup:
        """Rows strictly after ``position`` in the ordering (before it when ``reverse``).

        One row comparison, ``(a, b) > (x, y)``, which PostgreSQL answers from an index on
        ``(a, b)`` as a single range (and SQLite as row values), whatever the ties on ``a``
        (Django 5.2's tuple lookups, made for composite primary keys).
        """
        descending = {term.startswith("-") != reverse for term in self.ordering}
        if len(descending) != 1:
            raise ImproperlyConfigured("A keyset ordering goes one way (all fields - or none).")
        lookup = TupleLessThan if descending.pop() else TupleGreaterThan
        return lookup(Tuple(*(F(term.lstrip("-")) for term in self.ordering)), position)

    # -- cursors -------------------------------------------------------------------------------

    def position_of(self, instance: Model) -> tuple:
        return tuple(getattr(instance, term.lstrip("-")) for term in self.ordering)

    def encode_position(self, position: tuple, reverse: bool = False) -> str:
        payload: dict[str, Any] = {"p": [_jsonable(value) for value in position]}
        if reverse:
            payload["r"] = 1
        raw = json.dumps(payload, separators=(",", ":")).encode()
        encoded = urlsafe_b64encode(raw).decode().rstrip("=")
        return replace_query_param(self.base_url, self.cursor_query_param, encoded)

    def decode_keyset_cursor(self, request: Request) -> tuple[tuple | None, bool]:
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None, False
        try:
            payload = json.loads(urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
            values = payload["p"]
            reverse = payload.get("r", 0) in (1, True)
            if not isinstance(values, list) or len(values) != len(self.ordering):
                raise ValueError("wrong length")
            position = tuple(
                self._field(term).to_python(value)
                for term, value in zip(self.ordering, values, strict=True)
            )
            for value in position:
                if value is None or (isinstance(value, datetime) and value.tzinfo is None):
                    raise ValueError("missing value or time zone")
                if isinstance(value, int) and not -(2**63) <= value < 2**63:
                    raise ValueError("out of range")
        except (
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
            OverflowError,
            binascii.Error,
            DjangoValidationError,
        ) as exc:
            raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from exc
        return position, reverse

    def _field(self, term: str) -> Field:
        return self.model._meta.get_field(term.lstrip("-"))

    def get_next_link(self) -> str | None:
        if not self.has_next:
            return None
        if self.page:
            return self.encode_position(self.position_of(self.page[-1]))
        return self.encode_position(self.position) if self.position is not None else None

    def get_previous_link(self) -> str | None:
        if not self.has_previous:
            return None
        if self.page:
            return self.encode_position(self.position_of(self.page[0]), reverse=True)
        return self.encode_position(self.position, reverse=True) if self.position else None


def _flip(term: str) -> str:
    return term[1:] if term.startswith("-") else f"-{term}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


# The change feed's horizon (PostgreSQL): every message change stamped with a transaction id
# below it is committed and visible to this statement, and no new one can appear below it. It is
# the oldest transaction in progress in this database as of the statement's snapshot (the
# snapshot's xmax when there is none). Transactions proven to belong to another database of the
# cluster (pg_stat_activity) cannot write our tables and do not hold it back; one not found there
# is counted, which can only delay a page, never skip a change. A reader that has itself written
# in its transaction (only tests do: API requests read in autocommit) also sees its own changes.
FEED_HORIZON_SQL = """
SELECT CASE WHEN h.own IS NULL THEN h.horizon ELSE GREATEST(h.horizon, h.own + 1) END FROM (
    SELECT LEAST(
        pg_snapshot_xmax(s)::text::bigint,
        (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s) AS x
         WHERE NOT EXISTS (
             SELECT 1 FROM pg_stat_activity AS a
             WHERE a.backend_xid = xid(x) AND a.datname <> current_database()))
    ) AS horizon,
    pg_current_xact_id_if_assigned()::text::bigint AS own
    FROM pg_current_snapshot() AS s
) AS h
"""


class MessageFeedPagination(Pagination):
    """``GET /api/v1/messages``: a change feed ordered by each message's last change.

    The position is ``(change_xid, change_seq)``: the id of the transaction that last wrote the
    message and a sequence number taken at that write (docs/change-feed.md). On PostgreSQL a
    page only holds changes of transactions below the horizon, so a transaction that wrote
    early and commits late is never passed over. On SQLite writers take turns, so every
    committed change is already in order. ``poll`` is present even on the last page: it
    returns only changes after the last message shown.
    """

    ordering = ("change_xid", "change_seq")
    cursor_query_description = (
        "Opaque feed position: take it from a `next`, `previous` or `poll` link."
    )

    def restrict(self, queryset: QuerySet) -> QuerySet:
        if connection.vendor != "postgresql":
            return queryset
        horizon = RawSQL(FEED_HORIZON_SQL, ())  # noqa: S611 - constant text, no input
        return queryset.filter(change_xid__lt=horizon)

    def get_paginated_response(self, data: Any) -> Response:
        response = super().get_paginated_response(data)
        response.data["poll"] = self.get_poll_link()
        return response

    def get_poll_link(self) -> str:
        if self.page:
            return self.encode_position(self.position_of(self.page[-1]))
        if self.position is None:
            return self.base_url
        return self.encode_position(self.position)

    def get_paginated_response_schema(self, schema: dict) -> dict:
        result = super().get_paginated_response_schema(schema)
        result["required"] = [*result.get("required", []), "poll"]
        result["properties"]["poll"] = {
            "type": "string",
            "format": "uri",
            "description": "Request this later to receive only messages changed since the "
            "last one of this page (present on every page, also the last).",
        }
        return result


class ConversationMessagePagination(Pagination):
    ordering = ("created_at", "id")


class ConversationPagination(Pagination):
    ordering = ("-last_message_at", "-id")


class AttemptPagination(Pagination):
    ordering = ("-attempted_at", "-id")
