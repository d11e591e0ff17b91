"""Appends, deletes, upserts and compaction: what a user sees, and that old video is never rewritten.

Spec: docs/format.md, section 2 "Layout" (segments are immutable), section 3.5 "Tombstone
frames" (deletes are frames too) and section 6 "Commit protocol and recovery" (compaction).
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from langchain_memvid.engine import Engine, Record

from .conftest import add, fake_embed_one, file_digests, segment_files


def _texty(i: int, size: int = 1500) -> str:
    rng = random.Random(i)
    return f"record {i}: " + base64.b64encode(rng.randbytes(size * 3 // 4)).decode()


def _all_hits(engine: Engine, query_text: str) -> list[tuple[str, str, float]]:
    hits = engine.search(fake_embed_one(query_text), len(engine) + 10)
    return [(h.record.id, h.record.text, h.score) for h in hits]


def test_append_never_rewrites_existing_segment_files(engine: Engine, store_path: Path):
    add(engine, [Record(f"a{i}", _texty(i)) for i in range(5)])
    first = file_digests(store_path / "segments", "*")
    assert {Path(n).suffix for n in first} == {".mov", ".faiss"}

    add(engine, [Record(f"b{i}", _texty(100 + i)) for i in range(5)])
    add(engine, [Record("a0", "replacement text")])  # an upsert must not touch a0's old segment
    engine.delete(["a1", "b2"])

    now = file_digests(store_path / "segments", "*")
    for name, digest in first.items():
        assert now.get(name) == digest, f"{name} was rewritten or removed by a later write"
    assert len(now) == len(first) + 3 * 2, "each write adds exactly one .mov and one .faiss"


def test_delete_hides_records_everywhere(open_engine: Callable[..., Engine]):
    engine = open_engine()
    records = [Record(f"r{i}", f"text number {i}", {"i": i}) for i in range(10)]
    add(engine, records)

    assert engine.delete(["r3", "r7", "r3", "no-such-id"]) == 2
    assert len(engine) == 8
    assert engine.get(["r3", "r2", "r7"]) == [records[2]]
    assert "r3" not in engine.ids()
    assert all(r.id not in ("r3", "r7") for r in engine.iter_records())
    # Even the exact vector of a deleted record does not find it.
    for text in (records[3].text, records[7].text):
        ids = [h.record.id for h in engine.search(fake_embed_one(text), 20)]
        assert "r3" not in ids
        assert "r7" not in ids
        assert len(ids) == 8
    assert engine.delete(["r3"]) == 0, "deleting twice deletes nothing"
    assert engine.delete([]) == 0

    reopened = open_engine()
    assert len(reopened) == 8
    assert reopened.get(["r3", "r7"]) == []
    assert "r3" not in [h.record.id for h in reopened.search(fake_embed_one(records[3].text), 20)]


def test_re_adding_an_id_replaces_it(open_engine: Callable[..., Engine]):
    engine = open_engine()
    add(engine, [Record("doc", "the old text", {"v": 1}), Record("other", "unrelated")])
    add(engine, [Record("doc", "the new text", {"v": 2})])

    for view in (engine, open_engine()):
        assert len(view) == 2
        assert view.get(["doc"]) == [Record("doc", "the new text", {"v": 2})]
        assert sorted(view.ids()) == ["doc", "other"]
        # One copy only, and its vector is the new one: the old vector finds the new text or nothing.
        for query in ("the old text", "the new text"):
            hits = [h for h in view.search(fake_embed_one(query), 10) if h.record.id == "doc"]
            assert len(hits) == 1
            assert hits[0].record.text == "the new text"
        best = view.search(fake_embed_one("the new text"), 1)[0]
        assert best.record.id == "doc"
        assert np.isclose(best.score, 1.0, atol=1e-5)


def test_duplicate_ids_in_one_call_last_wins(engine: Engine):
    records = [
        Record("dup", "first version", {"n": 1}),
        Record("solo", "alone"),
        Record("dup", "second version", {"n": 2}),
        Record("dup", "third version", {"n": 3}),
    ]
    written = engine.add(records, [fake_embed_one(r.text) for r in records])
    assert sorted(written) == ["dup", "solo"]
    assert len(written) == 2
    assert len(engine) == 2
    assert engine.get(["dup"]) == [Record("dup", "third version", {"n": 3})]
    # The vector stored is the last occurrence's vector too.
    best = engine.search(fake_embed_one("third version"), 1)[0]
    assert best.record.id == "dup"
    assert np.isclose(best.score, 1.0, atol=1e-5)
    assert all(h.record.text != "first version" for h in engine.search(fake_embed_one("first version"), 5))


def test_delete_then_re_add_survives_reopen(open_engine: Callable[..., Engine]):
    engine = open_engine()
    add(engine, [Record("x", "first life")])
    engine.delete(["x"])
    add(engine, [Record("x", "second life")])
    assert open_engine().get(["x"]) == [Record("x", "second life")]


@pytest.fixture
def churned(engine: Engine) -> Engine:
    """A store with several segments, mostly deleted records, an upsert and tombstones."""
    add(
        engine,
        [Record(f"r{i}", _texty(i), {"i": i, "tag": "even" if i % 2 == 0 else "odd"}) for i in range(40)],
    )
    add(engine, [Record(f"s{i}", _texty(500 + i), {"i": i}) for i in range(10)])
    engine.delete([f"r{i}" for i in range(40) if i % 8])  # keep r0, r8, r16, r24, r32
    engine.delete([f"s{i}" for i in range(8)])
    add(engine, [Record("r8", "r8 was replaced ✓", {"replaced": True})])
    return engine


def test_compact_keeps_live_records_and_drops_dead_video(
    churned: Engine, store_path: Path, open_engine: Callable[..., Engine]
):
    """Spec: section 6, compaction - live records rewritten into new segments, old files removed."""
    live_before = {r.id: r for r in churned.iter_records()}
    assert sorted(live_before) == ["r0", "r16", "r24", "r32", "r8", "s8", "s9"]
    queries = ["r8 was replaced ✓", _texty(16), "unrelated query"]
    searches_before = [_all_hits(churned, q) for q in queries]
    filtered_before = [h.record.id for h in churned.search(fake_embed_one("q"), 10, filter={"tag": "even"})]
    old_files = segment_files(store_path)
    video_before = sum((store_path / "segments" / n).stat().st_size for n in old_files if n.endswith(".mov"))

    result = churned.compact()

    assert result["records"] == 7
    assert result["video_bytes_before"] == video_before
    assert result["video_bytes_after"] < result["video_bytes_before"] / 3
    new_files = segment_files(store_path)
    assert not (new_files & old_files), "every old segment file is deleted after compaction"
    assert result["video_bytes_after"] == sum(
        (store_path / "segments" / n).stat().st_size for n in new_files if n.endswith(".mov")
    )
    assert list((store_path / "tmp").iterdir()) == []

    for view in (churned, open_engine()):
        assert {r.id: r for r in view.iter_records()} == live_before
        assert view.get(list(live_before)) == list(live_before.values())
        for q, before in zip(queries, searches_before, strict=True):
            after = _all_hits(view, q)
            assert [(i, t) for i, t, _ in after] == [(i, t) for i, t, _ in before]
            assert np.allclose([s for *_, s in after], [s for *_, s in before], atol=1e-6)
        assert [
            h.record.id for h in view.search(fake_embed_one("q"), 10, filter={"tag": "even"})
        ] == filtered_before
        report = view.verify()
        assert report.ok, report.problems
        assert report.records_checked == 7

    # The store keeps working after compaction: writes, deletes and re-adds of compacted ids.
    add(churned, [Record("after", "written after compaction"), Record("r0", "r0 replaced after")])
    churned.delete(["s9"])
    assert open_engine().get(["after", "r0", "s9"]) == [
        Record("after", "written after compaction"),
        Record("r0", "r0 replaced after"),
    ]


def test_compact_of_a_fully_deleted_store_leaves_no_video(engine: Engine, store_path: Path):
    add(engine, [Record(f"r{i}", _texty(i)) for i in range(5)])
    engine.delete([f"r{i}" for i in range(5)])
    result = engine.compact()
    assert result["records"] == 0
    assert result["video_bytes_after"] == 0
    assert segment_files(store_path) == set()
    assert engine.search(fake_embed_one("r1"), 3) == []
    add(engine, [Record("new", "a fresh start")])
    assert engine.get(["new"]) == [Record("new", "a fresh start")]


def test_compact_twice_is_stable(churned: Engine, open_engine: Callable[..., Engine]):
    churned.compact()
    live = {r.id: r for r in churned.iter_records()}
    second = churned.compact()
    assert second["records"] == len(live)
    # Same records, same layout: only the header frame (sequence number, time) may differ a little.
    assert (
        abs(second["video_bytes_after"] - second["video_bytes_before"]) < 0.05 * second["video_bytes_before"]
    )
    assert {r.id: r for r in open_engine().iter_records()} == live
