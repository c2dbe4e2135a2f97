"""Short-lived, per-process copies of rows every API request or webhook reads: an API key with
its account, the inbox a message is sent from, and the inbox a provider's webhook is for.

Each is one indexed lookup, but at hundreds of requests a second the round trip and the ORM's
query building cost more than the rest of a lookup request (bench/README.md). What is kept is
what a request needs and what practically never changes (a key's account, an inbox's channel);
an entry lives ``settings.ROW_CACHE_SECONDS`` (0: no caching). Saving or deleting the row in
this process drops its entry at once (cache upkeep, not business logic, hence signals); another
process sees a revoked key or a deleted inbox within those seconds. Only rows that exist are
kept, and at most ``MAX_ENTRIES`` of each kind, so a stranger's made-up keys cannot grow it.

Each hit returns fresh model instances built from the kept column values: nothing mutable is
shared between requests or threads.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_save

from inbox.models import Account, ApiKey, Inbox

MAX_ENTRIES = 10_000


class RowCache:
    """``key -> column values`` for a few seconds; a miss or an expired entry is ``None``."""

    def __init__(self) -> None:
        self._entries: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: Any, value: Any) -> None:
        seconds = settings.ROW_CACHE_SECONDS
        if seconds <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()  # simpler than LRU, and a full cache is rare
        self._entries[key] = (time.monotonic() + seconds, value)

    def drop(self, key: Any) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


_keys = RowCache()  # key_hash -> (ApiKey values, Account values)
_inboxes = RowCache()  # (account id, inbox id) -> Inbox values
_webhook_inboxes = RowCache()  # inbox id -> Inbox values (provider webhooks name no account)

_KEY_FIELDS = [f.attname for f in ApiKey._meta.concrete_fields]
_ACCOUNT_FIELDS = [f.attname for f in Account._meta.concrete_fields]
_INBOX_FIELDS = [f.attname for f in Inbox._meta.concrete_fields]


def _values(instance: Any, fields: list[str]) -> tuple:
    return tuple(getattr(instance, name) for name in fields)


def _instance(model: type, fields: list[str], values: tuple) -> Any:
    instance = model(**dict(zip(fields, values, strict=True)))
    instance._state.adding = False
    return instance


def api_key_get(key_hash: str) -> ApiKey | None:
    """The key with this hash and its account (``api_key.account``), or None if none."""
    cached = _keys.get(key_hash)
    if cached is None:
        api_key = ApiKey.objects.select_related("account").filter(key_hash=key_hash).first()
        if api_key is None:
            return None
        cached = (_values(api_key, _KEY_FIELDS), _values(api_key.account, _ACCOUNT_FIELDS))
        _keys.put(key_hash, cached)
    api_key = _instance(ApiKey, _KEY_FIELDS, cached[0])
    api_key.account = _instance(Account, _ACCOUNT_FIELDS, cached[1])
    return api_key


def api_key_touched(api_key: ApiKey) -> None:
    """Remember the ``last_used_at`` just written, so the next request does not write it again."""
    cached = _keys.get(api_key.key_hash)
    if cached is not None:
        _keys.put(api_key.key_hash, (_values(api_key, _KEY_FIELDS), cached[1]))


def inbox_get(*, account: Account, inbox_id: uuid.UUID) -> Inbox | None:
    """The account's inbox with this id, or None (another account's inbox is "none")."""
    key = (account.id, inbox_id)
    values = _inboxes.get(key)
    if values is None:
        inbox = Inbox.objects.filter(account=account, pk=inbox_id).first()
        if inbox is None:
            return None
        values = _values(inbox, _INBOX_FIELDS)
        _inboxes.put(key, values)
    return _inbox_from(values)


def inboxes_by_id(inbox_ids: set[uuid.UUID]) -> dict[uuid.UUID, Inbox]:
    """The inboxes with these ids, whatever their account (a provider's webhook URL names only
    the inbox; its signature, checked with the inbox's own secret, says the rest). One query
    for those not kept, none when all are: a batch of webhooks asked this every time."""
    found: dict[uuid.UUID, Inbox] = {}
    missing = set()
    for inbox_id in inbox_ids:
        values = _webhook_inboxes.get(inbox_id)
        if values is None:
            missing.add(inbox_id)
        else:
            found[inbox_id] = _inbox_from(values)
    if missing:
        for inbox_id, inbox in Inbox.objects.in_bulk(missing).items():
            values = _values(inbox, _INBOX_FIELDS)
            _webhook_inboxes.put(inbox_id, values)
            found[inbox_id] = _inbox_from(values)
    return found


def _inbox_from(values: tuple) -> Inbox:
    inbox = _instance(Inbox, _INBOX_FIELDS, values)
    inbox.config = dict(inbox.config)  # the kept dict stays unshared
    return inbox


def _key_changed(sender: type, instance: ApiKey, **kwargs: Any) -> None:
    _keys.drop(instance.key_hash)


def _inbox_changed(sender: type, instance: Inbox, **kwargs: Any) -> None:
    _inboxes.drop((instance.account_id, instance.id))
    _webhook_inboxes.drop(instance.id)


def _account_deleted(sender: type, instance: Account, **kwargs: Any) -> None:
    _keys.clear()
    _inboxes.clear()
    _webhook_inboxes.clear()


for _signal in (post_save, post_delete):
    _signal.connect(_key_changed, sender=ApiKey, dispatch_uid="caches.api_key")
    _signal.connect(_inbox_changed, sender=Inbox, dispatch_uid="caches.inbox")
post_delete.connect(_account_deleted, sender=Account, dispatch_uid="caches.account")
