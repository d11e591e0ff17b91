"""Corruption: damaged bytes are detected, never returned as wrong text; rebuild recovers the rest.

A template store (several segments, one with a zstd dictionary, upserts and a tombstone segment)
is copied per case and damaged: seeded random byte flips in a video, vector or catalog file,
truncation, or a deleted file. Then, per record, a read returns exactly the stored record or
raises a ``MemvidError`` naming the file and the record; ``verify`` reports the damage (each
unreadable record by id); ``rebuild_store`` (with an embedding function for lost vectors)
recovers every record that was still readable.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from langchain_memvid.engine import Engine, MemvidError, Record, rebuild_store
from langchain_memvid.engine.storage import segments as segments_mod

from . import stats
from .common import DIM

CASES = {"video": 60, "catalog": 60, "faiss": 12, "truncate": 12}


def embed(texts: Sequence[str]) -> np.ndarray:
    """The template's embedding: a function of the text alone, so rebuild can re-embed."""
    out = []
    for text in texts:
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))
        out.append(rng.standard_normal(DIM).astype(np.float32))
    return np.stack(out) if out else np.zeros((0, DIM), np.float32)


def _long(i: int, v: int = 1) -> str:
    return f"long record {i} v{v}: " + " ".join(f"w{(i * 31 + j * 7) % 97}" for j in range(180))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Record]]:
    return build_template(tmp_path_factory.mktemp("corruption") / "template")


def build_template(path: Path) -> tuple[Path, dict[str, Record]]:
    """Several segments (one with a zstd dictionary), upserts and a tombstone segment.

    Segment names and header timestamps are pinned, so the files are the same bytes on every run
    and a seed reproduces the same damage.
    """
    names = itertools.count(0xA0000000)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(segments_mod, "secrets", SimpleNamespace(token_hex=lambda n: f"{next(names):08x}"))
        mp.setattr(segments_mod, "time", SimpleNamespace(time=lambda: 1_700_000_000.0))
        return _fill_template(path)


def _fill_template(path: Path) -> tuple[Path, dict[str, Record]]:
    engine = Engine(path, dim=DIM)
    expected: dict[str, Record] = {}

    def add(records: list[Record]) -> None:
        engine.add(records, embed([r.text for r in records]))
        expected.update((r.id, r) for r in records)

    add([Record(f"a{i:02d}", f"short record {i}", {"i": i, "kind": "short"}) for i in range(30)])
    add([Record(f"b{i:02d}", _long(i), {"i": i, "tags": ["x", str(i)]}) for i in range(40)])
    add([Record("a05", "short record 5, second version", {"v": 2}), Record("b10", _long(10, 2), {"v": 2})])
    engine.delete(["a07", "a08"])
    for rid in ("a07", "a08"):
        del expected[rid]
    add([Record(f"c{i}", f"third segment {i} " * (i + 1), {"c": i}) for i in range(8)])
    assert engine.verify(cross_check=False).ok
    engine.close()
    return path, expected


def _copy(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest)
    return dest


def _segment_of(store: Path) -> dict[str, str]:
    """record id -> video file name, read straight from the (intact) template catalog."""
    db = sqlite3.connect(store / "catalog.sqlite")
    try:
        names = dict(db.execute("SELECT seq, name FROM segments"))
        return {rid: f"{names[seq]}.mov" for rid, seq in db.execute("SELECT id, seq FROM records")}
    finally:
        db.close()


def _flip(path: Path, rng: random.Random, count: int) -> list[int]:
    data = bytearray(path.read_bytes())
    positions = sorted(rng.randrange(len(data)) for _ in range(count))
    for pos in positions:
        data[pos] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    return positions


def read_each(engine: Engine, expected: dict[str, Record], files: dict[str, str]) -> dict[str, Any]:
    stats.add("wrong_texts", 0)
    """Read every record on its own: exact, refused (with a good message), missing or wrong."""
    out: dict[str, Any] = {"ok": set(), "refused": set(), "missing": set(), "wrong": [], "bad_messages": []}
    for rid, rec in expected.items():
        try:
            got = engine.get([rid])
        except MemvidError as e:
            out["refused"].add(rid)
            msg = str(e)
            if rid not in msg or not (files[rid] in msg or "catalog" in msg.lower()):
                out["bad_messages"].append(f"{rid}: {type(e).__name__}: {msg}")
            continue
        if got == [rec]:
            out["ok"].add(rid)
        elif not got:
            out["missing"].add(rid)
        else:
            out["wrong"].append((rid, got))
    return out


