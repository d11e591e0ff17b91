"""Catalog checkpoints and deltas (engine/versions/catalog_state.py) on copies of real catalogs.

A version's catalog is its checkpoint with its delta applied, and a handle takes in a newer
version with ``sync_into``: both must reproduce the newer catalog exactly, row for row and value
for value (storage class included), whatever the engine changed in between: added, deleted and
replaced records, dropped segments, blobs, a table the older catalog lacked. A damaged delta is
refused with ``CorruptData`` and leaves the target as it was.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zstandard

from langchain_memvid.engine import Engine, Record
from langchain_memvid.engine.errors import CorruptData
from langchain_memvid.engine.versions import catalog_state

DIM = 8

Dump = dict[str, list[tuple[Any, ...]]]


def _vector(text: str) -> np.ndarray:
    seed = int.from_bytes(text.encode()[:8].ljust(8, b"\0"), "little") ^ len(text)
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def _add(engine: Engine, records: list[Record]) -> None:
    engine.add(records, np.stack([_vector(r.text) for r in records]))


def dump(path: Path) -> Dump:
    """Every table's rows, each value with its storage class, sorted (schema tables included)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            )
        ]
        out: Dump = {}
        for table in tables:
            cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
            select = ", ".join(f'typeof("{c}"), "{c}"' for c in cols)
            out[table] = sorted(conn.execute(f'SELECT {select} FROM "{table}"').fetchall(), key=repr)
        return out
    finally:
        conn.close()


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Standalone copies of one store's catalog after each of a series of writes."""
    root = tmp_path_factory.mktemp("catalogs")
    store = root / "store"
    out: list[Path] = []

    def snap() -> None:
        dst = root / f"c{len(out)}.sqlite"
        catalog_state.copy_catalog(store / "catalog.sqlite", dst)
        out.append(dst)

    with Engine(store, dim=DIM, vector_encoding="float32", segment_records=4) as engine:
        snap()  # 0: empty
        _add(
            engine,
            [
                Record(f"r{i}", f"text number {i} " + "é" * i, {"i": i, "tag": "a'b\"c", "f": i / 7})
                for i in range(10)
            ],
        )
        snap()  # 1: records, segments, frames, lexicons (blobs)
        engine.delete(["r3", "r7"])
        snap()  # 2: deleted rows, a tombstone segment, dead vectors
        _add(engine, [Record("r1", "replaced text \x00 with NUL", {"i": "one"}), Record("a\x00b", "nul id")])
        snap()  # 3: a replaced row (same key, other values), an id holding NUL
        engine.compact()
        snap()  # 4: segments dropped and new ones, records moved
        engine.set_vector_encoding("float16")
        _add(engine, [Record(f"n{i}", f"new {i}") for i in range(3)])
        snap()  # 5: a meta change and more records
    return out


def _extended(src: Path, out: Path) -> Path:
    """A copy of ``src`` with a table the engine never made: blobs, a composite key, odd values."""
    shutil.copyfile(src, out)
    conn = sqlite3.connect(out)
    try:
        conn.execute("CREATE TABLE extra (a TEXT NOT NULL, b INTEGER NOT NULL, v BLOB, PRIMARY KEY (a, b))")
        conn.executemany(
            "INSERT INTO extra VALUES (?, ?, ?)",
            [
                ("x", -1, b"\x00\x01\xff" * 50),
                ("x", 2**62, None),
                ("q\"uo'te\n", 0, b""),
                ("\u2028", 5, 1.5),
                ("a\x00b", 7, "text"),
            ],
        )
        conn.commit()
    finally:
        conn.close()
    return out


def _pairs(n: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(n) for b in range(n) if a != b]


def test_the_catalogs_differ_in_every_way_the_tests_need(catalogs: list[Path]) -> None:
    dumps = [dump(p) for p in catalogs]
    assert len({repr(d) for d in dumps}) == len(dumps), "each write changed the catalog"
    assert dumps[1]["lexicon"], "the lexicons are blobs"
    ids2 = {row[1] for row in dumps[2]["records"]}
    assert "r3" not in ids2
    assert "r7" not in ids2
    replaced = {row[1]: row for row in dumps[3]["records"]}["r1"]
    assert replaced != {row[1]: row for row in dumps[2]["records"]}["r1"]
    seqs = lambda d: {row[1] for row in d["segments"]}  # noqa: E731
    assert seqs(dumps[3]) - seqs(dumps[4]), "compaction dropped segments"


