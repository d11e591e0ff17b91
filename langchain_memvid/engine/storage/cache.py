"""A local folder cache of immutable objects, checked on the way in and shared by processes.

Vector files and index snapshots of a store in a bucket are read whole (and memory-mapped), so a
reader keeps them on local disk (docs/design/object-storage.md). The cache is
content-addressed: an entry's key is the SHA-256 the manifest gives for the object, so two stores,
or two versions of one store, that share a file share its entry, and an entry can never hold
other bytes than its name says.

Layout of the folder (``$LCMEMVID_CACHE``, else ``$XDG_CACHE_HOME/langchain-memvid``, else
``~/.cache/langchain-memvid``)::

    objects/ab/ab12...ef     one entry per SHA-256 (the first two hex digits fan the folder out)
    tmp/                     downloads in progress: <sha>.<random>.part
    locks/ab                 one lock file per first two hex digits (256 at most, all empty)

How processes share it safely (POSIX ``flock``, one lock per open file):

- **Filling.** A download goes to a new file in ``tmp/``, held under an exclusive lock, checked
  against the size and SHA-256 the caller gives (a mismatch raises ``ChecksumMismatch`` naming
  the object, and nothing is cached), fsynced, then renamed over ``objects/..``: the entry path
  only ever holds a whole, checked file. Two processes fetching one object take the same
  ``locks/`` file exclusively, so one downloads and the other then finds the entry.
- **Using.** ``fetch`` returns the entry's path *pinned*: this cache holds the file open with a
  shared lock until ``release`` (or ``close``). Before trusting a pin it checks that the file is
  still linked (an eviction may have removed it between the open and the lock) and has the
  expected size (a truncated file is ignored and replaced).
- **Evicting.** After each fetch the least recently used entries (by modification time, which a
  fetch sets) are removed until the entries total at most ``max_bytes``. An entry is removed only
  under its ``locks/`` file and an exclusive, non-blocking lock on the entry itself, which fails
  while any process holds it pinned: a file in use is never removed, so pinned entries may hold
  the cache above its bound until they are released. A ``tmp/`` file nobody holds locked is the
  leftover of a killed process and is removed too.

POSIX only (``fcntl``), like the store's own write lock. Thread-safe.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_memvid.engine.errors import (
    ChecksumMismatch,
    DiskFull,
    InvalidArgument,
    MemvidError,
    StoreIOError,
)
from langchain_memvid.engine.files import fsync_dir
from langchain_memvid.engine.storage.objects import check_name

if TYPE_CHECKING:
    from langchain_memvid.engine.storage.objects import ObjectStore

DEFAULT_MAX_BYTES = 10 << 30
CHUNK_BYTES = 64 << 20  # one ranged GET each; bounds the memory a download holds
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$LCMEMVID_CACHE``, else the per-user cache folder (XDG) plus ``langchain-memvid``.

    >>> str(default_cache_dir({"LCMEMVID_CACHE": "/srv/memvid-cache"}))
    '/srv/memvid-cache'
    >>> str(default_cache_dir({"XDG_CACHE_HOME": "/var/cache/alice"}))
    '/var/cache/alice/langchain-memvid'
    """
    env = os.environ if environ is None else environ
    configured = env.get("LCMEMVID_CACHE")
    if configured:
        return Path(configured).expanduser()
    xdg = env.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "langchain-memvid"


