"""Reading store files defensively: no symbolic links, only regular files, bounded sizes.

A crafted store may put a symlink, a FIFO or a device where a segment file belongs, or list an
absurd size for it. Everything the engine reads from ``segments/`` whole goes through here, so such
a file is refused with a clear error instead of being followed, blocking, or filling memory.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from .errors import LimitExceeded, SegmentNotFound, UnsafePath

MAX_VECTOR_FILE_BYTES = 16 << 30  # a vector file is read whole; refuse anything larger


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
