"""The videos are the only copy: no path deletes what the catalog does not prove is garbage.

Spec: docs/guarantees.md section 4 ("Recovery") and docs/format.md section 6. Each test here is a
case an outside probe found: a catalog that is empty, foreign or newer; rebuild beside an open
writer, after a crashed write, on hostile files and newer segments; a full disk.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from langchain_memvid.cli import cli
from langchain_memvid.engine import (
    CorruptData,
    DiskFull,
    Engine,
    Record,
    StoreNotFound,
    StoreReplaced,
    UnsafePath,
    UnsupportedFormat,
    rebuild_store,
)
from langchain_memvid.engine.catalog.catalog import Catalog
from langchain_memvid.engine.codec import frames
from langchain_memvid.engine.storage import segments

from .conftest import add, fake_embed_one

BASELINE = [Record(f"keep{i}", f"the only copy of record {i}", {"n": i}) for i in range(5)]


def _store_bytes(path: Path) -> dict[str, str]:
    """SHA-256 of every file of the store but SQLite's own -wal/-shm side files."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


@pytest.fixture
def stored(open_engine: Callable[..., Engine], store_path: Path) -> Path:
    """A closed store holding BASELINE in two segments."""
    engine = open_engine()
    add(engine, BASELINE[:3])
    add(engine, BASELINE[3:])
    engine.close()
    return store_path


def _damage_catalog(path: Path, how: str) -> None:
    catalog = path / Catalog.FILE
    if how == "empty":
        catalog.write_bytes(b"")
    elif how == "not-sqlite":
        catalog.write_bytes(b"half of a copied file " * 40)
    else:
        catalog.unlink()
        db = sqlite3.connect(catalog)
        if how == "no-tables":
            db.execute("PRAGMA user_version = 1")  # an SQLite file that never got its tables
        elif how == "foreign":
            db.execute("CREATE TABLE people (name TEXT)")
            db.execute("INSERT INTO people VALUES ('someone else''s data')")
        elif how == "meta-without-version":
            db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("""INSERT INTO meta VALUES ('metric', '"cosine"')""")
        db.commit()
        db.close()


@pytest.mark.parametrize("how", ["empty", "not-sqlite", "no-tables", "foreign", "meta-without-version"])
def test_a_catalog_that_is_not_ours_is_refused_and_nothing_is_touched(stored: Path, how: str):
    _damage_catalog(stored, how)
    before = _store_bytes(stored)
    for create in (True, False):
        with pytest.raises(CorruptData, match="rebuild"):
            Engine(stored, create=create)
    runner = CliRunner()
    for command in ("info", "verify", "search"):
        args = [command, str(stored)] + (["x", "--model", "fake"] if command == "search" else [])
        result = runner.invoke(cli, args)
        assert result.exit_code != 0
        assert "rebuild" in result.output
        assert "Traceback" not in result.output
    assert _store_bytes(stored) == before, "opening a catalog that is not ours wrote to the store"

    rebuild_store(stored)  # the advice works: the videos alone bring every record back
    with Engine(stored, create=False) as engine:
        assert engine.get([r.id for r in BASELINE]) == BASELINE
    assert any(p.name.startswith(f"{Catalog.FILE}.old-") for p in stored.iterdir()), "old catalog kept"


def test_an_empty_catalog_in_a_folder_without_segments_is_an_unfinished_creation(store_path: Path):
    (store_path / "segments").mkdir(parents=True)
    (store_path / Catalog.FILE).write_bytes(b"")
    with pytest.raises(StoreNotFound):
        Engine(store_path, create=False)
    with Engine(store_path, dim=8) as engine:
        add(engine, BASELINE[:1])
    assert Engine(store_path, create=False).get(["keep0"]) == BASELINE[:1]


@pytest.mark.parametrize("version", [3, 999_999])
def test_a_newer_catalog_is_refused_before_anything_is_written(stored: Path, version: int):
    db = sqlite3.connect(stored / Catalog.FILE)
    db.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (str(version),))
    db.execute("DROP TABLE garbage")  # as a newer layout might
    db.commit()
    db.close()
    before = _store_bytes(stored)
    with pytest.raises(UnsupportedFormat, match="Upgrade"):
        Engine(stored)
    result = CliRunner().invoke(cli, ["verify", str(stored)])
    assert result.exit_code == 1
    assert "Upgrade" in result.output
    assert _store_bytes(stored) == before
    tables = sqlite3.connect(stored / Catalog.FILE).execute("SELECT name FROM sqlite_master").fetchall()
    assert ("garbage",) not in tables, "a newer catalog got this version's tables"


