"""ObjectCache (engine/storage/cache.py): a checked, bounded, shared local cache of store objects.

What a reader of a store in a bucket relies on: a file is downloaded once (also by two processes
at the same moment), it is never handed out unless its size and SHA-256 are the manifest's, the
folder stays within its bound, a file some process is using is never removed from under it, and
what a killed process leaves behind is ignored and cleaned up (docs/design/object-storage.md,
"The local cache").
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from langchain_memvid.engine.errors import ChecksumMismatch, InvalidArgument
from langchain_memvid.engine.storage.cache import ObjectCache, default_cache_dir
from langchain_memvid.engine.storage.objects import ObjectNotFound, ObjectStore
from tests.s3_server import S3Target

pytest_plugins = ["tests.s3_server"]  # the moto_server and s3_bucket fixtures

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])  # the S3 cases talk to moto on 127.0.0.1


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["memory", "local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "s3":
        target: S3Target = request.getfixturevalue("s3_bucket")
        yield ObjectStore(*target)
    elif request.param == "memory":
        root = f"memory://{uuid.uuid4().hex}"
        yield ObjectStore(root)
        fs = MemoryFileSystem()
        if fs.exists(root.removeprefix("memory:/")):
            fs.rm(root.removeprefix("memory:/"), recursive=True)
    else:
        yield ObjectStore(tmp_path / "bucket")


@pytest.fixture
def local_store(tmp_path: Path) -> ObjectStore:
    """A store several processes can reach (a folder)."""
    return ObjectStore(tmp_path / "bucket")


def cache_files(cache: ObjectCache, sub: str) -> list[str]:
    return sorted(p.name for p in (cache.folder / sub).rglob("*") if p.is_file())


def test_fetch_downloads_once_and_checks(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(10_000)
    store.put("segments/00000001-aa.faiss", data)
    with ObjectCache(tmp_path / "cache", chunk_bytes=4096) as cache:
        store.reset_requests()
        path = cache.fetch(store, "segments/00000001-aa.faiss", sha(data), len(data))
        assert path.read_bytes() == data
        assert path == cache.path_for(sha(data))
        # ceil((10,000 + 1) / 4,096): the last range asks one byte past the end, and gets none
        assert store.requests["GET_RANGE"] == 3
        assert sum(store.requests.values()) == 3
    # Another cache on the same folder (another process, later) finds it: no request at all.
    store.reset_requests()
    with ObjectCache(tmp_path / "cache") as again:
        assert again.fetch(store, "segments/00000001-aa.faiss", sha(data), len(data)) == path
    assert sum(store.requests.values()) == 0
    assert cache_files(again, "tmp") == []


def test_empty_object(store: ObjectStore, tmp_path: Path) -> None:
    store.put("empty", b"")
    with ObjectCache(tmp_path / "cache") as cache:
        assert cache.fetch(store, "empty", sha(b""), 0).read_bytes() == b""


def test_entries_are_shared_by_content(tmp_path: Path) -> None:
    data = os.urandom(5000)
    first, second = ObjectStore(tmp_path / "store-a"), ObjectStore(f"memory://{uuid.uuid4().hex}")
    first.put("segments/00000001-aa.faiss", data)
    second.put("index/00000007-bb.faiss", data)  # another store, another name, the same bytes
    second.reset_requests()
    with ObjectCache(tmp_path / "cache") as cache:
        a = cache.fetch(first, "segments/00000001-aa.faiss", sha(data), len(data))
        b = cache.fetch(second, "index/00000007-bb.faiss", sha(data), len(data))
    assert a == b
    assert sum(second.requests.values()) == 0
    assert cache.usage() == 5000
    second.delete("index/00000007-bb.faiss")


@pytest.mark.parametrize("told", ["sha", "smaller", "larger"])
def test_a_mismatch_is_never_cached(store: ObjectStore, tmp_path: Path, told: str) -> None:
    data = os.urandom(3000)
    store.put("segments/00000001-aa.faiss", data)
    key, size = sha(data), len(data)
    if told == "sha":
        key = sha(b"other bytes")
    elif told == "smaller":
        size -= 1
    else:
        size += 1
    with ObjectCache(tmp_path / "cache") as cache:
        with pytest.raises(ChecksumMismatch, match=r"segments/00000001-aa\.faiss.*Not cached"):
            cache.fetch(store, "segments/00000001-aa.faiss", key, size)
        assert cache_files(cache, "objects") == []
        assert cache_files(cache, "tmp") == []
        assert not cache.path_for(key).exists()
        # The right size and checksum still work afterwards.
        assert cache.fetch(store, "segments/00000001-aa.faiss", sha(data), len(data)).read_bytes() == data


def test_a_larger_object_is_not_downloaded_whole(local_store: ObjectStore, tmp_path: Path) -> None:
    local_store.put("big", b"x" * 100_000)  # a hostile store: the manifest says 10 bytes
    with ObjectCache(tmp_path / "cache", chunk_bytes=4096) as cache:
        local_store.reset_requests()
        with pytest.raises(ChecksumMismatch, match="more than 10"):
            cache.fetch(local_store, "big", sha(b"x" * 10), 10)
    assert local_store.requests["GET_RANGE"] == 1  # 11 bytes asked, not 100,000


def test_missing_object_is_not_cached(local_store: ObjectStore, tmp_path: Path) -> None:
    with ObjectCache(tmp_path / "cache") as cache:
        with pytest.raises(ObjectNotFound):
            cache.fetch(local_store, "segments/nope", sha(b""), 0)
        assert cache_files(cache, "objects") == cache_files(cache, "tmp") == []


@pytest.mark.parametrize("key", ["", "abc", "g" * 64, "a" * 63, None, 7])
def test_keys_must_be_sha256(local_store: ObjectStore, tmp_path: Path, key: Any) -> None:
    with ObjectCache(tmp_path / "cache") as cache, pytest.raises(InvalidArgument, match="SHA-256"):
        cache.fetch(local_store, "a", key, 0)


def test_uppercase_keys_name_the_same_entry(local_store: ObjectStore, tmp_path: Path) -> None:
    local_store.put("a", b"abc")
    with ObjectCache(tmp_path / "cache") as cache:
        assert cache.fetch(local_store, "a", sha(b"abc").upper(), 3) == cache.path_for(sha(b"abc"))


def test_default_folder_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LCMEMVID_CACHE", str(tmp_path / "from-env"))
    assert default_cache_dir() == tmp_path / "from-env"
    with ObjectCache() as cache:
        assert cache.folder == tmp_path / "from-env"
        assert (tmp_path / "from-env" / "objects").is_dir()
    monkeypatch.delenv("LCMEMVID_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "langchain-memvid"


# -- eviction ------------------------------------------------------------------------------


def put_objects(store: ObjectStore, count: int, size: int) -> list[tuple[str, str, bytes]]:
    out = []
    for i in range(count):
        data = os.urandom(size)
        store.put(f"segments/{i:08d}.faiss", data)
        out.append((f"segments/{i:08d}.faiss", sha(data), data))
    return out


def test_eviction_keeps_the_bound_and_removes_the_least_recently_used(
    local_store: ObjectStore, tmp_path: Path
) -> None:
    objs = put_objects(local_store, 5, 3000)
    with ObjectCache(tmp_path / "cache", max_bytes=10_000) as cache:
        for name, key, data in objs[:3]:
            with cache.pinned(local_store, name, key, len(data)):
                pass
            assert cache.usage() <= 10_000
        with cache.pinned(local_store, *objs[0][:2], 3000):  # object 0 used again: now the newest
            pass
        with cache.pinned(local_store, *objs[3][:2], 3000):
            pass
        assert cache.usage() <= 10_000
        assert not cache.path_for(objs[1][1]).exists()  # the least recently used went
        for i in (0, 2, 3):
            assert cache.path_for(objs[i][1]).read_bytes() == objs[i][2]


def test_an_entry_larger_than_the_bound_is_served_then_evicted(
    local_store: ObjectStore, tmp_path: Path
) -> None:
    objs = put_objects(local_store, 2, 5000)
    with ObjectCache(tmp_path / "cache", max_bytes=4000) as cache:
        path = cache.fetch(local_store, objs[0][0], objs[0][1], 5000)
        assert path.read_bytes() == objs[0][2]  # pinned: kept although over the bound
        cache.release(objs[0][1])
        cache.fetch(local_store, objs[1][0], objs[1][1], 5000)
        assert not path.exists()
        assert cache.usage() == 5000


def _pin_and_wait(folder: str, root: str, name: str, key: str, size: int, pinned: Any, done: Any) -> None:
    cache = ObjectCache(folder, max_bytes=1)  # its own evictions must not matter either
    path = cache.fetch(ObjectStore(root), name, key, size)
    pinned.set()
    done.wait(60)
    data = path.read_bytes()  # still there, whole, after the other process evicted around it
    cache.close()
    if hashlib.sha256(data).hexdigest() != key:
        raise SystemExit(3)


def test_a_file_pinned_by_another_process_is_never_evicted(local_store: ObjectStore, tmp_path: Path) -> None:
    objs = put_objects(local_store, 4, 3000)
    ctx = multiprocessing.get_context("spawn")
    pinned, done = ctx.Event(), ctx.Event()
    name, key, data = objs[0]
    child = ctx.Process(
        target=_pin_and_wait,
        args=(str(tmp_path / "cache"), local_store.url, name, key, 3000, pinned, done),
    )
    child.start()
    try:
        assert pinned.wait(60)
        with ObjectCache(tmp_path / "cache", max_bytes=3000) as cache:
            for other_name, other_key, _ in objs[1:]:
                time.sleep(0.01)
                with cache.pinned(local_store, other_name, other_key, 3000):
                    pass
            # Object 0 is the least recently used, and the cache is over its bound: still kept.
            assert cache.path_for(key).read_bytes() == data
            assert cache.usage() == 6000
            done.set()
            child.join(60)
            assert child.exitcode == 0
            # Released: the next eviction may take it.
            with cache.pinned(local_store, *objs[3][:2], 3000):
                pass
            assert not cache.path_for(key).exists()
            assert cache.usage() == 3000
    finally:
        done.set()
        child.join(10)
        if child.is_alive():
            child.kill()


def test_a_file_pinned_in_this_process_is_never_evicted(local_store: ObjectStore, tmp_path: Path) -> None:
    objs = put_objects(local_store, 3, 3000)
    with (
        ObjectCache(tmp_path / "cache", max_bytes=3000) as reader,
        ObjectCache(tmp_path / "cache", max_bytes=3000) as other,
    ):
        path = reader.fetch(local_store, objs[0][0], objs[0][1], 3000)
        for name, key, _ in objs[1:]:
            with other.pinned(local_store, name, key, 3000):
                pass
        assert path.read_bytes() == objs[0][2]


# -- processes sharing the folder, and what a killed one leaves --------------------------------


class SlowStore(ObjectStore):
    """A local store whose ranged reads take time, to hold a download open."""

    delay = 0.0
    stall_after_first = False

    def read_range(self, name: str, start: int, end: int) -> bytes:
        data = super().read_range(name, start, end)
        if self.stall_after_first and start > 0:
            time.sleep(600)  # the test kills the process here, mid-download
        time.sleep(self.delay)
        return data


def _fetch_in_process(folder: str, root: str, name: str, key: str, size: int, barrier: Any, out: Any) -> None:
    store = SlowStore(root)
    store.delay = 0.2
    with ObjectCache(folder, chunk_bytes=4096) as cache:
        barrier.wait()
        path = cache.fetch(store, name, key, size)
        out.put((str(path), hashlib.sha256(path.read_bytes()).hexdigest(), store.requests["GET_RANGE"]))


def test_two_processes_fetching_at_once_download_once(local_store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(20_000)
    local_store.put("segments/00000001-aa.faiss", data)
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    args = (str(tmp_path / "cache"), local_store.url, "segments/00000001-aa.faiss", sha(data), len(data))
    procs = [ctx.Process(target=_fetch_in_process, args=(*args, barrier, out)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    (path_a, hash_a, gets_a), (path_b, hash_b, gets_b) = results
    assert path_a == path_b
    assert hash_a == hash_b == sha(data)
    assert sorted([gets_a, gets_b]) == [0, 5]  # ceil(20,001 / 4,096) ranged GETs, once
    assert sorted(p.name for p in (tmp_path / "cache" / "tmp").iterdir()) == []


def _stall_in_process(folder: str, root: str, name: str, key: str, size: int) -> None:
    store = SlowStore(root)
    store.stall_after_first = True
    ObjectCache(folder, chunk_bytes=1000).fetch(store, name, key, size)


def test_a_download_killed_midway_is_ignored_and_replaced(local_store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(5000)
    local_store.put("segments/00000001-aa.faiss", data)
    folder = tmp_path / "cache"
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(
        target=_stall_in_process,
        args=(str(folder), local_store.url, "segments/00000001-aa.faiss", sha(data), len(data)),
    )
    child.start()
    try:
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size for p in (folder / "tmp").glob("*.part")):
            assert time.monotonic() < deadline, "the child never started its download"
            time.sleep(0.02)
    finally:
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join(10)
    partial = list((folder / "tmp").glob("*.part"))
    assert [p.stat().st_size for p in partial] == [1000]  # what the killed process left
    with ObjectCache(folder) as cache:
        assert not cache.path_for(sha(data)).exists()
        path = cache.fetch(local_store, "segments/00000001-aa.faiss", sha(data), len(data))
        assert path.read_bytes() == data
        assert list((folder / "tmp").iterdir()) == []  # the dead process's file is gone too


def test_a_truncated_entry_is_ignored_and_replaced(local_store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(5000)
    local_store.put("segments/00000001-aa.faiss", data)
    with ObjectCache(tmp_path / "cache") as cache:
        entry = cache.path_for(sha(data))
        entry.parent.mkdir(parents=True)
        entry.write_bytes(data[:1234])  # e.g. copied in by hand, or a crash before an fsync
        local_store.reset_requests()
        assert (
            cache.fetch(local_store, "segments/00000001-aa.faiss", sha(data), len(data)).read_bytes() == data
        )
        assert local_store.requests["GET_RANGE"] == 1


def test_verify_rehashes_an_entry_of_the_right_size(local_store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(5000)
    local_store.put("segments/00000001-aa.faiss", data)
    with ObjectCache(tmp_path / "cache") as cache:
        entry = cache.fetch(local_store, "segments/00000001-aa.faiss", sha(data), len(data))
        cache.release(sha(data))
        os.chmod(entry, 0o644)
        entry.write_bytes(bytes(5000))  # same size, other bytes (bit rot, a bad disk)
        path = cache.fetch(local_store, "segments/00000001-aa.faiss", sha(data), len(data), verify=True)
        assert path.read_bytes() == data
