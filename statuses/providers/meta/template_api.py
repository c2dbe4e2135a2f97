"""The providers' template management APIs (DESIGN §13): list, create, delete. No ORM.

- WhatsApp Cloud (Graph API, ``{api_base_url}/{api_version}``, ``Authorization: Bearer``):
  ``GET /{waba_id}/message_templates?fields=…&limit=100`` following ``paging.next`` until it is
  absent; ``POST /{waba_id}/message_templates`` ``{name, language, category, components}`` →
  ``{id, status, category}``; ``DELETE /{waba_id}/message_templates?name=…&hsm_id=…``.
- 360dialog (``D360-API-KEY``): ``GET /v1/configs/templates?limit=&offset=`` (``waba_templates``
  with ``count``/``total``), ``POST /v1/configs/templates`` with the same body as Meta's,
  ``DELETE /v1/configs/templates/{name}``.

Every request goes through the guarded client the caller passes (``statuses.netguard``), and a
``paging.next`` link is followed only on the host the inbox is configured with: the token is
never sent anywhere else. Refusals become ``TemplateApiError`` with the provider's code and
message; a provider that cannot be reached is ``TemplateApiError`` ``provider_unreachable``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from statuses.providers import _http
from statuses.providers.base import SendResult
from statuses.providers.meta.send import DEFAULT_API_VERSION

GRAPH_BASE_URL = "https://graph.facebook.com"
D360_BASE_URL = "https://waba-v2.360dialog.io"
LIST_FIELDS = "id,name,language,status,category,components,rejected_reason,quality_score"
PAGE_SIZE = 100
# A WABA holds at most a few thousand templates: more pages than this is a loop.
MAX_PAGES = 200


class TemplateApiError(Exception):
    """The provider refused a template call, or could not be reached."""

    def __init__(self, code: str, message: str, *, unreachable: bool = False):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.unreachable = unreachable


@dataclass(frozen=True)
class RemoteTemplate:
    """One template as the provider lists it (enums uppercase, as Meta spells them)."""

    provider_template_id: str
    name: str
    language: str
    category: str
    status: str
    rejected_reason: str
    quality_score: str
    components: list[Any]


@dataclass(frozen=True)
class TemplateApi:
    """Where and how to call one inbox's template API."""

    kind: str  # "graph" or "360dialog"
    base: str  # the URL the paths below are appended to
    headers: dict[str, str]
    waba_id: str = ""

    @property
    def collection(self) -> str:
        if self.kind == "graph":
            return f"{self.base}/{self.waba_id}/message_templates"
        return f"{self.base}/v1/configs/templates"


def template_api(channel_type: str, config: dict[str, Any]) -> TemplateApi:
    """The template API of an inbox; ``TemplateApiError`` ``misconfigured`` without the keys."""
    if channel_type == "whatsapp_cloud":
        missing = [k for k in ("waba_id", "access_token") if not config.get(k)]
        if missing:
            raise TemplateApiError(
                "misconfigured", f"The inbox's config lacks {', '.join(missing)}."
            )
        version = config.get("api_version") or DEFAULT_API_VERSION
        return TemplateApi(
            "graph",
            f"{_http.base_url(config, GRAPH_BASE_URL)}/{version}",
            {"Authorization": f"Bearer {config['access_token']}"},
            waba_id=str(config["waba_id"]),
        )
    if channel_type == "whatsapp_360dialog":
        if not config.get("api_key"):
            raise TemplateApiError("misconfigured", "The inbox's config lacks api_key.")
        return TemplateApi(
            "360dialog",
            _http.base_url(config, D360_BASE_URL),
            {"D360-API-KEY": str(config["api_key"])},
        )
    raise TemplateApiError("not_supported", f"{channel_type} inboxes have no WhatsApp templates.")


def _call(client: httpx.Client, method: str, url: str, api: TemplateApi, **kwargs: Any) -> Any:
    """One request; the answer's JSON on success, ``TemplateApiError`` otherwise."""
    outcome = _http.exchange(client, method, url, headers=api.headers, **kwargs)
    if isinstance(outcome, SendResult):
        raise TemplateApiError(
            "provider_unreachable",
            f"The provider could not be reached ({outcome.error_detail}).",
            unreachable=True,
        )
    body = _http.response_json(outcome, keep_other=False)
    if outcome.is_success:
        return body
    raise _refusal(outcome, body)


