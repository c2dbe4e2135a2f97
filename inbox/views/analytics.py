"""The analytics page (DESIGN §15) and failed-message triage, for signed-in agents.

The numbers come from ``inbox.analytics`` (the same selector as the API); charts are SVG drawn
here on the server. ``/analytics/panel/`` answers just the results, which the page's script
re-fetches when statuses arrive over ``/ws/agent/``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from inbox import analytics, selectors, triage
from inbox.models import Account, Campaign, Inbox, Template
from inbox.views import charts
from inbox.views.agent import agent_view
from statuses import errors
from statuses.catalogue import CHANNELS, FAMILY_SLUGS, ChannelType, Family

PERIODS = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "90d": ("Last 90 days", timedelta(days=90)),
}
DEFAULT_PERIOD = "7d"
# From the campaign's creation (before which it has no message) until now; only with a campaign.
WHOLE_CAMPAIGN = "campaign"
HOURLY_UP_TO = timedelta(hours=48)
CAMPAIGNS_LISTED = 100  # the newest in the filter's list (a linked older one is added to it)
TEMPLATES_LISTED = 200


def _filters(request: HttpRequest, account: Account) -> dict[str, Any]:
    """The page's filters from the query string; anything unknown (or another account's)
    falls back to "all"."""
    params = request.GET
    inboxes = list(Inbox.objects.filter(account=account).order_by("name"))
    inbox = next((i for i in inboxes if str(i.id) == params.get("inbox")), None)
    family = FAMILY_SLUGS.get((params.get("channel") or "").lower())
    families = sorted({CHANNELS[i.channel_type].family for i in inboxes})
    campaigns, campaign = _campaigns(account, params.get("campaign") or "")
    # The account's template names (synced from the providers, DESIGN §13), as the API's
    # ``template`` filter takes them; an unknown name falls back to all messages.
    templates = list(
        Template.objects.filter(account=account)
        .order_by("name")
        .values_list("name", flat=True)
        .distinct()[:TEMPLATES_LISTED]
    )
    template = params.get("template") if params.get("template") in templates else None
    period = params.get("period")
    if period not in PERIODS and not (period == WHOLE_CAMPAIGN and campaign is not None):
        period = DEFAULT_PERIOD
    until = _parse_time(params.get("until")) or timezone.now()
    default_since = (
        campaign.created_at
        if period == WHOLE_CAMPAIGN and campaign is not None
        else until - PERIODS[period][1]
    )
    since = _parse_time(params.get("since")) or default_since
    if since >= until:
        since = until - PERIODS.get(period, PERIODS[DEFAULT_PERIOD])[1]
    periods = [(key, label) for key, (label, _) in PERIODS.items()]
    if campaigns:
        periods.append((WHOLE_CAMPAIGN, "Whole campaign"))
    return {
        "period": period,
        "since": since,
        "until": until,
        "inbox": inbox,
        "family": family,
        "campaign": campaign,
        "template": template,
        "templates": templates,
        "inboxes": inboxes,
        "families": [(f, Family(f).label) for f in families],
        "campaigns": campaigns,
        "periods": periods,
        "custom": bool(params.get("since") or params.get("until")),
    }


def _campaigns(account: Account, wanted: str) -> tuple[list[Campaign], Campaign | None]:
    """The account's newest campaigns for the filter, and the chosen one (``None`` if it is
    not this account's): an older one, linked from its own page, joins the list."""
    newest = selectors.campaign_list(account=account).order_by("-created_at")
    campaigns = list(newest[:CAMPAIGNS_LISTED])
    campaign = next((c for c in campaigns if str(c.id) == wanted), None)
    if campaign is None and wanted:
        campaign = selectors.campaign_get(account=account, campaign_id=wanted)
        if campaign is not None:
            campaigns.append(campaign)
    return campaigns, campaign


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _query(filters: dict[str, Any], group_by: str | None) -> analytics.DeliveryQuery:
    return analytics.DeliveryQuery(
        since=filters["since"],
        until=filters["until"],
        inbox=filters["inbox"],
        family=filters["family"],
        campaign=filters["campaign"],
        template=filters["template"],
        group_by=group_by,
    )


