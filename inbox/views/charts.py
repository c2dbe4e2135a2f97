"""Server-side SVG charts for the analytics page: no chart library, no CDN, works offline.

Each function takes numbers already computed by ``inbox.analytics`` and returns markup; every
text that comes from data is escaped by ``format_html``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

FUNNEL_COLOURS = {"sent": "#8696a0", "delivered": "#00806a", "read": "#1d9bf0"}


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f} %"


def duration(ms: float | None) -> str:
    """1840 → "1.8 s", 95000 → "1.6 min": the unit a person reads at a glance."""
    if ms is None:
        return "–"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    if ms < 3_600_000:
        return f"{ms / 60_000:.1f} min"
    return f"{ms / 3_600_000:.1f} h"


def funnel_steps(group: dict[str, Any]) -> list[dict[str, Any]]:
    """Sent → delivered → read for one group, as counts and shares of what was sent."""
    total = group["total"]
    delivered = round((group["delivered_rate"] or 0) * total)
    read = round((group["read_rate"] or 0) * total)
    return [
        {"step": "sent", "label": "Sent", "count": total, "rate": 1.0 if total else None},
        {
            "step": "delivered",
            "label": "Delivered",
            "count": delivered,
            "rate": group["delivered_rate"],
        },
        {"step": "read", "label": "Read", "count": read, "rate": group["read_rate"]},
    ]


def funnel(group: dict[str, Any], width: int = 420) -> SafeString:
    """Three horizontal bars, each as long as its share of what was sent."""
    bar_h, gap, label_w = 22, 8, 80
    steps = funnel_steps(group)
    inner = width - label_w - 90
    rows = []
    for i, step in enumerate(steps):
        y = i * (bar_h + gap)
        length = round(max(1.0, inner * (step["rate"] or 0)), 1) if step["count"] else 0
        rows.append(
            format_html(
                '<g data-step="{}"><text x="0" y="{}" class="chart-label">{}</text>'
                '<rect x="{}" y="{}" width="{}" height="{}" rx="3" fill="{}">'
                "<title>{}: {} ({})</title></rect>"
                '<text x="{}" y="{}" class="chart-value">{} · {}</text></g>',
                step["step"],
                y + 16,
                step["label"],
                label_w,
                y,
                length,
                bar_h,
                FUNNEL_COLOURS[step["step"]],
                step["label"],
                step["count"],
                percent(step["rate"]),
                round(label_w + length + 6, 1),
                y + 16,
                step["count"],
                percent(step["rate"]),
            )
        )
    height = len(steps) * (bar_h + gap)
    return format_html(
        '<svg class="chart chart--funnel" viewBox="0 0 {} {}" width="100%" role="img" '
        'aria-label="Funnel: {} sent, {} delivered, {} read">{}</svg>',
        width,
        height,
        steps[0]["count"],
        steps[1]["count"],
        steps[2]["count"],
        _concat(rows),
    )


def failure_rate_over_time(groups: list[dict[str, Any]], hourly: bool) -> SafeString:
    """One bar per day (or hour): the share of that bucket's messages that failed or expired.

    Buckets with no message are drawn as a dot on the axis, so "nothing sent" never reads as
    "nothing failed".
    """
    width, height, left, bottom, top = 640, 180, 52, 22, 10
    plot_h = height - bottom - top
    n = max(1, len(groups))
    slot = (width - left) / n
    peak = max((g["failed_rate"] or 0 for g in groups), default=0)
    scale = _nice_ceiling(peak)
    bars = []
    for i, group in enumerate(groups):
        x = round(left + i * slot, 1)
        key: datetime = group["key"]
        when = key.strftime("%d %b %H:00" if hourly else "%a %d %b")
        if group["total"] == 0:
            bars.append(
                format_html(
                    '<circle cx="{}" cy="{}" r="2" class="chart-empty">'
                    "<title>{}: no messages</title></circle>",
                    round(x + slot / 2, 1),
                    top + plot_h,
                    when,
                )
            )
            continue
        rate = group["failed_rate"] or 0
        bar_h = round(plot_h * rate / scale, 1) if scale else 0
        bars.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" class="chart-fail" '
                'data-rate="{}"><title>{}: {} failed of {} ({})</title></rect>',
                round(x + slot * 0.15, 1),
                round(top + plot_h - bar_h, 1),
                round(slot * 0.7, 1),
                max(bar_h, 0.5),
                rate,
                when,
                group["by_status"]["FAILED"] + group["by_status"]["EXPIRED"],
                group["total"],
                percent(rate),
            )
        )
    step = max(1, n // 8)
    labels = format_html_join(
        "",
        '<text x="{}" y="{}" class="chart-axis" text-anchor="middle">{}</text>',
        (
            (
                round(left + i * slot + slot / 2, 1),
                height - 6,
                g["key"].strftime("%H:00" if hourly else "%d %b"),
            )
            for i, g in enumerate(groups)
            if i % step == 0
        ),
    )
    grid = format_html(
        '<line x1="{}" x2="{}" y1="{}" y2="{}" class="chart-grid"/>'
        '<text x="{}" y="{}" class="chart-axis" text-anchor="end">{}</text>'
        '<line x1="{}" x2="{}" y1="{}" y2="{}" class="chart-grid"/>'
        '<text x="{}" y="{}" class="chart-axis" text-anchor="end">0 %</text>',
        left,
        width,
        top,
        top,
        left - 4,
        top + 4,
        percent(scale) if scale else "",
        left,
        width,
        top + plot_h,
        top + plot_h,
        left - 4,
        top + plot_h + 4,
    )
    return format_html(
        '<svg class="chart chart--failures" viewBox="0 0 {} {}" width="100%" role="img" '
        'aria-label="Failure rate per {}">{}{}{}</svg>',
        width,
        height,
        "hour" if hourly else "day",
        grid,
        _concat(bars),
        labels,
    )


def percentile_bars(groups: list[dict[str, Any]], width: int = 640) -> SafeString:
    """Per channel: p50, p90 and p99 time to deliver, on one shared linear scale."""
    rows = [g for g in groups if g["time_to_deliver_ms"]["p50"] is not None]
    if not rows:
        return mark_safe("")
    label_w, bar_h, gap = 110, 12, 14
    peak = max(g["time_to_deliver_ms"]["p99"] for g in rows) or 1
    inner = width - label_w - 80
    parts = []
    y = 0
    for group in rows:
        parts.append(
            format_html('<text x="0" y="{}" class="chart-label">{}</text>', y + 22, group["label"])
        )
        for j, (name, shade) in enumerate((("p50", 1.0), ("p90", 0.7), ("p99", 0.45))):
            value = group["time_to_deliver_ms"][name]
            length = round(max(1.0, inner * value / peak), 1)
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="#00806a" '
                    'fill-opacity="{}"><title>{} {}</title></rect>'
                    '<text x="{}" y="{}" class="chart-value">{} {}</text>',
                    label_w,
                    y + j * (bar_h + 2),
                    length,
                    bar_h,
                    shade,
                    name,
                    duration(value),
                    round(label_w + length + 4, 1),
                    y + j * (bar_h + 2) + 10,
                    name,
                    duration(value),
                )
            )
        y += 3 * (bar_h + 2) + gap
    return format_html(
        '<svg class="chart chart--times" viewBox="0 0 {} {}" width="100%" role="img" '
        'aria-label="Time to deliver percentiles per channel">{}</svg>',
        width,
        y,
        _concat(parts),
    )


def _concat(parts: list[SafeString]) -> SafeString:
    """Join markup already built (and escaped) by ``format_html``."""
    return format_html_join("", "{}", ((part,) for part in parts))


def _nice_ceiling(rate: float) -> float:
    """The axis top: the smallest of 1 %, 2 %, 5 %, 10 %, 20 %, 50 %, 100 % above ``rate``."""
    if rate <= 0:
        return 0.0
    for top in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0):
        if rate <= top:
            return top
    return 1.0
