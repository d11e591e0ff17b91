"""The in-memory search index: ``VectorIndex``, every live vector of a store in one searchable FAISS index.

``VectorIndex`` holds every live vector, keyed by the catalog's ``vector_id``, in two parts:

- ``main``, the store's chosen FAISS index (IVF-Flat, IVF-PQ, HNSW, LSH or a factory string) once
  it is trained, read from the store's index snapshot or built from the segment files;
- an exact flat part for vectors outside ``main``: all of them while the store is flat, small or
  untrained (exact search), and those added after a read-only (memory-mapped) snapshot.

Deletes remove ids where the index type can (flat, IVF) and are otherwise excluded at search time
with an ``IDSelector`` until the next rebuild (HNSW, LSH, memory-mapped indexes).

Scores follow the metric (see ``vectors``). Approximate indexes over ``cosine`` use L2 on the unit
vectors (the same ranking, and FAISS's fastest code paths); scores are converted back.

Elsewhere: preparing vectors (``vectors``), segments' vector files (``vector_files``), index
specs and options (``index_spec``), FAISS helpers (``faiss_helpers``), snapshots (``indexing``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from langchain_memvid.engine.errors import InvalidArgument
from langchain_memvid.engine.search.faiss_helpers import (
    faiss_reason,
    few_threads,
    find_hnsw,
    find_inner,
    gpu_status,
    with_ids,
)
from langchain_memvid.engine.search.index_spec import (
    DEFAULT_EF_SEARCH,
    DEFAULT_EXACT_MAX,
    KINDS,
    OPEN_KEYS,
    SEARCH_KEYS,
    IndexSpec,
    auto_nlist,
    auto_nprobe,
    auto_pq_m,
    check_search_params,
)
from langchain_memvid.engine.search.vector_files import (
    VectorFiles,
    check_vector_file,
    deserialize_vectors,
    serialize_vectors,
)
from langchain_memvid.engine.search.vectors import (
    METRICS,
    UNIT_TOLERANCE,
    check_metric,
    flat_index,
    prepare_query,
    prepare_vectors,
)

__all__ = [
    "GPU_MAX_K",
    "VectorIndex",
    "VectorSource",
    "empty_like",
    "new_main",
    # kept importable from here for code written against 0.1
    "DEFAULT_EF_SEARCH",
    "DEFAULT_EXACT_MAX",
    "KINDS",
    "METRICS",
    "OPEN_KEYS",
    "SEARCH_KEYS",
    "UNIT_TOLERANCE",
    "IndexSpec",
    "VectorFiles",
    "auto_nlist",
    "auto_nprobe",
    "auto_pq_m",
    "check_metric",
    "check_search_params",
    "check_vector_file",
    "deserialize_vectors",
    "find_hnsw",
    "find_inner",
    "gpu_status",
    "prepare_query",
    "prepare_vectors",
    "serialize_vectors",
    "with_ids",
]

GPU_MAX_K = 2048  # FAISS GPU indexes return at most 2,048 results and probe at most 2,048 lists
VectorSource = Callable[[np.ndarray], np.ndarray]
_faiss: Any = faiss  # the parts of FAISS its type stubs lack


def new_main(
    spec: IndexSpec, dim: int, metric: str, n: int, sample: np.ndarray | None
) -> tuple[faiss.Index, str, int | None]:
    """A fresh, empty ``main`` for ``n`` vectors, trained on ``sample`` when its type needs it.

    Returns:
        (index accepting add_with_ids, factory string, training sample size or None).

    Raises:
        InvalidArgument: impossible settings, or too few vectors to train.
    """
    index, factory = spec.new_index(dim, metric, n)
    trained = None
    if not index.is_trained:
        if sample is None or not len(sample):
            msg = f"Index {factory} needs vectors to train on."
            raise InvalidArgument(msg)
        try:
            index.train(np.ascontiguousarray(sample, dtype=np.float32))
        except RuntimeError as e:
            msg = f"Training {factory} on {len(sample)} vectors failed: {faiss_reason(e)}"
            raise InvalidArgument(msg) from e
        trained = len(sample)
    return with_ids(index), factory, trained


def empty_like(main: faiss.Index, snapshot: Path | None) -> faiss.Index | None:
    """An empty copy of a trained ``main`` keeping its training, or None when none can be made.

    IVF indexes are read from their snapshot with the lists memory-mapped, then given fresh empty
    lists (so only the quantizers are read); other types are cloned and reset.
    """
    try:
        if faiss.try_extract_index_ivf(main) is not None and snapshot is not None:
            template = faiss.read_index(str(snapshot), faiss.IO_FLAG_MMAP)
            ivf = faiss.extract_index_ivf(template)
            lists: Any = faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)
            ivf.replace_invlists(lists, True)
            lists.this.disown()
        else:
            template = faiss.clone_index(main)
        template.reset()
    except RuntimeError:
        return None
    return template


# -- the in-memory index ---------------------------------------------------------------------------


class VectorIndex:
    """Every live vector, keyed by vector id: an optional approximate ``main`` plus an ``exact`` part.

    ``source`` returns the exact vectors of ids held by ``main`` (the engine reads them from the
    segment files); it serves ``reconstruct``, refine and the exact fallbacks. Without it, ``main``
    reconstructs (exact only for flat storage).
    """

    def __init__(
        self,
        dim: int,
        metric: str,
        spec: IndexSpec | None = None,
        *,
        source: VectorSource | None = None,
        search: Mapping[str, int] | None = None,
    ) -> None:
        self.dim = dim
        self.metric = check_metric(metric)
        self.spec = spec or IndexSpec()
        self.source = source
        self.defaults = {**{k: v for k, v in self.spec.options.items() if k in SEARCH_KEYS}, **(search or {})}
        self.index = faiss.IndexIDMap2(flat_index(dim, metric))  # the exact part
        self._labels: np.ndarray | None = None  # exact part: position -> vector id, cached
        self.main: faiss.Index | None = None
        self.factory: str | None = None  # FAISS factory string of ``main``
        self.trained_on: int | None = None  # vectors in the store when ``main`` was trained
        self.train_sample: int | None = None  # vectors it was trained on
        self.mutable = False  # main takes adds (not memory-mapped, not on a GPU)
        self.removable = False  # main removes ids (IVF); others exclude deleted ids at search
        self.mmapped = False
        self.on_gpu = False
        self.saved = 0  # main.ntotal when last written to or read from a snapshot
        self._ivf: Any = None  # the IndexIVF inside main (ids stored in its lists)
        self._inner: Any = None  # otherwise: the index inside main's IndexIDMap, searched directly
        self._wrapper: Any = None  # that IndexIDMap (its id_map gives positions -> vector ids)
        self._main_labels: np.ndarray | None = None
        self._hnsw = False
        self._quantizer_hnsw = False  # an IVF with an HNSW coarse quantizer
        self._hamming = False  # LSH: scores are Hamming distances, so results are always re-ranked
        self._main_ip = False  # main scores cosine as inner product (mapped vector files)
        self._params_ok = True
        self._gpu_res: Any = None
        self._cpu_main: Any = None
        self._gpu_nlist = 0  # lists of the IVF index on the GPU
        self._live = np.zeros(0, bool)  # by vector id: held and live
        self.changes = 0  # counts changes to the live set, so that callers can cache by it
        self._in_exact = np.zeros(0, bool)
        self._count = 0
        self._main_live = 0
        self._live_bits: dict[str, tuple[np.ndarray, Any]] = {}
        self._plans: dict[int, tuple[Any, Any, Any] | None] = {}  # by k; see _run_plan
        self._one_out: dict[int, tuple[np.ndarray, np.ndarray, Any, Any]] = {}  # by k; see _run_plan

    # -- bookkeeping ---------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    @property
    def dead(self) -> int:
        """Deleted vectors still inside ``main`` (excluded at search time until a rebuild)."""
        return 0 if self.main is None else int(self.main.ntotal) - self._main_live

    @property
    def in_main(self) -> int:
        """Live vectors held by ``main``."""
        return self._main_live

    def _grow(self, top: int) -> None:
        if top >= len(self._live):
            extra = max(top + 1, 2 * len(self._live), 1024) - len(self._live)
            self._live = np.concatenate([self._live, np.zeros(extra, bool)])
            self._in_exact = np.concatenate([self._in_exact, np.zeros(extra, bool)])

    @staticmethod
    def _lookup(ids: np.ndarray, table: np.ndarray) -> np.ndarray:
        inside = (ids >= 0) & (ids < len(table))
        out = np.zeros(ids.shape, bool)
        out[inside] = table[ids[inside]]
        return out

    def _changed(self) -> None:
        self.changes += 1
        self._labels = None
        self._main_labels = None
        self._plans.clear()  # before the selectors they may point at
        self._one_out.clear()
        self._live_bits.clear()

    def is_live(self, ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` are live vectors of this index."""
        return self._lookup(np.asarray(ids, dtype=np.int64), self._live)

    def ids(self) -> np.ndarray:
        """Vector ids of every live vector held, ascending."""
        return np.flatnonzero(self._live).astype(np.int64)

    def labels(self) -> np.ndarray:
        """Vector ids of the exact part in index order: position i holds vector id ``labels[i]``."""
        if self._labels is None:
            self._labels = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        return self._labels

    def _labels_main(self) -> np.ndarray:
        if self._main_labels is None:
            main: Any = faiss.downcast_index(self._wrapper)
            self._main_labels = faiss.vector_to_array(main.id_map).astype(np.int64)
        return self._main_labels

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add prepared vectors under new ids: to ``main`` when it takes adds, else the exact part."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        self._grow(int(ids.max()))
        if self.main is not None and self.mutable:
            self.main.add_with_ids(vectors, ids)
            self._main_live += len(ids)
        else:
            self.index.add_with_ids(vectors, ids)
            self._in_exact[ids] = True
        self._live[ids] = True
        self._count += len(ids)
        self._changed()

    def remove(self, ids: Sequence[int] | np.ndarray) -> None:
        """Remove ids (unknown ids are ignored); ``main`` excludes those it cannot remove."""
        arr = np.unique(np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64))
        arr = arr[self._lookup(arr, self._live)]
        if not len(arr):
            return
        ex = self._lookup(arr, self._in_exact)
        if ex.any():
            self.index.remove_ids(arr[ex])
            self._in_exact[arr[ex]] = False
        in_main = arr[~ex]
        if len(in_main):
            self._main_live -= len(in_main)
            if self.removable and self.main is not None:
                self.main.remove_ids(faiss.IDSelectorBatch(in_main))
        self._live[arr] = False
        self._count -= len(arr)
        self._changed()

    def attach(
        self,
        main: faiss.Index,
        live_ids: np.ndarray,
        *,
        factory: str,
        trained_on: int | None,
        train_sample: int | None = None,
        mmapped: bool = False,
    ) -> None:
        """Serve ``main``, which holds ``live_ids`` (and perhaps deleted ids, excluded from now on)."""
        live_ids = np.asarray(live_ids, dtype=np.int64)
        self.main, self.factory = main, factory
        self.trained_on, self.train_sample = trained_on, train_sample
        self.mmapped = mmapped
        self.mutable = not mmapped
        self._main_ip = self.metric == "cosine" and main.metric_type == faiss.METRIC_INNER_PRODUCT
        wrapped = isinstance(faiss.downcast_index(main), (faiss.IndexIDMap, faiss.IndexIDMap2))
        any_ivf = faiss.try_extract_index_ivf(main)
        self._ivf = None if wrapped else any_ivf  # ids live in the IVF lists: search it directly
        outer: Any = faiss.downcast_index(main)
        self._inner = faiss.downcast_index(outer.index) if wrapped else None
        self._wrapper = main
        self.removable = self.mutable and self._ivf is not None
        hnsw = find_hnsw(main)
        self._hnsw = self._ivf is None and hnsw is not None
        self._quantizer_hnsw = any_ivf is not None and find_hnsw(any_ivf.quantizer) is not None
        self._hamming = find_inner(main, faiss.IndexLSH) is not None
        pq: Any = faiss.downcast_index(any_ivf) if any_ivf is not None else None
        if isinstance(pq, _faiss.IndexIVFPQ) and pq.precomputed_table.size() * 4 > pq.ntotal * pq.code_size:
            # IVF-PQ's per-list distance tables (nlist x m x 256 floats: 188 MiB at 4,000 lists
            # and m=48) would outweigh the codes themselves; computing them per query is cheap.
            pq.use_precomputed_table = -1
            pq.precomputed_table.resize(0)
        # Defaults inside the index too, for wrappers (factory strings) that ignore search params.
        if any_ivf is not None:
            nlist = int(any_ivf.nlist)
            any_ivf.nprobe = min(nlist, self.defaults.get("nprobe") or auto_nprobe(nlist))
        if hnsw is not None:
            hnsw.hnsw.efSearch = self.defaults.get("efSearch") or DEFAULT_EF_SEARCH
        if len(live_ids):
            self._grow(int(live_ids.max()))
        self._live[live_ids] = True
        self._count += len(live_ids)
        self._main_live = len(live_ids)
        self._changed()
        if self.removable and main.ntotal > self._main_live:
            keep, sel = self._live_selector(ivf=True)
            main.remove_ids(faiss.IDSelectorNot(sel))
            del keep
        self.saved = int(main.ntotal)

    def move_to_gpu(self) -> str | None:
        """Move ``main`` to the first GPU; returns why it stays on the CPU instead (never raises)."""
        ok, why = gpu_status()
        if not ok:
            return why
        if self.main is None:
            return "the store serves exact search on the CPU until its index is trained"
        if self._ivf is None:
            return f"FAISS has no GPU version of {self.factory}; it stays on the CPU"
        try:  # pragma: no cover - needs a GPU
            res = _faiss.StandardGpuResources()
            gpu = _faiss.index_cpu_to_gpu(res, 0, self.main)
            gpu.nprobe = min(self.params()["nprobe"], GPU_MAX_K)
        except (RuntimeError, AttributeError) as e:  # pragma: no cover - needs a GPU
            return f"FAISS cannot move {self.factory} to the GPU: {faiss_reason(e)}"
        # On the GPU: read-only like a mapped index (adds go to the exact part, deletes are
        # excluded); GPU indexes take nprobe per query but no ID selectors, so deleted and
        # filtered-out ids are dropped after the search instead.
        self._gpu_res, self._cpu_main = res, self.main  # pragma: no cover - needs a GPU
        self._gpu_nlist = int(self._ivf.nlist)  # pragma: no cover
        self.main, self._ivf, self.on_gpu = gpu, None, True  # pragma: no cover
        self.mutable = self.removable = False  # pragma: no cover
        self._changed()  # pragma: no cover
        return None  # pragma: no cover

    def cpu_main(self) -> faiss.Index | None:
        """``main`` as a CPU index (a copy when it lives on a GPU), for saving."""
        return self._cpu_main if self.on_gpu else self.main

    # -- vectors -------------------------------------------------------------------------

    def reconstruct(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The exact stored (prepared) vectors of live ``ids``, in order."""
        arr = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        out = np.empty((len(arr), self.dim), np.float32)
        if not len(arr):
            return out
        ex = self._lookup(arr, self._in_exact)
        if ex.any():
            out[ex] = self.index.reconstruct_batch(arr[ex])
        if not ex.all():
            rest = arr[~ex]
            if self.source is not None:
                out[~ex] = self.source(rest)
            elif self.main is not None:
                out[~ex] = self.main.reconstruct_batch(rest)
            else:
                msg = f"Vectors {rest[:5].tolist()} are not in the index."
                raise InvalidArgument(msg)
        return out

    # -- searching -----------------------------------------------------------------------

    def params(self, params: Mapping[str, int] | None = None) -> dict[str, int]:
        """Effective search knobs: per query over per store (``defaults``) over automatic ones."""
        p = {**self.defaults, **check_search_params(params)} if params else dict(self.defaults)
        nlist = int(self._ivf.nlist) if self._ivf is not None else self._gpu_nlist
        if nlist:
            p["nprobe"] = min(nlist, p.get("nprobe") or auto_nprobe(nlist))
            if self.on_gpu:
                p["nprobe"] = min(p["nprobe"], GPU_MAX_K)
        p.setdefault("efSearch", DEFAULT_EF_SEARCH)
        p.setdefault("refine", self.spec.default_refine())
        p.setdefault("exact_max", DEFAULT_EXACT_MAX)
        return p

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        params: Mapping[str, int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row; ``allowed`` restricts the search to those ids first.

        L2 scores are Euclidean distances; missing results have id -1. With ``allowed``, k results
        come back whenever k allowed vectors exist: a small allowed set is searched exactly, and an
        approximate search that comes back short is redone exhaustively, then exactly.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        with few_threads(len(queries)):
            return self._search(queries, k, allowed, params)

    def _search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None, params: Mapping[str, int] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if allowed is None and not params:
            planned = self._search_planned(queries, k)
            if planned is not None:
                return planned
        p = self.params(params)
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=np.int64)
        k = min(k, self._count if allowed is None else min(len(allowed), self._count))
        if k <= 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        if self.main is None or self._main_live == 0:
            return self._search_exact(queries, k, allowed)
        if allowed is not None and len(allowed) <= p["exact_max"]:
            return self._brute(queries, k, allowed)
        refine = p["refine"] or (1 if self._hamming else 0)
        kk = k * max(refine, 1)
        if self.on_gpu and kk > GPU_MAX_K:  # pragma: no cover - more than a GPU index returns
            return self._brute(queries, k, allowed if allowed is not None else self.ids())
        scores, ids = self._finish(queries, *self._candidates(queries, kk, allowed, p, False), k, refine)
        if (ids >= 0).all():
            return scores, ids
        short = np.flatnonzero((ids >= 0).sum(axis=1) < k)
        if len(short):
            q = queries[short]
            s2, i2 = self._finish(q, *self._candidates(q, kk, allowed, p, True), k, refine)
            still = np.flatnonzero((i2 >= 0).sum(axis=1) < k)
            if len(still):
                pool = allowed if allowed is not None else self.ids()
                s2[still], i2[still] = self._brute(q[still], k, pool)
            scores[short], ids[short] = s2, i2
        return scores, ids

    def search_one(self, query: np.ndarray, k: int) -> tuple[list[int], list[float]] | None:
        """One prepared query's top-k (vector ids, scores) by the planned search, or None.

        None where no plan applies; ``search`` then answers. After FAISS, plain Python on the k
        results: between searches of a large index each numpy call costs ~10 us of cold caches
        (measured at 1M vectors), more than the work it does. Scores are computed in double
        precision here (``search`` rounds them to float32).
        """
        with few_threads(1):
            run = self._run_plan(query, k, reuse=True)
        if run is None:
            return None
        dist, found, labels = run
        ids = found.tolist()[0]
        if ids[-1] < 0:  # short (deleted ids excluded): search() completes it
            return None
        if labels is not None:
            ids = [labels[i] for i in ids]
        return ids, self._score_list(dist.tolist()[0])

    def _score_list(self, dist: list[float]) -> list[float]:
        """``_scores`` for one row of Python floats."""
        if self.metric == "cosine" and not self._main_ip:
            return [1.0 - 0.5 * d for d in dist]
        if self.metric == "l2":
            return [math.sqrt(d) if d > 0 else 0.0 for d in dist]
        return dist

    def _plan_for(self, k: int) -> tuple[Any, Any, Any] | None:
        if k not in self._plans:
            if len(self._plans) >= 64:
                self._plans.clear()
                self._one_out.clear()
            self._plans[k] = self._plan(k)
        return self._plans[k]

    def _run_plan(
        self, queries: np.ndarray, k: int, *, reuse: bool
    ) -> tuple[np.ndarray, np.ndarray, Any] | None:
        """FAISS's answer by the plan for k: (distances, positions or ids, labels or None), or None.

        Default knobs, no filter, no refine, every vector in ``main``: FAISS's arguments are made
        once per k and kept until the index changes, and FAISS's own ``search_c`` is called
        without its Python wrapper (``queries``: C-contiguous float32 rows). With ``reuse`` (one
        query) FAISS writes into buffers kept per k: the caller copies them out before the next
        call (the engine's lock keeps calls apart). ``labels`` (positions to vector ids) is a
        memoryview, indexed without numpy.
        """
        plan = self._plan_for(k)
        if plan is None:
            return None
        target, labels, sp = plan
        n = len(queries)
        if reuse and n == 1:
            if k not in self._one_out:
                bufs = np.empty((1, k), np.float32), np.empty((1, k), np.int64)
                self._one_out[k] = (*bufs, faiss.swig_ptr(bufs[0]), faiss.swig_ptr(bufs[1]))
            dist, found, dist_ptr, found_ptr = self._one_out[k]
        else:
            dist, found = np.empty((n, k), np.float32), np.empty((n, k), np.int64)
            dist_ptr, found_ptr = faiss.swig_ptr(dist), faiss.swig_ptr(found)
        try:
            target.search_c(n, faiss.swig_ptr(queries), k, dist_ptr, found_ptr, sp)
        except RuntimeError:  # an index that takes no search parameters: the general path copes
            self._plans[k] = None
            return None
        return dist, found, labels

    def _search_planned(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The common search in few steps (``_run_plan``), or None where it does not apply."""
        run = self._run_plan(queries, k, reuse=False)
        if run is None:
            return None
        dist, found, labels = run
        if found[:, -1].min() < 0:  # short (deleted ids excluded): search() completes it
            return None
        return self._scores(dist), (found if labels is None else np.asarray(labels)[found])

    def _plan(self, k: int) -> tuple[Any, Any, Any] | None:
        p = self.params()
        if (
            self.main is None
            or not self._params_ok
            or self._hamming
            or p["refine"]
            or self.index.ntotal
            or not 0 < k <= self._main_live
            or (self.on_gpu and (self.dead or k > GPU_MAX_K))  # see _search_main and search
        ):
            return None
        sel = self._live_selector(ivf=self._inner is None)[1] if self.dead else None
        target, labels = self._main_target()
        return target, None if labels is None else labels.data, self._main_params(p, sel, False, k)

    def _main_target(self) -> tuple[Any, np.ndarray | None]:
        """The index FAISS searches, and the table from its positions to vector ids (or None).

        That is ``main`` itself when it stores vector ids (IVF), else the index inside its IndexIDMap.
        """
        if self._inner is None:
            return self.main, None
        return self._inner, self._labels_main()

    def _scores(self, dist: np.ndarray) -> np.ndarray:
        """Scores of the metric from FAISS's distances.

        ``main`` searches cosine as L2, except a flat store's mapped vector files (inner product).
        """
        if self.metric == "l2":
            return np.sqrt(np.maximum(dist, 0)).astype(np.float32, copy=False)
        if self.metric == "cosine" and not self._main_ip:
            scores = dist * np.float32(-0.5)  # L2 on unit vectors: |a - b|^2 = 2 - 2 cos
            scores += np.float32(1.0)
            return scores.astype(np.float32, copy=False)
        return dist.astype(np.float32, copy=False)

    def _higher_better(self) -> bool:
        return self.metric != "l2"

    def _mask_selector(self, mask: np.ndarray) -> tuple[np.ndarray, Any]:
        """(bitmap to keep alive, selector) admitting the True positions of ``mask``."""
        bits = np.packbits(mask, bitorder="little")
        return bits, faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))  # n counts bytes

    def _allowed_mask(self, allowed: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        """``allowed`` as a boolean mask by vector id, or (given labels) by position."""
        top = int(allowed.max()) + 1 if len(allowed) else 0
        mask = np.zeros(max(top, 1), bool)
        mask[allowed] = True
        return mask if labels is None else self._lookup(labels, mask)

    def _live_selector(self, *, ivf: bool) -> tuple[np.ndarray, Any]:
        key = "ivf" if ivf else "inner"
        if key not in self._live_bits:
            mask = self._live if ivf else self._lookup(self._labels_main(), self._live)
            self._live_bits[key] = self._mask_selector(mask)
        return self._live_bits[key]

    def _search_exact(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact search of the exact part."""
        # Search the inner flat index by position and translate positions with numpy: IndexIDMap's
        # own translation loop runs under OpenMP, and on a busy machine a single query paid ~10 ms
        # of thread start-up for ~0.3 ms of work (measured, 2 cores).
        labels = self.labels()
        keep, params = None, None
        if allowed is not None:
            keep, sel = self._mask_selector(self._allowed_mask(allowed, labels))
            params = faiss.SearchParameters(sel=sel)  # type: ignore[call-arg]
        scores, found = self.index.index.search(queries, k, params=params)
        del keep
        ids = np.where(found >= 0, labels[np.maximum(found, 0)], -1)
        if self.metric == "l2":
            scores = np.sqrt(np.maximum(scores, 0))
        return scores, ids

    def _brute(self, queries: np.ndarray, k: int, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over the vectors of ``pool`` (read with ``reconstruct``)."""
        vectors = self.reconstruct(pool)
        metric = faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        dist, pos = faiss.knn(queries, vectors, min(k, len(pool)), metric=metric)
        ids = np.where(pos >= 0, pool[np.maximum(pos, 0)], -1)
        scores = np.sqrt(np.maximum(dist, 0)) if self.metric == "l2" else dist
        return _pad(scores.astype(np.float32), ids, k, self._higher_better())

    def _main_params(self, p: Mapping[str, int], sel: Any, exhaustive: bool, k: int) -> Any:
        if self.on_gpu:  # pragma: no cover - needs a GPU
            nprobe = min(self._gpu_nlist, GPU_MAX_K) if exhaustive else p["nprobe"]
            return _faiss.SearchParametersIVF(nprobe=nprobe)  # GPU indexes take no selector
        if self._ivf is not None:
            nprobe = int(self._ivf.nlist) if exhaustive else p["nprobe"]
            sp = _faiss.SearchParametersIVF(nprobe=nprobe)
            if self._quantizer_hnsw:
                sp.quantizer_params = _faiss.SearchParametersHNSW(efSearch=max(p["efSearch"], nprobe))
        elif self._hnsw:
            ef = max(p["efSearch"], k)
            sp = _faiss.SearchParametersHNSW(efSearch=max(8 * ef, 512) if exhaustive else ef)
        elif sel is None:
            return None
        else:
            sp = _faiss.SearchParameters()
        if sel is not None:
            sp.sel = sel
        return sp

    def _search_main(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None, p: Mapping[str, int], exhaustive: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        main = self.main
        assert main is not None
        target, labels = self._main_target()
        keep, sel = None, None
        if allowed is not None:
            keep, sel = self._mask_selector(self._allowed_mask(allowed, labels))
        elif self.dead:
            keep, sel = self._live_selector(ivf=self._inner is None)
        dist = found = None
        # Whether FAISS applies the selector itself; otherwise fetch more and filter after.
        filtered = sel is None or not self.on_gpu
        fetch = min(k, int(main.ntotal)) if filtered else self._overfetch(k, allowed)
        if self._params_ok:
            params = self._main_params(p, sel, exhaustive, fetch)
            try:
                dist, found = target.search(queries, fetch, params=params)
            except RuntimeError:
                if params is None:
                    raise
                self._params_ok = False  # e.g. LSH: no selectors; filter after the search instead
        if found is None:
            filtered = sel is None
            fetch = min(k, int(main.ntotal)) if filtered else self._overfetch(k, allowed)
            dist, found = target.search(queries, fetch)
        del keep
        assert dist is not None
        if labels is None:
            ids = found
        elif found[:, -1].min() >= 0:  # every row complete (FAISS pads the ends with -1)
            ids = labels[found]
        else:
            ids = np.where(found >= 0, labels[np.maximum(found, 0)], -1)
        if sel is not None and not filtered:
            ok = self._lookup(ids, self._live)
            if allowed is not None:
                ok &= self._lookup(ids, self._allowed_mask(allowed, None))
            ids = np.where(ok, ids, -1)
        return self._scores(dist), ids

    def _overfetch(self, k: int, allowed: np.ndarray | None) -> int:
        """Results to fetch so that k survive filtering after the search.

        On the CPU, enough that k always survive. A GPU index returns at most 2,048, so it gets
        twice the expected need instead (with 1 % deleted at 1M, 20 rather than 2,048 for k=10:
        0.2 ms a query rather than 0.9 ms on an H200); rows left short are searched again
        exhaustively, then exactly (``search``).
        """
        eligible = self._main_live if allowed is None else min(len(allowed), self._main_live)
        main = self.main
        assert main is not None
        ntotal = int(main.ntotal)
        if self.on_gpu:  # pragma: no cover - needs a GPU
            return min(ntotal, GPU_MAX_K, 2 * k * math.ceil(ntotal / max(eligible, 1)))
        return min(ntotal, k * math.ceil(self._main_live / max(eligible, 1)) + self.dead)

    def _candidates(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None, p: Mapping[str, int], exhaustive: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k candidates of ``main`` and the exact part, merged by score."""
        scores, ids = self._search_main(queries, k, allowed, p, exhaustive)
        if self.index.ntotal:
            s2, i2 = self._search_exact(queries, min(k, int(self.index.ntotal)), allowed)
            scores, ids = np.hstack([scores, s2]), np.hstack([ids, i2])
        elif (ids >= 0).all():
            return scores, ids  # one sorted, complete list
        return _top(scores, ids, k, self._higher_better())

    def _finish(
        self, queries: np.ndarray, scores: np.ndarray, ids: np.ndarray, k: int, refine: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of the candidates; with ``refine``, re-ranked by exact scores first."""
        if not refine:
            return _pad(scores, ids, k, self._higher_better())
        uniq = np.unique(ids[ids >= 0])
        vectors = self.reconstruct(uniq)
        exact = np.full(ids.shape, np.nan, np.float32)
        for row in range(len(ids)):
            valid = ids[row] >= 0
            vecs = vectors[np.searchsorted(uniq, ids[row][valid])]
            if self.metric == "l2":
                exact[row, valid] = np.linalg.norm(vecs - queries[row], axis=1)
            else:
                exact[row, valid] = vecs @ queries[row]
        return _top(exact, ids, k, self._higher_better())


def _pad(scores: np.ndarray, ids: np.ndarray, k: int, higher_better: bool) -> tuple[np.ndarray, np.ndarray]:
    """Exactly k columns: cut, or pad with id -1."""
    if ids.shape[1] >= k:
        return np.ascontiguousarray(scores[:, :k]), np.ascontiguousarray(ids[:, :k])
    extra = k - ids.shape[1]
    fill = -np.inf if higher_better else np.inf
    return (
        np.hstack([scores, np.full((len(ids), extra), fill, np.float32)]),
        np.hstack([ids, np.full((len(ids), extra), -1, np.int64)]),
    )


def _top(scores: np.ndarray, ids: np.ndarray, k: int, higher_better: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k best valid (id >= 0) entries, best first; ties keep their order."""
    key = np.where(ids >= 0, -scores if higher_better else scores, np.inf)
    key = np.where(np.isnan(key), np.inf, key)
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    top_ids = np.take_along_axis(ids, order, axis=1)
    top_scores = np.take_along_axis(scores, order, axis=1).astype(np.float32)
    top_ids = np.where(np.isinf(np.take_along_axis(key, order, axis=1)), -1, top_ids)
    return _pad(top_scores, top_ids, k, higher_better)
