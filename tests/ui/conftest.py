"""Browser-test fixtures: a real daphne serving the test database, Debian's Chromium.

pytest-django's ``live_server`` is WSGI-only (no WebSockets), so daphne runs as a subprocess
against the test database, with the same Redis channel layer as the test process: a status
applied here reaches the browser through Redis exactly as in production.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("daphne did not start")


def _test_database_url() -> str:
    db = settings.DATABASES["default"]
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + db["NAME"]))


@pytest.fixture(scope="session")
def live_url(django_db_setup, django_db_blocker):
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        pytest.skip("browser tests need PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "DB_POOL": "0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "CHANNELS_PREFIX": settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
    }
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "daphne.log", "wb")  # noqa: SIM115 (closed at teardown)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "tests.ui.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="session")
def browser(live_url):
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    # Playwright's sync API keeps an event loop on this thread, which makes Django refuse ORM
    # calls from the test body; the tests are synchronous code, so lift the guard meanwhile.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(browser, live_url):
    contexts = []

    def make():
        context = browser.new_context(base_url=live_url, viewport={"width": 1200, "height": 760})
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def agent(transactional_db, account):
    from django.contrib.auth import get_user_model

    from inbox.models import Membership

    user = get_user_model().objects.create_user(username="ada", password="lovelace-123")
    Membership.objects.create(user=user, account=account)
    return user


@pytest.fixture
def agent_page(new_page, agent, live_url):
    """A page signed in as the agent (session cookie set directly: the login form has its own
    test)."""
    from django.test import Client

    client = Client()
    client.force_login(agent)
    page = new_page()
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_url}]
    )
    return page


@pytest.fixture
def run_tasks():
    """Run every enqueued task (sends…) with django-tasks-db's real worker, then return."""
    from django_tasks_db.management.commands.db_worker import Worker

    def run() -> None:
        Worker(
            queue_names=["*"],
            interval=0,
            batch=True,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id="ui-tests",
            excluded_queue_names=[],
        ).run()

    return run


@pytest.fixture
def screenshot():
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return take
