"""The CI skip guard (tests/forbid_skips.py) and the ``requires_postgres`` marker, run on tiny
test files in a separate pytest process, as ``.ci/run`` would run the real suite."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SUITE = """
import pytest

def test_runs():
    assert True

@pytest.mark.skip(reason="no chromium here")
def test_skipped():
    pass

def test_skips_at_run_time():
    pytest.skip("redis went away")

@pytest.mark.xfail(reason="known bug", strict=True)
def test_expected_failure():
    assert False
"""

CLEAN = """
def test_runs():
    assert True
"""


def run(pytester: pytest.Pytester, monkeypatch, source: str, forbid: str | None):
    pytester.makepyfile(test_tiny=source)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    if forbid is None:
        monkeypatch.delenv("TICKMARK_FORBID_SKIPS", raising=False)
    else:
        monkeypatch.setenv("TICKMARK_FORBID_SKIPS", forbid)
    # Only the guard: not Django's plugin (the tiny files need no database), nor the heavy ones.
    quiet = [f"-pno:{name}" for name in ("django", "schemathesis", "hypothesispytest", "anyio")]
    return pytester.runpytest_subprocess("-p", "tests.forbid_skips", *quiet, "-rs")


def test_a_skip_fails_the_run_when_skips_are_forbidden(pytester, monkeypatch):
    result = run(pytester, monkeypatch, SUITE, forbid="1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, skipped=2, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "*TICKMARK_FORBID_SKIPS: skipped tests are failures here*",
            "SKIPPED (forbidden) test_tiny.py::test_skipped: *no chromium here",
            "SKIPPED (forbidden) test_tiny.py::test_skips_at_run_time: *redis went away",
            "2 test(s) skipped while TICKMARK_FORBID_SKIPS is set*",
        ]
    )


def test_a_module_skipped_at_collection_fails_the_run_too(pytester, monkeypatch):
    source = "import pytest\npytest.skip('needs a GPU', allow_module_level=True)\n"
    result = run(pytester, monkeypatch, source, forbid="1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["SKIPPED (forbidden) test_tiny.py: *needs a GPU"])


def test_skips_are_allowed_when_not_forbidden(pytester, monkeypatch):
    result = run(pytester, monkeypatch, SUITE, forbid=None)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, skipped=2, xfailed=1)
    assert "SKIPPED (forbidden)" not in result.stdout.str()


def test_a_run_without_skips_passes_when_skips_are_forbidden(pytester, monkeypatch):
    result = run(pytester, monkeypatch, CLEAN, forbid="1")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)


def test_a_failing_run_stays_failed_and_lists_its_skips(pytester, monkeypatch):
    source = SUITE + "\ndef test_broken():\n    assert 1 == 2\n"
    result = run(pytester, monkeypatch, source, forbid="1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1, skipped=2, xfailed=1)
    result.stdout.fnmatch_lines(["SKIPPED (forbidden) test_tiny.py::test_skipped: *"])


def test_ci_script_forbids_skips():
    script = (ROOT / ".ci" / "run").read_text()
    assert "export TICKMARK_FORBID_SKIPS=1" in script
    assert script.index("export TICKMARK_FORBID_SKIPS=1") < script.index("make test")


@pytest.mark.requires_postgres("checks the marker itself")
def test_requires_postgres_runs_only_on_postgresql():
    from django.db import connection

    # On SQLite the marker skipped this test before it could get here.
    assert connection.vendor == "postgresql"
