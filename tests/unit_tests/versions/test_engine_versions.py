"""The versioned engine (format 3, docs/format.md section 11) on memory:// and on S3 (moto).

What a user of a store in a bucket relies on: every commit is a version that stays readable
byte for byte (texts, metadata, search results) until cleanup removes it; ``as_of`` finds the
right one; readers see writers' commits after ``refresh()`` (or by themselves with
``refresh_interval=0``); two writers take turns, and the one that loses a race gets
``CommitConflict`` with nothing of its write visible; cleanup removes exactly what no kept
version names, sparing young objects; and the request counts section 11.6 promises.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

from langchain_memvid.engine import Engine, Record
from langchain_memvid.engine.errors import (
    CommitConflict,
    InvalidArgument,
    ReadOnlyStore,
    SegmentNotFound,
    StoreNotFound,
)
from langchain_memvid.engine.storage.objects import ObjectStore
from langchain_memvid.engine.versions import manifest
from tests.s3_server import BUCKET, MotoS3, S3Target, describe

pytest_plugins = ["tests.s3_server"]  # the moto_server and s3_bucket fixtures

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])  # moto only

DIM = 8
BACKENDS = ["memory", "s3"]


class Target(NamedTuple):
    """A store root and the storage options that reach it."""

    url: str
    options: dict[str, Any] | None


# -- helpers (imported by the other modules of this folder) ---------------------------------------


def vector(text: str) -> np.ndarray:
    """A dim-8 float32 vector seeded from the SHA-256 of the text."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def add(engine: Engine, records: list[Record]) -> list[str]:
    """``engine.add`` with each record's text's vector."""
    return engine.add(records, np.stack([vector(r.text) for r in records]))


def snapshot(objects: ObjectStore) -> dict[str, bytes]:
    """Every object below the root with its bytes."""
    return {name: objects.read(name) for name in objects.list("")}


def exact(records: list[Record]) -> list[tuple[str, bytes, str]]:
    """Records as (id, text's UTF-8, metadata as sorted JSON): equal means byte-exact."""
    return [(r.id, r.text.encode(), json.dumps(r.metadata, sort_keys=True)) for r in records]


QUERIES = ["text 3", "a query about foxes", "überall", "record 31"]


def hits(engine: Engine, k: int) -> list[list[tuple[str, float]]]:
    """(id, score) of the k nearest records to each of QUERIES."""
    return [[(h.record.id, h.score) for h in engine.search(vector(q), k)] for q in QUERIES]


def assert_same_hits(got: list[list[tuple[str, float]]], want: list[list[tuple[str, float]]]) -> None:
    assert [[i for i, _ in row] for row in got] == [[i for i, _ in row] for row in want]
    for row_got, row_want in zip(got, want, strict=True):
        np.testing.assert_allclose([s for _, s in row_got], [s for _, s in row_want], atol=1e-5)


def reference(folder: Path, records: dict[str, Record]) -> Engine:
    """A plain folder store holding ``records`` with the same vectors."""
    engine = Engine(folder, dim=DIM, vector_encoding="float32")
    if records:
        add(engine, list(records.values()))
    return engine


def assert_serves(engine: Engine, model: dict[str, Record], every_id: list[str], ref_folder: Path) -> None:
    """``engine`` holds exactly ``model``: records byte-exact, len, ids, and search as a folder store."""
    assert len(engine) == len(model)
    got = engine.get(every_id)
    assert exact(got) == exact([model[i] for i in every_id if i in model])
    assert sorted(engine.ids()) == sorted(model)
    with reference(ref_folder, model) as ref:
        k = len(model) + 3
        assert_same_hits(hits(engine, k), hits(ref, k))


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("LCMEMVID_CACHE", str(cache))
    return cache


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "s3":
        s3: S3Target = request.getfixturevalue("s3_bucket")
        return Target(s3.url, s3.storage_options)
    if request.param == "file":  # a local folder through file://: os.link as create-if-absent
        folder: Path = request.getfixturevalue("tmp_path") / "bucket"
        return Target(f"file://{folder}/store", None)
    return Target(f"memory://{uuid.uuid4().hex}/store", None)


