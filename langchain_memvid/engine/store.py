"""The engine: a folder of immutable video segments, a FAISS index and a SQLite catalog.

Layout (all paths relative to the store folder, so a store can be copied or synced anywhere)::

    catalog.sqlite          the source of truth for what is live
    segments/NAME.mov       QR frames: the only place record text is stored
    segments/NAME.faiss     the segment's vectors, written with FAISS's own writer
    index/GEN-TOKEN.faiss   the trained approximate index, when the store has one (see indexing.py)
    tmp/                    files of a write in progress; deleted by the next writer
    quarantine/             segment files the catalog does not know, moved aside (never deleted)
    LOCK                    the cross-process write lock

Every write call is one commit: build new segment files in ``tmp/``, fsync them, rename them into
``segments/``, then record them in one SQLite transaction. Until that transaction commits nothing of
the call is visible; afterwards all of it is durable.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import secrets
import shutil
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock
import numpy as np
import zstandard

from . import indexing, qr
from .catalog import Catalog, RecordRow, SegmentRow
from .errors import (
    ChecksumMismatch,
    CorruptData,
    InvalidArgument,
    InvalidRecord,
    InvalidVector,
    LimitExceeded,
    MemvidError,
    NotAStore,
    SegmentNotFound,
    StoreConfigMismatch,
    StoreLocked,
    StoreNotFound,
    StoreReplaced,
    UnsafePath,
)
from .files import move_aside, open_regular, read_regular, refuse_links
from .filters import Filter, compile_filter
from .frames import KIND_DICTIONARY, KIND_RECORDS, MAX_PACK_BYTES, decompress, parse_frame
from .index import (
    SEARCH_KEYS,
    IndexSpec,
    VectorFiles,
    VectorIndex,
    check_metric,
    deserialize_vectors,
    prepare_query,
    prepare_vectors,
)
from .profiles import get_profile
from .record_ids import RecordIds
from .records import PackReader, Record, encode_record
from .segments import BuiltSegment, SegmentBuilder, fsync_dir
from .video import FrameLocation, decode_packet, read_packet

SEGMENT_RECORDS = 4096  # records per segment when one call writes many: bounds memory while writing
MAX_OPEN_FILES = 64
PACK_CACHE = 32
SYNC_RETRIES = 8  # a reader catching up while compactions delete files starts over this often
MAX_DICTIONARY_BYTES = 16 << 20


@dataclass(frozen=True)
class Hit:
    """A search result: the record, its raw score and (when asked) its stored vector."""

    record: Record
    score: float
    vector: np.ndarray | None = None


@dataclass(frozen=True)
class Location:
    """Where a record lives in the video: file, frame(s), timestamp and slot in its pack."""

    id: str
    segment: str
    frame: int
    frame_count: int
    timestamp: float
    slot: int


@dataclass
class Problem:
    """One thing ``verify`` found wrong."""

    file: str
    message: str
    record_id: str | None = None
    frame: int | None = None
    # What fixes it: "rebuild" (damage), "upgrade" (written by a newer format: rebuild would not
    # understand it either) or "quarantine" (a file the catalog does not know).
    action: str = "rebuild"


@dataclass
class VerifyReport:
    """What ``verify`` checked and what it found."""

    records_checked: int = 0
    frames_checked: int = 0
    frames_cross_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


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
    ) -> None:
        """Open (or create) the store at ``path``.

        ``index`` picks the vector index when the store is created: ``flat`` (exact, the default),
        ``ivf``, ``ivfpq``, ``hnsw``, ``lsh`` or a FAISS factory string; ``index_options`` tunes it
        (build options such as ``nlist``, ``m``, ``M``, ``min_vectors``; search defaults
        ``nprobe``, ``efSearch``, ``refine``, ``exact_max``; and per-open ``mmap`` and ``gpu``).
        The choice is recorded in the store; reopening uses it, and build options that differ from
        it raise ``StoreConfigMismatch`` (``build_index()`` changes the index). See docs/indexes.md.
        """
        # A new store takes ``index`` (default flat); an existing one keeps what it recorded, so
        # options without ``index`` are checked against that further down.
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
        self._open_folder(create)
        existed = self._has_catalog(create)
        self.catalog = Catalog(self.path / Catalog.FILE)
        self._file_lock = filelock.FileLock(str(self.path / "LOCK"))
        if metric is not None:
            check_metric(metric)
        initial = {
            "dim": dim,
            "metric": metric or "cosine",
            "model": model,
            "profile": get_profile(profile).name,
            "index": spec.to_meta(),
        }
        try:
            # An existing store opens without waiting for a writer in another process: this
            # process reads the last commit, and that writer (or the next) cleans up leftovers.
            with self._writer(initial=True, timeout=0 if existed else None):
                self._initialise(initial)
        except StoreLocked:
            if self.catalog._raw_version() is None:  # still being created by the lock holder
                with self._writer(initial=True):
                    self._initialise(initial)
        self.catalog.check_version()
        settings = self.catalog.settings()
        if "metric" not in settings:
            msg = f"{self.catalog.path} has no `metric` setting, so it is not a complete memvid catalog; run `lcmemvid rebuild STORE` to recreate it from the videos."
            raise CorruptData(msg)
        self._catalog_id = settings.get("catalog_id")
        self._check_settings(settings, dim, metric)
        recorded = IndexSpec.from_meta(settings.get("index"))
        given = IndexSpec.parse(recorded.name if reopen else index, index_options, str(settings["metric"]))
        spec, self._open_opts = given
        want = spec.build_options()
        have = recorded.build_options()
        if (
            index is not None and (spec.kind, spec.factory, want) != (recorded.kind, recorded.factory, have)
        ) or any(have.get(k) != v for k, v in want.items()):
            msg = f"The store was built with index {recorded.name!r} {have}, not {spec.name!r} {want}; open it without index options, or change its index with build_index()."
            raise StoreConfigMismatch(msg)
        self._search_opts = {k: v for k, v in spec.options.items() if k in SEARCH_KEYS}
        self._vector_files: VectorFiles | None = None
        self.settings = settings
        self.profile = get_profile(settings["profile"])
        self._fds: OrderedDict[int, int] = OrderedDict()
        self._packs: OrderedDict[tuple[int, int], PackReader] = OrderedDict()
        self._dicts: dict[int, zstandard.ZstdCompressionDict | None] = {}
        self._generation = self._seen_generation = -1
        self._segments: dict[int, SegmentRow] = {}
        self._index: VectorIndex | None = None
        self._metadata: dict[int, dict[str, Any]] | None = None
        self._record_ids: RecordIds | None = None
        self._synced: tuple[tuple[int, int], int] | None = None  # (change token, generation)
        self._sync()

    # -- opening -------------------------------------------------------------------------

    def _initialise(self, settings: dict[str, Any]) -> None:
        """Create the catalog if needed and delete a crashed write's leftovers (under the lock)."""
        if not self.catalog.is_empty():
            self.catalog.check_version()  # before the first write to it: ``create`` adds tables
        self.catalog.create(settings)
        self._collect_garbage()

    def _has_catalog(self, create: bool) -> bool:
        """Whether the folder holds a catalog to open, checked without writing to it.

        A catalog file that is empty and a folder without segment files is a creation that never
        finished: there is nothing to lose, and the store is created afresh. An empty catalog
        beside videos is refused: opening it would make every video unknown to the store.
        """
        file = self.path / Catalog.FILE
        if not file.exists() or Catalog.inspect(file):
            return file.exists()
        segments = self.path / "segments"
        if any(p.suffix in (".mov", ".faiss") for p in segments.iterdir()):
            msg = f"{file} is empty (0 bytes or no tables: an interrupted copy, a sync tool or a full disk?), but segments/ holds videos. They are untouched: move the empty file aside and run `lcmemvid rebuild {self.path}` to recreate the catalog from them."
            raise CorruptData(msg)
        if not create:
            msg = f"No memvid store at {self.path}: its catalog file is empty and it holds no segments."
            raise StoreNotFound(msg)
        return False

    def _open_folder(self, create: bool) -> None:
        if self.path.is_file():
            msg = (
                f"{self.path} is a file; a store is a folder. Pass a folder path (it is created if missing)."
            )
            raise NotAStore(msg)
        if not (self.path / Catalog.FILE).exists():
            if not create:
                msg = f"No memvid store at {self.path}."
                raise StoreNotFound(msg)
            if self.path.exists() and any(
                p.name not in ("segments", "tmp", "LOCK", indexing.FOLDER, "quarantine")
                for p in self.path.iterdir()
            ):
                msg = f"{self.path} is a folder with other content and no catalog; refusing to use it as a store. Pass an empty or new folder."
                raise NotAStore(msg)
            videos = self.path / "segments"
            if videos.is_dir() and not videos.is_symlink() and any(videos.glob("*.mov")):
                # Creating a fresh catalog here would make every video an orphan, which
                # _clean_orphans deletes: the records' only copy. Recovery is `rebuild`.
                msg = f"{self.path} holds segment videos but no {Catalog.FILE}; refusing to open it as a new, empty store. Run `rebuild` to recreate the catalog from the videos."
                raise NotAStore(msg)
        refuse_links(self.path)
        try:
            (self.path / "segments").mkdir(parents=True, exist_ok=True)
            (self.path / "tmp").mkdir(exist_ok=True)
        except OSError as e:
            msg = f"Cannot create the store folder {self.path}: {e.strerror}. Check the path and its permissions."
            raise NotAStore(msg) from e

    @staticmethod
    def _check_settings(settings: Mapping[str, Any], dim: int | None, metric: str | None) -> None:
        if dim is not None and settings.get("dim") not in (None, dim):
            msg = f"The store holds {settings['dim']}-dimensional vectors (model {settings.get('model')!r}); got an embedding of dimension {dim}. Open it with the model it was built with."
            raise StoreConfigMismatch(msg)
        if metric is not None and settings.get("metric") != metric:
            msg = f"The store was built with metric {settings.get('metric')!r}, not {metric!r}."
            raise StoreConfigMismatch(msg)

    def _collect_garbage(self) -> None:
        """Delete what a committed state proves unneeded (only ever called holding the write lock).

        ``tmp/`` holds only the files of writes in progress, and none is in progress while the
        lock is held. In ``segments/`` only the files the catalog's garbage table names go (see
        ``_delete_garbage``): a file the catalog does not know is never deleted, since it may be
        the only copy of records (``verify`` reports it; ``quarantine`` moves it aside).
        Run when a writer opens the store and before every write, so that a crashed write's
        files, which carry the sequence number the next write reuses, never sit beside it.
        """
        shutil.rmtree(self.path / "tmp", ignore_errors=True)
        (self.path / "tmp").mkdir(exist_ok=True)
        with suppress(MemvidError):  # a damaged catalog proves nothing: keep every file
            self._delete_garbage()
            indexing.clean_folder(self.path, indexing.snapshot_file(self.catalog.get_meta("index_snapshot")))

    def _delete_garbage(self) -> None:
        """Unlink the segment files of pending writes that never committed and of dropped segments.

        A name that the catalog lists both as garbage and as a live segment is damage: its files
        are kept. Rows are forgotten only once their files are gone (and the unlinks durable).
        """
        garbage = self.catalog.garbage()
        if not garbage:
            return
        live = {s.name for s in self.catalog.segments()}
        gone = []
        for name in garbage:
            if name in live:
                continue
            try:
                for suffix in (".mov", ".faiss"):
                    (self.path / "segments" / f"{name}{suffix}").unlink(missing_ok=True)
            except OSError:
                continue  # e.g. a folder by that name: keep the row, delete nothing else
            gone.append(name)
        fsync_dir(self.path / "segments")
        with self.catalog.transaction():
            self.catalog.forget_garbage(gone)

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
    def model(self) -> str | None:
        """Name of the embedding model recorded when the store was created."""
        return self.settings.get("model")

    def __len__(self) -> int:
        with self._lock:
            return self.catalog.count()

    def close(self) -> None:
        """Release file handles and the catalog connection."""
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
            if self._vector_files is not None:
                self._vector_files.close()
            self._index = None  # releases a memory-mapped index
            self.catalog.close()

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
            live = np.sort(np.asarray(self.catalog.live_vector_ids(), dtype=np.int64))
        dim = settings.get("dim")
        spec = IndexSpec.from_meta(settings.get("index"))
        snap = settings.get("index_snapshot")
        index = self._index
        rebuilt = settings.get("catalog_id") != self.settings.get("catalog_id")
        if rebuilt:  # a rebuilt store: the same sequence numbers may now name other files
            for seq in list(self._segments):
                self._close_fd(seq)
            self._segments = {}
        rebuild_all = (
            rebuilt
            or index is None
            or any(seq not in segments for seq in self._segments)
            or index.spec != spec
            or snap != self.settings.get("index_snapshot")
        )
        warm = list(segments.values()) if rebuild_all else []
        if dim is not None and rebuild_all:
            self._track_vector_files(int(dim), segments)
            index, covered = indexing.open_index(
                self, int(dim), str(settings["metric"]), spec, snap, live, gen
            )
            new = [s for s in segments.values() if s.seq > covered]
        else:
            new = [s for seq, s in segments.items() if seq not in self._segments]
        loaded = []
        if index is not None:
            for seg in new:
                if seg.kind != "records":
                    continue
                ids, vectors = self._load_vectors(seg, int(settings["dim"]))
                keep = np.isin(ids, live)
                loaded.append((ids[keep], vectors[keep]))
        # Everything is read: apply it.
        if rebuild_all:
            self._record_ids = None  # e.g. a rebuild that had to number vectors anew
        if index is not None:
            for ids, vectors in loaded:
                index.add(ids, vectors)
            if not rebuild_all:
                index.remove(np.setdiff1d(index.ids(), live, assume_unique=True))
        self._index = index
        self.settings = settings
        for seq in [s for s in self._segments if s not in segments]:
            self._close_fd(seq)
        self._segments = segments
        if dim is not None:
            self._track_vector_files(int(dim), segments)
        for seg in warm or new:
            self._warm(seg)
        self._packs.clear()
        self._metadata = None
        self._generation = gen

    def _load_vectors(self, seg: SegmentRow, dim: int) -> tuple[np.ndarray, np.ndarray]:
        path = self._segment_file(seg.index_file)
        try:
            data = read_regular(path, limit=seg.index_bytes)
        except LimitExceeded as e:
            msg = f"Vector file {path.name} is larger than the catalog records; run `rebuild` (with the embedding model)."
            raise ChecksumMismatch(msg) from e
        except SegmentNotFound as e:
            msg = f"Vector file {path.name} of segment {seg.seq} is missing; run `rebuild` (with the embedding model)."
            raise SegmentNotFound(msg) from e
        if len(data) != seg.index_bytes or hashlib.sha256(data).hexdigest() != seg.index_sha256:
            msg = (
                f"Vector file {path.name} fails its SHA-256 check; run `rebuild` (with the embedding model)."
            )
            raise ChecksumMismatch(msg)
        return deserialize_vectors(data, dim)

    def _segment_file(self, name: str) -> Path:
        path = self.path / "segments" / name
        if path.is_symlink():
            msg = f"{path} is a symbolic link; refusing to follow it out of the store."
            raise UnsafePath(msg)
        return path

    @contextmanager
    def _writer(self, *, initial: bool = False, timeout: float | None = None) -> Iterator[None]:
        """Hold the thread lock and the cross-process write lock, and start from the latest state."""
        wait = self.lock_timeout if timeout is None else timeout
        with self._lock:
            try:
                self._file_lock.acquire(timeout=wait)
            except filelock.Timeout as e:
                msg = f"Another process is writing to {self.path} and held its lock for {wait} s; retry later or raise lock_timeout."
                raise StoreLocked(msg) from e
            try:
                if not initial:
                    self._check_catalog_identity()
                    self._sync()
                    self._collect_garbage()
                yield
            finally:
                self._file_lock.release()

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
            The ids written, in input order (duplicates collapsed).

        Raises:
            InvalidRecord: a record's id, text or metadata cannot be stored (nothing is written).
            InvalidVector: a vector has the wrong dimension or NaN/inf (nothing is written).
        """
        if not isinstance(records, Sequence) or isinstance(records, (str, bytes)):
            msg = f"records must be a list of Record, got {type(records).__name__}."
            raise InvalidArgument(msg)
        if len(records) == 0:
            return []
        for n, rec in enumerate(records):
            if not isinstance(rec, Record):
                msg = f"records[{n}] is a {type(rec).__name__}, not a Record(id, text, metadata)."
                raise InvalidRecord(msg)
        try:
            vector_list = list(vectors) if not isinstance(vectors, np.ndarray) else vectors
        except TypeError as e:
            msg = f"vectors must be a list or array with one vector per record, got {type(vectors).__name__}."
            raise InvalidArgument(msg) from e
        if len(vector_list) != len(records):
            msg = f"Got {len(records)} records and {len(vector_list)} vectors; pass one vector per record."
            raise InvalidArgument(msg)
        last = {r.id if isinstance(r.id, str) else None: i for i, r in enumerate(records)}
        keep = [i for i, r in enumerate(records) if last.get(r.id if isinstance(r.id, str) else None) == i]
        encoded = [encode_record(records[i]) for i in keep]
        with self._writer():
            dim = self.dim or _vector_size(vector_list[0])
            prepared = prepare_vectors([vector_list[i] for i in keep], dim, self.metric)
            spec = IndexSpec.from_meta(self.settings.get("index"))
            if self.dim is None and spec.kind != "flat":
                spec.new_index(dim, self.metric, 1)  # impossible settings fail before anything is written
            first_vid = int(self.catalog.get_meta("next_vector_id") or 0)
            vids = np.arange(first_vid, first_vid + len(encoded), dtype=np.int64)
            settings = {**self.settings, "dim": dim}
            built: list[BuiltSegment] = []
            try:
                seq = self.catalog.next_seq()
                for start in range(0, len(encoded), self.segment_records):
                    stop = start + self.segment_records
                    builder = SegmentBuilder(
                        self.path / "tmp", self.profile, encoder=self.encoder, settings=settings
                    )
                    name = f"{seq:08d}-{secrets.token_hex(4)}"
                    built.append(
                        builder.build_records(
                            seq, name, encoded[start:stop], prepared[start:stop], vids[start:stop]
                        )
                    )
                    seq += 1
                self._publish(built)
                rows = [
                    RecordRow(
                        enc.id,
                        int(vids[i]),
                        seg.seq,
                        p.first_frame,
                        p.frame_count,
                        p.slot,
                        len(enc.text_bytes),
                        json.loads(enc.metadata_json),
                    )
                    for seg, start in zip(built, range(0, len(encoded), self.segment_records), strict=False)
                    for i, (enc, p) in enumerate(
                        zip(encoded[start:], seg.placements, strict=False), start=start
                    )
                ]
                with self.catalog.transaction():
                    if self.dim is None:
                        self.catalog.set_meta("dim", dim)
                    for seg in built:
                        self._record_segment(seg, len(seg.placements))
                    replaced = self.catalog.put_records(rows)
                    self.catalog.set_meta("next_vector_id", first_vid + len(encoded))
                    gen = self.catalog.bump_generation()
            except BaseException:
                self._unpublish(built)
                raise
            self.settings["dim"] = dim
            if self._index is None:
                self._index = VectorIndex(
                    dim, self.metric, spec, source=self._exact_vectors, search=self._search_opts
                )
            self._index.remove(replaced)
            self._index.add(vids, prepared)
            self._after_commit(gen, built)
            indexing.after_add(self)
        return [e.id for e in encoded]

    def delete(self, ids: Sequence[str]) -> int:
        """Delete records by id; unknown ids are ignored. Returns how many were deleted."""
        wanted = [i for i in dict.fromkeys(_id_list(ids)) if isinstance(i, str)]
        if not wanted:
            return 0
        with self._writer():
            found = self.catalog.vector_ids(wanted)
            if not found:
                return 0
            seq = self.catalog.next_seq()
            builder = SegmentBuilder(
                self.path / "tmp", self.profile, encoder=self.encoder, settings=self.settings
            )
            built: list[BuiltSegment] = []
            try:
                built.append(builder.build_tombstones(seq, f"{seq:08d}-{secrets.token_hex(4)}", list(found)))
                self._publish(built)
                with self.catalog.transaction():
                    self._record_segment(built[0], 0)
                    self.catalog.delete_records(list(found))
                    gen = self.catalog.bump_generation()
            except BaseException:
                self._unpublish(built)
                raise
            if self._index is not None:
                self._index.remove(list(found.values()))
            self._after_commit(gen, built)
            return len(found)

    def compact(self) -> dict[str, int]:
        """Rewrite live records into fresh segments and drop dead frames and tombstones.

        Returns:
            Bytes of video before and after, and segment counts.
        """
        with self._writer():
            before = self.catalog.stats()
            old = list(self._segments.values())
            rows = list(self.catalog.iter_records())
            built: list[BuiltSegment] = []
            try:
                seq = self.catalog.next_seq()
                for start in range(0, len(rows), self.segment_records):
                    chunk = rows[start : start + self.segment_records]
                    records = self._read_rows(chunk)
                    encoded = [encode_record(records[r.id]) for r in chunk]
                    assert self._index is not None
                    vids = np.array([r.vector_id for r in chunk], dtype=np.int64)
                    vectors = self._index.reconstruct(vids.tolist())
                    builder = SegmentBuilder(
                        self.path / "tmp", self.profile, encoder=self.encoder, settings=self.settings
                    )
                    built.append(
                        builder.build_records(
                            seq, f"{seq:08d}-{secrets.token_hex(4)}", encoded, vectors, vids
                        )
                    )
                    seq += 1
                self._publish(built)
                new_rows = [
                    RecordRow(
                        r.id,
                        r.vector_id,
                        seg.seq,
                        p.first_frame,
                        p.frame_count,
                        p.slot,
                        r.text_bytes,
                        r.metadata,
                    )
                    for seg, start in zip(built, range(0, len(rows), self.segment_records), strict=False)
                    for r, p in zip(rows[start:], seg.placements, strict=False)
                ]
                with self.catalog.transaction():
                    self.catalog.drop_segments(s.seq for s in old)
                    self.catalog.mark_garbage([s.name for s in old], "dropped")
                    for seg in built:
                        self._record_segment(seg, len(seg.placements))
                    self.catalog.put_records(new_rows)
                    gen = self.catalog.bump_generation()
            except BaseException:
                self._unpublish(built)
                raise
            self._after_commit(gen, built)
            for dead in old:
                self._close_fd(dead.seq)
            self._delete_garbage()
            indexing.after_compact(self)
            after = self.catalog.stats()
            return {
                "video_bytes_before": before["video_bytes"],
                "video_bytes_after": after["video_bytes"],
                "segments_before": before["segments"],
                "segments_after": after["segments"],
                "records": after["records"],
            }

    def _publish(self, built: list[BuiltSegment]) -> None:
        """Move finished segment files into ``segments/`` and make the renames durable.

        Their names are committed as pending first: if this process dies before the write
        commits, that committed row is what lets the next writer delete the files (nothing
        the catalog does not name is ever deleted). The write's commit removes the row.
        """
        with self.catalog.transaction():
            self.catalog.mark_garbage([seg.name for seg in built], "pending")
        for seg in built:
            for src in (seg.video_path, seg.index_path):
                dst = self.path / "segments" / src.name
                os.replace(src, dst)
            seg.video_path = self.path / "segments" / seg.video_path.name
            seg.index_path = self.path / "segments" / seg.index_path.name
        fsync_dir(self.path / "segments")

    def _unpublish(self, built: list[BuiltSegment]) -> None:
        """Best-effort removal of the files of a write that did not commit.

        Their pending rows stay until the files are surely gone: the next writer finishes the job.
        """
        for seg in built:
            for name in (f"{seg.name}.mov", f"{seg.name}.faiss"):
                for folder in ("tmp", "segments"):
                    with suppress(OSError):
                        (self.path / folder / name).unlink()
        with suppress(MemvidError, OSError):
            fsync_dir(self.path / "segments")
            with self.catalog.transaction():
                self.catalog.forget_garbage([seg.name for seg in built])

    def _record_segment(self, seg: BuiltSegment, records: int) -> None:
        row = SegmentRow(
            seq=seg.seq,
            name=seg.name,
            kind=seg.kind,
            profile=self.profile.name,
            info=seg.info,
            frame_count=len(seg.locations),
            dict_frames=seg.dict_frames,
            record_count=records,
            video_bytes=seg.video_path.stat().st_size,
            video_sha256=seg.video_sha256,
            index_bytes=seg.index_path.stat().st_size,
            index_sha256=seg.index_sha256,
            created=seg.video_path.stat().st_mtime,
        )
        self.catalog.add_segment(row, list(zip(seg.locations, seg.frame_crcs, strict=False)))
        self.catalog.forget_garbage([seg.name])  # committed with the segment: no longer pending

    def _after_commit(self, gen: int, built: list[BuiltSegment]) -> None:
        """Bring the in-memory view up to the commit this process just made."""
        self._segments = {s.seq: s for s in self.catalog.segments()}
        if self.dim is not None:
            self._track_vector_files(int(self.dim), self._segments)
        for seg in built:
            self._dicts[seg.seq] = seg.dictionary
        self._packs.clear()
        self._metadata = None
        self._generation = gen

    def _track_vector_files(self, dim: int, segments: Mapping[int, SegmentRow]) -> None:
        """Tell the exact-vector reader which segment vector files exist."""
        if self._vector_files is None or self._vector_files.dim != dim:
            self._vector_files = VectorFiles(self.path / "segments", dim)
        files = self._vector_files
        for seq in [s for s in files._names if s not in segments]:
            files.forget(seq)
        for seq, seg in segments.items():
            if seg.kind == "records" and files._names.get(seq) != seg.index_file:
                files.track(seq, seg.index_file)

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
            ids = [i for i in _id_list(ids) if isinstance(i, str)]
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
            wanted = [i for i in _id_list(ids) if isinstance(i, str)]
            for rid, row in self.catalog.records(wanted).items():
                seg = self._segment(row.seq, rid)
                (loc, _), *_ = self.catalog.frames(row.seq, row.first_frame, 1)
                out[rid] = Location(
                    id=rid,
                    segment=f"segments/{seg.video_file}",
                    frame=row.first_frame,
                    frame_count=row.frame_count,
                    timestamp=float(loc.pts * seg.info.time_base),
                    slot=row.slot,
                )
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
            if isinstance(frame, bool) or not 0 <= frame < seg.frame_count:
                msg = f"Segment {seg.video_file} has frames 0..{seg.frame_count - 1}; got {frame!r}."
                raise InvalidArgument(msg)
            ((loc, crc),) = self.catalog.frames(seg.seq, frame, 1)
            data = read_packet(self._fd(seg), loc)
            if zlib.crc32(data) != crc:
                msg = f"Frame {frame} of {seg.video_file}: video bytes fail their CRC-32; run `verify`."
                raise ChecksumMismatch(msg)
            return decode_packet(data, seg.info)

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
                return self._read_rows_once(rows)
            except (SegmentNotFound, CorruptData):
                current = self.catalog.generation()
                if attempt == SYNC_RETRIES - 1 or rows_generation == self._generation == current:
                    raise
            self._sync()
            with self.catalog.snapshot():
                rows_generation = self.catalog.generation()
                rows = list(self.catalog.records([r.id for r in rows]).values())
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_rows_once(self, rows: Sequence[RecordRow]) -> dict[str, Record]:
        out: dict[str, Record] = {}
        for row in sorted(rows, key=lambda r: (r.seq, r.first_frame, r.slot)):
            pack = self._pack(row)
            if row.slot >= len(pack) or pack.record_id(row.slot) != row.id:
                msg = f"Record {row.id!r}: the video frame {row.first_frame} of segment {row.seq} holds other records than the catalog says; run `verify`."
                raise CorruptData(msg)
            out[row.id] = pack.record(row.slot)
        return out

    def _pack(self, row: RecordRow) -> PackReader:
        key = (row.seq, row.first_frame)
        pack = self._packs.get(key)
        if pack is None:
            seg = self._segment(row.seq, row.id)
            # A pack spanning several frames holds one record, whose size the (CRC-checked) row
            # gives: a bomb declaring more is refused before anything is allocated for it.
            limit = MAX_PACK_BYTES if row.frame_count == 1 else _entry_bytes(row) + 4096
            try:
                pack = self._decode_pack(seg, row.first_frame, row.frame_count, limit=limit)
            except MemvidError as e:
                msg = f"Record {row.id!r} in {seg.video_file} (frame {row.first_frame}): {e}"
                raise type(e)(msg) from e
            self._packs[key] = pack
            if len(self._packs) > PACK_CACHE:
                self._packs.popitem(last=False)
        else:
            self._packs.move_to_end(key)
        return pack

    def _segment(self, seq: int, record_id: str) -> SegmentRow:
        seg = self._segments.get(seq)
        if seg is None:
            msg = f"Record {record_id!r} points at segment {seq}, which the catalog does not list; run `verify`."
            raise CorruptData(msg)
        return seg

    def _decode_pack(
        self, seg: SegmentRow, first: int, count: int, kind: int = KIND_RECORDS, limit: int = MAX_PACK_BYTES
    ) -> PackReader:
        body = self._read_body(seg, first, count, kind)
        return PackReader(decompress(body, self._dictionary(seg), limit))

    def _read_body(self, seg: SegmentRow, first: int, count: int, kind: int) -> bytes:
        bodies = []
        for i, (loc, crc) in enumerate(self.catalog.frames(seg.seq, first, count)):
            header, body = parse_frame(self._frame_payload(seg, first + i, loc, crc))
            if (header.kind, header.segment, header.frame, header.part, header.parts) != (
                kind,
                seg.seq,
                first + i,
                i,
                count,
            ):
                msg = f"Frame {first + i} of {seg.video_file} is not the frame the catalog expects (kind {header.kind}, part {header.part}/{header.parts})."
                raise CorruptData(msg)
            bodies.append(body)
        return b"".join(bodies)

    def _frame_payload(
        self, seg: SegmentRow, frame: int, loc: FrameLocation, crc: int, decoder: str | None = None
    ) -> bytes:
        data = read_packet(self._fd(seg), loc)
        if zlib.crc32(data) != crc:
            msg = f"Frame {frame} of {seg.video_file}: video bytes fail their CRC-32."
            raise ChecksumMismatch(msg)
        return qr.decode(decode_packet(data, seg.info), backend=decoder or self.decoder)

    def _warm(self, seg: SegmentRow) -> None:
        """Load a segment's dictionary up front so that a first read costs one frame decode.

        A damaged segment must not stop the store from opening: the error surfaces (with the
        record id) when a record of that segment is read, and ``verify`` reports it.
        """
        if seg.dict_frames and seg.seq not in self._dicts:
            with suppress(MemvidError, OSError):
                self._dictionary(seg)

    def _dictionary(self, seg: SegmentRow) -> zstandard.ZstdCompressionDict | None:
        if seg.seq not in self._dicts:
            body = self._read_body(seg, 1, seg.dict_frames, KIND_DICTIONARY) if seg.dict_frames else b""
            raw = decompress(body, None, MAX_DICTIONARY_BYTES) if body else b""
            self._dicts[seg.seq] = zstandard.ZstdCompressionDict(raw) if raw else None
        return self._dicts[seg.seq]

    def _fd(self, seg: SegmentRow) -> int:
        fd = self._fds.get(seg.seq)
        if fd is not None:
            self._fds.move_to_end(seg.seq)
            return fd
        path = self._segment_file(seg.video_file)
        try:
            fd = open_regular(path)
        except SegmentNotFound as e:
            msg = f"Video file {path.name} is missing from {self.path / 'segments'}; its records cannot be read. Run `verify`."
            raise SegmentNotFound(msg) from e
        self._fds[seg.seq] = fd
        if len(self._fds) > MAX_OPEN_FILES:
            _, old = self._fds.popitem(last=False)
            os.close(old)
        return fd

    def _close_fd(self, seq: int) -> None:
        fd = self._fds.pop(seq, None)
        if fd is not None:
            os.close(fd)
        self._dicts.pop(seq, None)

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
            pairs, rows = self._nearest(query, k, filter, search_params)
            records = self._read_rows([rows[i] for i, _ in pairs if i in rows])
            vectors = None
            if with_vectors and self._index is not None:
                vectors = self._index.reconstruct([i for i, _ in pairs])
            return [
                Hit(records[rows[vid].id], score, vectors[n] if vectors is not None else None)
                for n, (vid, score) in enumerate(pairs)
                if vid in rows and rows[vid].id in records  # a record deleted by a racing commit
            ]

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
            vids, scores = self._nearest_vectors(query, k, filter, search_params)
            if not vids:
                return []
            names = self._record_ids_of(vids)
            return [(n, s) for n, s in zip(names, scores, strict=True) if n is not None]

    def _record_ids_of(self, vids: list[int]) -> list[str | None]:
        """Record ids of live vector ids, from the in-memory map, filled from the catalog on a miss."""
        assert self._index is not None
        id_map = self._record_ids
        if id_map is None or len(id_map) > 2 * len(self._index) + 1024:
            id_map = self._record_ids = RecordIds()  # first use, or mostly deleted: start afresh
        names = id_map.lookup(vids)
        if None in names:  # records committed since the map was last filled
            id_map.extend(self.catalog.record_ids_after(id_map.last))
            names = id_map.lookup(vids)
        if None in names:  # below ``last`` yet not held (a rebuild that numbered vectors anew)
            missing = [v for v, n in zip(vids, names, strict=True) if n is None]
            rows = self.catalog.records_by_vector_ids(missing)
            id_map.extend([(v, row.id) for v, row in rows.items()])
            names = id_map.lookup(vids)
        return names

    def _nearest(
        self, query: Any, k: int, filter: Filter | None, search_params: Mapping[str, int] | None
    ) -> tuple[list[tuple[int, float]], dict[int, RecordRow]]:
        """(vector id, score) of the k nearest live vectors, and their catalog rows."""
        vids, scores = self._nearest_vectors(query, k, filter, search_params)
        return list(zip(vids, scores, strict=True)), self.catalog.records_by_vector_ids(vids)

    def _nearest_vectors(
        self, query: Any, k: int, filter: Filter | None, search_params: Mapping[str, int] | None
    ) -> tuple[list[int], list[float]]:
        """Vector ids and scores of the k nearest live vectors, best first.

        The common query (no filter, default knobs) takes ``VectorIndex.search_one``: at 1M
        vectors FAISS answers in under 1 ms, and every step around it shows in the latency.
        """
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k <= 0:
            msg = f"k must be a positive integer, got {k!r}."
            raise InvalidArgument(msg)
        k = int(k)  # numpy integers too; FAISS and slicing want a plain int
        predicate = compile_filter(filter)
        self._sync()
        index, dim = self._index, self.dim
        if index is None or dim is None or not len(index):
            return [], []
        q = prepare_query(query, dim, self.metric)
        if predicate is None and not search_params:
            found = index.search_one(q, k)
            if found is not None:
                return found
        allowed = None
        if predicate is not None:
            allowed = np.fromiter(
                (vid for vid, meta in self._all_metadata().items() if predicate(meta)), dtype=np.int64
            )
            if not len(allowed):
                return [], []
        scores, ids = index.search(q, k, allowed, search_params)
        keep = ids[0] >= 0  # results come best first, any -1 padding last
        return ids[0][keep].tolist(), scores[0][keep].tolist()

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors (normalised under cosine) of live records."""
        with self._lock:
            self._sync()
            found = self.catalog.vector_ids([i for i in _id_list(ids) if isinstance(i, str)])
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
            vids = sorted(vid for vid, meta in self._all_metadata().items() if predicate(meta))
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
                profile=self.profile.name,
                index_type=indexing.describe(self),
                index=indexing.info(self),
                vectors_in_index=len(self._index) if self._index is not None else 0,
                catalog_bytes=sum(
                    p.stat().st_size for p in self.path.glob(Catalog.FILE + "*") if p.is_file()
                ),
            )
            text = stats["text_bytes"]
            stats["video_to_text"] = stats["video_bytes"] / text if text else None
            return stats

    def verify(self, *, cross_check: bool = True) -> VerifyReport:
        """Decode every frame, check every checksum and compare the video with the catalog."""
        from .verify import verify_store

        with self._lock:
            self._sync()
            report = verify_store(self, cross_check=cross_check)
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
        deletes them; ``verify`` reports them and ``quarantine`` moves them aside.
        """
        with self._lock:
            self._sync()
            known = {s.name for s in self._segments.values()} | set(self.catalog.garbage())
            return [
                f"segments/{p.name}"
                for p in sorted((self.path / "segments").iterdir())
                if p.suffix in (".mov", ".faiss") and p.stem not in known
            ]

    def quarantine(self) -> list[str]:
        """Move the files ``unknown_files`` lists into ``quarantine/``; returns where each went.

        Nothing is deleted: a file moved by mistake goes back with ``mv`` (and ``rebuild`` if its
        records should be live).
        """
        with self._writer():
            moved = []
            for name in self.unknown_files():
                dst = move_aside(self.path / name, self.path / "quarantine")
                moved.append(f"{name} -> quarantine/{dst.name}")
            return moved

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
        with self._writer():
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
            indexing.rebuild(self, spec, retrain=True, force=True)
            return indexing.info(self)


def _id_list(ids: Any) -> list[Any]:
    """``ids`` as a list; a bare string (which would iterate as characters) is refused."""
    if isinstance(ids, (str, bytes)):
        msg = f"Pass a list of ids, not a single string: [{ids!r:.60}]."
        raise InvalidArgument(msg)
    try:
        return list(ids)
    except TypeError as e:
        msg = f"ids must be a list of strings, got {type(ids).__name__}."
        raise InvalidArgument(msg) from e


def _vector_size(vector: Any) -> int:
    """The dimension of a store's first vector."""
    try:
        return int(np.asarray(vector, dtype=np.float32).size)
    except (TypeError, ValueError) as e:
        msg = f"Each vector must be a sequence of numbers: {e}"
        raise InvalidVector(msg) from e


def _entry_bytes(row: RecordRow) -> int:
    """Size of a record's entry in an uncompressed pack, from its catalog row."""
    meta = json.dumps(row.metadata, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return (
        4
        + 12
        + len(row.id.encode("utf-8", "surrogatepass"))
        + len(meta.encode("utf-8", "surrogatepass"))
        + row.text_bytes
    )


__all__ = ["Engine", "Hit", "Location", "Problem", "VerifyReport"]
