"""GPU benchmark (issue #6): IVF indexes served from a GPU (``gpu=True``) beside the same index on the CPU.

The data, the build and the serving ``VectorIndex`` are those of ``bench_index.py``; after the CPU
figures the same index moves to the GPU (``VectorIndex.move_to_gpu``, which the store calls for
``index_options={"gpu": True}``) and is timed again: single queries (p50/p99), batches of 100
and 1,000, recall@10 against exact search, and recall after deleting 1 % (the GPU index takes no
ID selector, so deleted ids are dropped after the search).

    python benchmarks/bench_gpu.py            # 1,000,000 x 384; needs a GPU and faiss with GPU support

Writes ``benchmarks/results/gpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_index import (
    DIM,
    NQ,
    RESULTS,
    K,
    build_index,
    log,
    make_data,
    recall,
    time_batched,
    time_single,
    write_vector_files,
)

from langchain_memvid.engine.search.faiss_helpers import gpu_status


def figures(index: Any, q: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Latency and recall of ``index`` as it is served now (CPU or GPU)."""
    ours = lambda qq: index.search(qq, K)  # noqa: E731
    ours(q[:5])  # warm up
    out: dict[str, Any] = dict(time_single({"single": ours}, q[:300])["single"])
    out["batch_100"] = time_batched(ours, q, 100)
    out["batch_1000"] = time_batched(ours, q, 1000)
    out["recall_at_10"] = recall(index.search(q, K)[1], truth)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--kinds", default="ivf,ivfpq")
    args = parser.parse_args()
    ok, why = gpu_status()
    if not ok:
        sys.exit(f"bench_gpu: {why}")
    out: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "faiss": faiss.__version__},
        "n": args.n,
        "dim": DIM,
        "k": K,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "kinds": {},
    }
    try:
        import torch

        out["machine"]["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # the GPU's name is a nicety
        out["machine"]["gpu"] = why
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        data = make_data(tmp / "data.npy", args.n + NQ)
        x, q = data[: args.n], np.ascontiguousarray(data[args.n :])
        files = write_vector_files(tmp / "vectors", x)
        truth = faiss.knn(q, np.ascontiguousarray(x), 2 * K, metric=faiss.METRIC_INNER_PRODUCT)[1]
        log(f"data and ground truth in {time.perf_counter() - t0:.1f} s")
        for kind in args.kinds.split(","):
            index, info = build_index(kind, x, files, tmp)
            row: dict[str, Any] = {"factory": info["factory"], "build_s": info["build_s"]}
            row["cpu"] = figures(index, q, truth)
            log(f"[{kind}] cpu: {row['cpu']}")
            t1 = time.perf_counter()
            why_not = index.move_to_gpu()
            if why_not is not None:
                row["gpu"] = {"error": why_not}
                log(f"[{kind}] stays on the CPU: {why_not}")
            else:
                row["move_to_gpu_s"] = time.perf_counter() - t1
                row["gpu"] = figures(index, q, truth)
                doomed = np.random.default_rng(1).choice(args.n, args.n // 100, replace=False)
                index.remove(doomed)
                dead = set(doomed.tolist())
                live_truth = np.array([[t for t in r if t not in dead][:K] for r in truth])
                found = index.search(q, K)[1]
                row["gpu_after_deleting_1pct"] = {
                    "recall_at_10": recall(found, live_truth),
                    "returned_deleted": int(np.isin(found, doomed).sum()),
                    **time_single({"single": lambda qq, ix=index: ix.search(qq, K)}, q[:300])["single"],
                }
                log(f"[{kind}] gpu: {row['gpu']} / after deletes {row['gpu_after_deleting_1pct']}")
            out["kinds"][kind] = row
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / "gpu.json").write_text(json.dumps(out, indent=1))
            del index


if __name__ == "__main__":
    main()