@pytest.fixture
def opener(target: Target) -> Iterator[Callable[..., Engine]]:
    """``opener(**kwargs)``: an Engine on the target (closed at teardown)."""
    opened: list[Engine] = []

    def factory(url: str | None = None, **kwargs: Any) -> Engine:
        engine = Engine(url or target.url, storage_options=target.options, **kwargs)
        opened.append(engine)
        return engine

    yield factory
    for engine in opened:
        with contextlib.suppress(Exception):
            engine.close()


@pytest.fixture
def objects(target: Target) -> ObjectStore:
    return ObjectStore(target.url, target.options)


class History(NamedTuple):
    writer: Engine
    states: dict[int, dict[str, Record]]  # version -> the records it holds
    every_id: list[str]


def _texts(i: int) -> str:
    return f"record {i}: " + "überall ñ 字 " * (i % 3) + f"text {i}" + "\n\t" * (i % 2)


def build_history(opener: Callable[..., Engine], *, pause: float = 0.0) -> History:
    """add, delete, upsert, compact, add: the records of every version, checked as they are made."""
    writer = opener(dim=DIM, vector_encoding="float32", segment_records=5)
    states: dict[int, dict[str, Record]] = {}
    model: dict[str, Record] = {}

    def step(expected_version: int) -> None:
        assert writer.version == expected_version
        assert exact(sorted(writer.iter_records(), key=lambda r: r.id)) == exact(
            sorted(model.values(), key=lambda r: r.id)
        )
        states[expected_version] = dict(model)
        if pause:
            time.sleep(pause)

    step(1)  # the store's creation
    first = [
        Record(f"r{i}", _texts(i), {"i": i, "nested": {"l": [i, None, True]}, "f": i / 3}) for i in range(12)
    ]
    add(writer, first)
    model.update({r.id: r for r in first})
    step(2)
    assert writer.delete(["r3", "r5", "no-such-id"]) == 2
    del model["r3"], model["r5"]
    step(3)
    upsert = [Record("r1", "replaced: a query about foxes", {"i": "one"}), Record("r20", "new twenty")]
    add(writer, upsert)
    model.update({r.id: r for r in upsert})
    step(4)
    writer.compact()
    step(5)
    last = [Record(f"r{i}", _texts(i), {"late": True}) for i in range(30, 34)]
    add(writer, last)
    model.update({r.id: r for r in last})
    step(6)
    every = sorted({i for state in states.values() for i in state} | {"r3", "r5"})
    return History(writer, states, every)


# -- time travel -----------------------------------------------------------------------------------


def check_time_travel(history: History, opener: Callable[..., Engine], tmp_path: Path) -> None:
    """Every version of ``history`` opened with version=N serves exactly its records."""
    for number, model in history.states.items():
        old = opener(version=number)
        assert old.version == number
        assert old.read_only
        if not model:
            assert len(old) == 0
            assert old.get(history.every_id) == []
            continue
        assert_serves(old, model, history.every_id, tmp_path / f"ref{number}")
        if number in (3, 5):
            report = old.verify()
            assert report.ok, report.problems


