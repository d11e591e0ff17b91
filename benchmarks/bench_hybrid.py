"""Hybrid search (issue 16): quality of vector, lexical and hybrid search beside LangChain's EnsembleRetriever, then speed and memory at scale.

    python benchmarks/bench_hybrid.py                  # both parts; speed at 100,000 records (77,289 exist)
    python benchmarks/bench_hybrid.py --store-dir benchmarks/.cache/hybrid-stores  # keep the built store
    python benchmarks/bench_hybrid.py --quick          # speed at 10,000 records, 100 queries
    python benchmarks/bench_hybrid.py --part quality   # only the labelled set

Quality: the labelled set ``benchmarks/hybrid_eval/dataset.json`` (``make_dataset.py`` tells how
it is made: CPython's pydoc topics and standard-library docstrings, with keyword, question,
identifier and paraphrase queries). One ``MemvidVectorStore`` holds its chunks, embedded by the
packaged all-MiniLM-L6-v2 (vectors cached under ``benchmarks/.cache/``; the queries are embedded
once, up front, so every method below is timed without the model). For each query, k=10:

- vector: ``similarity_search_with_score``;
- lexical: ``lexical_search_with_score``; hybrid: ``hybrid_search_with_score`` (the store's own,
  issue 16: reported "not available" while the store lacks them);
- ensemble: LangChain's ``EnsembleRetriever([BM25Retriever, store.as_retriever()], weights=[0.5,
  0.5])``, each retriever asked for 10, as LangChain packages it: BM25Retriever splits text on
  whitespace, so ``"nonlocal"`` in quotes or ``shutil.copytree(src,`` is one token;
- ensemble (words), bm25, bm25 (words): the same with BM25 on lower-cased ``\\w+`` tokens, and
  BM25Retriever alone; for reference.

hit@1, hit@5, MRR@10 and nDCG@10 (``hybrid_eval/metrics.py``), overall, per query kind, and over
kinds.

The quality store is small (its decoded packs stay cached), so its p50 column is only a guide.

Speed and memory: the cached real corpus of ``benchmarks/real_corpus.py`` (its texts and vectors;
nothing is embedded: ``real-100000`` holds 77,289 chunks, so ``--records`` above that takes them
all) in a store built through ``add_texts`` with those vectors (``--store-dir`` keeps it for the
next run). p50 and p90 of vector, lexical and hybrid search, k=10, texts read back, over held-out
query sentences whose vectors are cached too; and of the two rankings alone (``Engine.search_ids``;
the engine's private BM25 ranking). Each search runs its own pass over the queries on a freshly
opened store (``time_passes`` says why), ``--rounds`` rounds in alternating order. Then two fresh
processes: one opens the store and runs every query through every search; one reads the same
texts and builds LangChain's BM25Retriever over them (and times it on ``--bm25-queries``
queries); each reports its memory before and after (resident, anonymous, file-backed;
``--tracemalloc`` also the Python heap).

Targets (issue 16): hybrid >= the better of vector and lexical on every metric overall; on
identifier queries hybrid hit@1 >= 0.9; hybrid >= EnsembleRetriever on every metric; at 100,000
records lexical p50 <= 5 ms and hybrid p50 <= vector p50 + 5 ms; no texts held in RAM.

Writes ``benchmarks/results/hybrid.json`` after a full run (both parts, not ``--quick``), else
``benchmarks/results/tmp/hybrid-<part>[-quick].json``; the ranked ids of every query go to
``benchmarks/results/tmp/hybrid-queries.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

sys.path.insert(0, str(Path(__file__).parent))

import real_corpus
from hybrid_eval import metrics

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DATASET = HERE / "hybrid_eval" / "dataset.json"
CACHE = HERE / ".cache"
K = 10
BATCH = 10_000
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
KINDS = ("keyword", "question", "identifier", "paraphrase")
WEIGHTS = (0.3, 0.5, 0.6, 0.8)  # besides the default 0.7
STORE_METHODS = {"lexical": "lexical_search_with_score", "hybrid": "hybrid_search_with_score"}

Ranker = Callable[[str], list[str]]


class TableEmbeddings(Embeddings):
    """Vectors looked up by text; texts not in the tables go to ``fallback`` (or raise KeyError).

    ``model_name`` is what a store records: the model that made the vectors.
    """

    def __init__(
        self,
        tables: Sequence[tuple[Sequence[str], np.ndarray]],
        fallback: Embeddings | None = None,
        model_name: str = MODEL_NAME,
    ) -> None:
        self.rows: dict[str, tuple[np.ndarray, int]] = {}
        for texts, vectors in tables:
            for row, text in enumerate(texts):
                self.rows.setdefault(text, (vectors, row))
        self.fallback = fallback
        self.model_name = model_name

    def _one(self, text: str, *, query: bool) -> list[float]:
        if text in self.rows:
            vectors, row = self.rows[text]
            return [float(x) for x in vectors[row].tolist()]
        if self.fallback is None:
            raise KeyError(f"no vector for {text[:60]!r}")
        return self.fallback.embed_query(text) if query else self.fallback.embed_documents([text])[0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t, query=False) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text, query=True)


def machine() -> str:
    return f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}"


def mib(n: float) -> float:
    return n / 2**20


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


# ------------------------------------------------------------------------------------ quality


def load_dataset(path: Path) -> tuple[dict[str, Any], str]:
    raw = path.read_bytes()
    return json.loads(raw), hashlib.sha256(raw).hexdigest()


def chunk_vectors(texts: list[str], model: Embeddings) -> tuple[np.ndarray, float, bool]:
    """The chunks' vectors, from the cache when it holds these texts'; else embedded and cached."""
    digest = hashlib.sha256(json.dumps(texts).encode()).hexdigest()
    stem = CACHE / f"hybrid-eval-{digest[:16]}"
    npy, meta_path = stem.with_suffix(".npy"), stem.with_suffix(".json")
    if npy.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        vectors = np.load(npy, allow_pickle=False)
        if (
            meta.get("texts_sha256") == digest
            and meta.get("model") == MODEL_NAME
            and len(vectors) == len(texts)
        ):
            return vectors, float(meta["embed_s"]), True
    t0 = time.perf_counter()
    vectors = np.asarray(model.embed_documents(texts), dtype=np.float32)
    seconds = time.perf_counter() - t0
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(npy, vectors, allow_pickle=False)
    meta_path.write_text(
        json.dumps({"texts_sha256": digest, "model": MODEL_NAME, "count": len(texts), "embed_s": seconds})
    )
    return vectors, seconds, False


def store_ranker(store: Any, method: str) -> Ranker | None:
    fn = getattr(store, method, None)
    if fn is None:
        return None
    return lambda q: [doc.id for doc, _ in fn(q, k=K)]


def word_tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def langchain_rankers(
    store: Any, texts: list[str], ids: list[str], metadatas: list[dict[str, Any]]
) -> dict[str, Ranker]:
    """EnsembleRetriever and BM25Retriever as LangChain packages them, and with word tokens."""
    from langchain_community.retrievers import BM25Retriever

    try:
        from langchain_classic.retrievers import EnsembleRetriever
    except ImportError:  # LangChain before the langchain-classic split
        from langchain.retrievers import EnsembleRetriever  # type: ignore[no-redef]

    id_of = dict(zip(texts, ids, strict=True))

    def ranked(docs: Sequence[Any]) -> list[str]:
        return [d.id or id_of[d.page_content] for d in docs][:K]

    def ranker(retriever: Any) -> Ranker:
        return lambda q: ranked(retriever.invoke(q))

    out: dict[str, Ranker] = {}
    variants: tuple[tuple[str, dict[str, Any]], ...] = (
        ("", {}),
        (" (words)", {"preprocess_func": word_tokens}),
    )
    for suffix, kwargs in variants:
        bm25 = BM25Retriever.from_texts(texts, metadatas=metadatas, ids=ids, k=K, **kwargs)
        ensemble = EnsembleRetriever(
            retrievers=[bm25, store.as_retriever(search_kwargs={"k": K})], weights=[0.5, 0.5]
        )
        out[f"ensemble{suffix}"] = ranker(ensemble)
        out[f"bm25{suffix}"] = ranker(bm25)
    return out


def run_quality(args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from langchain_memvid import MemvidVectorStore, SentenceTransformerEmbeddings

    data, digest = load_dataset(args.dataset)
    chunks, queries = data["chunks"], data["queries"]
    texts = [c["text"] for c in chunks]
    ids = [c["id"] for c in chunks]
    metadatas = [c["metadata"] for c in chunks]
    if data["python"] != platform.python_version():
        print(f"note: the data set's text came from Python {data['python']}", file=sys.stderr)

    model = SentenceTransformerEmbeddings()
    vectors, embed_s, cached = chunk_vectors(texts, model)
    print(
        f"quality: {len(chunks):,} chunks ({'cached vectors' if cached else f'embedded in {embed_s:.0f} s'})",
        file=sys.stderr,
    )
    qtexts = [q["query"] for q in queries]
    model.embed_query("warm up")
    q_ms = []
    qrows = []
    for q in qtexts:
        t0 = time.perf_counter()
        qrows.append(model.embed_query(q))
        q_ms.append((time.perf_counter() - t0) * 1000)
    qvectors = np.asarray(qrows, dtype=np.float32)

    root = Path(tempfile.mkdtemp(prefix="memvid-hybrid-quality-"))
    try:
        embedding = TableEmbeddings([(texts, vectors), (qtexts, qvectors)], fallback=model)
        t0 = time.perf_counter()
        store = MemvidVectorStore(root / "store", embedding)
        store.add_texts(texts, metadatas=metadatas, ids=ids)
        build_s = time.perf_counter() - t0
        rankers: dict[str, Ranker | None] = {
            "vector": store_ranker(store, "similarity_search_with_score"),
            **{name: store_ranker(store, method) for name, method in STORE_METHODS.items()},
        }
        if rankers["hybrid"] is not None:  # the lexical weight, swept to choose the default by measurement
            for w in WEIGHTS:
                rankers[f"hybrid w={w}"] = (
                    lambda q, w=w: [d.id for d, _ in store.hybrid_search_with_score(q, k=K, weight=w)]
                )
        rankers.update(langchain_rankers(store, texts, ids, metadatas))
        methods: dict[str, Any] = {}
        per_query: list[dict[str, Any]] = [
            {"id": q["id"], "kind": q["kind"], "query": q["query"], "relevant": q["relevant"], "ranked": {}}
            for q in queries
        ]
        for name, rank in rankers.items():
            if rank is None:
                methods[name] = {"available": False}
                print(f"  {name}: not available", file=sys.stderr)
                continue
            rank(qtexts[0])  # first-call costs
            scored, times = [], []
            for q, row in zip(queries, per_query, strict=True):
                t0 = time.perf_counter()
                got = rank(q["query"])
                times.append((time.perf_counter() - t0) * 1000)
                row["ranked"][name] = got
                scored.append((q["kind"], metrics.score(got, set(q["relevant"]))))
            methods[name] = {
                "available": True,
                **metrics.aggregate(scored),
                "p50_ms": statistics.median(times),
            }
            print(
                f"  {name}: nDCG@10 {methods[name]['overall']['ndcg@10']:.3f}, p50 {statistics.median(times):.1f} ms",
                file=sys.stderr,
            )
        store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "dataset": {
            "path": str(args.dataset.relative_to(HERE.parent))
            if args.dataset.is_relative_to(HERE.parent)
            else str(args.dataset),
            "sha256": digest,
            "python": data["python"],
            "chunks": len(chunks),
            "text_chars": data["counts"]["text_chars"],
            "queries": len(queries),
            "queries_by_kind": data["counts"]["queries_by_kind"],
        },
        "k": K,
        "model": MODEL_NAME,
        "embed_query_p50_ms": statistics.median(q_ms),
        "chunk_embedding_s": embed_s,
        "store_build_s": build_s,
        "methods": methods,
    }
    return result, per_query


# -------------------------------------------------------------------------------------- speed

CHILD = r"""
import json, os, sys, time
kind, path, qfile, n_records, n_queries, trace = sys.argv[1:7]
n_records, n_queries, trace = int(n_records), int(n_queries), trace == "1"
def mem():
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS", "RssAnon", "RssFile")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out
import statistics, tracemalloc, warnings
warnings.filterwarnings("ignore")
import numpy as np
q = json.loads(open(qfile).read())
texts, vectors = q["texts"][:n_queries], np.asarray(q["vectors"], dtype=np.float32)
out = {}
if kind == "store":
    from langchain_core.embeddings import Embeddings
    from langchain_memvid import MemvidVectorStore
    import cv2, zxingcpp  # the frame decoders, loaded by the first read: an import, not the store
    class Lookup(Embeddings):
        model_name = q["model"]
        rows = {t: i for i, t in enumerate(q["texts"])}
        def embed_documents(self, ts): return [vectors[self.rows[t]].tolist() for t in ts]
        def embed_query(self, t): return vectors[self.rows[t]].tolist()
    if trace: tracemalloc.start()
    before = mem()
    t0 = time.perf_counter()
    store = MemvidVectorStore(path, Lookup())
    out["open_s"] = time.perf_counter() - t0
    fns = [store.similarity_search_with_score]
    fns += [getattr(store, m) for m in ("lexical_search_with_score", "hybrid_search_with_score") if hasattr(store, m)]
    out["methods"] = [f.__name__ for f in fns]
    for t in texts:
        for f in fns:
            f(t, k=10)
