"""Numbers the reliability tests report; ``conftest.py`` prints them at the end of the run."""

from __future__ import annotations

from typing import Any

STATS: dict[str, Any] = {}


def add(key: str, n: int = 1) -> None:
    """Add ``n`` to a counter."""
    STATS[key] = STATS.get(key, 0) + n


def put(key: str, value: Any) -> None:
    """Set a value (a seed, a measurement)."""
    STATS[key] = value