def check_rebuild(store: Path, readable: set[str], expected: dict[str, Record]) -> list[str]:
    """Rebuild from the videos; every record that was readable must come back exactly."""
    (store / "catalog.sqlite").unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        (store / f"catalog.sqlite{suffix}").unlink(missing_ok=True)
    report = rebuild_store(store, embed=embed)
    problems = []
    with Engine(store, create=False) as engine:
        got = {r.id: r for r in engine.iter_records()}
        # The damaged frames are still in the video (verify keeps reporting them) until a
        # compaction rewrites the recovered records into fresh segments.
        engine.compact()
        after = engine.verify(cross_check=False)
        if not after.ok:
            problems.append(f"verify fails after rebuild and compact: {after.problems[:3]}")
    wrong = [rid for rid, rec in got.items() if rid in expected and rec != expected[rid]]
    # An older version may come back only when the newer one was destroyed.
    wrong = [rid for rid in wrong if rid in readable]
    lost = sorted(readable - set(got))
    stats.add("rebuild_intact", len(readable))
    stats.add("rebuild_recovered", len(readable & set(got)) - len(wrong))
    if lost:
        problems.append(f"rebuild lost readable records {lost} ({report.problems[:3]})")
    if wrong:
        problems.append(f"rebuild returned other versions of {wrong}")
    return problems


def _judge(kind: str, case: int, result: dict[str, Any], problems: list[str]) -> None:
    stats.add("reads_refused", len(result["refused"]))
    if result["wrong"]:
        stats.add("wrong_texts", len(result["wrong"]))
        problems.append(f"WRONG TEXT returned: {result['wrong'][:2]}")
    if result["bad_messages"]:
        problems.append(f"errors that do not name file and record: {result['bad_messages'][:2]}")


@pytest.mark.parametrize("target", ["video", "truncate"])
def test_damaged_video(template: Any, tmp_path: Path, seed: int, target: str) -> None:
    path, expected = template
    files = _segment_of(path)
    rng = random.Random(f"{seed}-{target}")
    failures = []
    for case in range(CASES[target]):
        store = _copy(path, tmp_path / f"case{case}")
        video = rng.choice(sorted((store / "segments").glob("*.mov")))
        if target == "video":
            where = _flip(video, rng, rng.choice([1, 1, 2, 4]))
        else:
            size = video.stat().st_size
            where = [rng.randrange(size)]
            with video.open("r+b") as fh:
                fh.truncate(where[0])
        stats.add("corruptions_injected")
        problems: list[str] = []
        with Engine(store, create=False) as engine:
            result = read_each(engine, expected, files)
            report = engine.verify(cross_check=False)
        _judge(target, case, result, problems)
        if result["missing"]:
            problems.append(f"records silently missing: {sorted(result['missing'])}")
        if report.ok:
            problems.append("verify did not notice")
        else:
            stats.add("corruptions_detected")
        reported = {p.record_id for p in report.problems if p.record_id}
        if not result["refused"] <= reported:
            problems.append(f"verify did not name unreadable records {sorted(result['refused'] - reported)}")
        problems += check_rebuild(store, result["ok"], expected)
        if problems:
            failures.append(f"case {case} ({video.name} at {where}): " + "; ".join(problems))
        shutil.rmtree(store)
    assert not failures, "\n".join(failures[:8])