else:
    from langchain_community.retrievers import BM25Retriever
    import rank_bm25
    if trace: tracemalloc.start()
    before = mem()
    with open(path, encoding="utf-8") as fh:
        docs = [json.loads(line)["text"] for _, line in zip(range(n_records), fh)]
    out["after_texts"] = mem()
    t0 = time.perf_counter()
    bm25 = BM25Retriever.from_texts(docs, ids=[f"c{i}" for i in range(len(docs))], k=10)
    out["build_s"] = time.perf_counter() - t0
    times = []
    for t in texts:
        t0 = time.perf_counter()
        bm25.invoke(t)
        times.append((time.perf_counter() - t0) * 1000)
    out["p50_ms"] = statistics.median(times)
    out["queries"] = len(times)
after = mem()
if trace:
    current, peak = tracemalloc.get_traced_memory()
    out["traced_mib"] = {"current": current / 2**20, "peak": peak / 2**20}
out["before"], out["after"] = before, after
out["delta_mib"] = {k: after[k] - before[k] for k in after}
print(json.dumps(out))
"""


def child(kind: str, path: Path, qfile: Path, n_records: int, n_queries: int, trace: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            kind,
            str(path),
            str(qfile),
            str(n_records),
            str(n_queries),
            "1" if trace else "0",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} process failed:\n{done.stderr[-3000:]}")
    got: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    got["wall_s"] = time.perf_counter() - t0
    return got


def build_store(path: Path, texts: list[str], metas: list[dict[str, Any]], embedding: Embeddings) -> float:
    from langchain_memvid import MemvidVectorStore

    t0 = time.perf_counter()
    with MemvidVectorStore(path, embedding) as store:
        for start in range(0, len(texts), BATCH):
            stop = min(start + BATCH, len(texts))
            store.add_texts(
                texts[start:stop], metadatas=metas[start:stop], ids=[f"c{i}" for i in range(start, stop)]
            )
            print(f"  added {stop:,} records, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        store.compact()  # one catalog and files as a finished ingest leaves them
    return time.perf_counter() - t0


def search_fns(store: Any, embedding: Embeddings) -> dict[str, Callable[[str], Any]]:
    """The searches timed, by name, k=10; those the store lacks are left out.

    "vector ranking" and "lexical ranking" stop before the texts are read from the video:
    ``Engine.search_ids``, and the engine's private BM25 ranking when it has one.
    """
    fns: dict[str, Callable[[str], Any]] = {}
    for name, method in {"vector": "similarity_search_with_score", **STORE_METHODS}.items():
        fn = getattr(store, method, None)
        if fn is not None:
            fns[name] = partial(fn, k=K)
    engine = store.engine
    fns["vector ranking"] = lambda q: engine.search_ids(embedding.embed_query(q), K)
    ranking = getattr(engine, "_lexical_ranking", None)
    if ranking is not None and "lexical" in fns:
        fns["lexical ranking"] = lambda q: ranking(q, K, None)
    return fns


def time_passes(
    path: Path, embedding: Embeddings, queries: list[str], *, warm: str, rounds: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Milliseconds of each search over every query, and of its first call on an opened store.

    Each search runs its own pass over the queries on a freshly opened store, after one warm-up
    query (``warm``). Passes do not share a query: the store keeps the packs it decoded last, so
    a search run right after another on the same query would find its texts already decoded.
    Rounds alternate the order of the passes, so that load drifting on a shared machine reaches
    every search alike.
    """
    from langchain_memvid import MemvidVectorStore

    with MemvidVectorStore(path, embedding) as store:
        names = list(search_fns(store, embedding))
    times: dict[str, list[float]] = {name: [] for name in names}
    first: dict[str, float] = {}
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            with MemvidVectorStore(path, embedding) as store:
                fn = search_fns(store, embedding)[name]
                t0 = time.perf_counter()
                fn(warm)  # first-call costs: a lexicon loaded lazily shows here
                first.setdefault(name, (time.perf_counter() - t0) * 1000)
                for q in queries:
                    t0 = time.perf_counter()
                    fn(q)
                    times[name].append((time.perf_counter() - t0) * 1000)
    return times, first


