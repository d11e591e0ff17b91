"""An IVF index built on Ray (issue 17, "indexes at scale") against build_index in one process.

One store of 100,000 real all-MiniLM-L6-v2 vectors of ~500-character chunks (the cache
``real_corpus.py`` builds, ``benchmarks/.cache/real-100000``) in float32 segments of 10,000,
copied twice; the records' texts are short stand-ins (the build reads vectors, not text) and
there is no lexical index. Each copy's IVF-Flat index (nlist 1,024) is built in a fresh
process: ``Engine.build_index`` in one, ``build_index_on_ray`` on a local 2-CPU Ray cluster in
the other (trained in the driver, filled per segment by Ray tasks, merged on disk). Both train on
the same 40,000-vector sample (FAISS's 39 x nlist), so what differs is how the lists are filled. Printed:
seconds (the Ray cluster's start excluded), the peak resident memory of the building process
(VmHWM; the driver, for Ray: the workers each hold one segment), and recall@10 at nprobe 16 of both
indexes against exact search, with how many of the answers are identical.

    python benchmarks/real_corpus.py                # once: extract and embed the corpus (~30 min)
    python benchmarks/bench_ray_index.py

Writes ``benchmarks/results/ray_index.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from langchain_memvid.engine import Engine, Record

sys.path.insert(0, str(Path(__file__).parent))
import real_corpus

RESULTS = Path(__file__).parent / "results"
DIM, NLIST, NPROBE, QUERIES = 384, 1024, 16, 200
OPTIONS = {"nlist": NLIST, "train_size": 40_000}

CHILD = r"""
import json, sys, time
path, mode = sys.argv[1], sys.argv[2]
if mode == "ray":
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    from langchain_memvid.distributed_index import build_index_on_ray
    start = time.perf_counter()
    build_index_on_ray(path, "ivf", OPTIONS)
else:
    from langchain_memvid.engine import Engine
    start = time.perf_counter()
    with Engine(path, create=False) as engine:
        engine.build_index("ivf", OPTIONS)
seconds = time.perf_counter() - start
# VmHWM: this process image's own peak (ru_maxrss keeps the forking parent's peak across exec).
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "peak_rss_mib": peak / 1024}))
"""


def build(path: Path, mode: str) -> dict[str, float]:
    code = CHILD.replace("OPTIONS", repr(OPTIONS))
    out = subprocess.run([sys.executable, "-c", code, str(path), mode], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def answers(path: Path, queries: np.ndarray) -> list[list[str]]:
    with Engine(path, create=False) as engine:
        return [[rid for rid, _ in engine.search_ids(q, 10, search_params={"nprobe": NPROBE})] for q in queries]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    _, _, data = real_corpus.load_cached("real-100000")
    _, _, queries = real_corpus.load_cached(f"real-100000-queries-{QUERIES}-seed0")
    n = len(data)
    with tempfile.TemporaryDirectory() as tmp:
        one, ray = Path(tmp) / "one", Path(tmp) / "ray"
        started = time.perf_counter()
        with Engine(one, vector_encoding="float32", lexical_index=False, segment_records=10_000) as engine:
            engine.add([Record(f"r{i}", f"record {i}", {}) for i in range(n)], data)
        store_seconds = time.perf_counter() - started
        shutil.copytree(one, ray)
        results = {"one_process": build(one, "one"), "ray": build(ray, "ray")}
        exact = np.argsort(-(queries @ data.T), axis=1)[:, :10]
        truth = [{f"r{i}" for i in row} for row in exact]
        got = {name: answers(path, queries) for name, path in (("one_process", one), ("ray", ray))}
        for name, found in got.items():
            results[name]["recall_at_10"] = sum(len(t & set(f)) for t, f in zip(truth, found, strict=True)) / (10 * QUERIES)
        same = sum(a == b for a, b in zip(got["one_process"], got["ray"], strict=True)) / QUERIES
    report = {
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {__import__('os').cpu_count()} cores",
        "vectors": n,
        "segments": -(-n // 10_000),
        "index": f"IVF{NLIST},Flat",
        "nprobe": NPROBE,
        "store_build_seconds": round(store_seconds, 1),
        "identical_answers": same,
        **{k: {m: round(v, 4) for m, v in r.items()} for k, r in results.items()},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ray_index.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
