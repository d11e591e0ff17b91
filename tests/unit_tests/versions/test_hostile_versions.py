"""Damaged and hostile objects in a versioned store (docs/format.md section 11).

A version object, ``_latest``, a catalog checkpoint or delta, or a segment video in a bucket may
be damaged, crafted by someone who can write to the bucket, or missing. Each must give a clear
error naming the problem (never a crash from deep inside a library, never a read outside the
store's root), and none may make the library delete or change a stored object: every test lists
the bucket, bytes included, before and after.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zstandard

from langchain_memvid.engine import Engine, Record
from langchain_memvid.engine.errors import (
    ChecksumMismatch,
    CorruptData,
    MemvidError,
    SegmentNotFound,
    StoreNotFound,
    UnsafePath,
    UnsupportedFormat,
)
from langchain_memvid.engine.storage.objects import ObjectStore
from langchain_memvid.engine.versions import catalog_state, manifest
from tests.s3_server import S3Target

from .test_engine_versions import DIM, Target, add, exact, snapshot

pytest_plugins = ["tests.s3_server"]  # the moto_server and s3_bucket fixtures

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])  # moto only

RECORDS = [Record(f"r{i}", f"hostile test record {i}", {"i": i}) for i in range(10)]


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("LCMEMVID_CACHE", str(folder))
    return folder


def _memory() -> Target:
    return Target(f"memory://{uuid.uuid4().hex}/store", None)


@pytest.fixture(params=["memory"])
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "s3":
        s3: S3Target = request.getfixturevalue("s3_bucket")
        return Target(s3.url, s3.storage_options)
    return _memory()


@pytest.fixture
def opener(target: Target) -> Iterator[Callable[..., Engine]]:
    opened: list[Engine] = []

    def factory(**kwargs: Any) -> Engine:
        engine = Engine(target.url, storage_options=target.options, **kwargs)
        opened.append(engine)
        return engine

    yield factory
    for engine in opened:
        engine.close()


@pytest.fixture
def objects(target: Target, opener: Callable[..., Engine]) -> ObjectStore:
    """The target holding versions 1 (create), 2 (ten records in two segments), 3 (a delete)."""
    with Engine(
        target.url, storage_options=target.options, dim=DIM, segment_records=5, vector_encoding="float32"
    ) as writer:
        add(writer, RECORDS)
        writer.delete(["r9"])
        assert writer.version == 3
    return ObjectStore(target.url, target.options)


def _body(objects: ObjectStore, number: int) -> dict[str, Any]:
    return json.loads(objects.read(manifest.version_name(number)))


def _put_version(objects: ObjectStore, number: int, body: dict[str, Any] | bytes) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    objects.put(manifest.version_name(number), data)


def _no_workspace_left(cache: Path) -> None:
    work = cache / "work"
    assert not work.exists() or list(work.iterdir()) == [], "a failed open removes its workspace"


def _refused(
    opener: Callable[..., Engine],
    objects: ObjectStore,
    cache: Path,
    error: type[BaseException] | tuple[type[BaseException], ...],
    match: str,
    **kwargs: Any,
) -> BaseException:
    before = snapshot(objects)
    with pytest.raises(error, match=match) as info:
        opener(**kwargs)
    assert snapshot(objects) == before, "a refused open changes nothing in the store"
    _no_workspace_left(cache)
    return info.value


# -- version objects ------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"not json{", b"", b"\xff\xfe", b"[]", b'"3"', b"null"])
def test_a_version_object_that_is_not_a_json_object_is_corrupt(
    opener: Callable[..., Engine], objects: ObjectStore, cache: Path, data: bytes
) -> None:
    _put_version(objects, 3, data)
    _refused(opener, objects, cache, CorruptData, r"_versions/0+3\.json .*damaged")
    _refused(opener, objects, cache, CorruptData, r"_versions/0+3\.json", version=3)
    assert opener(version=2).version == 2, "the other versions still open"


def _ref(value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        body["checkpoint"] = value if not callable(value) else value(body["checkpoint"])

    return change


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        body[key] = value

    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        del body[key]

    return change


def _named(name: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda ref: {**ref, "name": name}


HOSTILE = {
    "number-in-body-differs": (_set("version", 5), "says it is version 5"),
    "number-is-a-string": (_set("version", "3"), "says it is version '3'"),
    "number-is-bool": (_set("version", True), "says it is version True"),
    "parent-skips": (_set("parent", 1), "parent 1"),
    "parent-null": (_set("parent", None), "parent None"),
    "checkpoint-escapes": (_ref(_named("../escape")), "checkpoint names '../escape'"),
    "checkpoint-deep-escape": (_ref(_named("catalog/../../x.sqlite")), "not an object of this store"),
    "checkpoint-other-bucket": (_ref(_named("s3://other/catalog/x.sqlite")), "not an object of this store"),
    "checkpoint-absolute": (_ref(_named("/etc/passwd")), "not an object of this store"),
    "checkpoint-not-a-string": (_ref(_named(["catalog/x"])), "no valid name"),
    "checkpoint-missing": (_drop("checkpoint"), "not an object reference"),
    "checkpoint-negative-size": (_ref(lambda r: {**r, "bytes": -1}), "no valid name and size"),
    "checkpoint-size-string": (_ref(lambda r: {**r, "bytes": "12"}), "no valid name and size"),
    "checkpoint-bad-sha": (_ref(lambda r: {**r, "sha256": "XYZ"}), "no valid SHA-256"),
    "delta-escapes": (
        lambda b: b.update(deltas=[{**b["deltas"][0], "name": "../../delta"}]),
        "delta 1 names '../../delta'",
    ),
    "deltas-not-a-list": (_set("deltas", "catalog/delta-x.zst"), "catalog deltas"),
    "deltas-too-many": (lambda b: b.update(deltas=b["deltas"] * 65), "at most 64"),
    "store-id-not-hex": (_set("store_id", "not-hex"), "no valid store_id"),
    "commit-id-missing": (_drop("commit_id"), "no valid commit_id"),
    "created-not-a-time": (_set("created", "yesterday"), "no creation time"),
    "operation-not-a-string": (_set("operation", 5), "no valid operation"),
    "format-missing": (_drop("format_version"), "no format_version"),
    "format-a-string": (_set("format_version", "3"), "no format_version"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_version_object_is_refused_by_name_and_changes_nothing(
    opener: Callable[..., Engine], objects: ObjectStore, cache: Path, case: str
) -> None:
    change, message = HOSTILE[case]
    body = _body(objects, 3)
    change(body)
    _put_version(objects, 3, body)
    error = _refused(opener, objects, cache, CorruptData, "_versions/0+3.json")
    assert message in str(error)


def test_a_version_from_a_future_format_asks_for_an_upgrade(
    opener: Callable[..., Engine], objects: ObjectStore, cache: Path
) -> None:
    body = _body(objects, 3)
    body["format_version"] = 4
    body["something_new"] = {"a": 1}
    _put_version(objects, 3, body)
    error = _refused(opener, objects, cache, UnsupportedFormat, r"(?i)upgrade")
    assert "format 4" in str(error)
    _refused(opener, objects, cache, UnsupportedFormat, "upgrade", version=3)


def test_a_version_object_larger_than_any_version_is_refused(
    opener: Callable[..., Engine], objects: ObjectStore, cache: Path
) -> None:
    body = _body(objects, 3)
    body["summary"] = "x" * (manifest.MAX_MANIFEST_BYTES + 1)
    _put_version(objects, 3, body)
    _refused(opener, objects, cache, CorruptData, "more than a version object can be")


def test_a_writer_that_finds_a_hostile_next_version_refuses_it_and_keeps_serving_its_own(
    opener: Callable[..., Engine], objects: ObjectStore
) -> None:
    reader = opener(refresh_interval=3600)
    body = _body(objects, 3)
    body.update(version=4, parent=3, checkpoint={**body["checkpoint"], "name": "../../etc/passwd"})
    _put_version(objects, 4, body)
    before = snapshot(objects)
    with pytest.raises(CorruptData, match="not an object of this store"):
        reader.refresh()
    with pytest.raises(CorruptData):
        add(reader, [Record("new", "never written")])
    assert snapshot(objects) == before
    assert reader.version == 3
    assert exact(reader.get(["r0", "r9"])) == exact([RECORDS[0]])


def test_a_version_of_another_store_appended_to_the_chain_is_refused(
    opener: Callable[..., Engine], objects: ObjectStore
) -> None:
    reader = opener(refresh_interval=3600)
    body = _body(objects, 3)
    body.update(version=4, parent=3, store_id=manifest.new_id(), commit_id=manifest.new_id())
    _put_version(objects, 4, body)
    before = snapshot(objects)
    with pytest.raises(CorruptData, match="another store"):
        reader.refresh()
    assert snapshot(objects) == before
    assert reader.version == 3
    assert len(reader) == 9


# -- checksums and catalog objects -------------------------------------------------------------------


@pytest.mark.parametrize("which", ["checkpoint", "delta"])
@pytest.mark.parametrize("field", ["sha256", "bytes"])
def test_a_wrong_checksum_or_size_is_a_checksum_mismatch_and_nothing_is_cached(
    opener: Callable[..., Engine], objects: ObjectStore, cache: Path, which: str, field: str
) -> None:
    body = _body(objects, 3)
    ref = body["checkpoint"] if which == "checkpoint" else body["deltas"][-1]
    wrong = hashlib.sha256(b"other bytes").hexdigest() if field == "sha256" else ref["bytes"] + 1
    ref[field] = wrong
    _put_version(objects, 3, body)
    shutil.rmtree(cache, ignore_errors=True)  # cold: nothing of the store cached yet
    error = _refused(opener, objects, cache, ChecksumMismatch, "Not cached")
    assert ref["name"] in str(error)
    entries = [p for p in (cache / "objects").rglob("*") if p.is_file()]
    assert not any(p.name == ref["sha256"] for p in entries), "nothing cached under the wrong key"
    assert list((cache / "tmp").iterdir()) == [], "no partial download left behind"


@pytest.mark.parametrize("target", ["memory", "s3"], indirect=True)
@pytest.mark.parametrize("which", ["checkpoint", "delta"])
def test_a_missing_catalog_object_is_an_error_naming_it(
    opener: Callable[..., Engine], objects: ObjectStore, cache: Path, which: str
) -> None:
    body = _body(objects, 3)
    name = body["checkpoint"]["name"] if which == "checkpoint" else body["deltas"][0]["name"]
    objects.delete(name)
    shutil.rmtree(cache, ignore_errors=True)  # cold: the object is not cached either
    _refused(opener, objects, cache, MemvidError, name)
    _refused(opener, objects, cache, MemvidError, name, version=3)


def _upload(objects: ObjectStore, name: str, data: bytes) -> dict[str, Any]:
    objects.put(name, data)
    return {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _delta_name(data: bytes) -> str:
    return f"catalog/delta-{hashlib.sha256(data).hexdigest()}.zst"


def test_a_damaged_delta_with_a_matching_checksum_is_corrupt_data(
    opener: Callable[..., Engine], objects: ObjectStore, cache: Path, tmp_path: Path
) -> None:
    body = _body(objects, 3)
    cases: list[tuple[bytes, str]] = [
        (b"not a zstd frame", "not a readable zstd frame"),
        (zstandard.ZstdCompressor().compress(b"not sqlite " * 100), "cannot be applied"),
    ]
    # A SQLite delta whose removed key is not a JSON array.
    real = objects.read(body["deltas"][-1]["name"])
    delta = tmp_path / "delta.sqlite"
    catalog_state.decompress_to(real, delta, "real")
    with sqlite3.connect(delta) as conn:
        conn.execute("INSERT INTO _removed VALUES ('records', 'not json')")
    conn.close()
    cases.append((catalog_state.compress(delta), "not a JSON array"))
    for data, message in cases:
        hostile = dict(body)
        hostile["deltas"] = [*body["deltas"][:-1], _upload(objects, _delta_name(data), data)]
        _put_version(objects, 3, hostile)
        error = _refused(opener, objects, cache, CorruptData, message)
        assert "delta" in str(error)


def _hostile_checkpoint(
    opener: Callable[..., Engine],
    objects: ObjectStore,
    tmp_path: Path,
    *statements: tuple[str, tuple[Any, ...]],
) -> None:
    """Publish version 4 naming a checkpoint: version 3's catalog changed by ``statements``."""
    handle = opener()
    catalog = tmp_path / "hostile.sqlite"
    catalog_state.copy_catalog(handle.path / "catalog.sqlite", catalog)
    handle.close()
    with sqlite3.connect(catalog) as conn:
        for sql, args in statements:
            conn.execute(sql, args)
    conn.close()
    data = catalog.read_bytes()
    ref = _upload(objects, f"catalog/{hashlib.sha256(data).hexdigest()}.sqlite", data)
    body = _body(objects, 3)
    body.update(version=4, parent=3, checkpoint=ref, deltas=[], commit_id=manifest.new_id())
    _put_version(objects, 4, body)


