"""Hostile files: a crafted store is refused with a clear error, in bounded memory, running nothing.

The attacker here controls every byte of the store and recomputes every checksum (``reseal``), so
the checks that matter are the bounds and the refusals, not the CRCs. Memory is measured in a
child process (``driver.py read-all``): the growth of its peak RSS while it opens, reads and
verifies the crafted store.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import json
import os
import pickle
import re
import signal
import sqlite3
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langchain_memvid.engine import (
    Engine,
    InvalidArgument,
    LimitExceeded,
    MemvidError,
    Record,
    UnsafePath,
    UnsupportedFormat,
    rebuild_store,
)
from langchain_memvid.engine.catalog.catalog import Catalog
from langchain_memvid.engine.catalog.rows import row_crc
from langchain_memvid.engine.codec import frames

from . import stats
from .common import DIM, REPO

PACKAGE = REPO / "langchain_memvid"
MAX_GROWTH_KB = 150 << 10  # what reading a crafted store may add to a process's peak memory


def _vec(n: int) -> np.ndarray:
    return np.random.default_rng(n).standard_normal((n, DIM)).astype(np.float32)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    with Engine(path, dim=DIM) as engine:
        engine.add([Record(f"r{i}", f"record {i}", {"i": i}) for i in range(6)], _vec(6))
        engine.add([Record("s0", "second segment")], _vec(1))
    return path


def reseal(store: Path, files: bool = True) -> None:
    """Recompute every checksum in the catalog, as an attacker forging a store would."""
    catalog = Catalog(store / "catalog.sqlite")
    db = catalog.db
    with catalog.transaction():
        for seq, name in db.execute("SELECT seq, name FROM segments").fetchall() if files else []:
            if not isinstance(name, str) or not re.fullmatch(r"[0-9a-f-]{1,64}", name):
                continue
            video, index = store / "segments" / f"{name}.mov", store / "segments" / f"{name}.faiss"
            if video.is_file() and not video.is_symlink():
                data = video.read_bytes()
                db.execute(
                    "UPDATE segments SET video_bytes = ?, video_sha256 = ? WHERE seq = ?",
                    (len(data), hashlib.sha256(data).hexdigest(), seq),
                )
                for frame, offset, size in db.execute(
                    "SELECT frame, offset, size FROM frames WHERE seq = ?", (seq,)
                ).fetchall():
                    if offset >= 0 and size >= 0 and offset + size <= len(data):
                        crc = zlib.crc32(data[offset : offset + size])
                        db.execute(
                            "UPDATE frames SET crc32 = ? WHERE seq = ? AND frame = ?", (crc, seq, frame)
                        )
            if index.is_file() and not index.is_symlink():
                data = index.read_bytes()
                db.execute(
                    "UPDATE segments SET index_bytes = ?, index_sha256 = ? WHERE seq = ?",
                    (len(data), hashlib.sha256(data).hexdigest(), seq),
                )
        for r in db.execute("SELECT * FROM records").fetchall():
            crc = row_crc(*r[:8])
            db.execute("UPDATE records SET crc32 = ? WHERE id = ?", (crc, r[0]))
        db.execute("DELETE FROM checksums")
        catalog._backfill_checksums()
    catalog.close()


def craft(store: Path, sql: str, files: bool = True) -> None:
    """Change the catalog with raw SQL, then reseal it (``files``: file sizes and CRCs too)."""
    db = sqlite3.connect(store / "catalog.sqlite")
    db.execute(sql)
    db.commit()
    db.close()
    reseal(store, files)


def read_all(store: Path) -> dict[str, Any]:
    """Open, read everything and verify in a child process; its report (see driver.read_all)."""
    out = subprocess.run(
        [sys.executable, "-m", "tests.reliability.driver", "read-all", str(store)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def assert_refused_in_bounds(result: dict[str, Any], *, expect: str) -> None:
    """Only MemvidErrors, at least one matching ``expect``, and bounded memory."""
    errors = {k: v for k, v in result.items() if isinstance(v, dict) and "error" in v}
    undocumented = {k: v for k, v in errors.items() if v.get("undocumented")}
    assert not undocumented, undocumented
    messages = [f"{v['error']}: {v['message']}" for v in errors.values()]
    messages += result.get("verify_problems", [])
    assert any(re.search(expect, m) for m in messages), messages
    growth = max(result.get("open_growth_kb", 0), result.get("read_growth_kb", 0))
    assert growth < MAX_GROWTH_KB, f"peak RSS grew by {growth} KiB"
    key = "hostile stores: largest peak-RSS growth while reading one (KiB)"
    stats.put(key, max(stats.STATS.get(key, 0), growth))
    stats.add("hostile_crafted")
    stats.add("hostile_refused")


# -- nothing from disk is executed ------------------------------------------------------------


UNSAFE_MODULES = {
    "pickle",
    "cPickle",
    "_pickle",
    "dill",
    "joblib",
    "marshal",
    "shelve",
    "cloudpickle",
    "yaml",
}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__", "import_module", "load_module", "exec_module"}


def test_package_source_never_unpickles_evals_or_imports_by_name() -> None:
    """No unpickler, eval/exec/compile or import-by-name anywhere in the package (read by AST)."""
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        where = path.relative_to(REPO)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + (
                    [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
                )
                hits += [
                    f"{where}:{node.lineno}: imports {n}" for n in names if n.split(".")[0] in UNSAFE_MODULES
                ]
            elif isinstance(node, ast.Call):
                func = node.func
                name = (
                    func.id
                    if isinstance(func, ast.Name)
                    else func.attr
                    if isinstance(func, ast.Attribute)
                    else ""
                )
                if name in UNSAFE_CALLS and not (isinstance(func, ast.Attribute) and name == "compile"):
                    hits.append(f"{where}:{node.lineno}: calls {name}")
                for kw in node.keywords:  # np.load(allow_pickle=True), trust_remote_code=True, ...
                    if kw.arg in (
                        "allow_pickle",
                        "trust_remote_code",
                        "allow_dangerous_deserialization",
                    ) and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                        hits.append(f"{where}:{node.lineno}: passes {kw.arg}")
        hits += [f"{where}: mentions allow_dangerous" for _ in re.finditer("allow_dangerous", source)]
    assert not hits, hits
    # Vector files are read with FAISS's own reader (from bytes or a file), never unpickled.
    readers = re.compile(r"faiss\.(deserialize_index|read_index)\(")
    assert any(readers.search(p.read_text()) for p in (PACKAGE / "engine").rglob("*.py"))


def test_open_read_verify_rebuild_run_no_unpickler_or_eval(
    store: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def fail(*args: object, **kwargs: object) -> Any:
        raise AssertionError("store content reached an unpickler or eval")

    def exercise(path: Path) -> None:
        with Engine(path, create=False) as engine:
            assert len(engine.get(engine.ids())) == 7
            engine.search(np.ones(DIM, np.float32), 3, filter={"i": {"$gte": 2}})
            assert engine.verify(cross_check=False).ok
        for file in path.glob("catalog.sqlite*"):
            file.unlink()
        rebuild_store(path)

    import shutil

    shutil.copytree(store, tmp_path / "warm")
    exercise(tmp_path / "warm")  # first run: every lazy import happens here
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, fail)
    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, fail)
    exercise(store)


# -- crafted catalogs -------------------------------------------------------------------------------

CRAFTED_CATALOGS = {
    "dotdot name": ("UPDATE segments SET name = '../../../etc/passwd' WHERE seq = 1", UnsafePath, "passwd"),
    "absolute name": ("UPDATE segments SET name = '/etc/passwd' WHERE seq = 1", UnsafePath, "passwd"),
    "dotdot only": ("UPDATE segments SET name = '..' WHERE seq = 1", UnsafePath, r"'\.\.'"),
    "long name": ("UPDATE segments SET name = printf('%.300c', 'a') WHERE seq = 1", UnsafePath, "aaaa"),
    "absurd frame count": (
        "UPDATE segments SET frame_count = 1000000000000 WHERE seq = 1",
        LimitExceeded,
        "1000000000000",
    ),
    "negative frame count": ("UPDATE segments SET frame_count = -5 WHERE seq = 1", LimitExceeded, "-5"),
    "absurd dictionary": (
        "UPDATE segments SET dict_frames = 999999999 WHERE seq = 1",
        LimitExceeded,
        "999999999",
    ),
    "absurd frame size": (
        "UPDATE segments SET width = 1000000, height = 1000000 WHERE seq = 1",
        LimitExceeded,
        "1000000",
    ),
    "foreign codec": ("UPDATE segments SET codec = 'rawvideo' WHERE seq = 1", UnsupportedFormat, "rawvideo"),
    "absurd video size": (
        "UPDATE segments SET video_bytes = 1 << 50 WHERE seq = 1",
        LimitExceeded,
        "segment",
    ),
    "text for an integer": ("UPDATE segments SET frame_count = 'many' WHERE seq = 1", MemvidError, "many"),
    "bad time base": ("UPDATE segments SET time_base = '1/0' WHERE seq = 1", MemvidError, "time base"),
    "absurd dimension": ("UPDATE meta SET value = '1000000000' WHERE key = 'dim'", MemvidError, "dim"),
    "dimension as text": ("UPDATE meta SET value = '\"eight\"' WHERE key = 'dim'", MemvidError, "dim"),
    "unknown metric": ("UPDATE meta SET value = '\"manhattan\"' WHERE key = 'metric'", MemvidError, "metric"),
    "generation as text": (
        "UPDATE meta SET value = '\"x\"' WHERE key = 'generation'",
        MemvidError,
        "generation",
    ),
}


@pytest.mark.parametrize("case", sorted(CRAFTED_CATALOGS))
def test_crafted_catalog_is_refused_at_open(store: Path, case: str) -> None:
    sql, error, named = CRAFTED_CATALOGS[case]
    craft(store, sql, files="video_bytes" not in sql)
    with pytest.raises(error, match=named):
        Engine(store, create=False).close()
    stats.add("hostile_crafted")
    stats.add("hostile_refused")


CRAFTED_ROWS = {
    "frame size": ("UPDATE frames SET size = 1 << 40 WHERE seq = 1 AND frame = 1", LimitExceeded),
    "frame beyond the file": ("UPDATE frames SET offset = 1 << 35 WHERE seq = 1 AND frame = 1", MemvidError),
    "negative offset": ("UPDATE frames SET offset = -100 WHERE seq = 1 AND frame = 1", LimitExceeded),
    "pack of a million frames": ("UPDATE records SET frame_count = 1000000 WHERE seq = 1", MemvidError),
    "text of a terabyte": ("UPDATE records SET text_bytes = 1 << 40 WHERE seq = 1", LimitExceeded),
    "slot far away": ("UPDATE records SET slot = 4000000000 WHERE seq = 1", MemvidError),
    "record in no segment": ("UPDATE records SET seq = 77 WHERE seq = 1", MemvidError),
}


@pytest.mark.parametrize("case", sorted(CRAFTED_ROWS))
def test_crafted_rows_refuse_the_records_they_touch(store: Path, case: str) -> None:
    sql, error = CRAFTED_ROWS[case]
    craft(store, sql)
    with Engine(store, create=False) as engine:
        assert engine.get(["s0"])[0].text == "second segment"  # other segments are untouched
        with pytest.raises(error) as info:
            engine.get(["r1"])
        assert "r1" in str(info.value) or "catalog" in str(info.value).lower()
        report = engine.verify(cross_check=False)
    assert not report.ok
    stats.add("hostile_crafted")
    stats.add("hostile_refused")


# -- decompression bombs and oversized declarations -----------------------------------------------


def zstd_rle(content_size: int | None, blocks: int) -> bytes:
    """A zstd frame of RLE blocks (128 KiB of zeros from 4 bytes each), declaring any size."""
    out = bytearray(b"\x28\xb5\x2f\xfd")
    if content_size is None:
        out += bytes([0, 7 << 3])  # no content size; 128 KiB window
    else:
        out += bytes([0b11000000, 7 << 3]) + content_size.to_bytes(8, "little")
    for i in range(blocks):
        out += ((i == blocks - 1) | (1 << 1) | (131072 << 3)).to_bytes(3, "little") + b"\0"
    return bytes(out)


BOMBS = {
    # name: (zstd body of the record's pack, what the refusal says)
    "declares 4 GiB in one frame": (zstd_rle(4 << 30, 700), "claims 4294967296"),
    "declares 1.5 GiB over 13 frames": (zstd_rle(3 << 29, 12288), "claims 1610612736"),
    "no declared size, 1 GiB": (zstd_rle(None, 8192), "does not declare"),
    "declares 1 MiB, makes 90 MiB": (zstd_rle(1 << 20, 720), "not valid zstd"),
}


def test_decompression_bombs_are_refused_in_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bombs"
    with Engine(path, dim=DIM) as engine:
        engine.add([Record("honest", "an honest record")], _vec(1))
        for n, (name, (body, _)) in enumerate(BOMBS.items()):

            def packs(self: Any, records: Any, body: bytes = body) -> Iterator[frames.Pack]:
                yield frames.Pack(records, body)

            monkeypatch.setattr(frames.Packer, "packs", packs)
            engine.add([Record(f"bomb{n}", name)], _vec(1))
            monkeypatch.undo()
    result = read_all(path)
    assert "ok" in result["get honest"], result["get honest"]
    for n, (name, (_, says)) in enumerate(BOMBS.items()):
        got = result[f"get bomb{n}"]
        assert "error" in got, (name, got)
        assert not got.get("undocumented"), (name, got)
        for part in (says, f"bomb{n}", ".mov"):
            assert part in got["message"], (name, got)
        stats.add("hostile_crafted")
        stats.add("hostile_refused")
    assert_refused_in_bounds(result, expect="bomb")


def test_vector_file_declaring_huge_sizes_is_refused_in_bounded_memory(store: Path) -> None:
    index = sorted((store / "segments").glob("*.faiss"))[0]
    data = bytearray(index.read_bytes())
    data[74:82] = (3 << 31).to_bytes(8, "little")  # codes: 6 billion floats (24 GB)
    data[8:16] = data[45:53] = (3 << 31).to_bytes(8, "little")  # ntotal, both headers
    index.write_bytes(bytes(data))
    reseal(store)
    assert_refused_in_bounds(read_all(store), expect=r"Not a vector file of this store")


def test_png_frame_declaring_a_huge_image_is_refused_in_bounded_memory(store: Path) -> None:
    db = sqlite3.connect(store / "catalog.sqlite")
    name, offset = db.execute(
        "SELECT s.name, f.offset FROM frames f JOIN segments s USING (seq) WHERE seq = 1 AND frame = 1"
    ).fetchone()
    db.close()
    video = store / "segments" / f"{name}.mov"
    data = bytearray(video.read_bytes())
    ihdr = offset + 8  # PNG signature, then the IHDR chunk: length, type, width, height, ...
    data[ihdr + 8 : ihdr + 16] = (60000).to_bytes(4, "big") * 2
    chunk = bytes(data[ihdr + 4 : ihdr + 21])
    data[ihdr + 21 : ihdr + 25] = zlib.crc32(chunk).to_bytes(4, "big")  # a valid PNG, as crafted
    video.write_bytes(bytes(data))
    reseal(store)
    result = read_all(store)
    assert_refused_in_bounds(result, expect="declares 60000x60000")
    assert "ok" in result["get s0"]


# -- links and special files ---------------------------------------------------------------------------


def _swap_for_link(path: Path, target: Path) -> None:
    target.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(target)


@pytest.mark.parametrize("what", ["segments", "tmp", "catalog.sqlite", "LOCK"])
def test_links_in_the_store_folder_are_refused(store: Path, tmp_path: Path, what: str) -> None:
    link = store / what
    outside = tmp_path / f"outside-{what}"
    if link.is_dir():
        link.rename(outside)
    else:
        outside.write_bytes(link.read_bytes() if link.exists() else b"")
        link.unlink(missing_ok=True)
    link.symlink_to(outside)
    with pytest.raises(UnsafePath, match="symbolic link"):
        Engine(store, create=False)
    stats.add("hostile_crafted")
    stats.add("hostile_refused")


def test_linked_segment_files_are_never_followed(store: Path, tmp_path: Path) -> None:
    with Engine(store, create=False) as engine:
        first = engine.catalog.segments()[0]
    _swap_for_link(store / "segments" / first.video_file, tmp_path / "outside.mov")
    with Engine(store, create=False) as engine:
        assert engine.get(["s0"])[0].text == "second segment"
        with pytest.raises(UnsafePath, match="symbolic link"):
            engine.get(["r0"])
        report = engine.verify(cross_check=False)
    assert {p.record_id for p in report.problems if p.record_id} >= {f"r{i}" for i in range(6)}
    # A linked vector file stops the open (vectors are loaded to open), naming the file.
    _swap_for_link(store / "segments" / first.index_file, tmp_path / "outside.faiss")
    with pytest.raises(UnsafePath, match=first.index_file):
        Engine(store, create=False)
    stats.add("hostile_crafted", 2)
    stats.add("hostile_refused", 2)


def test_fifo_in_place_of_a_video_does_not_block(store: Path) -> None:
    with Engine(store, create=False) as engine:
        first = engine.catalog.segments()[0]
    video = store / "segments" / first.video_file
    video.unlink()
    os.mkfifo(video)

    def hung(*args: object) -> None:
        raise TimeoutError("a read blocked on a FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        with Engine(store, create=False) as engine:
            with pytest.raises(UnsafePath, match="not a regular file"):
                engine.get(["r0"])
            report = engine.verify(cross_check=False)
        assert not report.ok
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    stats.add("hostile_crafted")
    stats.add("hostile_refused")


@pytest.mark.parametrize("model", ["/tmp/evil-model", "../../models/x", "~/m", "a/b/c", "C:\\models\\m"])
def test_a_recorded_model_path_is_never_loaded(
    store: Path, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reopening without an embedding loads the model the store names, but never from a path."""
    from langchain_memvid import MemvidVectorStore
    from langchain_memvid.embeddings import SentenceTransformerEmbeddings

    def never(self: object) -> None:
        raise AssertionError("a model named by the store's files was loaded")

    monkeypatch.setattr(SentenceTransformerEmbeddings, "load", never)
    craft(store, f"UPDATE meta SET value = '{json.dumps(model)}' WHERE key = 'model'")
    with pytest.raises(InvalidArgument, match="a path on this machine"):
        MemvidVectorStore(store)
    stats.add("hostile_crafted")
    stats.add("hostile_refused")


