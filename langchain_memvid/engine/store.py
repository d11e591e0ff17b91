"""The engine: a folder of immutable video segments, a FAISS index and a SQLite catalog.

Layout (all paths relative to the store folder, so a store can be copied or synced anywhere)::

    catalog.sqlite          the source of truth for what is live
    segments/NAME.mov       QR frames: the only place record text is stored
    segments/NAME.faiss     the segment's vectors, written with FAISS's own writer
    index/GEN-TOKEN.faiss   the trained approximate index, when the store has one (see indexing.py)
    tmp/                    files of a write in progress; deleted by the next writer
    quarantine/             segment files the catalog does not know, moved aside (never deleted)
    LOCK                    the cross-process write lock

Every write call is one commit (``storage/commit.py``): build new segment files in ``tmp/``, fsync
them, commit their names as pending, rename them into ``segments/``, then record them in one SQLite
transaction. Until that transaction commits nothing of
the call is visible; afterwards all of it is durable.
"""

from __future__ import annotations

import json
import numbers
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import filelock
import numpy as np

from langchain_memvid.engine import indexing
from langchain_memvid.engine.catalog.catalog import Catalog, RecordRow, SegmentRow
from langchain_memvid.engine.codec.records import Record, encode_batch, encode_record, id_list
from langchain_memvid.engine.errors import (
    ChecksumMismatch,
    CommitConflict,
    CorruptData,
    InvalidArgument,
    LexiconMissing,
    MemvidError,
    ReadOnlyStore,
    SegmentNotFound,
    StoreLocked,
    StoreNotFound,
    StoreReplaced,
)
from langchain_memvid.engine.opening import check_index_choice, check_settings, has_catalog, open_folder
from langchain_memvid.engine.parallel_index import IndexBuild
from langchain_memvid.engine.profiles import get_profile
from langchain_memvid.engine.search.encodings import DEFAULT_ENCODING, check_encoding, recorded_encoding
from langchain_memvid.engine.search.filters import Filter, compile_filter
from langchain_memvid.engine.search.fusion import LEXICAL_WEIGHT, fuse
from langchain_memvid.engine.search.index import VectorIndex
from langchain_memvid.engine.search.index_spec import SEARCH_KEYS, IndexSpec
from langchain_memvid.engine.search.lexicon import LexicalIndex, build_lexicon, keeps_lexicon
from langchain_memvid.engine.search.live import LiveSet
from langchain_memvid.engine.search.record_ids import RecordIds
from langchain_memvid.engine.search.vector_files import VectorFiles, read_file_ids
from langchain_memvid.engine.search.vectors import check_metric, prepare_query, prepare_vectors, vector_size
from langchain_memvid.engine.storage.commit import (
    SegmentCommit,
    collect_garbage,
    delete_garbage,
    drop,
    placed_rows,
    quarantine,
    unknown_files,
)
from langchain_memvid.engine.storage.reader import Location, SegmentReader
from langchain_memvid.engine.storage.segments import BuiltSegment, SegmentBuilder, SegmentJob
from langchain_memvid.engine.verify import Problem, VerifyReport, verify_store
from langchain_memvid.engine.versions import local_folder, remote_location

if TYPE_CHECKING:
    from langchain_memvid.engine.versions.workspace import Workspace

SEGMENT_RECORDS = 4096  # records per segment when one call writes many: bounds memory while writing
SYNC_RETRIES = 8  # a reader catching up while compactions delete files starts over this often


@dataclass(frozen=True)
class Hit:
    """A search result: the record, its raw score and (when asked) its stored vector."""

    record: Record
    score: float
    vector: np.ndarray | None = None


