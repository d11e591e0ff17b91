"""Compact vectors (issue 15): store size per vector encoding, recall, open time, memory, search speed.

Corpus: ``benchmarks/real_corpus.py`` (real text nobody here wrote: CPython's pydoc topics and
docstrings of the standard library and installed packages, ~500-character chunks) embedded once by
the packaged all-MiniLM-L6-v2 and cached under ``benchmarks/.cache/`` (checked by SHA-256 on
load). Queries: 200 held-out first sentences, embedded by the same model.

For each encoding a store is built from the cached vectors; then, in one run:

- bytes on disk (video, vector files, catalog) / raw text bytes;
- recall@10 of the store's search against exact float32 search (numpy) over the original vectors;
- reopen + first query, in a fresh process (median of several), and a process that imports,
  opens and answers one query by vector beside one that only imports
  ``langchain_core.vectorstores, faiss, numpy``;
- the store's share of a search process's memory (resident, anonymous and file-backed), beside
  LangChain's FAISS store on the same vectors (needs ``langchain-community``);
- search p50 by vector (k=10), the stores taking turns query by query, beside the flat float32
  store served as 0.1 served it (every vector loaded into memory).

    python benchmarks/bench_vectors.py              # 100,000 chunks
    python benchmarks/bench_vectors.py --n 20000    # quicker

Writes ``benchmarks/results/vectors.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import real_corpus

from langchain_memvid.engine import Engine, Record, indexing
from langchain_memvid.engine.search.encodings import ENCODINGS

RESULTS = Path(__file__).parent / "results"
K = 10
BATCH = 10_000

# A fresh process: open a store, answer one query by vector, report times and memory.
CHILD = r"""
import json, os, sys, time
t_start = time.perf_counter()
kind, path, qfile, n_queries = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def mem():
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS", "RssAnon", "RssFile")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out
import numpy as np
queries = np.load(qfile, allow_pickle=False)
if kind == "faiss":
    import warnings; warnings.filterwarnings("ignore")
    from langchain_community.vectorstores import FAISS
    from langchain_core.embeddings import FakeEmbeddings
    import langchain_memvid  # the same imports in both processes
    before = mem(); t0 = time.perf_counter()
    store = FAISS.load_local(path, FakeEmbeddings(size=queries.shape[1]), allow_dangerous_deserialization=True)
    search = lambda q: store.similarity_search_by_vector(q.tolist(), k=10)
else:
    from langchain_memvid.engine import Engine
    import langchain_memvid
    import cv2, zxingcpp  # the frame decoders, loaded by the first read: an import, not the open
    before = mem(); t0 = time.perf_counter()
    store = Engine(path, create=False)
    search = lambda q: store.search(q, 10)
search(queries[0])
first = time.perf_counter() - t0
total = time.perf_counter() - t_start
for q in queries[1:n_queries]:
    search(q)