def test_damaged_vector_file(template: Any, tmp_path: Path, seed: int) -> None:
    path, expected = template
    rng = random.Random(f"{seed}-faiss")
    failures = []
    for case in range(CASES["faiss"]):
        store = _copy(path, tmp_path / f"case{case}")
        index = rng.choice(sorted((store / "segments").glob("*.faiss")))
        if case % 4 == 3:
            index.unlink()
        else:
            _flip(index, rng, rng.choice([1, 3]))
        stats.add("corruptions_injected")
        try:
            with Engine(store, create=False) as engine:
                # Tombstone segments' vector files are empty and not loaded to open: the store
                # opens, every record reads, and verify names the file.
                result = read_each(engine, expected, _segment_of(path))
                report = engine.verify(cross_check=False)
            if result["ok"] != set(expected) or not any(p.file == index.name for p in report.problems):
                failures.append(f"case {case}: opened with a damaged {index.name}: {report.problems[:2]}")
            else:
                stats.add("corruptions_detected")
        except MemvidError as e:
            stats.add("corruptions_detected")
            if index.name not in str(e) or "rebuild" not in str(e):
                failures.append(f"case {case}: error does not name {index.name} and the remedy: {e}")
        problems = check_rebuild(store, set(expected), expected)
        if problems:
            failures.append(f"case {case}: " + "; ".join(problems))
        shutil.rmtree(store)
    assert not failures, "\n".join(failures[:8])


def _logical_dump(path: Path) -> list[str] | None:
    """Every row of the catalog as SQL, or None when SQLite itself cannot read it."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            return list(db.iterdump())
        finally:
            db.close()
    except (sqlite3.Error, UnicodeDecodeError):
        return None


def test_damaged_catalog(template: Any, tmp_path: Path, seed: int) -> None:
    path, expected = template
    files = _segment_of(path)
    clean = _logical_dump(path / "catalog.sqlite")
    rng = random.Random(f"{seed}-catalog")
    failures = []
    harmless = 0
    for case in range(CASES["catalog"]):
        store = _copy(path, tmp_path / f"case{case}")
        catalog = store / "catalog.sqlite"
        where = _flip(catalog, rng, rng.choice([1, 1, 2, 8]))
        if _logical_dump(catalog) == clean:
            harmless += 1  # the flip hit unused space: nothing stored changed
            shutil.rmtree(store)
            continue
        stats.add("corruptions_injected")
        problems: list[str] = []
        detected = False
        try:
            engine = Engine(store, create=False)
        except MemvidError as e:
            detected = True
            if "catalog" not in str(e).lower():
                problems.append(f"open error does not name the catalog: {e}")
        except Exception as e:
            problems.append(f"undocumented error on open: {type(e).__name__}: {e}")
        else:
            try:
                result = read_each(engine, expected, files)
                _judge("catalog", case, result, problems)
                report = engine.verify(cross_check=False)
                detected = bool(result["refused"]) or not report.ok
                if result["missing"] and report.ok:
                    problems.append(f"records silently missing: {sorted(result['missing'])}")
            except MemvidError:
                detected = True
            except Exception as e:
                problems.append(f"undocumented error: {type(e).__name__}: {e}")
            finally:
                engine.close()
        if detected:
            stats.add("corruptions_detected")
        else:
            problems.append("catalog damage not detected by reads or verify")
        if problems:
            failures.append(f"case {case} (bytes {where}): " + "; ".join(problems))
        shutil.rmtree(store)
    stats.put("catalog flips that hit unused space (no data changed)", harmless)
    assert not failures, "\n".join(failures[:8])


def test_deleted_files(template: Any, tmp_path: Path) -> None:
    path, expected = template
    files = _segment_of(path)
    videos = sorted(p.name for p in (path / "segments").glob("*.mov"))
    # A deleted video: its records are refused by name, the others read fine, rebuild keeps them.
    store = _copy(path, tmp_path / "video")
    (store / "segments" / videos[1]).unlink()
    stats.add("corruptions_injected")
    with Engine(store, create=False) as engine:
        result = read_each(engine, expected, files)
        report = engine.verify(cross_check=False)
    assert not result["wrong"]
    assert not result["bad_messages"]
    assert not result["missing"]
    assert result["refused"] == {rid for rid, f in files.items() if f == videos[1]}
    assert not report.ok
    assert result["refused"] <= {p.record_id for p in report.problems}
    stats.add("corruptions_detected")
    assert not check_rebuild(store, result["ok"], expected)

    # A deleted catalog: the store refuses to open as a new one, and rebuild brings it all back.
    store = _copy(path, tmp_path / "catalog")
    (store / "catalog.sqlite").unlink()
    stats.add("corruptions_injected")
    with pytest.raises(MemvidError, match="rebuild"):
        Engine(store)
    stats.add("corruptions_detected")
    assert not check_rebuild(store, set(expected), expected)
