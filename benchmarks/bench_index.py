"""Index benchmark (issue #6): FAISS index choices at 1,000,000 x 384, beside the seed's table.

Data behaves like sentence embeddings, not uniform noise: a Gaussian mixture of 3,000 clusters
grouped under 60 topics, with lognormal cluster sizes and widths, anisotropic noise (power-law
spectrum in a random basis), a shared mean direction, L2-normalised. Nearest-neighbour cosine is
about 0.78 and random pairs about 0.18, close to MiniLM on real text. 1,000 held-out queries
from the same mixture; exact search is the ground truth; k = 10.

Per index type, built through the engine's own code (``IndexSpec`` -> ``new_main`` -> the
``VectorIndex`` that ``Engine`` serves, reading exact vectors for refine from segment-format
vector files like a store): build/train time, single-query and batched latency (p50/p99), memory
(anonymous RSS growth), snapshot file size, recall@10, and raw FAISS on the same index object.
Then memory-mapped opening, the knobs (nprobe, efSearch, refine), deletes, and the growth curve
of the whole store (QR video included) at 10k and 100k records (1M with --store-1m).

    python benchmarks/bench_index.py                 # the 1M table + store growth 10k, 100k
    python benchmarks/bench_index.py --store-1m      # + the whole store at 1M (~20 min more)
    python benchmarks/bench_index.py --n 100000      # a smaller index table

Writes ``benchmarks/results/index.json``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform
import pydoc_data.topics
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from langchain_memvid.engine import Engine, Record
from langchain_memvid.engine.search.index import VectorIndex, new_main
from langchain_memvid.engine.search.index_spec import IndexSpec
from langchain_memvid.engine.search.vector_files import VectorFiles, serialize_vectors
from langchain_memvid.engine.search.vectors import prepare_query

RESULTS = Path(__file__).parent / "results"
DIM = 384
K = 10
NQ = 1000
STORE_TIMED = 1000  # store vs FAISS: p50s over 2 x 1,000 queries, so that ~50 us is not noise
SEED_CLAIMS = {  # the seed document's table for 1M x 384
    "flat": "IndexFlatL2 ~100 ms/search, 1.5 GB",
    "ivf": "IndexIVFFlat ~5 ms, 1.5 GB, 98 %",
    "ivfpq": "IndexIVFPQ ~3 ms, 150 MB, 95 %",
    "hnsw": "(not in the seed's table)",
    "lsh": "IndexLSH: 'very large or binary data'",
}
OUT: dict[str, Any] = {}


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def rss() -> dict[str, float]:
    """Resident memory in MiB: anonymous (heap) and file-backed (mapped files)."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("RssAnon:", "RssFile:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out


def save_json() -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "index.json").write_text(json.dumps(OUT, indent=2, default=float))


# -- data -----------------------------------------------------------------------------------


