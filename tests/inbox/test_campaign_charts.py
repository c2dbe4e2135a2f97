"""The campaign funnel's arithmetic and SVG (pure functions over the maintained counts)."""

from __future__ import annotations

from inbox.views import campaign_charts


def _steps(total, counts):
    steps = campaign_charts.funnel_steps(total, campaign_charts.normalised(counts))
    return {s["step"]: (s["count"], s["percent"]) for s in steps}


def test_steps_are_cumulative_like_a_tick():
    counts = {"QUEUED": 40, "SENT": 20, "DELIVERED": 15, "READ": 10, "FAILED": 10, "EXPIRED": 5}
    assert _steps(100, counts) == {
        "queued": (40, "40.0 %"),
        "sent": (45, "45.0 %"),  # a read message was delivered and sent too
        "delivered": (25, "25.0 %"),
        "read": (10, "10.0 %"),
        "failed": (15, "15.0 %"),
    }


def test_lower_case_keys_and_zeros_are_accepted():
    assert campaign_charts.normalised({"queued": 3, "sent": 0, "read": 1}) == {
        "QUEUED": 3,
        "READ": 1,
    }
    assert campaign_charts.normalised(None) == {}


def test_empty_campaign_has_no_percentages():
    assert _steps(0, {}) == {step: (0, "–") for step in campaign_charts.COLOURS}


def test_progress_counts_created_and_handed_to_the_provider():
    counts = campaign_charts.normalised({"QUEUED": 300, "SENT": 100, "FAILED": 100})
    progress = campaign_charts.progress(1000, 500, counts)
    assert (progress["created"], progress["created_percent"]) == (500, "50.0 %")
    assert (progress["handed"], progress["handed_percent"]) == (200, "20.0 %")


def test_funnel_svg_bars_grow_with_their_share_and_escape_nothing_unsafe():
    steps = campaign_charts.funnel_steps(10, {"QUEUED": 5, "READ": 4, "FAILED": 1})
    svg = str(campaign_charts.funnel(steps))
    assert svg.startswith('<svg class="chart chart--campaign"')
    assert 'aria-label="Funnel: 5 waiting to send, 4 sent, 4 delivered, 4 read, 1 failed"' in svg
    widths = {
        step: float(svg.split(f'data-bar="{step}"')[1].split('width="')[1].split('"')[0])
        for step in campaign_charts.COLOURS
    }
    assert widths["queued"] > widths["read"] > widths["failed"] > 0
    assert widths["sent"] == widths["delivered"] == widths["read"]
