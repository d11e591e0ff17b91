"""Index snapshots: the trained approximate index saved beside the segments, so opening is cheap.

A store built with an approximate index (``Engine(index="ivf" | "ivfpq" | "hnsw" | "lsh" |
<factory string>)``) keeps, besides the per-segment vector files, one FAISS index file::

    index/GENERATION-TOKEN.faiss    written with faiss.write_index via tmp/ + fsync + rename

The catalog's ``index_snapshot`` meta records its name, size, SHA-256, the last segment and vector
id it covers and what it was trained on. Opening reads it (optionally memory-mapped) and adds only
the vectors of later segments (the delta); deleted ids are removed from it (IVF) or excluded at
search time (HNSW, LSH, memory-mapped). The segment files stay the source of truth: a snapshot that
is missing or fails its checks is ignored with a warning and the index is rebuilt in memory.

Snapshots are written when training first becomes possible (the store reaches ``min_vectors``),
when the vectors added since the last snapshot outnumber those in it (so reopening never replays
more than half the store), by ``compact()`` (dropping deleted ids; retraining once the data has
grown ``retrain_growth`` times past the training size) and by ``build_index()``.
"""

from __future__ import annotations

import re
import secrets
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from langchain_memvid.engine.catalog.catalog import Catalog, SegmentRow
from langchain_memvid.engine.errors import (
    ChecksumMismatch,
    CorruptData,
    InvalidArgument,
    MemvidError,
    SegmentNotFound,
    UnsafePath,
)
from langchain_memvid.engine.files import sha256_regular
from langchain_memvid.engine.search.index import VectorIndex, VectorSource, empty_like, new_main
from langchain_memvid.engine.search.index_spec import IndexSpec
from langchain_memvid.engine.search.live import LiveSet
from langchain_memvid.engine.search.vector_files import check_vector_file, mapped_file
from langchain_memvid.engine.storage.commit import install
from langchain_memvid.engine.storage.reader import SegmentReader

FOLDER = "index"
MAPPED_MIN = 1024  # vectors: a flat store's segment this large is searched in its mapped file
_NAME = re.compile(r"[0-9a-f]{8,16}-[0-9a-f]{8}\.faiss")
ADD_BATCH = 65_536  # vectors per add call while building (HNSW parallelises within a call)


@dataclass(frozen=True)
class IndexHost:
    """What index maintenance needs from the store, and nothing else (the engine makes one).

    The functions below that change the store return what the engine must then do: the
    generation they committed (so it does not reload its own commit), and whether to reload the
    index from the files (a new snapshot is served as any reader would read it).
    """

    path: Path
    catalog: Catalog
    reader: SegmentReader
    settings: Callable[[], dict[str, Any]]  # the engine's current settings (updated in place)
    segments: Callable[[], Mapping[int, SegmentRow]]  # the live segments
    exact_vectors: VectorSource
    search_options: Callable[[], Mapping[str, int]]
    open_options: Mapping[str, Any]

    def empty_index(self, dim: int, metric: str, spec: IndexSpec) -> VectorIndex:
        """A ``VectorIndex`` with nothing in it yet, reading exact vectors from the segment files."""
        return VectorIndex(dim, metric, spec, source=self.exact_vectors, search=self.search_options())


@dataclass(frozen=True)
class Outcome:
    """What the engine must do after maintenance: adopt ``generation``, then maybe reload."""

    generation: int | None = None
    reload: bool = False


def snapshot_file(snap: Any) -> str | None:
    """The snapshot's file name inside ``index/`` from its catalog record, or None.

    Raises:
        UnsafePath: the catalog names something other than a plain snapshot file.
    """
    if snap is None:
        return None
    name = snap.get("file") if isinstance(snap, dict) else None
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        msg = (
            f"The catalog names the index snapshot {name!r}, which is not a plain snapshot name; refusing it."
        )
        raise UnsafePath(msg)
    return name


def clean_folder(root: Path, keep: str | None) -> None:
    """Delete snapshot files the catalog does not name (a crashed or superseded write)."""
    folder = root / FOLDER
    if not folder.is_dir() or folder.is_symlink():
        return
    for file in folder.iterdir():
        if file.name != keep and (file.suffix == ".faiss" or file.name.endswith(".tmp")):
            file.unlink(missing_ok=True)