def test_rebuild_beside_an_open_writer_loses_no_acknowledged_write(
    open_engine: Callable[..., Engine], store_path: Path
):
    server = open_engine()
    add(server, [Record("one", "one")])
    add(server, [Record("gone", "deleted before the rebuild")])
    server.delete(["gone"])
    reader = open_engine()
    assert reader.get(["one"]) == [Record("one", "one")]

    rebuild_store(store_path)
    with pytest.raises(StoreReplaced, match="rebuilt"):
        add(server, [Record("two", "two")])
    assert server.get(["two"]) == [], "the refused call wrote something"
    add(server, [Record("two", "two")])  # the retry commits into the rebuilt catalog

    fresh = open_engine()
    assert sorted(fresh.ids()) == ["one", "two"], "an acknowledged write was lost or a delete undone"
    assert reader.get(["one", "two", "gone"]) == [Record("one", "one"), Record("two", "two")]
    assert [h.record.id for h in reader.search(fake_embed_one("two"), 1)] == ["two"]
    assert fresh.verify(cross_check=False).ok


def test_a_catalog_file_replaced_under_a_writer_is_refused(stored: Path):
    writer = Engine(stored)
    copy = stored.parent / "copy.sqlite"
    shutil.copyfile(stored / Catalog.FILE, copy)
    os.replace(copy, stored / Catalog.FILE)  # a restore or a sync tool: another file by that name
    with pytest.raises(StoreReplaced, match="open the store again"):
        add(writer, [Record("late", "late")])


# A child that writes and dies (SIGKILL) inside the commit, after its files were renamed into
# segments/: the crashed write of the probe.
_CRASH = """
import os, signal, sys
import numpy as np
from langchain_memvid.engine import Engine, Record
from langchain_memvid.engine.storage import commit
path, op = sys.argv[1], sys.argv[2]
engine = Engine(path, lock_timeout=30)
commit.SegmentCommit.record = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
if op == "add":
    engine.add([Record("ghost", "never acknowledged")], np.ones((1, 8), np.float32))
else:
    engine.delete(["keep1"])
sys.exit("the write committed")
"""


