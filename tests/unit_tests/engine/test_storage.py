"""Where the bytes live: text only in the video, the video is real video, reads are random access.

Spec: docs/format.md, section 2 "Layout", section 4.1 "The video", section 7.1 "Reading a record
by id" (one positioned read per frame), section 7.3 "Rebuilding from the video alone" and
section 8 "Invariants" (no file other than ``segments/*.mov`` contains record text).
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from langchain_memvid.engine import (
    ChecksumMismatch,
    Engine,
    InvalidArgument,
    NotAStore,
    Record,
    SegmentNotFound,
    UnsafePath,
    rebuild_store,
)
from langchain_memvid.engine.codec import qr
from langchain_memvid.engine.storage import reader as reader_module

from .conftest import HAS_FFPROBE, add, fake_embed, fake_embed_one, segment_files, store_files

_COMMON_WORDS = (
    "the of and to in is was for on that with as by at from his her an which or be this are have "
    "were not but had it one all their they been has would more when who will there can no some out"
)
WORDS = _COMMON_WORDS.split()


def _prose(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choices(WORDS, k=n_words))


def _distinctive(i: int) -> str:
    return f"ZEBRA-{i:04d}-QUOKKA-ünïcødé-🦓-שלום-猫-{'x' * i}-END"


def test_record_text_is_stored_only_in_the_video(open_engine: Callable[..., Engine], store_path: Path):
    """No catalog, WAL, vector or lock file holds a record's text, raw or JSON-escaped."""
    engine = open_engine()
    records = [Record(f"id{i}", _distinctive(i), {"n": i}) for i in range(12)]
    add(engine, records)
    engine.delete(["id3"])
    add(engine, [Record("id4", _distinctive(400), {"n": 400})])
    engine.compact()
    add(engine, [Record("late", _distinctive(77))])
    assert open_engine().get(["late"]) == [Record("late", _distinctive(77))]

    needles = set()
    for text in [r.text for r in records] + [_distinctive(400), _distinctive(77)]:
        needles |= {
            text.encode("utf-8"),
            json.dumps(text).encode(),
            json.dumps(text, ensure_ascii=False).encode(),
            text.encode("utf-16-le"),
        }
    needles.add(b"QUOKKA")
    checked = 0
    for rel in store_files(store_path):
        if rel.startswith("segments/") and rel.endswith(".mov"):
            continue
        data = (store_path / rel).read_bytes()
        checked += 1
        for needle in needles:
            assert needle not in data, f"{rel} holds record text {needle[:30]!r}"
    assert checked >= 4  # catalog.sqlite (+ -wal/-shm), LOCK and the .faiss files were searched
    assert any(rel.endswith(".faiss") for rel in store_files(store_path))


def test_missing_video_raises_segment_not_found(open_engine: Callable[..., Engine], store_path: Path):
    engine = open_engine()
    add(engine, [Record("first", "in the first segment")])
    first_video = segment_files(store_path, ".mov")
    add(engine, [Record("second", "in the second segment")])
    engine.close()
    for name in first_video:
        (store_path / "segments" / name).unlink()

    fresh = open_engine()
    (name,) = first_video
    with pytest.raises(SegmentNotFound, match=rf"'first'.*{name}"):
        fresh.get(["first"])
    with pytest.raises(SegmentNotFound):
        fresh.search(fake_embed_one("in the first segment"), 1)
    assert fresh.get(["second"]) == [Record("second", "in the second segment")]
    report = fresh.verify(cross_check=False)
    assert not report.ok
    assert any(p.file == name and "missing" in p.message for p in report.problems)
    assert any(p.record_id == "first" for p in report.problems)
    assert all(p.record_id != "second" for p in report.problems)


