"""ObjectStore (engine/storage/objects.py): every method on memory://, a local folder and S3 (moto).

What a user of a store in a bucket relies on: objects read back byte for byte, a ranged read is one
request for exactly the bytes asked, a listing is sorted and never leaks a neighbour's objects,
``put_if_absent`` lets exactly one of many racing writers (threads or processes) create a name,
with the winner's bytes whole, ``put_file`` uploads a large local file whole or not at all, and
``list_with_times`` gives each object's true size and a modification time cleanup can trust, and a
hostile name never reaches the backend (docs/design/object-storage.md, "Storage primitives").
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from langchain_memvid.engine.errors import (
    BackendUnavailable,
    InvalidArgument,
    MemvidError,
    StoreNotFound,
    UnsafePath,
)
from langchain_memvid.engine.storage import objects
from langchain_memvid.engine.storage.objects import (
    KINDS,
    PART_SIZE,
    AtomicCreateUnsupported,
    LocalFileUnreadable,
    ObjectAccessDenied,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreIOError,
)
from tests.s3_server import BUCKET, MotoS3, S3Target, describe

pytest_plugins = ["tests.s3_server"]  # the moto_server and s3_bucket fixtures

# moto listens on 127.0.0.1; nothing else may be reached (see tests/s3_server.py).
pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

BACKENDS = ["memory", "local", "s3"]
Factory = Callable[..., ObjectStore]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """``make_store(root="store")``: an ObjectStore on the backend, rooted at ``root``."""
    token = uuid.uuid4().hex
    if backend == "s3":
        target: S3Target = request.getfixturevalue("s3_bucket")
        options = target.storage_options
        base = f"s3://{BUCKET}"
    elif backend == "memory":
        options, base = {}, f"memory://{token}"
    else:
        options, base = {}, str(tmp_path)

    def factory(root: str = "store") -> ObjectStore:
        return ObjectStore(f"{base}/{root}", options)

    yield factory
    if backend == "memory":
        fs = MemoryFileSystem()
        if fs.exists(f"/{token}"):
            fs.rm(f"/{token}", recursive=True)


@pytest.fixture
def store(make_store: Factory) -> ObjectStore:
    return make_store()


def test_round_trip_of_every_method(store: ObjectStore) -> None:
    data = os.urandom(3000)
    assert not store.exists("segments/00000001-aa.mov")
    store.put("segments/00000001-aa.mov", data)
    assert store.exists("segments/00000001-aa.mov")
    assert store.read("segments/00000001-aa.mov") == data
    assert store.size("segments/00000001-aa.mov") == 3000
    assert store.read_range("segments/00000001-aa.mov", 100, 200) == data[100:200]
    assert store.list() == ["segments/00000001-aa.mov"]
    store.delete("segments/00000001-aa.mov")
    assert not store.exists("segments/00000001-aa.mov")
    assert store.list() == []
    store.delete("segments/00000001-aa.mov")  # deleting twice is not an error, as on S3


def test_empty_object(store: ObjectStore) -> None:
    store.put("empty", b"")
    assert (store.read("empty"), store.size("empty"), store.exists("empty")) == (b"", 0, True)
    assert store.read_range("empty", 0, 10) == b""


def test_put_replaces_the_whole_object(store: ObjectStore) -> None:
    store.put("manifest.json", b"a much longer first version")
    store.put("manifest.json", b"short")
    assert store.read("manifest.json") == b"short"
    assert store.size("manifest.json") == 5


def test_missing_objects_raise_object_not_found(store: ObjectStore) -> None:
    for call in (
        lambda: store.read("nope"),
        lambda: store.read_range("nope", 0, 10),
        lambda: store.size("nope"),
    ):
        with pytest.raises(ObjectNotFound, match="nope") as info:
            call()
        assert isinstance(info.value, FileNotFoundError)
        assert isinstance(info.value, MemvidError)


def test_list_is_sorted_and_filtered_by_prefix(store: ObjectStore) -> None:
    names = [
        "versions/00000010.json",
        "segments/00000002-bb.mov",
        "versions/00000002.json",
        "segments/00000001-aa.mov",
        "segments/00000001-aa.faiss",
        "LATEST",
    ]
    for n in names:
        store.put(n, n.encode())
    assert store.list() == sorted(names)
    assert store.list("segments/") == sorted(n for n in names if n.startswith("segments/"))
    assert store.list("versions/0000001") == ["versions/00000010.json"]
    assert store.list("segments/00000001-aa.") == ["segments/00000001-aa.faiss", "segments/00000001-aa.mov"]
    assert store.list("index/") == []
    assert store.list("L") == ["LATEST"]


def test_list_never_shows_a_neighbouring_root(make_store: Factory) -> None:
    # "store" is a string prefix of "store2": a listing that compared strings only would leak.
    mine, neighbour = make_store("store"), make_store("store2")
    mine.put("a", b"1")
    neighbour.put("b", b"2")
    neighbour.put("store-file", b"3")
    assert mine.list() == ["a"]
    assert neighbour.list() == ["b", "store-file"]
    assert not mine.exists("b")


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 1), (5, 17), (1000, 10240), (10230, 20000), (10239, 10240), (0, 10240)],
)
def test_read_range_returns_exact_bytes_in_one_request(store: ObjectStore, start: int, end: int) -> None:
    data = bytes(range(256)) * 40  # 10,240 bytes, every offset distinguishable
    store.put("segments/video.mov", data)
    store.reset_requests()
    assert store.read_range("segments/video.mov", start, end) == data[start:end]
    assert store.requests == {**dict.fromkeys(KINDS, 0), "GET_RANGE": 1}


def test_read_range_past_the_end_and_empty_ranges(store: ObjectStore) -> None:
    store.put("obj", b"0123456789")
    store.reset_requests()
    assert store.read_range("obj", 3, 3) == b""
    assert store.requests["GET_RANGE"] == 0  # an empty range asks nothing of the backend
    assert store.read_range("obj", 10, 20) == b""
    assert store.read_range("obj", 50, 60) == b""
    assert store.read_range("obj", 8, 60) == b"89"


@pytest.mark.parametrize(("start", "end"), [(-1, 5), (5, 4), (True, 3), (0, 2.0), ("0", 3)])
def test_read_range_refuses_bad_ranges(store: ObjectStore, start: Any, end: Any) -> None:
    store.put("obj", b"0123456789")
    with pytest.raises(InvalidArgument, match="start <= end"):
        store.read_range("obj", start, end)


def test_request_counts(store: ObjectStore) -> None:
    store.put("a", b"1")
    store.read("a")
    store.read_range("a", 0, 1)
    store.exists("a")
    store.size("a")
    store.list()
    store.delete("a")
    assert store.requests == {"GET": 1, "GET_RANGE": 1, "HEAD": 2, "LIST": 1, "PUT": 1, "DELETE": 1}
    store.reset_requests()
    assert set(store.requests.values()) == {0}


def test_put_if_absent_creates_once(store: ObjectStore) -> None:
    assert store.put_if_absent("versions/00000001.json", b"writer A") is True
    assert store.put_if_absent("versions/00000001.json", b"writer B") is False
    assert store.read("versions/00000001.json") == b"writer A"
    # The same bytes again: what a retried request whose first attempt landed looks like.
    assert store.put_if_absent("versions/00000001.json", b"writer A") is True
    store.delete("versions/00000001.json")
    assert store.put_if_absent("versions/00000001.json", b"writer B") is True
    assert store.read("versions/00000001.json") == b"writer B"


def test_check_atomic_create_passes_and_leaves_nothing(store: ObjectStore) -> None:
    store.check_atomic_create()
    assert store.list() == []


def test_put_if_absent_race_between_threads(store: ObjectStore) -> None:
    writers, rounds = 8, 10
    for r in range(rounds):
        name = f"versions/{r:08d}.json"
        results: list[bool | None] = [None] * writers
        barrier = threading.Barrier(writers)

        def write(
            i: int, name: str = name, results: list[bool | None] = results, barrier: Any = barrier
        ) -> None:
            barrier.wait()
            results[i] = store.put_if_absent(name, f"commit by writer {i} ".encode() * 50)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results.count(True) == 1, (r, results)
        assert results.count(False) == writers - 1
        winner = results.index(True)
        assert store.read(name) == f"commit by writer {winner} ".encode() * 50


def _race_in_process(
    url: str, options: dict[str, Any], rounds: int, writer: int, barrier: Any, out: Any
) -> None:
    store = ObjectStore(url, options)
    for r in range(rounds):
        barrier.wait()
        won = store.put_if_absent(f"versions/{r:08d}.json", f"commit by process {writer} ".encode() * 50)
        out.put((r, writer, won))


@pytest.mark.parametrize("backend", ["local", "s3"])  # memory:// is one process's memory
def test_put_if_absent_race_between_processes(store: ObjectStore) -> None:
    writers, rounds = 4, 5
    ctx = multiprocessing.get_context("spawn")  # no fork of a process running moto's threads
    barrier, out = ctx.Barrier(writers), ctx.Queue()
    procs = [
        ctx.Process(target=_race_in_process, args=(store.url, store.storage_options, rounds, i, barrier, out))
        for i in range(writers)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in range(writers * rounds)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for r in range(rounds):
        won = [w for (rr, w, ok) in results if rr == r and ok]
        assert len(won) == 1, (r, results)
        assert store.read(f"versions/{r:08d}.json") == f"commit by process {won[0]} ".encode() * 50


HOSTILE = [
    "../outside",
    "a/../../outside",
    "/etc/passwd",
    "a//b",
    "a/./b",
    "a/",
    "",
    ".",
    "..",
    ".hidden",
    "segments/.x.tmp",
    "a b",
    "a\\b",
    "a\x00b",
    "caf\u00e9",
    "x" * 600,
    "s3://other-bucket/key",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_before_any_request(store: ObjectStore, name: str, tmp_path: Path) -> None:
    source = tmp_path / "upload.bin"
    source.write_bytes(b"x")
    calls: list[Callable[[], object]] = [
        lambda: store.put_file(name, source),
        lambda: store.put_file(name, tmp_path / "missing"),  # the name is checked first
        lambda: store.read(name),
        lambda: store.read_range(name, 0, 1),
        lambda: store.size(name),
        lambda: store.exists(name),
        lambda: store.put(name, b"x"),
        lambda: store.put_if_absent(name, b"x"),
        lambda: store.delete(name),
    ]
    for call in calls:
        with pytest.raises(UnsafePath, match="not allowed"):
            call()
    assert set(store.requests.values()) == {0}
    assert store.list() == []


@pytest.mark.parametrize("prefix", ["../", "/abs", "a//", ".hidden", "a/.x", "a b"])
def test_hostile_prefixes_are_refused(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(UnsafePath, match="not allowed"):
        store.list(prefix)
    with pytest.raises(UnsafePath, match="not allowed"):
        store.list_with_times(prefix)
    assert set(store.requests.values()) == {0}


def test_store_url_must_name_a_root() -> None:
    with pytest.raises(InvalidArgument, match="names no folder or bucket"):
        ObjectStore("memory://")


def test_repr_never_shows_storage_options() -> None:
    store = ObjectStore("memory://repr-test", {"secret": "hunter2"})
    assert "hunter2" not in repr(store)


def test_missing_backend_package_says_which_extra() -> None:
    pytest.importorskip("fsspec")
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("gcsfs is installed here")
    with pytest.raises(BackendUnavailable, match=r"pip install 'langchain-qrvideo\[gcs\]'"):
        ObjectStore("gs://some-bucket/store")


class _NoCreateFileSystem(MemoryFileSystem):
    """A filesystem this layer knows nothing about (as ftp://, sftp://, webdav...)."""

    protocol = "nocreate"


def test_unknown_filesystem_refuses_put_if_absent_but_reads_and_writes() -> None:
    fsspec.register_implementation("nocreate", _NoCreateFileSystem, clobber=True)
    store = ObjectStore(f"nocreate://{uuid.uuid4().hex}")
    store.put("a", b"1")
    assert store.read("a") == b"1"
    with pytest.raises(AtomicCreateUnsupported, match="single-writer mode, with a lock"):
        store.put_if_absent("versions/00000001.json", b"x")
    assert store.list() == ["a"]
    assert isinstance(AtomicCreateUnsupported("x"), NotImplementedError)


# -- a local folder -------------------------------------------------------------------------


def test_plain_path_and_file_url_are_the_same_store(tmp_path: Path) -> None:
    ObjectStore(tmp_path / "s").put("a/b", b"1")
    assert ObjectStore(f"file://{tmp_path}/s").read("a/b") == b"1"
    assert (tmp_path / "s" / "a" / "b").read_bytes() == b"1"


def test_local_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "s")
    store.put("segments/a", b"1")
    store.put_if_absent("versions/00000001.json", b"2")
    store.put_if_absent("versions/00000001.json", b"3")
    files = sorted(str(p.relative_to(tmp_path / "s")) for p in (tmp_path / "s").rglob("*") if p.is_file())
    assert files == ["segments/a", "versions/00000001.json"]
    # A temporary file left by a killed writer is not an object.
    (tmp_path / "s" / "versions" / ".00000002.json.abc.tmp").write_bytes(b"partial")
    assert store.list() == ["segments/a", "versions/00000001.json"]