def test_a_checkpoint_that_is_not_a_catalog_is_corrupt_data(
    opener: Callable[..., Engine], objects: ObjectStore, cache: Path
) -> None:
    body = _body(objects, 3)
    body["deltas"] = []
    faiss = next(n for n in objects.list("segments/") if n.endswith(".faiss"))
    for data in (objects.read(faiss), b"SQLite format 3\x00" + b"\x00" * 200):
        body["checkpoint"] = _upload(objects, f"catalog/{hashlib.sha256(data).hexdigest()}.sqlite", data)
        _put_version(objects, 3, body)
        _refused(opener, objects, cache, CorruptData, "not a readable store catalog")


def test_a_catalog_naming_a_segment_outside_the_store_reaches_nothing(
    opener: Callable[..., Engine], objects: ObjectStore, cache: Path, tmp_path: Path
) -> None:
    _hostile_checkpoint(
        opener, objects, tmp_path, ("UPDATE segments SET name = '../../../../escape' WHERE seq = 1", ())
    )
    _refused(opener, objects, cache, (UnsafePath, CorruptData), "escape")
    assert not list(tmp_path.parent.rglob("escape*")), "nothing written outside the workspace"


def test_a_catalog_with_a_malformed_index_snapshot_is_corrupt_data(
    opener: Callable[..., Engine], objects: ObjectStore, cache: Path, tmp_path: Path
) -> None:
    _hostile_checkpoint(
        opener,
        objects,
        tmp_path,
        ("INSERT OR REPLACE INTO meta VALUES ('index_snapshot', ?)", ("{not json",)),
    )
    _refused(opener, objects, cache, CorruptData, "index")


