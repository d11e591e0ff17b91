"""``Engine.migrate(url)``: a format-1/2 folder copied into a new versioned store (docs/format.md 11.9).

The new store must serve the same records byte for byte and the same search results; the folder
must stay exactly as it was; a damaged folder is refused before anything is uploaded; a URL that
already holds a store is refused and left alone. There is no on-disk 0.1 fixture store in tests/;
a 0.1 catalog is made here the way tests/unit_tests/engine/test_vector_encodings.py makes one.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from langchain_memvid.engine import Engine, Record
from langchain_memvid.engine.errors import CorruptData, InvalidArgument
from langchain_memvid.engine.storage.objects import ObjectStore
from tests.s3_server import S3Target

from .test_engine_versions import DIM, Target, add, assert_same_hits, exact, hits, snapshot

pytest_plugins = ["tests.s3_server"]  # the moto_server and s3_bucket fixtures

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])  # moto only


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("LCMEMVID_CACHE", str(folder))
    return folder


@pytest.fixture(params=["memory", "s3"])
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "s3":
        s3: S3Target = request.getfixturevalue("s3_bucket")
        return Target(s3.url, s3.storage_options)
    return Target(f"memory://{uuid.uuid4().hex}/store", None)


@pytest.fixture
def opened() -> Iterator[list[Engine]]:
    engines: list[Engine] = []
    yield engines
    for engine in engines:
        with contextlib.suppress(Exception):
            engine.close()


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file of a store folder with its bytes (SQLite's shared-memory index and an empty WAL aside)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
        and not p.name.endswith("-shm")
        and not (p.name.endswith("-wal") and not p.stat().st_size)
    }


def build_source(folder: Path, **options: Any) -> list[Record]:
    """A folder store written by adds, a delete and an upsert (closed); its live records."""
    records = [
        Record(f"m{i}", f"migrated record {i} " + "ü" * (i % 4), {"i": i, "odd": i % 2 == 1})
        for i in range(30)
    ]
    with Engine(folder, dim=DIM, segment_records=7, **options) as engine:
        add(engine, records[:20])
        add(engine, records[20:])
        engine.delete(["m4", "m25"])
        records[7] = Record("m7", "m7 replaced before the migration", {"replaced": True})
        add(engine, [records[7]])
    return [r for r in records if r.id not in ("m4", "m25")]


def assert_same_store(source: Engine, migrated: Engine, live: list[Record]) -> None:
    every = sorted({r.id for r in live} | {"m4", "m25"})
    assert len(migrated) == len(source) == len(live)
    want = {r.id: r for r in live}
    assert exact(migrated.get(every)) == exact([want[i] for i in every if i in want])
    assert exact(migrated.get(every)) == exact(source.get(every))
    assert sorted(migrated.ids()) == sorted(source.ids())
    k = len(live) + 2
    assert_same_hits(hits(migrated, k), hits(source, k))


@pytest.mark.parametrize(
    "options",
    [
        {"vector_encoding": "float32"},  # format 1
        {"vector_encoding": "int8"},  # format 2
        {"vector_encoding": "float32", "index": "ivf", "index_options": {"nlist": 4, "min_vectors": 20}},
    ],
    ids=["format1", "format2", "ivf-snapshot"],
)
def test_a_folder_migrates_exactly_and_stays_as_it_was(
    target: Target, tmp_path: Path, opened: list[Engine], options: dict[str, Any]
) -> None:
    folder = tmp_path / "source"
    live = build_source(folder, **options)
    source = Engine(folder)
    opened.append(source)
    before = folder_bytes(folder)
    assert source.migrate(target.url, target.options) == 1
    assert folder_bytes(folder) == before, "migration leaves the folder exactly as it was"

    migrated = Engine(target.url, storage_options=target.options)
    opened.append(migrated)
    assert migrated.version == 1
    assert [(v["version"], v["operation"]) for v in migrated.versions()] == [(1, "migrate")]
    assert_same_store(source, migrated, live)
    report = migrated.verify()
    assert report.ok, report.problems
    if "index" in options:
        objects = ObjectStore(target.url, target.options)
        assert objects.list("index/"), "the index snapshot travels too"
        assert migrated.settings.get("index_snapshot") == source.settings.get("index_snapshot")

    # The new store takes writes as any other; the folder still does not change.
    add(migrated, [Record("after", "written after the migration")])
    assert migrated.version == 2
    again = Engine(target.url, storage_options=target.options, version=1)
    opened.append(again)
    assert_same_store(source, again, live)
    assert folder_bytes(folder) == before


def test_a_store_as_0_1_left_it_migrates(target: Target, tmp_path: Path, opened: list[Engine]) -> None:
    folder = tmp_path / "old"
    live = build_source(folder, vector_encoding="float32")
    with sqlite3.connect(folder / "catalog.sqlite") as db:  # 0.1 kept no dead list and no encoding
        db.execute("DROP TABLE dead_vectors")
        for key in ("dead_vectors", "vector_encoding"):
            db.execute("DELETE FROM meta WHERE key = ?", (key,))
            db.execute("DELETE FROM checksums WHERE tbl = 'meta' AND key = ?", (key,))
    db.close()
    source = Engine(folder)
    opened.append(source)
    before = folder_bytes(folder)
    source.migrate(target.url, target.options)
    assert folder_bytes(folder) == before
    migrated = Engine(target.url, storage_options=target.options)
    opened.append(migrated)
    assert_same_store(source, migrated, live)
    assert migrated.vector_encoding == "float32"
    assert migrated.verify().ok


def test_a_plain_path_and_a_file_url_name_the_same_folder(tmp_path: Path, opened: list[Engine]) -> None:
    folder = tmp_path / "source"
    live = build_source(folder, vector_encoding="float32")
    source = Engine(f"file://{folder}")
    opened.append(source)
    assert source.version is None
    assert not source.read_only
    url = f"memory://{uuid.uuid4().hex}/store"
    source.migrate(url)
    migrated = Engine(url)
    opened.append(migrated)
    assert_same_store(source, migrated, live)


@pytest.mark.parametrize("damage", ["video", "vectors"])
def test_a_damaged_folder_is_refused_and_nothing_is_published(
    target: Target, tmp_path: Path, opened: list[Engine], damage: str
) -> None:
    folder = tmp_path / "source"
    build_source(folder, vector_encoding="float32")
    suffix = ".mov" if damage == "video" else ".faiss"
    victim = sorted((folder / "segments").glob(f"*{suffix}"))[1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    before = folder_bytes(folder)
    # A damaged vector file stops the open itself (it is checked when the index loads).
    message = "migration refuses to copy damage" if damage == "video" else "fails its SHA-256 check"

    def migrate() -> None:
        source = Engine(folder)
        opened.append(source)
        source.migrate(target.url, target.options)

    with pytest.raises(CorruptData, match=message):
        migrate()
    assert ObjectStore(target.url, target.options).list("") == [], "nothing uploaded, nothing published"
    assert folder_bytes(folder) == before


def test_migrating_into_a_url_that_holds_a_store_is_refused(
    target: Target, tmp_path: Path, opened: list[Engine]
) -> None:
    with Engine(target.url, storage_options=target.options, dim=DIM) as existing:
        add(existing, [Record("x", "already here")])
    objects = ObjectStore(target.url, target.options)
    before = snapshot(objects)
    folder = tmp_path / "source"
    build_source(folder, vector_encoding="float32")
    source = Engine(folder)
    opened.append(source)
    with pytest.raises(InvalidArgument, match="already holds a versioned store"):
        source.migrate(target.url, target.options)
    assert snapshot(objects) == before
    # A versioned store is not migrated again.
    versioned = Engine(target.url, storage_options=target.options)
    opened.append(versioned)
    other = f"memory://{uuid.uuid4().hex}/copy"
    with pytest.raises(InvalidArgument, match="already a versioned store"):
        versioned.migrate(other)
    assert ObjectStore(other).list("") == []


def test_migrating_twice_from_two_handles_publishes_one_store(tmp_path: Path, opened: list[Engine]) -> None:
    folder = tmp_path / "source"
    live = build_source(folder, vector_encoding="float32")
    url = f"memory://{uuid.uuid4().hex}/store"
    source = Engine(folder)
    opened.append(source)
    source.migrate(url)
    objects = ObjectStore(url)
    before = snapshot(objects)
    with pytest.raises(InvalidArgument):
        source.migrate(url)
    assert snapshot(objects) == before
    migrated = Engine(url)
    opened.append(migrated)
    assert_same_store(source, migrated, live)


def test_later_writes_to_the_folder_stay_in_the_folder(tmp_path: Path, opened: list[Engine]) -> None:
    folder = tmp_path / "source"
    build_source(folder, vector_encoding="float32")
    source = Engine(folder, lock_timeout=0.2)
    other = Engine(folder, lock_timeout=0.2)
    opened.extend([source, other])
    url = f"memory://{uuid.uuid4().hex}/store"
    source.migrate(url)
    add(other, [Record("late", "written after the migration")])
    migrated = Engine(url)
    opened.append(migrated)
    assert migrated.get(["late"]) == [], "the copy is the folder as it was at the migration"
    assert len(migrated) == len(other) - 1
