"""File helpers: defensive reads, hashing, fsync and moving files aside.

A crafted store may put a symlink, a FIFO or a device where a segment file belongs, or list an
absurd size for it. Everything the engine reads from ``segments/`` whole goes through here, so such
a file is refused with a clear error instead of being followed, blocking, or filling memory. The
fsync helpers are what make a rename durable (POSIX needs the folder fsynced too).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from langchain_memvid.engine.errors import LimitExceeded, SegmentNotFound, UnsafePath

MAX_VECTOR_FILE_BYTES = 16 << 30  # a vector file is read whole; refuse anything larger

# The names inside a store folder that must never be symbolic links (all of its own files).
STORE_NAMES = (
    "catalog.sqlite",
    "catalog.sqlite-wal",
    "catalog.sqlite-shm",
    "LOCK",
    "segments",
    "tmp",
    "index",
    "quarantine",
)


def refuse_links(root: Path) -> None:
    """Refuse a store folder that is, or holds in place of its own files, a symbolic link.

    Opening, rebuilding and quarantining all write into the store; through a link they would
    write (or delete) outside it.

    Raises:
        UnsafePath: ``root`` or one of ``STORE_NAMES`` inside it is a symbolic link.
    """
    for path in (root, *(root / name for name in STORE_NAMES)):
        if path.is_symlink():
            msg = f"{path} is a symbolic link; stores refuse links so that nothing points outside the store."
            raise UnsafePath(msg)


def check_regular(path: Path) -> int:
    """The size of ``path`` if it is a regular file, checked without following a link.

    Raises:
        SegmentNotFound: the file does not exist.
        UnsafePath: a symbolic link, FIFO, device or folder (which could hang or fill a reader).
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError as e:
        msg = f"{path.name} is missing from {path.parent}."
        raise SegmentNotFound(msg) from e
    if not stat.S_ISREG(st.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        msg = f"{path} is {kind}; refusing to read it. Move it out of the store and try again."
        raise UnsafePath(msg)
    return st.st_size


def open_regular(path: Path) -> int:
    """Open ``path`` read-only without following a symlink; it must be a regular file.

    Raises:
        SegmentNotFound: the file does not exist.
        UnsafePath: it is a symbolic link or not a regular file (FIFO, device, folder).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as e:
        msg = f"{path.name} is missing from {path.parent}."
        raise SegmentNotFound(msg) from e
    except OSError as e:
        if path.is_symlink():
            msg = f"{path} is a symbolic link; refusing to follow it out of the store."
            raise UnsafePath(msg) from e
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        msg = f"{path} is not a regular file; refusing to read it."
        raise UnsafePath(msg)
    return fd


def read_regular(path: Path, limit: int = MAX_VECTOR_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see ``open_regular``).

    Raises:
        LimitExceeded: the file is larger than ``limit``.
    """
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            msg = f"{path.name} is {size} bytes; the limit for this file is {limit}. Refusing to read it."
            raise LimitExceeded(msg)
        chunks = []
        while block := os.read(fd, 1 << 20):
            chunks.append(block)
            size -= len(block)
            if size < 0:
                msg = f"{path.name} grew while it was read."
                raise LimitExceeded(msg)
        return b"".join(chunks)
    finally:
        os.close(fd)


def sha256_regular(path: Path) -> tuple[int, str]:
    """(size, hex SHA-256) of a regular file, read in blocks (see ``open_regular``)."""
    fd = open_regular(path)
    try:
        digest, size = hashlib.sha256(), 0
        while block := os.read(fd, 1 << 20):
            digest.update(block)
            size += len(block)
        return size, digest.hexdigest()
    finally:
        os.close(fd)


def move_aside(src: Path, folder: Path) -> Path:
    """Move ``src`` into ``folder`` under a name not yet taken there; returns where it went.

    Files the store cannot account for are moved, never deleted: they may be the only copy of
    records. Both folders are fsynced, so the move survives a crash.
    """
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        msg = f"{folder} is not a folder; move it away so that files can be set aside there."
        raise UnsafePath(msg)
    folder.mkdir(exist_ok=True)
    dst = folder / src.name
    n = 1
    while dst.exists() or dst.is_symlink():
        dst = folder / f"{src.name}.{n}"
        n += 1
    os.replace(src, dst)
    fsync_dir(src.parent)
    fsync_dir(folder)
    return dst


def fsync_file(path: Path) -> None:
    """Flush a file's bytes to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable (POSIX needs the directory fsynced too)."""
    fsync_file(path)
