"""Ingest and batch search on a Ray cluster: the same store as ``lcmemvid ingest``, built by many workers.

:func:`ingest_on_ray` runs the steps of :mod:`langchain_memvid.ingest` as a Ray Data pipeline:

1. **read and split**, one task per file: :func:`~langchain_memvid.ingest.load_files` and
   :func:`~langchain_memvid.ingest.split_into_chunks` on that file alone, so every chunk and its id
   are those of a plain ingest (a Ray Dataset of documents is split the same way, batch by batch);
2. **skip and embed**, on a pool of actors (``map_batches`` with a callable class, the model loaded
   once per actor, ``num_gpus`` when asked): ids the store already holds are marked (asked of an
   actor on the driver's machine, the only one that reads the catalog), the rest are embedded;
3. **build**, one task per segment: QR frames, video and vector file are written by
   ``engine.build_segment`` straight into the store's ``tmp/`` folder, which every
   worker must see (a shared file system, at the same absolute path);
4. **commit**, on the driver, which holds the store's write lock throughout (``Engine.bulk``):
   built segments become live in the order their jobs were handed out, ``commit_every`` segments
   per atomic commit.

The driver streams (``iter_batches``): it holds at most a few segments' records at a time, and each
chunk id once (to count and to drop repeats). Every chunk keeps its reading order, so a store built
this way holds the same records, with the same vector ids, as one built by ``lcmemvid ingest``.

Failures: Ray runs a task again when its worker dies, and restarts a dead embedding actor; a
segment built twice is committed once (only what ``Bulk.commit`` takes is live). A driver that dies
leaves the store at its last commit, and running the same ingest again skips every committed chunk.

:func:`search_on_ray` searches a store for a dataset of queries on the cluster (offline evaluation),
each actor holding its own reading handle on the store.

Ray is an optional extra (``pip install "langchain-qrvideo[ray]"``); this module imports it only when
one of its functions runs. docs/ray.md tells the whole story.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_memvid.errors import LoaderWarning
from langchain_memvid.ingest import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    IngestReport,
    NothingToIngest,
    load_files,
    progress_bars,
    split_into_chunks,
)
from langchain_memvid.splitting import SOURCE_KEY, check_sizes

if TYPE_CHECKING:
    import numpy as np
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings

    from langchain_memvid.engine import BuiltSegment, SegmentJob
    from langchain_memvid.vectorstores import MemvidVectorStore

__all__ = [
    "DEFAULT_COMMIT_EVERY",
    "INSTALL_RAY",
    "RayIngestReport",
    "RayMissing",
    "ingest_on_ray",
    "require_ray",
    "search_on_ray",
]

DEFAULT_COMMIT_EVERY = 4
"""Segments per commit: a dying driver loses at most this many segments' work (and those in flight)."""
READS_PER_WORKER = 200
"""Files a reading worker loads before Ray replaces it with a fresh process."""
INSTALL_RAY = 'pip install "langchain-qrvideo[ray]"'
"""The command that installs what this module needs."""

# What a row of the pipeline is. A "file" row carries one file's (or one batch of documents')
# counts in its metadata column, so that the counts reach the driver with the chunks: a task Ray
# runs again produces its rows again, and only the rows of the attempt that succeeded are kept.
_NEW, _STORED, _FILE = "new", "stored", "file"
_COLUMNS = ("id", "text", "metadata", "kind")

logger = logging.getLogger(__name__)


class RayMissing(ImportError):
    """Ray (with Ray Data) is not installed: the ``ray`` extra."""


@dataclass(frozen=True)
class RayIngestReport(IngestReport):
    """What :func:`ingest_on_ray` did: :class:`~langchain_memvid.ingest.IngestReport`'s counts, and how."""

    segments: int
    """Segments written (and committed)."""
    commits: int
    """Commits made: each one atomic, each up to ``commit_every`` segments."""


def _refuse_url_store(store: Any) -> None:
    """Ray's workers build segments in the store folder, so a versioned store cannot take them yet."""
    from langchain_memvid.engine.versions import is_versioned

    engine = getattr(store, "engine", None)
    versioned = engine.version is not None if engine is not None else is_versioned(store)
    if versioned:
        location = engine.location if engine is not None else store
        msg = (
            f"ingest_on_ray builds segments in the store's folder, which every node must see; {location} "
            "is a versioned store (format 3). Ingest into a shared folder, then copy it with `lcmemvid migrate FOLDER URL`."
        )
        raise ValueError(msg)


