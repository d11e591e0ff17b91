"""Reliability suite: shared fixtures and the summary of numbers printed after the run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from .common import REPO
from .stats import STATS

SEED = int(os.environ.get("MEMVID_RELIABILITY_SEED", "20240605"))

# (label, numerator key, denominator key or None); printed when the keys were recorded.
SUMMARY = [
    ("crash kills survived / kills run", "kills_survived", "kills_run"),
    ("  in-flight writes at a kill (fully applied / fully absent)", "inflight_applied", "inflight_absent"),
    ("acknowledged writes lost (must be 0)", "acked_lost", None),
    ("half-visible writes (must be 0)", "half_visible", None),
    ("wrong texts returned (must be 0)", "wrong_texts", None),
    ("corruptions detected / corruptions injected", "corruptions_detected", "corruptions_injected"),
    ("  reads refused with an error naming file and record", "reads_refused", None),
    ("  records recovered by rebuild / intact records", "rebuild_recovered", "rebuild_intact"),
    ("rebuild kills survived / kills run", "rebuild kills survived", "rebuild kills run"),
    ("rebuild: hostile files refused (nothing written)", "rebuild: hostile files refused", None),
    ("catalogs not ours refused, every video kept", "catalog not ours: videos kept / stores", None),
    ("fuzz cases run (only MemvidError escaped)", "fuzz_cases", None),
    ("model steps compared (every answer equal to the reference model's)", "model steps compared", None),
    ("hostile stores refused / crafted", "hostile_refused", "hostile_crafted"),
    ("stress operations run / errors", "stress_ops", "stress_errors"),
    ("bad-input calls refused, store unchanged", "bad_inputs_refused", None),
]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the reliability numbers, whatever the verbosity (``pytest -q`` included)."""
    if not STATS:
        return
    tr = terminalreporter
    tr.write_sep("=", "memvid reliability numbers")
    tr.write_line(f"seed: {SEED} (set MEMVID_RELIABILITY_SEED to reproduce another run)")
    shown = set()
    for label, num, den in SUMMARY:
        if num not in STATS and (den is None or den not in STATS):
            continue
        shown.update({num, den})
        value = f"{STATS.get(num, 0)}" + (f" / {STATS.get(den, 0)}" if den else "")
        tr.write_line(f"{label}: {value}")
    for key in sorted(set(STATS) - shown):
        tr.write_line(f"{key}: {STATS[key]}")


@pytest.fixture(scope="session")
def seed() -> int:
    return SEED


@pytest.fixture
def driver() -> Iterator[Any]:
    """Start driver processes (``python -m tests.reliability.driver ...``); all are reaped at the end."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.driver", *args],
            cwd=REPO,
            text=True,
            **kwargs,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