def test_local_store_refuses_symbolic_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not yours")
    root = tmp_path / "s"
    root.mkdir()
    (root / "segments").symlink_to(outside)
    (root / "linked").symlink_to(outside / "secret")
    store = ObjectStore(root)
    with pytest.raises(UnsafePath, match="symbolic link"):
        store.read("segments/secret")
    with pytest.raises(UnsafePath, match="symbolic link"):
        store.put("segments/new", b"x")
    with pytest.raises(UnsafePath, match="symbolic link"):
        store.read("linked")
    with pytest.raises(UnsafePath, match="symbolic link"):
        store.delete("linked")
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert store.list() == []


def test_local_put_if_absent_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    store = ObjectStore(tmp_path / "s")
    with pytest.raises(AtomicCreateUnsupported, match="single-writer mode"):
        store.put_if_absent("versions/00000001.json", b"x")
    assert list((tmp_path / "s" / "versions").iterdir()) == []


def test_local_write_errors_are_store_io_errors(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "s")
    store.put("a", b"1")
    with pytest.raises(ObjectStoreIOError, match="not a folder"):
        store.put("a/b", b"2")  # "a" is an object, not a folder


# -- S3 (moto) -----------------------------------------------------------------------------


def test_moto_honours_if_none_match(s3_bucket: S3Target, moto_server: MotoS3) -> None:
    """The evidence that the race tests mean something: moto refuses a second conditional PUT."""
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client(
        "s3",
        endpoint_url=moto_server.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.put_object(Bucket=BUCKET, Key="k", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=BUCKET, Key="k", Body=b"second", IfNoneMatch="*")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert info.value.response["Error"]["Code"] == "PreconditionFailed"
    assert client.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"first"


def test_s3_put_if_absent_sends_if_none_match(s3_bucket: S3Target, moto_server: MotoS3) -> None:
    store = ObjectStore(*s3_bucket)
    store.put("segments/a", b"1")
    assert store.put_if_absent("versions/00000001.json", b"mine") is True
    assert store.put_if_absent("versions/00000001.json", b"theirs") is False
    puts = [r for r in moto_server.requests if r.method == "PUT"]
    assert [(r.path, r.if_none_match) for r in puts] == [
        ("/memvid-test/store/segments/a", None),
        ("/memvid-test/store/versions/00000001.json", "*"),
        ("/memvid-test/store/versions/00000001.json", "*"),
    ], describe(moto_server.requests)


def test_s3_reads_are_one_request_each_on_the_wire(s3_bucket: S3Target, moto_server: MotoS3) -> None:
    store = ObjectStore(*s3_bucket)
    store.put("segments/video.mov", bytes(range(256)) * 400)
    moto_server.reset_log()
    assert store.read_range("segments/video.mov", 5, 17) == bytes(range(5, 17))
    assert [(r.method, r.range) for r in moto_server.requests] == [("GET", "bytes=5-16")]
    moto_server.reset_log()
    assert len(store.read("segments/video.mov")) == 102400
    assert [(r.method, r.range) for r in moto_server.requests] == [("GET", None)]


def test_s3_missing_bucket_is_store_not_found(s3_bucket: S3Target) -> None:
    store = ObjectStore("s3://no-such-bucket/store", s3_bucket.storage_options)
    with pytest.raises(StoreNotFound, match="bucket does not exist"):
        store.read("a")


def test_s3_conditional_request_conflict_is_retried(
    s3_bucket: S3Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError
    from s3fs.errors import translate_boto_error

    store = ObjectStore(*s3_bucket)
    real = store.fs.pipe_file
    calls = []

    def busy_once(path: str, data: bytes, **kwargs: Any) -> Any:
        calls.append(kwargs)
        if len(calls) == 1:  # S3's 409 while another conditional write of the key is in flight
            error = ClientError({"Error": {"Code": "ConditionalRequestConflict"}}, "PutObject")
            raise translate_boto_error(error)
        return real(path, data, **kwargs)

    monkeypatch.setattr(store.fs, "pipe_file", busy_once)
    assert store.put_if_absent("versions/00000001.json", b"x") is True
    assert calls == [{"mode": "create"}, {"mode": "create"}]
    assert store.requests["PUT"] == 2


def test_s3_without_conditional_put_support_refuses_instead_of_overwriting(
    s3_bucket: S3Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ObjectStore(*s3_bucket)
    store.put("versions/00000001.json", b"first")

    async def old_pipe_file(path: str, data: bytes, **kwargs: Any) -> None:  # s3fs before 2024.12
        raise AssertionError("must not be called")

    monkeypatch.setattr(store.fs, "_pipe_file", old_pipe_file)
    with pytest.raises(AtomicCreateUnsupported, match="conditional PUT"):
        store.put_if_absent("versions/00000001.json", b"second")
    assert store.read("versions/00000001.json") == b"first"


def test_s3_lost_response_of_a_winning_create_still_wins(
    s3_bucket: S3Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PUT landed, its response was lost, the client's retry got 412: the writer still won."""
    from botocore.exceptions import ClientError
    from s3fs.errors import translate_boto_error

    store = ObjectStore(*s3_bucket)
    real = store.fs.pipe_file

    def landed_then_412(path: str, data: bytes, **kwargs: Any) -> None:
        real(path, data, **kwargs)
        error = ClientError(
            {"Error": {"Code": "PreconditionFailed", "Condition": "If-None-Match"}}, "PutObject"
        )
        raise translate_boto_error(error)

    monkeypatch.setattr(store.fs, "pipe_file", landed_then_412)
    assert store.put_if_absent("versions/00000001.json", b"commit 7f3a") is True
    assert store.put_if_absent("versions/00000001.json", b"commit 91c2") is False
    assert store.read("versions/00000001.json") == b"commit 7f3a"


@pytest.mark.parametrize(
    ("raised", "expected", "message"),
    [
        (PermissionError("Access Denied"), "ObjectAccessDenied", "access denied"),
        (OSError(errno.EIO, "connection reset"), "ObjectStoreIOError", "connection reset"),
        (TimeoutError("read timed out"), "ObjectStoreIOError", "timed out"),
    ],
)
def test_backend_errors_are_mapped(
    monkeypatch: pytest.MonkeyPatch, raised: Exception, expected: str, message: str
) -> None:
    store = ObjectStore(f"memory://{uuid.uuid4().hex}")

    def fail(*args: Any, **kwargs: Any) -> bytes:
        raise raised

    monkeypatch.setattr(store.fs, "cat_file", fail)
    with pytest.raises(MemvidError, match=message) as info:
        store.read("segments/a")
    assert type(info.value).__name__ == expected
    assert store.url in str(info.value)
    assert "segments/a" in str(info.value)
    assert info.value.__cause__ is raised


def test_s3_missing_credentials_are_access_denied(
    s3_bucket: S3Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import NoCredentialsError

    store = ObjectStore(*s3_bucket)

    def no_credentials(*args: Any, **kwargs: Any) -> bytes:
        raise NoCredentialsError()

    monkeypatch.setattr(store.fs, "cat_file", no_credentials)
    with pytest.raises(ObjectAccessDenied, match="storage_options"):
        store.read("a")


# -- put_file -------------------------------------------------------------------------------

# Two full parts and a short one: on S3 a multipart upload (PutObject below 2 * PART_SIZE).
BIG = 2 * PART_SIZE + 12345


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    data = os.urandom(BIG)
    path = tmp_path_factory.mktemp("upload") / "segment.mov"
    path.write_bytes(data)
    return path, data


def test_put_file_uploads_a_large_file_exactly(store: ObjectStore, big_file: tuple[Path, bytes]) -> None:
    path, data = big_file
    store.put("segments/00000001-aa.mov", b"an older, shorter object")
    store.reset_requests()
    store.put_file("segments/00000001-aa.mov", path)
    assert store.requests == {**dict.fromkeys(KINDS, 0), "PUT": 1}
    assert store.size("segments/00000001-aa.mov") == BIG
    assert store.read("segments/00000001-aa.mov") == data
    assert (
        store.read_range("segments/00000001-aa.mov", PART_SIZE - 3, PART_SIZE + 3)
        == data[PART_SIZE - 3 : PART_SIZE + 3]
    )
    assert store.list() == ["segments/00000001-aa.mov"]


@pytest.mark.parametrize("size", [0, 1, 70_000])
def test_put_file_small_and_empty_files(store: ObjectStore, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "f.faiss").write_bytes(data)
    store.put_file("segments/00000001-aa.faiss", str(tmp_path / "f.faiss"))  # a str path works too
    assert store.read("segments/00000001-aa.faiss") == data
    assert store.size("segments/00000001-aa.faiss") == size


def _unreadable(tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, int]:
    if kind == "missing":
        return tmp_path / "no-such-file.mov", errno.ENOENT
    if kind == "folder":
        (tmp_path / "a-folder").mkdir()
        return tmp_path / "a-folder", errno.EINVAL
    if kind == "fifo":  # opened for reading without O_NONBLOCK, this would wait for a writer for ever
        fifo = tmp_path / "a-fifo"
        os.mkfifo(fifo)

        def unblock() -> None:  # so that such a bug fails the test instead of hanging it
            with contextlib.suppress(OSError):  # ENXIO: nobody is waiting on it, as it should be
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

        timer = threading.Timer(3, unblock)
        timer.daemon = True
        timer.start()
        return fifo, errno.EINVAL
    path = tmp_path / "secret.mov"  # permission denied (chmod would not stop root, who runs CI here)
    path.write_bytes(b"x")
    real_open = os.open

    def denied(file: Any, *args: Any, **kwargs: Any) -> int:
        if os.fspath(file) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    return path, errno.EACCES


@pytest.mark.parametrize("kind", ["missing", "folder", "fifo", "denied"])
def test_put_file_of_an_unreadable_source_writes_nothing(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    source, code = _unreadable(tmp_path, kind, monkeypatch)
    started = time.monotonic()
    with pytest.raises(LocalFileUnreadable, match=rf"Cannot upload {source}.*Nothing was written") as info:
        store.put_file("segments/00000001-aa.mov", source)
    assert time.monotonic() - started < 2  # refused at once, never waiting on a FIFO's writer
    assert info.value.errno == code
    assert isinstance(info.value, OSError)
    assert isinstance(info.value, MemvidError)
    assert set(store.requests.values()) == {0}
    monkeypatch.undo()
    assert store.list() == []


def test_local_put_file_is_never_visible_before_it_is_whole(
    tmp_path: Path, big_file: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ObjectStore(tmp_path / "s")
    store.put("segments/a.mov", b"old")
    final = tmp_path / "s" / "segments" / "a.mov"
    real_copy = objects._copy_stream
    seen: dict[str, Any] = {}
    events: list[str] = []

    def copy_then_look(source_fd: int, out: int, source: str) -> None:
        real_copy(source_fd, out, source)
        # Everything is copied, nothing is published: the name still holds the old object whole.
        seen["final"] = final.read_bytes()
        seen["read"] = store.read("segments/a.mov")
        seen["list"] = store.list()
        seen["folder"] = sorted(p.name for p in final.parent.iterdir())

    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(objects, "_copy_stream", copy_then_look)
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("rename"), real_replace(a, b))[1])
    monkeypatch.setattr(objects, "fsync_dir", lambda path: events.append(f"fsync {Path(path).name}/"))
    store.put_file("segments/a.mov", big_file[0])
    assert seen["final"] == seen["read"] == b"old"
    assert seen["list"] == ["segments/a.mov"]
    assert len(seen["folder"]) == 2
    assert seen["folder"][0].startswith(".a.mov.")  # the copy went to a hidden temporary file
    assert seen["folder"][0].endswith(".tmp")
    assert events == ["fsync", "rename", "fsync segments/"]  # data durable, then named, then the name
    assert final.read_bytes() == big_file[1]
    assert sorted(p.name for p in final.parent.iterdir()) == ["a.mov"]


def test_local_put_file_streams_in_bounded_blocks(
    tmp_path: Path, big_file: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ObjectStore(tmp_path / "s")
    asked: list[int] = []
    real_pread = os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        asked.append(n)
        return real_pread(fd, n, offset)

    monkeypatch.setattr(os, "pread", pread)
    store.put_file("segments/a.mov", big_file[0])
    monkeypatch.undo()
    assert max(asked) <= 1 << 20
    assert len(asked) >= BIG // (1 << 20)
    assert store.read("segments/a.mov") == big_file[1]


def test_local_put_file_read_error_midway_leaves_the_old_object(
    tmp_path: Path, big_file: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ObjectStore(tmp_path / "s")
    store.put("segments/a.mov", b"old")
    real_pread = os.pread
    calls = []

    def failing_pread(fd: int, n: int, offset: int) -> bytes:
        calls.append(offset)
        if len(calls) == 3:
            raise OSError(errno.EIO, "Input/output error")
        return real_pread(fd, n, offset)

    monkeypatch.setattr(os, "pread", failing_pread)
    with pytest.raises(LocalFileUnreadable, match=r"Cannot read .*segment\.mov at byte 2097152") as info:
        store.put_file("segments/a.mov", big_file[0])
    monkeypatch.undo()
    assert info.value.errno == errno.EIO
    assert store.read("segments/a.mov") == b"old"
    assert sorted(p.name for p in (tmp_path / "s" / "segments").iterdir()) == ["a.mov"]


def _client(moto_server: MotoS3) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=moto_server.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def test_s3_put_file_is_a_multipart_upload_on_the_wire(
    s3_bucket: S3Target, moto_server: MotoS3, big_file: tuple[Path, bytes], tmp_path: Path
) -> None:
    store = ObjectStore(*s3_bucket)
    store.put_file("segments/big.mov", big_file[0])
    key = "/memvid-test/store/segments/big.mov"
    wire = [
        (r.method, r.path, r.query.split("&uploadId=")[0].split("uploadId=")[0]) for r in moto_server.requests
    ]
    wire[1:-1] = sorted(wire[1:-1])  # two parts are in flight at once, in either order
    assert wire == [
        ("POST", key, "uploads"),
        ("PUT", key, "partNumber=1"),
        ("PUT", key, "partNumber=2"),
        ("PUT", key, "partNumber=3"),
        ("POST", key, ""),  # CompleteMultipartUpload
    ], describe(moto_server.requests)
    assert store.requests["PUT"] == 1  # one PUT for the caller, 2 + parts requests on the wire
    moto_server.reset_log()
    small = tmp_path / "small.faiss"
    small.write_bytes(os.urandom(2 * PART_SIZE - 1))  # the largest file that goes up in one PUT
    store.put_file("segments/small.faiss", small)
    assert [(r.method, r.query) for r in moto_server.requests] == [("PUT", "")]
    assert store.read("segments/small.faiss") == small.read_bytes()


def test_s3_put_file_is_invisible_until_the_upload_completes(
    s3_bucket: S3Target, moto_server: MotoS3, big_file: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ObjectStore(*s3_bucket)
    client = _client(moto_server)
    real = store.fs._call_s3
    seen: dict[str, Any] = {}

    async def look_before_completing(method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "complete_multipart_upload":
            # Every part is uploaded; another client must still see no object under the name.
            listing = client.list_objects_v2(Bucket=BUCKET, Prefix="store/")
            seen["keys"] = [o["Key"] for o in listing.get("Contents", [])]
            seen["uploads"] = client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
        return await real(method, *args, **kwargs)

    monkeypatch.setattr(store.fs, "_call_s3", look_before_completing)
    store.put_file("segments/big.mov", big_file[0])
    assert seen["keys"] == []
    assert [u["Key"] for u in seen["uploads"]] == ["store/segments/big.mov"]
    assert store.read("segments/big.mov") == big_file[1]


def test_s3_failed_multipart_upload_leaves_nothing(
    s3_bucket: S3Target, moto_server: MotoS3, big_file: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError
    from s3fs.errors import translate_boto_error

    store = ObjectStore(*s3_bucket)
    store.put("segments/old.mov", b"old")
    real = store.fs._call_s3

    async def fail_part_two(method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "upload_part" and kwargs["PartNumber"] == 2:
            error = ClientError({"Error": {"Code": "InternalError", "Message": "part lost"}}, "UploadPart")
            raise translate_boto_error(error)
        return await real(method, *args, **kwargs)

    monkeypatch.setattr(store.fs, "_call_s3", fail_part_two)
    moto_server.reset_log()
    with pytest.raises(ObjectStoreIOError, match=r"Cannot write segments/new\.mov"):
        store.put_file("segments/new.mov", big_file[0])
    with pytest.raises(ObjectStoreIOError, match=r"Cannot write segments/old\.mov"):
        store.put_file("segments/old.mov", big_file[0])
    monkeypatch.undo()
    aborts = [r for r in moto_server.requests if r.method == "DELETE" and "uploadId=" in r.query]
    assert len(aborts) == 2, describe(moto_server.requests)  # s3fs aborts what it started
    assert not store.exists("segments/new.mov")
    assert store.read("segments/old.mov") == b"old"  # an overwrite that failed changed nothing
    assert store.list() == ["segments/old.mov"]
    assert _client(moto_server).list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


class _Interrupted(BaseException):
    """What a signal handler raises in the calling thread (as KeyboardInterrupt would)."""


def test_s3_put_file_interrupted_in_the_caller_never_appears(
    s3_bucket: S3Target, big_file: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsspec's sync wrapper would leave the upload running on its IO thread, to complete later."""
    store = ObjectStore(*s3_bucket)
    real = store.fs._call_s3
    main = threading.get_ident()
    outcome: list[str] = []
    done = threading.Event()

    async def interrupt_during_part_one(method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "upload_part" and kwargs["PartNumber"] == 1:
            signal.pthread_kill(main, signal.SIGUSR1)
            try:
                await asyncio.sleep(2)
            except asyncio.CancelledError:
                outcome.append("cancelled")
                done.set()
                raise
        if method == "complete_multipart_upload":
            outcome.append("completed")
            done.set()
        return await real(method, *args, **kwargs)

    def raise_interrupted(signum: int, frame: Any) -> None:
        raise _Interrupted

    monkeypatch.setattr(store.fs, "_call_s3", interrupt_during_part_one)
    previous = signal.signal(signal.SIGUSR1, raise_interrupted)
    try:
        with pytest.raises(_Interrupted):
            store.put_file("segments/big.mov", big_file[0])
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert done.wait(10)
    assert outcome == ["cancelled"]
    monkeypatch.undo()
    assert not store.exists("segments/big.mov")
    assert store.list() == []


# -- list_with_times --------------------------------------------------------------------------


def test_list_with_times_gives_sizes_and_recent_times(store: ObjectStore, tmp_path: Path) -> None:
    written = {
        "segments/00000001-aa.mov": os.urandom(5000),
        "segments/00000001-aa.faiss": b"",
        "versions/00000001.json": b"{}",
        "LATEST": b"1",
    }
    before = time.time()
    for name, data in written.items():
        store.put(name, data)
    (tmp_path / "up.mov").write_bytes(os.urandom(70_000))
    store.put_file("segments/00000002-bb.mov", tmp_path / "up.mov")
    written["segments/00000002-bb.mov"] = (tmp_path / "up.mov").read_bytes()
    store.reset_requests()
    listed = store.list_with_times()
    assert store.requests == {**dict.fromkeys(KINDS, 0), "LIST": 1}
    assert [name for name, _, _ in listed] == sorted(written) == store.list()
    assert {name: size for name, size, _ in listed} == {n: len(d) for n, d in written.items()}
    slack = 60 if store.kind == "s3" else 5  # S3 dates objects in whole seconds, on its own clock
    for name, _, modified in listed:
        assert before - slack <= modified <= time.time() + slack, (name, modified, before)
    for prefix in [
        "",
        "segments/",
        "segments/00000001-aa.",
        "versions/0000",
        "L",
        "index/",
        "nothing/at/all",
    ]:
        assert [n for n, _, _ in store.list_with_times(prefix)] == store.list(prefix), prefix


def test_list_with_times_follows_write_order(store: ObjectStore, tmp_path: Path) -> None:
    names = [f"segments/0000000{i}-aa.mov" for i in (3, 1, 2)]  # write order is not name order
    for name in names:
        store.put(name, name.encode())
    if store.kind == "local":  # written seconds apart, without sleeping
        now = time.time()
        for age, name in zip((30, 20, 10), names, strict=True):
            os.utime(tmp_path / "store" / name, (now - age, now - age))
    times = {name: modified for name, _, modified in store.list_with_times("segments/")}
    if store.kind == "local":
        assert [round(now - times[n]) for n in names] == [30, 20, 10]
    elif store.kind == "memory":
        assert times[names[0]] <= times[names[1]] <= times[names[2]]
    else:  # S3's whole seconds: only that the times are real
        assert all(abs(t - time.time()) < 60 for t in times.values())
    store.put(names[0], b"rewritten")  # a rewrite is a new modification
    assert {n: t for n, _, t in store.list_with_times()}[names[0]] >= times[names[2]]


def test_local_list_with_times_uses_lstat_and_skips_what_list_skips(tmp_path: Path) -> None:
    root = tmp_path / "s"
    store = ObjectStore(root)
    store.put("segments/a.mov", b"12345")
    (root / "segments" / ".b.mov.abc.tmp").write_bytes(b"partial")  # a killed writer's temporary file
    (root / "segments" / "c d").write_bytes(b"refused name")
    (root / "segments" / "link.mov").symlink_to(root / "segments" / "a.mov")
    (root / "segments" / "sub").mkdir()
    os.utime(root / "segments" / "a.mov", (1_000_000_000, 1_234_567_890.5))
    assert store.list_with_times() == [("segments/a.mov", 5, 1_234_567_890.5)]
    assert store.list() == ["segments/a.mov"]


def test_s3_list_with_times_is_one_request_on_the_wire(s3_bucket: S3Target, moto_server: MotoS3) -> None:
    store = ObjectStore(*s3_bucket)
    store.put("segments/a.mov", b"123")
    def ours() -> list[Any]:  # a cancelled multipart upload of an earlier test may still send parts
        return [r for r in moto_server.requests if "uploadId=" not in r.query]

    for prefix in ["segments/", "nothing/", "segm", ""]:
        moto_server.reset_log()
        store.list_with_times(prefix)
        assert [(r.method, "list-type=2" in r.query) for r in ours()] == [("GET", True)], (
            prefix,
            describe(moto_server.requests),
        )
        moto_server.reset_log()
        store.list(prefix)
        assert len(ours()) == 1, (prefix, describe(moto_server.requests))


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ({"LastModified": datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)}, 1735787045.0),
        ({"last_modified": datetime(2025, 1, 2, 3, 4, 5)}, 1735787045.0),  # naive: UTC
        ({"updated": "2025-01-02T03:04:05.250Z"}, 1735787045.25),  # gcsfs
        ({"mtime": 1735787045.5}, 1735787045.5),
        ({"created": 1735787045}, 1735787045.0),
    ],
)
def test_list_with_times_reads_each_backends_time(
    monkeypatch: pytest.MonkeyPatch, info: dict[str, Any], expected: float
) -> None:
    store = ObjectStore(f"memory://{uuid.uuid4().hex}")
    entry = {"name": f"{store.root}/a", "type": "file", "size": 3, **info}
    monkeypatch.setattr(store.fs, "find", lambda *a, **k: {entry["name"]: entry})
    monkeypatch.setenv("TZ", "IST-5:30")  # not UTC: a naive time read as local would be 5.5 h off
    time.tzset()
    try:
        assert store.list_with_times() == [("a", 3, expected)]
    finally:
        monkeypatch.undo()
        time.tzset()


def test_list_with_times_without_a_time_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    store = ObjectStore(f"memory://{uuid.uuid4().hex}")
    entry = {"name": f"{store.root}/a", "type": "file", "size": 3}
    monkeypatch.setattr(store.fs, "find", lambda *a, **k: {entry["name"]: entry})
    with pytest.raises(ObjectStoreIOError, match=r"Cannot tell when a .* was last modified"):
        store.list_with_times()
    assert store.list() == ["a"]  # names alone need no time