def check_snapshot(root: Path, snap: Any) -> str | None:
    """What is wrong with the recorded snapshot file (missing, size, SHA-256), or None."""
    try:
        name = snapshot_file(snap)
        if name is None:
            return None
        size, digest = sha256_regular(root / FOLDER / name)
    except (MemvidError, OSError) as e:
        return str(e)
    if size != snap.get("bytes") or digest != snap.get("sha256"):
        return f"index snapshot {name} fails its size/SHA-256 check"
    return None


def open_index(
    host: IndexHost,
    dim: int,
    metric: str,
    spec: IndexSpec,
    snap: Any,
    live: LiveSet,
    gen: int,
    segments: Mapping[int, SegmentRow],
) -> tuple[VectorIndex, set[int]]:
    """A fresh ``VectorIndex`` for a sync, serving what it can from files without loading them.

    A flat store searches its large segments' vector files in place (``map_segments``); an
    approximate one attaches its snapshot when there is a usable one. The engine loads the
    vectors of every other segment of ``segments`` (the state being opened) into memory.

    Returns:
        (index, sequence numbers of the segments it already covers).

    Raises:
        SegmentNotFound: the snapshot vanished because a newer commit replaced it (sync retries).
    """
    index = host.empty_index(dim, metric, spec)
    if spec.kind == "flat":
        return index, map_segments(host, index, live, segments)
    if snap is None:
        return index, set()
    mmap = bool(host.open_options.get("mmap"))
    try:
        name = snapshot_file(snap)
        assert name is not None
        path = host.path / FOLDER / name
        problem = check_snapshot(host.path, snap)
        if problem is not None:
            if not path.exists() and host.catalog.generation() != gen:
                raise SegmentNotFound(problem)
            raise ChecksumMismatch(problem)
        ivf = snap.get("factory", "").startswith("IVF")
        flags = (faiss.IO_FLAG_MMAP if ivf else faiss.IO_FLAG_MMAP_IFC) if mmap else 0
        try:
            main = faiss.read_index(str(path), flags)
        except RuntimeError as e:
            msg = f"index snapshot {name} is not a readable FAISS index: {str(e).splitlines()[-1]}"
            raise CorruptData(msg) from e
        if main.d != dim:
            msg = f"index snapshot {name} holds {main.d}-dimensional vectors, not {dim}"
            raise CorruptData(msg)
        every = live.all()  # approximate indexes read every live id
        covered = every[every <= int(snap["max_vector_id"])]
        index.attach(
            main,
            covered,
            factory=str(snap["factory"]),
            trained_on=snap.get("trained_on"),
            train_sample=snap.get("train_sample"),
            mmapped=mmap,
        )
    except SegmentNotFound:
        raise
    except (MemvidError, OSError, KeyError, TypeError, ValueError) as e:
        warnings.warn(
            f"Ignoring the index snapshot of {host.path} ({e}); serving exact search until the index is rebuilt (compact() or build_index()).",
            RuntimeWarning,
            stacklevel=4,
        )
        return host.empty_index(dim, metric, spec), set()
    _maybe_gpu(host, index)
    last = int(snap.get("seq", 0))
    return index, {seq for seq in segments if seq <= last}


def map_segments(
    host: IndexHost, index: VectorIndex, live: LiveSet, segments: Mapping[int, SegmentRow]
) -> set[int]:
    """Serve the large segments of a flat store from their memory-mapped vector files.

    Each vector file of at least ``MAPPED_MIN`` vectors in a float encoding is read by FAISS
    with its codes memory-mapped (no copy, no pass over the vectors) and searched in place, all
    of them as one ``IndexShards``; ids deleted since are excluded at search time. Opening costs
    a layout check per file and its id list (8 bytes a vector), whatever the store's size.
    Checked at open: each file's size against the catalog and every count in it; its SHA-256 is
    checked by ``verify`` (docs/guarantees.md). Returns the sequence numbers served.
    """
    want = faiss.METRIC_L2 if index.metric == "l2" else faiss.METRIC_INNER_PRODUCT
    shards: Any = faiss.IndexShards(index.dim, False, False)  # type: ignore[call-arg]
    shards.metric_type = want
    parts: list[Any] = []
    covered: set[int] = set()
    held: list[np.ndarray] = []
    for seg in sorted(segments.values(), key=lambda s: s.seq):
        if seg.kind != "records" or seg.record_count < MAPPED_MIN:
            continue
        part = _mapped_file(host, seg, index.dim, want)
        if part is None:
            continue
        ids = faiss.vector_to_array(part.id_map)
        if len(ids) and (ids.min() < 0 or ids.max() >= 1 << 40):
            continue  # out-of-range ids: loading the file reports it (CorruptData)
        parts.append(part)
        shards.add_shard(part)
        covered.add(seg.seq)
        held.append(ids)
    if not parts:
        return set()
    shards.referenced_objects = parts  # FAISS does not own them: keep them alive with the shards
    ids = np.concatenate(held).astype(np.int64)
    index.attach(shards, ids[live.mask(ids)], factory="Flat", trained_on=None, mmapped=True)
    return covered