def test_a_catalog_naming_a_snapshot_outside_the_store_is_corrupt_data(
    opener: Callable[..., Engine], objects: ObjectStore, cache: Path, tmp_path: Path
) -> None:
    value = json.dumps({"file": "../../escape.faiss", "bytes": 10, "sha256": "0" * 64})
    _hostile_checkpoint(
        opener, objects, tmp_path, ("INSERT OR REPLACE INTO meta VALUES ('index_snapshot', ?)", (value,))
    )
    _refused(opener, objects, cache, CorruptData, "not an object of this store")


# -- _latest --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hint",
    [b"garbage", b"", b"-3", b"3abc", b" 1\n", b"0", b"99999999999999999999", b"9" * 40, b"\xff\x00", b"2"],
)
def test_a_damaged_latest_hint_is_ignored_and_the_newest_version_opens(
    opener: Callable[..., Engine], objects: ObjectStore, hint: bytes
) -> None:
    objects.put("_latest", hint)
    before = snapshot(objects)
    handle = opener()
    assert handle.version == 3
    assert exact(handle.get([r.id for r in RECORDS])) == exact(RECORDS[:9])
    assert snapshot(objects) == before, "opening never rewrites the hint"


def test_a_missing_latest_hint_costs_a_listing(opener: Callable[..., Engine], objects: ObjectStore) -> None:
    objects.delete("_latest")
    handle = opener()
    assert handle.version == 3
    assert handle._versions is not None
    assert handle._versions.objects.requests["LIST"] == 1


