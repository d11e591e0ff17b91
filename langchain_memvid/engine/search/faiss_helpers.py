"""FAISS helpers: the index inside FAISS's wrappers, giving an index ids, GPU support, FAISS's error text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faiss

FEW_QUERIES = 8  # below this many queries at once, FAISS runs on one thread (``few_threads``)


def faiss_reason(e: BaseException) -> str:
    """The useful part of a FAISS exception's text (without the C++ function and file)."""
    text = " ".join(str(e).split())
    text = re.sub(r"^Error in .*? at \S+:\d+: ", "", text)
    return text.removeprefix("Error: ")[:300] or type(e).__name__


@contextmanager
def few_threads(n_queries: int) -> Iterator[None]:
    """Run FAISS on this thread alone while it answers a few queries.

    For one query OpenMP's thread start-up and barriers cost more than the work, and far more
    on a busy machine (measured, 2 cores busy: 100,000 int8 vectors searched in 1.3 ms on one
    thread, 143 ms on two). OpenMP's thread count is per calling thread, so nothing else in the
    process is affected; batches keep every thread.
    """
    if n_queries >= FEW_QUERIES:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def find_inner(index: faiss.Index, cls: type) -> Any:
    """The first index of type ``cls`` inside ``index`` (through id maps, transforms, refine), or None."""
    for _ in range(8):
        index = faiss.downcast_index(index)
        if isinstance(index, cls):
            return index
        inner = getattr(index, "index", None) or getattr(index, "base_index", None)
        if inner is None:
            return None
        index = inner
    return None


def find_hnsw(index: faiss.Index) -> Any:
    """The IndexHNSW inside ``index``, or None."""
    return find_inner(index, faiss.IndexHNSW)


def with_ids(index: faiss.Index) -> faiss.Index:
    """``index`` when it stores caller ids itself (IVF, id maps), else an empty IndexIDMap over it."""
    inner = faiss.downcast_index(index)
    while isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    if isinstance(inner, (faiss.IndexIVF, faiss.IndexIDMap, faiss.IndexIDMap2)):
        return index
    return faiss.IndexIDMap(index)


def gpu_status() -> tuple[bool, str]:
    """(usable, why): whether this FAISS build has GPU support and sees a GPU."""
    if not hasattr(faiss, "StandardGpuResources") or not hasattr(faiss, "index_cpu_to_gpu"):
        return False, "this FAISS build has no GPU support (faiss-cpu); install a faiss GPU build"
    try:
        count = int(faiss.get_num_gpus())
    except RuntimeError as e:  # pragma: no cover - driver trouble
        return False, f"FAISS cannot query GPUs: {faiss_reason(e)}"
    return count > 0, (f"{count} GPU(s) visible" if count else "FAISS has GPU support but sees no GPU")
