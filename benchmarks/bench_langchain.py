"""The LangChain face beside LangChain's FAISS store, on the same vectors (one run).

    python benchmarks/bench_langchain.py            # 100,000 documents
    python benchmarks/bench_langchain.py --n 20000  # quicker

Both stores use a flat (exact) FAISS index over the same 384-dimensional vectors. Documents are
~500-character synthetic texts drawn from the vocabulary of CPython's ``pydoc_data/topics.py``.
Measured: ``similarity_search_by_vector(k=4)`` p50 (ours reads the 4 texts back from video; FAISS
keeps them in RAM), the cost of reading texts back per result, ``similarity_search`` with the real
packaged all-MiniLM-L6-v2 model embedding the query, and the resident memory of a process that
opens each store and searches it. Writes ``benchmarks/results/langchain.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pydoc_data.topics
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

RESULTS = Path(__file__).parent / "results"
DIM = 384


class LookupEmbeddings(Embeddings):
    """Returns precomputed vectors for known texts (so both stores index identical vectors)."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.table[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.table[text]


def make_corpus(n: int) -> tuple[list[str], np.ndarray]:
    vocab = sorted(set(" ".join(pydoc_data.topics.topics.values()).split()))
    rng = random.Random(0)
    texts = [f"{i} " + " ".join(rng.choices(vocab, k=rng.randint(60, 90))) for i in range(n)]
    vectors = np.random.default_rng(0).normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return texts, vectors


def p50s_interleaved(fns: dict[str, Any], queries: list[Any]) -> dict[str, float]:
    """p50 ms of each function, the functions taking turns query by query.

    Figures compared with each other (ours against FAISS, a search with and without reading
    texts) are timed together, so that load drifting on a shared machine reaches them alike.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for q in queries:
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(q)
            times[name].append((time.perf_counter() - t0) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


CHILD = r"""
import json, sys, os, time, warnings
warnings.filterwarnings("ignore")
kind, path, n_queries = sys.argv[1], sys.argv[2], int(sys.argv[3])
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
import numpy as np
from langchain_memvid import SentenceTransformerEmbeddings
emb = SentenceTransformerEmbeddings()
emb.embed_query("warm up")
before = rss()
t0 = time.perf_counter()
if kind == "memvid":
    from langchain_memvid import MemvidVectorStore
    store = MemvidVectorStore(path, emb)
else:
    from langchain_community.vectorstores import FAISS
    store = FAISS.load_local(path, emb, allow_dangerous_deserialization=True)
open_s = time.perf_counter() - t0
rng = np.random.default_rng(1)
qs = rng.normal(size=(n_queries, 384)).astype("float32")
for q in qs:
    store.similarity_search_by_vector(q.tolist(), k=4)