# -- the catalog is not ours, and rebuild meets hostile files --------------------------------------


def _segment_digests(store: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (store / "segments").glob("*.mov")}


@pytest.mark.parametrize("catalog", ["empty", "foreign", "newer"])
def test_a_catalog_that_is_not_ours_never_costs_a_video(store: Path, catalog: str) -> None:
    """Open, verify and a writer all refuse it; every video survives; rebuild recovers them."""
    videos = _segment_digests(store)
    path = store / "catalog.sqlite"
    if catalog == "newer":
        craft(store, "UPDATE meta SET value = '3' WHERE key = 'format_version'", files=False)
    else:
        path.unlink()
        if catalog == "foreign":
            db = sqlite3.connect(path)
            db.execute("CREATE TABLE meta (key TEXT, value TEXT)")  # a look-alike without our keys
            db.commit()
            db.close()
        else:
            path.write_bytes(b"")
    for create in (True, False):
        with pytest.raises(UnsupportedFormat if catalog == "newer" else MemvidError, match=r"(?i)rebuild|upgrade"):
            Engine(store, create=create, dim=DIM).close()
    assert _segment_digests(store) == videos
    if catalog != "newer":
        rebuild_store(store)
        with Engine(store, create=False) as engine:
            assert len(engine) == 7
    stats.add("hostile_crafted")
    stats.add("hostile_refused")
    stats.add("catalog not ours: videos kept / stores", 1)


