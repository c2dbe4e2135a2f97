"""Pytest plugin: with ``TICKMARK_FORBID_SKIPS=1`` (set by ``.ci/run``) a skipped test fails the
session, listing every skip and its reason (DESIGN §10: in CI no test may be skipped).

Locally a skip is the honest answer to a missing part (no PostgreSQL, no Chromium); in CI every
part is there, so a skip means a test silently stopped running.
"""

from __future__ import annotations

import os

import pytest

ENV = "TICKMARK_FORBID_SKIPS"


def forbidden() -> bool:
    return os.environ.get(ENV, "").strip().lower() in {"1", "true", "yes", "on"}


class _SkipGuard:
    def __init__(self) -> None:
        self.skipped: list[tuple[str, str]] = []

    def _note(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        if not report.skipped or hasattr(report, "wasxfail"):
            return
        reason = ""
        if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
            reason = str(report.longrepr[2])
        self.skipped.append((report.nodeid, reason))

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._note(report)

    @pytest.hookimpl
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._note(report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # A run whose every test was skipped "collected nothing": that fails too.
        clean = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
        if self.skipped and session.exitstatus in clean:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.skipped:
            return
        terminalreporter.section(f"{ENV}: skipped tests are failures here", red=True)
        for nodeid, reason in self.skipped:
            terminalreporter.line(f"SKIPPED (forbidden) {nodeid}: {reason}")
        terminalreporter.line(
            f"{len(self.skipped)} test(s) skipped while {ENV} is set: every part this suite "
            "needs (PostgreSQL, Redis, Chromium) must be present, so nothing may be skipped."
        )


def pytest_configure(config: pytest.Config) -> None:
    if forbidden():
        config.pluginmanager.register(_SkipGuard(), "tickmark-forbid-skips")