def _refusal(response: httpx.Response, body: dict[str, Any]) -> TemplateApiError:
    """Meta's (or 360dialog's) error code and message; the HTTP status when there is none."""
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        subcode = error.get("error_subcode")
        message = error.get("error_user_msg") or error.get("message") or ""
        detail = error.get("error_user_title")
        text = f"{detail}: {message}" if isinstance(detail, str) and detail else str(message)
        code_text = str(code) if code is not None else f"http_{response.status_code}"
        if subcode is not None:
            code_text = f"{code_text}/{subcode}"
        return TemplateApiError(code_text, text[:1000] or f"HTTP {response.status_code}")
    meta = body.get("meta")  # 360dialog's own envelope
    if isinstance(meta, dict) and meta.get("developer_message"):
        return TemplateApiError(
            str(meta.get("http_code") or response.status_code),
            str(meta["developer_message"])[:1000],
        )
    # Never the raw body: it could read an internal service's answer back (issue #10).
    return TemplateApiError(f"http_{response.status_code}", f"HTTP {response.status_code}")


def _text(value: Any, limit: int) -> str:
    return (
        str(value)[:limit] if isinstance(value, str | int) and not isinstance(value, bool) else ""
    )


def _remote(item: Any) -> RemoteTemplate | None:
    if not isinstance(item, dict) or not item.get("name"):
        return None
    quality = item.get("quality_score")
    if isinstance(quality, dict):  # Graph: {"score": "GREEN", "date": …}
        quality = quality.get("score")
    reason = _text(item.get("rejected_reason"), 200)
    components = item.get("components")
    return RemoteTemplate(
        provider_template_id=_text(item.get("id") or item.get("external_id"), 100),
        name=_text(item["name"], 512),
        language=_text(item.get("language"), 15),
        category=_text(item.get("category"), 20).upper(),
        status=_text(item.get("status"), 20).upper(),
        rejected_reason="" if reason.upper() == "NONE" else reason,
        quality_score=_text(quality, 10).upper() or "UNKNOWN",
        components=components if isinstance(components, list) else [],
    )


def _same_origin(url: str, base: str) -> bool:
    """Is ``url`` on the scheme, host and port of ``base``? (where the token may go)"""
    try:
        a, b = urlsplit(url), urlsplit(base)
        return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)
    except ValueError:
        return False


def list_templates(client: httpx.Client, api: TemplateApi) -> list[RemoteTemplate]:
    """Every template of the account, following the provider's paging to the end."""
    items: list[Any] = []
    if api.kind == "graph":
        url: str | None = api.collection
        params: dict[str, Any] | None = {"fields": LIST_FIELDS, "limit": PAGE_SIZE}
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            assert url is not None
            body = _call(client, "GET", url, api, params=params)
            data = body.get("data")
            items += data if isinstance(data, list) else []
            paging = body.get("paging")
            url = paging.get("next") if isinstance(paging, dict) else None
            if not isinstance(url, str) or not url:
                break
            if not _same_origin(url, api.base) or url in seen:
                raise TemplateApiError(
                    "bad_paging", "The provider's next page is not on its own host."
                )
            seen.add(url)
            params = None  # the next link carries every parameter (and the cursor)
        else:
            raise TemplateApiError("bad_paging", "The provider's paging does not end.")
    else:
        offset = 0
        for _ in range(MAX_PAGES):
            body = _call(
                client, "GET", api.collection, api, params={"limit": PAGE_SIZE, "offset": offset}
            )
            page = body.get("waba_templates")
            page = page if isinstance(page, list) else []
            items += page
            offset += len(page)
            total = body.get("total")
            if not page or not isinstance(total, int) or offset >= total:
                break
    return [t for t in map(_remote, items) if t is not None]


def create_template(
    client: httpx.Client,
    api: TemplateApi,
    *,
    name: str,
    language: str,
    category: str,
    components: list[Any],
) -> dict[str, str]:
    """Submit a template; the provider's ``{id, status, category}``."""
    body = _call(
        client,
        "POST",
        api.collection,
        api,
        json={"name": name, "language": language, "category": category, "components": components},
    )
    return {
        "id": _text(body.get("id") or body.get("external_id"), 100),
        "status": _text(body.get("status"), 20).upper() or "PENDING",
        "category": _text(body.get("category"), 20).upper() or category,
    }


def delete_template(
    client: httpx.Client, api: TemplateApi, *, name: str, provider_template_id: str
) -> None:
    """Delete one template (Graph: this language only, by ``hsm_id``; 360dialog: by name)."""
    if api.kind == "graph":
        params = {"name": name}
        if provider_template_id:
            params["hsm_id"] = provider_template_id
        _call(client, "DELETE", api.collection, api, params=params)
    else:
        _call(client, "DELETE", f"{api.collection}/{name}", api)
