"""The storage engine: records -> compressed packs -> QR frames -> video segments, plus FAISS and a catalog.

It knows nothing of LangChain. ``Engine`` is the whole public surface; the rest of the package is
a thin face over it. ``docs/format.md`` specifies the bytes on disk. The rooms (one job each; see
docs/architecture.md): ``codec/`` (bytes <-> QR frames <-> video packets), ``storage/`` (the
store folder: segment files, reads, the commit), ``catalog/`` (what is live), ``search/``
(vectors, the FAISS index, filters); ``store.py`` orchestrates them.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from langchain_memvid.engine.errors import (
    BackendUnavailable,
    ChecksumMismatch,
    CommitConflict,
    CorruptData,
    DiskFull,
    FrameUnreadable,
    InvalidArgument,
    InvalidRecord,
    InvalidVector,
    LexiconMissing,
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

if TYPE_CHECKING:
    from .codec.records import Record, id_list
    from .parallel_index import IndexBuild, IndexPartJob, fill_index_part
    from .profiles import LOSSLESS, PROFILES, ROBUST, Profile, get_profile
    from .rebuild import RebuildReport, rebuild_store
    from .search.filters import Filter, compile_filter
    from .search.vectors import METRICS
    from .storage.reader import Location
    from .storage.segments import BuiltSegment, SegmentJob, build_segment
    from .store import SEGMENT_RECORDS, Bulk, Engine, Hit, recorded_settings, stored_ids
    from .verify import Problem, VerifyReport

__all__ = [
    "Engine",
    "Bulk",
    "SegmentJob",
    "BuiltSegment",
    "build_segment",
    "IndexBuild",
    "IndexPartJob",
    "fill_index_part",
    "SEGMENT_RECORDS",
    "stored_ids",
    "recorded_settings",
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
    "CommitConflict",
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
    "LexiconMissing",
    "StoreLocked",
    "ReadOnlyStore",
    "DiskFull",
    "StoreReplaced",
    "StoreIOError",
    "BackendUnavailable",
]


# Where each name that is not an error lives: imported by `__getattr__` on first access (PEP 562),
# so that importing one room (the errors, the profiles, the filters) does not import them all.
# Each module is imported by a literal import statement: nothing here imports a name it was given.
def _records() -> ModuleType:
    from langchain_memvid.engine.codec import records

    return records


def _profiles() -> ModuleType:
    from langchain_memvid.engine import profiles

    return profiles


def _rebuild() -> ModuleType:
    from langchain_memvid.engine import rebuild

    return rebuild


def _parallel_index() -> ModuleType:
    from langchain_memvid.engine import parallel_index

    return parallel_index


def _filters() -> ModuleType:
    from langchain_memvid.engine.search import filters

    return filters


def _vectors() -> ModuleType:
    from langchain_memvid.engine.search import vectors

    return vectors


def _reader() -> ModuleType:
    from langchain_memvid.engine.storage import reader

    return reader


def _segments() -> ModuleType:
    from langchain_memvid.engine.storage import segments

    return segments


def _store() -> ModuleType:
    from langchain_memvid.engine import store

    return store


def _verify() -> ModuleType:
    from langchain_memvid.engine import verify

    return verify


_SOURCES: dict[str, Callable[[], ModuleType]] = {
    "Record": _records,
    "id_list": _records,
    "LOSSLESS": _profiles,
    "PROFILES": _profiles,
    "ROBUST": _profiles,
    "Profile": _profiles,
    "get_profile": _profiles,
    "RebuildReport": _rebuild,
    "rebuild_store": _rebuild,
    "Filter": _filters,
    "compile_filter": _filters,
    "METRICS": _vectors,
    "Location": _reader,
    "Engine": _store,
    "Bulk": _store,
    "Hit": _store,
    "stored_ids": _store,
    "recorded_settings": _store,
    "SegmentJob": _segments,
    "BuiltSegment": _segments,
    "SEGMENT_RECORDS": _store,
    "build_segment": _segments,
    "IndexBuild": _parallel_index,
    "IndexPartJob": _parallel_index,
    "fill_index_part": _parallel_index,
    "Problem": _verify,
    "VerifyReport": _verify,
}


# Hidden from type checkers, which would otherwise take any misspelt name for an attribute; they
# see the names through the imports under TYPE_CHECKING above.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        """Import a public name from its module on first access (PEP 562), then keep it here."""
        load = _SOURCES.get(name)
        if load is None:
            msg = f"module {__name__!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(load(), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    """The module's own names plus the public ones not imported yet."""
    return sorted({*globals(), *__all__})