@pytest.mark.parametrize(("a", "b"), _pairs(6))
def test_a_delta_turns_any_catalog_into_any_other(
    catalogs: list[Path], tmp_path: Path, a: int, b: int
) -> None:
    base, new = catalogs[a], catalogs[b]
    base_before = base.read_bytes()
    delta = tmp_path / "delta.sqlite"
    catalog_state.make_delta(base, new, delta)
    # Through compression, as a version's delta travels.
    restored = tmp_path / "restored.sqlite"
    catalog_state.decompress_to(catalog_state.compress(delta), restored, "catalog/delta-test.zst")
    target = tmp_path / "target.sqlite"
    shutil.copyfile(base, target)
    catalog_state.apply_delta(target, restored)
    assert dump(target) == dump(new)
    assert base.read_bytes() == base_before, "make_delta never touches its inputs"


def test_a_delta_of_no_change_is_empty(catalogs: list[Path], tmp_path: Path) -> None:
    delta = tmp_path / "delta.sqlite"
    catalog_state.make_delta(catalogs[3], catalogs[3], delta)
    assert all(rows == [] for rows in dump(delta).values())


def test_a_delta_adds_a_new_table_with_blobs(catalogs: list[Path], tmp_path: Path) -> None:
    new = _extended(catalogs[4], tmp_path / "new.sqlite")
    for base in (catalogs[1], catalogs[4]):
        delta = tmp_path / "delta.sqlite"
        catalog_state.make_delta(base, new, delta)
        target = tmp_path / "target.sqlite"
        shutil.copyfile(base, target)
        catalog_state.apply_delta(target, delta)
        assert dump(target) == dump(new)


def test_a_delta_changes_and_removes_blob_and_composite_key_rows(
    catalogs: list[Path], tmp_path: Path
) -> None:
    base = _extended(catalogs[4], tmp_path / "base.sqlite")
    new = tmp_path / "new.sqlite"
    shutil.copyfile(base, new)
    conn = sqlite3.connect(new)
    conn.execute("UPDATE extra SET v = ? WHERE a = 'x' AND b = -1", (b"\xff" * 3,))
    conn.execute("UPDATE extra SET v = 3 WHERE a = ? AND b = 0", ("q\"uo'te\n",))  # blob -> integer
    conn.execute("DELETE FROM extra WHERE a = ?", ("a\x00b",))
    conn.execute("DELETE FROM extra WHERE b = ?", (2**62,))
    conn.execute("UPDATE extra SET v = '1.5' WHERE a = '\u2028'")  # real -> text, same digits
    conn.commit()
    conn.close()
    delta = tmp_path / "delta.sqlite"
    catalog_state.make_delta(base, new, delta)
    target = tmp_path / "target.sqlite"
    shutil.copyfile(base, target)
    catalog_state.apply_delta(target, delta)
    assert dump(target) == dump(new)


def test_a_delta_removes_the_rows_of_a_table_the_new_catalog_dropped(
    catalogs: list[Path], tmp_path: Path
) -> None:
    base = _extended(catalogs[4], tmp_path / "base.sqlite")
    delta = tmp_path / "delta.sqlite"
    catalog_state.make_delta(base, catalogs[4], delta)
    target = tmp_path / "target.sqlite"
    shutil.copyfile(base, target)
    catalog_state.apply_delta(target, delta)
    assert dump(target).get("extra", []) == []


@pytest.mark.parametrize(("a", "b"), [(0, 5), (5, 0), (1, 3), (3, 1), (2, 4), (4, 2), (1, 5)])
def test_sync_into_makes_a_live_catalog_hold_exactly_the_source(
    catalogs: list[Path], tmp_path: Path, a: int, b: int
) -> None:
    target = tmp_path / "live.sqlite"
    shutil.copyfile(catalogs[a], target)
    conn = sqlite3.connect(target)  # live catalogs are in WAL mode, read while synced
    conn.execute("PRAGMA journal_mode=WAL")
    assert conn.execute("SELECT count(*) FROM records").fetchone()[0] == len(dump(catalogs[a])["records"])
    catalog_state.sync_into(target, catalogs[b])
    # An open connection sees the new state (one commit, as if a writer had made it).
    assert conn.execute("SELECT count(*) FROM records").fetchone()[0] == len(dump(catalogs[b])["records"])
    conn.close()
    assert dump(target) == dump(catalogs[b])


def test_sync_into_adds_a_new_table_and_empties_one_the_source_lacks(
    catalogs: list[Path], tmp_path: Path
) -> None:
    extended = _extended(catalogs[2], tmp_path / "ext.sqlite")
    target = tmp_path / "live.sqlite"
    shutil.copyfile(catalogs[1], target)
    catalog_state.sync_into(target, extended)
    assert dump(target) == dump(extended)
    catalog_state.sync_into(target, catalogs[5])
    got = dump(target)
    assert got.pop("extra") == []
    assert got == dump(catalogs[5])