@pytest.mark.parametrize("target", ["memory", "s3", "file"], indirect=True)
def test_every_version_reads_back_exactly_as_it_was_written(
    opener: Callable[..., Engine], objects: ObjectStore, tmp_path: Path
) -> None:
    history = build_history(opener)
    assert [v["version"] for v in history.writer.versions()] == [1, 2, 3, 4, 5, 6]
    assert [v["operation"] for v in history.writer.versions()] == [
        "create",
        "add",
        "delete",
        "add",
        "compact",
        "add",
    ]
    check_time_travel(history, opener, tmp_path)
    # The newest, opened afresh (videos read remotely, not held by this handle), and the writer.
    fresh = opener()
    assert fresh.version == 6
    assert not fresh.read_only
    assert_serves(fresh, history.states[6], history.every_id, tmp_path / "ref-newest")
    for engine in (fresh, history.writer):
        report = engine.verify()
        assert report.ok, report.problems

    # as_of: the newest version created at or before the time.
    created = {v["version"]: v["created"] for v in history.writer.versions()}
    numbers = sorted(created)
    for n in numbers:
        assert opener(as_of=created[n]).version == n
    for older, newer in itertools.pairwise(numbers):
        assert created[older] < created[newer]
        handle = opener(as_of=(created[older] + created[newer]) / 2)
        assert handle.version == older
        assert handle.read_only
        assert sorted(handle.ids()) == sorted(history.states[older])
    assert opener(as_of=time.time() + 3600).version == 6
    with pytest.raises(StoreNotFound, match="no version as old as"):
        opener(as_of=created[1] - 10)

    # An old version refuses writes, and the store stays as it was.
    old = opener(version=3)
    before = snapshot(objects)
    with pytest.raises(ReadOnlyStore, match="version 3"):
        add(old, [Record("x", "x")])
    with pytest.raises(ReadOnlyStore):
        old.delete(["r1"])
    with pytest.raises(ReadOnlyStore):
        old.compact()
    assert snapshot(objects) == before
    assert sorted(old.ids()) == sorted(history.states[3])
    assert old.refresh() == 3, "a time-travel handle stays put"


def test_time_travel_across_new_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_memvid.engine.versions import workspace

    monkeypatch.setattr(workspace, "CHAIN_LENGTH", 2)  # a new checkpoint every third commit
    url = f"memory://{uuid.uuid4().hex}/store"
    opened: list[Engine] = []

    def opener(**kwargs: Any) -> Engine:
        opened.append(Engine(url, **kwargs))
        return opened[-1]

    try:
        history = build_history(opener)
        objects = ObjectStore(url)
        bodies = [json.loads(objects.read(manifest.version_name(n))) for n in range(1, 7)]
        assert [len(b["deltas"]) for b in bodies] == [0, 1, 2, 0, 1, 2]
        assert bodies[3]["checkpoint"] != bodies[0]["checkpoint"]
        check_time_travel(history, opener, tmp_path)
        assert_serves(opener(), history.states[6], history.every_id, tmp_path / "ref-newest")
    finally:
        for engine in opened:
            with contextlib.suppress(Exception):
                engine.close()


def test_versions_that_do_not_exist_are_refused_clearly(opener: Callable[..., Engine]) -> None:
    add(opener(dim=DIM), [Record("a", "a")])
    for number in (3, 10**30):
        with pytest.raises(StoreNotFound, match=f"no version {number}"):
            opener(version=number)
    for bad in (0, -1, True, "3", 2.0):
        with pytest.raises(InvalidArgument):
            opener(version=bad)
    with pytest.raises(InvalidArgument, match="not both"):
        opener(version=2, as_of=time.time())


def test_a_url_without_a_store_is_not_created_by_a_read_only_open(
    opener: Callable[..., Engine], objects: ObjectStore
) -> None:
    for kwargs in ({"version": 1}, {"as_of": time.time()}, {"create": False}):
        with pytest.raises(StoreNotFound):
            opener(**kwargs)
    assert objects.list("") == []


# -- readers and writers -----------------------------------------------------------------------------


def test_a_reader_sees_a_writers_commit_after_refresh_and_by_itself_with_interval_zero(
    opener: Callable[..., Engine], tmp_path: Path
) -> None:
    writer = opener(dim=DIM, vector_encoding="float32")
    model = {r.id: r for r in [Record(f"w{i}", f"writer text {i}", {"i": i}) for i in range(6)]}
    add(writer, list(model.values()))
    lazy = opener(refresh_interval=3600)
    eager = opener(refresh_interval=0)
    assert lazy.version == eager.version == 2

    late = Record("late", "a late record", {"late": True})
    add(writer, [late])
    assert lazy.get(["late"]) == []
    assert len(lazy) == 6
    assert lazy.version == 2
    # Without refresh(): the next search takes in version 3.
    assert eager.search(vector(late.text), 1)[0].record == late
    assert eager.version == 3
    assert lazy.refresh() == 3
    assert exact(lazy.get(["late"])) == exact([late])
    model["late"] = late

    writer.delete(["w2"])
    del model["w2"]
    assert eager.get(["w2"]) == []
    writer.compact()
    every = [*sorted(model), "w2"]
    assert_serves(eager, model, every, tmp_path / "ref-eager")
    assert lazy.refresh() == writer.version == 5
    assert_serves(lazy, model, every, tmp_path / "ref-lazy")


