"""Resource limits: memory stays flat while ingesting, big texts work, file handles stay bounded.

Memory: CI ingests 30,000 small records in batches of 3,000 (``test_memory_stays_flat``); the
100,000-record run is ``test_memory_stays_flat_100k`` (marked slow, and run only when
``MEMVID_RELIABILITY_FULL=1`` because it adds about half a minute). Peak memory growth from the end
of batch 2 to the last batch must stay within a fixed allowance plus what the in-memory vector index
legitimately needs per record.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import psutil
import pytest

from langchain_memvid.engine import Engine, Record
from langchain_memvid.engine.storage.reader import MAX_OPEN_FILES

from . import stats
from .common import DIM, WORDS

FIXED_ALLOWANCE = 32 << 20
PER_RECORD = 4 * DIM + 64  # index vector + id + bookkeeping


def _ingest(path: Path, total: int, batch: int) -> list[int]:
    rng = random.Random(total)
    proc = psutil.Process()
    rss = []
    with Engine(path, dim=DIM) as engine:
        for b in range(total // batch):
            records = [
                Record(f"b{b}-{i}", f"{b}-{i} " + " ".join(rng.choice(WORDS) for _ in range(6)), {"b": b})
                for i in range(batch)
            ]
            engine.add(records, np.random.default_rng(b).random((batch, DIM)).astype(np.float32) + 0.01)
            rss.append(proc.memory_info().rss)
        assert len(engine) == total
        sample = [f"b{b}-{b * 7 % batch}" for b in range(total // batch)]
        assert [r.id for r in engine.get(sample)] == sample
    return rss


def _check_flat(rss: list[int], total: int, batch: int) -> None:
    growth = rss[-1] - rss[1]
    allowed = FIXED_ALLOWANCE + (total - 2 * batch) * PER_RECORD
    stats.put(
        f"memory while ingesting {total} records: RSS after batch 2 / last (MiB)",
        f"{rss[1] >> 20} / {rss[-1] >> 20} (growth {growth >> 20} MiB, allowed {allowed >> 20})",
    )
    assert growth < allowed, [r >> 20 for r in rss]


def test_memory_stays_flat(tmp_path: Path) -> None:
    rss = _ingest(tmp_path / "store", 30_000, 3_000)
    _check_flat(rss, 30_000, 3_000)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MEMVID_RELIABILITY_FULL"), reason="set MEMVID_RELIABILITY_FULL=1")
def test_memory_stays_flat_100k(tmp_path: Path) -> None:
    rss = _ingest(tmp_path / "store", 100_000, 5_000)
    _check_flat(rss, 100_000, 5_000)


def test_a_5_mb_text_round_trips(tmp_path: Path) -> None:
    rng = random.Random(5)
    text = "".join(f"{rng.choice(WORDS)}{rng.randrange(10_000)} " for _ in range(700_000))[:5_000_000]
    text = text[:-4] + "end✓"
    with Engine(tmp_path / "store", dim=DIM) as engine:
        engine.add([Record("small", "a neighbour"), Record("big", text, {"mb": 5})], np.ones((2, DIM)))
        frames = engine.locate(["big"])["big"].frame_count
        assert engine.get(["big"]) == [Record("big", text, {"mb": 5})]
    with Engine(tmp_path / "store", create=False) as engine:
        assert engine.get(["big", "small"])[0].text == text
        assert engine.verify(cross_check=False).ok
    stats.put("5 MB text: frames used", frames)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
def test_open_files_stay_bounded_with_many_segments(tmp_path: Path) -> None:
    path = tmp_path / "store"
    segments = 150
    with Engine(path, dim=DIM) as engine:
        for n in range(segments):
            engine.add([Record(f"s{n}", f"segment {n}")], np.random.default_rng(n).random((1, DIM)) + 0.01)
    before = _open_fds()
    with Engine(path, create=False) as engine:
        assert engine.stats()["segments"] == segments
        peak = 0
        for n in range(segments):  # one segment after another: each read opens its video
            assert engine.get([f"s{n}"])[0].text == f"segment {n}"
            peak = max(peak, _open_fds())
        assert len(list(engine.iter_records())) == segments
        assert len(engine.search(np.ones(DIM), 20)) == 20
        assert engine.verify(cross_check=False).ok
        peak = max(peak, _open_fds())
    after = _open_fds()
    stats.put(
        f"open files reading {segments} segments: peak over baseline",
        f"{peak - before} (cap {MAX_OPEN_FILES} video handles, + up to 6 for the catalog and lock)",
    )
    # the catalog (db, -wal, -shm) and the lock file come on top of the capped video handles
    assert peak - before <= MAX_OPEN_FILES + 6
    assert after <= before + 1