def require_ray() -> Any:
    """Import Ray and Ray Data, or say how to install them.

    Returns:
        The ``ray`` module.

    Raises:
        RayMissing: Ray or Ray Data is not installed; the message gives the install command.
    """
    try:
        import ray
        import ray.data  # Ray without its data extra (pyarrow, pandas) fails here
    except ImportError as e:
        msg = f"Ray (with Ray Data) is not installed; install it with: {INSTALL_RAY}"
        raise RayMissing(msg) from e
    return ray


# -- ingest --------------------------------------------------------------------------------------


def ingest_on_ray(
    store: str | Path | MemvidVectorStore,
    sources: Sequence[str | Path] | Any,
    *,
    embedding: Embeddings | str | None = None,
    store_options: Mapping[str, Any] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
    batch_size: int = DEFAULT_BATCH_SIZE,
    segment_size: int | None = None,
    commit_every: int = DEFAULT_COMMIT_EVERY,
    workers: int | None = None,
    gpus_per_worker: float = 0,
    ray_address: str | None = None,
    glob: str = "**/*",
    progress: bool = False,
    on_warning: Callable[[str], None] | None = None,
    on_commit: Callable[[int, int], None] | None = None,
) -> RayIngestReport:
    """Add files and folders, or a Ray Dataset of documents, to a store on a Ray cluster.

    The result is the store :func:`langchain_memvid.ingest.ingest` makes from the same sources:
    the same chunks, ids, texts and metadata, and chunks the store already holds are skipped (so
    running it again after a failure resumes). See the module's description for the pipeline and
    docs/ray.md for the failure semantics.

    Example:
        ```python
        from langchain_memvid.distributed import ingest_on_ray

        report = ingest_on_ray("/shared/library", ["/shared/books"], workers=4, gpus_per_worker=1)
        print(report.added, report.unchanged, report.segments, report.commits)
        ```

    Args:
        store: The store: a folder, or an open
            :class:`~langchain_memvid.vectorstores.MemvidVectorStore` (left open; opened by an
            absolute path). A folder's store is opened (or created) once there is something to
            add, and closed at the end. Its folder must be visible at the same absolute path to
            every worker.
        sources: Files and folders, read by the driver's file listing and loaded on the workers;
            or a Ray Dataset whose rows are documents: a ``text`` column and an optional
            ``metadata`` column (a dict, or a JSON object as a string, which keeps its keys exactly).
        embedding: The embedding model: an ``Embeddings`` object (sent to each actor, so it must
            pickle; a :class:`~langchain_memvid.embeddings.SentenceTransformerEmbeddings` is
            re-created from its settings there) or a sentence-transformers model name. None: the
            store's own (an open store's, or the model a folder's store records), else
            all-MiniLM-L6-v2.
        store_options: For a folder: what else to pass to ``MemvidVectorStore`` (``metric``,
            ``profile``, ``vector_encoding``, ``lexical_index``, ``index``...).
        chunk_size: The largest chunk, in characters.
        chunk_overlap: The most characters a chunk repeats from the previous one.
        batch_size: Chunks per embedding call on an actor.
        segment_size: Records per segment, each built by one task. None: the store's
            ``segment_records`` (4,096 by default).
        commit_every: Segments per commit; the last commit takes what is left.
        workers: Embedding actors. None: one per GPU (``gpus_per_worker``), or half the cluster's
            CPUs (at least one), leaving the rest to reading and building.
        gpus_per_worker: GPUs each embedding actor reserves (``num_gpus``); 0 embeds on CPUs.
        ray_address: The cluster to join (``ray.init(address=...)``). None: the one this process
            already joined, else ``RAY_ADDRESS``, else a new local one (shut down at the end).
        glob: Which files to take from folders.
        progress: Show one progress bar on stderr: files (or batches of documents) whose
            chunks reached the driver, chunks seen and chunks committed.
        on_warning: Called with each loading warning; default: issued as a ``LoaderWarning``.
        on_commit: Called after each commit with the segments and records committed so far.

    Returns:
        The counts of :class:`~langchain_memvid.ingest.IngestReport`, plus segments and commits.

    Raises:
        RayMissing: Ray is not installed.
        ValueError: Invalid sizes or counts.
        TypeError: ``sources`` is a single path.
        NothingToIngest: No source gave any text (and no store was created).
    """
    _refuse_url_store(store)
    ray = require_ray()
    check_sizes(chunk_size, chunk_overlap)
    for name, value in (("batch_size", batch_size), ("commit_every", commit_every)):
        _check_count(name, value)
    if segment_size is not None:
        _check_count("segment_size", segment_size)
    if workers is not None:
        _check_count("workers", workers)
    if isinstance(gpus_per_worker, bool) or not gpus_per_worker >= 0:
        msg = f"gpus_per_worker must be 0 or more, got {gpus_per_worker!r}."
        raise ValueError(msg)
    started = time.perf_counter()
    with ExitStack() as stack:
        stack.enter_context(_joined(ray, ray_address))
        stack.enter_context(_data_context(ray))
        opener, embedding_obj, root = _store_opener(store, embedding, dict(store_options or {}), stack)
        if segment_size is None:
            segment_size = _segment_records(store, store_options)
        dataset, files = _chunk_dataset(ray, sources, glob, chunk_size, chunk_overlap)
        pool = workers or _default_workers(ray, gpus_per_worker)
        embedded = dataset.map_batches(
            _Embedder,
            fn_constructor_kwargs={
                "make_embedding": _embedding_factory(embedding_obj),
                "lookup": _stored_ids(ray, root, stack),
            },
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=pool),
            **_actor_args(gpus_per_worker),
        )
        writer = _Writer(ray, opener, stack, segment_size, commit_every, pool, on_commit)
        with progress_bars(progress) as bars:
            counts = writer.run(embedded, _Bar(bars, files))
        if writer.bulk_scope is not None:
            writer.bulk_scope.close()  # every segment is committed: release the write lock
        if writer.store is not None:
            from langchain_memvid.distributed_index import index_after_ingest

            index_after_ingest(ray, writer.store.engine)
        if writer.store is None:  # nothing new: no store was opened or created
            if not counts.chunks:
                reasons = "; ".join(f"{p}: {r}" for p, r in counts.skipped) or "the sources hold no text"
                msg = f"Nothing to ingest ({reasons})."
                raise NothingToIngest(msg)
            writer.store = opener()
        stats = writer.store.stats()
    for note in counts.warnings:
        if on_warning is None:
            warnings.warn(note, LoaderWarning, stacklevel=2)
        else:
            on_warning(note)
    return RayIngestReport(
        files_loaded=len(counts.sources),
        documents=counts.documents,
        chunks=counts.chunks,
        added=counts.added,
        unchanged=counts.unchanged,
        skipped=counts.skipped,
        warnings=counts.warnings,
        records=stats["records"],
        video_bytes=stats["video_bytes"],
        text_bytes=stats["text_bytes"],
        model=stats["model"],
        seconds=time.perf_counter() - started,
        segments=writer.segments,
        commits=writer.commits,
    )


