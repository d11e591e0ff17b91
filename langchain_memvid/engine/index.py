"""Vectors: per-segment FAISS files on disk, one searchable FAISS index in memory.

Each segment writes its vectors as a FAISS ``IndexIDMap2`` over a flat index with FAISS's own
writer (no pickle). On open, the live vectors of all segments are added to one in-memory index;
deletes remove ids from it and upserts add the new vector. Ids are the catalog's ``vector_id``.

Metrics: ``cosine`` (vectors normalised, inner product; score = cosine similarity, higher is
closer), ``ip`` (raw inner product, higher is closer) and ``l2`` (score = Euclidean distance,
lower is closer).
"""

from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np

from .errors import CorruptData, InvalidArgument, InvalidVector

METRICS = ("cosine", "ip", "l2")


def check_metric(metric: str) -> str:
    """Validate a metric name.

    Raises:
        InvalidArgument: not one of METRICS.
    """
    if metric not in METRICS:
        msg = f"Unknown metric {metric!r}; choose one of {list(METRICS)}."
        raise InvalidArgument(msg)
    return metric


def prepare_vectors(vectors: object, dim: int, metric: str, *, what: str = "vector") -> np.ndarray:
    """Turn input into a C-contiguous float32 matrix, checked and (for cosine) normalised.

    Raises:
        InvalidVector: wrong shape or dimension, NaN/inf, or a zero vector under cosine.
    """
    try:
        arr = np.array(vectors, dtype=np.float32, ndmin=2)
    except (TypeError, ValueError) as e:
        msg = f"Each {what} must be a sequence of {dim} numbers: {e}"
        raise InvalidVector(msg) from e
    if arr.ndim != 2 or arr.shape[1] != dim:
        got = arr.shape[-1] if arr.ndim == 2 else arr.shape
        msg = f"The store holds {dim}-dimensional vectors; got a {what} of dimension {got}. Use the embedding model the store was built with."
        raise InvalidVector(msg)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        msg = f"{what.capitalize()} {int(np.argmax(bad))} holds NaN or infinity."
        raise InvalidVector(msg)
    if metric == "cosine":
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        if (norms == 0).any():
            msg = f"{what.capitalize()} {int(np.argmax(norms[:, 0] == 0))} is all zeros; cosine similarity is undefined for it."
            raise InvalidVector(msg)
        arr = arr / norms
    return np.ascontiguousarray(arr, dtype=np.float32)


def _flat(dim: int, metric: str) -> faiss.Index:
    return faiss.IndexFlatL2(dim) if metric == "l2" else faiss.IndexFlatIP(dim)


def serialize_vectors(ids: np.ndarray, vectors: np.ndarray, metric: str) -> bytes:
    """A segment's vector file: FAISS's own serialisation of an IndexIDMap2 over a flat index."""
    index = faiss.IndexIDMap2(_flat(vectors.shape[1], metric))
    if len(ids):
        index.add_with_ids(vectors, ids.astype(np.int64))
    return faiss.serialize_index(index).tobytes()


def deserialize_vectors(data: bytes, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) from a segment's vector file.

    Raises:
        CorruptData: not a FAISS IndexIDMap2 of the store's dimension.
    """
    try:
        # deserialize_index returns the concrete type; keep this reference alive while in use,
        # because a downcast copy does not own the C++ object.
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as e:
        msg = f"Not a readable FAISS vector file: {str(e).splitlines()[0] if str(e) else e}"
        raise CorruptData(msg) from e
    if not isinstance(index, faiss.IndexIDMap2) or index.d != dim:
        msg = f"Vector file holds a {type(index).__name__} of dimension {index.d}, expected IndexIDMap2 of {dim}."
        raise CorruptData(msg)
    n = index.ntotal
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    vectors = index.index.reconstruct_n(0, n) if n else np.zeros((0, dim), np.float32)
    return ids, np.ascontiguousarray(vectors, dtype=np.float32)


class VectorIndex:
    """The in-memory FAISS index over every live vector, keyed by vector id."""

    def __init__(self, dim: int, metric: str) -> None:
        self.dim = dim
        self.metric = check_metric(metric)
        self.index = faiss.IndexIDMap2(_flat(dim, metric))
        self._labels: np.ndarray | None = None  # position -> vector id, cached between writes

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add prepared vectors under their ids."""
        if len(ids):
            self.index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
            self._labels = None

    def remove(self, ids: Sequence[int]) -> None:
        """Remove ids; unknown ids are ignored."""
        if len(ids):
            self.index.remove_ids(np.asarray(list(ids), dtype=np.int64))  # type: ignore[arg-type]
            self._labels = None

    def labels(self) -> np.ndarray:
        """Vector ids in index order (position i holds vector id labels()[i])."""
        if self._labels is None:
            self._labels = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        return self._labels

    def reconstruct(self, ids: Sequence[int]) -> np.ndarray:
        """The stored (prepared) vectors of ``ids``."""
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        return np.vstack([self.index.reconstruct(int(i)) for i in ids]).astype(np.float32)

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row; ``allowed`` restricts the search to those ids first.

        L2 scores are Euclidean distances (FAISS returns squares); missing results have id -1.
        """
        # Search the inner index by position and translate positions to ids with numpy:
        # IndexIDMap's own translation loop runs under OpenMP and, on a busy machine, a single
        # query paid ~10 ms of thread start-up for ~0.3 ms of work (measured, 2 cores).
        labels = self.labels()
        params = None
        if allowed is not None:
            positions = np.flatnonzero(np.isin(labels, np.asarray(allowed, dtype=np.int64)))
            selector = faiss.IDSelectorBatch(positions.astype(np.int64))
            params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        k = min(k, len(self)) if allowed is None else min(k, len(allowed), len(self))
        if k <= 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        scores, found = self.index.index.search(queries, k, params=params)
        ids = np.where(found >= 0, labels[np.maximum(found, 0)], -1)
        if self.metric == "l2":
            scores = np.sqrt(np.maximum(scores, 0))
        return scores, ids
