"""Cold start (issue 15): what a fresh process pays to import the package, open a store and search it.

    python benchmarks/bench_cold_start.py                          # a small store built in a temp folder
    python benchmarks/bench_cold_start.py --store PATH --rounds 7  # an existing store (e.g. 100,000 records)

Every figure is the wall time of a fresh interpreter, start to exit, timed from outside:

- baseline: what any LangChain vector store over FAISS imports, ``from langchain_core.vectorstores
  import VectorStore`` plus ``faiss`` and ``numpy``. ``import langchain_core.vectorstores, faiss,
  numpy``, also reported, costs much less: langchain-core 1.x imports ``VectorStore`` lazily, and
  its module brings ``langchain_core.retrievers``, the tracers and langsmith;
- import: ``import langchain_memvid``;
- open + search: import ``MemvidVectorStore``, open the store and run one
  ``similarity_search_by_vector(k=1)`` with a vector the store holds, the embedding an object that
  raises if called, so no model is loaded (or needed);
- info: ``lcmemvid info STORE``.

The figures take turns round by round, so that load drifting on a shared machine reaches them
alike; the medians are reported, with the ratios of open + search and info to the baseline. One
extra, untimed run of each lists the heavy modules it leaves in ``sys.modules``. Writes
``benchmarks/results/cold_start.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"

# Modules whose presence after a cold start says something went wrong (or, for cv2 and zxingcpp,
# that a frame was read: a search reads its hits back from the video).
HEAVY = [
    "torch",
    "sentence_transformers",
    "transformers",
    "cv2",
    "av",
    "zxingcpp",
    "qrcode",
    "pyzbar",
    "PIL",
    "pypdf",
    "ebooklib",
    "bs4",
    "lxml",
    "tqdm",
    "rich",
    "langchain_text_splitters",
    "langchain_core",
    "langchain_core.retrievers",
    "langchain_core.tracers",
    "langchain_core.runnables",
    "langchain_core.prompts",
    "langchain_core.document_loaders",
    "langsmith",
    "pydantic",
    "faiss",
    "numpy",
]

BASELINE = "from langchain_core.vectorstores import VectorStore; import faiss, numpy"
BASELINE_LITERAL = "import langchain_core.vectorstores, faiss, numpy"
IMPORT = "import langchain_memvid"
OPEN_SEARCH = r"""
import json, sys, time
t0 = time.perf_counter()
from langchain_core.embeddings import Embeddings
from langchain_memvid.vectorstores import MemvidVectorStore
t1 = time.perf_counter()
probe = json.loads(open(sys.argv[1]).read())


class NoModel(Embeddings):
    # The dimension and name the store records, stated so that nothing needs to be embedded.
    size = probe["dim"]
    model_name = probe["model"] or "NoModel"

    def embed_documents(self, texts):
        raise AssertionError("the embedding model was called")

    def embed_query(self, text):
        raise AssertionError("the embedding model was called")


store = MemvidVectorStore(probe["store"], NoModel())
t2 = time.perf_counter()
docs = store.similarity_search_by_vector(probe["vector"], k=1)
t3 = time.perf_counter()
store.close()
print(json.dumps({"import_s": t1 - t0, "open_s": t2 - t1, "search_s": t3 - t2,
                  "found": [d.id for d in docs] == [probe["id"]]}))
"""


# Runs a command's code or script, then lists every module loaded (on stderr, at exit).
LIST_MODULES = r"""
import atexit, json, runpy, sys
atexit.register(lambda: print("MODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr))
kind, target, *rest = sys.argv[1:]
if kind == "code":
    sys.argv = ["-c", *rest]
    exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
elif kind == "module":
    sys.argv = [target, *rest]
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    sys.argv = [target, *rest]
    runpy.run_path(target, run_name="__main__")
"""


def child_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def lcmemvid() -> tuple[str, str]:
    """The console script next to this interpreter, else ``python -m langchain_memvid``."""
    script = Path(sys.executable).with_name("lcmemvid")
    return ("script", str(script)) if script.is_file() else ("module", "langchain_memvid")


def command(kind: str, target: str, *args: str) -> list[str]:
    """The command line that runs code (``-c``), a module (``-m``) or a script in a fresh interpreter."""
    flag = {"code": ["-c"], "module": ["-m"], "script": []}[kind]
    return [sys.executable, *flag, target, *args]


def build_store(path: Path, records: int, dim: int) -> None:
    """A store of ``records`` ~300-character texts, DeterministicFakeEmbedding vectors."""
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from langchain_memvid import MemvidVectorStore

    words = ["quick", "response", "codes", "keep", "data", "in", "black", "and", "white", "modules"]
    texts = [f"{i} " + " ".join(words[(i + j) % len(words)] for j in range(50)) for i in range(records)]
    with MemvidVectorStore(path, DeterministicFakeEmbedding(size=dim)) as store:
        for start in range(0, records, 10_000):
            store.add_texts(texts[start : start + 10_000])


def probe_store(path: Path) -> dict[str, Any]:
    """A record id and its stored vector, plus the store's size and settings (read untimed)."""
    from langchain_memvid.engine import Engine

    engine = Engine(path, create=False)
    try:
        first = engine.ids()[0]
        vector = engine.vectors([first])[first]
        stats = engine.stats()
    finally:
        engine.close()
    return {
        "store": str(path),
        "id": first,
        "vector": [float(x) for x in vector],
        "dim": stats["dim"],
        "model": stats["model"],
        "records": stats["records"],
        "segments": stats["segments"],
        "index_type": stats["index_type"],
    }


def run(cmd: list[str]) -> tuple[float, str]:
    """Wall seconds of one fresh process, and its stdout; a failure stops the benchmark."""
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), check=False)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr}")
    return seconds, out.stdout