class _Bar:
    """The driver's one progress bar: files done of those listed, chunks seen and committed."""

    def __init__(self, bars: Any, files: int | None) -> None:
        self.bars = bars
        self.task = bars.add_task("Ingesting on Ray", total=files)

    def file_done(self) -> None:
        self.bars.advance(self.task, 1)

    def show(self, chunks: int, committed: int) -> None:
        self.bars.update(self.task, description=f"{chunks:,} chunks, {committed:,} committed")


@dataclass
class _Counts:
    """What the driver counts from the rows it is sent."""

    sources: set[str] = field(default_factory=set)
    documents: int = 0
    chunks: int = 0
    added: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add_file(self, report: dict[str, Any]) -> None:
        self.sources.update(report["sources"])
        self.documents += report["documents"]
        self.skipped += [(p, r) for p, r in report["skipped"]]
        self.warnings += report["warnings"]


class _Writer:
    """The driver's side: chunks into segment jobs, jobs to build tasks, built segments into commits."""

    def __init__(
        self,
        ray: Any,
        opener: Callable[[], MemvidVectorStore],
        stack: ExitStack,
        segment_size: int,
        commit_every: int,
        workers: int,
        on_commit: Callable[[int, int], None] | None,
    ) -> None:
        self.ray = ray
        self.opener = opener
        self.stack = stack
        self.segment_size = segment_size
        self.commit_every = commit_every
        # Segments being built at once: enough to keep the cluster busy, few enough to bound the
        # driver's and the object store's memory (each holds one segment's records and vectors).
        self.max_building = max(2, workers + 1)
        self.on_commit = on_commit
        self.store: MemvidVectorStore | None = None
        self.bulk: Any = None
        self.bulk_scope: ExitStack | None = (
            None  # the bulk: ends before the store closes and before the index build
        )
        self.building: deque[Any] = deque()
        self.built: list[BuiltSegment] = []
        self.segments = self.commits = self.committed_records = 0
        self.build_task = ray.remote(num_cpus=1, max_retries=3)(_build_segment)

    def run(self, dataset: Any, bar: _Bar) -> _Counts:
        counts = _Counts()
        seen: set[str] = set()
        pending: list[tuple[str, str, str, np.ndarray]] = []
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            ids, kinds, vectors = batch["id"], batch["kind"], batch["vector"]
            for n in range(len(ids)):
                kind, rid = str(kinds[n]), str(ids[n])
                if kind == _FILE:
                    counts.add_file(json.loads(str(batch["metadata"][n])))
                    bar.file_done()
                    continue
                counts.chunks += 1
                if rid in seen:  # a repeated chunk: written (or skipped) once, as by plain ingest
                    continue
                seen.add(rid)
                if kind == _STORED:
                    counts.unchanged += 1
                    continue
                counts.added += 1
                pending.append((rid, str(batch["text"][n]), str(batch["metadata"][n]), vectors[n]))
                if len(pending) >= self.segment_size:
                    self._submit(pending)
                    pending = []
            self._collect(final=False)
            bar.show(counts.chunks, self.committed_records)
        if pending:
            self._submit(pending)
        self._collect(final=True)
        bar.show(counts.chunks, self.committed_records)
        return counts

    def _submit(self, rows: list[tuple[str, str, str, np.ndarray]]) -> None:
        import numpy as np

        vectors = np.stack([r[3] for r in rows])
        if self.bulk is None:  # the first new chunk: now the store is opened (or created)
            self.store = self.opener()
            self.bulk_scope = self.stack.enter_context(ExitStack())
            # The index is left to the end (index_after_ingest): the driver holds no vectors.
            self.bulk = self.bulk_scope.enter_context(
                self.store.engine.bulk(int(vectors.shape[1]), defer_index=True)
            )
            self.bulk_scope.callback(self._abandon)  # runs before the bulk ends, on success or failure
        (job,) = self.bulk.jobs([len(rows)])
        ids, texts, metadatas = ([r[i] for r in rows] for i in range(3))
        self.building.append(self.build_task.remote(job, ids, texts, metadatas, vectors))
        self._collect(final=False)

    def _collect(self, *, final: bool) -> None:
        """Take built segments in job order; commit every ``commit_every`` (and the rest at the end)."""
        ray = self.ray
        while self.building:
            wait = final or len(self.building) >= self.max_building
            ready, _ = ray.wait([self.building[0]], num_returns=1, timeout=None if wait else 0)
            if not ready:
                break
            self.built.append(ray.get(self.building.popleft()))
            if len(self.built) >= self.commit_every:
                self._commit()
        if final and self.built:
            self._commit()

    def _abandon(self) -> None:
        """Cancel the builds still in flight (after a failure) and wait for them to stop.

        Only then may the bulk delete the files of jobs never committed: a build still running
        would write its files after that. A cancelled build removes what it had written.
        """
        if not self.building:
            return
        ray = self.ray
        pending = list(self.building)
        self.building.clear()
        with suppress(Exception):  # the cluster may be what failed
            for ref in pending:
                ray.cancel(ref)
            ray.wait(pending, num_returns=len(pending), timeout=60)

    def _commit(self) -> None:
        self.bulk.commit(self.built)
        self.segments += len(self.built)
        self.committed_records += sum(len(seg.placements) for seg in self.built)
        self.commits += 1
        self.built = []
        if self.on_commit is not None:
            self.on_commit(self.segments, self.committed_records)


