"""Which lexical index: our own postings on numpy, SQLite FTS5 (contentless), or bm25s.

One run over the same real chunks (benchmarks/real_corpus.py's cache, cycled up to --records)
and the same queries: bytes kept, build time, open time, query p50/p90 for k=10, and whether a
delete can be done without the record's text (the texts live only in the video). Prints a table
and writes benchmarks/results/lexical_choice.json.

    python benchmarks/bench_lexical_choice.py             # 100,000 records
    python benchmarks/bench_lexical_choice.py --records 20000
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from langchain_memvid.engine.search.lexicon import LexicalIndex, build_lexicon
from langchain_memvid.engine.search.tokens import tokenize

CACHE = Path(__file__).parent / ".cache"
RESULTS = Path(__file__).parent / "results" / "lexical_choice.json"
SEGMENT = 4096


def load(records: int) -> tuple[list[str], list[str]]:
    texts = [json.loads(line)["text"] for line in (CACHE / "real-100000.jsonl").open()]
    queries = [json.loads(line)["text"] for line in (CACHE / "real-100000-queries-200-seed0.jsonl").open()]
    cycled = (texts * (records // len(texts) + 1))[:records]
    # Short queries too: identifiers and a few words, as people type them.
    short = [" ".join(tokenize(q)[:3]) for q in queries]
    return cycled, queries + short


def timed(fn: Callable[[str], object], queries: list[str]) -> dict[str, float]:
    lat = []
    for q in queries:
        start = time.perf_counter()
        fn(q)
        lat.append(time.perf_counter() - start)
    return {"p50_ms": statistics.median(lat) * 1e3, "p90_ms": float(np.percentile(lat, 90)) * 1e3}


def ours(texts: list[str], queries: list[str]) -> dict[str, object]:
    start = time.perf_counter()
    blobs = {
        n + 1: build_lexicon(np.arange(s, min(s + SEGMENT, len(texts))), texts[s : s + SEGMENT])
        for n, s in enumerate(range(0, len(texts), SEGMENT))
    }
    build = time.perf_counter() - start
    index = LexicalIndex()
    start = time.perf_counter()
    index.follow(list(blobs), lambda seqs: {s: blobs[s] for s in seqs})
    opened = time.perf_counter() - start
    live = np.ones(len(texts), bool)

    def query(q: str) -> object:
        return index.search(q, 10, live_key=1, is_live=lambda v: live[v])

    return {
        "bytes": sum(map(len, blobs.values())),
        "build_s": build,
        "open_s": opened,
        **timed(query, queries),
        "delete_without_text": True,
        "cjk": "character bigrams",
    }


def fts5(texts: list[str], queries: list[str]) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fts.sqlite"
        db = sqlite3.connect(path)
        db.execute("CREATE VIRTUAL TABLE f USING fts5(text, content='', tokenize='unicode61')")
        start = time.perf_counter()
        with db:
            db.executemany("INSERT INTO f (rowid, text) VALUES (?, ?)", enumerate(texts))
        db.execute("INSERT INTO f (f) VALUES ('optimize')")
        db.commit()
        build = time.perf_counter() - start
        size = path.stat().st_size

        def query(q: str) -> object:
            words = " OR ".join('"' + w.replace('"', '""') + '"' for w in dict.fromkeys(tokenize(q)))
            if not words:
                return []
            return db.execute("SELECT rowid, bm25(f) FROM f WHERE f MATCH ? ORDER BY rank LIMIT 10", (words,)).fetchall()

        out = timed(query, queries)
        db.close()
    return {
        "bytes": size,
        "build_s": build,
        "open_s": 0.0,
        **out,
        # A contentless table deletes a row only when given its original text; SQLite 3.43's
        # contentless_delete lifts that, and this machine has 3.40.
        "delete_without_text": sqlite3.sqlite_version_info >= (3, 43),
        "cjk": "unicode61: a run of CJK is one token",
    }


def bm25s_index(texts: list[str], queries: list[str]) -> dict[str, object]:
    import bm25s

    start = time.perf_counter()
    retriever = bm25s.BM25(k1=1.2, b=0.75)
    retriever.index([tokenize(t) for t in texts], show_progress=False)
    build = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        retriever.save(tmp)
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
    vocab = retriever.vocab_dict

    def query(q: str) -> object:
        words = [w for w in dict.fromkeys(tokenize(q)) if w in vocab]
        if not words:
            return []
        return retriever.get_scores(words).argsort()[-10:]

    return {
        "bytes": size,
        "build_s": build,
        "open_s": None,
        **timed(query, queries),
        "delete_without_text": False,  # an immutable matrix: a delete means re-indexing every text
        "cjk": "our tokenizer",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    texts, queries = load(args.records)
    text_bytes = sum(len(t.encode()) for t in texts)
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        "records": len(texts),
        "text_bytes": text_bytes,
        "queries": len(queries),
    }
    for name, fn in (("ours (numpy postings)", ours), ("SQLite FTS5 contentless", fts5), ("bm25s", bm25s_index)):
        try:
            results[name] = fn(texts, queries)
        except ImportError as e:
            results[name] = {"skipped": str(e)}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{len(texts):,} records, {text_bytes / 1e6:.1f} MB of text, {len(queries)} queries, k=10")
    print(f"{'index':<26} {'MB':>7} {'x text':>7} {'build s':>8} {'p50 ms':>7} {'p90 ms':>7}  delete w/o text  CJK")
    for name, r in results.items():
        if isinstance(r, dict) and "bytes" in r:
            print(
                f"{name:<26} {r['bytes'] / 1e6:7.2f} {r['bytes'] / text_bytes:7.3f} {r['build_s']:8.1f} "
                f"{r['p50_ms']:7.2f} {r['p90_ms']:7.2f}  {r['delete_without_text']!s:<15}  {r['cjk']}"
            )


if __name__ == "__main__":
    main()