def _mapped_file(host: IndexHost, seg: SegmentRow, dim: int, metric: int) -> Any:
    """A segment's vector file read by FAISS with its codes memory-mapped, or None.

    None (the engine then loads the file, checking its SHA-256) when the file is binary, of
    another metric, not the size the catalog records, or of a layout this store does not write.
    """
    path = host.reader.segment_file(seg.index_file)
    try:
        with mapped_file(path) as mapped:
            if len(mapped) != seg.index_bytes or not seg.index_bytes:
                return None
            layout = check_vector_file(mapped, dim)  # touches the pages holding counts only
        if layout.encoding == "binary" or layout.count != seg.record_count:
            return None
        part = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
    except (MemvidError, OSError, RuntimeError):
        return None
    if not isinstance(part, faiss.IndexIDMap) or part.metric_type != metric or part.ntotal != layout.count:
        return None
    return part


def _maybe_gpu(host: IndexHost, index: VectorIndex) -> None:
    if host.open_options.get("gpu") and index.main is not None:
        why = index.move_to_gpu()
        if why is not None:
            warnings.warn(f"gpu=True: {why}; searching on the CPU.", RuntimeWarning, stacklevel=5)


def live_segments(host: IndexHost) -> list[SegmentRow]:
    """The live records segments, in sequence order (the order vectors are read in)."""
    return sorted((s for s in host.segments().values() if s.kind == "records"), key=lambda s: s.seq)


def sample_vectors(host: IndexHost, dim: int, live: np.ndarray, size: int) -> np.ndarray:
    """``size`` live vectors drawn uniformly (fixed seed), read segment by segment."""
    picked = np.zeros(len(live), bool)
    picked[np.random.default_rng(0).choice(len(live), size, replace=False)] = True
    out = np.empty((size, dim), np.float32)
    pos = offset = 0
    for seg in live_segments(host):
        ids, vectors = host.reader.load_vectors(seg, dim)
        vectors = vectors[np.isin(ids, live)]
        take = picked[offset : offset + len(vectors)]
        got = vectors[: len(take)][take]
        out[pos : pos + len(got)] = got
        pos += len(got)
        offset += len(vectors)
    return out[:pos]


def build(host: IndexHost, current: VectorIndex | None, spec: IndexSpec, *, retrain: bool) -> VectorIndex:
    """A new ``VectorIndex`` whose ``main`` holds every live vector, read from the segment files.

    Reuses the current training (an empty copy of the trained index) unless ``retrain`` or there
    is none. Memory: the index, one batch of vectors and (when training) the training sample.

    Raises:
        InvalidArgument: impossible settings, or too few vectors to train.
    """
    settings = host.settings()
    dim, metric = int(settings["dim"]), str(settings["metric"])
    live = np.sort(np.asarray(host.catalog.live_vector_ids(), dtype=np.int64))
    template = None
    reusable = current is not None and current.main is not None and current.spec == spec
    if (
        reusable
        and current is not None
        and current.mmapped
        and current.factory
        and not current.factory.startswith("IVF")
    ):
        reusable = False  # a zero-copy memory-mapped index must not be cloned and reset
    if not retrain and reusable and current is not None:
        name = snapshot_file(settings.get("index_snapshot"))
        main_now = current.cpu_main()
        if main_now is not None and not main_now.is_trained:  # pragma: no cover - defensive
            main_now = None
        template = empty_like(main_now, host.path / FOLDER / name if name else None) if main_now else None
    if template is not None and current is not None and current.factory is not None:
        main, factory = template, current.factory
        trained_on, sample_size = current.trained_on, current.train_sample
    else:
        fresh, _ = spec.new_index(dim, metric, len(live))
        sample = None
        if not fresh.is_trained:
            ivf = faiss.try_extract_index_ivf(fresh)
            sample = sample_vectors(host, dim, live, spec.train_size(len(live), int(ivf.nlist) if ivf else 0))
        main, factory, sample_size = new_main(spec, dim, metric, len(live), sample)
        trained_on = len(live) if sample_size else None
    ids_buf: list[np.ndarray] = []
    vec_buf: list[np.ndarray] = []
    pending = 0
    for seg in live_segments(host):
        ids, vectors = host.reader.load_vectors(seg, dim)
        keep = np.isin(ids, live)
        ids_buf.append(ids[keep])
        vec_buf.append(vectors[keep])
        pending += int(keep.sum())
        if pending >= ADD_BATCH:
            main.add_with_ids(np.concatenate(vec_buf), np.concatenate(ids_buf))
            ids_buf, vec_buf, pending = [], [], 0
    if pending:
        main.add_with_ids(np.concatenate(vec_buf), np.concatenate(ids_buf))
    index = host.empty_index(dim, metric, spec)
    index.attach(main, live, factory=factory, trained_on=trained_on, train_sample=sample_size)
    return index