def run_speed(args: argparse.Namespace) -> dict[str, Any]:
    from langchain_memvid import MemvidVectorStore

    texts, metas, vectors = real_corpus.load_cached(f"real-{real_corpus.DEFAULT_N}")
    all_qtexts, _, all_qvectors = real_corpus.load_cached(f"real-{real_corpus.DEFAULT_N}-queries-200-seed0")
    n = min(args.records, len(texts))
    texts, metas, vectors = texts[:n], metas[:n], vectors[:n]
    qtexts, qvectors = all_qtexts[: args.queries], all_qvectors[: args.queries]
    text_bytes = sum(len(t.encode()) for t in texts)
    embedding = TableEmbeddings([(texts, vectors), (qtexts, qvectors)])

    root = args.store_dir or Path(tempfile.mkdtemp(prefix="memvid-hybrid-speed-"))
    path = root / f"real-{n}"
    result: dict[str, Any] = {"records": n, "text_bytes": text_bytes, "queries": len(qtexts), "k": K}
    try:
        reused = (path / "catalog.sqlite").exists()
        if reused:
            with MemvidVectorStore(path, embedding) as store:
                if len(store) != n:
                    raise SystemExit(
                        f"{path} holds {len(store):,} records, not {n:,}; remove it or pass another --store-dir"
                    )
            print(f"speed: reusing {path}", file=sys.stderr)
        else:
            print(f"speed: building a store of {n:,} records in {path}", file=sys.stderr)
            result["build_s"] = build_store(path, texts, metas, embedding)
        result["store_reused"] = reused
        result["disk_bytes"] = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

        times, first = time_passes(path, embedding, qtexts, warm=texts[0], rounds=args.rounds)
        result["available"] = {name: name in times for name in ("vector", *STORE_METHODS)}
        result["rounds"] = args.rounds
        result["first_query_ms"] = first
        result["p50_ms"] = {name: statistics.median(t) for name, t in times.items()}
        result["p90_ms"] = {name: percentile(t, 90) for name, t in times.items()}

        qfile = root / f"queries-{n}.json"
        qfile.write_text(json.dumps({"texts": qtexts, "vectors": qvectors.tolist(), "model": MODEL_NAME}))
        jsonl = CACHE / f"real-{real_corpus.DEFAULT_N}.jsonl"
        print("speed: memory of a process with the store, then with BM25Retriever", file=sys.stderr)
        memory = {
            "store": child("store", path, qfile, n, len(qtexts), args.tracemalloc),
            "bm25": child("bm25", jsonl, qfile, n, min(args.bm25_queries, len(qtexts)), args.tracemalloc),
        }
        result["memory"] = memory
        result["bm25"] = {
            "build_s": memory["bm25"]["build_s"],
            "p50_ms": memory["bm25"]["p50_ms"],
            "queries": memory["bm25"]["queries"],
        }
    finally:
        if args.store_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    return result