def heavy_modules(kind: str, target: str, *args: str) -> list[str]:
    """The HEAVY modules in ``sys.modules`` when a command exits (one more, untimed run)."""
    out = subprocess.run(
        [sys.executable, "-c", LIST_MODULES, kind, target, *args],
        capture_output=True,
        text=True,
        env=child_env(),
        check=False,
    )
    lines = [line for line in out.stderr.splitlines() if line.startswith("MODULES ")]
    if out.returncode != 0 or not lines:
        sys.exit(f"listing the modules of {target[:60]!r} failed ({out.returncode}):\n{out.stderr}")
    loaded = set(json.loads(lines[-1].removeprefix("MODULES ")))
    return [m for m in HEAVY if m in loaded]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="an existing store; default: build a small one")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--records", type=int, default=2000, help="size of the store built without --store")
    parser.add_argument("--dim", type=int, default=384, help="dimension of the store built without --store")
    parser.add_argument("--out", type=Path, default=RESULTS / "cold_start.json")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="memvid-cold-"))
    try:
        store = args.store
        if store is None:
            store = tmp / "store"
            print(f"building a {args.records:,}-record store in {store} ...", flush=True)
            build_store(store, args.records, args.dim)
        probe = probe_store(store)
        probe_file = tmp / "probe.json"
        probe_file.write_text(json.dumps(probe))
        specs = {
            "baseline": ("code", BASELINE),
            "baseline_literal": ("code", BASELINE_LITERAL),
            "import": ("code", IMPORT),
            "open_search": ("code", OPEN_SEARCH, str(probe_file)),
            "info": (*lcmemvid(), "info", str(store)),
        }
        commands = {name: command(*spec) for name, spec in specs.items()}
        for cmd in commands.values():  # warm the page cache, so that round 1 is not the outlier
            run(cmd)
        times: dict[str, list[float]] = {name: [] for name in commands}
        inner: list[dict[str, Any]] = []
        for n in range(args.rounds):
            for name, cmd in commands.items():
                seconds, stdout = run(cmd)
                times[name].append(seconds)
                if name == "open_search":
                    inner.append(json.loads(stdout.strip().splitlines()[-1]))
            print(
                f"round {n + 1}/{args.rounds}: " + "  ".join(f"{k} {v[-1]:.3f}" for k, v in times.items()),
                flush=True,
            )
        heavy = {name: heavy_modules(*spec) for name, spec in specs.items()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    median = {name: statistics.median(t) for name, t in times.items()}
    base = median["baseline"]
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "when": time.strftime("%Y-%m-%d"),
        "rounds": args.rounds,
        "store": {k: v for k, v in probe.items() if k not in ("vector", "id", "store")}
        | {"built": args.store is None},
        "median_s": median,
        "all_s": times,
        "ratio_to_baseline": {
            "import": median["import"] / base,
            "open_search": median["open_search"] / base,
            "info": median["info"] / base,
        },
        "open_search_inside_s": {
            k: statistics.median(r[k] for r in inner) for k in ("import_s", "open_s", "search_s")
        },
        "found_the_stored_vector": all(r["found"] for r in inner),
        "heavy_modules": heavy,
    }
    s = result["store"]
    print(
        f"\nCold start, median of {args.rounds} fresh processes, {result['machine']}; store: {s['records']:,} "
        f"records in {s['segments']} segments, dim {s['dim']}, {s['index_type']}"
    )
    rows = [
        ("baseline: VectorStore + faiss + numpy", "baseline", "1.00"),
        ("  import langchain_core.vectorstores, faiss, numpy", "baseline_literal", ""),
        ("import langchain_memvid", "import", f"{median['import'] / base:.2f}"),
        ("open + similarity_search_by_vector", "open_search", f"{median['open_search'] / base:.2f}"),
        ("lcmemvid info", "info", f"{median['info'] / base:.2f}"),
    ]
    for label, key, ratio in rows:
        print(f"  {label:<52} {median[key]:6.3f} s  {ratio:>5}  {', '.join(heavy[key]) or '-'}")
    split = result["open_search_inside_s"]
    print(
        f"  open + search, inside the process: import {split['import_s']:.3f} s, open {split['open_s']:.3f} s, "
        f"search {split['search_s'] * 1000:.1f} ms; found the stored vector: {result['found_the_stored_vector']}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