def save(host: IndexHost, index: VectorIndex, spec: IndexSpec) -> Outcome:
    """Write ``index.main`` as the store's snapshot and record it (and ``spec``) in one commit."""
    main = index.cpu_main()
    assert main is not None
    name, tmp = snapshot_name(host)
    try:
        faiss.write_index(main, str(tmp))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    trained = (index.trained_on, index.train_sample)
    outcome = publish_snapshot(host, tmp, name, spec, int(main.ntotal), index.factory, trained)
    index.saved = int(main.ntotal)
    return outcome


def snapshot_name(host: IndexHost) -> tuple[str, Path]:
    """A new snapshot file name, and where in ``tmp/`` to write it first."""
    name = f"{host.catalog.generation() + 1:08d}-{secrets.token_hex(4)}.faiss"
    return name, host.path / "tmp" / name


def publish_snapshot(
    host: IndexHost,
    tmp: Path,
    name: str,
    spec: IndexSpec,
    ntotal: int,
    factory: str | None,
    trained: tuple[int | None, int | None],
) -> Outcome:
    """Move a written snapshot into ``index/`` and record it (and ``spec``) in one commit.

    The snapshot covers every live segment and vector id there is: the write lock is held.
    """
    folder = host.path / FOLDER
    folder.mkdir(exist_ok=True)
    try:
        size, digest = sha256_regular(tmp)
        install(tmp, folder / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    settings = host.settings()
    old = snapshot_file(settings.get("index_snapshot"))
    meta = {
        "file": name,
        "bytes": size,
        "sha256": digest,
        "seq": max(host.segments(), default=0),
        "max_vector_id": int(host.catalog.get_meta("next_vector_id") or 0) - 1,
        "ntotal": ntotal,
        "factory": factory,
        "trained_on": trained[0],
        "train_sample": trained[1],
        "created": time.time(),
    }
    try:
        with host.catalog.transaction():
            host.catalog.set_meta("index", spec.to_meta())
            host.catalog.set_meta("index_snapshot", meta)
            gen = host.catalog.bump_generation()
    except BaseException:
        (folder / name).unlink(missing_ok=True)
        raise
    if old is not None and old != name:
        (folder / old).unlink(missing_ok=True)
    settings["index"], settings["index_snapshot"] = spec.to_meta(), meta
    return Outcome(generation=gen)


def drop(host: IndexHost, spec: IndexSpec) -> Outcome:
    """Record ``spec`` with no snapshot (flat, or too few vectors to train) and delete the old file."""
    settings = host.settings()
    old = snapshot_file(settings.get("index_snapshot"))
    with host.catalog.transaction():
        host.catalog.set_meta("index", spec.to_meta())
        host.catalog.set_meta("index_snapshot", None)
        gen = host.catalog.bump_generation()
    if old is not None:
        (host.path / FOLDER / old).unlink(missing_ok=True)
    settings["index"], settings["index_snapshot"] = spec.to_meta(), None
    return Outcome(generation=gen)


def rebuild(
    host: IndexHost, current: VectorIndex | None, spec: IndexSpec, *, retrain: bool, force: bool = False
) -> Outcome:
    """Build ``main`` from the segment files and save it (holding the write lock); serve it by reloading.

    Without ``force`` nothing is built below ``spec.min_vectors`` vectors (exact search serves).
    """
    settings = host.settings()
    n = len(host.catalog.live_vector_ids()) if settings.get("dim") is not None else 0
    if spec.kind == "flat" or n == 0 or (not force and n < spec.min_vectors):
        gen = None
        if settings.get("index_snapshot") is not None or IndexSpec.from_meta(settings.get("index")) != spec:
            gen = drop(host, spec).generation
        if current is not None and current.main is None and current.spec == spec:
            return Outcome(gen)  # the exact part already holds every vector
        return Outcome(gen, reload=True)  # rebuilt from the segment files by the engine's sync
    index = build(host, current, spec, retrain=retrain)
    gen = save(host, index, spec).generation
    # Serve the snapshot as any reader would: lists grown by appending hold a third more memory
    # than a freshly read index (measured: IVF-Flat at 1M x 384, 1,978 MiB built, 1,480 read).
    del index
    return Outcome(gen, reload=True)


def after_add(host: IndexHost, index: VectorIndex | None) -> Outcome:
    """Train once the store reaches ``min_vectors``; snapshot when the unsaved part is large."""
    if index is None or index.spec.kind == "flat":
        return Outcome()
    try:
        if index.main is None:
            if len(index) >= index.spec.min_vectors:
                return rebuild(host, index, index.spec, retrain=True)
        elif index.mutable and index.main.ntotal - index.saved >= max(index.spec.min_vectors, index.saved):
            return save(host, index, index.spec)
    except (InvalidArgument, MemvidError, OSError, RuntimeError) as e:
        # The records are committed; only the index is not. Search stays correct (the vectors
        # are in memory) and the next add, compact() or build_index() tries again.
        warnings.warn(
            f"Could not build or save the {index.spec.name} index of {host.path}: {e}",
            RuntimeWarning,
            stacklevel=3,
        )
    return Outcome()


def after_compact(host: IndexHost, index: VectorIndex | None) -> Outcome:
    """Rebuild ``main`` without deleted vectors; retrain once the data outgrew the training."""
    if index is None or index.spec.kind == "flat":
        return Outcome()
    n = len(index)
    trained_on = index.trained_on or 0
    retrain = index.main is None or (trained_on > 0 and n >= index.spec.retrain_growth * trained_on)
    force = index.main is not None  # an index once built stays built when the store shrinks
    return rebuild(host, index, index.spec, retrain=retrain, force=force)


def info(index: VectorIndex | None, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The ``index`` part of ``stats()``: what is built, trained on what, and how it is served."""
    spec = index.spec if index is not None else IndexSpec.from_meta(settings.get("index"))
    snap = settings.get("index_snapshot")
    out: dict[str, Any] = {
        "kind": spec.kind,
        "factory": (index.factory if index is not None and index.factory else spec.factory),
        "options": spec.options,
        "search_defaults": index.params() if index is not None and index.main is not None else {},
        "serving": "exact",
        "min_vectors": spec.min_vectors if spec.kind != "flat" else None,
        "trained": False,
        "trained_on": None,
        "train_sample": None,
        "vectors_in_main": 0,
        "vectors_exact": len(index) if index is not None else 0,
        "deleted_excluded": 0,
        "snapshot": None,
        "mmap": False,
        "gpu": False,
    }
    if index is not None and index.main is not None and spec.kind == "flat":
        out.update(vectors_in_main=index.in_main, vectors_exact=len(index) - index.in_main, mmap=True)
        out["deleted_excluded"] = index.dead
    elif index is not None and index.main is not None:
        out.update(
            serving="approximate",
            trained=bool(index.trained_on) or index.main.is_trained,
            trained_on=index.trained_on,
            train_sample=index.train_sample,
            vectors_in_main=index.in_main,
            vectors_exact=len(index) - index.in_main,
            deleted_excluded=index.dead,
            mmap=index.mmapped,
            gpu=index.on_gpu,
        )
    if isinstance(snap, dict):
        out["snapshot"] = {k: snap.get(k) for k in ("file", "bytes", "ntotal", "seq", "max_vector_id")}
    return out


def describe(index: VectorIndex | None, settings: Mapping[str, Any]) -> str:
    """One line for ``info``, e.g. ``IVF-Flat (IVF632,Flat), trained on 25,000 of 25,000 vectors``."""
    i = info(index, settings)
    names = {"flat": "Flat (exact)", "ivf": "IVF-Flat", "ivfpq": "IVF-PQ", "hnsw": "HNSW", "lsh": "LSH"}
    label = names.get(i["kind"], "FAISS")
    if i["kind"] == "flat":
        return label
    if i["serving"] == "exact":
        name = f"{label} ({i['factory']})" if i["kind"] == "factory" else label
        return f"{name}, exact search until {i['min_vectors']:,} vectors"
    text = f"{label} ({i['factory']})"
    if i["trained_on"]:
        text += f", trained on {i['train_sample']:,} of {i['trained_on']:,} vectors"
    if i["deleted_excluded"]:
        text += f", {i['deleted_excluded']:,} deleted excluded until compact()"
    return text