def _build_segment(
    job: SegmentJob, ids: list[str], texts: list[str], metadatas: list[str], vectors: np.ndarray
) -> BuiltSegment:
    """A Ray task: one segment's files into the store's ``tmp/``; the result travels to the driver.

    QR encoding stays in this task's process: the task was given one core.
    """
    from langchain_memvid.engine import Record, build_segment

    records = [Record(i, t, json.loads(m)) for i, t, m in zip(ids, texts, metadatas, strict=True)]
    return build_segment(job, records, vectors, processes=1)


# -- the dataset of chunks -----------------------------------------------------------------------


def _chunk_dataset(
    ray: Any, sources: Any, glob: str, chunk_size: int, chunk_overlap: int
) -> tuple[Any, int | None]:
    """The lazy dataset of chunk rows, with a "file" row for each file (or batch of documents).

    Returns:
        (the dataset, the number of files; None for a dataset of documents, whose batches are
        not known ahead).
    """
    sizes = {"chunk_size": chunk_size, "chunk_overlap": chunk_overlap}
    if isinstance(sources, ray.data.Dataset):
        return sources.map_batches(_split_rows, fn_kwargs=sizes, batch_format="numpy"), None
    items = _list_files(sources, glob)
    if not items:
        msg = f"Nothing to ingest (no files in {', '.join(map(str, sources))})."
        raise NothingToIngest(msg)
    dataset = _from_items(ray, items, blocks=len(items))
    # A reading worker is replaced after READS_PER_WORKER files, which bounds what a parsing library
    # may leak; the option also keeps Ray Data from fusing the reading into the embedding actors
    # (one file at a time per actor): files are read by as many tasks as there are free CPUs.
    reading = dataset.map_batches(
        _load_and_split, fn_kwargs={**sizes, "glob": glob}, batch_size=1, max_calls=READS_PER_WORKER
    )
    return reading, len(items)