# ------------------------------------------------------------------------------ targets, output


def targets(quality: dict[str, Any] | None, speed: dict[str, Any] | None) -> list[list[Any]]:
    """[target, measured, met] rows; met is None when a method is not available to measure."""
    rows: list[list[Any]] = []
    if quality:
        m = quality["methods"]
        have = {name for name, got in m.items() if got.get("available")}
        for metric in metrics.METRICS:
            goal = f"hybrid {metric} >= max(vector, lexical), overall"
            if {"hybrid", "vector", "lexical"} <= have:
                best = max(m["vector"]["overall"][metric], m["lexical"]["overall"][metric])
                got = m["hybrid"]["overall"][metric]
                rows.append([goal, f"{got:.3f} vs {best:.3f}", got >= best])
            else:
                rows.append([goal, "not available", None])
        goal = "hybrid hit@1 >= 0.9 on identifier queries"
        if "hybrid" in have:
            got = m["hybrid"]["by_kind"]["identifier"]["hit@1"]
            rows.append([goal, f"{got:.3f}", got >= 0.9])
        else:
            rows.append([goal, "not available", None])
        for metric in metrics.METRICS:
            goal = f"hybrid {metric} >= EnsembleRetriever's, overall"
            if {"hybrid", "ensemble"} <= have:
                theirs = m["ensemble"]["overall"][metric]
                got = m["hybrid"]["overall"][metric]
                words = m.get("ensemble (words)", {}).get("overall", {}).get(metric)
                extra = f"; with word tokens {words:.3f}" if words is not None else ""
                rows.append([goal, f"{got:.3f} vs {theirs:.3f}{extra}", got >= theirs])
            else:
                rows.append([goal, "not available", None])
    if speed:
        p50, n = speed["p50_ms"], speed["records"]
        goal = f"lexical p50 <= 5 ms at {n:,} records"
        if "lexical" in p50:
            rows.append([goal, f"{p50['lexical']:.2f} ms", p50["lexical"] <= 5])
        else:
            rows.append([goal, "not available", None])
        goal = f"hybrid p50 <= vector p50 + 5 ms at {n:,} records"
        if "hybrid" in p50:
            rows.append(
                [goal, f"{p50['hybrid']:.2f} vs {p50['vector']:.2f} ms", p50["hybrid"] <= p50["vector"] + 5]
            )
        else:
            rows.append([goal, "not available", None])
        mem = speed["memory"]
        ours, theirs = mem["store"]["delta_mib"], mem["bm25"]["delta_mib"]
        goal = "no texts held in RAM: the store's memory beside BM25Retriever's"
        rows.append(
            [
                goal,
                f"store +{ours['VmRSS']:.0f} MiB ({ours['RssAnon']:.0f} anonymous); BM25Retriever "
                f"+{theirs['VmRSS']:.0f} MiB; raw text {mib(speed['text_bytes']):.0f} MiB",
                ours["VmRSS"] < theirs["VmRSS"],
            ]
        )
    return rows


