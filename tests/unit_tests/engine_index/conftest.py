"""Helpers for the index-choice tests: clustered vectors, exact answers, store factories.

Each index type is tested on a few hundred 16-dimensional vectors with its knobs opened wide
(``EXACTISH``), so its answers must equal brute force over the live vectors: the tests check
bookkeeping (snapshots, deltas, deletes, filters), not FAISS's approximation quality.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langchain_memvid.engine import Engine, Record
from langchain_memvid.engine.search.faiss_helpers import gpu_status

DIM = 16
N = 400
HAS_GPU, GPU_REASON = gpu_status()
NEEDS_GPU = [
    pytest.mark.gpu,
    pytest.mark.skipif(not HAS_GPU, reason=f"needs a GPU and faiss with GPU support: {GPU_REASON}"),
]

# index -> (index_options, search_params that make the search exhaustive on N vectors)
KINDS: dict[str, tuple[dict[str, Any], dict[str, int]]] = {
    "flat": ({}, {}),
    "ivf": ({"nlist": 8, "min_vectors": 200}, {"nprobe": 8}),
    "ivfpq": ({"nlist": 4, "m": 4, "nbits": 4, "min_vectors": 200}, {"nprobe": 4, "refine": 200}),
    "hnsw": ({"M": 8, "min_vectors": 200}, {"efSearch": 512}),
    "lsh": ({"nbits": 32, "min_vectors": 200}, {"refine": 200}),
    "IVF4,SQ8": ({"min_vectors": 200}, {"nprobe": 4, "refine": 200}),
    "IVF4,PQ4x8": ({"min_vectors": 200}, {"nprobe": 4, "refine": 200}),  # 8-bit PQ: the GPU's only kind
}


def metric_of(kind: str) -> str:
    return "l2" if kind == "lsh" else "cosine"


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """``n`` vectors around 8 centres, the way embeddings cluster by topic."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, DIM)) * 3
    return (centres[rng.integers(0, 8, n)] + rng.standard_normal((n, DIM))).astype(np.float32)


def records(start: int, stop: int) -> list[Record]:
    return [Record(f"r{i}", f"text {i}", {"group": i % 4, "n": i}) for i in range(start, stop)]


def exact_top(vectors: dict[str, np.ndarray], query: np.ndarray, k: int, metric: str) -> list[str]:
    """Brute-force answer over ``{id: vector}``."""
    ids = list(vectors)
    mat = np.stack([vectors[i] for i in ids]).astype(np.float64)
    q = np.asarray(query, np.float64)
    if metric == "cosine":
        scores = -(mat / np.linalg.norm(mat, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    else:
        scores = np.linalg.norm(mat - q, axis=1)
    return [ids[i] for i in np.argsort(scores, kind="stable")[:k]]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def open_engine(store_path: Path) -> Iterator[Callable[..., Engine]]:
    """``open_engine(**kwargs)``: an Engine on ``store_path``, closed at teardown."""
    opened: list[Engine] = []

    def factory(**kwargs: Any) -> Engine:
        if not (store_path / "catalog.sqlite").exists():
            # Index types are checked against numpy over the vectors given: exact vectors
            # (float32) keep that comparison exact; engine/test_vector_encodings.py tests the rest.
            kwargs.setdefault("vector_encoding", "float32")
        engine = Engine(store_path, **kwargs)
        opened.append(engine)
        return engine

    yield factory
    for engine in opened:
        with contextlib.suppress(Exception):  # closing twice is fine here
            engine.close()