def test_two_handles_writing_alternately_both_succeed(opener: Callable[..., Engine], tmp_path: Path) -> None:
    a = opener(dim=DIM, vector_encoding="float32")
    b = opener()
    add(a, [Record("a1", "from a"), Record("a2", "from a, two")])
    add(b, [Record("b1", "from b")])
    assert a.delete(["b1"]) == 1, "a catches up before it writes, so it sees b1"
    add(b, [Record("a1", "a1 replaced by b", {"by": "b"})])
    assert a.compact()["records"] == 2
    add(b, [Record("b2", "b again")])
    model = {
        "a1": Record("a1", "a1 replaced by b", {"by": "b"}),
        "a2": Record("a2", "from a, two"),
        "b2": Record("b2", "b again"),
    }
    assert a.refresh() == b.version == 7
    ops = [v["operation"] for v in a.versions()]
    assert ops == ["create", "add", "add", "delete", "add", "compact", "add"]
    every = [*sorted(model), "b1"]
    for n, handle in enumerate((a, b, opener())):
        assert_serves(handle, model, every, tmp_path / f"ref{n}")


def _race(
    monkeypatch: pytest.MonkeyPatch, loser: Engine, before_create: Callable[[], None]
) -> list[manifest.Version]:
    """Run ``before_create`` once, right before ``loser`` creates its next version object."""
    workspace = loser._versions
    assert workspace is not None
    original = workspace._create_version
    seen: list[manifest.Version] = []

    def create(version: manifest.Version) -> bool:
        if not seen:
            seen.append(version)
            before_create()
        return original(version)

    monkeypatch.setattr(workspace, "_create_version", create)
    return seen


@pytest.mark.parametrize("target", ["memory", "s3", "file"], indirect=True)
@pytest.mark.parametrize("operation", ["add", "delete", "compact"])
def test_a_writer_that_loses_the_race_gets_commit_conflict_and_serves_the_newest_version(
    opener: Callable[..., Engine],
    objects: ObjectStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    operation: str,
) -> None:
    a = opener(dim=DIM, vector_encoding="float32", segment_records=2)
    base = [Record(f"s{i}", f"shared {i}") for i in range(5)]
    add(a, base)
    b = opener(segment_records=2)
    add(b, [Record("b-own", "b wrote this before the race")])  # b holds this segment's video
    model = {r.id: r for r in base} | {"b-own": Record("b-own", "b wrote this before the race")}
    every = [*sorted(model), "a-won", "b-lost"]
    write: Callable[[], object] = {
        "add": lambda: add(b, [Record("b-lost", "b lost the race"), Record("s1", "b's upsert of s1")]),
        "delete": lambda: b.delete(["s2", "b-own"]),
        "compact": b.compact,
    }[operation]

    # b catches up, commits locally and uploads; a publishes version 4 just before b creates it.
    seen = _race(monkeypatch, b, lambda: add(a, [Record("a-won", "a won the race")]))
    listed_before = set(objects.list(""))
    with pytest.raises(CommitConflict, match="version 4"):
        write()
    monkeypatch.undo()
    assert [v.number for v in seen] == [4]
    assert a.version == 4
    model["a-won"] = Record("a-won", "a won the race")
    assert b.version == 4
    assert [v["version"] for v in b.versions()] == [1, 2, 3, 4]
    assert_serves(b, model, every, tmp_path / "ref-b")
    assert_serves(opener(), model, every, tmp_path / "ref-fresh")
    if operation == "compact":
        assert b.catalog.segments() == a.catalog.segments(), "b's compaction is not in b's catalog"
    # b's uploads stay behind, named by no version: garbage for cleanup.
    leftovers = set(objects.list("")) - listed_before - _reachable(objects, opener, [4]) - {"_latest"}
    assert leftovers, "b uploaded before it lost"
    assert all(n.startswith(("segments/", "catalog/")) for n in leftovers), leftovers
    report = b.verify()
    assert report.ok, report.problems

    # The retry goes on top of the new head.
    write()
    assert b.version == 5
    if operation == "add":
        model |= {"b-lost": Record("b-lost", "b lost the race"), "s1": Record("s1", "b's upsert of s1")}
    elif operation == "delete":
        del model["s2"], model["b-own"]
    assert_serves(opener(), model, every, tmp_path / "ref-retry")
    assert_serves(b, model, every, tmp_path / "ref-retry-b")


