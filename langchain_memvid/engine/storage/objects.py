"""Object storage for one store root: any fsspec URL, with an atomic create-if-absent.

The layer a store in a bucket is built on (docs/design/object-storage.md; not wired into the
``Engine`` yet). An ``ObjectStore`` addresses *objects* by *name* below one root URL
(``s3://bucket/prefix``, ``gs://``, ``az://``, ``memory://``, ``file://`` or a plain local
path) and offers what the design needs and nothing more: whole and ranged reads, size, exists,
a sorted listing (``list_with_times`` adds sizes and modification times, for cleanup), a plain
``put`` for new immutable objects with unique names (``put_file`` streams a large local file
instead), ``delete``, and ``put_if_absent``, the one primitive that lets several writers publish
versions without a lock server:

- S3: a conditional PUT with ``If-None-Match: *`` (s3fs ``pipe_file(mode="create")``); the service
  answers 412 to every request but the first.
- GCS: ``ifGenerationMatch=0``; Azure Blob: ``If-None-Match: *`` (gcsfs / adlfs ``mode="create"``,
  both from 2024.12; not exercised by this package's tests, which have no such service).
- A local folder: the bytes go to a temporary file first (fsynced), then ``os.link`` gives it its
  name, which fails when the name exists: the object appears whole or not at all.
- ``memory://``: a check-and-set under a process-wide lock (one process's memory is the store).

Any other filesystem raises ``AtomicCreateUnsupported``: such a store can only be written by one
writer holding a lock. Names are checked before any request, so a name read from a hostile
manifest can never address anything outside the root::

    >>> store = ObjectStore("memory://doctest-objects")
    >>> store.put_if_absent("versions/00000001.json", b"{}"), store.put_if_absent("versions/00000001.json", b"[]")
    (True, False)
    >>> store.read("versions/00000001.json"), store.list("versions/")
    (b'{}', ['versions/00000001.json'])
    >>> store.read("../secrets")
    Traceback (most recent call last):
    ...
    langchain_memvid.engine.errors.UnsafePath: Object name '../secrets' is not allowed: ...
    >>> store.delete("versions/00000001.json")
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import math
import os
import re
import secrets
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from langchain_memvid.engine.errors import (
    BackendUnavailable,
    InvalidArgument,
    MemvidError,
    SegmentNotFound,
    StoreIOError,
    StoreNotFound,
    UnsafePath,
)
from langchain_memvid.engine.files import check_regular, fsync_dir, open_regular

# -- errors (candidates for engine/errors.py once the wiring lands) -------------------------------


class ObjectNotFound(MemvidError, FileNotFoundError):
    """An object the caller named does not exist in the store."""


class ObjectAccessDenied(MemvidError, PermissionError):
    """The object store refused the credentials, or there were none."""


class ObjectStoreIOError(StoreIOError):
    """The object store (or the network to it) failed a request; nothing says the data is damaged."""


class AtomicCreateUnsupported(MemvidError, NotImplementedError):
    """The filesystem offers no atomic create-if-absent: writers must hold a lock (one at a time)."""


class LocalFileUnreadable(MemvidError, OSError):
    """A local file given to ``put_file`` is missing, unreadable or not a regular file.

    ``errno`` is the operating system's (``ENOENT``, ``EACCES``...), or ``EINVAL`` for a folder,
    FIFO or device.
    """


# -- names -----------------------------------------------------------------------------------

MAX_NAME_BYTES = 512  # S3 keys may be 1,024 bytes, prefix included; ours are far shorter
_COMPONENT = r"[A-Za-z0-9_-][A-Za-z0-9._-]*"
_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_PREFIX = re.compile(rf"(?:{_COMPONENT}/)*[A-Za-z0-9._-]*")

KINDS = ("GET", "GET_RANGE", "HEAD", "LIST", "PUT", "DELETE")

# S3 answers 409 ConditionalRequestConflict while another conditional write of the same key is
# in flight; the request may be repeated (it then wins or gets 412).
_CONFLICT_RETRIES = 5

# The package extra that installs each URL scheme's fsspec filesystem.
_EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
}

_MEMORY_LOCK = threading.Lock()  # memory:// is one dict per process; this makes create atomic

# put_file on S3. s3fs uploads a file of fewer than 2 * chunksize bytes with one PutObject whose
# body is the whole file read into memory, and a larger one as a multipart upload that holds
# max_concurrency parts in memory at once. Its defaults (50 MiB parts, 10 at a time) would read a
# 99 MiB segment whole, and hold 500 MiB for a larger one; these bound both to 2 * PART_SIZE.
PART_SIZE = 8 * 2**20  # as the AWS CLI and boto3's transfer manager; S3's minimum is 5 MiB
_PART_CONCURRENCY = 2
_MAX_PARTS = 10_000  # S3's limit on parts per upload: past 78 GiB the parts grow
_COPY_BLOCK = 1 << 20  # a local put_file copies this much at a time


def check_name(name: str) -> str:
    """Return ``name`` if it may name an object, else raise ``UnsafePath``.

    Components are ``[A-Za-z0-9._-]`` and may not start with ``.`` (no ``.``, ``..``, and room
    for this layer's temporary files), separated by single ``/``, with no leading or trailing
    ``/``. A name therefore always stays below the root, on every backend.

    >>> check_name("segments/00000001-3fa2c1d9.mov")
    'segments/00000001-3fa2c1d9.mov'
    >>> check_name("a/../b")
    Traceback (most recent call last):
    ...
    langchain_memvid.engine.errors.UnsafePath: Object name 'a/../b' is not allowed: ...
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name.encode()) > MAX_NAME_BYTES:
        msg = f"Object name {name!r} is not allowed: names are '/'-separated components of A-Z a-z 0-9 . _ - (none starting with '.'), at most {MAX_NAME_BYTES} bytes, never absolute. A manifest naming it is damaged or hostile; run `verify`."
        raise UnsafePath(msg)
    return name


