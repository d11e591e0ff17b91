"""A write that fails anywhere leaves no trace; a crash's leftovers are cleaned on the next open.

Spec: docs/format.md, section 6 "Commit protocol and recovery": segment files are built in
``tmp/``, fsynced, renamed into ``segments/`` and only then referenced by one SQLite transaction;
files nobody references are garbage, deleted when a writer opens the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from langchain_memvid.engine import Engine, Record
from langchain_memvid.engine.catalog.catalog import Catalog
from langchain_memvid.engine.storage import segments
from langchain_memvid.engine.storage.commit import SegmentCommit

from .conftest import add, fake_embed_one, file_digests, store_files


class Crash(BaseException):
    """Stands in for a failure that is not an Exception (KeyboardInterrupt, SystemExit)."""


BASELINE = [Record(f"base{i}", f"baseline record {i}", {"i": i}) for i in range(4)]
NEW = [Record("new1", "text of new1"), Record("new2", "text of new2", {"x": [1]}), Record("base0", "upsert")]


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    add(engine, BASELINE)
    return engine


def _fail(exc: BaseException) -> Callable[..., Any]:
    def raiser(*args: object, **kwargs: object) -> Any:
        raise exc

    return raiser


def _fail_after(original: Callable[..., Any], exc: BaseException) -> Callable[..., Any]:
    """Do the real work, then fail: the step's side effects exist when the error is raised."""

    def wrapper(*args: object, **kwargs: object) -> Any:
        original(*args, **kwargs)
        raise exc

    return wrapper


def _partial_video(path: Path, images: list[Any], profile: Any) -> Any:
    """A disk filling up mid-write: half a file exists when the error is raised."""
    path.write_bytes(b"\x00\x00\x00\x14ftypqt  " + b"\x00" * 1000)
    raise OSError(28, "No space left on device")


def assert_state_is_baseline(engine: Engine, path: Path, files_before: set[str]) -> None:
    assert len(engine) == len(BASELINE)
    assert sorted(engine.ids()) == sorted(r.id for r in BASELINE)
    assert engine.get(["new1", "new2"]) == []
    assert engine.get([r.id for r in BASELINE]) == BASELINE, "the upsert of base0 must not be visible"
    for text in ("text of new1", "text of new2", "upsert"):
        for hit in engine.search(fake_embed_one(text), 10):
            assert hit.record in BASELINE
    assert store_files(path) == files_before, "a failed write must leave no files in tmp/ or segments/"


def assert_store_still_works(engine: Engine, open_engine: Callable[..., Engine]) -> None:
    add(engine, NEW)
    fresh = open_engine()
    assert fresh.get(["new1", "new2", "base0"]) == NEW
    assert len(fresh) == len(BASELINE) + 2
    report = fresh.verify(cross_check=False)
    assert report.ok, report.problems


ADD_FAILURES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    # target attribute -> a replacement built from the original
    "render": ("segments.render_frames", lambda orig: _fail(RuntimeError("encoder crashed"))),
    "write_video-before": ("segments.write_video", lambda orig: _fail(OSError(5, "I/O error"))),
    "write_video-partial": ("segments.write_video", lambda orig: _partial_video),
    "vector-file": ("segments.serialize_vectors", lambda orig: _fail(MemoryError())),
    "publish-before": ("SegmentCommit.publish", lambda orig: _fail(OSError(5, "rename failed"))),
    "publish-after": ("SegmentCommit.publish", lambda orig: _fail_after(orig, OSError(5, "fsync failed"))),
    "put_records": ("Catalog.put_records", lambda orig: _fail(RuntimeError("catalog write failed"))),
    "put_records-after": ("Catalog.put_records", lambda orig: _fail_after(orig, Crash())),
    "bump_generation": ("Catalog.bump_generation", lambda orig: _fail_after(orig, Crash())),
}
_TARGETS = {"segments": segments, "SegmentCommit": SegmentCommit, "Catalog": Catalog}


@pytest.mark.parametrize("step", list(ADD_FAILURES))
def test_failed_add_leaves_no_trace(
    seeded: Engine,
    store_path: Path,
    open_engine: Callable[..., Engine],
    monkeypatch: pytest.MonkeyPatch,
    step: str,
):
    target, make = ADD_FAILURES[step]
    owner_name, attr = target.split(".")
    owner = _TARGETS[owner_name]
    files_before = store_files(store_path)

    monkeypatch.setattr(owner, attr, make(getattr(owner, attr)))
    with pytest.raises((Exception, Crash)) as info:
        add(seeded, NEW)
    assert not isinstance(info.value, AssertionError)
    monkeypatch.undo()

    assert_state_is_baseline(seeded, store_path, files_before)
    assert_state_is_baseline(open_engine(), store_path, files_before)
    assert_store_still_works(seeded, open_engine)


