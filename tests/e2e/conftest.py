"""End-to-end plumbing: a live Tickmark (daphne) and real `manage.py worker` processes on the
test database, and the provider simulator in this process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def current_database_url() -> str:
    db = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.skip("end-to-end tests run on PostgreSQL")
    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST')}:{db.get('PORT') or 5432}/{db['NAME']}"


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.05, message=""):
    """Poll ``predicate`` until it is truthy. ``message`` may be a callable: it is then called
    at the timeout, so the error shows the state *then* (an f-string shows it at the start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    text = message() if callable(message) else message
    raise AssertionError(f"timed out waiting for {text or predicate}")


class Stack:
    """Processes sharing one environment (database, public URL, tuning)."""

    def __init__(self, database_url: str, server_port: int, logs: Path):
        self.server_port = server_port
        self.public_url = f"http://127.0.0.1:{server_port}"
        self.logs = logs
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "PUBLIC_BASE_URL": self.public_url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DB_POOL_MIN": "1",
            "DB_POOL_MAX": "4",
            # One send thread unless a test asks for more: the kill and outage tests count
            # "the send in flight" (tests that run several threads say so, e.g. test_send_rate).
            "WORKER_SEND_THREADS": "1",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        self.processes: list[subprocess.Popen] = []

    def start(self, args: list[str], **env: str) -> subprocess.Popen:
        log = self.logs / f"process-{len(self.processes)}.log"
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**self.env, **env},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        process.log = log  # type: ignore[attr-defined]
        self.processes.append(process)
        return process

    def start_server(self) -> subprocess.Popen:
        daphne = Path(sys.executable).with_name("daphne")
        process = self.start(
            [str(daphne), "-b", "127.0.0.1", "-p", str(self.server_port), "config.asgi:application"]
        )

        def up():
            if process.poll() is not None:
                raise AssertionError(f"daphne exited: {describe(process)}")
            try:
                return httpx.get(self.public_url + "/webhooks/none/", timeout=1).status_code
            except httpx.HTTPError:
                return None

        wait_for(up, timeout=90, message="daphne to answer")
        return process

    def start_worker(self, **env: str) -> subprocess.Popen:
        args = [sys.executable, "-X", "faulthandler", "manage.py", "worker"]
        process = self.start([*args, "--interval", "0.05", "--no-startup-delay"], **env)

        def ready():
            if process.poll() is not None:
                raise AssertionError(f"worker exited: {describe(process)}")
            return "Tickmark worker" in process.log.read_text()

        wait_for(ready, timeout=90, message="the worker to start")
        return process

    def stop(self, process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self) -> None:
        for process in self.processes:
            self.stop(process)


def describe(process: subprocess.Popen) -> str:
    state = "running" if process.poll() is None else f"exited {process.returncode}"
    return f"{state}: {process.log.read_text()[-3000:]}"


@pytest.fixture(scope="module")
def live_stack(django_db_setup, django_db_blocker, tmp_path_factory):
    """daphne and one worker, shared by a module's tests (each test's data is flushed)."""
    with django_db_blocker.unblock():
        url = current_database_url()
    stack = Stack(url, free_port(), tmp_path_factory.mktemp("e2e"))
    try:
        stack.start_server()
        stack.start_worker()
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture
def stack(live_stack, transactional_db, settings):
    settings.PUBLIC_BASE_URL = live_stack.public_url
    return live_stack


@pytest.fixture
def make_stack(transactional_db, settings, tmp_path):
    """A fresh stack per test, for tests that kill and restart processes."""
    stacks = []

    def make() -> Stack:
        stack = Stack(current_database_url(), free_port(), tmp_path)
        settings.PUBLIC_BASE_URL = stack.public_url
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop_all()


@pytest.fixture
def simulator():
    from statuses.simulator import ProviderSimulator, Scenario

    with ProviderSimulator(scenario=Scenario.instant(seed=7)) as sim:
        yield sim