def _filter_params(filters: dict[str, Any], exact_period: bool) -> dict[str, str]:
    """The filters as query parameters; ``exact_period`` pins since/until (links that must show
    the very messages counted on this page, even if opened later)."""
    params: dict[str, str] = {}
    if exact_period or filters["custom"]:
        params["since"] = _iso(filters["since"])
        params["until"] = _iso(filters["until"])
    else:
        params["period"] = filters["period"]
    if filters["inbox"] is not None:
        params["inbox"] = str(filters["inbox"].id)
    if filters["family"]:
        params["channel"] = filters["family"]
    if filters["campaign"] is not None:
        params["campaign"] = str(filters["campaign"].id)
    if filters["template"]:
        params["template"] = filters["template"]
    return params


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _panel_context(account: Account, filters: dict[str, Any]) -> dict[str, Any]:
    hourly = filters["until"] - filters["since"] <= HOURLY_UP_TO
    by_channel = analytics.delivery_stats(account=account, query=_query(filters, "channel"))
    over_time = analytics.delivery_stats(
        account=account, query=_query(filters, "hour" if hourly else "day"), counts_only=True
    )
    totals = by_channel["totals"]
    channels = []
    for group in by_channel["groups"]:
        group["label"] = Family(group["key"]).label
        channels.append(
            {
                "key": group["key"],
                "label": group["label"],
                "group": group,
                "funnel": charts.funnel(group),
                "steps": charts.funnel_steps(group),
                "ttd": {p: charts.duration(v) for p, v in group["time_to_deliver_ms"].items()},
            }
        )
    pinned = _filter_params(filters, exact_period=True)
    top_errors = []
    for error in totals["top_errors"]:
        link = {**pinned, "channel_type": error["channel_type"], "code": error["code"]}
        top_errors.append(
            {
                **error,
                "channel_label": ChannelType(error["channel_type"]).label,
                "url": reverse("inbox:analytics-failed") + "?" + urlencode(link),
            }
        )
    return {
        "totals": totals,
        "total_steps": charts.funnel_steps(totals),
        "rates": {
            "delivered": charts.percent(totals["delivered_rate"]),
            "read": charts.percent(totals["read_rate"]),
            "failed": charts.percent(totals["failed_rate"]),
        },
        "ttd": {p: charts.duration(v) for p, v in totals["time_to_deliver_ms"].items()},
        "ttr": {p: charts.duration(v) for p, v in totals["time_to_read_ms"].items()},
        "channels": channels,
        "failure_chart": charts.failure_rate_over_time(over_time["groups"], hourly),
        "hourly": hourly,
        "times_chart": charts.percentile_bars(by_channel["groups"]),
        "top_errors": top_errors,
        "csv_url": reverse("analytics-delivery")
        + "?"
        + urlencode({**pinned, "group_by": "channel", "format": "csv"}),
        "since": filters["since"],
        "until": filters["until"],
        "campaign": filters["campaign"],
        "updated_at": timezone.now(),
    }


@require_GET
@agent_view
def analytics_page(request: HttpRequest, account: Account) -> HttpResponse:
    filters = _filters(request, account)
    context = {
        "account": account,
        "filters": filters,
        "config": {
            "panel_url": reverse("inbox:analytics-panel")
            + "?"
            + urlencode(_filter_params(filters, exact_period=False)),
        },
        **_panel_context(account, filters),
    }
    return render(request, "analytics/page.html", context)


@require_GET
@agent_view
def analytics_panel(request: HttpRequest, account: Account) -> HttpResponse:
    filters = _filters(request, account)
    return render(request, "analytics/_panel.html", _panel_context(account, filters))


@require_GET
@agent_view
def failed_messages(request: HttpRequest, account: Account) -> HttpResponse:
    filters = _filters(request, account)
    channel_type = request.GET.get("channel_type", "")
    code = request.GET.get("code", "")
    if channel_type not in CHANNELS:
        channel_type = ""
    info = errors.error_info(channel_type, code) if channel_type and code else None
    info = info or errors.UNKNOWN_ERROR
    failed = (
        list(
            analytics.failed_messages(
                account=account,
                query=_query(filters, None),
                channel_type=channel_type,
                code=code,
            )
        )
        if channel_type
        else []
    )
    return render(
        request,
        "analytics/failed.html",
        {
            "account": account,
            "filters": filters,
            "channel_type": channel_type,
            "channel_label": ChannelType(channel_type).label if channel_type else "",
            "code": code,
            "info": info,
            "resend_helps": bool(channel_type) and errors.resend_helps(channel_type, code),
            "failed": failed,
            "limit": 200,
            "back_url": reverse("inbox:analytics")
            + "?"
            + urlencode(_filter_params(filters, exact_period=False)),
        },
    )


@require_POST
@agent_view
def failed_messages_resend(request: HttpRequest, account: Account) -> HttpResponse:
    ids = []
    for value in request.POST.getlist("message"):
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            continue
    result = triage.messages_resend_bulk(account=account, message_ids=ids)
    if result.resent:
        flash.success(request, f"Resent {result.resent} message{'s' * (result.resent != 1)}.")
    if result.skipped:
        flash.warning(
            request,
            f"{result.skipped} not resent (already resent, no longer failed, or an error a "
            "resend cannot fix).",
        )
    back = request.POST.get("next", "")
    if not back.startswith("/analytics/"):
        back = reverse("inbox:analytics")
    return redirect(back)