def print_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    for row in (head, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def show_quality(q: dict[str, Any]) -> None:
    d = q["dataset"]
    print(
        f"\nQuality, k={q['k']}: {d['chunks']:,} chunks, {d['queries']} queries "
        f"({', '.join(f'{k} {n}' for k, n in d['queries_by_kind'].items())}), text from Python {d['python']}"
    )
    head = ("method", "hit@1", "hit@5", "MRR@10", "nDCG@10", "p50 ms")
    for block in ("overall", "macro", *KINDS):
        rows = []
        for name, got in q["methods"].items():
            if not got["available"]:
                rows.append((name, "not available", "", "", "", ""))
                continue
            s = got[block] if block in ("overall", "macro") else got["by_kind"].get(block)
            if s is None:
                continue
            rows.append((name, *(f"{s[m]:.3f}" for m in metrics.METRICS), f"{got['p50_ms']:.1f}"))
        label = {"overall": "overall (every query)", "macro": "macro (every kind)"}.get(
            block, f"{block} queries"
        )
        print(f"\n{label}")
        print_table(head, rows)


def show_speed(s: dict[str, Any]) -> None:
    print(
        f"\nSpeed at {s['records']:,} records ({mib(s['text_bytes']):.0f} MiB of text), {s['queries']} queries, k={s['k']}"
    )
    rows: list[tuple[str, ...]] = []
    for name in ("vector", *STORE_METHODS, "vector ranking", "lexical ranking"):
        if name in s["p50_ms"]:
            rows.append(
                (
                    name,
                    f"{s['p50_ms'][name]:.2f}",
                    f"{s['p90_ms'][name]:.2f}",
                    f"{s['first_query_ms'][name]:.1f}",
                )
            )
        else:
            rows.append((name, "not available", "", ""))
    b = s["bm25"]
    rows.append((f"BM25Retriever ({b['queries']} queries)", f"{b['p50_ms']:.2f}", "", ""))
    print_table(("search", "p50 ms", "p90 ms", "first query ms"), rows)
    if "build_s" in s:
        print(f"store built in {s['build_s']:.0f} s; BM25Retriever built in {b['build_s']:.1f} s")
    print("\nMemory of a fresh process, MiB (after minus before)")
    rows = []
    for name, label in (
        ("store", "store: open + every query"),
        ("bm25", "BM25Retriever: texts + build + queries"),
    ):
        got = s["memory"][name]
        delta = got["delta_mib"]
        traced = got.get("traced_mib")
        rows.append(
            (
                label,
                f"{delta['VmRSS']:.0f}",
                f"{delta.get('RssAnon', 0):.0f}",
                f"{delta.get('RssFile', 0):.0f}",
                f"{traced['current']:.0f} / {traced['peak']:.0f}" if traced else "-",
            )
        )
    print_table(("process", "RSS", "anon", "file", "Python heap now / peak"), rows)
    after_texts = s["memory"]["bm25"].get("after_texts")
    if after_texts:
        before = s["memory"]["bm25"]["before"]
        print(
            f"(of BM25Retriever's, reading the texts alone: {after_texts['VmRSS'] - before['VmRSS']:.0f} MiB RSS)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "quality", "speed"), default="all")
    parser.add_argument(
        "--records", type=int, default=100_000, help="speed: records (at most the cached 77,289)"
    )
    parser.add_argument("--queries", type=int, default=200, help="speed: queries (at most 200)")
    parser.add_argument("--rounds", type=int, default=2, help="speed: passes over the queries per search")
    parser.add_argument("--bm25-queries", type=int, default=30, help="speed: queries timed on BM25Retriever")
    parser.add_argument("--quick", action="store_true", help="speed at 10,000 records, 100 queries")
    parser.add_argument(
        "--store-dir",
        type=Path,
        default=None,
        help="speed: build the store here and keep it; reused when there",
    )
    parser.add_argument(
        "--tracemalloc", action="store_true", help="speed: also trace the Python heap (slow for BM25)"
    )
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--out", type=Path, default=None, help="the results file")
    args = parser.parse_args()
    if args.quick:
        args.records, args.queries, args.bm25_queries = min(args.records, 10_000), min(args.queries, 100), 20
    warnings.filterwarnings("ignore")
    started = time.perf_counter()

    result: dict[str, Any] = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "quick": args.quick}
    quality = speed = None
    if args.part in ("all", "quality"):
        quality, per_query = run_quality(args)
        result["quality"] = quality
        detail = RESULTS / "tmp" / "hybrid-queries.json"
        detail.parent.mkdir(parents=True, exist_ok=True)
        detail.write_text(json.dumps(per_query, indent=1) + "\n")
    if args.part in ("all", "speed"):
        speed = run_speed(args)
        result["speed"] = speed
    result["targets"] = targets(quality, speed)
    result["run_s"] = time.perf_counter() - started

    if quality:
        show_quality(quality)
    if speed:
        show_speed(speed)
    print("\nTargets (issue 16)")
    met = {True: "yes", False: "NO", None: "n/a"}
    print_table(("target", "measured", "met"), [(t, m, met[ok]) for t, m, ok in result["targets"]])
    full = args.part == "all" and not args.quick
    out = args.out or (
        RESULTS / "hybrid.json"
        if full
        else RESULTS / "tmp" / f"hybrid-{args.part}{'-quick' if args.quick else ''}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out} ({result['run_s']:.0f} s)")


if __name__ == "__main__":
    main()