def _hostile_for_rebuild(store: Path, tmp_path: Path, what: str) -> None:
    first = sorted((store / "segments").glob("*.faiss"))[0]
    if what in ("segments", "tmp", "quarantine"):
        outside = tmp_path / f"outside-{what}"
        if (store / what).exists():
            (store / what).rename(outside)
        else:
            outside.mkdir()
        (store / what).symlink_to(outside, target_is_directory=True)
    elif what == "faiss to /dev/zero":
        first.unlink()
        first.symlink_to("/dev/zero")
    elif what == "faiss fifo":
        first.unlink()
        os.mkfifo(first)
    elif what == "unnamed mov fifo":
        os.mkfifo(store / "segments" / "00000050-0badc0de.mov")
    elif what == "mov device":
        (store / "segments" / "00000051-0badc0de.mov").symlink_to("/dev/urandom")


REBUILD_HOSTILE = ["segments", "tmp", "quarantine", "faiss to /dev/zero", "faiss fifo", "unnamed mov fifo", "mov device"]


@pytest.mark.parametrize("what", REBUILD_HOSTILE)
def test_rebuild_refuses_hostile_files_and_writes_nothing(store: Path, tmp_path: Path, what: str) -> None:
    """Rebuild applies open's file rules: refused at once (no hang, no memory), nothing written."""
    _hostile_for_rebuild(store, tmp_path, what)
    outside = sorted(str(p) for p in tmp_path.rglob("*") if "outside" in str(p))
    catalog = (store / "catalog.sqlite").read_bytes()

    def hung(*args: object) -> None:
        raise TimeoutError("rebuild blocked on a hostile file")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        with pytest.raises(UnsafePath, match=r"symbolic link|not a regular file"):
            rebuild_store(store)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert sorted(str(p) for p in tmp_path.rglob("*") if "outside" in str(p)) == outside
    assert (store / "catalog.sqlite").read_bytes() == catalog
    stats.add("hostile_crafted")
    stats.add("hostile_refused")
    stats.add("rebuild: hostile files refused", 1)
