"""Ids-only search maps vector ids to record ids in memory (``RecordIds``), never from stale data.

Spec: docs/indexes.md, "What the store adds to FAISS".
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from langchain_memvid.engine import Engine, Record
from langchain_memvid.engine.search.record_ids import RecordIds

from .conftest import add, fake_embed_one


def _top(engine: Engine, text: str, k: int = 1) -> list[str]:
    return [rid for rid, _ in engine.search_ids(fake_embed_one(text), k)]


def test_the_map_returns_ids_it_holds_and_none_for_the_rest():
    ids = RecordIds()
    assert ids.lookup([0, 5]) == [None, None]
    ids.extend([(0, "a"), (3, "ünïcode-id"), (7, "")])
    ids.extend([(12, "later"), (9, "between")])
    assert len(ids) == 5
    assert ids.last == 12
    assert ids.lookup([3, 0, 7, 1, 12, 9, 40]) == [
        "ünïcode-id",
        "a",
        "",
        None,
        "later",
        "between",
        None,
    ]
    with pytest.raises(ValueError, match="never negative"):
        ids.extend([(-1, "x")])


def test_ids_only_search_agrees_with_full_search(engine: Engine):
    add(engine, [Record(f"r{i}", f"text number {i}", {"n": i}) for i in range(40)])
    for text in ("text number 7", "something else", "text number 31"):
        query = fake_embed_one(text)
        hits = engine.search(query, 8)
        found = engine.search_ids(query, 8)
        assert [rid for rid, _ in found] == [h.record.id for h in hits]
        assert [score for _, score in found] == pytest.approx([h.score for h in hits])
        filtered = [h.record.id for h in engine.search(query, 5, filter={"n": {"$gte": 20}})]
        assert [r for r, _ in engine.search_ids(query, 5, filter={"n": {"$gte": 20}})] == filtered


def test_ids_only_search_follows_writes_of_this_and_other_engines(open_engine: Callable[..., Engine]):
    a, b = open_engine(), open_engine()
    add(a, [Record(f"r{i}", f"text {i}") for i in range(20)])
    assert _top(b, "text 3") == ["r3"]  # b's map is now filled
    add(a, [Record("new", "a new text")])
    assert _top(b, "a new text") == ["new"]
    a.delete(["r3"])
    assert "r3" not in _top(b, "text 3", 30)
    add(b, [Record("r4", "text four, replaced")])
    assert _top(a, "text four, replaced") == ["r4"]
    assert _top(b, "text four, replaced") == ["r4"]
    assert _top(b, "text 4", 30).count("r4") == 1
    a.compact()
    assert _top(b, "text 5") == ["r5"]
    assert sorted(_top(b, "text 1", 30)) == sorted(a.ids())


def test_a_map_missing_entries_below_its_last_is_filled_from_the_catalog(engine: Engine):
    add(engine, [Record(f"r{i}", f"text {i}") for i in range(10)])
    assert _top(engine, "text 2") == ["r2"]
    # As after a rebuild that had to number vectors anew: the map holds the newest id only, and
    # resolving an older vector id fills it from the catalog.
    vids = engine.catalog.vector_ids([f"r{i}" for i in range(10)])
    stale = RecordIds()
    stale.extend([(vids["r9"], "r9")])
    assert stale.resolve([vids["r2"], vids["r9"], 10**6], engine.catalog) == ["r2", "r9", None]
    assert stale.resolve([vids[f"r{i}"] for i in range(10)], engine.catalog) == [f"r{i}" for i in range(10)]
    assert _top(engine, "text 2") == ["r2"]
