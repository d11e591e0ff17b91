"""Draw the benchmark figures for docs/benchmarks.md from benchmarks/results/*.json.

    python benchmarks/plot.py

Each plot puts our measured figure beside the anchors measured in ../shared/notes/anchors.md
(memvid 0.1.3, langchain-memvid 0.1.11, LangChain's FAISS store). Missing result files are
skipped with a message.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path(__file__).parent / "results"
OUT = Path(__file__).parent.parent / "docs" / "img"

# Anchors: ../shared/notes/anchors.md (same corpus, same kind of 2-core machine).
ANCHOR_RATIO = {"memvid 0.1.3": 32.0, "langchain-memvid 0.1.11": 1035.0}
ANCHOR_BUILD = {"memvid 0.1.3": 2.0, "langchain-memvid 0.1.11": 4.6}
ANCHOR_EXACT = {"memvid 0.1.3": 0 / 1056, "langchain-memvid 0.1.11": 533 / 938}


def bars(ax: plt.Axes, data: dict[str, float], title: str, *, log: bool = False, fmt: str = "{:.2f}") -> None:
    names = list(data)
    colours = ["#2a7" if n == "langchain-memvid 0.1 (ours)" else "#999" for n in names]
    ax.bar(names, list(data.values()), color=colours)
    if log:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    for i, v in enumerate(data.values()):
        ax.text(i, v, fmt.format(v), ha="center", va="bottom", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)


def storage() -> None:
    path = RESULTS / "storage.json"
    if not path.exists():
        print(f"skip: {path} missing (run benchmarks/bench_storage.py)", file=sys.stderr)
        return
    res = json.loads(path.read_text())["corpus"]
    ours = "langchain-memvid 0.1 (ours)"
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    bars(axes[0], {ours: res["video_to_text"], **ANCHOR_RATIO}, "video bytes / text bytes (lower is better)", log=True)
    bars(axes[1], {ours: res["build_chunks_per_s"], **ANCHOR_BUILD}, "build, chunks/s (higher is better)", log=True, fmt="{:.0f}")
    exact = res["exact_from_video"] / res["chunks"]
    bars(axes[2], {ours: exact * 100, **{k: v * 100 for k, v in ANCHOR_EXACT.items()}}, "% of records read back from the video", fmt="{:.0f}%")
    fig.tight_layout()
    fig.savefig(OUT / "storage.png", dpi=110)
    print(f"wrote {OUT / 'storage.png'}")


def langchain() -> None:
    path = RESULTS / "langchain.json"
    if not path.exists():
        print(f"skip: {path} missing (run benchmarks/bench_langchain.py)", file=sys.stderr)
        return
    res = json.loads(path.read_text())
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    ours, faiss = "langchain-memvid 0.1 (ours)", "LangChain FAISS"
    by_vec = res["by_vector_p50_ms"]
    bars(axes[0], {ours: by_vec["memvid"], faiss: by_vec["faiss"]}, f"search by vector, k=4, p50 ms ({res['n']:,} docs)")
    text = res["similarity_search_real_model_p50_ms"]
    bars(axes[1], {ours: text["memvid"], faiss: text["faiss"]}, "similarity_search with MiniLM, p50 ms")
    mem = res["search_process_rss_mb"]
    share = {
        ours: mem["memvid"]["rss_mb_after_open_and_search"] - mem["memvid"]["rss_mb_model_only"],
        faiss: mem["faiss"]["rss_mb_after_open_and_search"] - mem["faiss"]["rss_mb_model_only"],
    }
    bars(axes[2], share, "store's memory in the search process, MiB", fmt="{:.0f}")
    fig.tight_layout()
    fig.savefig(OUT / "langchain.png", dpi=110)
    print(f"wrote {OUT / 'langchain.png'}")


def index() -> None:
    path = RESULTS / "index.json"
    if not path.exists():
        print(f"skip: {path} missing (run benchmarks/bench_index.py)", file=sys.stderr)
        return
    res = json.loads(path.read_text())
    rows = res.get("indexes") or res.get("rows") or []
    if not rows:
        print("skip: index.json has no rows", file=sys.stderr)
        return
    names = [r.get("name") or r.get("index") for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    axes[0].bar(names, [r.get("p50_ms") or r.get("search_p50_ms") or 0 for r in rows], color="#2a7")
    axes[0].set_yscale("log")
    axes[0].set_title("search p50 ms, single query (log)", fontsize=10)
    axes[1].bar(names, [r.get("recall_at_10") or r.get("recall@10") or 0 for r in rows], color="#27a")
    axes[1].set_ylim(0, 1.05)
    axes[1].set_title("recall@10 vs exact search", fontsize=10)
    for ax in axes:
        ax.tick_params(axis="x", labelsize=7, rotation=20)
    fig.tight_layout()
    fig.savefig(OUT / "index.png", dpi=110)
    print(f"wrote {OUT / 'index.png'}")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    storage()
    langchain()
    index()


if __name__ == "__main__":
    main()
