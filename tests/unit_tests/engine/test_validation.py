"""Invalid input is refused before anything is written: the whole call fails, nothing is stored.

Spec: docs/format.md, section 3.2 "Packs" (what a record may hold) and section 6 "Commit protocol
and recovery" (step 1: validate all input; on any error nothing is written).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langchain_memvid.engine import (
    Engine,
    InvalidArgument,
    InvalidRecord,
    InvalidVector,
    Record,
)

from .conftest import DIM, add, fake_embed_one, store_files, vectors_for


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque object>"


def _circular() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


BAD_METADATA: dict[str, Any] = {
    "set": {"tags": {"a", "b"}},
    "bytes": {"raw": b"\x00\x01"},
    "object": {"obj": _Opaque()},
    "nan": {"score": float("nan")},
    "inf": {"score": float("inf")},
    "nested-nan": {"deep": [1, {"x": float("-inf")}]},
    "int-key": {1: "one"},
    "none-key": {None: "none"},
    "tuple-value": {"pair": (1, 2)},
    "tuple-key": {(1, 2): "pair"},
    "numpy-int": {"n": np.int64(3)},
    "lone-surrogate-value": {"s": "bad \ud800 value"},
    "lone-surrogate-key": {"bad \udfff key": 1},
    "huge-int": {"n": 10**5000},  # beyond Python's int<->str digit limit: json.dumps fails
    "circular": _circular(),
    "not-a-dict": ["a", "list"],
}


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    """A store that already holds two records, so 'nothing stored' is checked against a baseline."""
    add(engine, [Record("keep-1", "first kept text"), Record("keep-2", "second kept text")])
    return engine


def assert_nothing_of_the_call_stored(engine: Engine, path: Path, before: set[str], ids: list[str]):
    assert len(engine) == 2
    assert sorted(engine.ids()) == ["keep-1", "keep-2"]
    assert engine.get(ids) == []
    assert store_files(path) == before, "a refused call must not leave files behind"
    for rid in ids:
        for hit in engine.search(fake_embed_one(f"text of {rid}"), 5):
            assert hit.record.id in ("keep-1", "keep-2")


@pytest.mark.parametrize("kind", list(BAD_METADATA))
def test_bad_metadata_fails_the_whole_call(seeded: Engine, store_path: Path, kind: str):
    before = store_files(store_path)
    records = [
        Record("valid-before", "text of valid-before"),
        Record("culprit", "text of culprit", BAD_METADATA[kind]),
        Record("valid-after", "text of valid-after"),
    ]
    with pytest.raises(InvalidRecord, match="'culprit'") as info:
        add(seeded, records)
    assert isinstance(info.value, ValueError), "InvalidRecord must be a ValueError"
    assert_nothing_of_the_call_stored(seeded, store_path, before, ["valid-before", "culprit", "valid-after"])


def test_lone_surrogate_in_text_names_the_record(seeded: Engine, store_path: Path):
    before = store_files(store_path)
    records = [Record("ok", "text of ok"), Record("surrogate", "half an emoji: \ud83d and more")]
    with pytest.raises(InvalidRecord, match=r"'surrogate'.*lone surrogate"):
        add(seeded, records)
    assert_nothing_of_the_call_stored(seeded, store_path, before, ["ok", "surrogate"])


@pytest.mark.parametrize(
    ("bad_id", "pattern"),
    [
        (42, "non-empty string, got 42"),
        (None, "non-empty string, got None"),
        (b"bytes-id", "non-empty string, got b'bytes-id'"),
        ("", "non-empty string, got ''"),
        ("bad\udc80id", "not valid Unicode"),
        ("x" * 4097, "4097 bytes; the limit is 4096"),
    ],
    ids=["int", "none", "bytes", "empty", "lone-surrogate", "too-long"],
)
def test_bad_id_fails_the_whole_call(seeded: Engine, store_path: Path, bad_id: Any, pattern: str):
    before = store_files(store_path)
    records = [Record("fine", "text of fine"), Record(bad_id, "text of the bad id")]
    with pytest.raises(InvalidRecord, match=pattern):
        seeded.add(records, [fake_embed_one("a"), fake_embed_one("b")])
    assert_nothing_of_the_call_stored(seeded, store_path, before, ["fine"])


def test_non_str_text_is_refused(seeded: Engine):
    with pytest.raises(InvalidRecord, match=r"'bytes-text': text must be a str, got bytes"):
        seeded.add([Record("bytes-text", b"raw")], [fake_embed_one("x")])  # type: ignore[arg-type]
    assert len(seeded) == 2


@pytest.mark.parametrize(
    ("vectors", "pattern"),
    [
        ([np.ones(DIM + 1)] * 2, "dimension 9"),
        ([np.ones(DIM - 1)] * 2, "dimension 7"),
        ([np.ones(DIM), np.r_[np.ones(DIM - 1), np.nan]], "NaN or infinity"),
        ([np.ones(DIM), np.r_[np.ones(DIM - 1), np.inf]], "NaN or infinity"),
        ([np.ones(DIM), np.zeros(DIM)], "all zeros"),
        ([np.ones(DIM), np.ones(DIM + 2)], "must be a sequence of|dimension"),
        ([np.ones(DIM), ["a"] * DIM], "must be a sequence of"),
    ],
    ids=["too-long", "too-short", "nan", "inf", "zero-under-cosine", "ragged", "strings"],
)
def test_bad_vectors_fail_the_whole_call(seeded: Engine, store_path: Path, vectors: list[Any], pattern: str):
    before = store_files(store_path)
    records = [Record("v1", "text of v1"), Record("v2", "text of v2")]
    with pytest.raises(InvalidVector, match=pattern):
        seeded.add(records, vectors)
    assert_nothing_of_the_call_stored(seeded, store_path, before, ["v1", "v2"])


def test_first_add_fixes_the_dimension(engine: Engine):
    add(engine, [Record("a", "a")])
    assert engine.dim == DIM
    with pytest.raises(InvalidVector, match="8-dimensional"):
        engine.add([Record("b", "b")], [np.ones(4)])


@pytest.mark.parametrize("n_vectors", [0, 1, 3])
def test_record_and_vector_counts_must_match(seeded: Engine, n_vectors: int):
    records = [Record("x", "x"), Record("y", "y")]
    with pytest.raises(InvalidArgument, match=rf"2 records and {n_vectors} vectors"):
        seeded.add(records, [fake_embed_one(str(i)) for i in range(n_vectors)])
    assert len(seeded) == 2


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "3", None])
def test_search_k_must_be_a_positive_int(seeded: Engine, k: Any):
    with pytest.raises(InvalidArgument, match="k must be a positive integer"):
        seeded.search(fake_embed_one("q"), k)


@pytest.mark.parametrize(
    ("query", "pattern"),
    [
        (np.ones(DIM + 1), "dimension 9"),
        (np.full(DIM, np.nan), "NaN or infinity"),
        (np.r_[np.ones(DIM - 1), -np.inf], "NaN or infinity"),
        (np.zeros(DIM), "all zeros"),
        (np.ones(DIM + 1, np.float32) / 3, "dimension 9"),
        (np.full(DIM, np.nan, np.float32), "NaN or infinity"),
        (np.zeros(DIM, np.float32), "all zeros"),
    ],
    ids=["wrong-dim", "nan", "inf", "zero-under-cosine", "wrong-dim-f32", "nan-f32", "zero-f32"],
)
def test_bad_query_vector_is_refused(seeded: Engine, query: np.ndarray, pattern: str):
    with pytest.raises(InvalidVector, match=pattern):
        seeded.search(query, 1)
    with pytest.raises(InvalidVector, match=pattern):
        seeded.search_ids(query, 1)


@pytest.mark.parametrize("scale", [1e-30, 1e30, 3e38], ids=["tiny", "huge", "near-float32-max"])
def test_extreme_but_finite_vectors_are_normalised_not_refused(engine: Engine, scale: float):
    # Their float32 sums of squares underflow to 0 or overflow to infinity; cosine is still defined.
    direction = fake_embed_one("direction")
    direction /= np.abs(direction).max()
    engine.add([Record("far", "far")], [direction * np.float32(scale)])
    add(engine, [Record("other", "other")])
    hits = engine.search((direction * np.float32(scale)).astype(np.float32), 2)
    assert hits[0].record.id == "far"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert engine.search_ids(direction * np.float32(scale), 1)[0][0] == "far"


def test_a_query_vector_is_read_never_changed(seeded: Engine):
    # Unit float32 queries skip the copy (search reads them in place); the others are copied.
    direction = fake_embed_one("q")
    unit = direction / np.linalg.norm(direction)
    as_list = [h.record.id for h in seeded.search(unit.tolist(), 3)]
    for query in (unit, direction, direction.astype(np.float64), np.repeat(unit, 2)[::2]):
        before = query.copy()
        assert [h.record.id for h in seeded.search(query, 3)] == as_list
        assert [rid for rid, _ in seeded.search_ids(query, 3)] == as_list
        assert np.array_equal(query, before)


def test_search_on_an_empty_store_returns_nothing(engine: Engine):
    assert engine.search(fake_embed_one("anything"), 5) == []


def test_empty_add_is_a_no_op(seeded: Engine, store_path: Path):
    before = store_files(store_path)
    assert seeded.add([], []) == []
    assert store_files(store_path) == before


def test_unknown_profile_and_metric_are_refused(tmp_path: Path, open_engine: Callable[..., Engine]):
    with pytest.raises(InvalidArgument, match="Unknown storage profile 'fancy'"):
        open_engine(tmp_path / "a", profile="fancy")
    with pytest.raises(InvalidArgument, match="Unknown metric 'manhattan'"):
        open_engine(tmp_path / "b", metric="manhattan")


def test_valid_records_after_a_refused_call_still_store(seeded: Engine):
    with pytest.raises(InvalidRecord):
        add(seeded, [Record("x", "x", {"bad": {1, 2}})])
    records = [Record("x", "now fine", {"tags": ["a", "b"]})]
    seeded.add(records, vectors_for(records))
    assert seeded.get(["x"]) == records