class ObjectCache:
    """Immutable objects on local disk, keyed by SHA-256, bounded in bytes (see the module doc).

    Args:
        folder: the cache folder; default ``default_cache_dir()``. Processes that share it share
            the entries.
        max_bytes: the bound on the entries' total size (files pinned by some process are
            never removed, so they may exceed it until released).
        chunk_bytes: bytes asked for in one ranged GET while downloading.

    ::

        cache = ObjectCache()
        path = cache.fetch(store, "segments/00000001-3fa2c1d9.faiss", sha256, size)
        ...                                   # read or memory-map path
        cache.release(sha256)                 # or cache.close(), or `with cache.pinned(...)`
    """

    def __init__(
        self,
        folder: str | os.PathLike[str] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        for label, value in (("max_bytes", max_bytes), ("chunk_bytes", chunk_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                msg = f"{label} must be a positive number of bytes; got {value!r}."
                raise InvalidArgument(msg)
        self.folder = Path(folder) if folder is not None else default_cache_dir()
        self.max_bytes = max_bytes
        self.chunk_bytes = chunk_bytes
        self._pins: dict[str, tuple[int, int]] = {}  # sha256 -> (open fd with LOCK_SH, count)
        self._over = False  # the last eviction pass left the cache above its bound
        self._lock = threading.Lock()
        try:
            for sub in ("objects", "tmp", "locks"):
                (self.folder / sub).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            msg = f"Cannot create the object cache in {self.folder}: {e}. Set LCMEMVID_CACHE to a writable folder."
            raise StoreIOError(msg) from e

    # -- the public surface -------------------------------------------------------------

    def fetch(self, store: ObjectStore, name: str, sha256: str, size: int, *, verify: bool = False) -> Path:
        """The local path of an object's bytes, downloaded once and pinned until ``release``.

        Args:
            store: where the object lives.
            name: its name in the store.
            sha256: the SHA-256 (hex) the manifest gives for it: the cache key and the check.
            size: its size in bytes, as the manifest gives it.
            verify: hash an entry found in the cache again before trusting it (entries are
                hashed on the way in, so by default a hit checks only the size).

        Raises:
            ChecksumMismatch: the object's size or SHA-256 is not the one given; nothing is
                cached.
            ObjectNotFound: the store has no such object.
        """
        sha = _check_key(sha256)
        check_name(name)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            msg = f"size must be a byte count (an int >= 0); got {size!r} for {name}."
            raise InvalidArgument(msg)
        path = self._pin(sha, size, verify)
        if path is not None:
            if self._over:  # entries pinned at the last pass may be released by now
                self._evict()
            return path  # otherwise a hit adds nothing: no pass over the whole cache
        with self._stripe(sha, blocking=True):
            # Another process may have filled it while this one waited for the stripe.
            path = self._pin(sha, size, verify)
            if path is None:
                self._download(store, name, sha, size)
                path = self._pin(sha, size, verify=False)
        if path is None:  # pragma: no cover - nobody may evict without the stripe lock
            msg = f"{name} from {store.url} vanished from the cache right after it was written."
            raise StoreIOError(msg)
        self._evict()
        return path

    @contextlib.contextmanager
    def pinned(self, store: ObjectStore, name: str, sha256: str, size: int) -> Iterator[Path]:
        """``fetch`` for the length of a ``with`` block."""
        path = self.fetch(store, name, sha256, size)
        try:
            yield path
        finally:
            self.release(sha256)

    def release(self, sha256: str) -> None:
        """Undo one ``fetch`` of this entry; the last one lets eviction remove it again."""
        sha = _check_key(sha256)
        with self._lock:
            held = self._pins.get(sha)
            if held is None:
                return
            fd, count = held
            if count > 1:
                self._pins[sha] = (fd, count - 1)
                return
            del self._pins[sha]
        os.close(fd)

    def close(self) -> None:
        """Release every pin this cache holds."""
        with self._lock:
            fds = [fd for fd, _ in self._pins.values()]
            self._pins.clear()
        for fd in fds:
            os.close(fd)

    def __enter__(self) -> ObjectCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def path_for(self, sha256: str) -> Path:
        """Where the entry for ``sha256`` lives (whether or not it is there)."""
        sha = _check_key(sha256)
        return self.folder / "objects" / sha[:2] / sha

    def usage(self) -> int:
        """Bytes the entries hold now (every process's)."""
        return sum(size for _, size, _ in self._entries())

    # -- pinning ------------------------------------------------------------------------

    def _pin(self, sha: str, size: int, verify: bool) -> Path | None:
        """Pin the entry if it is there, linked, of the right size (and hash); else ``None``."""
        entry = self.path_for(sha)
        try:
            fd = os.open(entry, os.O_RDONLY | _NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            if e.errno == errno.ELOOP:
                return None  # a symbolic link where an entry belongs: replaced by the download
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits out an eviction in progress
            st = os.fstat(fd)
            good = st.st_nlink > 0 and stat.S_ISREG(st.st_mode) and st.st_size == size
            if good and verify:
                good = _hash_fd(fd) == sha
            if not good:
                os.close(fd)
                return None
            now = time.time_ns()  # explicit: the kernel's own "now" is only jiffy-grained
            os.utime(fd, ns=(now, now))  # most recently used: the last to be evicted
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        with self._lock:
            old = self._pins.get(sha)
            count = old[1] + 1 if old else 1
            self._pins[sha] = (fd, count)
        if old is not None:
            os.close(old[0])  # keep the newest open: it is the file the path names now
        return entry

    # -- filling ------------------------------------------------------------------------

    def _download(self, store: ObjectStore, name: str, sha: str, size: int) -> None:
        """Copy the object into ``tmp/``, check it, make it durable, rename it into place."""
        fd, tmp = self._new_tmp(sha)
        try:
            digest = hashlib.sha256()
            limit = size + 1  # one byte past the expected end shows an object that is too long
            got = 0
            while got < limit:
                want = min(self.chunk_bytes, limit - got)
                chunk = store.read_range(name, got, got + want)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
                digest.update(chunk)
                got += len(chunk)
                if len(chunk) < want:
                    break
            if got != size:
                told = f"more than {size}" if got > size else str(got)
                msg = f"{name} in {store.url} holds {told} bytes; the manifest says {size}. Not cached; run `verify` on the store."
                raise ChecksumMismatch(msg)
            if digest.hexdigest() != sha:
                msg = f"{name} in {store.url} fails its SHA-256 check (expected {sha}, got {digest.hexdigest()}). Not cached; run `verify` on the store."
                raise ChecksumMismatch(msg)
            os.fsync(fd)  # the bytes are durable before the entry's name points at them
            entry = self.path_for(sha)
            entry.parent.mkdir(exist_ok=True)
            os.replace(tmp, entry)
            fsync_dir(entry.parent)
        except MemvidError:
            raise  # a mismatch, or the store's own error (missing object, access denied...)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                msg = f"No room in the object cache {self.folder} for {name} ({size} bytes): {e}. Lower max_bytes or free space."
                raise DiskFull(e.errno, msg) from e
            msg = f"Cannot write {name} into the object cache {self.folder}: {e}"
            raise StoreIOError(msg) from e
        finally:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _new_tmp(self, sha: str) -> tuple[int, Path]:
        """A new, exclusively locked file in ``tmp/`` (the lock tells the cleaner it is live)."""
        for _ in range(8):
            tmp = self.folder / "tmp" / f"{sha}.{secrets.token_hex(6)}.part"
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink > 0:
                return fd, tmp
            os.close(fd)  # a cleaner removed it between the create and the lock: take another
        msg = f"Cannot keep a temporary file in {self.folder / 'tmp'}: something keeps removing them."
        raise StoreIOError(msg)

    # -- evicting -----------------------------------------------------------------------

    def _entries(self) -> list[tuple[float, int, Path]]:
        out = []
        for sub in (self.folder / "objects").iterdir():
            if sub.is_symlink() or not sub.is_dir():
                continue
            for path in sub.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    st = path.lstat()
                    if stat.S_ISREG(st.st_mode) and _SHA256.fullmatch(path.name):
                        out.append((st.st_mtime, st.st_size, path))
        return out

    def _evict(self) -> None:
        """Remove least recently used, unpinned entries until the bound holds; clear dead tmp files."""
        entries = self._entries()
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            with self._lock:
                if path.name in self._pins:
                    continue
            if self._remove(path):
                total -= size
        self._over = total > self.max_bytes  # pinned entries held it over: try again on hits
        self._clean_tmp()

    def _remove(self, entry: Path) -> bool:
        """Unlink an entry unless some process holds it pinned (or it changed meanwhile)."""
        with self._stripe(entry.name, blocking=False) as held:
            if not held:
                return False  # a download in this stripe: try again at the next eviction
            try:
                fd = os.open(entry, os.O_RDONLY | _NOFOLLOW)
            except OSError:
                return False
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False  # pinned: in use by some process
                if os.lstat(entry).st_ino != os.fstat(fd).st_ino:
                    return False
                os.unlink(entry)
                return True
            except OSError:
                return False
            finally:
                os.close(fd)

    def _clean_tmp(self) -> None:
        for path in (self.folder / "tmp").iterdir():
            try:
                fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.unlink(path)  # nobody holds it: left by a process that died mid-download
            except OSError:
                pass
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def _stripe(self, sha: str, *, blocking: bool) -> Iterator[bool]:
        """Hold ``locks/<sha[:2]>`` exclusively; yields whether it was acquired."""
        fd = os.open(self.folder / "locks" / sha[:2], os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)


def _check_key(sha256: str) -> str:
    key = sha256.lower() if isinstance(sha256, str) else ""
    if not _SHA256.fullmatch(key):
        msg = f"A cache key is a SHA-256 in hex (64 digits); got {sha256!r}."
        raise InvalidArgument(msg)
    return key


def _hash_fd(fd: int) -> str:
    digest, pos = hashlib.sha256(), 0
    while block := os.pread(fd, 1 << 20, pos):
        digest.update(block)
        pos += len(block)
    return digest.hexdigest()


__all__ = ["CHUNK_BYTES", "DEFAULT_MAX_BYTES", "ObjectCache", "default_cache_dir"]