@pytest.mark.parametrize("target", ["memory", "s3"], indirect=True)
def test_a_commit_whose_upload_fails_leaves_nothing_visible(
    opener: Callable[..., Engine], objects: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_memvid.engine.storage.objects import ObjectStoreIOError

    writer = opener(dim=DIM, vector_encoding="float32")
    model = {r.id: r for r in [Record(f"u{i}", f"upload {i}") for i in range(4)]}
    add(writer, list(model.values()))
    assert writer._versions is not None
    store = writer._versions.objects
    original = store.put_file
    calls: list[str] = []

    def flaky(name: str, local: Any) -> None:
        calls.append(name)
        if len(calls) == 2:  # the second upload of the commit fails
            raise ObjectStoreIOError(f"simulated network failure writing {name}")
        original(name, local)

    monkeypatch.setattr(store, "put_file", flaky)
    versions_before = objects.list("_versions/")
    with pytest.raises(ObjectStoreIOError, match="simulated"):
        add(writer, [Record("lost", "never published")])
    monkeypatch.undo()
    assert objects.list("_versions/") == versions_before
    assert writer.version == 2
    every = [*sorted(model), "lost"]
    assert_serves(writer, model, every, tmp_path / "ref-writer")
    assert_serves(opener(), model, every, tmp_path / "ref-fresh")
    add(writer, [Record("lost", "published on the retry")])
    model["lost"] = Record("lost", "published on the retry")
    assert writer.version == 3
    assert_serves(opener(), model, every, tmp_path / "ref-retry")


@pytest.mark.parametrize("target", ["memory", "s3"], indirect=True)
def test_a_cleanup_during_a_commit_spares_its_uploads_by_default(
    opener: Callable[..., Engine], objects: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cleaner = opener(dim=DIM, vector_encoding="float32")
    add(cleaner, [Record("c0", "clean 0")])
    writer = opener()
    results: list[dict[str, Any]] = []
    _race(monkeypatch, writer, lambda: results.append(cleaner.cleanup(keep_last=1, older_than=0)))
    add(writer, [Record("w0", "written while a cleanup ran")])
    monkeypatch.undo()
    assert results[0]["versions_removed"] == [1]
    assert results[0]["objects_removed"] == 0
    model = {"c0": Record("c0", "clean 0"), "w0": Record("w0", "written while a cleanup ran")}
    fresh = opener()
    assert fresh.version == 3
    assert_serves(fresh, model, sorted(model), tmp_path / "ref")
    assert fresh.verify().ok


# -- cleanup ---------------------------------------------------------------------------------------------


def _reachable(objects: ObjectStore, opener: Callable[..., Engine], numbers: list[int]) -> set[str]:
    """Every object the versions ``numbers`` name: version objects, catalog objects, segment files."""
    out = set()
    for n in numbers:
        name = manifest.version_name(n)
        body = json.loads(objects.read(name))
        out.add(name)
        out.add(body["checkpoint"]["name"])
        out.update(d["name"] for d in body["deltas"])
        handle = opener(version=n)
        for seg in handle.catalog.segments():
            out.update({f"segments/{seg.video_file}", f"segments/{seg.index_file}"})
        handle.close()
    return out


def test_cleanup_keeps_the_last_versions_and_removes_exactly_what_no_kept_version_names(
    opener: Callable[..., Engine], objects: ObjectStore, tmp_path: Path
) -> None:
    history = build_history(opener)
    stale_reader = opener(version=3)
    kept = _reachable(objects, opener, [5, 6])
    before = snapshot(objects)
    result = history.writer.cleanup(keep_last=2, older_than=0, grace=0)
    assert result["versions_removed"] == [1, 2, 3, 4]
    assert result["versions_kept"] == [5, 6]
    after = snapshot(objects)
    assert set(after) == kept | {"_latest"}
    assert all(after[name] == before[name] for name in after), "cleanup changes no object it keeps"
    removed = set(before) - set(after) - {manifest.version_name(n) for n in (1, 2, 3, 4)}
    assert result["objects_removed"] == len(removed) > 0
    assert result["bytes_removed"] == sum(len(before[n]) for n in removed)
    for n in (5, 6):
        assert_serves(opener(version=n), history.states[n], history.every_id, tmp_path / f"ref{n}")
    for n in (1, 3, 4):
        with pytest.raises(StoreNotFound, match="removed by cleanup"):
            opener(version=n)
    # A reader still on a removed version gets a clear error for what is gone.
    gone = [i for i in history.states[3] if i not in history.states[6] or i == "r1"]
    with pytest.raises(SegmentNotFound, match="removed by cleanup"):
        stale_reader.get(gone)
    # The store goes on.
    add(history.writer, [Record("after", "after cleanup")])
    assert history.writer.version == 7
    assert opener().verify().ok


def test_cleanup_defaults_remove_nothing_young_and_arguments_are_checked(
    opener: Callable[..., Engine], objects: ObjectStore, tmp_path: Path
) -> None:
    writer = opener(dim=DIM, vector_encoding="float32")
    add(writer, [Record(f"d{i}", f"defaults {i}") for i in range(4)])
    writer.delete(["d1"])
    writer.compact()
    add(writer, [Record("d9", "defaults 9")])
    before = snapshot(objects)
    for kwargs in ({"keep_last": 0}, {"keep_last": True}, {"older_than": -1}, {"grace": -5}):
        with pytest.raises(InvalidArgument):
            writer.cleanup(**kwargs)
    result = writer.cleanup()
    assert result["versions_removed"] == []
    assert result["objects_removed"] == 0
    assert snapshot(objects) == before
    # keep_last=1 with older_than=0 removes versions, but the grace (at least an hour) spares
    # every object: all are young.
    result = writer.cleanup(keep_last=1, older_than=0)
    assert result["versions_removed"] == [1, 2, 3, 4]
    assert result["objects_removed"] == 0
    after = snapshot(objects)
    assert set(before) - set(after) == {manifest.version_name(n) for n in range(1, 5)}
    assert all(after[name] == before[name] for name in after)
    with Engine(tmp_path / "folder", dim=DIM) as folder, pytest.raises(InvalidArgument, match="format-1/2"):
        folder.cleanup()


def test_cleanup_older_than_and_grace(
    opener: Callable[..., Engine], objects: ObjectStore, target: Target, tmp_path: Path
) -> None:
    # S3 keeps modification times in whole seconds: its objects need longer to age.
    gap, grace = (1.2, 1.5) if target.url.startswith("s3://") else (0.3, 0.3)
    writer = opener(dim=DIM, vector_encoding="float32")
    add(writer, [Record(f"g{i}", f"grace {i}") for i in range(4)])  # 2
    writer.delete(["g0"])  # 3
    time.sleep(gap)
    writer.compact()  # 4: the segments of 2 and 3 are named by no later version
    add(writer, [Record("g9", "grace 9")])  # 5
    created = {v["version"]: v["created"] for v in writer.versions()}
    cutoff = (created[3] + created[4]) / 2
    before = snapshot(objects)
    result = writer.cleanup(keep_last=1, older_than=time.time() - cutoff, grace=3600)
    assert result["versions_removed"] == [1, 2, 3]
    assert result["versions_kept"] == [4, 5]
    assert result["objects_removed"] == 0, "every object is younger than the grace period"
    after = snapshot(objects)
    assert set(before) - set(after) == {manifest.version_name(n) for n in (1, 2, 3)}

    time.sleep(grace + 0.7)  # every object is now older than the grace period
    stray = "segments/00000099-0123abcd.mov"
    objects.put(stray, b"a young upload no version names yet")
    reachable = _reachable(objects, opener, [5])
    result = writer.cleanup(keep_last=1, older_than=0, grace=grace)
    assert result["versions_removed"] == [4]
    after = snapshot(objects)
    assert stray in after, "grace protects a young unreferenced object"
    assert set(after) == reachable | {stray, "_latest"}
    assert result["objects_removed"] > 0
    model = {r.id: r for r in [Record(f"g{i}", f"grace {i}") for i in range(1, 4)]} | {
        "g9": Record("g9", "grace 9")
    }
    assert_serves(opener(version=5), model, [*sorted(model), "g0"], tmp_path / "ref")


# -- request counts ------------------------------------------------------------------------------------


def _http(moto: MotoS3) -> list[tuple[str, str]]:
    """(method, object name) of the S3 requests recorded, names relative to the store root."""
    lead = f"/{BUCKET}/store"
    out = []
    for r in moto.requests:
        path = r.path
        name = path[len(lead) :].lstrip("/") if path.startswith(lead) else path
        out.append((r.method + (" range" if r.range else ""), name))
    return out


def test_opening_with_a_warm_cache_costs_three_gets_whatever_the_segments(
    target: Target, request: pytest.FixtureRequest
) -> None:
    moto: MotoS3 | None = request.getfixturevalue("moto_server") if target.options else None
    counts = {}
    for segments, per in ((1, 40), (5, 4), (20, 1)):
        url = f"{target.url}-{segments}"
        with Engine(url, storage_options=target.options, dim=DIM, segment_records=per) as writer:
            add(writer, [Record(f"r{i}", f"text {i}") for i in range(segments * per if per < 40 else 20)])
            assert len(writer.catalog.segments()) == segments
        with Engine(url, storage_options=target.options):
            pass  # warms the cache
        if moto is not None:
            moto.reset_log()
        with Engine(url, storage_options=target.options, refresh_interval=3600) as reader:
            assert reader._versions is not None
            counted = reader._versions.objects.requests
            assert len(reader) > 0
        wire = sorted(m for m, _ in _http(moto)) if moto is not None else None
        counts[segments] = (counted, wire)
    assert counts[1] == counts[5] == counts[20], counts
    counted, wire = counts[20]
    # _latest (a ranged GET of its first bytes), the head, and the miss of the next one
    assert counted == {"GET": 2, "GET_RANGE": 1, "HEAD": 0, "LIST": 0, "PUT": 0, "DELETE": 0}
    if wire is not None:
        assert wire == ["GET", "GET", "GET range"], wire


def test_reading_one_record_is_one_ranged_get(
    opener: Callable[..., Engine], target: Target, request: pytest.FixtureRequest
) -> None:
    moto: MotoS3 | None = request.getfixturevalue("moto_server") if target.options else None
    writer = opener(dim=DIM, segment_records=5)
    records = [Record(f"r{i}", f"short text {i}", {"i": i}) for i in range(20)]
    add(writer, records)
    assert all(seg.dict_frames == 0 for seg in writer.catalog.segments())
    reader = opener(refresh_interval=3600)
    assert reader._versions is not None
    for i in (0, 7, 13, 19):
        reader._versions.objects.reset_requests()
        if moto is not None:
            moto.reset_log()
        assert exact(reader.get([f"r{i}"])) == exact([records[i]])
        assert reader._versions.objects.requests["GET_RANGE"] == 1
        assert sum(reader._versions.objects.requests.values()) == 1
        if moto is not None:
            wire = moto.requests
            assert len(wire) == 1, describe(wire)
            assert wire[0].method == "GET"
            assert wire[0].range is not None
            assert wire[0].range.startswith("bytes=")


def test_a_segment_with_a_dictionary_costs_one_more_ranged_get_the_first_time(
    opener: Callable[..., Engine],
) -> None:
    writer = opener(dim=DIM)
    records = [Record(f"r{i}", f"the quick brown fox {i} jumps over the lazy dog " * 20) for i in range(300)]
    add(writer, records)
    assert any(seg.dict_frames for seg in writer.catalog.segments())
    reader = opener(refresh_interval=3600)
    assert reader._versions is not None
    counts = []
    for i in (7, 150, 299):
        reader._versions.objects.reset_requests()
        assert exact(reader.get([f"r{i}"])) == exact([records[i]])
        counts.append(reader._versions.objects.requests["GET_RANGE"])
    assert counts[0] == 2
    assert all(c <= 1 for c in counts[1:]), counts


def test_an_add_uploads_only_new_objects_each_once_and_rewrites_nothing(
    opener: Callable[..., Engine], objects: ObjectStore, target: Target, request: pytest.FixtureRequest
) -> None:
    moto: MotoS3 | None = request.getfixturevalue("moto_server") if target.options else None
    writer = opener(dim=DIM, segment_records=3, refresh_interval=3600)
    add(writer, [Record(f"r{i}", f"first {i}") for i in range(5)])
    writer.delete(["r1"])
    before = snapshot(objects)
    assert writer._versions is not None
    writer._versions.objects.reset_requests()
    if moto is not None:
        moto.reset_log()
    add(writer, [Record(f"n{i}", f"new {i}") for i in range(5)])  # two segments
    after = snapshot(objects)
    new = set(after) - set(before)
    assert all(after[n] == before[n] for n in before if n != "_latest"), "no earlier object rewritten"
    assert after["_latest"] == b"4"
    segs = {n for n in new if n.startswith("segments/")}
    assert len(segs) == 4, new
    assert {n for n in new if n.startswith("catalog/")} == {n for n in new if n.startswith("catalog/delta-")}
    assert len(new) == 4 + 1 + 1, "two segments' files, a delta and the version object"
    assert manifest.version_name(4) in new
    counted = writer._versions.objects.requests
    assert counted["PUT"] == len(new) + 1, counted  # + the _latest hint
    assert counted["DELETE"] == 0
    if moto is not None:
        puts = [name for method, name in _http(moto) if method == "PUT"]
        assert sorted(puts) == sorted([*new, "_latest"]), describe(moto.requests)
        conditional = [r for r in moto.requests if r.method == "PUT" and r.if_none_match == "*"]
        assert [r.path.rsplit("/", 1)[-1] for r in conditional] == [manifest.version_name(4).split("/")[-1]]


@pytest.mark.parametrize("target", ["memory", "s3"], indirect=True)
def test_two_handles_racing_in_threads_lose_nothing_that_succeeded(
    opener: Callable[..., Engine], tmp_path: Path
) -> None:
    import threading

    first = opener(dim=DIM, vector_encoding="float32")
    handles = [first, opener()]
    won: dict[str, Record] = {}
    lost: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(handles))

    def writer(n: int, engine: Engine) -> None:
        start.wait()
        for i in range(6):
            record = Record(f"t{n}-{i}", f"thread {n} write {i}", {"n": n, "i": i})
            try:
                add(engine, [record])
            except CommitConflict:
                lost.append(record.id)
            except BaseException as e:  # anything else is a failure of the test
                errors.append(e)
                return
            else:
                won[record.id] = record

    threads = [threading.Thread(target=writer, args=(n, h)) for n, h in enumerate(handles)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(won) + len(lost) == 12
    every = sorted(won) + lost
    fresh = opener()
    assert fresh.version == 1 + len(won), "one version per successful write, none for a lost one"
    assert_serves(fresh, won, every, tmp_path / "ref-fresh")
    for n, engine in enumerate(handles):
        engine.refresh()
        assert_serves(engine, won, every, tmp_path / f"ref{n}")
