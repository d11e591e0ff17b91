"""Bad arguments for opening a versioned store are refused before anything is read or made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from langchain_memvid.engine import Engine, InvalidArgument
from langchain_memvid.engine.storage.objects import ObjectStore


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LCMEMVID_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"as_of": float("nan")},
        {"as_of": float("inf")},
        {"as_of": "2026-12-03"},
        {"as_of": True},
        {"version": 0},
        {"version": "1"},
        {"version": True},
        {"version": 1, "as_of": 0.0},
    ],
)
def test_a_bad_version_or_time_is_refused_and_nothing_is_made(kwargs: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        Engine("memory://open-arguments/store", **kwargs)
    assert ObjectStore("memory://open-arguments/store").list() == []
    assert not list((tmp_path / "cache" / "work").glob("ws-*")), "no workspace left behind"


def test_ingest_on_ray_refuses_every_kind_of_versioned_store(tmp_path: Path) -> None:
    """A URL, a ``file://`` URL and a plain path to a versioned folder: the workers could not
    build segments there. Refused before Ray is even needed, nothing written."""
    from langchain_memvid.distributed import ingest_on_ray

    folder = tmp_path / "versioned"
    Engine(f"file://{folder}", dim=4).close()
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    for store in ("memory://open-arguments/ray", f"file://{folder}", str(folder), folder):
        with pytest.raises(ValueError, match="versioned store"):
            ingest_on_ray(store, [tmp_path / "nothing.txt"])
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
