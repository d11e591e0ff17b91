"""Store settings and paths: what a store refuses to be opened as, and search order per metric.

Spec: docs/format.md, section 2 "Layout" (no symbolic links), section 5 "The catalog" (settings
in ``meta``), section 7.2 "Search" and section 9 "Compatibility" (newer versions are refused).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from langchain_memvid.engine import (
    Engine,
    NotAStore,
    Record,
    StoreConfigMismatch,
    StoreNotFound,
    UnsafePath,
    UnsupportedFormat,
)

from .conftest import DIM, add, store_files


def test_reopening_with_another_dimension_is_refused(open_engine: Callable[..., Engine], store_path: Path):
    add(open_engine(model="fake-8"), [Record("a", "a")])
    with pytest.raises(StoreConfigMismatch, match=r"8-dimensional.*'fake-8'.*dimension 16"):
        open_engine(dim=16)
    reopened = open_engine(dim=DIM)
    assert reopened.dim == DIM
    assert reopened.model == "fake-8"
    assert open_engine().get(["a"]) == [Record("a", "a")]


def test_dimension_given_at_creation_is_enforced_before_any_add(open_engine: Callable[..., Engine]):
    open_engine(dim=4)
    with pytest.raises(StoreConfigMismatch, match="4-dimensional"):
        open_engine(dim=DIM)


def test_reopening_with_another_metric_is_refused(open_engine: Callable[..., Engine]):
    add(open_engine(metric="l2"), [Record("a", "a")])
    with pytest.raises(StoreConfigMismatch, match="metric 'l2', not 'ip'"):
        open_engine(metric="ip")
    assert open_engine().metric == "l2"


def test_a_file_is_not_a_store(tmp_path: Path, open_engine: Callable[..., Engine]):
    path = tmp_path / "file.txt"
    path.write_text("hello")
    with pytest.raises(NotAStore, match="is a file"):
        open_engine(path)
    assert path.read_text() == "hello"


def test_a_folder_with_other_content_is_not_a_store(tmp_path: Path, open_engine: Callable[..., Engine]):
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "notes.md").write_text("# mine")
    with pytest.raises(NotAStore, match="other content"):
        open_engine(folder)
    assert store_files(folder) == {"notes.md"}, "refusing must not create anything in the folder"
    assert {p.name for p in folder.iterdir()} == {"notes.md"}


def test_missing_store_with_create_false(tmp_path: Path, open_engine: Callable[..., Engine]):
    with pytest.raises(StoreNotFound, match="No memvid store"):
        open_engine(tmp_path / "nowhere", create=False)
    assert not (tmp_path / "nowhere").exists()


def test_existing_empty_folder_becomes_a_store(tmp_path: Path, open_engine: Callable[..., Engine]):
    folder = tmp_path / "empty"
    folder.mkdir()
    add(open_engine(folder), [Record("x", "y")])
    assert open_engine(folder, create=False).get(["x"]) == [Record("x", "y")]


def test_symlinked_segments_folder_is_refused(tmp_path: Path, open_engine: Callable[..., Engine]):
    outside = tmp_path / "outside"
    outside.mkdir()
    store = tmp_path / "linked"
    store.mkdir()
    (store / "segments").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePath, match="symbolic link"):
        open_engine(store)


def test_newer_format_version_is_refused_without_touching_its_files(
    open_engine: Callable[..., Engine], store_path: Path
):
    """A newer format may keep its segment list elsewhere: an old library must not "clean" it."""
    add(open_engine(), [Record("a", "written by a newer library")])
    db = sqlite3.connect(store_path / "catalog.sqlite")
    db.execute("ALTER TABLE segments RENAME TO segments_v2")
    db.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (json.dumps(99),))
    db.commit()
    db.close()
    videos = {p.name: p.read_bytes() for p in (store_path / "segments").iterdir()}
    assert videos
    with pytest.raises(UnsupportedFormat, match=r"version 99.*Upgrade"):
        open_engine()
    assert {p.name: p.read_bytes() for p in (store_path / "segments").iterdir()} == videos


def _brute_force(matrix: np.ndarray, query: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(order, scores) of every row, best first, computed with plain numpy."""
    if metric == "l2":
        scores = np.linalg.norm(matrix - query, axis=1)
        order = np.argsort(scores, kind="stable")
    else:
        if metric == "cosine":
            matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
            query = query / np.linalg.norm(query)
        scores = matrix @ query
        order = np.argsort(-scores, kind="stable")
    return order, scores[order]


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_search_order_matches_numpy_brute_force(open_engine: Callable[..., Engine], metric: str):
    rng = np.random.default_rng(42)
    n = 60
    matrix = (rng.standard_normal((n, DIM)) * rng.uniform(0.2, 5.0, (n, 1))).astype(np.float32)
    records = [Record(f"v{i:02d}", f"vector {i}", {"even": i % 2 == 0}) for i in range(n)]
    open_engine(metric=metric).add(records, matrix)
    engine = open_engine()
    assert engine.metric == metric

    for _ in range(5):
        query = rng.standard_normal(DIM).astype(np.float32) * 2
        order, scores = _brute_force(matrix.astype(np.float64), query.astype(np.float64), metric)
        hits = engine.search(query, 10)
        assert [h.record.id for h in hits] == [f"v{i:02d}" for i in order[:10]]
        assert np.allclose([h.score for h in hits], scores[:10], rtol=1e-4, atol=1e-4)

        filtered = engine.search(query, 5, filter={"even": True})
        even = [i for i in order if i % 2 == 0][:5]
        assert [h.record.id for h in filtered] == [f"v{i:02d}" for i in even]

    everything = engine.search(rng.standard_normal(DIM), n + 50)
    assert len(everything) == n
    assert len({h.record.id for h in everything}) == n


def test_vectors_returns_stored_vectors(open_engine: Callable[..., Engine]):
    rng = np.random.default_rng(1)
    matrix = rng.standard_normal((3, DIM)).astype(np.float32)
    records = [Record(f"r{i}", f"t{i}") for i in range(3)]
    open_engine(metric="ip").add(records, matrix)
    stored = open_engine().vectors(["r2", "r0", "missing"])
    assert set(stored) == {"r0", "r2"}
    assert np.allclose(stored["r2"], matrix[2])
    hits = open_engine().search(matrix[0], 1, with_vectors=True)
    assert hits[0].vector is not None
    assert np.allclose(hits[0].vector, matrix[0])