def _list_files(sources: Sequence[str | Path], glob: str) -> list[dict[str, Any]]:
    """The files a plain ingest would consider, in its order: path, listed by a folder, why skipped.

    A folder is listed as :class:`~langchain_memvid.document_loaders.DirectoryLoader` lists it
    (sorted, hidden files left out), its unsupported files marked as it skips them; each file
    keeps the path that loader would give it, which is its ``source`` and so part of its chunks'
    ids.
    """
    if isinstance(sources, (str, Path)):
        msg = f"sources must be a list of files and folders, got the single path {sources!r}; pass [{sources!r}]."
        raise TypeError(msg)
    from langchain_memvid.document_loaders import DirectoryLoader

    items: list[dict[str, Any]] = []
    for source in sources:
        path = Path(source)
        if not path.is_dir():  # load_files reports what it cannot load
            items.append({"path": str(source), "listed": False, "skip": ""})
            continue
        loader = DirectoryLoader(path, glob=glob, on_error="skip")
        for file in loader.files():
            suffix = file.suffix.lower()
            skip = "" if suffix in loader.loaders else f"unsupported file type ({suffix or 'no suffix'})"
            items.append({"path": str(file), "listed": True, "skip": skip})
    return items


def _load_and_split(
    batch: dict[str, Any], *, glob: str, chunk_size: int, chunk_overlap: int
) -> dict[str, list[str]]:
    """A Ray task: load one file as plain ingest does, split it, and report what loading found."""
    rows = _Rows()
    for path, listed, skip in zip(batch["path"], batch["listed"], batch["skip"], strict=True):
        if skip:
            rows.add_report([], [(str(path), str(skip))], [])
            continue
        try:
            loaded = load_files([str(path)], glob=glob)
        except Exception as e:
            if not listed:
                raise
            # A folder's file that fails is skipped, not fatal, as DirectoryLoader skips it.
            rows.add_report([], [(str(path), f"{type(e).__name__}: {e}")], [])
            continue
        rows.add_chunks(
            split_into_chunks(loaded.documents, chunk_size=chunk_size, chunk_overlap=chunk_overlap)
        )
        rows.add_report(loaded.documents, loaded.skipped, loaded.warnings)
    return rows.columns


def _split_rows(batch: dict[str, Any], *, chunk_size: int, chunk_overlap: int) -> dict[str, list[str]]:
    """A Ray task: documents (``text`` and ``metadata`` columns) into chunks with their ids."""
    from langchain_core.documents import Document

    if "text" not in batch:
        msg = f"A dataset of documents needs a 'text' column; it has {sorted(batch)}."
        raise ValueError(msg)
    metadatas = batch.get("metadata")
    docs = [
        Document(page_content=str(text), metadata=_metadata(metadatas[n] if metadatas is not None else None))
        for n, text in enumerate(batch["text"])
    ]
    rows = _Rows()
    rows.add_chunks(split_into_chunks(docs, chunk_size=chunk_size, chunk_overlap=chunk_overlap))
    rows.add_report(docs, [], [])
    return rows.columns


def _metadata(value: Any) -> dict[str, Any]:
    """A document's metadata from a dataset cell: a dict, a JSON object as text, or nothing."""
    if value is None:
        return {}
    if isinstance(value, (str, bytes)):
        value = json.loads(value)
    if not isinstance(value, dict):
        msg = f"A document's metadata must be a dict or a JSON object, got {type(value).__name__}."
        raise TypeError(msg)
    return {str(k): _plain(v) for k, v in value.items()}


