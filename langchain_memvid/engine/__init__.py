"""The storage engine: records -> compressed packs -> QR frames -> video segments, plus FAISS and a catalog.

It knows nothing of LangChain. ``Engine`` is the whole public surface; the rest of the package is
a thin face over it. ``docs/format.md`` specifies the bytes on disk. The rooms (one job each; see
docs/architecture.md): ``codec/`` (bytes <-> QR frames <-> video packets), ``storage/`` (the
store folder: segment files, reads, the commit), ``catalog/`` (what is live), ``search/``
(vectors, the FAISS index, filters); ``store.py`` orchestrates them.
"""

from __future__ import annotations

from langchain_memvid.engine.errors import (
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

from .codec.records import Record, id_list
from .profiles import LOSSLESS, PROFILES, ROBUST, Profile, get_profile
from .rebuild import RebuildReport, rebuild_store
from .search.filters import Filter, compile_filter
from .search.vectors import METRICS
from .storage.reader import Location
from .store import Engine, Hit
from .verify import Problem, VerifyReport

__all__ = [
    "Engine",
    "Record",
    "id_list",
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
