"""Storage-engine benchmark (issue: the engine): size, build speed, read latency, exactness.

Corpus: the English text of CPython's ``pydoc_data/topics.py`` cut into ~500-character chunks
(RecursiveCharacterTextSplitter), with a deterministic fake embedding so only storage is measured.
Then a synthetic scale run (default 100,000 records) checks that build memory stays flat and that
read latency holds.

    python benchmarks/bench_storage.py                 # corpus + 100k scale run
    python benchmarks/bench_storage.py --scale 0       # corpus only

Prints a table beside the targets and the anchors (../shared/notes/anchors.md) and writes
``benchmarks/results/storage.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pydoc_data.topics
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from langchain_text_splitters import RecursiveCharacterTextSplitter

from langchain_memvid.engine import Engine, Record, rebuild_store

RESULTS = Path(__file__).parent / "results"


def rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def fake_vectors(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def corpus_chunks() -> list[str]:
    text = "\n\n".join(pydoc_data.topics.topics.values())
    return RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=0).split_text(text)


def read_latencies(path: Path, ids: list[str], n: int = 300) -> list[float]:
    """Milliseconds to get one record, each from a freshly opened store."""
    random.seed(1)
    out = []
    for rid in random.sample(ids, min(n, len(ids))):
        engine = Engine(path)  # opening loads vectors and segment dictionaries (timed separately)
        t0 = time.perf_counter()
        engine.get([rid])
        out.append((time.perf_counter() - t0) * 1000)
        engine.close()
    return out


def bench_corpus(root: Path) -> dict:
    chunks = corpus_chunks()
    records = [Record(f"c{i}", c, {"source": "topics.py", "chunk_index": i}) for i, c in enumerate(chunks)]
    raw = sum(len(c.encode()) for c in chunks)
    vectors = fake_vectors(len(records))
    path = root / "corpus"
    engine = Engine(path, model="fake-384")
    t0 = time.perf_counter()
    engine.add(records, vectors)
    build_s = time.perf_counter() - t0
    stats = engine.stats()
    engine.close()
    t0 = time.perf_counter()
    Engine(path).close()
    open_ms = (time.perf_counter() - t0) * 1000
    lat = read_latencies(path, [r.id for r in records])
    engine = Engine(path)
    t0 = time.perf_counter()
    n = sum(1 for _ in engine.iter_records())
    seq_rate = n / (time.perf_counter() - t0)
    engine.close()
    # Exactness from the video alone: drop the catalog and the vector files, rebuild, compare.
    alone = root / "video-only"
    shutil.copytree(path, alone)
    (alone / "catalog.sqlite").unlink()
    for f in (alone / "segments").glob("*.faiss"):
        f.unlink()
    report = rebuild_store(alone, embed=lambda texts: fake_vectors(len(texts)))
    engine = Engine(alone)
    back = {r.id: r for r in engine.iter_records()}
    exact = sum(back.get(r.id) == r for r in records)
    engine.close()
    return {
        "chunks": len(records),
        "text_bytes": raw,
        "video_bytes": stats["video_bytes"],
        "video_to_text": stats["video_bytes"] / raw,
        "index_bytes": stats["index_bytes"],
        "frames": stats["frames"],
        "build_chunks_per_s": len(records) / build_s,
        "open_ms": open_ms,
        "read_p50_ms": statistics.median(lat),
        "read_p99_ms": float(np.percentile(lat, 99)),
        "sequential_records_per_s": seq_rate,
        "exact_from_video": exact,
        "rebuild_lost_frames": report.lost_frames,
    }


def synthetic_texts(n: int, seed: int, vocab: list[str]) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(vocab, k=rng.randint(60, 100))) for _ in range(n)]


def bench_scale(root: Path, n: int, batch: int = 10_000) -> dict:
    vocab = sorted(set(" ".join(corpus_chunks()).split()))
    path = root / "scale"
    engine = Engine(path, model="fake-384")
    rss = []
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        texts = synthetic_texts(min(batch, n - start), start, vocab)
        recs = [Record(f"s{start + i}", t, {"batch": start // batch}) for i, t in enumerate(texts)]
        engine.add(recs, fake_vectors(len(recs), seed=start))
        rss.append(rss_mb())
    build_s = time.perf_counter() - t0
    stats = engine.stats()
    engine.close()
    t0 = time.perf_counter()
    Engine(path).close()
    open_ms = (time.perf_counter() - t0) * 1000
    lat = read_latencies(path, [f"s{i}" for i in range(n)], n=200)
    return {
        "records": n,
        "build_records_per_s": n / build_s,
        "rss_mb_after_each_batch": [round(x, 1) for x in rss],
        "rss_growth_mb_second_to_last_batch": round(rss[-1] - rss[1], 1) if len(rss) > 1 else 0.0,
        # The flat index keeps every vector in RAM by design (n x 384 float32); the rest is the
        # build's own working memory, which must not grow with n.
        "vectors_in_ram_growth_mb": round(max(0, n - 2 * batch) * 384 * 4 / 2**20, 1),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "video_to_text": stats["video_to_text"],
        "open_ms": open_ms,
        "read_p50_ms": statistics.median(lat),
        "read_p99_ms": float(np.percentile(lat, 99)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=100_000, help="records in the scale run (0 skips it)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="memvid-bench-"))
    try:
        corpus = bench_corpus(root)
        scale = bench_scale(root, args.scale) if args.scale else None
    finally:
        shutil.rmtree(root, ignore_errors=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    rows = [
        ("video bytes / text bytes", f"{corpus['video_to_text']:.3f}", "<= 0.6", "32", "1,035"),
        ("build, chunks/s", f"{corpus['build_chunks_per_s']:.0f}", ">= 1,000", "~2", "~5"),
        ("one record, fresh open, p50 ms", f"{corpus['read_p50_ms']:.2f}", "<= 2", "150-630 (search)", "-"),
        ("open the store, ms", f"{corpus['open_ms']:.1f}", "-", "-", "-"),
        ("sequential read, records/s", f"{corpus['sequential_records_per_s']:,.0f}", ">= 10,000", "-", "-"),
        (
            "byte-exact from video alone",
            f"{corpus['exact_from_video']}/{corpus['chunks']}",
            "100 %",
            "0/1,056",
            "533/938",
        ),
    ]
    if scale:
        rows += [
            (
                f"{scale['records']:,} records: build records/s",
                f"{scale['build_records_per_s']:.0f}",
                "-",
                "-",
                "-",
            ),
            (
                "  RSS growth, batch 2 -> last (MiB)",
                f"{scale['rss_growth_mb_second_to_last_batch']}",
                "flat",
                "-",
                "-",
            ),
            ("  of which vectors held for search", f"{scale['vectors_in_ram_growth_mb']}", "-", "-", "-"),
            ("  open the store, ms", f"{scale['open_ms']:.0f}", "-", "-", "-"),
            ("  one record p50 ms", f"{scale['read_p50_ms']:.2f}", "<= 2", "-", "-"),
            ("  video bytes / text bytes", f"{scale['video_to_text']:.3f}", "-", "-", "-"),
        ]
    print(
        f"\nStorage benchmark on {machine}; corpus: {corpus['chunks']} chunks, {corpus['text_bytes']:,} bytes"
    )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    head = ("figure", "ours", "target", "memvid 0.1.3", "langchain-memvid 0.1.11")
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=False)]
    for row in (head, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)))
    RESULTS.mkdir(exist_ok=True)
    out = {"machine": machine, "corpus": corpus, "scale": scale, "when": time.strftime("%Y-%m-%d")}
    (RESULTS / "storage.json").write_text(json.dumps(out, indent=2))
    print(f"\nwrote {RESULTS / 'storage.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
