"""Preparing vectors and queries for a metric (checks, normalisation), and the flat index scoring each metric.

Metrics: ``cosine`` (vectors normalised, inner product; score = cosine similarity, higher is
closer), ``ip`` (raw inner product, higher is closer) and ``l2`` (score = Euclidean distance,
lower is closer).
"""

from __future__ import annotations

import math
from typing import Any

import faiss
import numpy as np

from langchain_memvid.engine.errors import InvalidArgument, InvalidVector

METRICS = ("cosine", "ip", "l2")
_faiss: Any = faiss  # the parts of FAISS its type stubs lack


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
        arr = np.array(vectors, dtype=np.float32, ndmin=2, order="C")
    except (TypeError, ValueError) as e:
        msg = f"Each {what} must be a sequence of {dim} numbers: {e}"
        raise InvalidVector(msg) from e
    if arr.ndim != 2 or arr.shape[1] != dim:
        got = arr.shape[-1] if arr.ndim == 2 else arr.shape
        msg = f"The store holds {dim}-dimensional vectors; got a {what} of dimension {got}. Use the embedding model the store was built with."
        raise InvalidVector(msg)
    if len(arr) == 1:  # a query, in short: FAISS's C helpers, as each numpy call costs ~10 us here
        row = faiss.swig_ptr(arr)
        if 1e-30 < _faiss.fvec_norm_L2sqr(row, dim) < 1e30:  # finite, of ordinary size
            if metric == "cosine":
                _faiss.fvec_renorm_L2(dim, 1, row)
            return arr
    # One pass for both checks: summed in float64 (which float32 squares cannot overflow), a row's
    # sum of squares is finite exactly when all its values are.
    squares = np.add.reduce(np.square(arr, dtype=np.float64), axis=1)
    if len(squares) == 1 and 0.0 < (one := float(squares[0])) < math.inf:
        if metric == "cosine":
            arr /= np.float64(math.sqrt(one))  # float64: a norm beyond float32 must not overflow
        return arr
    if not np.isfinite(squares).all():
        msg = f"{what.capitalize()} {int(np.argmax(~np.isfinite(squares)))} holds NaN or infinity."
        raise InvalidVector(msg)
    if metric == "cosine":
        if not squares.all():
            msg = f"{what.capitalize()} {int(np.argmax(squares == 0))} is all zeros; cosine similarity is undefined for it."
            raise InvalidVector(msg)
        arr /= np.sqrt(squares)[:, None]
    return arr


_F32 = np.dtype(np.float32)
UNIT_TOLERANCE = 1e-6  # |q|^2 within this of 1: normalising again would change only rounding


def prepare_query(query: object, dim: int, metric: str) -> np.ndarray:
    """``prepare_vectors`` for one query, without a copy where the query needs no change.

    A float32 vector that is already ready (finite; of unit length under cosine, as sentence
    embeddings usually are) comes back as a (1, dim) view of itself: read-only use only.

    Raises:
        InvalidVector: as ``prepare_vectors``.
    """
    if type(query) is np.ndarray and query.dtype is _F32 and query.shape == (dim,) and query.strides == (4,):
        one = _faiss.fvec_norm_L2sqr(faiss.swig_ptr(query), dim)
        if (abs(one - 1.0) <= UNIT_TOLERANCE) if metric == "cosine" else (1e-30 < one < 1e30):
            return query.reshape(1, dim)
    return prepare_vectors(query, dim, metric, what="query vector")


def flat_index(dim: int, metric: str) -> faiss.Index:
    """The exact FAISS index that scores ``metric``: L2 for ``l2``, inner product otherwise."""
    return faiss.IndexFlatL2(dim) if metric == "l2" else faiss.IndexFlatIP(dim)


def vector_size(vector: Any) -> int:
    """The dimension of a store's first vector.

    >>> vector_size([0.5, 1.0, 2.0])
    3
    """
    try:
        return int(np.asarray(vector, dtype=np.float32).size)
    except (TypeError, ValueError) as e:
        msg = f"Each vector must be a sequence of numbers: {e}"
        raise InvalidVector(msg) from e
