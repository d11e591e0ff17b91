"""Ingest on Ray (issue 17) against plain ingest: chunks per second on the same sources.

Sources: CPython's ``pydoc_data/topics.py``, one text file per topic (79 files, 465 KB), written
to a temporary folder and ingested by relative path with ``chunk_size=500, chunk_overlap=50``
(about 1,100 chunks). Two embeddings:

- ``fake``: langchain-core's DeterministicFakeEmbedding (384 dimensions), so that reading,
  splitting, building segments and committing are what is measured;
- ``real``: the packaged all-MiniLM-L6-v2 on the CPU, what a user runs.

For each, a plain ``ingest`` into a new store, then ``ingest_on_ray`` into another on a local Ray
cluster started beforehand (its start-up is reported on its own), with the defaults a user gets
(one embedding actor per two CPUs, segments of 256 records as plain ingest's batches make them,
a commit every 4 segments). Both stores must then hold the same ids, in the same order.

    python benchmarks/bench_ray.py                   # both embeddings
    python benchmarks/bench_ray.py --model fake      # the pipeline alone

On a 2-core machine Ray is expected to be slower: its processes (raylet, GCS, the actor, reading
and building tasks) share the two cores with the work, the one embedding actor runs PyTorch on one
thread (Ray sets OMP_NUM_THREADS to the actor's one CPU) where plain ingest uses both, and every
batch crosses the object store. The point of Ray is more machines, which this benchmark does not
have. Writes ``benchmarks/results/ray.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pydoc_data.topics
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from langchain_memvid import MemvidVectorStore
from langchain_memvid.distributed import ingest_on_ray
from langchain_memvid.engine import Engine
from langchain_memvid.ingest import ingest

RESULTS = Path(__file__).parent / "results"
SIZES = {"chunk_size": 500, "chunk_overlap": 50}
SEGMENT = 256  # plain ingest's batch, so both stores have segments of the same size


def write_sources(folder: Path) -> list[str]:
    topics = folder / "topics"
    topics.mkdir()
    for name, text in sorted(pydoc_data.topics.topics.items()):
        (topics / f"{name}.txt").write_text(text, encoding="utf-8")
    return ["topics"]


def embedding_for(kind: str) -> Embeddings:
    if kind == "fake":
        return DeterministicFakeEmbedding(size=384)
    from langchain_memvid.embeddings import SentenceTransformerEmbeddings

    return SentenceTransformerEmbeddings()


def ids(path: Path) -> list[str]:
    with Engine(path, create=False) as engine:
        return engine.ids()


def run(kind: str, work: Path, sources: list[str], workers: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"embedding": kind}
    embedding = embedding_for(kind)
    if kind == "real":
        embedding.embed_query("warm up")  # the model's load is not ingest time, on either side
    started = time.perf_counter()
    with MemvidVectorStore(work / f"plain-{kind}", embedding) as store:
        report = ingest(store, sources, **SIZES, batch_size=SEGMENT)
    plain_s = time.perf_counter() - started
    out["chunks"] = report.added
    out["plain"] = {"seconds": round(plain_s, 2), "chunks_per_s": round(report.added / plain_s, 1)}
    print(f"[{kind}] plain: {report.added} chunks in {plain_s:.1f} s", file=sys.stderr)

    started = time.perf_counter()
    on_ray = ingest_on_ray(
        work / f"ray-{kind}",
        sources,
        embedding=embedding_for(kind),
        **SIZES,
        segment_size=SEGMENT,
        workers=workers,
    )
    ray_s = time.perf_counter() - started
    out["ray"] = {
        "seconds": round(ray_s, 2),
        "chunks_per_s": round(on_ray.added / ray_s, 1),
        "segments": on_ray.segments,
        "commits": on_ray.commits,
    }
    out["ray_over_plain"] = round(plain_s / ray_s, 2)
    out["same_ids_in_same_order"] = ids(work / f"plain-{kind}") == ids(work / f"ray-{kind}")
    print(f"[{kind}] ray:   {on_ray.added} chunks in {ray_s:.1f} s ({on_ray.segments} segments, "
          f"{on_ray.commits} commits); same ids: {out['same_ids_in_same_order']}", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["fake", "real", "both"], default="both")
    parser.add_argument("--workers", type=int, default=None, help="embedding actors (default: half the CPUs)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import ray

    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    cwd = Path.cwd()
    try:
        os.chdir(work)  # sources by relative path, as a user names them
        sources = write_sources(work)
        started = time.perf_counter()
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="WARNING")
        cluster_s = time.perf_counter() - started
        resources = ray.cluster_resources()
        kinds = ["fake", "real"] if args.model == "both" else [args.model]
        runs = [run(kind, work, sources, args.workers) for kind in kinds]
        ray.shutdown()
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "ray": {"version": ray.__version__, "cluster_cpus": resources.get("CPU"), "cluster_start_s": round(cluster_s, 2)},
        "sources": "pydoc_data/topics.py, one file per topic",
        "sizes": SIZES,
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ray.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