print(json.dumps({"open_s": open_s, "rss_mb_after_open_and_search": rss(), "rss_mb_model_only": before}))
"""


def child_memory(kind: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(path), "200"], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from langchain_community.vectorstores import FAISS

    from langchain_memvid import MemvidVectorStore, SentenceTransformerEmbeddings

    texts, vectors = make_corpus(args.n)
    table = {t: v.tolist() for t, v in zip(texts, vectors, strict=True)}
    fake = LookupEmbeddings(table)
    root = Path(tempfile.mkdtemp(prefix="memvid-lc-bench-"))
    try:
        t0 = time.perf_counter()
        ours = MemvidVectorStore(root / "memvid", fake)
        for start in range(0, args.n, 10_000):
            chunk = texts[start : start + 10_000]
            ours.add_texts(chunk, metadatas=[{"n": start + i} for i in range(len(chunk))])
        build_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        theirs = FAISS.from_embeddings(list(zip(texts, vectors.tolist(), strict=True)), fake)
        build_theirs = time.perf_counter() - t0
        theirs.save_local(str(root / "faiss"))

        rng = np.random.default_rng(1)
        queries = [
            (vectors[i] + 0.05 * rng.normal(size=DIM)).astype(np.float32).tolist()
            for i in rng.integers(0, args.n, args.queries)
        ]
        # Warm both (first-call costs), then measure.
        ours.similarity_search_by_vector(queries[0], k=4)
        theirs.similarity_search_by_vector(queries[0], k=4)
        engine = ours.engine  # the index-only path: FAISS search, no catalog or video read
        p50 = p50s_interleaved(
            {
                "ours": lambda q: ours.similarity_search_by_vector(q, k=4),
                "theirs": lambda q: theirs.similarity_search_by_vector(q, k=4),
                "index": lambda q: engine._index.search(np.asarray([q], np.float32), 4),
            },
            queries,
        )
        ours_ms, theirs_ms, index_ms = p50["ours"], p50["theirs"], p50["index"]
        read_per_result = (ours_ms - index_ms) / 4

        model = SentenceTransformerEmbeddings()
        ours._embedding = model  # swap in the real model for query embedding (same 384 dims)
        theirs.embedding_function = model
        words = " ".join(texts[:50]).split()
        text_queries = [" ".join(random.Random(i).choices(words, k=8)) for i in range(60)]
        model.embed_query("warm up")
        p50 = p50s_interleaved(
            {
                "ours": lambda q: ours.similarity_search(q, k=4),
                "theirs": lambda q: theirs.similarity_search(q, k=4),
            },
            text_queries,
        )
        ours_text_ms, theirs_text_ms = p50["ours"], p50["theirs"]
        ours.close()
        mem_ours = child_memory("memvid", root / "memvid")
        mem_theirs = child_memory("faiss", root / "faiss")
        disk_ours = sum(p.stat().st_size for p in (root / "memvid").rglob("*") if p.is_file())
        disk_theirs = sum(p.stat().st_size for p in (root / "faiss").rglob("*") if p.is_file())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    raw = sum(len(t.encode()) for t in texts)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    result = {
        "machine": machine,
        "n": args.n,
        "text_bytes": raw,
        "build_s": {"memvid": build_ours, "faiss": build_theirs},
        "by_vector_p50_ms": {"memvid": ours_ms, "faiss": theirs_ms, "ratio": ours_ms / theirs_ms},
        "index_only_p50_ms": index_ms,
        "read_back_ms_per_result": read_per_result,
        "similarity_search_real_model_p50_ms": {
            "memvid": ours_text_ms,
            "faiss": theirs_text_ms,
            "ratio": ours_text_ms / theirs_text_ms,
        },
        "search_process_rss_mb": {"memvid": mem_ours, "faiss": mem_theirs},
        "disk_bytes": {"memvid": disk_ours, "faiss": disk_theirs},
    }
    rows = [
        (
            "similarity_search_by_vector k=4 p50 ms",
            f"{ours_ms:.2f}",
            f"{theirs_ms:.2f}",
            f"ratio {ours_ms / theirs_ms:.2f} (target <= 2)",
        ),
        ("reading texts back from video, ms/result", f"{read_per_result:.2f}", "-", "target <= 1.2"),
        (
            "similarity_search, real model, p50 ms",
            f"{ours_text_ms:.2f}",
            f"{theirs_text_ms:.2f}",
            f"ratio {ours_text_ms / theirs_text_ms:.2f} (target <= 1.3)",
        ),
        (
            "search process RSS MiB (model loaded)",
            f"{mem_ours['rss_mb_after_open_and_search']:.0f}",
            f"{mem_theirs['rss_mb_after_open_and_search']:.0f}",
            f"model alone {mem_ours['rss_mb_model_only']:.0f}",
        ),
        (
            "  store's share of RSS MiB",
            f"{mem_ours['rss_mb_after_open_and_search'] - mem_ours['rss_mb_model_only']:.0f}",
            f"{mem_theirs['rss_mb_after_open_and_search'] - mem_theirs['rss_mb_model_only']:.0f}",
            "",
        ),
        (
            "open the store, s",
            f"{mem_ours['open_s']:.2f}",
            f"{mem_theirs['open_s']:.2f}",
            "FAISS: pickle load",
        ),
        ("disk bytes / text bytes", f"{disk_ours / raw:.2f}", f"{disk_theirs / raw:.2f}", ""),
        ("build, s (fake embedding)", f"{build_ours:.1f}", f"{build_theirs:.1f}", ""),
    ]
    print(f"\nLangChain face vs LangChain FAISS, {args.n:,} documents, {machine}")
    head = ("figure", "memvid", "LC FAISS", "note")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(4)]
    for row in (head, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "langchain.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