def make_data(path: Path, n: int, dim: int = DIM, seed: int = 0) -> np.memmap:
    """The mixture described in the module docstring, written to ``path`` in chunks."""
    rng = np.random.default_rng(seed)
    basis_q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    spectrum = (np.arange(1, dim + 1) ** -0.5).astype(np.float32)
    spectrum /= np.sqrt((spectrum**2).mean())
    basis = (basis_q * spectrum).T.astype(np.float32)
    mean = rng.standard_normal(dim).astype(np.float32) @ basis * 0.8
    topics = rng.standard_normal((60, dim)).astype(np.float32) @ basis
    centres = (
        topics[rng.integers(0, 60, 3000)]
        + 0.6 * rng.standard_normal((3000, dim)).astype(np.float32) @ basis
        + mean
    )
    weights = rng.lognormal(0, 1.0, 3000)
    weights /= weights.sum()
    sigma = rng.lognormal(0, 0.25, 3000).astype(np.float32)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        c = rng.choice(3000, m, p=weights)
        x = centres[c] + sigma[c, None] * (rng.standard_normal((m, dim)).astype(np.float32) @ basis)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def write_vector_files(folder: Path, x: np.ndarray, per_file: int = 4096) -> VectorFiles:
    """Segment-format vector files of all of ``x``, as a store would hold them."""
    folder.mkdir(parents=True, exist_ok=True)
    files = VectorFiles(folder, x.shape[1])
    for seq, start in enumerate(range(0, len(x), per_file), start=1):
        ids = np.arange(start, min(start + per_file, len(x)), dtype=np.int64)
        name = f"{seq:08d}.faiss"
        (folder / name).write_bytes(serialize_vectors(ids, np.ascontiguousarray(x[ids]), "cosine", "float32"))
        files.track(seq, name)
    return files


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[:K]) & set(t[:K])) / K for f, t in zip(found, truth, strict=True)]))


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def time_single(
    fns: dict[str, Callable[[np.ndarray], Any]], queries: np.ndarray, passes: int = 2
) -> dict[str, dict[str, float]]:
    """p50/p99 ms per function, one query at a time.

    Functions take turns by whole passes over the queries (A B A B ...), so each sees machine
    load alike and none inherits warm caches from another running the same query just before.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(passes):
        for name, fn in fns.items():
            for q in queries:
                t0 = time.perf_counter()
                fn(q[None, :])
                times[name].append(time.perf_counter() - t0)
    return {name: {"p50_ms": pct(t, 50), "p99_ms": pct(t, 99)} for name, t in times.items()}


def time_interleaved(
    fns: dict[str, Callable[[np.ndarray], Any]], queries: np.ndarray, passes: int = 2
) -> dict[str, dict[str, float]]:
    """p50/p99 ms per function, the functions taking turns query by query.

    For a small difference between two functions (the store's overhead over FAISS): load that
    drifts during the run reaches both alike. At each turn function j runs query i + j*n/len(fns),
    so none inherits warm caches from another that just ran the same query.
    """
    names = list(fns)
    n, shift = len(queries), len(queries) // len(names)
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(passes):
        for i in range(n):
            for j, name in enumerate(names):
                q = queries[(i + j * shift) % n]
                t0 = time.perf_counter()
                fns[name](q[None, :])
                times[name].append(time.perf_counter() - t0)
    return {name: {"p50_ms": pct(t, 50), "p99_ms": pct(t, 99)} for name, t in times.items()}


def time_batched(fn: Callable[[np.ndarray], Any], queries: np.ndarray, batch: int = 100) -> dict[str, float]:
    times = []
    for start in range(0, len(queries), batch):
        t0 = time.perf_counter()
        fn(queries[start : start + batch])
        times.append(time.perf_counter() - t0)
    return {
        "batch": batch,
        "batch_p50_ms": pct(times, 50),
        "batch_p99_ms": pct(times, 99),
        "per_query_ms": float(np.mean(times)) / batch * 1000,
    }


# -- the index table ---------------------------------------------------------------------------

KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    # kind -> (metric, index_options); defaults otherwise (nlist = 4*sqrt(n), PQ m = dim/8, ...)
    "flat": ("cosine", {}),
    "ivf": ("cosine", {}),
    "ivfpq": ("cosine", {}),
    "hnsw": ("cosine", {}),
    "lsh": ("l2", {}),  # LSH accepts only l2; on unit vectors l2 ranks exactly as cosine
}
SWEEPS: dict[str, list[dict[str, int]]] = {
    "ivf": [{"nprobe": 8}, {"nprobe": 16}, {"nprobe": 32}, {"nprobe": 64}],
    "ivfpq": [{"refine": 0}, {"refine": 4}, {"refine": 10}, {"refine": 20}, {"nprobe": 64, "refine": 10}],
    "hnsw": [{"efSearch": 64}, {"efSearch": 128}, {"efSearch": 256}],
    "lsh": [{"refine": 1}, {"refine": 10}, {"refine": 50}],
}


def build_index(
    kind: str, x: np.ndarray, files: VectorFiles, tmp: Path
) -> tuple[VectorIndex, dict[str, Any]]:
    """Build ``kind`` over ``x`` the way the engine does; returns the index and its build figures."""
    metric, options = KINDS[kind]
    spec, _ = IndexSpec.parse(kind, options, metric)
    n = len(x)
    gc.collect()
    before = rss()
    t0 = time.perf_counter()
    index = VectorIndex(DIM, metric, spec, source=files.get)
    info: dict[str, Any] = {}
    if kind == "flat":
        for start in range(0, n, 65_536):
            ids = np.arange(start, min(start + 65_536, n), dtype=np.int64)
            index.add(ids, np.ascontiguousarray(x[ids]))
        info["train_s"] = 0.0
    else:
        fresh, _ = spec.new_index(DIM, metric, n)
        sample = None
        if not fresh.is_trained:
            ivf = faiss.try_extract_index_ivf(fresh)
            size = spec.train_size(n, int(ivf.nlist) if ivf else 0)
            pick = np.sort(np.random.default_rng(0).choice(n, size, replace=False))
            sample = np.ascontiguousarray(x[pick])
        del fresh
        main, factory, sample_size = new_main(spec, DIM, metric, n, sample)
        info["train_s"] = time.perf_counter() - t0
        info["train_sample"] = sample_size
        del sample
        for start in range(0, n, 65_536):
            ids = np.arange(start, min(start + 65_536, n), dtype=np.int64)
            main.add_with_ids(np.ascontiguousarray(x[ids]), ids)
        index.attach(
            main,
            np.arange(n),
            factory=factory,
            trained_on=n if sample_size else None,
            train_sample=sample_size,
        )
        info["factory"] = factory
    info["build_s"] = time.perf_counter() - t0
    gc.collect()
    after = rss()
    info["memory_mb"] = after["RssAnon"] - before["RssAnon"]
    if index.main is not None:
        path = tmp / f"{kind}.faiss"
        t0 = time.perf_counter()
        faiss.write_index(index.main, str(path))
        info["save_s"] = time.perf_counter() - t0
        info["file_mb"] = path.stat().st_size / 2**20
    else:
        info["file_mb"] = n * DIM * 4 / 2**20  # the segment vector files are its only storage
        info["factory"] = "Flat (exact; vectors in the segment files)"
    info["search_defaults"] = index.params()
    if info["search_defaults"]["refine"] or kind == "lsh":
        # Refine reads exact vectors through an id -> (file, row) map: 8 bytes a vector.
        info["id_map_mb"] = n * 8 / 2**20
        info["memory_mb"] += info["id_map_mb"]
    return index, info


def raw_search(
    kind: str, index: VectorIndex, params: dict[str, int], flat_raw: Any
) -> Callable[[np.ndarray], Any]:
    """FAISS alone on the same index object, with the same knobs (no ids, no refine, no catalog)."""
    if kind == "flat":
        return lambda q: flat_raw.search(q, K)
    main = index.main
    if kind in ("ivf", "ivfpq"):
        sp = faiss.SearchParametersIVF(nprobe=params["nprobe"])
        return lambda q: main.search(q, K, params=sp)
    inner = index._inner  # the index inside the IndexIDMap, as a FAISS user would hold it
    if kind == "hnsw":
        sp = faiss.SearchParametersHNSW(efSearch=params["efSearch"])
        return lambda q: inner.search(q, K, params=sp)
    return lambda q: inner.search(q, K)


def bench_kind(
    kind: str, x: np.ndarray, q: np.ndarray, truth: np.ndarray, files: VectorFiles, tmp: Path, flat_raw: Any
) -> dict[str, Any]:
    log(f"[{kind}] building over {len(x):,} vectors ...")
    index, info = build_index(kind, x, files, tmp)
    log(
        f"[{kind}] built in {info['build_s']:.1f} s ({info.get('factory')}), memory {info['memory_mb']:.0f} MiB"
    )
    params = index.params()
    ours = lambda qq: index.search(qq, K)  # noqa: E731
    raw = raw_search(kind, index, params, flat_raw)
    singles = q[: 40 if kind == "flat" else 300]
    ours(q[:5]), raw(q[:5])  # warm up
    info["single"] = time_interleaved({"ours": ours, "raw_faiss": raw}, singles)
    info["when"] = time.strftime("%Y-%m-%d %H:%M")
    info["batched"] = time_batched(ours, q[: 300 if kind == "flat" else NQ])
    info["batched_raw_faiss"] = time_batched(raw, q[: 300 if kind == "flat" else NQ])
    _, found = index.search(q, K)
    info["recall_at_10"] = recall(found, truth)
    _, found_raw = raw(q)
    info["recall_at_10_raw_faiss"] = recall(found_raw, truth)
    s = info["single"]
    info["overhead_pct"] = 100 * (s["ours"]["p50_ms"] - s["raw_faiss"]["p50_ms"]) / s["raw_faiss"]["p50_ms"]
    log(
        f"[{kind}] recall {info['recall_at_10']:.4f}, p50 ours {s['ours']['p50_ms']:.2f} ms, raw {s['raw_faiss']['p50_ms']:.2f} ms"
    )
    if kind in SWEEPS:
        info["sweep"] = []
        for knobs in SWEEPS[kind]:
            _, found = index.search(q, K, params=knobs)
            t = time_single({"ours": lambda qq, kn=knobs: index.search(qq, K, params=kn)}, q[:200])
            row = {"params": {**index.params(knobs)}, "recall_at_10": recall(found, truth), **t["ours"]}
            info["sweep"].append(row)
            log(f"[{kind}]   {knobs}: recall {row['recall_at_10']:.4f}, p50 {row['p50_ms']:.2f} ms")
    if kind in ("ivf", "hnsw", "ivfpq"):
        # Deletes: 1 % of the vectors. IVF removes them; HNSW excludes them with an ID selector.
        doomed = np.random.default_rng(1).choice(len(x), len(x) // 100, replace=False)
        index.remove(doomed)
        dead = set(doomed.tolist())
        live_truth = np.array([[t for t in row if t not in dead][:K] for row in truth])
        _, found = index.search(q, K)
        t = time_interleaved({"ours": ours, "raw_faiss": raw}, q[:300])
        info["after_deleting_1pct"] = {
            "deleted_excluded": index.dead,
            "recall_at_10": recall(found, live_truth),
            "returned_deleted": int(np.isin(found, doomed).sum()),
            **{f"{k}_p50_ms": v["p50_ms"] for k, v in t.items()},
        }
        log(f"[{kind}] after 1 % deletes: {info['after_deleting_1pct']}")
    gc.collect()
    return info


_OPEN_SNIPPET = r"""
import gc, json, sys, time
import faiss, numpy as np
from langchain_memvid.engine.search.index import VectorIndex
from langchain_memvid.engine.search.index_spec import IndexSpec

def rss():
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("RssAnon:", "RssFile:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out

path, kind, metric, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
queries = np.load(sys.argv[6])
ivf = kind.startswith("ivf")
flags = 0 if mode == "read" else (faiss.IO_FLAG_MMAP if ivf else faiss.IO_FLAG_MMAP_IFC)
gc.collect()
before = rss()
t0 = time.perf_counter()
main = faiss.read_index(path, flags)
index = VectorIndex(queries.shape[1], metric, IndexSpec.parse(kind, {}, metric)[0])
index.attach(main, np.arange(n), factory=kind, trained_on=None, mmapped=mode == "mmap")
opened = time.perf_counter() - t0
gc.collect()
after = rss()
for q in queries:
    main.search(q[None, :], 10)  # the index alone, at the defaults attach() set
searched = rss()
print(json.dumps({
    "open_s": opened,
    "anon_mb": after["RssAnon"] - before["RssAnon"],
    "anon_mb_after_50_searches": searched["RssAnon"] - before["RssAnon"],
    "file_backed_mb_after_50_searches": searched["RssFile"] - before["RssFile"],
}))
"""


_STORE_OPEN_SNIPPET = r"""
import gc, json, sys, time
import numpy as np
from langchain_memvid.engine import Engine

def anon():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("RssAnon:"))

queries = np.load(sys.argv[2])
gc.collect()
before = anon()
t0 = time.perf_counter()
engine = Engine(sys.argv[1])
opened = time.perf_counter() - t0
after = anon()
for q in queries:
    engine.search(q, 10)
print(json.dumps({"open_s": opened, "open_anon_mb": after - before, "anon_mb_after_50_searches": anon() - before}))
"""


def store_open(path: Path, q: np.ndarray) -> dict[str, float]:
    """Open the store in a fresh process: time, and memory before and after 50 searches with text."""
    np.save(path.parent / "q50.npy", q[:50])
    done = subprocess.run(
        [sys.executable, "-c", _STORE_OPEN_SNIPPET, str(path), str(path.parent / "q50.npy")],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_open(kind: str, tmp: Path, q: np.ndarray, n: int) -> dict[str, Any] | None:
    """Open the saved snapshot in a fresh process, read and memory-mapped: time and memory.

    A fresh process, so that memory freed by earlier work cannot hide what opening takes.
    """
    path = tmp / f"{kind}.faiss"
    if not path.exists():
        return None
    np.save(tmp / "q50.npy", q[:50])
    out: dict[str, Any] = {"file_mb": path.stat().st_size / 2**20}
    for mode in ("read", "mmap"):
        args = [str(path), kind, KINDS[kind][0], mode, str(n), str(tmp / "q50.npy")]
        done = subprocess.run(
            [sys.executable, "-c", _OPEN_SNIPPET, *args], capture_output=True, text=True, check=True
        )
        out[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"[{kind}] open: {out}")
    return out


# -- the whole store ---------------------------------------------------------------------------


def texts(n: int, seed: int) -> list[str]:
    vocab = sorted(set(" ".join(pydoc_data.topics.topics.values()).split()))
    rng = random.Random(seed)
    return [" ".join(rng.choices(vocab, k=rng.randint(12, 24))) for _ in range(n)]


def disk_bytes(path: Path) -> dict[str, int]:
    def total(pattern: str) -> int:
        return sum(p.stat().st_size for p in path.glob(pattern) if p.is_file())

    return {
        "video": total("segments/*.mov"),
        "vectors": total("segments/*.faiss"),
        "index_snapshot": total("index/*.faiss"),
        "catalog": total("catalog.sqlite*"),
        "total": sum(p.stat().st_size for p in path.rglob("*") if p.is_file()),
    }


def bench_store(root: Path, n: int, x: np.ndarray, q: np.ndarray, kinds: list[str]) -> dict[str, Any]:
    """Build a store of ``n`` records (index 'ivf': exact until 25k) and search it."""
    path = root / f"store-{n}"
    shutil.rmtree(path, ignore_errors=True)  # a store left in --workdir by an interrupted run
    log(f"[store {n:,}] building ...")
    engine = Engine(path, model="synthetic-384", index="ivf")
    t0 = time.perf_counter()
    for start in range(0, n, 10_000):
        stop = min(start + 10_000, n)
        recs = [
            Record(f"d{i}", t, {"source": f"doc{i // 50}", "chunk_index": i % 50})
            for i, t in zip(range(start, stop), texts(stop - start, start), strict=True)
        ]
        engine.add(recs, np.ascontiguousarray(x[start:stop]))
    build_s = time.perf_counter() - t0
    if n >= 25_000:
        t1 = time.perf_counter()
        engine.build_index()  # retrain on everything (the auto-training happened at 25k)
        retrain_s = time.perf_counter() - t1
    else:
        retrain_s = 0.0
    text_bytes = engine.stats()["text_bytes"]
    engine.close()
    opened = store_open(path, q)
    engine = Engine(path)
    truth = faiss.knn(
        np.ascontiguousarray(q[:200]), np.ascontiguousarray(x[:n]), K, metric=faiss.METRIC_INNER_PRODUCT
    )[1]
    out: dict[str, Any] = {
        "records": n,
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "text_bytes": text_bytes,
        "build_s": build_s,
        "build_records_per_s": n / build_s,
        "retrain_s": retrain_s,
        **opened,
        "disk_bytes": disk_bytes(path),
        "by_index": {},
    }
    for kind in kinds:
        if kind != "ivf":
            t1 = time.perf_counter()
            engine.build_index(kind)
            out[f"build_index_{kind}_s"] = time.perf_counter() - t1
        index = engine._index
        assert index is not None
        params = index.params()
        if index.main is None:  # exact search: our flat part is FAISS's flat index itself
            raw = functools.partial(lambda qq, ix: ix.search(qq, K), ix=index)
        else:
            raw = raw_search(kind, index, params, None)
        engine.search(q[0], K)
        t1 = time.perf_counter()
        engine.search_ids(q[0], K)  # the first ids-only search fills the record-id map
        if kind == kinds[0]:
            out["record_id_map_load_s"] = time.perf_counter() - t1
            id_map = engine._record_ids
            assert id_map is not None
            out["record_id_map_mb"] = (id_map._spans.nbytes + len(id_map._blob)) / 2**20
        single = time_interleaved(
            {"raw_faiss": raw, "store_ids": lambda qq: engine.search_ids(qq[0], K)}, q[:STORE_TIMED]
        )
        floor = minimal_glue(engine, index)
        if floor is not None:  # the same interleaving, with the least any Python store adds
            single.update(time_interleaved({"raw_faiss_2": raw, "floor": floor}, q[:STORE_TIMED]))
        single.update(time_single({"store_with_text": lambda qq: engine.search(qq[0], K)}, q[:200]))
        ids = [[int(r[1:]) for r, _ in engine.search_ids(v, K)] for v in q[:200]]
        row = {
            "index": engine.stats()["index_type"],
            "search": single,
            "recall_at_10": recall(np.array(ids), truth),
            "store_overhead_ms": single["store_ids"]["p50_ms"] - single["raw_faiss"]["p50_ms"],
            "store_overhead_pct": 100
            * (single["store_ids"]["p50_ms"] - single["raw_faiss"]["p50_ms"])
            / single["raw_faiss"]["p50_ms"],
            **(
                {"floor_overhead_ms": single["floor"]["p50_ms"] - single["raw_faiss_2"]["p50_ms"]}
                if floor is not None
                else {}
            ),
            "open": opened if kind == kinds[0] else store_open(path, q),
            "disk_bytes": disk_bytes(path),
        }
        out["by_index"][kind] = row
        log(f"[store {n:,}] {kind}: {row['index']}: {json.dumps(single)} recall {row['recall_at_10']:.3f}")
    engine.close()
    return out


def minimal_glue(engine: Engine, index: VectorIndex) -> Callable[[np.ndarray], Any] | None:
    """The least a Python store adds to FAISS, for scale; None where the index has no plan.

    Prepare the query as the store does (``prepare_query``), call FAISS's ``search_c`` with the
    store's plan and reused buffers, name the results from the record-id map: no locking, no
    catalog check, no argument checks.
    """
    plan = index._plan_for(K)
    names = engine._record_ids
    if plan is None or names is None:
        return None
    target, labels, sp = plan
    dist, found = np.empty((1, K), np.float32), np.empty((1, K), np.int64)
    dist_ptr, found_ptr = faiss.swig_ptr(dist), faiss.swig_ptr(found)

    def glue(qq: np.ndarray) -> list[tuple[str | None, float]]:
        v = prepare_query(qq[0], DIM, "cosine")
        target.search_c(1, faiss.swig_ptr(v), K, dist_ptr, found_ptr, sp)
        ids = found.tolist()[0]
        if labels is not None:
            ids = [labels[i] for i in ids]
        return list(zip(names.lookup(ids), dist.tolist()[0], strict=True))

    return glue


# -- report ----------------------------------------------------------------------------------


def table(rows: list[tuple[str, ...]], head: tuple[str, ...]) -> None:
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    for row in (head, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def report() -> None:
    idx = OUT["indexes"]
    print(f"\nIndex benchmark, {OUT['machine']}; {OUT['n']:,} vectors x {DIM}, {NQ} queries, k={K}")
    names = {
        "flat": "Flat (exact)",
        "ivf": "IVF-Flat",
        "ivfpq": "IVF-PQ +refine",
        "hnsw": "HNSW",
        "lsh": "LSH +refine",
    }
    rows = []
    for kind, r in idx.items():
        s, b = r["single"], r["batched"]
        rows.append(
            (
                names[kind],
                r.get("factory", "")[:18],
                f"{r['build_s']:.0f}",
                f"{s['ours']['p50_ms']:.2f} / {s['ours']['p99_ms']:.2f}",
                f"{b['per_query_ms']:.3f}",
                f"{r['memory_mb']:.0f}",
                f"{r['file_mb']:.0f}",
                f"{r['recall_at_10']:.3f}",
                f"{s['raw_faiss']['p50_ms']:.2f} ({r['overhead_pct']:+.0f}%)",
                SEED_CLAIMS[kind],
            )
        )
    table(
        rows,
        (
            "index",
            "factory",
            "build s",
            "p50/p99 ms",
            "batch ms/q",
            "mem MiB",
            "file MiB",
            "recall@10",
            "raw FAISS p50",
            "seed claims",
        ),
    )
    print("\nKnobs (single-query p50 ms, recall@10):")
    for kind, r in idx.items():
        for row in r.get("sweep", []):
            knobs = {k: v for k, v in row["params"].items() if k in ("nprobe", "efSearch", "refine")}
            print(
                f"  {names[kind]:<15} {json.dumps(knobs):<45} p50 {row['p50_ms']:6.2f}  p99 {row['p99_ms']:6.2f}  recall {row['recall_at_10']:.4f}"
            )
    print("\nAfter deleting 1 % (IVF removes ids; HNSW excludes them with an ID selector):")
    for kind, r in idx.items():
        d = r.get("after_deleting_1pct")
        if d:
            print(
                f"  {names[kind]:<15} recall {d['recall_at_10']:.4f}, deleted returned {d['returned_deleted']}, p50 ours {d['ours_p50_ms']:.2f} ms vs raw {d['raw_faiss_p50_ms']:.2f} ms"
            )
    if OUT.get("mmap"):
        print("\nOpening a snapshot (anonymous RSS growth; mapped pages are page cache, not heap):")
        for kind, m in OUT["mmap"].items():
            print(
                f"  {names[kind]:<15} file {m['file_mb']:.0f} MiB: read {m['read']['open_s']:.2f} s / {m['read']['anon_mb']:.0f} MiB;"
                f" mmap {m['mmap']['open_s']:.3f} s / {m['mmap']['anon_mb']:.0f} MiB"
                f" ({m['mmap']['anon_mb_after_50_searches']:.0f} MiB after 50 searches)"
            )
    if OUT.get("store"):
        print("\nWhole store (QR video + catalog + vectors; index 'ivf', exact below 25k):")
        rows = []
        for st in OUT["store"]:
            for kind, r in st["by_index"].items():
                s = r["search"]
                rows.append(
                    (
                        f"{st['records']:,}",
                        kind,
                        f"{st['build_s']:.0f} ({st['build_records_per_s']:.0f}/s)"
                        if kind == "ivf"
                        else f"+{st.get(f'build_index_{kind}_s', 0):.0f}",
                        f"{r['open']['open_s']:.2f}",
                        f"{s['store_with_text']['p50_ms']:.2f}",
                        f"{s['store_ids']['p50_ms']:.3f}",
                        f"{s['raw_faiss']['p50_ms']:.3f}",
                        f"{r['store_overhead_ms'] * 1000:.0f} us ({r['store_overhead_pct']:+.0f}%)",
                        f"{r['recall_at_10']:.3f}",
                        f"{r['open']['open_anon_mb']:.0f} / {r['open']['anon_mb_after_50_searches']:.0f}",
                        f"{r['disk_bytes']['total'] / 2**20:.0f}",
                    )
                )
        table(
            rows,
            (
                "records",
                "index",
                "build s",
                "open s",
                "p50 w/ text",
                "p50 ids",
                "raw FAISS",
                "store overhead",
                "recall",
                "open MiB (+50 q)",
                "disk MiB",
            ),
        )
    print("\nTargets:")
    for name, value, ok in OUT["targets"]:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {value}")


def targets() -> list[tuple[str, str, bool]]:
    idx = OUT["indexes"]
    out = []
    for kind, name, min_recall, max_p50 in (("ivf", "IVF-Flat", 0.95, 5), ("hnsw", "HNSW", 0.98, 2)):
        if kind in idx:
            r = idx[kind]
            out.append(
                (
                    f"{name} recall@10 >= {min_recall} at p50 <= {max_p50} ms",
                    f"{r['recall_at_10']:.3f} at {r['single']['ours']['p50_ms']:.2f} ms",
                    r["recall_at_10"] >= min_recall and r["single"]["ours"]["p50_ms"] <= max_p50,
                )
            )
    if "ivfpq" in idx:
        r = idx["ivfpq"]
        out.append(
            (
                "IVF-PQ (+refine) recall@10 >= 0.95, memory <= 150 MB",
                f"{r['recall_at_10']:.3f}, {r['memory_mb']:.0f} MiB",
                r["recall_at_10"] >= 0.95 and r["memory_mb"] * 1.048576 <= 150,
            )
        )
    if "flat" in idx:
        r = idx["flat"]
        out.append(
            (
                "Flat within 10 % of raw FAISS (single-query p50)",
                f"{r['overhead_pct']:+.1f} %",
                r["overhead_pct"] <= 10,
            )
        )
    for kind in ("ivf", "hnsw"):
        if kind in idx:
            r = idx[kind]
            out.append(
                (
                    f"{kind}: index layer (ids, params, dead-id exclusion) over raw FAISS <= 10 %",
                    f"{r['overhead_pct']:+.1f} %",
                    r["overhead_pct"] <= 10,
                )
            )
    if OUT.get("store"):
        big = OUT["store"][-1]
        for kind, r in big["by_index"].items():
            if kind == "ivf" or kind == "hnsw":
                floor = r.get("floor_overhead_ms")
                out.append(
                    (
                        f"store ({big['records']:,}) {kind}: catalog + index over raw FAISS <= 10 %",
                        f"{r['store_overhead_ms'] * 1000:.0f} us = {r['store_overhead_pct']:+.1f} %"
                        + (f" (minimal glue alone: {floor * 1000:.0f} us)" if floor is not None else ""),
                        r["store_overhead_pct"] <= 10,
                    )
                )
                if big["records"] < OUT["n"]:  # the store was not measured at the index table's size
                    one_m = idx.get(kind)
                    if one_m:
                        est = (
                            100
                            * (
                                one_m["single"]["ours"]["p50_ms"]
                                + r["store_overhead_ms"]
                                - one_m["single"]["raw_faiss"]["p50_ms"]
                            )
                            / one_m["single"]["raw_faiss"]["p50_ms"]
                        )
                        out.append(
                            (
                                f"  estimate at {OUT['n']:,}: index layer + that catalog cost, {kind}",
                                f"{est:+.1f} %",
                                est <= 10,
                            )
                        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="vectors in the index table")
    parser.add_argument("--kinds", default="flat,ivf,ivfpq,hnsw,lsh")
    parser.add_argument("--store", default="10000,100000", help="whole-store sizes (comma list; '' skips)")
    parser.add_argument("--store-1m", action="store_true", help="also the whole store at 1,000,000 records")
    parser.add_argument("--store-kinds", default="ivf,hnsw")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temp folder)")
    args = parser.parse_args()
    root = Path(args.workdir or tempfile.mkdtemp(prefix="memvid-index-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    kinds = [k for k in args.kinds.split(",") if k]
    previous = RESULTS / "index.json"
    if previous.exists():
        # Results accumulate: a run replaces the index rows and store sizes it measures, each
        # stamped with its own time, and keeps the rest (a table of another size is dropped).
        OUT.update(json.loads(previous.read_text()))
        if kinds and OUT.get("n") != args.n:
            OUT.pop("indexes", None)
            OUT.pop("mmap", None)
    OUT.update(
        machine=f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, faiss {faiss.__version__}",
        n=OUT.get("n", args.n) if not kinds else args.n,
        dim=DIM,
        k=K,
        queries=NQ,
        data="Gaussian mixture: 3,000 clusters under 60 topics, lognormal sizes and widths, power-law anisotropic noise, shared mean, L2-normalised",
        when=time.strftime("%Y-%m-%d %H:%M"),
    )
    OUT.setdefault("indexes", {})
    try:
        started = time.perf_counter()
        stores = [int(s) for s in args.store.split(",") if s] + ([1_000_000] if args.store_1m else [])
        total = max([args.n if kinds else 0, *stores])
        log(f"generating {total + NQ:,} vectors ...")
        data = make_data(root / "data.npy", total + NQ)
        q = np.ascontiguousarray(data[:NQ])
        x = data[NQ : NQ + (args.n if kinds else 0)]
        log("ground truth (exact) ...")
        flat_raw = faiss.IndexFlatIP(DIM)
        for start in range(0, len(x), 100_000):
            flat_raw.add(np.ascontiguousarray(x[start : start + 100_000]))
        t0 = time.perf_counter()
        truth = flat_raw.search(q, 20)[1]
        OUT["ground_truth_s"] = time.perf_counter() - t0
        log("segment-format vector files (the exact vectors refine reads) ...")
        files = write_vector_files(root / "vectors", x)
        for kind in kinds:
            OUT["indexes"][kind] = bench_kind(kind, x, q, truth, files, root, flat_raw)
            opened = bench_open(kind, root, q, len(x))
            if opened is not None:
                OUT.setdefault("mmap", {})[kind] = opened
                info = OUT["indexes"][kind]
                info["memory_built_mb"] = info["memory_mb"]
                # What a store serves after building or reopening: the snapshot as read.
                info["memory_mb"] = opened["read"]["anon_mb"] + (n_map := info.get("id_map_mb", 0.0))
                info["memory_note"] = "snapshot as read in a fresh process" + (
                    f", + {n_map:.1f} MiB id map for refine" if n_map else ""
                )
            (root / f"{kind}.faiss").unlink(missing_ok=True)
            if kind == "flat":
                del flat_raw
                flat_raw = None
                gc.collect()
            save_json()
        for f in root.glob("*.faiss"):
            f.unlink()
        files.close()
        shutil.rmtree(root / "vectors", ignore_errors=True)
        save_json()
        OUT["store"] = [st for st in OUT.get("store", []) if st["records"] not in stores]
        store_kinds = [k for k in args.store_kinds.split(",") if k]
        for n in stores:
            OUT["store"].append(bench_store(root, n, data[NQ:], q, store_kinds))
            OUT["store"].sort(key=lambda st: st["records"])
            shutil.rmtree(root / f"store-{n}", ignore_errors=True)
            save_json()
        OUT["wall_s"] = time.perf_counter() - started
        OUT["targets"] = targets()
        save_json()
        report()
        log(f"\nwrote {RESULTS / 'index.json'} ({OUT['wall_s'] / 60:.1f} min)")
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
