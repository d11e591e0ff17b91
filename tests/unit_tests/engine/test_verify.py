"""Damage is found and named, and a damaged record raises - it never comes back as wrong text.

Spec: docs/format.md, section 3.1 "Frame header" (payload CRC-32), section 5 "The catalog" (packet
CRC-32, file SHA-256, row CRC-32), section 7.1 "Reading a record by id" (a reader never returns a
record whose checks failed) and section 8 "Invariants".
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from langchain_memvid.engine import (
    ChecksumMismatch,
    CorruptData,
    Engine,
    Record,
    rebuild_store,
)
from langchain_memvid.engine.catalog.rows import row_crc

from .conftest import add, fake_embed, fake_embed_one

WORDS = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do"]


def _records(n: int = 40) -> list[Record]:
    rng = random.Random(2)
    return [
        Record(f"r{i:02d}", " ".join(rng.choices(WORDS, k=250)) + f" {rng.random()}", {"i": i})
        for i in range(n)
    ]


@pytest.fixture
def filled(engine: Engine) -> Engine:
    add(engine, _records())
    return engine


def _flip(path: Path, offset: int) -> None:
    with path.open("r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))


def test_clean_store_verifies(filled: Engine):
    report = filled.verify()
    assert report.ok, report.problems
    assert report.records_checked == 40
    assert report.frames_checked == sum(s.frame_count for s in filled.catalog.segments())


def test_flipped_byte_in_a_frame_is_reported_and_never_read_as_text(
    filled: Engine, store_path: Path, open_engine: Callable[..., Engine]
):
    records = {r.id: r for r in _records()}
    (seg,) = filled.catalog.segments()
    locations = filled.locate(list(records))
    frames = sorted({loc.frame for loc in locations.values()})
    assert len(frames) >= 3
    target = frames[1]
    hit_ids = sorted(rid for rid, loc in locations.items() if loc.frame == target)
    safe_ids = sorted(rid for rid, loc in locations.items() if loc.frame != target)
    ((packet, _),) = filled.catalog.frames(seg.seq, target, 1)
    filled.close()
    _flip(store_path / "segments" / seg.video_file, packet.offset + packet.size // 2)

    engine = open_engine()
    report = engine.verify()
    assert not report.ok
    frame_problems = [p for p in report.problems if p.frame == target and p.record_id is None]
    assert frame_problems, report.problems
    assert all(p.file == seg.video_file for p in frame_problems)
    assert "CRC-32" in frame_problems[0].message
    assert sorted(p.record_id for p in report.problems if p.record_id) == hit_ids
    assert any("SHA-256" in p.message for p in report.problems if p.file == seg.video_file)

    for rid in hit_ids:
        with pytest.raises(ChecksumMismatch, match=rf"'{rid}'.*frame {target}"):
            engine.get([rid])
    with pytest.raises(CorruptData):
        engine.get([safe_ids[0], hit_ids[0]])
    assert engine.get(safe_ids) == [records[i] for i in safe_ids]


def test_damage_that_only_the_qr_checksum_sees_is_caught(
    filled: Engine, store_path: Path, open_engine: Callable[..., Engine]
):
    """Without the catalog (rebuild), a frame whose packet still decodes is checked by its own CRC."""
    records = {r.id: r for r in _records()}
    (seg,) = filled.catalog.segments()
    locations = filled.locate(list(records))
    target = sorted({loc.frame for loc in locations.values()})[1]
    ((packet, _),) = filled.catalog.frames(seg.seq, target, 1)
    filled.close()
    _flip(store_path / "segments" / seg.video_file, packet.offset + packet.size // 2)
    for path in store_path.glob("catalog.sqlite*"):
        path.unlink()

    report = rebuild_store(store_path, embed=fake_embed)  # a damaged segment's vectors are re-embedded
    lost = sorted(rid for rid, loc in locations.items() if loc.frame == target)
    assert report.records == len(records) - len(lost)
    assert report.lost_frames == 1
    assert any(f"frame {target}" in p for p in report.problems)
    engine = open_engine()
    assert engine.get(lost) == []
    kept = sorted(set(records) - set(lost))
    assert engine.get(kept) == [records[i] for i in kept]


def test_damaged_dictionary_frame_fails_reads_of_its_segment_only(
    open_engine: Callable[..., Engine], store_path: Path
):
    engine = open_engine()
    add(engine, _records())
    add(engine, [Record("other-seg", "in a segment of its own")])
    seg = engine.catalog.segments()[0]
    assert seg.dict_frames >= 1
    ((packet, _),) = engine.catalog.frames(seg.seq, 1, 1)
    engine.close()
    _flip(store_path / "segments" / seg.video_file, packet.offset + packet.size // 2)

    damaged = open_engine()  # opening still works: the damage surfaces on read and in verify
    with pytest.raises(CorruptData, match="r05"):
        damaged.get(["r05"])
    assert damaged.get(["other-seg"]) == [Record("other-seg", "in a segment of its own")]
    report = damaged.verify(cross_check=False)
    assert any(p.frame == 1 and p.file == seg.video_file for p in report.problems)
    assert {p.record_id for p in report.problems if p.record_id} == {r.id for r in _records()}


def test_container_damage_outside_packets_is_reported_but_records_read(
    filled: Engine, store_path: Path, open_engine: Callable[..., Engine]
):
    (seg,) = filled.catalog.segments()
    table = filled.catalog.frames(seg.seq, 0, seg.frame_count)
    covered = {b for loc, _ in table for b in range(loc.offset, loc.offset + loc.size)}
    video = store_path / "segments" / seg.video_file
    outside = next(b for b in range(video.stat().st_size - 1, 0, -1) if b not in covered)
    filled.close()
    _flip(video, outside)

    engine = open_engine()
    report = engine.verify(cross_check=False)
    assert [(p.file, p.frame, p.record_id) for p in report.problems] == [(seg.video_file, None, None)]
    assert "SHA-256" in report.problems[0].message
    records = _records()
    assert engine.get([r.id for r in records]) == records


def test_truncated_vector_file_is_reported(
    filled: Engine, store_path: Path, open_engine: Callable[..., Engine]
):
    (seg,) = filled.catalog.segments()
    index_file = store_path / "segments" / seg.index_file
    index_file.write_bytes(index_file.read_bytes()[:100])

    report = filled.verify(cross_check=False)
    assert not report.ok
    assert [p.file for p in report.problems] == [seg.index_file]
    assert "SHA-256" in report.problems[0].message

    # A new process cannot build its index from the damaged file and says how to recover.
    filled.close()
    with pytest.raises(ChecksumMismatch, match=rf"{seg.index_file}.*rebuild"):
        open_engine()
    report = rebuild_store(store_path, embed=fake_embed)
    assert report.reembedded == 40
    recovered = open_engine()
    assert recovered.verify(cross_check=False).ok
    records = _records()
    assert recovered.search(fake_embed_one(records[7].text), 1)[0].record == records[7]


def test_tampered_catalog_row_is_refused(
    filled: Engine, store_path: Path, open_engine: Callable[..., Engine]
):
    filled.close()
    db = sqlite3.connect(store_path / "catalog.sqlite")
    db.execute("""UPDATE records SET metadata = '{"i":999}' WHERE id = 'r03'""")
    db.commit()
    db.close()
    with pytest.raises(ChecksumMismatch, match=r"'r03'.*CRC-32"):
        open_engine().get(["r03"])


def test_catalog_pointing_at_the_wrong_slot_never_returns_another_record(
    filled: Engine, store_path: Path, open_engine: Callable[..., Engine]
):
    """Even a row with a valid CRC that points at another record's slot raises, naming the record."""
    filled.close()
    db = sqlite3.connect(store_path / "catalog.sqlite")
    row = db.execute("SELECT * FROM records WHERE id = 'r03'").fetchone()
    rid, vid, seq, first, count, slot, size, meta, _ = row
    other_slot = slot + 1 if slot == 0 else slot - 1
    crc = row_crc(rid, vid, seq, first, count, other_slot, size, meta)
    db.execute("UPDATE records SET slot = ?, crc32 = ? WHERE id = 'r03'", (other_slot, crc))
    db.commit()
    db.close()
    engine = open_engine()
    with pytest.raises(CorruptData, match=r"'r03'.*other records"):
        engine.get(["r03"])
    report = engine.verify(cross_check=False)
    assert [p.record_id for p in report.problems] == ["r03"]
