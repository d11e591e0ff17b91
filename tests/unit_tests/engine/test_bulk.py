"""Engine.bulk: segments built elsewhere (other processes, a cluster's workers), committed in order.

The property that matters: a bulk write ends in exactly the store an ``add`` of the same records
would have made (same records, same search results), and a job that is built but never
committed leaves nothing behind.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from langchain_memvid.engine import (
    CorruptData,
    Engine,
    InvalidArgument,
    Record,
    StoreLocked,
    UnsafePath,
    recorded_settings,
    stored_ids,
)
from langchain_memvid.engine.storage.segments import build_segment

from .conftest import DIM, add, fake_embed, segment_files, vectors_for


def recs(prefix: str, n: int) -> list[Record]:
    return [Record(f"{prefix}{i}", f"text {prefix} number {i}", {"i": i}) for i in range(n)]


def test_segments_built_in_other_processes_commit_to_the_store_add_would_make(
    open_engine: Callable[..., Engine], tmp_path: Path
):
    batches = [recs("a", 5), recs("b", 3), recs("c", 4)]
    engine = open_engine()
    with engine.bulk(DIM) as bulk:
        jobs = bulk.jobs([len(b) for b in batches])
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(2, mp_context=context) as pool:  # the built segments cross processes
            built = list(pool.map(build_segment, jobs, batches, [vectors_for(b) for b in batches]))
        bulk.commit(built[:2])
        bulk.commit(built[2:])
    assert not list((engine.path / "tmp").iterdir())
    plain = open_engine(path=tmp_path / "plain")
    for batch in batches:
        add(plain, batch)
    all_records = [r for b in batches for r in b]
    assert engine.get([r.id for r in all_records]) == plain.get([r.id for r in all_records])
    for r in all_records[::3]:
        q = fake_embed([r.text])[0]
        assert [(h.record.id, h.score) for h in engine.search(q, 5)] == [(h.record.id, h.score) for h in plain.search(q, 5)]
        words = f"{r.id[0]} number"
        assert [h.record.id for h in engine.lexical_search(words, 5)] == [h.record.id for h in plain.lexical_search(words, 5)]
    assert engine.verify(cross_check=False).ok
    engine.close()
    reopened = open_engine()  # and it is all on disk
    assert len(reopened) == len(all_records)
    assert reopened.verify(cross_check=False).ok


def test_a_job_never_committed_leaves_nothing_and_its_numbers_are_skipped(open_engine: Callable[..., Engine]):
    engine = open_engine()
    add(engine, recs("old", 2))
    before = segment_files(engine.path)
    with engine.bulk(DIM) as bulk:
        a, b, c = bulk.jobs([2, 2, 2])
        built = [build_segment(j, recs(p, 2), vectors_for(recs(p, 2))) for j, p in ((a, "a"), (b, "b"), (c, "c"))]
        bulk.commit([built[0], built[2]])  # b dropped (its worker lost, say)
        orphan = build_segment(b, recs("late", 2), vectors_for(recs("late", 2)))  # a straggler finishing late
        assert orphan.video_path.exists()
    assert not list((engine.path / "tmp").iterdir())
    assert segment_files(engine.path) - before == {f"{s.name}{x}" for s in (built[0], built[2]) for x in (".mov", ".faiss")}
    assert sorted(engine.ids()) == sorted(["old0", "old1", "a0", "a1", "c0", "c1"])
    add(engine, recs("next", 1))  # numbering continues after the last commit
    assert max(s.seq for s in engine.catalog.segments()) == c.seq + 1
    assert engine.verify(cross_check=False).ok


def test_leaving_without_committing_changes_nothing(open_engine: Callable[..., Engine]):
    engine = open_engine()
    add(engine, recs("old", 3))
    before = segment_files(engine.path)

    def driver() -> None:
        with engine.bulk(DIM) as bulk:
            (job,) = bulk.jobs([3])
            build_segment(job, recs("x", 3), vectors_for(recs("x", 3)))
            raise RuntimeError("driver died")

    with pytest.raises(RuntimeError, match="driver died"):
        driver()
    assert segment_files(engine.path) == before
    assert not list((engine.path / "tmp").iterdir())
    assert sorted(engine.ids()) == ["old0", "old1", "old2"]


def test_commits_out_of_order_or_from_elsewhere_are_refused(open_engine: Callable[..., Engine], tmp_path: Path):
    engine = open_engine()
    other = open_engine(path=tmp_path / "other")
    with engine.bulk(DIM) as bulk, other.bulk(DIM) as foreign:
        first, second = bulk.jobs([1, 1])
        b1 = build_segment(first, recs("p", 1), vectors_for(recs("p", 1)))
        b2 = build_segment(second, recs("q", 1), vectors_for(recs("q", 1)))
        with pytest.raises(InvalidArgument, match="order"):
            bulk.commit([b2, b1])
        (job,) = foreign.jobs([1])
        alien = build_segment(job, recs("z", 1), vectors_for(recs("z", 1)))
        alien.seq = first.seq  # a segment of another store posing as this job
        with pytest.raises(InvalidArgument):
            bulk.commit([alien])
        bulk.commit([b2])
        with pytest.raises(InvalidArgument, match="order"):
            bulk.commit([b1])  # skipped by committing a later one
    assert engine.ids() == ["q0"]
    assert engine.verify(cross_check=False).ok


def test_bad_input_is_refused_before_anything_is_written(open_engine: Callable[..., Engine]):
    engine = open_engine()
    add(engine, recs("old", 1))
    with pytest.raises(InvalidArgument, match="dimensional"), engine.bulk(DIM + 1):
        pass
    with engine.bulk(DIM) as bulk:
        (job,) = bulk.jobs([2])
        with pytest.raises(InvalidArgument, match="reserved 2"):
            build_segment(job, recs("x", 3), vectors_for(recs("x", 3)))
        with pytest.raises(InvalidArgument, match="no records"):
            build_segment(job, [], np.zeros((0, DIM), np.float32))
        with pytest.raises(InvalidArgument, match="positive"):
            bulk.jobs([0])
    assert not list((engine.path / "tmp").iterdir())


def test_the_bulk_holds_the_write_lock(open_engine: Callable[..., Engine]):
    engine = open_engine()
    add(engine, recs("old", 1))
    other = open_engine(lock_timeout=0.2)
    with engine.bulk(DIM):
        with pytest.raises(StoreLocked):
            add(other, recs("blocked", 1))
        assert other.get(["old0"])  # readers are not blocked
    add(other, recs("after", 1))
    assert sorted(other.ids()) == ["after0", "old0"]


def test_a_segment_with_a_trained_dictionary_crosses_processes(open_engine: Callable[..., Engine], tmp_path: Path):
    engine = open_engine()
    many = [Record(f"d{i}", f"record {i}: " + "lorem ipsum dolor sit amet " * 80, {}) for i in range(40)]
    with engine.bulk(DIM) as bulk:
        (job,) = bulk.jobs([len(many)])
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            built = pool.submit(build_segment, job, many, vectors_for(many), processes=1).result()
        assert built.dictionary is not None  # the zstd dictionary came back through pickle
        bulk.commit([built])
    assert engine.get(["d7"])[0].text == many[7].text
    assert engine.verify(cross_check=False).ok


def test_catalog_only_reads_answer_and_refuse_what_opening_refuses(open_engine: Callable[..., Engine], tmp_path: Path):
    engine = open_engine()
    add(engine, recs("x", 3))
    assert stored_ids(engine.path, ["x0", "x2", "nope"]) == {"x0", "x2"}
    assert recorded_settings(engine.path)["dim"] == DIM
    assert stored_ids(tmp_path / "nowhere", ["x0"]) == set()
    assert recorded_settings(tmp_path / "nowhere") == {}
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "catalog.sqlite")  # would block SQLite's open forever
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    db = sqlite3.connect(foreign / "catalog.sqlite")
    db.execute("CREATE TABLE other (a)")
    db.commit()
    db.close()
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "catalog.sqlite").symlink_to(engine.path / "catalog.sqlite")
    for folder, error in ((fifo, UnsafePath), (foreign, CorruptData), (linked, UnsafePath)):
        with pytest.raises(error):
            recorded_settings(folder)
        with pytest.raises(error):
            stored_ids(folder, ["x0"])
