"""IVF indexes built in parts (``Engine.index_build``): trained once, filled per segment, merged on disk.

The parts are filled in other processes, as a cluster's workers would; the merged index must be
the one ``build_index`` builds in one process, and every way a build can go wrong must leave the
store as it was.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from langchain_memvid.engine import (
    ChecksumMismatch,
    CorruptData,
    Engine,
    IndexPartJob,
    InvalidArgument,
    fill_index_part,
)

from .conftest import clustered, exact_top, records

N = 1500
BATCH = 300  # one segment per add: five segments
IVF = {"nlist": 16, "min_vectors": 100_000}  # exact search until built explicitly
NPROBE = 4  # few lists probed: the result depends on which vectors sit in which list


def filled_store(engine: Engine) -> dict[str, np.ndarray]:
    """Five segments, then deletes and upserts spread over them; returns the live vectors."""
    vectors = clustered(N, seed=11)
    for start in range(0, N, BATCH):
        engine.add(records(start, start + BATCH), vectors[start : start + BATCH])
    engine.delete([f"r{i}" for i in range(0, N, 7)])
    moved = clustered(40, seed=12)
    engine.add(records(100, 140), moved)  # replaced: the old vectors must not be indexed
    live = {f"r{i}": vectors[i] for i in range(N) if i % 7}
    live.update({f"r{i}": moved[i - 100] for i in range(100, 140)})
    return live


def fill_elsewhere(jobs: list[IndexPartJob], template: bytes) -> list:
    """Fill every part in two worker processes (spawned: nothing shared but the folder)."""
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(fill_index_part, jobs, [template] * len(jobs)))


def recall(engine: Engine, live: dict[str, np.ndarray], queries: np.ndarray) -> tuple[float, list[list[str]]]:
    found, hits = [], 0
    for q in queries:
        got = [rid for rid, _ in engine.search_ids(q, 10, search_params={"nprobe": NPROBE})]
        found.append(got)
        hits += len(set(got) & set(exact_top(live, q, 10, "cosine")))
    return hits / (10 * len(queries)), found


def test_parallel_build_serves_the_index_one_process_builds(
    open_engine: Callable[..., Engine], store_path: Path, tmp_path: Path
) -> None:
    engine = open_engine(index="ivf", index_options=IVF)
    live = filled_store(engine)
    engine.close()
    twin = tmp_path / "twin"
    shutil.copytree(store_path, twin)

    engine = open_engine()
    reader = open_engine()  # opened before the build: must follow it
    assert reader.stats()["index"]["serving"] == "exact"
    with engine.index_build() as build:
        jobs = build.jobs()
        assert len(jobs) == 6
        assert all(job.out.startswith(str((store_path / "tmp").resolve())) for job in jobs)
        assert sum(len(job.live_ids) for job in jobs) == len(live)
        build.commit(fill_elsewhere(jobs, build.template))
    assert not [p for p in (store_path / "tmp").iterdir() if p.suffix == ".part"]

    single = Engine(twin)
    try:
        single.build_index()
        queries = clustered(60, seed=13) + 0.01
        ours, our_hits = recall(engine, live, queries)
        theirs, their_hits = recall(single, live, queries)
        assert abs(ours - theirs) <= 0.005
        assert our_hits == their_hits  # same training, same lists: the same answers
        assert ours < 1.0  # nprobe 4 of 16: approximate, so the comparison means something
        info, one = engine.stats()["index"], single.stats()["index"]
        assert info["vectors_in_main"] == one["vectors_in_main"] == len(live)
        assert (info["trained_on"], info["train_sample"]) == (one["trained_on"], one["train_sample"])
        assert info["snapshot"]["ntotal"] == len(live)
    finally:
        single.close()
    deleted = {f"r{i}" for i in range(0, N, 7)} - set(live)
    assert not deleted & {rid for hits in our_hits for rid in hits}

    assert reader.stats()["index"]["vectors_in_main"] == len(live)
    assert recall(reader, live, queries)[1] == our_hits
    reopened = open_engine()  # a reader serves the merged snapshot, nothing re-added
    assert reopened.stats()["index"]["vectors_in_main"] == len(live)
    assert reopened.verify().ok


def test_only_ivf_indexes_build_in_parts(open_engine: Callable[..., Engine]) -> None:
    engine = open_engine(index="hnsw", index_options={"M": 8, "min_vectors": 100_000})
    engine.add(records(0, 300), clustered(300))
    with pytest.raises(InvalidArgument, match="Only IVF"), engine.index_build():
        pass
    with pytest.raises(InvalidArgument, match="build_index"), engine.index_build("IVF8,PQ4x4fs"):
        pass


def test_a_store_without_vectors_is_refused(tmp_path: Path) -> None:
    with Engine(tmp_path / "empty") as engine, pytest.raises(InvalidArgument, match="no vectors"), engine.index_build("ivf"):
        pass


@pytest.mark.parametrize("mistake", ["missing", "twice", "short", "truncated", "foreign"])
def test_a_bad_set_of_parts_leaves_the_store_as_it_was(
    open_engine: Callable[..., Engine], store_path: Path, mistake: str
) -> None:
    engine = open_engine(index="ivf", index_options=IVF)
    live = filled_store(engine)
    with engine.index_build() as build:
        parts = [fill_index_part(job, build.template) for job in build.jobs()]
        if mistake == "missing":
            parts = parts[1:]
        elif mistake == "twice":
            parts = [*parts, parts[0]]
        elif mistake == "short":
            parts[0] = type(parts[0])(parts[0].path, parts[0].key, parts[0].count - 1)
        elif mistake == "truncated":
            with open(parts[0].path, "r+b") as f:
                f.truncate(os.path.getsize(parts[0].path) - 8)
        else:
            Path(parts[0].path).write_bytes(b"PK\x03\x04" + os.urandom(200))
        with pytest.raises((InvalidArgument, CorruptData)):
            build.commit(parts)
    info = engine.stats()["index"]
    assert (info["serving"], info["snapshot"]) == ("exact", None)
    assert not (store_path / "index").exists() or not list((store_path / "index").iterdir())
    assert not list((store_path / "tmp").iterdir())
    assert len(engine) == len(live)
    assert engine.verify().ok


def test_a_vector_file_changed_under_the_build_is_caught(
    open_engine: Callable[..., Engine], store_path: Path
) -> None:
    engine = open_engine(index="ivf", index_options=IVF)
    filled_store(engine)
    with engine.index_build() as build:
        job = build.jobs()[0]
        data = bytearray(Path(job.vector_file).read_bytes())
        data[-20] ^= 0xFF
        Path(job.vector_file).write_bytes(bytes(data))
        with pytest.raises(ChecksumMismatch, match="SHA-256"):
            fill_index_part(job, build.template)


def _killed_while_publishing(path: str) -> None:
    """A build that dies after merging, as the snapshot is moved into place."""
    from langchain_memvid.engine import indexing

    def die(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    with Engine(path) as engine, engine.index_build() as build:
        parts = [fill_index_part(job, build.template) for job in build.jobs()]
        indexing.publish_snapshot = die  # type: ignore[assignment]
        build.commit(parts)


def test_a_build_killed_before_its_commit_leaves_the_last_good_state(
    open_engine: Callable[..., Engine], store_path: Path
) -> None:
    engine = open_engine(index="ivf", index_options=IVF)
    live = filled_store(engine)
    engine.close()
    proc = multiprocessing.get_context("spawn").Process(target=_killed_while_publishing, args=(str(store_path),))
    proc.start()
    proc.join(120)
    assert proc.exitcode == -signal.SIGKILL
    assert list((store_path / "tmp").iterdir())  # the dead build's parts and merge are left

    engine = open_engine()
    assert engine.stats()["index"]["snapshot"] is None
    assert len(engine) == len(live)
    assert engine.verify().ok
    with engine.index_build() as build:  # the next writer clears tmp/ and builds
        assert not list((store_path / "tmp").iterdir())
        build.commit([fill_index_part(job, build.template) for job in build.jobs()])
    assert engine.stats()["index"]["vectors_in_main"] == len(live)
    q = clustered(1, seed=99)[0]
    assert len(engine.search_ids(q, 5, search_params={"nprobe": 16})) == 5
    assert {rid for rid, _ in engine.search_ids(q, 5, search_params={"nprobe": 16})} == set(exact_top(live, q, 5, "cosine"))
