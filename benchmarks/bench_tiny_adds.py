"""Tiny-document benchmark (issue #12, item 10): one ``add_texts`` of 10,000 and of 100,000 tiny texts.

Packing must be linear in the records added, so 100,000 tiny documents should take about ten
times as long as 10,000. By default the texts are numbered notes of 10-30 characters
(``tiny document number 42``) and the ids are the caller's own sequential ids (``doc-000042``):
together they compress so well that a pack holds thousands of records, which is where a packer
that recompressed the pack once per added record went quadratic in the pack. ``--texts words``
draws the texts from a small vocabulary instead, and ``--ids uuid`` lets the store generate uuid4
ids (both less compressible, fewer records per pack).

    python benchmarks/bench_tiny_adds.py
    python benchmarks/bench_tiny_adds.py --sizes 10000 --texts words --ids uuid

The embedding is langchain-core's DeterministicFakeEmbedding (size 16) and the index is flat, so
the time measured is the store's own: packing, QR rendering, video, catalog.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_memvid import MemvidVectorStore

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "apple",
    "river",
    "stone",
    "cloud",
    "seven",
    "green",
    "house",
    "light",
    "paper",
    "music",
    "north",
    "south",
    "winter",
    "summer",
    "bread",
    "water",
    "glass",
    "table",
]


def tiny_texts(n: int, kind: str, seed: int = 7) -> list[str]:
    """N texts of 10-30 characters: numbered notes, or common words."""
    if kind == "numbered":
        return [f"tiny document number {i}" for i in range(n)]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        target = rng.randint(10, 30)
        text = ""
        while len(text) < target:
            text += rng.choice(WORDS) + " "
        out.append(text[:target].strip())
    return out


def time_add(n: int, texts_kind: str, ids_kind: str) -> tuple[float, int]:
    """Seconds for one add_texts of n tiny texts into a fresh store, and the video bytes written."""
    texts = tiny_texts(n, texts_kind)
    ids = [f"doc-{i:06d}" for i in range(n)] if ids_kind == "seq" else None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store"
        store = MemvidVectorStore(path, DeterministicFakeEmbedding(size=16), index="flat")
        t0 = time.perf_counter()
        store.add_texts(texts, ids=ids)
        seconds = time.perf_counter() - t0
        store.close()
        video = sum(p.stat().st_size for p in (path / "segments").glob("*.mov"))
    return seconds, video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--texts", choices=["numbered", "words"], default="numbered")
    parser.add_argument(
        "--ids", choices=["seq", "uuid"], default="seq", help="caller's ids or generated uuid4"
    )
    args = parser.parse_args()
    results = []
    for n in args.sizes:
        seconds, video = time_add(n, args.texts, args.ids)
        results.append((n, seconds))
        print(
            f"{n:>8,} tiny docs ({args.texts} texts, {args.ids} ids): {seconds:8.1f} s  {n / seconds:9,.0f} records/s  "
            f"video {video:,} bytes ({video / n:.1f} B/record)",
            flush=True,
        )
    if len(results) >= 2:
        (n0, s0), (n1, s1) = results[0], results[-1]
        print(
            f"time ratio {n1:,} / {n0:,}: {s1 / s0:.1f}x for {n1 / n0:.0f}x the records (linear = {n1 / n0:.0f}x)"
        )


if __name__ == "__main__":
    main()
