"""Run the storage and LangChain benchmarks against two revisions, taking turns, in one run.

    python benchmarks/compare_revisions.py --base 88133bc             # base commit vs the working tree
    python benchmarks/compare_revisions.py --base v0.1 --head HEAD --storage-scale 0

Each side gets its own copy of the package (``git archive`` for a commit, a copy of the working
tree for ``--head WORKTREE``) and of this folder's benchmark scripts, which use only the public
API; the scripts run with ``PYTHONPATH`` pointing at that copy, base and head taking turns so that
machine noise falls on both. Prints head / base for each figure and writes
``benchmarks/results/compare.json``. Speeds are ratios within one run; see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"

# (benchmark, results file, figure path, "higher" or "lower" is better)
FIGURES = [
    ("storage", "storage.json", ("corpus", "build_chunks_per_s"), "higher"),
    ("storage", "storage.json", ("corpus", "video_to_text"), "lower"),
    ("storage", "storage.json", ("corpus", "open_ms"), "lower"),
    ("storage", "storage.json", ("corpus", "read_p50_ms"), "lower"),
    ("storage", "storage.json", ("corpus", "sequential_records_per_s"), "higher"),
    ("storage", "storage.json", ("scale", "build_records_per_s"), "higher"),
    ("storage", "storage.json", ("scale", "open_ms"), "lower"),
    ("storage", "storage.json", ("scale", "read_p50_ms"), "lower"),
    ("langchain", "langchain.json", ("build_s", "memvid"), "lower"),
    ("langchain", "langchain.json", ("by_vector_p50_ms", "memvid"), "lower"),
    ("langchain", "langchain.json", ("read_back_ms_per_result",), "lower"),
    ("langchain", "langchain.json", ("similarity_search_real_model_p50_ms", "memvid"), "lower"),
    ("langchain", "langchain.json", ("search_process_rss_mb", "memvid", "rss_mb_after_open_and_search"), "lower"),
]


def _side(root: Path, name: str, rev: str) -> Path:
    """A folder holding ``langchain_memvid/`` at ``rev`` (or the working tree) and the scripts."""
    side = root / name
    side.mkdir()
    if rev == "WORKTREE":
        shutil.copytree(REPO / "langchain_memvid", side / "langchain_memvid")
    else:
        data = subprocess.run(
            ["git", "archive", rev, "langchain_memvid"], cwd=REPO, capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(side, filter="data")
    shutil.copytree(REPO / "benchmarks", side / "benchmarks", ignore=shutil.ignore_patterns("results"))
    return side


def _run(side: Path, script: str, args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(side), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, str(side / "benchmarks" / script), *args], env=env, check=True, cwd=side)
    return time.perf_counter() - start


def _figure(data: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = data
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, (int, float)) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--head", default="WORKTREE", help="git revision, or WORKTREE (default)")
    parser.add_argument("--storage-scale", type=int, default=20_000, help="bench_storage --scale")
    parser.add_argument("--langchain-n", type=int, default=20_000, help="bench_langchain --n")
    parser.add_argument("--rounds", type=int, default=1, help="turns per benchmark and side")
    opts = parser.parse_args()
    runs = {
        "storage": ("bench_storage.py", ["--scale", str(opts.storage_scale)]),
        "langchain": ("bench_langchain.py", ["--n", str(opts.langchain_n)]),
    }
    collected: dict[str, dict[str, list[dict[str, Any]]]] = {"base": {}, "head": {}}
    with tempfile.TemporaryDirectory(prefix="memvid-compare-") as tmp:
        sides = {"base": _side(Path(tmp), "base", opts.base), "head": _side(Path(tmp), "head", opts.head)}
        for bench, (script, args) in runs.items():
            for n in range(opts.rounds):
                for who in ("base", "head") if n % 2 == 0 else ("head", "base"):
                    seconds = _run(sides[who], script, args)
                    out = json.loads((sides[who] / "benchmarks" / "results" / f"{bench}.json").read_text())
                    collected[who].setdefault(bench, []).append(out)
                    print(f"{bench} {who} round {n + 1}: {seconds:.0f} s", file=sys.stderr)
    rows = []
    for bench, file, path, better in FIGURES:
        del file
        vals = {}
        for who in ("base", "head"):
            got = [v for v in (_figure(r, path) for r in collected[who].get(bench, [])) if v is not None]
            vals[who] = sorted(got)[len(got) // 2] if got else None
        base, head = vals["base"], vals["head"]
        ratio = head / base if base and head is not None else None
        rows.append({"figure": f"{bench}: {'.'.join(path)}", "better": better, "base": base, "head": head, "head_over_base": ratio})
    print(f"\n{'figure':<72} {'base':>12} {'head':>12} {'head/base':>10}")
    for r in rows:
        fmt = lambda v: f"{v:12.3f}" if isinstance(v, float) else f"{'-':>12}"  # noqa: E731
        ratio = f"{r['head_over_base']:10.3f}" if r["head_over_base"] is not None else f"{'-':>10}"
        print(f"{r['figure'] + ' (' + r['better'] + ' is better)':<72} {fmt(r['base'])} {fmt(r['head'])} {ratio}")
    RESULTS.mkdir(exist_ok=True)
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "base": opts.base,
        "head": opts.head,
        "options": vars(opts),
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "figures": rows,
    }
    (RESULTS / "compare.json").write_text(json.dumps(out, indent=2))
    print(f"\nwrote {RESULTS / 'compare.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
