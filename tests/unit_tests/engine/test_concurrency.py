"""Several Engine objects and processes on one store: each sees the others' commits on its next read.

Spec: docs/format.md, section 6 "Commit protocol and recovery" (one writer at a time under
``LOCK``; the catalog's ``generation`` tells readers to catch up, compaction unlinks old files
after its commit) and section 7 "Reader algorithm".
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from pathlib import Path

import filelock
import numpy as np
import pytest

from langchain_memvid.engine import Engine, Record, StoreLocked

from .conftest import add, fake_embed_one, segment_files


def _ids(hits: list) -> list[str]:
    return [h.record.id for h in hits]


def test_two_engines_see_each_others_writes(open_engine: Callable[..., Engine], store_path: Path):
    a = open_engine()
    b = open_engine()  # opened while the store is still empty (no dimension yet)
    assert len(b) == 0
    assert b.dim is None

    add(a, [Record(f"a{i}", f"written by a {i}", {"by": "a"}) for i in range(5)])
    assert len(b) == 5
    assert b.get(["a3"]) == [Record("a3", "written by a 3", {"by": "a"})]
    assert _ids(b.search(fake_embed_one("written by a 2"), 1)) == ["a2"]
    assert b.dim == 8

    b.delete(["a1"])
    add(b, [Record("a2", "replaced by b", {"by": "b"}), Record("b0", "written by b", {"by": "b"})])
    assert a.get(["a1", "a2", "b0"]) == [
        Record("a2", "replaced by b", {"by": "b"}),
        Record("b0", "written by b", {"by": "b"}),
    ]
    assert "a1" not in _ids(a.search(fake_embed_one("written by a 1"), 10))
    hits = [h for h in a.search(fake_embed_one("written by a 2"), 10) if h.record.id == "a2"]
    assert [h.record.text for h in hits] == ["replaced by b"], "one copy, the new text"
    assert sorted(_ids(a.search(fake_embed_one("x"), 10, filter={"by": "b"}))) == ["a2", "b0"]

    old_files = segment_files(store_path)
    live = {r.id: r for r in a.iter_records()}
    b.compact()
    assert not segment_files(store_path) & old_files
    # a had the old files open and cached; it must reload, not read deleted or stale frames.
    assert {r.id: r for r in a.iter_records()} == live
    assert a.get(["b0"]) == [live["b0"]]
    assert _ids(a.search(fake_embed_one("written by b"), 1)) == ["b0"]
    add(a, [Record("after", "written by a after b compacted")])
    assert b.get(["after"]) == [Record("after", "written by a after b compacted")]
    assert a.verify(cross_check=False).ok
    assert b.verify(cross_check=False).ok


def _child(path: str, start: multiprocessing.synchronize.Event, results: multiprocessing.Queue) -> None:
    """Runs in a spawned process: interleaves writes with the parent, then deletes and compacts."""
    try:
        engine = Engine(path)
        start.wait(30)
        for batch in range(4):
            records = [
                Record(f"child-{batch}-{i}", f"child text {batch} {i}", {"by": "child"}) for i in range(5)
            ]
            add(engine, records)
        engine.delete(["parent-first"])
        add(engine, [Record("shared", "the child's version", {"by": "child"})])
        engine.compact()
        results.put(("ok", len(engine)))
        engine.close()
    except BaseException as e:  # report anything to the parent
        results.put(("error", repr(e)))


def test_spawned_process_writes_are_visible_to_an_open_engine(
    open_engine: Callable[..., Engine], store_path: Path
):
    parent = open_engine()
    add(
        parent,
        [Record("parent-first", "written before the child started"), Record("shared", "parent's version")],
    )

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    child = ctx.Process(target=_child, args=(str(store_path), start, results))
    child.start()
    try:
        start.set()
        for batch in range(4):  # concurrent writers: the store's LOCK serialises them
            add(parent, [Record(f"parent-{batch}-{i}", f"parent text {batch} {i}") for i in range(5)])
        status, detail = results.get(timeout=120)
        child.join(timeout=60)
    finally:
        if child.is_alive():
            child.kill()
    assert status == "ok", detail
    assert child.exitcode == 0
    # Before any other read: the ids-only path must notice the child's commits by itself.
    assert [rid for rid, _ in parent.search_ids(fake_embed_one("child text 2 3"), 1)] == ["child-2-3"]

    expected = (
        {f"child-{b}-{i}" for b in range(4) for i in range(5)}
        | {f"parent-{b}-{i}" for b in range(4) for i in range(5)}
        | {"shared"}
    )
    assert set(parent.ids()) == expected
    assert len(parent) == len(expected) == detail
    assert parent.get(["parent-first"]) == []
    assert parent.get(["shared"]) == [Record("shared", "the child's version", {"by": "child"})]
    assert parent.get(["child-3-4", "parent-2-1"]) == [
        Record("child-3-4", "child text 3 4", {"by": "child"}),
        Record("parent-2-1", "parent text 2 1"),
    ]
    assert _ids(parent.search(fake_embed_one("child text 2 3"), 1)) == ["child-2-3"]
    assert "parent-first" not in _ids(parent.search(fake_embed_one("written before the child started"), 50))
    assert len(parent.catalog.segments()) == 1, "the child's compaction left one segment"
    report = parent.verify(cross_check=False)
    assert report.ok, report.problems


def test_a_held_write_lock_times_out_writes_but_not_reads(engine: Engine, store_path: Path):
    add(engine, [Record("r", "readable while locked")])
    engine.lock_timeout = 0.2
    other_writer = filelock.FileLock(str(store_path / "LOCK"))
    with other_writer:
        with pytest.raises(StoreLocked, match="Another process is writing"):
            add(engine, [Record("blocked", "never stored")])
        with pytest.raises(StoreLocked):
            engine.delete(["r"])
        assert engine.get(["r"]) == [Record("r", "readable while locked")]
        assert _ids(engine.search(fake_embed_one("readable while locked"), 1)) == ["r"]
    assert engine.get(["blocked"]) == []
    add(engine, [Record("after", "the lock was released")])
    assert len(engine) == 2


def test_threads_sharing_one_engine(engine: Engine):
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for batch in range(3):
                add(
                    engine,
                    [Record(f"t{n}-{batch}-{i}", f"thread {n} batch {batch} item {i}") for i in range(4)],
                )
                assert engine.get([f"t{n}-{batch}-0"])[0].text == f"thread {n} batch {batch} item 0"
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(engine) == 36
    vectors = engine.vectors(["t1-2-3"])
    assert np.allclose(
        vectors["t1-2-3"],
        fake_embed_one("thread 1 batch 2 item 3") / np.linalg.norm(fake_embed_one("thread 1 batch 2 item 3")),
        atol=1e-6,
    )


def test_read_racing_a_commit_by_another_engine(
    open_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch
):
    """A commit landing between a reader's reload and its catalog query is not reported as damage.

    Readers take no lock. The reader sees the old or the new state - never an error that blames
    the store ("points at segment N, which the catalog does not list", a missing segment file).
    """
    writer = open_engine()
    add(writer, [Record("x", "old x"), Record("y", "old y")])
    reader = open_engine()
    assert reader.get(["x"]) == [Record("x", "old x")]

    def race(method: str, commit: Callable[[], object], *, before: bool) -> None:
        """Make the reader's next catalog query ``method`` run just after (or before) ``commit``."""
        original = getattr(reader.catalog, method)
        fired: list[bool] = []

        def racing(*args: object) -> object:
            if fired:
                return original(*args)
            fired.append(True)
            if before:
                commit()
                return original(*args)
            result = original(*args)
            commit()
            return result

        monkeypatch.setattr(reader.catalog, method, racing)

    race("records", lambda: add(writer, [Record("x", "new x")]), before=True)
    assert reader.get(["x"])[0].text in ("old x", "new x")
    assert reader.get(["x"]) == [Record("x", "new x")]

    # The rows are read, then a compaction deletes the segment files they point at.
    race("records", writer.compact, before=False)
    assert reader.get(["x", "y"]) == [Record("x", "new x"), Record("y", "old y")]

    race("iter_records", lambda: add(writer, [Record("z", "brand new z")]), before=True)
    assert {r.id for r in reader.iter_records()} in ({"x", "y"}, {"x", "y", "z"})

    race("records_by_vector_ids", writer.compact, before=False)
    hits = reader.search(fake_embed_one("old y"), 3)
    assert [h.record for h in hits if h.record.id == "y"] == [Record("y", "old y")]

    race("records_by_vector_ids", lambda: writer.delete(["y"]), before=False)
    reader.search(fake_embed_one("old y"), 3)  # old or new state, but no error
    assert "y" not in _ids(reader.search(fake_embed_one("old y"), 3))
    monkeypatch.undo()
    assert sorted(reader.ids()) == ["x", "z"]


def test_change_token_moves_with_each_commit_and_stands_still_between(
    open_engine: Callable[..., Engine],
):
    writer, reader = open_engine(), open_engine()
    add(writer, [Record("a", "first")])
    token = reader.catalog.change_token()
    if hasattr(os, "pread"):  # the shortcut that skips SQLite is in use here
        assert reader.catalog.db._read_wal_hint() is not None
    reader.search_ids(fake_embed_one("first"), 1)
    reader.get(["a"])
    assert reader.catalog.change_token() == token  # reads commit nothing
    add(writer, [Record("b", "second")])  # another connection's commit
    moved = reader.catalog.change_token()
    assert moved != token
    add(reader, [Record("c", "third")])  # this connection's own commit
    assert reader.catalog.change_token() != moved
    assert [rid for rid, _ in reader.search_ids(fake_embed_one("second"), 1)] == ["b"]