class Engine:
    """A record store whose payload lives in QR-code video frames, searched with FAISS.

    Thread-safe: one lock serialises calls inside a process. Process-safe: a file lock admits one
    writer at a time, and readers reload when another process commits.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        dim: int | None = None,
        metric: str | None = None,
        model: str | None = None,
        profile: str = "lossless",
        create: bool = True,
        encoder: str = "zxing",
        decoder: str = "zxing",
        lock_timeout: float = 60.0,
        segment_records: int = SEGMENT_RECORDS,
        index: str | None = None,
        index_options: Mapping[str, Any] | None = None,
        vector_encoding: str | None = None,
        lexical_index: bool | None = None,
        storage_options: dict[str, Any] | None = None,
        version: int | None = None,
        as_of: float | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        refresh_interval: float = 1.0,
        cache_videos: bool = False,
    ) -> None:
        """Open (or create) the store at ``path``: a folder, or a URL fsspec knows.

        A URL (``s3://bucket/prefix``, ``gs://``, ``az://``, ``memory://``, ``file://``) or a
        folder holding ``_versions/`` is a versioned store (format 3, docs/format.md section 11):
        ``storage_options`` go to fsspec unchanged; every commit is a numbered version;
        ``version=N`` or ``as_of=<Unix time>`` opens an old one read-only; vector files and
        snapshots are kept in the object cache at ``cache_dir``; before a read, at most once per
        ``refresh_interval`` seconds, one GET checks for a newer version. Records are read with
        one ranged GET each, or with ``cache_videos`` from whole videos kept in the cache.

        ``lexical_index`` (default True) keeps the lexical index for lexical and hybrid search
        (about a sixth of the text's size); a store created with False has none until
        ``build_lexicons()``. Reopening with another choice raises ``StoreConfigMismatch``.

        ``vector_encoding`` picks how segment files keep vectors when the store is created: ``int8``
        (the default), ``float32`` (exact), ``float16`` or ``binary`` (docs/indexes.md); reopening with another raises
        ``StoreConfigMismatch`` (``compact(vector_encoding=...)`` converts a store).

        ``index`` picks the vector index when the store is created: ``flat`` (exact, the default),
        ``ivf``, ``ivfpq``, ``hnsw``, ``lsh`` or a FAISS factory string; ``index_options`` tunes it
        (build options such as ``nlist``, ``m``, ``M``, ``min_vectors``; search defaults
        ``nprobe``, ``efSearch``, ``refine``, ``exact_max``; and per-open ``mmap`` and ``gpu``).
        The choice is recorded in the store; reopening uses it, and build options that differ from
        it raise ``StoreConfigMismatch`` (``build_index()`` changes the index). See docs/indexes.md.
        """
        # A new store takes ``index`` (default flat); an existing one keeps what it recorded, so
        # options without ``index`` are checked against that further down.
        if metric is not None:
            check_metric(metric)
        if vector_encoding is not None:
            check_encoding(vector_encoding, dim, metric or "cosine")
        self.location = os.fspath(path)
        self.storage_options = dict(storage_options) if storage_options else None
        self._versions: Workspace | None = None
        url = remote_location(path, storage_options, versioned_args=version is not None or as_of is not None)
        if url is not None:
            from langchain_memvid.engine.versions.workspace import Workspace

            self._versions = Workspace(
                url,
                storage_options,
                version=version,
                as_of=as_of,
                cache_dir=cache_dir,
                create=create,
                refresh_interval=refresh_interval,
                cache_videos=cache_videos,
            )
            path = self._versions.folder
        else:
            path = local_folder(path)
        try:
            self._open(
                Path(path),
                dim,
                metric,
                model,
                profile,
                create or url is not None,
                encoder,
                decoder,
                lock_timeout,
                segment_records,
                index,
                index_options,
                vector_encoding,
                lexical_index,
            )
        except BaseException:
            if self._versions is not None:
                self._versions.close()
            raise

    def _open(
        self,
        path: Path,
        dim: int | None,
        metric: str | None,
        model: str | None,
        profile: str,
        create: bool,
        encoder: str,
        decoder: str,
        lock_timeout: float,
        segment_records: int,
        index: str | None,
        index_options: Mapping[str, Any] | None,
        vector_encoding: str | None,
        lexical_index: bool | None,
    ) -> None:
        reopen = index is None and (Path(path) / Catalog.FILE).exists()
        spec, self._open_opts = IndexSpec.parse(
            None if reopen else index, None if reopen else index_options, metric or "cosine"
        )
        if not reopen and dim is not None and spec.kind != "flat":
            IndexSpec.parse(index, index_options, metric or "cosine")[0].new_index(dim, metric or "cosine", 1)
        self.path = Path(path)
        self.encoder, self.decoder = encoder, decoder
        self.lock_timeout = lock_timeout
        self.segment_records = max(1, segment_records)
        self._lock = threading.RLock()
        open_folder(self.path, create)
        existed = has_catalog(self.path, create)
        self.catalog = Catalog(self.path / Catalog.FILE)
        self._file_lock = filelock.FileLock(str(self.path / "LOCK"))
        initial = {
            "dim": dim,
            "metric": metric or "cosine",
            "model": model,
            "profile": get_profile(profile).name,
            "index": spec.to_meta(),
            "vector_encoding": vector_encoding or DEFAULT_ENCODING,
            "lexical_index": True if lexical_index is None else bool(lexical_index),
        }
        try:
            # An existing store opens without waiting for a writer in another process: this
            # process reads the last commit, and that writer (or the next) cleans up leftovers.
            with self._writer(initial=True, timeout=0 if existed else None):
                self._initialise(initial)
        except StoreLocked:
            if self.catalog.raw_version() is None:  # still being created by the lock holder
                with self._writer(initial=True):
                    self._initialise(initial)
        if self._versions is not None and self._versions.head is None:
            # A new store in a bucket exists once its first version does; when another process
            # created it first, the workspace now holds theirs.
            with suppress(CommitConflict):
                self._versions.publish("create", "created the store")
        self.catalog.check_version()
        settings = self.catalog.settings()
        check_settings(settings, dim, metric, vector_encoding, lexical_index)
        self._catalog_id = settings.get("catalog_id")
        recorded = IndexSpec.from_meta(settings.get("index"))
        spec, self._open_opts = IndexSpec.parse(
            recorded.name if reopen else index, index_options, str(settings["metric"])
        )
        check_index_choice(recorded, spec, index)
        self._search_opts = {k: v for k, v in spec.options.items() if k in SEARCH_KEYS}
        self._vector_files: VectorFiles | None = None
        self.settings = settings
        self.profile = get_profile(settings["profile"])
        self.reader = SegmentReader(self.path, self.catalog, self.decoder, remote=self._versions)
        self._commit = SegmentCommit(self.path, self.catalog, self.profile.name)
        self._index_host = indexing.IndexHost(
            path=self.path,
            catalog=self.catalog,
            reader=self.reader,
            settings=lambda: self.settings,
            segments=lambda: self._segments,
            exact_vectors=self._exact_vectors,
            search_options=lambda: self._search_opts,
            open_options=self._open_opts,
        )
        self._generation = self._seen_generation = -1
        self._published = (-1, 0)  # (generation, records) of the last version published or read
        self._segments: dict[int, SegmentRow] = {}
        self._index: VectorIndex | None = None
        self._metadata: dict[int, dict[str, Any]] | None = None
        self._record_ids: RecordIds | None = None
        self._lexical: LexicalIndex | None = None  # loaded on the first lexical search
        self._synced: tuple[tuple[int, int], int] | None = None  # (change token, generation)
        self._sync()

    # -- opening -------------------------------------------------------------------------

    def _initialise(self, settings: dict[str, Any]) -> None:
        """Create the catalog if needed and delete a crashed write's leftovers (under the lock)."""
        if not self.catalog.is_empty():
            self.catalog.check_version()  # before the first write to it: ``create`` adds tables
        self.catalog.create(settings)
        self._collect_garbage()
        self._list_dead()

    def _list_dead(self) -> None:
        """List the dead vectors of a catalog that has no complete list (a 0.1 store), once.

        Reads every live segment's id list; a damaged vector file leaves the list missing (readers
        then read every live id, and ``verify`` reports the file).
        """
        if self.catalog.dead_vector_ids() is not None:
            return
        dim = self.catalog.settings().get("dim")
        with suppress(MemvidError, OSError):
            files = {
                seg.seq: read_file_ids(self.path / "segments" / seg.index_file, int(dim))
                for seg in self.catalog.segments()
                if seg.kind == "records" and dim is not None
            }
            with self.catalog.transaction():
                self.catalog.list_dead(files)

    def _collect_garbage(self) -> None:
        """Recovery before a write (``commit.collect_garbage``), and stale index snapshots."""
        collect_garbage(self.path, self.catalog)
        with suppress(MemvidError):
            indexing.clean_folder(self.path, indexing.snapshot_file(self.catalog.get_meta("index_snapshot")))

    # -- versions ------------------------------------------------------------------------

    @property
    def version(self) -> int | None:
        """The version this handle serves (a versioned store), else None."""
        head = self._versions.head if self._versions is not None else None
        return head.number if head is not None else None

    @property
    def read_only(self) -> bool:
        """True for a handle on an old version (``version=`` or ``as_of=``)."""
        return self._versions is not None and self._versions.read_only

    def versions(self) -> list[dict[str, Any]]:
        """Every version still kept, oldest first: number, created (Unix time), operation, summary.

        Raises:
            InvalidArgument: a format-1/2 folder, which keeps no versions.
        """
        workspace = self._require_versions("versions()")
        return [
            {"version": v.number, "created": v.created, "operation": v.operation, "summary": v.summary}
            for v in workspace.versions()
        ]

    def refresh(self) -> int | None:
        """Take in versions other writers published (no wait for ``refresh_interval``); the version now served."""
        with self._lock:
            if self._versions is not None and self._versions.catch_up(force=True):
                self._synced = None
            self._sync()
            return self.version

    def cleanup(
        self,
        *,
        older_than: float | timedelta = timedelta(days=7),
        keep_last: int = 10,
        grace: float | timedelta | None = None,
    ) -> dict[str, Any]:
        """Remove versions no longer kept and the objects no kept version names.

        Keeps the newest version, the last ``keep_last`` and every version younger than
        ``older_than``; an unreferenced object goes only once older than ``grace`` (default
        ``older_than``, at least an hour), so open readers and writers mid-upload are safe.
        Returns what was removed. Raises ``InvalidArgument`` on a format-1/2 folder.
        """
        workspace = self._require_versions("cleanup()")
        with self._lock:
            return workspace.cleanup(
                older_than=_seconds(older_than),
                keep_last=keep_last,
                grace=None if grace is None else _seconds(grace),
            )

    def migrate(self, url: str, storage_options: dict[str, Any] | None = None) -> int:
        """Copy this format-1/2 store, verified, to a new versioned store at ``url``; returns its version (1).

        The folder stays as it is. Raises ``CorruptData`` when ``verify`` finds problems (fix or
        rebuild first), ``InvalidArgument`` when ``url`` already holds a store.
        """
        if self._versions is not None:
            msg = f"{self.location} is already a versioned store; copy it with your storage's tools."
            raise InvalidArgument(msg)
        from langchain_memvid.engine.versions.migrate import copy_store

        with self._writer(operation="migrate"):
            report = self.verify()
            if not report.ok:
                msg = f"{self.location} has {len(report.problems)} problems (`lcmemvid verify` lists them); migration refuses to copy damage. Fix or rebuild the store first."
                raise CorruptData(msg)
            return copy_store(self.path, url, storage_options).number

    def _require_versions(self, what: str) -> Workspace:
        if self._versions is None:
            msg = f"{what} needs a versioned store (a URL, or a folder migrated with `lcmemvid migrate`); {self.location} is a format-1/2 folder."
            raise InvalidArgument(msg)
        return self._versions

    # -- properties ----------------------------------------------------------------------

    @property
    def dim(self) -> int | None:
        """Vector dimension, or None until the first record is added."""
        return self.settings.get("dim")

    @property
    def metric(self) -> str:
        """``cosine``, ``ip`` or ``l2``."""
        return str(self.settings["metric"])

    @property
    def vector_encoding(self) -> str:
        """How new segments keep their vectors: ``float32``, ``float16``, ``int8`` or ``binary``."""
        return recorded_encoding(self.settings)

    @property
    def model(self) -> str | None:
        """Name of the embedding model recorded when the store was created."""
        return self.settings.get("model")

    def __len__(self) -> int:
        with self._lock:
            if self._versions is not None:
                self._sync()  # takes in a newer version, at most once per refresh_interval
            return self.catalog.count()

    def close(self) -> None:
        """Release file handles and the catalog connection."""
        with self._lock:
            self.reader.close()
            if self._vector_files is not None:
                self._vector_files.close()
            self._index = None  # releases a memory-mapped index
            self.catalog.close()
            if self._versions is not None:
                self._versions.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state ---------------------------------------------------------------------------

    def _sync(self) -> None:
        """Catch up with commits made by other processes (cheap when nothing changed).

        The catalog is read in one read transaction, so settings, segments and live records are
        one committed state. A compaction committed after that snapshot may already have deleted
        files it names: then the sync starts over from the newer state. Nothing in memory changes
        until a sync succeeds.
        """
        if self._versions is not None and self._versions.catch_up():
            self._synced = None  # a newer version was taken into the catalog
        token = self.catalog.change_token()
        if (token, self._generation) == self._synced:
            return  # nothing written since the last check, by anyone, and nothing dropped here
        for attempt in range(SYNC_RETRIES):
            if self.catalog.generation() == self._generation:
                break
            try:
                self._sync_once()
                break
            except (SegmentNotFound, ChecksumMismatch):
                if attempt == SYNC_RETRIES - 1 or self.catalog.generation() == self._seen_generation:
                    raise
        self._synced = (token, self._generation)

    def _sync_once(self) -> None:
        with self.catalog.snapshot():
            gen = self._seen_generation = self.catalog.generation()
            settings = self.catalog.settings()
            segments = {s.seq: s for s in self.catalog.segments()}
            spec = IndexSpec.from_meta(settings.get("index"))
            dead = self.catalog.dead_vector_ids() if spec.kind == "flat" else None
            live = LiveSet(dead=dead) if dead is not None else LiveSet(ids=self.catalog.live_vector_ids())
        dim = settings.get("dim")
        snap = settings.get("index_snapshot")
        index = self._index
        rebuilt = settings.get("catalog_id") != self.settings.get("catalog_id")
        if rebuilt:  # a rebuilt store: the same sequence numbers may now name other files
            for seq in list(self._segments):
                self.reader.forget(seq)
            self._segments = {}
            self._lexical = None  # and other lexicons, under vector ids that may be renumbered
        rebuild_all = (
            rebuilt
            or index is None
            or any(seq not in segments for seq in self._segments)
            or index.spec != spec
            or snap != self.settings.get("index_snapshot")
        )
        if dim is not None and rebuild_all:
            self._track_vector_files(int(dim), segments)
            index, covered = indexing.open_index(
                self._index_host, int(dim), str(settings["metric"]), spec, snap, live, gen, segments
            )
            new = [s for s in segments.values() if s.seq not in covered]
        else:
            new = [s for seq, s in segments.items() if seq not in self._segments]
        loaded = []
        if index is not None:
            for seg in new:
                if seg.kind != "records":
                    continue
                ids, vectors = self.reader.load_vectors(seg, int(settings["dim"]))
                keep = live.mask(ids)
                loaded.append((ids[keep], vectors[keep]))
        # Everything is read: apply it.
        if rebuild_all:
            self._record_ids = None  # e.g. a rebuild that had to number vectors anew
        if index is not None:
            for ids, vectors in loaded:
                index.add(ids, vectors)
            if not rebuild_all:
                index.remove(live.gone(index.ids()))
        self._index = index
        self.settings = settings
        for seq in [s for s in self._segments if s not in segments]:
            self.reader.forget(seq)
        self._segments = self.reader.segments = segments
        if dim is not None:
            self._track_vector_files(int(dim), segments)
        # Dictionaries load with a segment's first read (one more frame decode then), so opening
        # reads no video frames whatever the number of segments.
        self.reader.clear_packs()
        self._metadata = None
        self._generation = gen

    @contextmanager
    def _writer(
        self, *, initial: bool = False, timeout: float | None = None, operation: str = "add"
    ) -> Iterator[None]:
        """Hold the thread lock and the cross-process write lock, and start from the latest state.

        On a versioned store the write then publishes as the next version (``operation`` names
        it); a failed publish leaves the handle at the newest version, the write undone.
        """
        wait = self.lock_timeout if timeout is None else timeout
        with self._lock:
            if self._versions is not None and self._versions.read_only and not initial:
                msg = f"This handle reads version {self.version} of {self.location}, which cannot change; open the store without version= or as_of= to write."
                raise ReadOnlyStore(msg)
            try:
                self._file_lock.acquire(timeout=wait)
            except filelock.Timeout as e:
                msg = f"Another process is writing to {self.path} and held its lock for {wait} s; retry later or raise lock_timeout."
                raise StoreLocked(msg) from e
            try:
                if not initial:
                    if self._versions is not None:
                        self._versions.catch_up(force=True)
                    self._check_catalog_identity()
                    self._sync()
                    self._collect_garbage()
                    self._published = (self.catalog.generation(), self.catalog.count())
                try:
                    yield
                finally:
                    if not initial:
                        self._publish(operation)
            finally:
                self._file_lock.release()

    def _publish(self, operation: str) -> None:
        """Publish local commits as the next version (a versioned store, when there are any).

        On any failure the handle goes back to the newest published version: the write is undone.
        """
        if self._versions is None or self.catalog.generation() == self._published[0]:
            return
        after = self.catalog.count()
        summary = f"{operation}: {after - self._published[1]:+d} records, {after} in all"
        try:
            self._versions.publish(operation, summary)
            self._published = (self.catalog.generation(), after)
        except BaseException:
            with suppress(Exception):
                self._versions.reset()
            # What the catalog holds now is published (the newest version): nothing to publish.
            self._published = (self.catalog.generation(), self.catalog.count())
            self._index, self._generation, self._synced = None, -1, None
            with suppress(Exception):
                self._sync()
            raise

    def _check_catalog_identity(self) -> None:
        """Refuse to commit through a handle whose catalog was replaced since it opened the store.

        ``rebuild`` writes a new catalog identity (under the write lock); a handle that still
        believed the old state would otherwise commit on top of records it never saw. The refusal
        is once: the handle then takes the new identity and catches up on its next call.
        """
        if self.catalog.replaced():
            msg = f"The catalog of {self.path} was replaced by another file after this handle opened it (moved, restored or copied over); nothing was written. Close this handle and open the store again."
            raise StoreReplaced(msg)
        current = self.catalog.get_meta("catalog_id")
        if current != self._catalog_id:
            self._catalog_id = current
            msg = f"The store at {self.path} was rebuilt after this handle opened it, so its records may differ from what this handle saw; nothing was written. Retry the call (this handle now reads the rebuilt store)."
            raise StoreReplaced(msg)

    # -- writing -------------------------------------------------------------------------

    def add(self, records: Sequence[Record], vectors: Any) -> list[str]:
        """Add or replace records with their vectors, atomically.

        Duplicate ids within one call: the last occurrence wins. Re-adding an existing id replaces
        it (upsert).

        Returns:
            The ids written, each once, in the order of its last occurrence in the input.

        Raises:
            InvalidRecord: a record's id, text or metadata cannot be stored (nothing is written).
            InvalidVector: a vector has the wrong dimension or NaN/inf (nothing is written).
        """
        encoded, kept = encode_batch(records, vectors)
        if not encoded:
            return []
        with self._writer():
            dim = self.dim or vector_size(kept[0])
            prepared = prepare_vectors(kept, dim, self.metric)
            check_encoding(self.vector_encoding, dim, self.metric)
            spec = IndexSpec.from_meta(self.settings.get("index"))
            if self.dim is None and spec.kind != "flat":
                spec.new_index(dim, self.metric, 1)  # impossible settings fail before anything is written
            first_vid = int(self.catalog.get_meta("next_vector_id") or 0)
            vids = np.arange(first_vid, first_vid + len(encoded), dtype=np.int64)
            settings = {**self.settings, "dim": dim}
            builder = SegmentBuilder(self.path / "tmp", self.profile, encoder=self.encoder, settings=settings)
            built: list[BuiltSegment] = []
            with self._commit.undone_on_failure(built):
                seq, per = self.catalog.next_seq(), self.segment_records
                for start in range(0, len(encoded), per):
                    stop = start + per
                    built.append(
                        builder.build_records(
                            seq, encoded[start:stop], prepared[start:stop], vids[start:stop]
                        )
                    )
                    seq += 1
                rows = placed_rows(
                    built,
                    [
                        (e.id, int(v), len(e.text_bytes), json.loads(e.metadata_json))
                        for e, v in zip(encoded, vids, strict=True)
                    ],
                    per,
                )
                gen, replaced = self._publish_records(built, rows, first_vid + len(encoded), dim)
            self._index_records(built, replaced, gen, dim)
        return [e.id for e in encoded]

    def _publish_records(
        self, built: list[BuiltSegment], rows: list[RecordRow], next_vector_id: int, dim: int
    ) -> tuple[int, list[int]]:
        """Publish records segments and commit them with their rows in one transaction.

        Inside the caller's ``undone_on_failure``; returns (generation, replaced vector ids).
        """
        self._commit.publish(built)
        with self.catalog.transaction():
            if self.dim is None:
                self.catalog.set_meta("dim", dim)
            for seg in built:
                self._commit.record(seg, len(seg.placements))
            replaced = self.catalog.put_records(rows)
            self.catalog.set_meta("next_vector_id", next_vector_id)
            return self.catalog.bump_generation(), replaced

    def _index_records(self, built: list[BuiltSegment], replaced: list[int], gen: int, dim: int) -> None:
        """Bring the index and this handle's view up to a committed add."""
        self.settings["dim"] = dim
        if self._index is None:
            spec = IndexSpec.from_meta(self.settings.get("index"))
            self._index = self._index_host.empty_index(dim, self.metric, spec)
        self._index.remove(replaced)
        held = [seg for seg in built if seg.vectors is not None and seg.vector_ids is not None]
        self._index.add(
            np.concatenate([seg.vector_ids for seg in held]),
            np.concatenate([seg.vectors for seg in held]),
        )
        self._after_commit(gen, built)
        self._apply(indexing.after_add(self._index_host, self._index))

    @contextmanager
    def bulk(self, dim: int, *, defer_index: bool = False) -> Iterator[Bulk]:
        """A long write whose segments are built elsewhere (a cluster's workers), committed here.

        Holds the write lock throughout. ``Bulk.jobs`` hands out segment jobs (sequence numbers
        and vector ids reserved in order); anything that sees the store folder builds them with
        ``storage.segments.build_segment`` into ``tmp/``; ``Bulk.commit`` makes a run of them
        live in one atomic commit, in the order they were handed out. A job never committed
        costs nothing: ``tmp/`` is emptied when the block ends (and by any later writer), and
        its numbers are skipped.

        With ``defer_index``, commits leave this handle's index alone (no vectors held in memory,
        no training or snapshot of an approximate index): its next read loads the index from the
        files, and the caller builds an approximate one afterwards (``build_index`` or
        ``index_build``). For ingests larger than the committing process's memory.

        Raises:
            InvalidArgument: ``dim`` is not the store's dimension (or not positive).
        """
        dim = _positive(dim, "dim")
        with self._writer(operation="add"):
            if self.dim not in (None, dim):
                msg = f"The store holds {self.dim}-dimensional vectors, not {dim}."
                raise InvalidArgument(msg)
            check_encoding(self.vector_encoding, dim, self.metric)
            spec = IndexSpec.from_meta(self.settings.get("index"))
            if self.dim is None and spec.kind != "flat":
                spec.new_index(dim, self.metric, 1)
            bulk = Bulk(self, dim, defer_index=defer_index)
            try:
                yield bulk
            finally:
                bulk.discard_uncommitted()

    def _commit_bulk(
        self, built: list[BuiltSegment], next_vector_id: int, dim: int, *, defer_index: bool
    ) -> None:
        """Commit segments a ``Bulk`` checked (the write lock is held)."""
        rows = [row for seg in built for row in placed_rows([seg], seg.rows or [], len(seg.rows or []))]
        with self._commit.undone_on_failure(built):
            gen, replaced = self._publish_records(built, rows, next_vector_id, dim)
        if not defer_index:
            self._index_records(built, replaced, gen, dim)
        else:
            self.settings["dim"] = dim
            self._after_commit(gen, built)
            self._index, self._generation = None, -1  # loaded from the files by the next read
        self._publish("add")  # each bulk commit is a version of a versioned store

    def delete(self, ids: Sequence[str]) -> int:
        """Delete records by id; unknown ids are ignored. Returns how many were deleted."""
        wanted = [i for i in dict.fromkeys(id_list(ids)) if isinstance(i, str)]
        if not wanted:
            return 0
        with self._writer(operation="delete"):
            found = self.catalog.vector_ids(wanted)
            if not found:
                return 0
            seq = self.catalog.next_seq()
            builder = SegmentBuilder(
                self.path / "tmp", self.profile, encoder=self.encoder, settings=self.settings
            )
            built: list[BuiltSegment] = []
            with self._commit.undone_on_failure(built):
                built.append(builder.build_tombstones(seq, list(found)))
                self._commit.publish(built)
                with self.catalog.transaction():
                    self._commit.record(built[0], 0)
                    self.catalog.delete_records(list(found))
                    gen = self.catalog.bump_generation()
            if self._index is not None:
                self._index.remove(list(found.values()))
            self._after_commit(gen, built)
            return len(found)

    def compact(self, *, vector_encoding: str | None = None) -> dict[str, int]:
        """Rewrite live records into fresh segments and drop dead frames and tombstones.

        ``vector_encoding`` converts the store to that encoding on the way (every segment is
        rewritten, so every vector is then kept that way); it stays the store's choice.

        Returns:
            Bytes of video before and after, and segment counts.

        Raises:
            InvalidArgument: an unknown encoding, or one that cannot hold the store's vectors.
        """
        if vector_encoding is not None:
            check_encoding(vector_encoding, self.dim, self.metric)
        with self._writer(operation="compact"):
            before = self.catalog.stats()
            old = list(self._segments.values())
            rows = list(self.catalog.iter_records())
            settings = {**self.settings, "vector_encoding": vector_encoding or self.vector_encoding}
            converted = settings["vector_encoding"] != self.vector_encoding
            builder = SegmentBuilder(self.path / "tmp", self.profile, encoder=self.encoder, settings=settings)
            built: list[BuiltSegment] = []
            with self._commit.undone_on_failure(built):
                seq, per = self.catalog.next_seq(), self.segment_records
                for start in range(0, len(rows), per):  # read, encode and write a segment at a time
                    chunk = rows[start : start + per]
                    records = self._read_rows(chunk)
                    encoded = [encode_record(records[r.id]) for r in chunk]
                    assert self._index is not None
                    vids = np.array([r.vector_id for r in chunk], dtype=np.int64)
                    built.append(
                        builder.build_records(seq, encoded, self._index.reconstruct(vids.tolist()), vids)
                    )
                    seq += 1
                self._commit.publish(built)
                new_rows = placed_rows(
                    built, [(r.id, r.vector_id, r.text_bytes, r.metadata) for r in rows], per
                )
                with self.catalog.transaction():
                    drop(self.catalog, old)
                    for seg in built:
                        self._commit.record(seg, len(seg.placements))
                    self.catalog.put_records(new_rows)
                    if converted:
                        self.catalog.set_vector_encoding(settings["vector_encoding"])
                    gen = self.catalog.bump_generation()
                self.settings["vector_encoding"] = settings["vector_encoding"]
            self._after_commit(gen, built)
            for dead in old:
                self.reader.forget(dead.seq)
            delete_garbage(self.path, self.catalog)
            # Serve the new files as a reader would: re-encoded vectors (a new encoding, or int8
            # calibrated anew) differ from those in memory, and mapped files are gone.
            outcome = indexing.after_compact(self._index_host, self._index)
            self._apply(indexing.Outcome(outcome.generation, reload=True))
            after = self.catalog.stats()
            return {
                "video_bytes_before": before["video_bytes"],
                "video_bytes_after": after["video_bytes"],
                "segments_before": before["segments"],
                "segments_after": after["segments"],
                "records": after["records"],
            }

    def _after_commit(self, gen: int, built: list[BuiltSegment]) -> None:
        """Bring the in-memory view up to the commit this process just made."""
        self._segments = self.reader.segments = {s.seq: s for s in self.catalog.segments()}
        if self.dim is not None:
            self._track_vector_files(int(self.dim), self._segments)
        for seg in built:
            self.reader.remember_dictionary(seg.seq, seg.dictionary)
        self.reader.clear_packs()
        self._metadata = None
        self._generation = gen

    def _apply(self, outcome: indexing.Outcome) -> None:
        """Take in what index maintenance did: its own commit, and a reload to serve a new index."""
        if outcome.generation is not None:
            self._generation = self._seen_generation = outcome.generation
        if outcome.reload:
            self._index = None  # rebuilt from the files (and the new snapshot) by the sync
            self._generation = -1
            self._sync()

    def _track_vector_files(self, dim: int, segments: Mapping[int, SegmentRow]) -> None:
        """Tell the exact-vector reader which segment vector files exist."""
        if self._vector_files is None or self._vector_files.dim != dim:
            self._vector_files = VectorFiles(self.path / "segments", dim)
        self._vector_files.follow({seq: s.index_file for seq, s in segments.items() if s.kind == "records"})

    def _exact_vectors(self, vector_ids: np.ndarray) -> np.ndarray:
        """Exact vectors of live ids, read from the segment vector files (for ANN indexes)."""
        if self._vector_files is None:
            msg = "The store has no vectors yet."
            raise InvalidArgument(msg)
        return self._vector_files.get(vector_ids)

    # -- reading -------------------------------------------------------------------------

    def get(self, ids: Sequence[str]) -> list[Record]:
        """The live records among ``ids``, in the order asked; unknown ids are skipped."""
        with self._lock:
            self._sync()
            ids = [i for i in id_list(ids) if isinstance(i, str)]
            rows = self.catalog.records(ids)
            found = self._read_rows(list(rows.values()))
            return [found[i] for i in dict.fromkeys(ids) if i in found]

    def iter_records(self, batch: int = 1024) -> Iterator[Record]:
        """Every live record, in storage order (cheapest to read), in bounded batches."""
        with self._lock:
            self._sync()
            rows = list(self.catalog.iter_records())
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            with self._lock:
                found = self._read_rows(chunk)
            yield from (found[r.id] for r in chunk if r.id in found)

    def ids(self) -> list[str]:
        """Ids of all live records in storage order."""
        with self._lock:
            self._sync()
            return [r.id for r in self.catalog.iter_records()]

    def locate(self, ids: Sequence[str]) -> dict[str, Location]:
        """Segment file, frame number and timestamp of each live record among ``ids``."""
        with self._lock:
            self._sync()
            out = {}
            wanted = [i for i in id_list(ids) if isinstance(i, str)]
            for rid, row in self.catalog.records(wanted).items():
                out[rid] = self.reader.locate(row)
            return out

    def frame_image(self, segment: str, frame: int) -> np.ndarray:
        """The grayscale image of one video frame, as stored (``lossless``: 1 pixel per QR module).

        Args:
            segment: The segment's name, with or without ``segments/`` and ``.mov`` (as ``locate``
                gives it).
            frame: The frame number within the segment, from 0.

        Raises:
            SegmentNotFound: the catalog lists no such segment.
            InvalidArgument: the segment has no frame ``frame``.
            ChecksumMismatch: the frame's packet fails its CRC-32.
        """
        name = Path(segment).name.removesuffix(".mov")
        with self._lock:
            self._sync()
            seg = next((s for s in self._segments.values() if s.name == name), None)
            if seg is None:
                msg = f"No segment {segment!r} in {self.path}; `locate` (or the CLI's `search`) names them."
                raise SegmentNotFound(msg)
            return self.reader.frame_image(seg, frame)

    def _read_rows(self, rows: Sequence[RecordRow]) -> dict[str, Record]:
        """Read rows' records from the video, decoding each pack once.

        Readers take no lock, so another process may commit between this process's ``_sync`` and
        its read: an upsert moves a record to a segment not loaded yet, a compaction deletes the
        files the rows point at. When a read fails, catch up, fetch the rows again and retry, so
        such a race is never reported as damage; only a read that fails with rows and segments of
        one generation that is still current is damage. Records deleted meanwhile are left out.
        (The rows' age is what counts: another thread sharing this engine may have synced it
        since they were fetched.)
        """
        rows_generation = None  # unknown for the caller's rows
        for attempt in range(SYNC_RETRIES):
            try:
                return self.reader.read_rows(rows)
            except (SegmentNotFound, CorruptData):
                current = self.catalog.generation()
                if attempt == SYNC_RETRIES - 1 or rows_generation == self._generation == current:
                    raise
            self._sync()
            with self.catalog.snapshot():
                rows_generation = self.catalog.generation()
                rows = list(self.catalog.records([r.id for r in rows]).values())
        raise AssertionError("unreachable")  # pragma: no cover

    # -- searching -----------------------------------------------------------------------

    def search(
        self,
        query: Any,
        k: int,
        *,
        filter: Filter | None = None,
        with_vectors: bool = False,
        search_params: Mapping[str, int] | None = None,
    ) -> list[Hit]:
        """The k nearest live records to ``query``, filtered before the search.

        Scores: cosine similarity (``cosine``), inner product (``ip``) or Euclidean distance
        (``l2``). A filter restricts the candidate set first, so k results come back whenever at
        least k records match. ``search_params`` sets this query's knobs (``nprobe``,
        ``efSearch``, ``refine``, ``exact_max``; see docs/indexes.md).
        """
        with self._lock:
            vids, scores = self._nearest_vectors(query, k, self._filtered(filter), search_params)
            return self._hits(list(zip(vids, scores, strict=True)), with_vectors=with_vectors)

    def _hits(self, pairs: list[tuple[int, float]], *, with_vectors: bool = False) -> list[Hit]:
        """(vector id, score) pairs as hits, their records read from the video, in the same order."""
        rows = self.catalog.records_by_vector_ids([vid for vid, _ in pairs])
        records = self._read_rows([rows[i] for i, _ in pairs if i in rows])
        vectors = None
        if with_vectors and self._index is not None:
            vectors = self._index.reconstruct([i for i, _ in pairs])
        return [
            Hit(records[rows[vid].id], score, vectors[n] if vectors is not None else None)
            for n, (vid, score) in enumerate(pairs)
            if vid in rows and rows[vid].id in records  # a record deleted by a racing commit
        ]

    def lexical_search(self, query: str, k: int, *, filter: Filter | None = None) -> list[Hit]:
        """The k live records that best match the words of ``query`` (BM25), filtered first.

        Scores are BM25 (higher is better; search/lexicon.py gives the formula). Only records
        holding at least one of the query's words are hits, so fewer than k may come back.

        Raises:
            LexiconMissing: segments written before the lexical index existed have none yet;
                ``build_lexicons()`` (or ``lcmemvid build-lexicon``) adds them.
        """
        with self._lock:
            vids, scores = self._lexical_ranking(query, k, self._filtered(filter))
            return self._hits(list(zip(vids.tolist(), scores.tolist(), strict=True)))

    def hybrid_search(
        self,
        query: str,
        vector: Any,
        k: int,
        *,
        filter: Filter | None = None,
        weight: float | None = None,
        fetch_k: int | None = None,
    ) -> list[Hit]:
        """The k best live records by both the words of ``query`` and its ``vector``, filtered first.

        Each side ranks its ``fetch_k`` best (default ``max(4 * k, 40)``); the rankings are fused
        by weighted reciprocal rank (search/fusion.py): ``weight`` for the lexical ranking and
        ``1 - weight`` for the vector one (None: ``LEXICAL_WEIGHT``, 0.7, chosen by measurement). Scores are the fused values (higher is better).

        Raises:
            InvalidArgument: ``weight`` is not between 0 and 1, or ``fetch_k`` is below ``k``.
            LexiconMissing: as for ``lexical_search``.
        """
        if weight is None:
            weight = LEXICAL_WEIGHT
        if (
            isinstance(weight, bool)
            or not isinstance(weight, numbers.Real)
            or not 0.0 <= float(weight) <= 1.0
        ):
            msg = f"weight must be a number from 0 (vector only) to 1 (words only), got {weight!r}."
            raise InvalidArgument(msg)
        k = _positive(k, "k")
        depth = max(4 * k, 40) if fetch_k is None else _positive(fetch_k, "fetch_k")
        if depth < k:
            msg = f"fetch_k ({depth}) must be at least k ({k})."
            raise InvalidArgument(msg)
        with self._lock:
            allowed = self._filtered(filter)  # one pass over the metadata serves both sides
            words, _ = self._lexical_ranking(query, depth, allowed)
            near, _ = self._nearest_vectors(vector, depth, allowed, None)
            fused = fuse([(words.tolist(), float(weight)), (near, 1.0 - float(weight))], k)
            return self._hits(fused)

    def _lexical_ranking(
        self, query: str, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Vector ids and BM25 scores of the k best live records for ``query``'s words.

        ``allowed``: the filter's vector ids (``_filtered``), None for every record.
        """
        if not isinstance(query, str):
            msg = f"A lexical query must be a string, got {type(query).__name__}."
            raise InvalidArgument(msg)
        k = _positive(k, "k")
        lexicon = self._lexicon()
        index = self._index
        if index is None or not len(index) or (allowed is not None and not len(allowed)):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        return lexicon.search(
            query, k, live_key=(index, index.changes), is_live=index.is_live, allowed=allowed
        )

    def _lexicon(self) -> LexicalIndex:
        """The lexical index, caught up with the live segments (lexicons load on first use)."""
        self._sync()
        if self._lexical is None:
            self._lexical = LexicalIndex()
        for attempt in range(SYNC_RETRIES):
            seqs = [seq for seq, s in self._segments.items() if s.kind == "records"]
            try:
                self._lexical.follow(seqs, self._load_lexicons)
                return self._lexical
            except LexiconMissing:
                # A commit by another process may have dropped these segments (and their
                # lexicons) since the last sync: catch up and look again.
                if attempt == SYNC_RETRIES - 1 or self.catalog.generation() == self._generation:
                    raise
                self._sync()
        raise AssertionError("unreachable")  # pragma: no cover

    def _load_lexicons(self, seqs: list[int]) -> dict[int, bytes]:
        if not keeps_lexicon(self.settings):
            msg = f"{self.path} was created with lexical_index=False, so it has no lexical index; build_lexicons() (or `lcmemvid build-lexicon STORE`) adds it and keeps it from then on."
            raise LexiconMissing(msg)
        blobs = self.catalog.lexicons(seqs)
        lacking = [s for s in seqs if s not in blobs]
        if lacking:
            msg = f"{len(lacking)} of the segments of {self.path} have no lexical index (written before 0.2 or by an older version); run `lcmemvid build-lexicon STORE` (or Engine.build_lexicons()) once to add it. Vector search works meanwhile."
            raise LexiconMissing(msg)
        return blobs

    def search_ids(
        self,
        query: Any,
        k: int,
        *,
        filter: Filter | None = None,
        search_params: Mapping[str, int] | None = None,
    ) -> list[tuple[str, float]]:
        """Like ``search``, as (record id, score) pairs, without reading texts from the video.

        Record ids come from an in-memory map (``RecordIds``) that the first call fills from the
        catalog (about 2.6 s and 22 MiB at 1M records), so a search costs little beyond FAISS's.
        """
        with self._lock:
            vids, scores = self._nearest_vectors(query, k, self._filtered(filter), search_params)
            if not vids:
                return []
            names = self._record_ids_of(vids)
            return [(n, s) for n, s in zip(names, scores, strict=True) if n is not None]

    def _record_ids_of(self, vids: list[int]) -> list[str | None]:
        """Record ids of live vector ids, from the in-memory map, filled from the catalog on a miss."""
        assert self._index is not None
        if self._record_ids is None or len(self._record_ids) > 2 * len(self._index) + 1024:
            self._record_ids = RecordIds()  # first use, or mostly deleted: start afresh
        return self._record_ids.resolve(vids, self.catalog)

    def _nearest_vectors(
        self, query: Any, k: int, allowed: np.ndarray | None, search_params: Mapping[str, int] | None
    ) -> tuple[list[int], list[float]]:
        """Vector ids and scores of the k nearest live vectors, best first.

        ``allowed``: the filter's vector ids (``_filtered``), None for every vector. The common
        query (no filter, default knobs) takes ``VectorIndex.search_one``: at 1M vectors FAISS
        answers in under 1 ms, and every step around it shows in the latency.
        """
        k = _positive(k, "k")
        index, dim = self._index, self.dim
        if index is None or dim is None or not len(index):
            return [], []
        q = prepare_query(query, dim, self.metric)
        if allowed is None and not search_params:
            found = index.search_one(q, k)
            if found is not None:
                return found
        if allowed is not None and not len(allowed):
            return [], []
        scores, ids = index.search(q, k, allowed, search_params)
        keep = ids[0] >= 0  # results come best first, any -1 padding last
        return ids[0][keep].tolist(), scores[0][keep].tolist()

    def _filtered(self, filter: Filter | None) -> np.ndarray | None:
        """Vector ids of the live records ``filter`` accepts; None without a filter (every record).

        Compiles the filter (refusing a malformed one before any work) and catches up with other
        processes' commits first, so the ids are of the state the search then sees.
        """
        predicate = compile_filter(filter)
        self._sync()
        return None if predicate is None else self._allowed(predicate)

    def _allowed(self, predicate: Callable[[dict[str, Any]], bool]) -> np.ndarray:
        """Vector ids of the live records whose metadata ``predicate`` accepts."""
        return np.fromiter(
            (vid for vid, meta in self._all_metadata().items() if predicate(meta)), dtype=np.int64
        )

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors (normalised under cosine) of live records."""
        with self._lock:
            self._sync()
            found = self.catalog.vector_ids([i for i in id_list(ids) if isinstance(i, str)])
            if self._index is None or not found:
                return {}
            mat = self._index.reconstruct(list(found.values()))
            return dict(zip(found, mat, strict=False))

    def find(self, filter: Filter, limit: int | None = None) -> list[Record]:
        """The live records whose metadata match ``filter``: an exact query, no vector search.

        Every live record's metadata (held in memory, as for filtered searches) is tested, so
        the answer never depends on a guessed ``k``. Records come in the order they were last
        written; only the first ``limit`` matches are read from the video.

        Raises:
            InvalidArgument: the filter is None or malformed, or ``limit`` is not a positive int.
        """
        predicate = compile_filter(filter)
        if predicate is None:
            msg = "find needs a filter; iter_records() lists every record."
            raise InvalidArgument(msg)
        if limit is not None and (
            not isinstance(limit, numbers.Integral) or isinstance(limit, bool) or limit <= 0
        ):
            msg = f"limit must be a positive integer or None, got {limit!r}."
            raise InvalidArgument(msg)
        with self._lock:
            self._sync()
            vids = sorted(self._allowed(predicate).tolist())
            if limit is not None:
                vids = vids[: int(limit)]
            rows = self.catalog.records_by_vector_ids(vids)
            records = self._read_rows(list(rows.values()))
            # A record deleted by a racing commit is left out, as in ``search``.
            return [records[rows[v].id] for v in vids if v in rows and rows[v].id in records]

    def _all_metadata(self) -> dict[int, dict[str, Any]]:
        if self._metadata is None:
            self._metadata = {vid: json.loads(meta) for vid, meta in self.catalog.iter_metadata()}
        return self._metadata

    # -- maintenance ---------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts and sizes for ``info``."""
        with self._lock:
            self._sync()
            stats: dict[str, Any] = dict(self.catalog.stats())
            stats.update(
                dim=self.dim,
                metric=self.metric,
                model=self.model,
                vector_encoding=self.vector_encoding,
                vector_encodings=self._vector_files.encodings() if self._vector_files is not None else {},
                profile=self.profile.name,
                index_type=indexing.describe(self._index, self.settings),
                index=indexing.info(self._index, self.settings),
                vectors_in_index=len(self._index) if self._index is not None else 0,
                catalog_bytes=sum(
                    p.stat().st_size for p in self.path.glob(Catalog.FILE + "*") if p.is_file()
                ),
                lexical_index=keeps_lexicon(self.settings),
                lexicon_bytes=self.catalog.lexicon_bytes(),
                segments_without_lexicon=len(self.catalog.without_lexicon()),
            )
            text = stats["text_bytes"]
            stats["video_to_text"] = stats["video_bytes"] / text if text else None
            return stats

    def verify(self, *, cross_check: bool = True) -> VerifyReport:
        """Decode every frame, check every checksum and compare the video with the catalog."""
        with self._lock:
            self._sync()
            report = verify_store(
                self.catalog,
                self.reader,
                dim=self.dim,
                vectors_in_index=len(self._index) if self._index is not None else 0,
                unknown_files=self.unknown_files(),
                cross_check=cross_check,
            )
            snap = self.settings.get("index_snapshot")
            problem = indexing.check_snapshot(self.path, snap)
            if problem is not None:
                name = snap.get("file") if isinstance(snap, dict) else snap
                report.problems.append(Problem(f"{indexing.FOLDER}/{name}", problem))
            return report

    def unknown_files(self) -> list[str]:
        """Segment files (``segments/NAME.mov`` or ``.faiss``) that the catalog does not know.

        Neither live nor garbage the catalog committed: a write that crashed under an older
        library, a file copied in, or the records of a catalog that was lost. The store never
        deletes them; ``verify`` reports them and ``quarantine`` moves them aside. A versioned
        store has none to report: objects no version names are ``cleanup``'s.
        """
        with self._lock:
            self._sync()
            return [] if self._versions is not None else unknown_files(self.path, self.catalog)

    def quarantine(self) -> list[str]:
        """Move the files ``unknown_files`` lists into ``quarantine/``; returns where each went.

        Nothing is deleted: a file moved by mistake goes back with ``mv`` (and ``rebuild`` if its
        records should be live).
        """
        if self._versions is not None:
            msg = f"{self.location} is a versioned store: objects no version names are removed by cleanup(), not quarantined."
            raise InvalidArgument(msg)
        with self._writer():
            return quarantine(self.path, self.catalog)

    def build_lexicons(self) -> int:
        """Give the lexical index to segments written without one (by a library before it existed).

        Reads each such segment's live records from the video once; each segment's lexicon is
        committed on its own, so an interrupted call keeps its progress. Returns how many
        segments got one.
        """
        done = 0
        with self._writer(operation="lexicon"):
            wanted = set(self.catalog.without_lexicon())
            by_seq: dict[int, list[RecordRow]] = {seq: [] for seq in wanted}
            for row in self.catalog.iter_records():
                if row.seq in wanted:
                    by_seq[row.seq].append(row)
            for seq, rows in sorted(by_seq.items()):
                records = self._read_rows(rows)
                kept = [r for r in rows if r.id in records]
                blob = build_lexicon([r.vector_id for r in kept], [records[r.id].text for r in kept])
                with self.catalog.transaction():
                    self.catalog.put_lexicon(seq, blob)
                done += 1
            with self.catalog.transaction():
                self.catalog.prune_lexicons()
                self.catalog.set_meta("lexical_index", True)  # new segments keep one from now on
            self.settings["lexical_index"] = True
        return done

    def set_vector_encoding(self, encoding: str) -> None:
        """Keep the vectors of segments written from now on in ``encoding``.

        Existing segments keep theirs (a store may mix encodings; each file says its own) until
        ``compact()`` rewrites them; ``compact(vector_encoding=...)`` converts everything at once.

        Raises:
            InvalidArgument: an unknown encoding, or one that cannot hold the store's vectors.
        """
        check_encoding(encoding, self.dim, self.metric)
        with self._writer(operation="settings"):
            with self.catalog.transaction():
                self.catalog.set_vector_encoding(encoding)
                gen = self.catalog.bump_generation()
            self.settings["vector_encoding"] = encoding
            self._apply(indexing.Outcome(gen))

    def build_index(
        self, index: str | None = None, index_options: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Train and save the vector index now, optionally switching to another one.

        Without arguments: retrain the store's index on all current vectors (even below
        ``min_vectors``) and save its snapshot. With ``index``/``index_options``: record that index
        for the store instead (as ``Engine(index=...)`` would at creation) and build it.

        Returns:
            The ``index`` part of ``stats()``.

        Raises:
            InvalidArgument: impossible settings, too few vectors to train, or open-time options.
        """
        with self._writer(operation="index"):
            spec = self._index_choice(index, index_options)
            self._apply(indexing.rebuild(self._index_host, self._index, spec, retrain=True, force=True))
            return indexing.info(self._index, self.settings)

    @contextmanager
    def index_build(
        self, index: str | None = None, index_options: Mapping[str, Any] | None = None
    ) -> Iterator[IndexBuild]:
        """``build_index`` for an IVF index, with the vectors added elsewhere (a cluster's workers).

        Holds the write lock throughout and trains the index here, once, on a sample (as
        ``build_index`` does). ``IndexBuild.jobs`` hands out one job per segment; anything that
        sees the store folder runs ``parallel_index.fill_index_part(job, build.template)``, which
        writes that segment's inverted lists into ``tmp/``; ``IndexBuild.commit`` merges them on
        disk into the snapshot and serves it. Part files are deleted when the block ends.

        Raises:
            InvalidArgument: not an IVF index, no live vectors, too few to train, or open-time
                options (as ``build_index``).
        """
        with self._writer(operation="index"):
            build = IndexBuild(self._index_host, self._index_choice(index, index_options), self._apply)
            try:
                yield build
            finally:
                build.discard()

    def _index_choice(self, index: str | None, index_options: Mapping[str, Any] | None) -> IndexSpec:
        """The index ``build_index(index, index_options)`` builds (the store's own by default)."""
        spec = IndexSpec.from_meta(self.settings.get("index"))
        if index is not None or index_options is not None:
            name = index if index is not None else spec.name
            spec, runtime = IndexSpec.parse(name, index_options, self.metric)
            if runtime:
                msg = f"{sorted(runtime)} are open options; pass them to Engine(index_options=...)."
                raise InvalidArgument(msg)
            self._search_opts = {k: v for k, v in spec.options.items() if k in SEARCH_KEYS}
        if self.dim is not None and spec.kind != "flat":
            spec.new_index(int(self.dim), self.metric, 1)
        return spec


class Bulk:
    """Segment jobs handed out and committed in order, for ``Engine.bulk`` (see there)."""

    def __init__(self, engine: Engine, dim: int, *, defer_index: bool = False) -> None:
        self._engine = engine
        self.dim = dim
        self.defer_index = defer_index
        self._next_seq = engine.catalog.next_seq()
        self._next_vector_id = int(engine.catalog.get_meta("next_vector_id") or 0)
        self._open: dict[int, SegmentJob] = {}  # handed out, still committable, by seq
        self.committed = 0  # segments committed through this bulk

    def jobs(self, sizes: Sequence[int]) -> list[SegmentJob]:
        """One job per segment of ``sizes[i]`` records, numbered after everything handed out."""
        engine = self._engine
        settings = {**engine.settings, "dim": self.dim}
        out = []
        for size in sizes:
            job = SegmentJob(
                store=str(engine.path.resolve()),
                seq=self._next_seq,
                first_vector_id=self._next_vector_id,
                size=_positive(size, "a segment's size"),
                settings=settings,
                profile=engine.profile.name,
                encoder=engine.encoder,
            )
            self._open[job.seq] = job
            self._next_seq += 1
            self._next_vector_id += job.size
            out.append(job)
        return out

    def commit(self, built: Sequence[BuiltSegment]) -> None:
        """Make built segments live in one atomic commit; they must follow the order of their jobs.

        Raises:
            InvalidArgument: a segment is not one of this bulk's open jobs, comes out of order,
                or holds vector ids outside its job's.
        """
        segs = list(built)
        if not segs:
            return
        last = -1
        for seg in segs:
            job = self._open.get(seg.seq)
            if job is None or seg.seq <= last:
                msg = f"Segment {seg.seq} is not an open job of this bulk, or comes out of order; commit segments in the order their jobs were handed out."
                raise InvalidArgument(msg)
            vids = np.asarray(seg.vector_ids if seg.vector_ids is not None else [], dtype=np.int64)
            if (
                seg.rows is None
                or len(seg.rows) != len(seg.placements)
                or len(vids) != len(seg.rows)
                or (
                    len(vids)
                    and (vids.min() < job.first_vector_id or vids.max() >= job.first_vector_id + job.size)
                )
            ):
                msg = f"Segment {seg.seq} does not hold what its job reserved (records, placements or vector ids differ)."
                raise InvalidArgument(msg)
            tmp = (self._engine.path / "tmp").resolve()
            if Path(seg.video_path).resolve().parent != tmp or Path(seg.index_path).resolve().parent != tmp:
                msg = f"Segment {seg.seq}'s files are not in {self._engine.path / 'tmp'}."
                raise InvalidArgument(msg)
            last = seg.seq
        end = self._open[last]
        self._engine._commit_bulk(
            segs, end.first_vector_id + end.size, self.dim, defer_index=self.defer_index
        )
        for seq in [s for s in self._open if s <= last]:
            del self._open[seq]  # committed, or skipped by committing a later one
        self.committed += len(segs)

    def discard_uncommitted(self) -> None:
        """Empty ``tmp/``, which now holds only jobs never committed and replaced attempts at jobs.

        The write lock is still held, so no other write is in progress there.
        """
        shutil.rmtree(self._engine.path / "tmp", ignore_errors=True)
        (self._engine.path / "tmp").mkdir(exist_ok=True)
        self._open.clear()


def stored_ids(
    path: str | os.PathLike[str], ids: Sequence[str], storage_options: dict[str, Any] | None = None
) -> set[str]:
    """Which of ``ids`` the store at ``path`` holds, read from its catalog alone.

    For a process that only needs to skip what is stored (a cluster's worker): no lock, no
    index, no segment file is opened; a folder without a catalog holds nothing. A store at a URL
    is opened for it (its newest version's catalog; no video is read).
    """
    with _catalog_only(path, storage_options) as catalog:
        return (
            set()
            if catalog is None
            else set(catalog.vector_ids([i for i in id_list(ids) if isinstance(i, str)]))
        )


def recorded_settings(
    path: str | os.PathLike[str], storage_options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What the store at ``path`` records (``model``, ``dim``, ``metric``, ...), from its catalog alone.

    As ``stored_ids``: nothing but the catalog is read; a folder without one records nothing.
    """
    with _catalog_only(path, storage_options) as catalog:
        return {} if catalog is None else catalog.settings()


@contextmanager
def _catalog_only(
    path: str | os.PathLike[str], storage_options: dict[str, Any] | None = None
) -> Iterator[Catalog | None]:
    """The store's catalog opened read-only after the checks opening a store makes (None: no store yet).

    ``Catalog.inspect`` first: a link, FIFO or device in its place, another program's database
    or a newer format is refused before SQLite touches it.
    """
    if remote_location(path, storage_options, versioned_args=False) is not None:
        try:
            engine = Engine(path, create=False, storage_options=storage_options)
        except StoreNotFound:
            yield None
            return
        with engine:
            yield engine.catalog
        return
    file = Path(path) / Catalog.FILE
    if not (file.exists() or file.is_symlink()) or not Catalog.inspect(file):
        yield None
        return
    catalog = Catalog(file, readonly=True)
    try:
        yield catalog
    finally:
        catalog.close()


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _positive(value: Any, name: str) -> int:
    """``value`` as a plain int (numpy integers too; FAISS and slicing want one), if positive."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        msg = f"{name} must be a positive integer, got {value!r}."
        raise InvalidArgument(msg)
    return int(value)


__all__ = ["Bulk", "Engine", "Hit", "recorded_settings", "stored_ids"]