def _run_child(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("op", ["add", "delete"])
def test_a_write_killed_before_its_commit_never_surfaces_through_rebuild(stored: Path, op: str):
    child = _run_child(_CRASH, str(stored), op)
    assert child.returncode == -signal.SIGKILL, child.stderr
    report = rebuild_store(stored)  # straight away: no writer has cleaned up yet
    assert report.used_catalog
    assert report.quarantined, "the crashed write's files were neither replayed nor moved aside"
    assert all("never committed" in line for line in report.quarantined)
    with Engine(stored, create=False) as engine:
        assert engine.get([r.id for r in BASELINE] + ["ghost"]) == BASELINE
        assert engine.verify(cross_check=False).ok
    assert list((stored / "quarantine").iterdir()), "quarantined files are kept, not deleted"


def test_a_write_killed_before_its_commit_is_cleaned_by_the_next_writer(stored: Path):
    child = _run_child(_CRASH, str(stored), "add")
    assert child.returncode == -signal.SIGKILL, child.stderr
    with Engine(stored) as engine:
        assert engine.catalog.garbage() == {}
        assert engine.unknown_files() == []
        names = {p.stem for p in (stored / "segments").iterdir()}
        assert names == {s.name for s in engine.catalog.segments()}
        assert engine.get([r.id for r in BASELINE] + ["ghost"]) == BASELINE


@pytest.mark.parametrize("folder", ["segments", "tmp", "quarantine"])
def test_rebuild_refuses_a_symlinked_folder_and_writes_nothing_outside(stored: Path, tmp_path: Path, folder: str):
    outside = tmp_path / "outside"
    src = stored / folder
    if src.exists():
        shutil.move(src, outside)
    else:
        outside.mkdir()
    src.symlink_to(outside, target_is_directory=True)
    (stored / "catalog.sqlite").unlink()  # rebuild would write vector files and its catalog
    before = sorted(p.name for p in outside.iterdir())
    with pytest.raises(UnsafePath, match="symbolic link"):
        rebuild_store(stored)
    assert sorted(p.name for p in outside.iterdir()) == before


# Rebuild in a child, so a hang (a FIFO opened for reading) fails the test instead of the run.
_REBUILD = """
import sys, time
from langchain_memvid.engine import rebuild_store, MemvidError
start = time.monotonic()
try:
    rebuild_store(sys.argv[1])
    print("rebuilt")
except MemvidError as e:
    print(type(e).__name__, e)
print(f"seconds {time.monotonic() - start:.3f}")
"""


@pytest.mark.parametrize(
    "hostile", ["faiss-to-dev-zero", "faiss-fifo", "unnamed-mov-fifo", "mov-folder", "catalog-folder"]
)
def test_rebuild_refuses_hostile_files_at_once(stored: Path, hostile: str):
    seg = Catalog(stored / Catalog.FILE).segments()[0]
    target = stored / "segments" / seg.index_file
    if hostile == "faiss-to-dev-zero":
        target.unlink()
        target.symlink_to("/dev/zero")
    elif hostile == "faiss-fifo":
        target.unlink()
        os.mkfifo(target)
    elif hostile == "unnamed-mov-fifo":
        os.mkfifo(stored / "segments" / "00000077-0badc0de.mov")
    elif hostile == "catalog-folder":  # rebuild keeps the old catalog as its backup: a folder cannot be
        (stored / Catalog.FILE).unlink()
        (stored / Catalog.FILE).mkdir()
    else:
        (stored / "segments" / "00000078-0badc0de.mov").mkdir()
    before = _store_bytes(stored)
    child = _run_child(_REBUILD, str(stored))
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith("UnsafePath"), child.stdout
    assert "not a regular file" in child.stdout or "symbolic link" in child.stdout
    assert _store_bytes(stored) == before


def test_rebuild_stops_at_a_segment_from_a_newer_format(
    stored: Path, monkeypatch: pytest.MonkeyPatch, open_engine: Callable[..., Engine]
):
    engine = open_engine()
    with monkeypatch.context() as patch:  # what a newer library would write
        patch.setattr(frames, "FORMAT_VERSION", 2)
        patch.setattr(segments, "format_for", lambda encoding: 3)
        add(engine, [Record("future", "written by a newer version")])
    newer = next(s for s in engine.catalog.segments() if s.seq == 3).video_file
    with pytest.raises(UnsupportedFormat, match="upgrade"):
        engine.get(["future"])
    report = engine.verify(cross_check=False)
    assert {p.action for p in report.problems} == {"upgrade"}
    engine.close()
    result = CliRunner().invoke(cli, ["verify", str(stored), "--no-cross-check"])
    assert "upgrade it before anything else" in result.output

    before = _store_bytes(stored)
    with pytest.raises(UnsupportedFormat, match="Upgrade langchain-qrvideo"):
        rebuild_store(stored)
    assert _store_bytes(stored) == before, "rebuild changed a store it cannot fully read"
    (stored / Catalog.FILE).unlink()
    with pytest.raises(UnsupportedFormat):
        rebuild_store(stored)
    assert (stored / "segments" / newer).read_bytes(), "the newer segment must survive"


def test_unknown_segment_files_are_reported_and_only_moved_aside(stored: Path):
    foreign = stored / "segments" / "00000099-feedface.mov"
    video = next((stored / "segments").glob("*.mov")).read_bytes()
    foreign.write_bytes(video)
    with Engine(stored) as engine:
        add(engine, [Record("after", "a write after the stranger arrived")])
        assert foreign.read_bytes() == video, "a file the catalog does not know was touched"
        report = engine.verify(cross_check=False)
        assert [(p.file, p.action) for p in report.problems] == [("segments/" + foreign.name, "quarantine")]
    result = CliRunner().invoke(cli, ["verify", str(stored), "--no-cross-check"])
    assert result.exit_code == 1
    assert "lcmemvid quarantine" in result.output
    result = CliRunner().invoke(cli, ["quarantine", str(stored)])
    assert result.exit_code == 0, result.output
    assert (stored / "quarantine" / foreign.name).read_bytes() == video
    with Engine(stored) as engine:
        assert engine.verify(cross_check=False).ok
        assert len(engine) == len(BASELINE) + 1


def test_a_garbage_row_never_deletes_a_live_segment(stored: Path):
    catalog = Catalog(stored / Catalog.FILE)
    live = catalog.segments()[0].name
    with catalog.transaction():
        catalog.mark_garbage([live], "dropped")  # a crafted or damaged catalog
    catalog.close()
    with Engine(stored) as engine:
        add(engine, [Record("more", "more")])
        assert engine.get([r.id for r in BASELINE]) == BASELINE


def test_a_rebuild_killed_between_backup_and_commit_leaves_the_old_catalog(stored: Path):
    code = """
import os, signal, sys
from langchain_memvid.engine import catalog, rebuild_store
real = catalog.Catalog.backup_to
def backup_then_die(self, dest):
    real(self, dest)
    os.kill(os.getpid(), signal.SIGKILL)
catalog.Catalog.backup_to = backup_then_die
rebuild_store(sys.argv[1])
"""
    assert _run_child(code, str(stored)).returncode == -signal.SIGKILL
    with Engine(stored, create=False) as engine:
        assert engine.get([r.id for r in BASELINE]) == BASELINE


def test_a_rebuild_killed_while_swapping_a_damaged_catalog_leaves_one_in_place(stored: Path):
    (stored / Catalog.FILE).write_bytes(b"")
    code = """
import os, signal, sys
from langchain_memvid.engine import rebuild_store
real = os.replace
def die_on_the_catalog(src, dst):
    if str(dst).endswith("catalog.sqlite"):
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
os.replace = die_on_the_catalog
rebuild_store(sys.argv[1])
"""
    assert _run_child(code, str(stored)).returncode == -signal.SIGKILL
    result = CliRunner().invoke(cli, ["info", str(stored)])
    assert "No memvid store" not in result.output
    assert "rebuild" in result.output
    rebuild_store(stored)
    with Engine(stored, create=False) as engine:
        assert engine.get([r.id for r in BASELINE]) == BASELINE


def test_a_full_catalog_is_reported_as_disk_full(stored: Path):
    engine = Engine(stored)
    pages = engine.catalog.db.execute("PRAGMA page_count").fetchone()[0]
    engine.catalog.db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own SQLITE_FULL
    many = [Record(f"big{i}", "x" * 2000, {"pad": "y" * 2000}) for i in range(40)]
    with pytest.raises(DiskFull, match="disk is full") as caught:
        add(engine, many)
    assert caught.value.errno == errno.ENOSPC
    assert not isinstance(caught.value, CorruptData)
    engine.close()
    with Engine(stored) as reopened:
        assert reopened.get([r.id for r in BASELINE]) == BASELINE
        assert reopened.get(["big0"]) == []
        add(reopened, many[:2])
        assert reopened.verify(cross_check=False).ok


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 2 MiB file system (tmpfs), where this user may mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=False).returncode:
        pytest.skip("could not mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    """Fill the file system to its last block; returns the filler file."""
    filler = disk / "filler"
    with filler.open("wb") as fh, pytest.raises(OSError) as full:  # noqa: PT012 - the loop ends by the error
        while True:
            fh.write(b"\0" * 65536)
            fh.flush()
    assert full.value.errno == errno.ENOSPC
    return filler


def test_a_full_disk_is_reported_as_such_and_loses_nothing(small_disk: Path):
    path = small_disk / "store"
    with Engine(path, dim=8) as engine:
        add(engine, BASELINE)
    filler = _fill(small_disk)
    opened: DiskFull | None = None
    try:  # a new process may not even find room for SQLite's shared-memory file
        Engine(path).close()
    except DiskFull as e:
        opened = e
    assert opened is None or opened.errno == errno.ENOSPC
    filler.unlink()

    engine = Engine(path)  # a process that has the store open when the disk fills up
    filler = _fill(small_disk)
    text = os.urandom(3000).hex()  # incompressible, so the video needs room the disk lacks
    with pytest.raises(OSError, match=r"(?i)full|no space") as caught:
        add(engine, [Record("late", text)])
    assert caught.value.errno == errno.ENOSPC
    assert not isinstance(caught.value, CorruptData)
    filler.unlink()
    add(engine, [Record("late", text)])
    engine.close()
    with Engine(path, create=False) as reopened:
        assert reopened.get([r.id for r in BASELINE]) == BASELINE
        assert reopened.get(["late"]) == [Record("late", text)]
        assert reopened.verify(cross_check=False).ok