after = mem()
print(json.dumps({"open_and_first_query_s": first, "process_s": total, "before": before, "after": after}))
"""

BASELINE = "import langchain_core.vectorstores, faiss, numpy"


def child(kind: str, path: Path, qfile: Path, n_queries: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(path), str(qfile), str(n_queries)],
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    got["wall_s"] = time.perf_counter() - t0
    return got


def wall(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def disk(path: Path) -> dict[str, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return {
        "video": sum(p.stat().st_size for p in files if p.suffix == ".mov"),
        "vectors": sum(p.stat().st_size for p in files if p.suffix == ".faiss"),
        "catalog": sum(p.stat().st_size for p in files if p.name.startswith("catalog.sqlite")),
        "total": sum(p.stat().st_size for p in files),
    }


def build(
    path: Path, encoding: str, texts: list[str], metas: list[dict[str, Any]], vectors: np.ndarray
) -> float:
    t0 = time.perf_counter()
    with Engine(path, vector_encoding=encoding) as engine:
        for start in range(0, len(texts), BATCH):
            stop = start + BATCH
            engine.add(
                [Record(f"c{i}", texts[i], metas[i]) for i in range(start, min(stop, len(texts)))],
                vectors[start:stop],
            )
        engine.compact()  # one catalog and files as a finished ingest leaves them
    return time.perf_counter() - t0


def recall(engine: Engine, queries: np.ndarray, truth: list[set[str]]) -> float:
    got = [{h.record.id for h in engine.search(q, K)} for q in queries]
    return float(np.mean([len(g & t) / K for g, t in zip(got, truth, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="fresh processes per figure")
    parser.add_argument("--keep", type=Path, default=None, help="build the stores here and keep them")
    args = parser.parse_args()

    # The cache as built (``real_corpus.load`` would re-extract the text when packages changed).
    texts, metas, vectors = real_corpus.load_cached(f"real-{args.n}")
    _, _, queries = real_corpus.load_cached(f"real-{args.n}-queries-{args.queries}-seed0")
    text_bytes = sum(len(t.encode()) for t in texts)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    exact = np.argsort(-(queries @ unit.T), axis=1)[:, :K]
    truth = [{f"c{i}" for i in row} for row in exact]

    root = args.keep or Path(tempfile.mkdtemp(prefix="memvid-vectors-"))
    root.mkdir(parents=True, exist_ok=True)
    qfile = root / "queries.npy"
    np.save(qfile, queries.astype(np.float32), allow_pickle=False)
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "n": len(texts),
        "text_bytes": text_bytes,
        "queries": len(queries),
        "rounds": args.rounds,
        "encodings": {},
    }
    try:
        for encoding in ENCODINGS:
            path = root / encoding
            if not (path / "catalog.sqlite").exists():
                seconds = build(path, encoding, texts, metas, vectors)
                print(f"built {encoding} in {seconds:.0f} s", file=sys.stderr)
            sizes = disk(path)
            with Engine(path, create=False) as engine:
                stats = engine.stats()
                rec = recall(engine, queries, truth)
            results["encodings"][encoding] = {
                "bytes": sizes,
                "store_to_text": sizes["total"] / text_bytes,
                "vectors_to_text": sizes["vectors"] / text_bytes,
                "catalog_bytes_per_record": sizes["catalog"] / len(texts),
                "recall_at_10": rec,
                "served": stats["index"],
            }
            print(
                f"{encoding}: store/text {sizes['total'] / text_bytes:.3f}, recall@10 {rec:.4f}",
                file=sys.stderr,
            )

        # Search p50, the stores taking turns query by query; "float32 in RAM" is 0.1's serving.
        engines = {e: Engine(root / e, create=False) for e in ENCODINGS}
        saved = indexing.MAPPED_MIN
        indexing.MAPPED_MIN = 1 << 62
        engines["float32 in RAM (0.1)"] = Engine(root / "float32", create=False)
        indexing.MAPPED_MIN = saved
        times: dict[str, list[float]] = {name: [] for name in engines}
        for q in np.concatenate([queries, queries]):
            for name, engine in engines.items():
                t0 = time.perf_counter()
                engine.search(q, K)
                times[name].append((time.perf_counter() - t0) * 1000)
        results["search_p50_ms"] = {name: statistics.median(t[len(queries) :]) for name, t in times.items()}
        for engine in engines.values():
            engine.close()

        # Fresh processes: open + first query, memory, and the cold start beside a bare import.
        try:
            from langchain_community.vectorstores import FAISS
            from langchain_core.embeddings import FakeEmbeddings

            theirs = FAISS.from_embeddings(
                list(zip(texts, vectors.tolist(), strict=True)), FakeEmbeddings(size=vectors.shape[1])
            )
            theirs.save_local(str(root / "faiss"))
            del theirs
            results["faiss_store_to_text"] = disk(root / "faiss")["total"] / text_bytes
            kinds = [*ENCODINGS, "faiss"]
        except ImportError:
            kinds = list(ENCODINGS)
        processes: dict[str, Any] = {}
        baseline = []
        cold: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            baseline.append(wall(BASELINE))
            for kind in kinds:
                path, how = root / kind, "faiss" if kind == "faiss" else "memvid"
                cold.setdefault(kind, []).append(child(how, path, qfile, 1)["wall_s"])  # one query
                processes.setdefault(kind, []).append(child(how, path, qfile, args.queries))
        results["baseline_import_s"] = statistics.median(baseline)
        results["processes"] = {}
        for kind, runs in processes.items():
            last = runs[-1]
            results["processes"][kind] = {
                "open_and_first_query_s": statistics.median(r["open_and_first_query_s"] for r in runs),
                "process_wall_s": statistics.median(cold[kind]),
                "share_mib": {k: last["after"][k] - last["before"][k] for k in last["after"]},
            }
        base = results["baseline_import_s"]
        for got in results["processes"].values():
            got["process_to_baseline"] = got["process_wall_s"] / base
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "vectors.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