def _check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix) or prefix.startswith("."):
        msg = f"Listing prefix {prefix!r} is not allowed: it must be empty or a name's beginning (components of A-Z a-z 0-9 . _ -, '/'-separated)."
        raise UnsafePath(msg)
    last = prefix.rsplit("/", 1)[-1]
    if last.startswith("."):
        msg = f"Listing prefix {prefix!r} is not allowed: no component starts with '.'."
        raise UnsafePath(msg)
    return prefix


# -- the store -------------------------------------------------------------------------------


class ObjectStore:
    """The objects below one root URL, through fsspec, with request counts.

    Args:
        url: the root: ``s3://bucket/prefix``, ``gs://...``, ``az://...``, ``memory://name``,
            ``file:///path`` or a local path.
        storage_options: handed to fsspec unchanged (for s3fs: ``key``, ``secret``,
            ``endpoint_url``, ``client_kwargs``...).

    Raises:
        BackendUnavailable: the URL's filesystem package is not installed (``pip install
            "langchain-qrvideo[s3]"``, ``[gcs]`` or ``[azure]``).

    ``requests`` counts what this store asked the backend for, by kind (``GET``, ``GET_RANGE``,
    ``HEAD``, ``LIST``, ``PUT``, ``DELETE``); a library's own retries and S3's listing pages after
    the first are not seen here. Thread-safe.
    """

    def __init__(self, url: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> None:
        import fsspec.core

        self.url = os.fspath(url)
        self.storage_options = dict(storage_options or {})
        try:
            fs, root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        except ImportError as e:
            scheme = self.url.split("://", 1)[0].lower()
            extra = _EXTRAS.get(scheme)
            hint = (
                f"pip install 'langchain-qrvideo[{extra}]'"
                if extra
                else f"install the fsspec package for {scheme}://"
            )
            msg = f"Cannot open {self.url}: {e}. To use it: {hint}."
            raise BackendUnavailable(msg) from e
        except ValueError as e:
            msg = f"{self.url!r} is not a store URL fsspec knows: {e}"
            raise InvalidArgument(msg) from e
        self.fs = fs
        self.root = root.rstrip("/")
        if not self.root:
            msg = f"{self.url!r} names no folder or bucket; a store needs its own root, e.g. memory://my-store or s3://bucket/my-store."
            raise InvalidArgument(msg)
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        if "file" in protocols or "local" in protocols:
            self.kind = "local"
        elif "memory" in protocols:
            self.kind = "memory"
        elif "s3" in protocols:
            self.kind = "s3"
        elif "gs" in protocols or "gcs" in protocols:
            self.kind = "gcs"
        elif "abfs" in protocols or "az" in protocols:
            self.kind = "azure"
        else:
            self.kind = protocols[0]
        self._counts: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        self._create_checked = False

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"  # never the storage options: they hold secrets

    # -- request counts ---------------------------------------------------------------------

    @property
    def requests(self) -> dict[str, int]:
        """Requests asked of the backend so far, by kind (every kind present, zeros included)."""
        with self._count_lock:
            return {kind: self._counts[kind] for kind in KINDS}

    def reset_requests(self) -> None:
        """Start counting from zero (a benchmark's phase boundary)."""
        with self._count_lock:
            self._counts.clear()

    def _count(self, kind: str) -> None:
        with self._count_lock:
            self._counts[kind] += 1

    # -- reads ------------------------------------------------------------------------------

    def read(self, name: str) -> bytes:
        """The whole object (one GET).

        Raises:
            ObjectNotFound: no such object.
            ObjectAccessDenied, ObjectStoreIOError, StoreNotFound: the backend refused or failed.
        """
        check_name(name)
        self._count("GET")
        return self._get(name)

    def _get(self, name: str) -> bytes:
        if self.kind == "local":
            return self._local_read(name, 0, None)
        # s3fs reads a large object with a HEAD and concurrent ranges unless told otherwise
        kwargs = {"max_concurrency": 1} if self.kind == "s3" else {}
        with self._errors("read", name):
            return bytes(self.fs.cat_file(self._path(name), **kwargs))

    def read_range(self, name: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive) of an object, in one ranged GET.

        Like slicing: a range reaching past the end gives the bytes there are (none when
        ``start`` is at or past the end); the caller checks the length it expected. An empty
        range asks nothing of the backend.

        Raises:
            InvalidArgument: ``start`` or ``end`` is negative, or ``end < start``.
            ObjectNotFound: no such object.
        """
        check_name(name)
        if (
            isinstance(start, bool)
            or isinstance(end, bool)
            or not isinstance(start, int)
            or not isinstance(end, int)
            or not 0 <= start <= end
        ):
            msg = f"A byte range needs 0 <= start <= end; got start={start!r}, end={end!r} for {name}."
            raise InvalidArgument(msg)
        if start == end:
            return b""
        self._count("GET_RANGE")
        if self.kind == "local":
            return self._local_read(name, start, end)
        with self._errors("read", name, past_end_ok=True) as past_end:
            data = bytes(self.fs.cat_file(self._path(name), start=start, end=end))
        if past_end:
            return b""  # S3 answers 416 for a range starting at or past the end
        return data[: end - start]

    def size(self, name: str) -> int:
        """The object's size in bytes (one HEAD).

        Raises:
            ObjectNotFound: no such object.
        """
        check_name(name)
        self._count("HEAD")
        if self.kind == "local":
            return self._local_size(name)
        path = self._path(name)
        with self._errors("size of", name):
            self.fs.invalidate_cache(path)  # a listing cached by fsspec may be stale
            info = self.fs.info(path)
        if info.get("type") != "file":
            msg = f"{name} is not an object in {self.url} (it is a {info.get('type')})."
            raise ObjectNotFound(msg)
        return int(info["size"])

    def exists(self, name: str) -> bool:
        """Whether the object exists (one HEAD)."""
        try:
            self.size(name)
        except ObjectNotFound:
            return False
        return True

    def list(self, prefix: str = "") -> builtins.list[str]:
        """Names of the objects whose name starts with ``prefix``, sorted (one LIST).

        ``prefix`` is compared as a string (``"versions/0000"`` works); names this layer would
        refuse (and its own temporary files) are left out.
        """
        _check_prefix(prefix)
        self._count("LIST")
        if self.kind == "local":
            return [name for name, _ in self._local_scan(prefix)]
        return [name for name, _ in self._scan(prefix)]

    def list_with_times(self, prefix: str = "") -> builtins.list[tuple[str, int, float]]:
        """``(name, size, modified)`` of the objects ``list(prefix)`` names, sorted by name (one LIST).

        ``modified`` is the last-modified time as a Unix timestamp, for a cleanup that spares
        objects younger than a grace period: S3's ``LastModified`` (whole seconds, the server's
        clock), a local file's ``st_mtime``, the creation time on ``memory://``. The listing
        carries both, so this is one request like ``list`` (S3: one more page per 1,000
        objects, not counted).

        Raises:
            ObjectStoreIOError: the filesystem's listing gives no modification time.
        """
        _check_prefix(prefix)
        self._count("LIST")
        if self.kind == "local":
            return [(name, st.st_size, st.st_mtime) for name, st in self._local_scan(prefix)]
        return [(name, int(info["size"]), self._modified(name, info)) for name, info in self._scan(prefix)]

    def _scan(self, prefix: str) -> builtins.list[tuple[str, dict[str, Any]]]:
        """The listing below the prefix's folder: valid names starting with ``prefix``, with fsspec's info."""
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self._path(folder) if folder else self.root
        # s3fs lists the prefix itself when given one: one request (a page per 1,000 keys), where
        # a listing of a missing folder would add a HEAD and a second LIST to tell "no such folder".
        kwargs = {"prefix": prefix} if self.kind == "s3" and prefix else {}
        if kwargs:
            base = self.root
        found: dict[str, dict[str, Any]] = {}  # stays empty when the folder is missing
        with self._errors("list", prefix or "/", missing_ok=True):
            self.fs.invalidate_cache(base)
            found = self.fs.find(base, detail=True, **kwargs)
        lead = self._path("")
        entries = []
        for path, info in found.items():
            if not path.startswith(lead) or info.get("type", "file") != "file":
                continue
            name = path[len(lead) :]
            if name.startswith(prefix) and _NAME.fullmatch(name):
                entries.append((name, info))
        return sorted(entries, key=lambda entry: entry[0])

    def _modified(self, name: str, info: dict[str, Any]) -> float:
        """The last-modified time in a listing entry, whatever the filesystem calls it."""
        # s3fs: LastModified; adlfs: last_modified; gcsfs: updated (and mtime); memory: created
        for key in ("LastModified", "last_modified", "mtime", "updated", "created"):
            value = info.get(key)
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if isinstance(value, datetime):
                if value.tzinfo is None:  # object stores speak UTC
                    value = value.replace(tzinfo=timezone.utc)
                return value.timestamp()
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        msg = f"Cannot tell when {name} in {self.url} was last modified: the {self.kind!r} filesystem's listing gives no time (keys: {sorted(info)})."
        raise ObjectStoreIOError(msg)

    # -- writes -----------------------------------------------------------------------------

    def put(self, name: str, data: bytes) -> None:
        """Store ``data`` under ``name``, replacing any object there (one PUT).

        For new immutable objects with unique names (segment files, snapshots). Readers never
        see a partial object: S3/GCS/Azure publish a PUT whole, and a local file is written
        under a temporary name, fsynced and renamed.
        """
        check_name(name)
        data = bytes(data)
        self._count("PUT")
        if self.kind == "local":
            self._local_write(name, lambda out: _write_all(out, data), exclusive=False)
            return
        with self._errors("write", name):
            self.fs.pipe_file(self._path(name), data)

    def put_file(self, name: str, local_path: str | os.PathLike[str]) -> None:
        """Upload a local file under ``name``, replacing any object there, without reading it whole.

        Counted as one PUT. For segment videos and vector files of hundreds of MiB; readers never
        see a partial object:

        - S3: s3fs ``put_file``. Below ``2 * PART_SIZE`` (16 MiB) one PutObject; above, a
          multipart upload of ``PART_SIZE`` parts (larger past 10,000 parts), two in flight: on
          the wire ``2 + parts`` requests (create, the parts, complete), still counted as one PUT
          here. The object appears only when the upload completes; a failed upload is aborted.
          An upload interrupted in the calling thread is cancelled (not left running in fsspec's
          IO thread to appear later). An interrupted or killed upload stays invisible but keeps
          its parts (billed) until a bucket lifecycle rule ``AbortIncompleteMultipartUpload``
          removes them.
        - A local folder: copied in 1 MiB blocks to a temporary file, fsynced, renamed to the
          name, then the folder fsynced (as ``put``).
        - Others (``memory://``, GCS, Azure): the filesystem's own ``put_file``.

        The source is opened and checked before any request, so a missing or unreadable file
        writes nothing.

        Raises:
            LocalFileUnreadable: ``local_path`` is missing, unreadable, or not a regular file.
        """
        check_name(name)
        source = os.fspath(local_path)
        fd = _open_source(source)
        try:
            self._count("PUT")
            if self.kind == "local":
                self._local_write(name, lambda out: _copy_stream(fd, out, source), exclusive=False)
                return
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        path = self._path(name)
        try:
            with self._errors("write", name):
                if self.kind == "s3":
                    part = max(PART_SIZE, math.ceil(size / _MAX_PARTS))
                    self._run_cancellable(
                        self.fs._put_file(source, path, chunksize=part, max_concurrency=_PART_CONCURRENCY)
                    )
                else:
                    self.fs.put_file(source, path)
        except ObjectNotFound as e:  # the only file put_file can miss is the source, gone since
            msg = f"Cannot upload {source} to {name}: the file disappeared while it was being uploaded."
            raise LocalFileUnreadable(errno.ENOENT, msg) from e

    def put_if_absent(self, name: str, data: bytes) -> bool:
        """Create the object only if no object has that name; atomic across processes and machines.

        Returns ``True`` when the object now holds ``data`` through this call, ``False`` when
        another object already had the name (left untouched). If the name already holds exactly
        ``data``, this also returns ``True``: that is how a retried request whose first attempt
        landed (the response was lost) is told from a lost race, so ``data`` must be unique to
        the caller (carry a random commit id) for ``True`` to mean "mine".

        Raises:
            AtomicCreateUnsupported: this filesystem has no atomic create; write with one
                writer under a lock.
        """
        check_name(name)
        data = bytes(data)
        self._check_atomic_create()
        self._count("PUT")
        created = self._create(name, data)
        if created:
            return True
        self._count("GET")
        try:
            return self._get(name) == data
        except ObjectNotFound:
            return False  # deleted since; the caller lost all the same

    def delete(self, name: str) -> None:
        """Remove an object (one DELETE); a missing object is not an error, as on S3."""
        check_name(name)
        self._count("DELETE")
        if self.kind == "local":
            self._local_delete(name)
            return
        with self._errors("delete", name, missing_ok=True):
            self.fs.rm_file(self._path(name))

    def check_atomic_create(self) -> None:
        """Prove ``put_if_absent`` refuses a second create here (2 PUTs, a GET, a DELETE).

        A writer can run this once when it opens a store on an S3-compatible service that may
        ignore ``If-None-Match`` (then every writer would "win").

        Raises:
            AtomicCreateUnsupported: the filesystem has no atomic create, or the service let
                a second create through.
        """
        name = f"_probe/{secrets.token_hex(8)}"
        try:
            first = self.put_if_absent(name, b"first")
            second = self.put_if_absent(name, b"second")
        finally:
            self.delete(name)
        if not first or second:
            msg = f"{self.url} let a second create of one name through (a conditional PUT was ignored): commits there need one writer at a time, under a lock."
            raise AtomicCreateUnsupported(msg)

    # -- backend specifics ----------------------------------------------------------------

    def _path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def _run_cancellable(self, coro: Any) -> Any:
        """Run an async filesystem's coroutine on its event loop; cancel it if this thread is interrupted.

        fsspec's sync wrappers leave the coroutine running on fsspec's IO thread when the calling
        thread is interrupted (``KeyboardInterrupt``, a signal handler's exception), so an upload
        the caller gave up on would complete and appear seconds later. Cancelled here, it stops
        at its next request; one already sent may still land, as with any lost response.
        """
        import asyncio
        import concurrent.futures

        future = asyncio.run_coroutine_threadsafe(coro, self.fs.loop)
        try:
            while not future.done():
                concurrent.futures.wait([future], timeout=1)  # short waits: signals get through
        except BaseException:
            future.cancel()
            raise
        return future.result()

    def _check_atomic_create(self) -> None:
        """Refuse, once and clearly, a backend whose create-if-absent would silently overwrite."""
        if self._create_checked:
            return
        if self.kind in ("local", "memory"):
            pass
        elif self.kind == "s3":
            import inspect

            try:
                import botocore.session

                model = botocore.session.get_session().get_service_model("s3")
                members = model.operation_model("PutObject").input_shape.members
            except Exception as e:  # pragma: no cover - botocore comes with s3fs
                msg = f"Cannot check botocore's S3 model: {e}"
                raise AtomicCreateUnsupported(msg) from e
            # s3fs drops keyword arguments the client does not know, so an old botocore or s3fs
            # would turn the conditional PUT into a plain overwrite without a word.
            if "IfNoneMatch" not in members or "mode" not in inspect.signature(self.fs._pipe_file).parameters:
                msg = f"{self.url}: this s3fs/botocore cannot send a conditional PUT (If-None-Match); upgrade them (pip install -U 'langchain-qrvideo[s3]': s3fs 2024.12 or later) or write with one writer under a lock."
                raise AtomicCreateUnsupported(msg)
        elif self.kind == "gcs":
            import inspect

            if "mode" not in inspect.signature(self.fs._pipe_file).parameters:
                msg = f"{self.url}: this gcsfs cannot create an object only if absent; install gcsfs 2024.12 or later, or write with one writer under a lock."
                raise AtomicCreateUnsupported(msg)
        elif self.kind == "azure":
            from importlib.metadata import version

            if tuple(int(p) for p in version("adlfs").split(".")[:2]) < (2024, 12):
                msg = f"{self.url}: this adlfs cannot create a blob only if absent; install adlfs 2024.12 or later, or write with one writer under a lock."
                raise AtomicCreateUnsupported(msg)
        else:
            msg = f"{self.url}: the {self.kind!r} filesystem has no known atomic create-if-absent, so concurrent commits could overwrite each other. Such a store must run in single-writer mode, with a lock held by its one writer."
            raise AtomicCreateUnsupported(msg)
        self._create_checked = True

    def _create(self, name: str, data: bytes) -> bool:
        if self.kind == "local":
            return self._local_write(name, lambda out: _write_all(out, data), exclusive=True)
        path = self._path(name)
        if self.kind == "memory":
            with _MEMORY_LOCK, self._errors("create", name):
                if self.fs.exists(path):
                    return False
                self.fs.pipe_file(path, data)
                return True
        for attempt in range(_CONFLICT_RETRIES):
            try:
                with self._errors("create", name):
                    self.fs.pipe_file(path, data, mode="create")
                return True
            except ObjectStoreIOError as e:
                code = _error_code(e)
                if code == "PreconditionFailed":
                    return False
                if code != "ConditionalRequestConflict" or attempt == _CONFLICT_RETRIES - 1:
                    raise
                time.sleep(0.05 * 2**attempt)
                self._count("PUT")
            except _Exists:
                return False
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def _errors(
        self, action: str, name: str, *, missing_ok: bool = False, past_end_ok: bool = False
    ) -> Iterator[builtins.list[bool]]:
        """Translate the backend's errors into the engine's, naming the object and the URL.

        Yields a list that holds ``True`` when a range started past the end (``past_end_ok``).
        """
        flag: builtins.list[bool] = []
        try:
            yield flag
        except MemvidError:
            raise
        except FileExistsError as e:
            if action != "create":
                msg = f"Cannot {action} {name} in {self.url}: {e}"
                raise ObjectStoreIOError(msg) from e
            raise _Exists(str(e)) from e
        except FileNotFoundError as e:
            if _error_code(e) == "NoSuchBucket":
                msg = f"{self.url}: the bucket does not exist. Create it, or check the URL."
                raise StoreNotFound(msg) from e
            if missing_ok:
                return
            msg = f"Object {name} does not exist in {self.url}."
            raise ObjectNotFound(msg) from e
        except PermissionError as e:
            msg = f"Cannot {action} {name} in {self.url}: access denied ({e}). Check the credentials in storage_options."
            raise ObjectAccessDenied(msg) from e
        except OSError as e:
            if past_end_ok and _error_code(e) == "InvalidRange":
                flag.append(True)
                return
            msg = f"Cannot {action} {name} in {self.url}: {e}"
            raise ObjectStoreIOError(msg) from e
        except Exception as e:
            # botocore/aiohttp errors that s3fs does not translate (no credentials, no endpoint)
            module = type(e).__module__.split(".")[0]
            if module not in ("botocore", "aiobotocore", "aiohttp", "google", "azure"):
                raise
            if "Credentials" in type(e).__name__:
                msg = f"Cannot {action} {name} in {self.url}: {e}. Pass key/secret (or a profile) in storage_options."
                raise ObjectAccessDenied(msg) from e
            msg = f"Cannot {action} {name} in {self.url}: {type(e).__name__}: {e}"
            raise ObjectStoreIOError(msg) from e

    # -- a local folder ---------------------------------------------------------------------

    def _local_file(self, name: str) -> Path:
        """The file for a name, refusing symbolic links between the root and it."""
        root = Path(self.root)
        path = root
        for part in name.split("/")[:-1]:
            path = path / part
            if path.is_symlink():
                msg = f"{path} is a symbolic link; stores refuse links so that nothing points outside the store."
                raise UnsafePath(msg)
        return root / name

    def _local_read(self, name: str, start: int, end: int | None) -> bytes:
        path = self._local_file(name)
        try:
            fd = open_regular(path)
        except SegmentNotFound as e:
            msg = f"Object {name} does not exist in {self.url}."
            raise ObjectNotFound(msg) from e
        try:
            if end is None:
                end = os.fstat(fd).st_size
            chunks, pos = [], start
            while pos < end:
                block = os.pread(fd, min(end - pos, 1 << 24), pos)
                if not block:
                    break
                chunks.append(block)
                pos += len(block)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def _local_size(self, name: str) -> int:
        try:
            return check_regular(self._local_file(name))
        except SegmentNotFound as e:
            msg = f"Object {name} does not exist in {self.url}."
            raise ObjectNotFound(msg) from e

    def _local_scan(self, prefix: str) -> builtins.list[tuple[str, os.stat_result]]:
        """Regular files whose valid name starts with ``prefix``, sorted, each with its ``lstat``."""
        root = Path(self.root)
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self._local_file(f"{folder}/_").parent if folder else root
        entries = []
        for dirpath, dirnames, filenames in os.walk(start):  # os.walk never follows links
            rel = os.path.relpath(dirpath, root)
            rel = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
            for fn in filenames:
                name = rel + fn
                if not (name.startswith(prefix) and _NAME.fullmatch(name)):
                    continue
                try:
                    st = os.lstat(os.path.join(dirpath, fn))
                except FileNotFoundError:
                    continue  # deleted since the folder was read: not listed, as on S3
                if stat.S_ISREG(st.st_mode):
                    entries.append((name, st))
        return sorted(entries, key=lambda entry: entry[0])

    def _local_write(self, name: str, fill: Callable[[int], None], *, exclusive: bool) -> bool:
        """Write whole-or-nothing: a fsynced temporary file, then a rename (or a link).

        ``fill`` writes the object's bytes to the temporary file's descriptor.
        """
        path = self._local_file(name)
        folder = path.parent
        self._local_mkdirs(folder)
        tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
            try:
                fill(fd)
                os.fsync(fd)  # the bytes are on disk before the name points at them
            finally:
                os.close(fd)
            if exclusive:
                try:
                    os.link(tmp, path)  # fails if the name exists: the atomic create
                except FileExistsError:
                    return False
                except OSError as e:
                    if e.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK):
                        msg = f"{self.url}: this file system has no hard links, so objects cannot be created atomically; run the store in single-writer mode, with a lock."
                        raise AtomicCreateUnsupported(msg) from e
                    raise
            else:
                os.replace(tmp, path)
            fsync_dir(folder)
            return True
        except MemvidError:
            raise
        except OSError as e:
            msg = f"Cannot write {name} in {self.url}: {e}"
            raise ObjectStoreIOError(msg) from e
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _local_mkdirs(self, folder: Path) -> None:
        missing = []
        probe = folder
        while not probe.exists():
            missing.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
        if not missing:
            if not folder.is_dir():
                msg = f"Cannot write into {folder}: it is not a folder."
                raise ObjectStoreIOError(msg)
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for made in reversed(missing):  # each new folder's entry made durable in its parent
                fsync_dir(made.parent)
        except OSError as e:
            msg = f"Cannot create {folder} for {self.url}: {e}"
            raise ObjectStoreIOError(msg) from e

    def _local_delete(self, name: str) -> None:
        path = self._local_file(name)
        if path.is_symlink():
            msg = f"{path} is a symbolic link; refusing to touch it."
            raise UnsafePath(msg)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except IsADirectoryError as e:
            msg = f"{name} in {self.url} is a folder, not an object."
            raise ObjectStoreIOError(msg) from e
        except OSError as e:
            msg = f"Cannot delete {name} in {self.url}: {e}"
            raise ObjectStoreIOError(msg) from e
        fsync_dir(path.parent)


class _Exists(Exception):
    """Internal: the backend said the name is taken (a create-if-absent lost)."""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _open_source(source: str) -> int:
    """Open a local file to upload; it must be a regular file (a FIFO could block for ever)."""
    try:
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        msg = f"Cannot upload {source}: {e.strerror or e}. Nothing was written."
        raise LocalFileUnreadable(e.errno, msg) from e
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        msg = f"Cannot upload {source}: it is not a regular file (a folder, FIFO or device). Nothing was written."
        raise LocalFileUnreadable(errno.EINVAL, msg)
    return fd


def _copy_stream(source_fd: int, out: int, source: str) -> None:
    """Copy an open file to another from its start, ``_COPY_BLOCK`` bytes at a time."""
    pos = 0
    while True:
        try:
            block = os.pread(source_fd, _COPY_BLOCK, pos)
        except OSError as e:
            msg = f"Cannot read {source} at byte {pos} while uploading it: {e.strerror or e}. Nothing was written."
            raise LocalFileUnreadable(e.errno, msg) from e
        if not block:
            return
        _write_all(out, block)
        pos += len(block)


def _error_code(error: BaseException) -> str | None:
    """The S3 error code behind a translated error (s3fs keeps the ClientError as its cause)."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return None
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            return str(code) if code is not None else None
        seen = seen.__cause__ or seen.__context__
    return None


__all__ = [
    "KINDS",
    "MAX_NAME_BYTES",
    "PART_SIZE",
    "AtomicCreateUnsupported",
    "LocalFileUnreadable",
    "ObjectAccessDenied",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectStoreIOError",
    "check_name",
]
