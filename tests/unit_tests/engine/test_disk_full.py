"""A full disk while writing a segment raises DiskFull, keeps its errno, and commits nothing.

Spec: docs/format.md, section 6 "Commit protocol and recovery": segment files are built in
``tmp/`` before the catalog transaction, so a write that fails there leaves the store as it was.

The real failure is produced without mocks: a child process lowers its file-size limit
(``RLIMIT_FSIZE``) and then adds enough text that one segment's video passes it. Python ignores
SIGXFSZ, so the write fails with EFBIG, as it would on a file system that cannot grow the file.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from langchain_memvid.engine import DiskFull, Engine, MemvidError, Record

from .conftest import add

resource = pytest.importorskip("resource")  # POSIX only

LIMIT = 1 << 20  # bytes: above the catalog and its WAL after this test's writes, below the video

BEFORE = [Record(f"before{i}", f"committed before the disk filled up {i}", {"i": i}) for i in range(5)]

CHILD = textwrap.dedent(
    """
    import json, random, resource, sys
    import numpy as np
    from langchain_memvid.engine import DiskFull, Engine, Record

    path, limit = sys.argv[1], int(sys.argv[2])
    engine = Engine(path)
    # Text that compresses poorly, so the video of this one segment passes the limit.
    rng = random.Random(0)
    alphabet = [chr(c) for c in range(0x21, 0x7F)] + [chr(c) for c in range(0x400, 0x450)]
    records = [Record(f"big{i}", "".join(rng.choices(alphabet, k=3000)), {}) for i in range(500)]
    vectors = np.random.default_rng(0).standard_normal((len(records), engine.dim)).astype(np.float32)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        engine.add(records, vectors)
    except Exception as e:
        print(json.dumps({"type": type(e).__name__, "disk_full": isinstance(e, DiskFull),
                          "os_error": isinstance(e, OSError), "errno": getattr(e, "errno", None),
                          "message": str(e)}))
    else:
        print(json.dumps({"type": None}))
    """
)


def test_video_past_the_file_size_limit_raises_disk_full(tmp_path: Path) -> None:
    path = tmp_path / "store"
    engine = Engine(path, model="fake")
    add(engine, BEFORE)
    engine.close()

    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(LIMIT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["type"] == "DiskFull", report
    assert report["disk_full"]
    assert report["os_error"]
    assert report["errno"] == errno.EFBIG
    assert "File too large" in report["message"]
    assert "Nothing of this call was committed" in report["message"]
    assert ".mov" in report["message"]

    # No limit here: the store holds exactly what was committed before, and takes new writes.
    assert not [p for p in (path / "tmp").iterdir() if p.suffix in (".mov", ".faiss")]
    with Engine(path) as engine:
        assert sorted(engine.ids()) == sorted(r.id for r in BEFORE)
        assert engine.get([r.id for r in BEFORE]) == BEFORE
        assert engine.verify().ok
        after = [Record("after", "written once there was room again")]
        add(engine, after)
    with Engine(path) as engine:
        assert sorted(engine.ids()) == sorted(r.id for r in [*BEFORE, *after])
        assert engine.get(["after"]) == after
        assert engine.verify().ok


def test_disk_full_is_an_os_error_with_its_errno() -> None:
    error = DiskFull(errno.ENOSPC, "The disk is full", "x.mov")
    assert isinstance(error, OSError)
    assert isinstance(error, MemvidError)
    assert error.errno == errno.ENOSPC
