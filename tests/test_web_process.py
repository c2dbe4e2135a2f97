"""The web process's own settings of the interpreter (``config/asgi.py``)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _switch_interval(**env: str) -> float:
    """``sys.getswitchinterval()`` in a fresh interpreter once the ASGI application is loaded."""
    inherited = {k: v for k, v in os.environ.items() if k != "TICKMARK_SWITCH_INTERVAL_MS"}
    result = subprocess.run(
        [sys.executable, "-c", "import sys, config.asgi; print(sys.getswitchinterval())"],
        cwd=ROOT,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def test_the_web_process_hands_the_gil_over_every_half_millisecond():
    # Python's default is 5 ms: a thread woken by PostgreSQL or Redis waited up to that long
    # behind a busy one, several times per webhook (the tick's p99, bench/README.md).
    assert _switch_interval() == 0.0005


def test_an_operator_can_set_it():
    assert _switch_interval(TICKMARK_SWITCH_INTERVAL_MS="2") == 0.002
