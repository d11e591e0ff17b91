"""Ray workers, 1 against 2 (issue 17): the two costly stages of an ingest, each on its own.

- **embedding**: the packaged all-MiniLM-L6-v2 in Ray actors (``num_cpus=1`` each, so PyTorch
  runs one thread per actor, as in ``ingest_on_ray``), the model loaded and warmed before the
  clock starts; the chunks are sent in batches of 64 to the actors in turn;
- **segment building**: ``engine.build_segment`` in Ray tasks (``num_cpus=1``: QR frames,
  video and vector file of 256 chunks each, with a fake embedding's vectors), at most ``workers``
  tasks at once, after one small build per worker (start-up and imports are not timed); the
  segments are built into a store's ``tmp/`` and never committed.

Chunks: CPython's ``pydoc_data/topics.py`` split as ``lcmemvid ingest`` splits it (500
characters, overlap 50), taken twice with distinct ids. One local Ray cluster of 2 CPUs runs
both counts. From the rates, a projection of the time to ingest 10M and 100M chunks on CPU
machines, and the bytes the store would take (from ``benchmarks/results/hybrid.json``'s measured
default store's bytes over its text's). Writes ``benchmarks/results/ray_scaling.json``.

    python benchmarks/bench_ray_scaling.py
"""

from __future__ import annotations

import json
import os
import platform
import pydoc_data.topics
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_memvid.engine import Engine, Record, build_segment
from langchain_memvid.ingest import split_into_chunks

RESULTS = Path(__file__).parent / "results"
SEGMENT = 256
BATCH = 64
MACHINE_CORES = 16  # the projection's machine: 16 cores, CPU only


def chunks() -> list[Document]:
    docs = [Document(page_content=t, metadata={"source": n}) for n, t in sorted(pydoc_data.topics.topics.items())]
    once = split_into_chunks(docs, chunk_size=500, chunk_overlap=50)
    return [Document(page_content=c.page_content, metadata=c.metadata, id=f"{copy}-{c.id}") for copy in range(2) for c in once]


class Embedder:
    def __init__(self) -> None:
        from langchain_memvid.embeddings import SentenceTransformerEmbeddings

        self.model = SentenceTransformerEmbeddings()
        self.model.embed_documents(["warm up"] * BATCH)

    def embed(self, texts: list[str]) -> int:
        return len(self.model.embed_documents(texts))


def embedding_rate(ray: Any, texts: list[str], workers: int) -> float:
    actor = ray.remote(num_cpus=1)(Embedder)
    actors = [actor.remote() for _ in range(workers)]
    ray.get([a.embed.remote(["ready"]) for a in actors])  # loaded and warm
    batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    started = time.perf_counter()
    done = sum(ray.get([actors[n % workers].embed.remote(b) for n, b in enumerate(batches)]))
    seconds = time.perf_counter() - started
    for a in actors:
        ray.kill(a)
    return done / seconds


def _build(job: Any, records: list[Record], vectors: np.ndarray) -> int:
    return len(build_segment(job, records, vectors, processes=1).placements)


def build_rate(ray: Any, docs: list[Document], workers: int, folder: Path) -> float:
    vectors = np.asarray(DeterministicFakeEmbedding(size=384).embed_documents([d.page_content for d in docs]), np.float32)
    records = [Record(str(d.id), d.page_content, dict(d.metadata)) for d in docs]
    task = ray.remote(num_cpus=1)(_build)
    with Engine(folder, create=True) as engine, engine.bulk(384) as bulk:
        # One small build per worker first, so that no worker's start-up and imports are timed.
        warm = bulk.jobs([1] * workers)
        ray.get([task.remote(job, records[:1], vectors[:1]) for job in warm])
        sizes = [min(SEGMENT, len(records) - i) for i in range(0, len(records), SEGMENT)]
        jobs = deque(zip(bulk.jobs(sizes), range(0, len(records), SEGMENT), strict=True))
        running: list[Any] = []
        done = 0
        started = time.perf_counter()
        while jobs or running:
            while jobs and len(running) < workers:
                job, at = jobs.popleft()
                running.append(task.remote(job, records[at : at + job.size], vectors[at : at + job.size]))
            ready, running = ray.wait(running, num_returns=1)
            done += sum(ray.get(ready))
        seconds = time.perf_counter() - started
    return done / seconds


def projection(embed_per_core: float, build_per_core: float, store_ratio: float, text_bytes: float) -> list[dict[str, Any]]:
    core_seconds = 1 / embed_per_core + 1 / build_per_core  # per chunk, both stages on CPUs
    rows = []
    for n in (10_000_000, 100_000_000):
        for machines in (10, 100):
            hours = n * core_seconds / (machines * MACHINE_CORES) / 3600
            rows.append({"chunks": n, "machines": machines, "hours": round(hours, 1),
                         "store_gb": round(n * text_bytes * store_ratio / 1e9, 1)})
    return rows


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import ray

    docs = chunks()
    texts = [d.page_content for d in docs]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    out: dict[str, Any] = {"chunks": len(docs), "segment_records": SEGMENT}
    try:
        for stage in ("embedding", "building"):
            rates = {}
            for workers in (1, 2):
                with tempfile.TemporaryDirectory() as tmp:
                    rate = embedding_rate(ray, texts, workers) if stage == "embedding" else build_rate(ray, docs, workers, Path(tmp) / "s")
                rates[workers] = round(rate, 1)
                print(f"{stage}, {workers} worker(s): {rate:.1f} chunks/s", flush=True)
            out[stage] = {"chunks_per_s": rates, "scaling_1_to_2": round(rates[2] / rates[1], 2)}
    finally:
        ray.shutdown()
    hybrid = json.loads((RESULTS / "hybrid.json").read_text(encoding="utf-8"))
    ratio = round(hybrid["speed"]["disk_bytes"] / hybrid["speed"]["text_bytes"], 2)  # the default store
    text_bytes = sum(len(t.encode()) for t in texts) / len(texts)
    out["projection"] = {
        "assumes": f"{MACHINE_CORES}-core CPU machines, each core at this machine's one-worker rates, embedding and building both on CPUs, no other overhead",
        "text_bytes_per_chunk": round(text_bytes),
        "store_over_text": ratio,
        "rows": projection(out["embedding"]["chunks_per_s"][1], out["building"]["chunks_per_s"][1], ratio, text_bytes),
    }
    out["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(), "ray": ray.__version__}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ray_scaling.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
