"""The campaigns pages (DESIGN §16), for signed-in agents: the list, and one campaign's live
funnel with pause / resume / cancel.

Numbers come from the campaign's maintained counts (``statuses.campaign_counts``: a few
indexed rows, never its messages); only the failure reasons read the messages, grouped in one
query, and only when some failed. Each page has a ``…/panel/``
twin answering just the part that moves, which ``static/campaigns/campaigns.js`` re-reads
(throttled) when statuses arrive over ``/ws/agent/``. The buttons call the same services as
``POST /api/v1/campaigns/<id>/pause|resume|cancel``.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from django.contrib import messages as flash
from django.db.models import Count, Max
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from inbox import selectors
from inbox.api import campaigns as campaigns_api
from inbox.exceptions import InboxError
from inbox.models import Account, Campaign, Inbox, Message
from inbox.views import campaign_charts
from inbox.views.agent import agent_view
from statuses import campaign_counts, errors
from statuses.campaigns import create, lifecycle
from statuses.campaigns.recipients import recipients_parse
from statuses.machine import Status
from statuses.models import StatusEvent

LISTED = 100
# 100,000 recipients with a few parameters each fit well within this.
MAX_CSV_BYTES = 20_000_000
UNKNOWN_TITLE = errors.UNKNOWN_ERROR.title
REASONS_SHOWN = 5

STATUS_NOTES = {
    "SCHEDULED": "Waiting for its start time.",
    "RUNNING": "Sending at the pace the inbox allows.",
    "PAUSED": "Nothing more is sent until you resume; messages already sent still report.",
    "COMPLETED": "Every message was handed to the provider; delivery and read reports keep "
    "arriving.",
    "CANCELLED": "Messages not yet sent ended failed (cancelled).",
}
# Each button: its label, style and the question asked before it acts (if any).
ACTIONS = {
    "pause": ("Pause", "", ""),
    "resume": ("Resume", "primary", ""),
    "cancel": (
        "Cancel campaign",
        "danger",
        "Cancel this campaign? Messages not yet sent will end failed (cancelled).",
    ),
}
OFFERED = {
    "SCHEDULED": ("pause", "cancel"),
    "RUNNING": ("pause", "cancel"),
    "PAUSED": ("resume", "cancel"),
}
LIVE = frozenset({"SCHEDULED", "RUNNING"})


def _campaign_view(
    campaign: Campaign, counts: dict[str, int], *, detail: bool = False
) -> dict[str, Any]:
    """What the templates show of a campaign, from its row and counts (and, for its own page,
    its failure reasons: one more query, only if some failed)."""
    status = str(campaign.status).upper()
    counts = campaign_charts.normalised(counts)
    steps = campaign_charts.funnel_steps(campaign.total, counts)
    view = {
        "id": campaign.id,
        "name": campaign.name,
        "inbox_name": campaign.inbox.name,
        "status": status,
        "status_label": status.capitalize(),
        "status_note": STATUS_NOTES.get(status, ""),
        "total": campaign.total,
        "rejected": campaign.rejected,
        "steps": steps,
        "progress": campaign_charts.progress(campaign.total, campaign.materialised, counts),
        "created_at": campaign.created_at,
        "started_at": campaign.started_at,
        "completed_at": campaign.completed_at,
        "scheduled_at": campaign.scheduled_at,
        "live": status in LIVE,
        # Creating messages publishes no status: the page polls until every one exists.
        "creating": status in LIVE and campaign.materialised < campaign.total,
        "url": reverse("inbox:campaign", args=[campaign.id]),
    }
    if detail:
        view["funnel"] = campaign_charts.funnel(steps)
        view["actions"] = [
            {
                "name": name,
                "label": ACTIONS[name][0],
                "style": ACTIONS[name][1],
                "confirm": ACTIONS[name][2],
                "url": reverse("inbox:campaign-action", args=[campaign.id, name]),
            }
            for name in OFFERED.get(status, ())
        ]
        failed = counts.get("FAILED", 0) + counts.get("EXPIRED", 0)
        view["reasons"] = _failure_reasons(campaign) if failed else []
    return view


def _failure_reasons(campaign: Campaign) -> list[dict[str, Any]]:
    """The commonest failure codes of the campaign's messages, in the catalogue's words."""
    rows = (
        Message.objects.filter(campaign=campaign, status__in=[Status.FAILED, Status.EXPIRED])
        .values("channel_type", "error_code")
        .annotate(count=Count("id"), provider_title=Max("error_title"))
        .order_by("-count", "error_code")[:REASONS_SHOWN]
    )
    reasons = []
    for row in rows:
        info = errors.error_info(row["channel_type"], row["error_code"])
        reasons.append(
            {
                "code": row["error_code"],
                "count": row["count"],
                # A code the catalogue does not know: the provider's own title, if it gave one.
                "title": info.title if info else row["provider_title"] or UNKNOWN_TITLE,
                "explanation": info.explanation if info else "",
                "hint": info.hint if info else "",
            }
        )
    return reasons


def _list_context(account: Account) -> dict[str, Any]:
    rows = list(selectors.campaign_list(account=account).order_by("-created_at")[: LISTED + 1])
    shown = rows[:LISTED]
    counts = campaign_counts.counts(c.id for c in shown)
    return {
        "campaigns": [_campaign_view(c, counts[c.id]) for c in shown],
        "more": len(rows) > LISTED,
        "updated_at": timezone.now(),
    }


def _campaign(account: Account, pk: uuid.UUID) -> Campaign:
    """The account's campaign; another account's answers 404 exactly like a missing one."""
    campaign = selectors.campaign_get(account=account, campaign_id=pk)
    if campaign is None:
        raise Http404("No such campaign.")
    return campaign


def _detail_context(account: Account, pk: uuid.UUID) -> dict[str, Any]:
    campaign = _campaign(account, pk)
    counts = campaign_counts.counts([campaign.id])[campaign.id]
    return {"campaign": _campaign_view(campaign, counts, detail=True), "updated_at": timezone.now()}


def _panel(
    request: HttpRequest, template: str, context: dict[str, Any], creating: bool
) -> HttpResponse:
    response = render(request, template, context)
    response["X-Campaign-Creating"] = "1" if creating else "0"
    return response


def _list_page(
    request: HttpRequest, account: Account, status: int = 200, **form: Any
) -> HttpResponse:
    context = _list_context(account)
    creating = any(c["creating"] for c in context["campaigns"])
    context["config"] = {"panel_url": reverse("inbox:campaigns-panel"), "creating": creating}
    context["inboxes"] = Inbox.objects.filter(account=account).order_by("name")
    return render(
        request, "campaigns/list.html", {"account": account, **context, **form}, status=status
    )


@require_GET
@agent_view
def campaigns_page(request: HttpRequest, account: Account) -> HttpResponse:
    return _list_page(request, account)


@require_GET
@agent_view
def campaigns_panel(request: HttpRequest, account: Account) -> HttpResponse:
    context = _list_context(account)
    creating = any(c["creating"] for c in context["campaigns"])
    return _panel(request, "campaigns/_list_panel.html", context, creating)


@require_GET
@agent_view
def campaign_page(request: HttpRequest, account: Account, pk: uuid.UUID) -> HttpResponse:
    context = _detail_context(account, pk)
    context["config"] = {
        "panel_url": reverse("inbox:campaign-panel", args=[pk]),
        "creating": context["campaign"]["creating"],
        "campaign_id": str(pk),
    }
    return render(request, "campaigns/detail.html", {"account": account, **context})


@require_GET
@agent_view
def campaign_panel(request: HttpRequest, account: Account, pk: uuid.UUID) -> HttpResponse:
    context = _detail_context(account, pk)
    creating = context["campaign"]["creating"]
    return _panel(request, "campaigns/_detail_panel.html", context, creating)


ACTION_SERVICES = {
    "pause": (lifecycle.campaign_pause, "Paused"),
    "resume": (lifecycle.campaign_resume, "Resumed"),
    "cancel": (
        partial(lifecycle.campaign_cancel, source=StatusEvent.Source.AGENT),
        "Cancelled",
    ),
}


@require_POST
@agent_view
def campaign_action(
    request: HttpRequest, account: Account, pk: uuid.UUID, action: str
) -> HttpResponse:
    campaign = _campaign(account, pk)
    if action not in ACTION_SERVICES:
        raise Http404("No such action.")
    service, done = ACTION_SERVICES[action]
    try:
        service(campaign=campaign)
    except InboxError as exc:
        flash.error(request, exc.message)
    else:
        flash.success(request, f"{done} “{campaign.name}”.")
    return redirect("inbox:campaign", pk=pk)


@require_POST
@agent_view
def campaign_create(request: HttpRequest, account: Account) -> HttpResponse:
    """The page's form: the same checks and CSV reading as ``POST /api/v1/campaigns``."""
    data: dict[str, Any] = {
        "name": request.POST.get("name", "").strip(),
        "inbox": request.POST.get("inbox", ""),
    }
    upload = request.FILES.get("recipients")
    if upload is not None and upload.size > MAX_CSV_BYTES:
        return _list_page(
            request,
            account,
            status=400,
            create_errors=[f"CSV file: at most {MAX_CSV_BYTES // 1_000_000} MB."],
            create_values=request.POST,
        )
    if upload is not None:
        data["recipients"] = upload
    content = request.POST.get("content", "").strip()
    template_name = request.POST.get("template_name", "").strip()
    if template_name:
        language = request.POST.get("template_language", "").strip() or "en_US"
        data["template"] = {"name": template_name, "language": {"code": language}}
    elif content:
        data["content"] = content
    serializer = campaigns_api.CampaignCreateSerializer(data=data, context={"account": account})
    if not serializer.is_valid():
        return _list_page(
            request,
            account,
            status=400,
            create_errors=_error_lines(serializer.errors),
            create_values=request.POST,
        )
    valid = serializer.validated_data
    recipients, malformed = recipients_parse(valid["recipients"])
    campaign, rejected = create.campaign_create(
        account=account,
        inbox=valid["inbox"],
        name=valid["name"],
        recipients=recipients,
        content=valid.get("content", ""),
        template=valid.get("template"),
    )
    rejections = sorted(malformed + rejected, key=lambda r: r.index)
    flash.success(request, f"Created “{campaign.name}”: {campaign.total} recipient(s) accepted.")
    if rejections:
        # The CSV's line: the header is line 1.
        shown = "; ".join(f"line {r.index + 2} ({r.to or '-'}): {r.code}" for r in rejections[:10])
        more = f" and {len(rejections) - 10} more" if len(rejections) > 10 else ""
        flash.warning(request, f"{len(rejections)} rejected — {shown}{more}.")
    return redirect("inbox:campaign", pk=campaign.id)


def _error_lines(errors_by_field: dict[str, Any]) -> list[str]:
    """The serializer's errors as sentences naming the form's fields."""
    labels = {
        "name": "Name",
        "inbox": "Inbox",
        "content": "Message",
        "template": "Template",
        "recipients": "CSV file",
    }
    lines = []
    for field_name, problems in errors_by_field.items():
        problems = problems if isinstance(problems, list) else [problems]
        label = labels.get(field_name)
        lines.extend(f"{label}: {p}" if label else str(p) for p in problems)
    return lines