def _plain(value: Any) -> Any:
    """Arrow's and numpy's values as the JSON types a loader gives (numpy scalars and arrays)."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class _Rows:
    """Columns of pipeline rows, built up as plain lists."""

    def __init__(self) -> None:
        self.columns: dict[str, list[str]] = {name: [] for name in _COLUMNS}

    def _row(self, rid: str, text: str, metadata: str, kind: str) -> None:
        for name, value in zip(_COLUMNS, (rid, text, metadata, kind), strict=True):
            self.columns[name].append(value)

    def add_chunks(self, chunks: Sequence[Document]) -> None:
        for chunk in chunks:
            # JSON as the engine will store it; it also spares Arrow from unifying dicts' keys.
            self._row(str(chunk.id), chunk.page_content, json.dumps(chunk.metadata, ensure_ascii=False), _NEW)

    def add_report(self, docs: Sequence[Document], skipped: list[tuple[str, str]], notes: list[str]) -> None:
        report = {
            "sources": sorted({str(d.metadata.get(SOURCE_KEY)) for d in docs if SOURCE_KEY in d.metadata}),
            "documents": len(docs),
            "skipped": skipped,
            "warnings": notes,
        }
        self._row("", "", json.dumps(report), _FILE)


class _Embedder:
    """A Ray actor: marks the chunks the store already holds, embeds the others (model loaded once)."""

    def __init__(self, make_embedding: Callable[[], Embeddings], lookup: Any) -> None:
        self.embedding = make_embedding()
        self.dim = len(self.embedding.embed_query("dimension probe"))
        self.lookup = lookup  # a _StoredIds actor

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import numpy as np
        import ray

        ids, kinds = batch["id"], batch["kind"].astype(object)
        texts, metadatas = batch["text"].astype(object), batch["metadata"].astype(object)
        new = [n for n in range(len(ids)) if kinds[n] == _NEW]
        stored = set(ray.get(self.lookup.stored.remote([str(ids[n]) for n in new]))) if new else set()
        for n in new:
            if ids[n] in stored:
                kinds[n], texts[n], metadatas[n] = _STORED, "", "{}"  # only the id travels on
        todo = [n for n in new if kinds[n] == _NEW]
        vectors = np.zeros((len(ids), self.dim), dtype=np.float32)
        if todo:
            vectors[todo] = np.asarray(
                self.embedding.embed_documents([str(texts[n]) for n in todo]), dtype=np.float32
            )
        return {"id": ids, "text": texts, "metadata": metadatas, "kind": kinds, "vector": vectors}


class _StoredIds:
    """A Ray actor on the driver's machine: which of some ids the store holds.

    It reads the catalog read-only: no lock, no vector loaded. The catalog is an SQLite database
    in WAL mode, which SQLite lets processes share on one machine only, so it is read there, where
    the driver writes it, and never over a network file system from other nodes. Chunk ids are
    unique within an ingest (the driver drops repeats), so what the ingest commits meanwhile never
    needs looking up: the catalog as it was is enough.
    """

    def __init__(self, store: str) -> None:
        self.store = store

    def stored(self, ids: list[str]) -> list[str]:
        from langchain_memvid.engine import stored_ids

        return sorted(stored_ids(self.store, ids))


def _stored_ids(ray: Any, root: Path, stack: ExitStack) -> Any:
    """A _StoredIds actor for the store at ``root``, on this process's node, ended with the ingest."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    actor = ray.remote(num_cpus=0)(_StoredIds).options(scheduling_strategy=here).remote(str(root))
    stack.callback(ray.kill, actor)
    return actor


def _embedding_factory(embedding: Embeddings) -> Callable[[], Embeddings]:
    """How an actor gets the embedding: a sentence-transformers one is made anew from its settings."""
    from langchain_memvid.embeddings import SentenceTransformerEmbeddings

    if isinstance(embedding, SentenceTransformerEmbeddings):
        # Its loaded model (and lock) do not belong in a message to each actor.
        return partial(SentenceTransformerEmbeddings, **embedding.model_dump())
    return partial(_same, embedding)


def _same(value: Embeddings) -> Embeddings:
    return value


# -- the store -------------------------------------------------------------------------------------