def test_all_videos_gone_means_errors_not_wrong_text(open_engine: Callable[..., Engine], store_path: Path):
    engine = open_engine()
    add(engine, [Record(f"r{i}", f"text {i}") for i in range(3)])
    engine.close()
    for video in (store_path / "segments").glob("*.mov"):
        video.unlink()
    fresh = open_engine()
    for rid in ("r0", "r1", "r2"):
        with pytest.raises(SegmentNotFound, match="missing"):
            fresh.get([rid])
    with pytest.raises(SegmentNotFound):
        list(fresh.iter_records())


def _history(engine: Engine) -> dict[str, Record]:
    """A store whose history needs replaying: upserts, deletes, re-adds and several segments."""
    rng = random.Random(11)
    first = [Record(f"doc{i}", _prose(rng, 200), {"i": i, "tags": ["a", None, 1.5]}) for i in range(30)]
    add(engine, first)
    add(engine, [Record("doc1", "doc1 replaced", {"v": 2}), Record("extra", "an extra one")])
    engine.delete(["doc2", "doc3", "extra"])
    add(engine, [Record("doc3", "doc3 came back")])
    return {r.id: r for r in engine.iter_records()}


def test_rebuild_without_catalog_recreates_the_store(open_engine: Callable[..., Engine], store_path: Path):
    """Spec: section 7.3 - replay segments in order: later records replace, tombstones delete."""
    engine = open_engine()
    live = _history(engine)
    assert "doc2" not in live
    assert live["doc3"].text == "doc3 came back"
    query = fake_embed_one(live["doc7"].text)
    hits_before = [(h.record.id, round(h.score, 5)) for h in engine.search(query, 5)]
    videos = {p.name: p.read_bytes() for p in (store_path / "segments").glob("*.mov")}
    engine.close()
    for path in store_path.glob("catalog.sqlite*"):
        path.unlink()

    report = rebuild_store(store_path)
    assert report.records == len(live)
    assert report.lost_frames == 0
    assert report.reembedded == 0, "intact vector files are reused"
    assert not report.problems

    rebuilt = open_engine()
    assert {r.id: r for r in rebuilt.iter_records()} == live
    assert [(h.record.id, round(h.score, 5)) for h in rebuilt.search(query, 5)] == hits_before
    assert {p.name: p.read_bytes() for p in (store_path / "segments").glob("*.mov")} == videos
    verified = rebuilt.verify(cross_check=False)
    assert verified.ok, verified.problems
    add(rebuilt, [Record("after-rebuild", "still writable")])
    assert open_engine().get(["after-rebuild", "doc3"])[0].text == "still writable"


def test_rebuild_without_catalog_or_vectors_needs_embed(open_engine: Callable[..., Engine], store_path: Path):
    engine = open_engine()
    live = _history(engine)
    engine.close()
    for path in [*store_path.glob("catalog.sqlite*"), *(store_path / "segments").glob("*.faiss")]:
        path.unlink()

    with pytest.raises(InvalidArgument, match="embed="):
        rebuild_store(store_path)
    report = rebuild_store(store_path, embed=fake_embed)
    assert report.records == len(live)
    # Every record of a segment that lost its vector file is re-embedded, dead ones too, so
    # the new file again holds one vector per record (format.md 4.3) ...
    assert report.reembedded > len(live)
    # ... and a second rebuild needs no model.
    for path in store_path.glob("catalog.sqlite*"):
        path.unlink()
    assert rebuild_store(store_path).reembedded == 0

    rebuilt = open_engine()
    assert {r.id: r for r in rebuilt.iter_records()} == live
    best = rebuilt.search(fake_embed_one(live["doc9"].text), 1)[0]
    assert best.record == live["doc9"]
    assert np.isclose(best.score, 1.0, atol=1e-5)
    assert rebuilt.verify(cross_check=False).ok


