"""Concurrency: one writer at a time across processes; readers always see one committed state.

* A second writer waits for the lock up to ``lock_timeout`` and then gets ``StoreLocked`` with a
  message that says what to do; the store is unchanged. Readers open and read while the lock is
  held by another process.
* Stress: one writer process (plus a reader thread sharing its engine) and four reader processes
  of two threads each. Records are written in groups of four in one call; every record's text is a
  function of its id and version. Readers check every record they read, that a group is all
  present at one version or all absent, and that versions never go backwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langchain_memvid.engine import Engine, Record, StoreLocked

from . import stats
from .common import DIM, meta_for, text_for, vector_for

WRITER_OPS = int(os.environ.get("MEMVID_STRESS_WRITER_OPS", "250"))
READERS = 4


def _seed_store(path: Path, n: int = 6) -> Engine:
    engine = Engine(path, dim=DIM, lock_timeout=0.5)
    ids = [f"s{i}" for i in range(n)]
    engine.add(
        [Record(i, text_for(i, 1), meta_for(i, 1)) for i in ids], np.stack([vector_for(i, 1) for i in ids])
    )
    return engine


def _snapshot(engine: Engine) -> list[Record]:
    return sorted(engine.iter_records(), key=lambda r: r.id)


def test_second_writer_waits_then_gets_store_locked(tmp_path: Path, driver: Any) -> None:
    path = tmp_path / "store"
    _seed_store(path).close()
    holder = driver("hold-lock", str(path), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout is not None
    assert holder.stdin is not None
    assert holder.stdout.readline().strip() == "locked"

    # A reader opens and reads while another process holds the write lock.
    engine = Engine(path, lock_timeout=0.5)
    before = _snapshot(engine)
    assert len(before) == 6
    for op in (
        lambda: engine.add([Record("x", "new")], np.ones((1, DIM), np.float32)),
        lambda: engine.delete(["s0"]),
        engine.compact,
    ):
        start = time.monotonic()
        with pytest.raises(StoreLocked) as info:
            op()
        waited = time.monotonic() - start
        assert 0.4 <= waited < 5, f"waited {waited:.2f} s for a 0.5 s lock timeout"
        message = str(info.value)
        assert str(path) in message
        assert "lock" in message
        assert "retry" in message
        stats.add("bad_inputs_refused")
    assert _snapshot(engine) == before

    # Once the other writer is done, writing works again.
    holder.stdin.close()
    holder.wait(timeout=30)
    engine.add([Record("x", "new")], np.ones((1, DIM), np.float32))
    assert len(engine) == 7
    engine.close()


def test_threads_share_one_engine(tmp_path: Path) -> None:
    """Threads of one process writing and reading through one Engine serialise correctly."""
    engine = _seed_store(tmp_path / "store")
    engine.lock_timeout = 30
    errors: list[str] = []

    def write(t: int) -> None:
        for n in range(15):
            rid = f"t{t}-{n}"
            try:
                engine.add([Record(rid, text_for(rid, 1), meta_for(rid, 1))], vector_for(rid, 1)[None])
            except Exception as e:
                errors.append(f"{rid}: {e!r}")

    def read() -> None:
        for _ in range(60):
            try:
                for rec in engine.iter_records():
                    assert rec.text == text_for(rec.id, rec.metadata["v"])
            except Exception as e:
                errors.append(f"read: {e!r}")

    threads = [threading.Thread(target=write, args=(t,)) for t in range(3)] + [
        threading.Thread(target=read) for _ in range(2)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:5]
    assert len(engine) == 6 + 45
    assert engine.verify(cross_check=False).ok
    engine.close()


def test_stress_one_writer_four_reader_processes(tmp_path: Path, driver: Any, seed: int) -> None:
    path = tmp_path / "store"
    _seed_store(path).close()
    done = tmp_path / "writer-done"
    outs = [tmp_path / f"reader-{n}.json" for n in range(READERS)]
    readers = [
        driver("reader", str(path), str(seed + n), str(out), str(done), "2") for n, out in enumerate(outs)
    ]
    writer_out = tmp_path / "writer.json"
    writer = driver("writer", str(path), str(WRITER_OPS), str(seed), str(writer_out), str(done))
    assert writer.wait(timeout=300) == 0
    for proc in readers:
        assert proc.wait(timeout=60) == 0
    results = [json.loads(out.read_text()) for out in outs]
    wrote = json.loads(writer_out.read_text())
    ops = wrote["ops"] + wrote["reads"] + sum(r["ops"] for r in results)
    errors = wrote["errors"] + [e for r in results for e in r["errors"]]
    stats.add("stress_ops", ops)
    stats.add("stress_errors", len(errors))
    stats.add("wrong_texts", sum(r["wrong"] for r in results))
    stats.put("stress writer ops / reader-process ops", f"{wrote['ops']} / {sum(r['ops'] for r in results)}")
    assert not errors, "\n".join(errors[:10])
    assert wrote["ops"] == WRITER_OPS
    assert all(r["ops"] > 0 for r in results)
    assert ops >= 2000, f"only {ops} operations ran"
    with Engine(path, create=False) as engine:
        assert engine.verify(cross_check=False).ok