def _store_opener(
    store: str | Path | MemvidVectorStore,
    embedding: Embeddings | str | None,
    options: dict[str, Any],
    stack: ExitStack,
) -> tuple[Callable[[], MemvidVectorStore], Embeddings, Path]:
    """A function that opens the store once (later calls return it), the actors' embedding, the folder."""
    from langchain_memvid.embeddings import SentenceTransformerEmbeddings
    from langchain_memvid.vectorstores import MemvidVectorStore

    if isinstance(embedding, str):
        embedding = SentenceTransformerEmbeddings(model_name=embedding)
    if isinstance(store, MemvidVectorStore):
        if embedding is not None or options:
            msg = "An open store brings its own embedding and options; pass neither embedding nor store_options with it."
            raise ValueError(msg)
        return (lambda: store), store.embeddings, Path(store.path).absolute()  # a folder: URLs were refused
    folder = Path(store).absolute()
    if embedding is None and (folder / "catalog.sqlite").exists():
        existing = stack.enter_context(MemvidVectorStore(folder, **options))  # the model it records
        return (lambda: existing), existing.embeddings, folder
    chosen = embedding if embedding is not None else SentenceTransformerEmbeddings()
    opened: list[MemvidVectorStore] = []

    def opener() -> MemvidVectorStore:
        if not opened:
            opened.append(stack.enter_context(MemvidVectorStore(folder, chosen, **options)))
        return opened[0]

    return opener, chosen, folder


def _segment_records(store: str | Path | MemvidVectorStore, options: Mapping[str, Any] | None) -> int:
    """Records per segment when none is asked: what the store itself would write."""
    from langchain_memvid.vectorstores import MemvidVectorStore

    if isinstance(store, MemvidVectorStore):
        return int(store.engine.segment_records)
    if options and "segment_records" in options:
        return max(1, int(options["segment_records"]))
    from langchain_memvid.engine import SEGMENT_RECORDS

    return SEGMENT_RECORDS


# -- Ray -------------------------------------------------------------------------------------------


@contextmanager
def _joined(ray: Any, address: str | None) -> Iterator[None]:
    """This process joined to a Ray cluster: the one given, the current one, or a new local one.

    Quiet: workers' output and Ray's messages below warnings stay off the driver's terminal,
    which shows the ingest's own progress bar.
    """
    if ray.is_initialized():
        if address is not None:
            logger.warning("Ray is already initialised in this process; ray_address %r is ignored.", address)
        yield
        return
    ray.init(
        address=address,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    try:
        yield
    finally:
        ray.shutdown()


@contextmanager
def _data_context(ray: Any) -> Iterator[None]:
    """Ray Data keeps the rows in order (the plain ingest's order), without bars of its own."""
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars)
    data_logger = logging.getLogger("ray.data")
    level = data_logger.level
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    data_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
        data_logger.setLevel(level)


def _from_items(ray: Any, items: list[dict[str, Any]], blocks: int) -> Any:
    """``ray.data.from_items`` in ``blocks`` blocks (the keyword changed name in Ray 2.10)."""
    import inspect

    keyword = (
        "override_num_blocks"
        if "override_num_blocks" in inspect.signature(ray.data.from_items).parameters
        else "parallelism"
    )
    return ray.data.from_items(items, **{keyword: max(1, min(blocks, 10_000))})


def _actor_args(gpus: float) -> dict[str, Any]:
    """An actor's resources; a dead actor is restarted and its batch run again (Ray Data's default)."""
    return {"num_gpus": gpus} if gpus else {"num_cpus": 1}