@pytest.mark.parametrize(
    "target",
    ["Catalog.delete_records", "Catalog.bump_generation", "SegmentCommit.publish"],
)
def test_failed_delete_leaves_no_trace(
    seeded: Engine,
    store_path: Path,
    open_engine: Callable[..., Engine],
    monkeypatch: pytest.MonkeyPatch,
    target: str,
):
    owner_name, attr = target.split(".")
    owner = _TARGETS[owner_name]
    files_before = store_files(store_path)
    monkeypatch.setattr(owner, attr, _fail_after(getattr(owner, attr), Crash()))
    with pytest.raises(Crash):
        seeded.delete(["base1", "base2"])
    monkeypatch.undo()
    assert_state_is_baseline(seeded, store_path, files_before)
    assert_state_is_baseline(open_engine(), store_path, files_before)
    assert seeded.delete(["base1"]) == 1
    assert open_engine().get(["base1"]) == []


@pytest.mark.parametrize(
    "target",
    ["Catalog.drop_segments", "Catalog.put_records", "SegmentCommit.publish", "segments.write_video"],
)
def test_failed_compact_leaves_the_old_segments_in_charge(
    seeded: Engine,
    store_path: Path,
    open_engine: Callable[..., Engine],
    monkeypatch: pytest.MonkeyPatch,
    target: str,
):
    add(seeded, [Record("gone", "to be deleted")])
    seeded.delete(["gone"])
    files_before = store_files(store_path)
    digests = file_digests(store_path / "segments", "*")
    owner_name, attr = target.split(".")
    owner = _TARGETS[owner_name]
    monkeypatch.setattr(owner, attr, _fail_after(getattr(owner, attr), RuntimeError("compaction failed")))
    with pytest.raises(RuntimeError, match="compaction failed"):
        seeded.compact()
    monkeypatch.undo()
    assert file_digests(store_path / "segments", "*") == digests
    assert_state_is_baseline(seeded, store_path, files_before)
    assert_state_is_baseline(open_engine(), store_path, files_before)
    seeded.compact()
    assert open_engine().get([r.id for r in BASELINE]) == BASELINE


def test_crash_leftovers_are_removed_on_open(
    seeded: Engine, store_path: Path, open_engine: Callable[..., Engine]
):
    """A writer killed between "publish" and "commit" leaves files its committed pending row names.

    Those go on the next open; a file the catalog does not name at all is the only copy of
    something this catalog never knew, and stays (format.md section 6).
    """
    committed = file_digests(store_path / "segments", "*")
    seeded.close()
    tmp = store_path / "tmp"
    (tmp / "00000009-0badf00d.mov").write_bytes(b"half a video")
    (tmp / "rebuild-123.sqlite").write_bytes(b"junk")
    (tmp / "nested").mkdir()
    (tmp / "nested" / "more-junk").write_bytes(b"junk")
    video = next((store_path / "segments").glob("*.mov")).read_bytes()
    crashed = store_path / "segments" / "00000042-deadbeef"
    crashed.with_suffix(".mov").write_bytes(video)
    crashed.with_suffix(".faiss").write_bytes(b"not referenced")
    unknown = store_path / "segments" / "00000043-cafef00d"
    unknown.with_suffix(".mov").write_bytes(video)
    catalog = Catalog(store_path / Catalog.FILE)
    with catalog.transaction():
        catalog.mark_garbage([crashed.name], "pending")
    catalog.close()

    reopened = open_engine()
    assert list(tmp.iterdir()) == []
    assert file_digests(store_path / "segments", "*") == {
        **committed,
        unknown.name + ".mov": hashlib.sha256(video).hexdigest(),
    }
    assert reopened.catalog.garbage() == {}
    assert reopened.get([r.id for r in BASELINE]) == BASELINE
    assert len(reopened) == len(BASELINE)
    assert reopened.unknown_files() == [f"segments/{unknown.name}.mov"]
    assert reopened.quarantine() == [f"segments/{unknown.name}.mov -> quarantine/{unknown.name}.mov"]
    assert_store_still_works(reopened, open_engine)


def test_unrelated_files_in_segments_are_left_alone(
    seeded: Engine, store_path: Path, open_engine: Callable[..., Engine]
):
    note = store_path / "segments" / "README.txt"
    note.write_text("a user's note")
    open_engine()
    assert note.read_text() == "a user's note"


def test_failure_in_a_later_segment_of_a_large_call_undoes_the_earlier_ones(
    store_path: Path, open_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch
):
    """One call split into several segments is still one commit."""
    engine = open_engine(segment_records=2)
    add(engine, BASELINE)
    files_before = store_files(store_path)
    calls = []
    original = segments.write_video

    def third_fails(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        result = original(*args, **kwargs)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return result

    monkeypatch.setattr(segments, "write_video", third_fails)
    big_call = [Record(f"many{i}", f"text of many{i}") for i in range(7)]
    with pytest.raises(OSError, match="No space left"):
        add(engine, big_call)
    monkeypatch.undo()
    assert len(calls) == 3
    assert store_files(store_path) == files_before
    assert engine.get([r.id for r in big_call]) == []
    assert len(open_engine()) == len(BASELINE)

    add(engine, big_call)
    assert len(engine.catalog.segments()) == 2 + 4, "2 baseline segments + 4 for seven records"
    assert open_engine().get([r.id for r in big_call]) == big_call
