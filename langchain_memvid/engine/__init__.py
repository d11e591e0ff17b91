"""The storage engine: records -> compressed packs -> QR frames -> video segments, plus FAISS and a catalog.

It knows nothing of LangChain. ``Engine`` is the whole public surface; the rest of the package is
a thin face over it. ``docs/format.md`` specifies the bytes on disk.
"""

from __future__ import annotations

from .errors import (
    BackendUnavailable,
    ChecksumMismatch,
    CorruptData,
    DiskFull,
    FrameUnreadable,
    InvalidArgument,
    InvalidRecord,
    InvalidVector,
    LimitExceeded,
    MemvidError,
    NotAStore,
    ReadOnlyStore,
    SegmentNotFound,
    StoreConfigMismatch,
    StoreIOError,
    StoreLocked,
    StoreNotFound,
    StoreReplaced,
    UnsafePath,
    UnsupportedFormat,
)
from .filters import Filter, compile_filter
from .profiles import LOSSLESS, PROFILES, ROBUST, Profile, get_profile
from .reader import Location
from .rebuild import RebuildReport, rebuild_store
from .records import Record
from .store import Engine, Hit
from .vectors import METRICS
from .verify import Problem, VerifyReport

__all__ = [
    "Engine",
    "Record",
    "Hit",
    "Location",
    "VerifyReport",
    "Problem",
    "RebuildReport",
    "rebuild_store",
    "Filter",
    "compile_filter",
    "METRICS",
    "Profile",
    "PROFILES",
    "LOSSLESS",
    "ROBUST",
    "get_profile",
    "MemvidError",
    "InvalidRecord",
    "InvalidVector",
    "InvalidArgument",
    "StoreConfigMismatch",
    "StoreNotFound",
    "NotAStore",
    "UnsupportedFormat",
    "SegmentNotFound",
    "CorruptData",
    "ChecksumMismatch",
    "FrameUnreadable",
    "UnsafePath",
    "LimitExceeded",
    "StoreLocked",
    "ReadOnlyStore",
    "DiskFull",
    "StoreReplaced",
    "StoreIOError",
    "BackendUnavailable",
]