def _default_workers(ray: Any, gpus_per_worker: float) -> int:
    resources = ray.cluster_resources()
    if gpus_per_worker:
        return max(1, int(resources.get("GPU", 0) // gpus_per_worker))
    return max(1, int(resources.get("CPU", 1)) // 2)


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"{name} must be a positive integer, got {value!r}."
        raise ValueError(msg)


# -- batch search ------------------------------------------------------------------------------


def search_on_ray(
    store: str | Path,
    queries: Any,
    k: int = 4,
    *,
    embedding: Embeddings | str | None = None,
    filter: dict[str, Any] | None = None,
    query_column: str = "query",
    batch_size: int = 64,
    workers: int | None = None,
    gpus_per_worker: float = 0,
    with_documents: bool = False,
    ray_address: str | None = None,
) -> Any:
    """Search a store for every query of a dataset on a Ray cluster, for offline evaluation.

    Each actor of the pool opens the store for reading (as any reader does; it writes nothing)
    and loads the embedding model once, then searches a batch of queries at a time with
    ``similarity_search_with_score``. The store may be written meanwhile: each batch sees the
    last commit.

    Example:
        ```python
        import ray
        from langchain_memvid.distributed import search_on_ray

        queries = ray.data.from_items([{"query": q, "relevant": ids} for q, ids in labelled])
        hits = search_on_ray("/shared/library", queries, k=10, workers=4).take_all()
        recall = sum(len(set(h["ids"]) & set(h["relevant"])) / len(h["relevant"]) for h in hits) / len(hits)
        ```

    Args:
        store: The store folder, at the same absolute path on every worker (on several machines,
            a copy on each: its SQLite catalog is not for sharing across machines; docs/ray.md).
        queries: A Ray Dataset with a ``query_column`` of strings (other columns are kept), or a
            list of query strings.
        k: Hits per query.
        embedding: The store's embedding model, as for :func:`ingest_on_ray`; None: the model the
            store records.
        filter: A metadata filter, as for ``similarity_search``.
        query_column: The column that holds the queries.
        batch_size: Queries per call on an actor.
        workers: Search actors; None as for :func:`ingest_on_ray`.
        gpus_per_worker: GPUs each actor reserves (for the embedding model).
        with_documents: Also return each hit's text and metadata (as JSON).
        ray_address: The cluster to join when this process has not joined one (it stays joined:
            the dataset is lazy and runs when it is consumed).

    Returns:
        The lazy dataset of the queries' rows plus ``ids`` (a list of k record ids, best first) and
        ``scores`` (the store's metric; for cosine, higher is closer), and with ``with_documents``,
        ``texts`` and ``metadata``.

    Raises:
        RayMissing: Ray is not installed.
        ValueError: ``k``, ``batch_size`` or ``workers`` is not a positive integer.
    """
    ray = require_ray()
    for name, value in (("k", k), ("batch_size", batch_size)):
        _check_count(name, value)
    if workers is not None:
        _check_count("workers", workers)
    if not ray.is_initialized():
        ray.init(address=ray_address, include_dashboard=False, logging_level=logging.WARNING)
    if not isinstance(queries, ray.data.Dataset):
        queries = ray.data.from_items([{query_column: str(q)} for q in queries])
    if isinstance(embedding, str):
        from langchain_memvid.embeddings import SentenceTransformerEmbeddings

        embedding = SentenceTransformerEmbeddings(model_name=embedding)
    return queries.map_batches(
        _Searcher,
        fn_constructor_kwargs={
            "store": str(Path(store).absolute()),
            "make_embedding": _embedding_factory(embedding) if embedding is not None else None,
            "k": k,
            "filter": filter,
            "query_column": query_column,
            "with_documents": with_documents,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers or _default_workers(ray, gpus_per_worker)),
        **_actor_args(gpus_per_worker),
    )


class _Searcher:
    """A Ray actor holding a reading handle on the store and its embedding model."""

    def __init__(
        self,
        store: str,
        make_embedding: Callable[[], Embeddings] | None,
        k: int,
        filter: dict[str, Any] | None,
        query_column: str,
        with_documents: bool,
    ) -> None:
        from langchain_memvid.vectorstores import MemvidVectorStore

        if make_embedding is None:
            self.store = MemvidVectorStore(store)  # the model it records
        else:
            self.store = MemvidVectorStore(store, make_embedding(), create=False)
        self.k, self.filter, self.column, self.with_documents = k, filter, query_column, with_documents

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        out: dict[str, Any] = dict(batch)
        ids, scores, texts, metadatas = [], [], [], []
        for query in batch[self.column]:
            pairs = self.store.similarity_search_with_score(str(query), k=self.k, filter=self.filter)
            ids.append([str(doc.id) for doc, _ in pairs])
            scores.append([float(score) for _, score in pairs])
            texts.append([doc.page_content for doc, _ in pairs])
            metadatas.append([json.dumps(doc.metadata, ensure_ascii=False) for doc, _ in pairs])
        out["ids"], out["scores"] = _ragged(ids), _ragged(scores)
        if self.with_documents:
            out["texts"], out["metadata"] = _ragged(texts), _ragged(metadatas)
        return out


def _ragged(lists: list[list[Any]]) -> np.ndarray:
    """A column of lists (of any lengths) as numpy's object array, which Ray Data takes as is."""
    import numpy as np

    column = np.empty(len(lists), dtype=object)
    column[:] = lists
    return column