# -- damaged deltas ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"not zstd at all", b"\x28\xb5\x2f\xfd" + b"\x00" * 40, None],
    ids=["empty", "garbage", "bad-frame", "truncated"],
)
def test_an_unreadable_compressed_delta_is_corrupt_data(
    catalogs: list[Path], tmp_path: Path, data: bytes | None
) -> None:
    if data is None:
        delta = tmp_path / "d.sqlite"
        catalog_state.make_delta(catalogs[1], catalogs[2], delta)
        whole = catalog_state.compress(delta)
        data = whole[: len(whole) // 2]
    out = tmp_path / "out.sqlite"
    with pytest.raises(CorruptData, match=r"catalog/delta-abc\.zst"):
        catalog_state.decompress_to(data, out, "catalog/delta-abc.zst")
    assert not out.exists()


def test_a_zstd_frame_without_a_declared_size_beyond_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog_state, "MAX_DELTA_BYTES", 1 << 16)
    bomb = zstandard.ZstdCompressor(write_content_size=False).compress(b"\0" * (1 << 20))
    with pytest.raises(CorruptData, match="delta-bomb"):
        catalog_state.decompress_to(bomb, tmp_path / "out.sqlite", "catalog/delta-bomb.zst")


def test_a_zstd_frame_declaring_a_size_beyond_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog_state, "MAX_DELTA_BYTES", 1 << 16)
    bomb = zstandard.ZstdCompressor(write_content_size=True).compress(b"\0" * (1 << 20))
    with pytest.raises(CorruptData, match="delta-bomb"):
        catalog_state.decompress_to(bomb, tmp_path / "out.sqlite", "catalog/delta-bomb.zst")


def _damaged_delta(catalogs: list[Path], tmp_path: Path, key: str, table: str = "records") -> Path:
    delta = tmp_path / "delta.sqlite"
    catalog_state.make_delta(catalogs[1], catalogs[2], delta)
    conn = sqlite3.connect(delta)
    conn.execute("INSERT INTO _removed VALUES (?, ?)", (table, key))
    conn.commit()
    conn.close()
    return delta


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("records", "not json"),
        ("records", '{"id": "r1"}'),
        ("records", '"r1"'),
        ("records", '["r1", "r2"]'),
        ("frames", "[1]"),
        ("records", "[1"),
    ],
)
def test_a_removed_key_that_is_not_the_tables_key_is_corrupt_data_and_changes_nothing(
    catalogs: list[Path], tmp_path: Path, table: str, key: str
) -> None:
    delta = _damaged_delta(catalogs, tmp_path, key, table)
    target = tmp_path / "target.sqlite"
    shutil.copyfile(catalogs[1], target)
    with pytest.raises(CorruptData, match="delta is damaged"):
        catalog_state.apply_delta(target, delta)
    assert dump(target) == dump(catalogs[1]), "a refused delta leaves the catalog as it was"


def test_a_delta_that_is_not_sqlite_raises_a_database_error_and_changes_nothing(
    catalogs: list[Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    target = tmp_path / "target.sqlite"
    shutil.copyfile(catalogs[1], target)
    with pytest.raises(sqlite3.DatabaseError):  # the workspace turns this into CorruptData
        catalog_state.apply_delta(target, bad)
    assert dump(target) == dump(catalogs[1])


@pytest.mark.parametrize(
    "statement",
    [
        'CREATE TABLE "ev il" (k INTEGER PRIMARY KEY)',  # a name the engine never makes
        "CREATE TABLE evil (k INTEGER PRIMARY KEY) ; ATTACH DATABASE 'x' AS y",
    ],
)
def test_a_delta_whose_schema_is_not_a_plain_create_table_is_refused(
    catalogs: list[Path], tmp_path: Path, statement: str
) -> None:
    """The CREATE statements of a delta are run again on the target: anything else is damage."""
    delta = tmp_path / "delta.sqlite"
    catalog_state.make_delta(catalogs[0], catalogs[1], delta)
    conn = sqlite3.connect(delta)
    try:
        conn.execute("CREATE TABLE evil (k INTEGER PRIMARY KEY)")
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'evil'", (statement,))
        conn.commit()
    finally:
        conn.close()
    target = tmp_path / "target.sqlite"
    shutil.copyfile(catalogs[0], target)
    before = dump(target)
    with pytest.raises((CorruptData, sqlite3.DatabaseError)):
        catalog_state.apply_delta(target, delta)
    assert dump(target) == before
    assert not (tmp_path / "x").exists()
