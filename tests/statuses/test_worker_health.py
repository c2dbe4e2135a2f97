"""The worker's heartbeat and ``GET /healthz/worker`` (what a supervisor or monitor polls)."""

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from statuses import lanes
from statuses.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


def test_worker_health_is_503_until_every_lane_has_beaten_recently(settings):
    settings.WORKER_HEARTBEAT_STALE_AFTER = 60
    web = Client()
    none = web.get("/healthz/worker")
    assert none.status_code == 503
    assert none.json()["status"] == "stale"

    lanes.Heartbeat("w1", "send").beat()
    assert web.get("/healthz/worker").status_code == 503  # the webhooks lane is missing
    lanes.Heartbeat("w1", "webhooks").beat()
    ok = web.get("/healthz/worker")
    assert ok.status_code == 200
    body = ok.json()
    assert body["status"] == "ok" and body["workers"] == 1
    assert 0 <= body["lane_heartbeat_age_seconds"]["send"] < 5
    assert "host" not in str(body) and "pid" not in str(body)  # nothing about the machine

    WorkerHeartbeat.objects.update(seen_at=timezone.now() - timedelta(minutes=5))
    stale = web.get("/healthz/worker")
    assert stale.status_code == 503
    assert stale.json()["lane_heartbeat_age_seconds"]["send"] >= 299


def test_heartbeat_updates_its_row_and_forgets_workers_gone_for_a_day(settings):
    settings.WORKER_HEARTBEAT_EVERY = 0
    gone = WorkerHeartbeat.objects.create(
        worker_id="old", lane="send", seen_at=timezone.now() - timedelta(days=2)
    )
    beat = lanes.Heartbeat("w1", "send")
    beat.beat()
    first = WorkerHeartbeat.objects.get(worker_id="w1").seen_at
    beat.beat()
    assert WorkerHeartbeat.objects.filter(worker_id="w1").count() == 1
    assert WorkerHeartbeat.objects.get(worker_id="w1").seen_at >= first
    assert not WorkerHeartbeat.objects.filter(id=gone.id).exists()


def test_retry_db_waits_with_capped_backoff_then_succeeds_or_gives_up(settings):
    settings.WORKER_DB_RETRY_MAX = 2
    waits: list[float] = []
    calls = iter([OperationalError("down"), OperationalError("down"), OperationalError("x"), 7])

    def flaky():
        outcome = next(calls)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert lanes.retry_db(flaky, what="test", sleep=waits.append) == 7
    assert waits == [0.5, 1.0, 2.0]

    def always_down():
        raise OperationalError("down")

    with pytest.raises(OperationalError):
        lanes.retry_db(always_down, what="test", keep_going=lambda: False, sleep=waits.append)
