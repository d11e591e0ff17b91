"""A filesystem without an atomic create-if-absent: commits fall back to single-writer mode.

``put_if_absent`` raises ``AtomicCreateUnsupported`` there; the workspace then checks that the
version is absent and writes it under a lock in the cache folder, and warns once that this is safe
only while every writer runs on one machine. A number already taken is still never overwritten.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from langchain_memvid.engine import Engine, Record
from langchain_memvid.engine.storage.objects import AtomicCreateUnsupported, ObjectStore
from langchain_memvid.engine.versions import manifest


@pytest.fixture(autouse=True)
def _no_atomic_create(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LCMEMVID_CACHE", str(tmp_path / "cache"))

    def unsupported(self: ObjectStore, name: str, data: bytes) -> bool:
        raise AtomicCreateUnsupported("no atomic create here")

    monkeypatch.setattr(ObjectStore, "put_if_absent", unsupported)


def _add(engine: Engine, rid: str) -> None:
    engine.add([Record(id=rid, text=f"text of {rid}")], np.ones((1, 4), dtype="float32"))


def _two_writers(url: str) -> list[str]:
    with Engine(url, dim=4) as first:
        _add(first, "a")
    with Engine(url) as second:
        _add(second, "b")
        assert [v["operation"] for v in second.versions()] == ["create", "add", "add"]
        return sorted(r.text for r in second.iter_records())


def test_commits_work_with_a_warning_and_stay_in_order() -> None:
    with pytest.warns(UserWarning, match="single-writer mode"):
        texts = _two_writers("memory://single-writer/in-order")
    assert texts == ["text of a", "text of b"]


@pytest.mark.filterwarnings("ignore:.*single-writer mode")
def test_a_taken_number_is_never_overwritten() -> None:
    url = "memory://single-writer/taken"
    with Engine(url, dim=4) as engine:
        _add(engine, "a")
        workspace = engine._versions
        assert workspace is not None
        assert workspace.head is not None
        taken = manifest.read_version(workspace.objects, workspace.head.number)
        assert taken is not None
        before = workspace.objects.read(taken.name)
        assert workspace._create_version(taken) is False
        assert workspace.objects.read(taken.name) == before
