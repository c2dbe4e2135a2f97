"""WhatsApp message templates (DESIGN §13): sync, create and delete through the provider,
apply the provider's template webhooks, and check a template send before anything is queued.

Provider calls (``statuses.providers.meta.template_api``) run outside any transaction, over
the guarded HTTP client; what they return is written in one short transaction. A provider's
refusal becomes ``TemplateProviderError`` with its code and message.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from inbox.exceptions import (
    TemplateNotApproved,
    TemplateParametersMismatch,
    TemplateProviderError,
    TemplatesUnavailable,
)
from inbox.models import Inbox, Template, TemplateSync
from statuses import netguard
from statuses.providers.base import TemplateUpdate
from statuses.providers.meta import template_api
from statuses.providers.meta import template_components as components_of

log = logging.getLogger(__name__)

# Inboxes whose templates Tickmark manages (Twilio's WhatsApp uses its own Content API).
TEMPLATE_CHANNEL_TYPES = frozenset({"whatsapp_cloud", "whatsapp_360dialog"})
NAME_PATTERN = r"^[a-z0-9_]{1,512}$"
# Fields a sync or a webhook may change on a stored template.
_SYNCED_FIELDS = (
    "provider_template_id",
    "category",
    "status",
    "rejected_reason",
    "quality_score",
    "components",
    "header_params",
    "body_params",
)


def http_client() -> httpx.Client:
    """A guarded client (provider base URLs are tenant-given, issue #10)."""
    return netguard.http_client(
        timeout=settings.PROVIDER_HTTP_TIMEOUT, headers={"User-Agent": "Tickmark/1.0"}
    )


def _api(inbox: Inbox) -> template_api.TemplateApi:
    try:
        return template_api.template_api(inbox.channel_type, inbox.config or {})
    except template_api.TemplateApiError as exc:
        raise TemplatesUnavailable(exc.message) from exc


def _provider_call(call: Any, *args: Any, **kwargs: Any) -> Any:
    with http_client() as client:
        try:
            return call(client, *args, **kwargs)
        except template_api.TemplateApiError as exc:
            raise TemplateProviderError(exc.code, exc.message, unreachable=exc.unreachable) from exc


def _known(value: str, allowed: list[str], default: str) -> str:
    """``value`` if it is one of ``allowed`` (a provider may add values), else ``default``."""
    return value if value in allowed else default


def _counted(components: Any) -> dict[str, int]:
    header, body = components_of.counts(components)
    return {"header_params": header, "body_params": body}


# ---------------------------------------------------------------------------------------------
# Sync


@dataclass(frozen=True)
class SyncResult:
    synced: int  # templates the provider listed
    created: int
    updated: int
    removed: int  # stored templates the provider no longer lists (now DELETED)


def templates_sync(*, inbox: Inbox) -> SyncResult:
    """Make the inbox's templates what the provider lists; gone upstream → ``DELETED``."""
    api = _api(inbox)
    remote = _provider_call(template_api.list_templates, api)
    now = timezone.now()
    with transaction.atomic():
        # One sync of an inbox at a time (the sweep and a "sync now" may meet).
        state, _ = TemplateSync.objects.get_or_create(inbox=inbox)
        TemplateSync.objects.select_for_update().filter(id=state.id).first()
        stored = {(t.name, t.language): t for t in Template.objects.filter(inbox=inbox)}
        new, changed = [], []
        listed = set()
        for item in remote:
            key = (item.name, item.language)
            if key in listed:
                continue  # a provider listing one template twice (paging shifted)
            listed.add(key)
            values = {
                "provider_template_id": item.provider_template_id,
                "category": _known(item.category, Template.Category.values, ""),
                "status": _known(item.status, Template.Status.values, Template.Status.PENDING),
                "rejected_reason": item.rejected_reason,
                "quality_score": _known(
                    item.quality_score, Template.Quality.values, Template.Quality.UNKNOWN
                ),
                "components": item.components,
                **_counted(item.components),
            }
            row = stored.get(key)
            if row is None:
                new.append(
                    Template(
                        account_id=inbox.account_id,
                        inbox=inbox,
                        name=item.name,
                        language=item.language,
                        created_at=now,
                        updated_at=now,
                        **values,
                    )
                )
            elif any(getattr(row, f) != v for f, v in values.items()):
                for field, value in values.items():
                    setattr(row, field, value)
                row.updated_at = now
                changed.append(row)
        gone = [
            row
            for key, row in stored.items()
            if key not in listed and row.status != Template.Status.DELETED
        ]
        for row in gone:
            row.status, row.updated_at = Template.Status.DELETED, now
        Template.objects.bulk_create(new)
        Template.objects.bulk_update([*changed, *gone], [*_SYNCED_FIELDS, "updated_at"])
        TemplateSync.objects.filter(id=state.id).update(synced_at=now, error="")
    return SyncResult(len(listed), len(new), len(changed), len(gone))


# Inboxes synced per sweep run: each is one or more HTTP calls, so a run stays short.
SYNC_BATCH = 20


def templates_sync_due(now: datetime | None = None) -> int:
    """The worker's sweep: sync every WhatsApp inbox not synced for
    ``TICKMARK_TEMPLATE_SYNC_INTERVAL`` seconds; return how many were synced.

    Due inboxes are claimed (their ``synced_at`` set) with ``SKIP LOCKED`` in a short
    transaction, so several workers share them and the HTTP calls hold no lock. A failure is
    kept on the inbox's ``TemplateSync.error`` and tried again one interval later.
    """
    now = now or timezone.now()
    interval = float(settings.TICKMARK_TEMPLATE_SYNC_INTERVAL)
    if interval <= 0:
        return 0
    inboxes = Inbox.objects.filter(channel_type__in=TEMPLATE_CHANNEL_TYPES)
    never = inboxes.filter(template_sync__isnull=True).values_list("id", flat=True)
    TemplateSync.objects.bulk_create(
        [TemplateSync(inbox_id=inbox_id) for inbox_id in never], ignore_conflicts=True
    )
    with transaction.atomic():
        due = list(
            TemplateSync.objects.filter(inbox__channel_type__in=TEMPLATE_CHANNEL_TYPES)
            .filter(Q(synced_at__isnull=True) | Q(synced_at__lt=now - timedelta(seconds=interval)))
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("id", flat=True)[:SYNC_BATCH]
        )
        TemplateSync.objects.filter(id__in=due).update(synced_at=now)
    synced = 0
    for inbox in inboxes.filter(template_sync__id__in=due):
        if inbox.channel_type == "whatsapp_cloud" and not (inbox.config or {}).get("waba_id"):
            # Templates are optional: a Cloud inbox without its WABA id simply has none here.
            TemplateSync.objects.filter(inbox=inbox).update(error="no waba_id in the config")
            continue
        try:
            templates_sync(inbox=inbox)
        except (TemplateProviderError, TemplatesUnavailable) as exc:
            TemplateSync.objects.filter(inbox=inbox).update(error=exc.message[:500])
            log.warning("template sync of inbox %s failed: %s", inbox.id, exc.message)
            continue
        synced += 1
    return synced


# ---------------------------------------------------------------------------------------------
# Create and delete


def template_create(
    *, inbox: Inbox, name: str, language: str, category: str, components: list[Any]
) -> Template:
    """Submit a template to the provider and store it with the status the provider gave."""
    answer = _provider_call(
        template_api.create_template,
        _api(inbox),
        name=name,
        language=language,
        category=category,
        components=components,
    )
    status = _known(answer["status"], Template.Status.values, Template.Status.PENDING)
    template, _ = Template.objects.update_or_create(
        inbox=inbox,
        name=name,
        language=language,
        defaults={
            "account_id": inbox.account_id,
            "provider_template_id": answer["id"],
            "category": _known(answer["category"], Template.Category.values, category),
            "status": status,
            "rejected_reason": "",
            "quality_score": Template.Quality.UNKNOWN,
            "components": components,
            "updated_at": timezone.now(),
            **_counted(components),
        },
    )
    return template


def template_delete(*, template: Template) -> None:
    """Delete the template at the provider, then mark it ``DELETED`` (messages keep their
    link to it)."""
    _provider_call(
        template_api.delete_template,
        _api(template.inbox),
        name=template.name,
        provider_template_id=template.provider_template_id,
    )
    Template.objects.filter(id=template.id).update(
        status=Template.Status.DELETED, updated_at=timezone.now()
    )


# ---------------------------------------------------------------------------------------------
# Webhooks


def template_updates_apply(*, inbox: Inbox, updates: Sequence[TemplateUpdate]) -> int:
    """Apply template webhooks in order; a template not known yet is created from what the
    webhook says. Updates for another WABA than the inbox's are ignored. Returns how many
    templates changed."""
    waba_id = str((inbox.config or {}).get("waba_id") or "")
    applied = 0
    for update in updates:
        if waba_id and update.waba_id and update.waba_id != waba_id:
            log.info("template update for WABA %s ignored by inbox %s", update.waba_id, inbox.id)
            continue
        row = _template_of(inbox, update)
        if row is None:
            continue
        changes: dict[str, Any] = {}
        if update.status:
            changes["status"] = update.status
            changes["rejected_reason"] = update.reason if update.status != "APPROVED" else ""
        if update.quality_score:
            changes["quality_score"] = update.quality_score
        if update.category and (
            update.field != "message_template_status_update" or not row.category
        ):
            changes["category"] = update.category
        if update.provider_template_id and not row.provider_template_id:
            changes["provider_template_id"] = update.provider_template_id
        if changes:
            Template.objects.filter(id=row.id).update(**changes, updated_at=timezone.now())
            applied += 1
    return applied


def _template_of(inbox: Inbox, update: TemplateUpdate) -> Template | None:
    """The stored template a webhook names, created if new (None: too little to create)."""
    templates = Template.objects.filter(inbox=inbox)
    if update.provider_template_id:
        row = templates.filter(provider_template_id=update.provider_template_id).first()
        if row is not None:
            return row
    if not (update.name and update.language):
        log.info(
            "template webhook for unknown template %s lacks a name", update.provider_template_id
        )
        return None
    Template.objects.bulk_create(
        [
            Template(
                account_id=inbox.account_id,
                inbox=inbox,
                provider_template_id=update.provider_template_id,
                name=update.name,
                language=update.language,
                category=update.category,
                status=update.status or Template.Status.PENDING,
            )
        ],
        ignore_conflicts=True,  # a concurrent webhook or sync created it first
    )
    return templates.filter(name=update.name, language=update.language).first()


# ---------------------------------------------------------------------------------------------
# Sending


def language_code(language: Any) -> str:
    """``"en_US"`` or ``{"code": "en_US"}`` (both forms are accepted on send)."""
    if isinstance(language, dict):
        language = language.get("code")
    return language if isinstance(language, str) else ""


def template_approved(*, inbox: Inbox, template: dict[str, Any] | None) -> Template | None:
    """The inbox's synced template a send names, or None if it never synced one (passed
    through). Raises ``TemplateNotApproved`` when that template is not APPROVED."""
    if template is None or inbox.channel_type not in TEMPLATE_CHANNEL_TYPES:
        return None
    name, language = template.get("name"), language_code(template.get("language"))
    if not (isinstance(name, str) and name and language):
        return None
    known = Template.objects.filter(inbox=inbox, name=name, language=language).first()
    if known is not None and known.status != Template.Status.APPROVED:
        reason = f" ({known.rejected_reason})" if known.rejected_reason else ""
        raise TemplateNotApproved(
            f"Template {name} ({language}) is {known.status}{reason}: only APPROVED templates "
            "can be sent."
        )
    return known


def template_prepare(
    *, inbox: Inbox, template: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, Template | None]:
    """Check a template send and expand its ``parameters`` shorthand, before anything is queued.

    Returns the template JSON to send and the stored template it names (None when the inbox
    never synced it: passed through, the provider's error explains it as usual). Raises
    ``TemplateNotApproved`` or ``TemplateParametersMismatch``.
    """
    if template is None or inbox.channel_type not in TEMPLATE_CHANNEL_TYPES:
        return template, None
    name, language = template.get("name"), language_code(template.get("language"))
    known = template_approved(inbox=inbox, template=template)
    payload = {k: v for k, v in template.items() if k != "parameters"}
    if "parameters" in template:
        if template.get("components"):
            raise TemplateParametersMismatch("Give parameters or components, not both.")
        try:
            payload["components"] = components_of.expand(
                template["parameters"], known.components if known else None
            )
        except components_of.ParameterError as exc:
            raise TemplateParametersMismatch(str(exc)) from exc
        if not payload["components"]:
            del payload["components"]
    if known is not None:
        given = components_of.given_counts(payload.get("components"))
        expected = (known.header_params, known.body_params)
        if given != expected:
            raise TemplateParametersMismatch(
                f"Template {name} ({language}) takes {expected[0]} header and {expected[1]} "
                f"body parameters; {given[0]} and {given[1]} were given."
            )
    return payload, known