# -- videos -------------------------------------------------------------------------------------------


def _video_of(handle: Engine, record_id: str) -> str:
    return f"segments/{handle.locate([record_id])[record_id].segment.rsplit('/', 1)[-1]}"


@pytest.mark.parametrize("target", ["memory", "s3"], indirect=True)
def test_a_missing_segment_video_is_segment_not_found_and_verify_reports_it(
    opener: Callable[..., Engine], objects: ObjectStore
) -> None:
    handle = opener()
    video = _video_of(handle, "r1")
    handle.close()
    objects.delete(video)
    before = snapshot(objects)
    reader = opener()  # opening reads no video
    name = video.split("/")[-1]
    with pytest.raises(SegmentNotFound, match=f"{name} is missing"):
        reader.get(["r1"])
    assert exact(reader.get(["r7"])) == exact([RECORDS[7]]), "the other segment still reads"
    report = reader.verify()
    assert not report.ok
    assert any(name in p.file for p in report.problems), report.problems
    assert snapshot(objects) == before


@pytest.mark.parametrize("target", ["memory", "s3"], indirect=True)
@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_a_damaged_segment_video_is_corrupt_data_and_verify_reports_it(
    opener: Callable[..., Engine], objects: ObjectStore, damage: str
) -> None:
    handle = opener()
    video = _video_of(handle, "r1")
    handle.close()
    data = objects.read(video)
    bad = {"truncated": data[:100], "empty": b"", "garbage": bytes(b ^ 0x5A for b in data)}[damage]
    objects.put(video, bad)
    before = snapshot(objects)
    reader = opener()
    with pytest.raises(CorruptData):  # ChecksumMismatch (a CRC) is CorruptData too
        reader.get(["r1"])
    with pytest.raises(CorruptData):
        reader.search(np.ones(DIM, np.float32), 10)
    report = reader.verify()
    assert not report.ok
    name = video.split("/")[-1]
    assert any(name in p.file for p in report.problems), report.problems
    assert snapshot(objects) == before


# -- a store whose versions are gone -------------------------------------------------------------------


def _without_versions(objects: ObjectStore) -> dict[str, bytes]:
    for name in objects.list("_versions/"):
        objects.delete(name)
    return snapshot(objects)


@pytest.mark.parametrize("target", ["memory", "s3"], indirect=True)
def test_a_store_whose_versions_are_gone_is_not_found_for_read_only_and_create_false_opens(
    opener: Callable[..., Engine], objects: ObjectStore, cache: Path
) -> None:
    before = _without_versions(objects)
    assert any(n.startswith("segments/") for n in before)
    for kwargs in ({"create": False}, {"version": 1}, {"version": 3}, {"as_of": 4e9}):
        with pytest.raises(StoreNotFound):
            opener(**kwargs)
        assert snapshot(objects) == before
    _no_workspace_left(cache)


@pytest.mark.parametrize("target", ["memory", "s3"], indirect=True)
def test_a_store_whose_versions_are_gone_is_refused_not_recreated(
    opener: Callable[..., Engine], objects: ObjectStore
) -> None:
    before = _without_versions(objects)
    try:
        with pytest.raises(MemvidError, match="_versions"):
            opener()
    finally:
        assert snapshot(objects) == before
