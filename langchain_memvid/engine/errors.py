"""The engine's error types: each names a condition and inherits the matching builtin.

Callers can catch ``MemvidError`` for everything the engine raises on purpose, or the builtin
(``ValueError``, ``KeyError``, ``OSError``) they would expect from any Python library.

>>> try:
...     raise SegmentNotFound("segments/00000001-ab12cd34.mov is missing")
... except FileNotFoundError as e:
...     print(type(e).__name__, isinstance(e, MemvidError), isinstance(e, OSError))
SegmentNotFound True True
>>> issubclass(ChecksumMismatch, CorruptData), issubclass(InvalidRecord, ValueError)
(True, True)
"""

from __future__ import annotations


class MemvidError(Exception):
    """Base class of every error the engine raises on purpose."""


class InvalidRecord(MemvidError, ValueError):
    """A record cannot be stored: its id, text or metadata is not acceptable."""


class InvalidVector(MemvidError, ValueError):
    """A vector has the wrong dimension or holds NaN or infinity."""


class InvalidArgument(MemvidError, ValueError):
    """An argument is outside what the engine accepts (k <= 0, unknown option...)."""


class StoreConfigMismatch(MemvidError, ValueError):
    """The store was built with other settings (dimension, metric) than the caller asks for."""


class StoreNotFound(MemvidError, FileNotFoundError):
    """No store exists at the path and the caller asked not to create one."""


class NotAStore(MemvidError, OSError):
    """The path exists but is not a store folder (a file, or a folder with other content)."""


class UnsupportedFormat(MemvidError, ValueError):
    """The store or frame was written by a newer, unknown format version."""


class SegmentNotFound(MemvidError, FileNotFoundError):
    """A segment file the catalog refers to is missing."""


class CorruptData(MemvidError, OSError):
    """Stored bytes do not match their checksum or cannot be parsed."""


class ChecksumMismatch(CorruptData):
    """A frame, segment file or catalog row fails its checksum."""


class FrameUnreadable(CorruptData):
    """A video frame could not be decoded into a QR payload."""


class UnsafePath(MemvidError, PermissionError):
    """A path read from disk points outside the store (``..``, absolute path or symlink)."""


class LimitExceeded(MemvidError, ValueError):
    """A stored size or count is beyond the engine's safety limits (a crafted file)."""


class StoreLocked(MemvidError, TimeoutError):
    """Another process holds the write lock and did not release it in time."""


class ReadOnlyStore(MemvidError, PermissionError):
    """The store's folder or catalog cannot be written (permissions, a read-only file system)."""


class BackendUnavailable(MemvidError, ImportError):
    """An optional QR or video backend is not installed."""


class StoreIOError(MemvidError, OSError):
    """The operating system failed a read or write of a store file (an I/O error, not damage)."""


class DiskFull(StoreIOError):
    """The disk (or a file-size limit) left no room to write; nothing of the call was committed.

    Raised with ``errno`` set to ``ENOSPC`` (or ``EFBIG`` for a file-size limit), so code that
    checks ``OSError.errno`` sees the real condition.
    """


class StoreReplaced(MemvidError, RuntimeError):
    """The store's catalog was replaced (by ``rebuild``) after this handle opened it: reopen it."""


class LexiconMissing(MemvidError, LookupError):
    """Some segments have no lexical index (written before it existed): run ``build_lexicons``."""


class CommitConflict(MemvidError, RuntimeError):
    """Another writer published a version first; nothing of this call was committed."""
