"""A campaign's delivery funnel and progress, from its maintained counts (DESIGN §16).

Pure functions over the ``counts`` dict the Campaign keeps (status → number of its messages);
no query here. The funnel is cumulative, like a tick: a read message was also delivered and
sent, so "delivered" counts DELIVERED and READ. SVG is drawn on the server like the analytics
charts (``inbox.views.charts``): no chart library, no CDN, nothing inline to run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from inbox.views.charts import percent

# Which statuses each step of the funnel includes (a message in a later status passed the
# earlier steps). UNKNOWN: the provider took the send but never said more; RECEIVED is the
# provider's own "on its way"; DELETED was delivered before the contact deleted it.
STEPS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("queued", "Waiting to send", frozenset({"QUEUED"})),
    ("sent", "Sent", frozenset({"UNKNOWN", "SENT", "RECEIVED", "DELIVERED", "READ", "DELETED"})),
    ("delivered", "Delivered", frozenset({"DELIVERED", "READ", "DELETED"})),
    ("read", "Read", frozenset({"READ"})),
    ("failed", "Failed", frozenset({"FAILED", "EXPIRED"})),
)
COLOURS = {
    "queued": "#c9d1d6",
    "sent": "#8696a0",
    "delivered": "#00806a",
    "read": "#1d9bf0",
    "failed": "#d93025",
}


def normalised(counts: Mapping[str, Any] | None) -> dict[str, int]:
    """Counts keyed by upper-case status, zeros dropped (the API spells them ``QUEUED``…)."""
    return {str(k).upper(): int(v) for k, v in (counts or {}).items() if v}


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def funnel_steps(total: int, counts: Mapping[str, int]) -> list[dict[str, Any]]:
    """Each step's count and its share of the campaign's recipients."""
    steps = []
    for step, label, statuses in STEPS:
        count = sum(counts.get(status, 0) for status in statuses)
        rate = _share(count, total)
        steps.append(
            {"step": step, "label": label, "count": count, "rate": rate, "percent": percent(rate)}
        )
    return steps


def progress(total: int, created: int, counts: Mapping[str, int]) -> dict[str, Any]:
    """How far the campaign got: messages ``created`` out of recipients, and handed to the
    provider (anything no longer queued) out of recipients."""
    handed = max(0, sum(counts.values()) - counts.get("QUEUED", 0))
    return {
        "created": created,
        "created_percent": percent(_share(created, total)),
        "created_value": min(created, total),
        "handed": handed,
        "handed_percent": percent(_share(handed, total)),
        "handed_value": min(handed, total),
    }


def funnel(steps: Iterable[dict[str, Any]], width: int = 560) -> SafeString:
    """One horizontal bar per step, as long as its share of the recipients."""
    bar_h, gap, label_w = 24, 8, 118
    inner = width - label_w - 110
    rows = []
    steps = list(steps)
    for i, step in enumerate(steps):
        y = i * (bar_h + gap)
        length = round(max(1.0, inner * (step["rate"] or 0)), 1) if step["count"] else 0
        rows.append(
            format_html(
                '<g data-bar="{}"><text x="0" y="{}" class="chart-label">{}</text>'
                '<rect x="{}" y="{}" width="{}" height="{}" rx="3" fill="{}">'
                "<title>{}: {} ({})</title></rect>"
                '<text x="{}" y="{}" class="chart-value">{} · {}</text></g>',
                step["step"],
                y + 17,
                step["label"],
                label_w,
                y,
                length,
                bar_h,
                COLOURS[step["step"]],
                step["label"],
                step["count"],
                step["percent"],
                round(label_w + length + 6, 1),
                y + 17,
                step["count"],
                step["percent"],
            )
        )
    described = ", ".join(f"{s['count']} {s['label'].lower()}" for s in steps)
    return format_html(
        '<svg class="chart chart--campaign" viewBox="0 0 {} {}" width="100%" role="img" '
        'aria-label="Funnel: {}">{}</svg>',
        width,
        len(steps) * (bar_h + gap),
        described,
        format_html_join("", "{}", ((row,) for row in rows)),
    )