def test_opening_a_store_whose_catalog_is_lost_keeps_the_videos(
    open_engine: Callable[..., Engine], store_path: Path
):
    """Opening must never treat a catalog-less store as empty and delete its videos as orphans."""
    engine = open_engine()
    add(engine, [Record("precious", "the only copy of this text")])
    engine.close()
    videos = {p.name: p.read_bytes() for p in (store_path / "segments").iterdir()}
    for path in store_path.glob("catalog.sqlite*"):
        path.unlink()

    with pytest.raises(NotAStore, match="rebuild"):
        open_engine()
    assert {p.name: p.read_bytes() for p in (store_path / "segments").iterdir()} == videos
    rebuild_store(store_path)
    assert open_engine().get(["precious"]) == [Record("precious", "the only copy of this text")]


def _ffprobe(video: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-show_streams", "-of", "json", str(video)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


@pytest.mark.skipif(not HAS_FFPROBE, reason="ffprobe is not installed")
@pytest.mark.parametrize(("profile", "codec", "module_px"), [("lossless", "png", 1), ("robust", "h264", 4)])
def test_segments_are_real_video(
    open_engine: Callable[..., Engine], store_path: Path, profile: str, codec: str, module_px: int
):
    """Spec: section 4.1 - any FFmpeg tool sees an ordinary video stream, one frame per QR."""
    engine = open_engine(profile=profile)
    rng = random.Random(5)
    add(engine, [Record(f"r{i}", _prose(rng, 600) + str(i)) for i in range(6)])
    engine.delete(["r1"])
    segs = {s.video_file: s for s in engine.catalog.segments()}
    assert len(segs) == 2
    for name, seg in segs.items():
        (stream,) = _ffprobe(store_path / "segments" / name)["streams"]
        assert stream["codec_type"] == "video"
        assert stream["codec_name"] == codec
        assert int(stream["width"]) == int(stream["height"]) == qr.canvas_size(module_px)
        assert int(stream["nb_read_packets"]) == seg.frame_count
        assert int(stream["nb_frames"]) == seg.frame_count
    assert max(s.frame_count for s in segs.values()) >= 3


class _CountingReads:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.original = reader_module.read_packet

    def __call__(self, fd: int, location: object) -> bytes:
        data = self.original(fd, location)
        self.calls.append((location.offset, location.size))  # type: ignore[attr-defined]
        return data


def test_reading_one_record_reads_only_its_frames(
    open_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch
):
    """Spec: section 7.1 - one positioned read per frame, dictionary frames once per segment."""
    rng = random.Random(3)
    records = [Record(f"r{i}", _prose(rng, 300) + f" #{i}", {"i": i}) for i in range(60)]
    add(open_engine(), records)

    counter = _CountingReads()
    monkeypatch.setattr(reader_module, "read_packet", counter)
    reader = open_engine()
    (seg,) = reader.catalog.segments()
    assert seg.dict_frames >= 1, "this corpus is large enough for a trained dictionary"
    table = reader.catalog.frames(seg.seq, 0, seg.frame_count)

    def loc(frame: int) -> tuple[int, int]:
        return (table[frame][0].offset, table[frame][0].size)

    dictionary = {loc(f) for f in range(1, 1 + seg.dict_frames)}
    # Opening may load the segment's dictionary up front, but reads no record frame.
    assert set(counter.calls) <= dictionary
    locations = reader.locate([r.id for r in records])
    frames = sorted({where.frame for where in locations.values()})
    assert len(frames) >= 4
    first = next(r for r in records if locations[r.id].frame == frames[0])
    other = next(r for r in records if locations[r.id].frame == frames[-1])
    same_pack = next(r for r in records if locations[r.id].frame == frames[0] and r.id != first.id)

    assert reader.get([first.id]) == [first]
    # Open + first read together: the record's one frame plus each dictionary frame, once.
    assert sorted(counter.calls) == sorted(dictionary | {loc(frames[0])})
    assert loc(0) not in counter.calls, "the segment header frame is not needed to read"

    counter.calls.clear()
    assert reader.get([other.id]) == [other]
    assert counter.calls == [loc(frames[-1])], "a second record of the segment costs one frame read"

    counter.calls.clear()
    assert reader.get([same_pack.id]) == [same_pack]
    assert len(counter.calls) <= 1, "a record in an already decoded pack needs at most its frame"


def test_store_folder_can_be_moved(open_engine: Callable[..., Engine], store_path: Path, tmp_path: Path):
    """Spec: section 2 - paths are relative, so a copied store opens anywhere."""
    engine = open_engine()
    add(engine, [Record("a", "portable text", {"k": [1, 2]})])
    engine.close()
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(store_path, moved)
    shutil.rmtree(store_path)
    copy = open_engine(moved)
    assert copy.get(["a"]) == [Record("a", "portable text", {"k": [1, 2]})]
    assert copy.verify(cross_check=False).ok


@pytest.mark.parametrize("damage", ["overwritten", "truncated", "empty"])
def test_rebuild_skips_an_unreadable_video_and_recovers_the_rest(
    open_engine: Callable[..., Engine], store_path: Path, damage: str
):
    """Spec: section 7.3 - damage loses only what it touches; one bad file must not stop recovery."""
    engine = open_engine()
    add(engine, [Record(f"r{i}", f"first segment {i}") for i in range(5)])
    add(engine, [Record("s", "second segment", {"ok": True})])
    bad = engine.catalog.segments()[0].video_file
    engine.close()
    for path in store_path.glob("catalog.sqlite*"):
        path.unlink()
    video = store_path / "segments" / bad
    data = video.read_bytes()
    video.write_bytes(
        {"overwritten": b"not a video " * 50, "truncated": data[: len(data) // 2], "empty": b""}[damage]
    )

    report = rebuild_store(store_path)
    assert report.records == 1
    assert any(bad in problem and "not a readable video" in problem for problem in report.problems)
    rebuilt = open_engine()
    assert rebuilt.get(["s", "r1"]) == [Record("s", "second segment", {"ok": True})]


def test_rebuild_twice_reuses_the_vector_files(open_engine: Callable[..., Engine], store_path: Path):
    """Spec: section 4.3 - a vector file holds one vector per record of its segment, so rebuild
    keeps intact files as they are and never needs the model for them."""
    engine = open_engine()
    live = _history(engine)  # upserts and deletes: some segments hold dead records
    engine.close()
    for _ in range(2):
        for path in store_path.glob("catalog.sqlite*"):
            path.unlink()
        report = rebuild_store(store_path)
        assert report.reembedded == 0
    assert {r.id: r for r in open_engine().iter_records()} == live


def test_catalog_naming_a_path_outside_the_store_is_refused(
    open_engine: Callable[..., Engine], store_path: Path, tmp_path: Path
):
    """Spec: section 2 - segment names are plain ``[0-9a-f-]`` names; anything else is refused."""
    add(open_engine(), [Record("a", "text")])
    victim = tmp_path / "victim.mov"
    victim.write_bytes(b"must survive")
    db = sqlite3.connect(store_path / "catalog.sqlite")
    db.execute("UPDATE segments SET name = '../../victim'")
    db.commit()
    db.close()
    # Refused by the row checksum or, failing that, by the name check - never followed.
    with pytest.raises((UnsafePath, ChecksumMismatch), match=r"plain segment name|CRC-32"):
        open_engine()
    assert victim.read_bytes() == b"must survive"


def test_rebuild_waits_for_the_write_lock_and_then_refuses(
    open_engine: Callable[..., Engine], store_path: Path
):
    """Spec: section 6 - one writer at a time; rebuild replaces the catalog, so it is a writer."""
    import filelock

    from langchain_memvid.engine import StoreLocked

    add(open_engine(), [Record("a", "text")])
    holder = filelock.FileLock(str(store_path / "LOCK"))
    with holder, pytest.raises(StoreLocked, match="rebuild waited"):
        rebuild_store(store_path, lock_timeout=0.2)
    assert rebuild_store(store_path).records == 1
