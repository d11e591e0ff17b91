"""Write docs/benchmarks.md and its plots from benchmarks/results/*.json.

    python benchmarks/report.py

Every figure in docs/benchmarks.md is read from the JSON the benchmark scripts wrote, so the page
can be regenerated after any re-run. Each plot puts our figure beside the anchors measured in
../shared/notes/anchors.md (memvid 0.1.3, langchain-memvid 0.1.11, LangChain's FAISS store).
Missing result files are skipped with a message.
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
    bars(
        axes[0],
        {ours: res["video_to_text"], **ANCHOR_RATIO},
        "video bytes / text bytes (lower is better)",
        log=True,
    )
    bars(
        axes[1],
        {ours: res["build_chunks_per_s"], **ANCHOR_BUILD},
        "build, chunks/s (higher is better)",
        log=True,
        fmt="{:.0f}",
    )
    exact = res["exact_from_video"] / res["chunks"]
    bars(
        axes[2],
        {ours: exact * 100, **{k: v * 100 for k, v in ANCHOR_EXACT.items()}},
        "% of records read back from the video",
        fmt="{:.0f}%",
    )
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
    bars(
        axes[0],
        {ours: by_vec["memvid"], faiss: by_vec["faiss"]},
        f"search by vector, k=4, p50 ms ({res['n']:,} docs)",
    )
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
    res = load("index")
    if res is None:
        print("skip: benchmarks/results/index.json missing (run benchmarks/bench_index.py)", file=sys.stderr)
        return
    rows = res["indexes"]
    names = list(rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    axes[0].bar(names, [r["single"]["ours"]["p50_ms"] for r in rows.values()], color="#2a7")
    axes[0].set_yscale("log")
    axes[0].set_title(f"single-query search p50 ms at {res['n']:,} vectors (log)", fontsize=10)
    axes[1].bar(names, [r["recall_at_10"] for r in rows.values()], color="#27a")
    axes[1].set_ylim(0, 1.05)
    axes[1].set_title("recall@10 against exact search", fontsize=10)
    fig.tight_layout()
    fig.savefig(OUT / "index.png", dpi=110)
    print(f"wrote {OUT / 'index.png'}")


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def storage_section(res: dict) -> str:
    c, s = res["corpus"], res.get("scale")
    rows = [
        ("video bytes / raw text bytes", f"{c['video_to_text']:.3f}", "<= 0.6", "32", "1,035"),
        ("build, chunks/s (fake embedding)", f"{c['build_chunks_per_s']:,.0f}", ">= 1,000", "~2", "~5"),
        ("open the store, ms", f"{c['open_ms']:.1f}", "-", "-", "-"),
        ("one record from a freshly opened store, p50 ms", f"{c['read_p50_ms']:.2f}", "<= 2", "-", "-"),
        ("one record, p99 ms", f"{c['read_p99_ms']:.2f}", "-", "-", "-"),
        ("sequential read, records/s", f"{c['sequential_records_per_s']:,.0f}", ">= 10,000", "-", "-"),
        (
            "records byte-exact from the video alone",
            f"{c['exact_from_video']} / {c['chunks']}",
            "100 %",
            "0 / 1,056",
            "533 / 938",
        ),
    ]
    out = [
        "## Storage engine",
        "",
        f"`python benchmarks/bench_storage.py` on {res['machine']}, {res['when']}. Corpus: CPython's",
        f"`pydoc_data/topics.py`, {c['chunks']:,} chunks of ~500 characters ({c['text_bytes']:,} bytes of UTF-8),",
        'a deterministic fake embedding (only storage is measured). "From the video alone": the catalog',
        "and vector files are deleted, `rebuild` recovers the store from the `.mov` files, and every",
        "record is compared with the original.",
        "",
        table(("figure", "ours", "target", "memvid 0.1.3", "langchain-memvid 0.1.11"), rows),
        "",
    ]
    if s:
        out += [
            f"Scale run: {s['records']:,} synthetic records (~550 characters of words from the same",
            "vocabulary), added in batches of 10,000.",
            "",
            table(
                ("figure", "ours"),
                [
                    ("build, records/s", f"{s['build_records_per_s']:,.0f}"),
                    (
                        "resident memory after each batch, MiB",
                        ", ".join(f"{x:.0f}" for x in s["rss_mb_after_each_batch"]),
                    ),
                    (
                        "growth from batch 2 to the last, MiB",
                        f"{s['rss_growth_mb_second_to_last_batch']:.0f}",
                    ),
                    (
                        "vectors the flat index holds in RAM over those batches, MiB",
                        f"{s['vectors_in_ram_growth_mb']:.0f}",
                    ),
                    ("open the store, ms", f"{s['open_ms']:.0f}"),
                    (
                        "one record from a freshly opened store, p50 / p99 ms",
                        f"{s['read_p50_ms']:.2f} / {s['read_p99_ms']:.2f}",
                    ),
                    ("video bytes / raw text bytes", f"{s['video_to_text']:.3f}"),
                ],
            ),
            "",
            "Synthetic word salad compresses worse than real prose, hence the higher ratio.",
            "",
        ]
    out += ["![storage](img/storage.png)", ""]
    return "\n".join(out)


def langchain_section(res: dict) -> str:
    bv, tx, mem = (
        res["by_vector_p50_ms"],
        res["similarity_search_real_model_p50_ms"],
        res["search_process_rss_mb"],
    )
    share = {
        k: mem[k]["rss_mb_after_open_and_search"] - mem[k]["rss_mb_model_only"] for k in ("memvid", "faiss")
    }
    rows = [
        (
            "`similarity_search_by_vector(k=4)` p50 ms",
            f"{bv['memvid']:.2f}",
            f"{bv['faiss']:.2f}",
            f"{bv['ratio']:.2f}x (target <= 2x)",
        ),
        ("of which FAISS search alone, ms", f"{res['index_only_p50_ms']:.2f}", "-", ""),
        (
            "reading texts back from video, ms per result",
            f"{res['read_back_ms_per_result']:.2f}",
            "0 (in RAM)",
            "target <= 1.2",
        ),
        (
            "`similarity_search` with all-MiniLM-L6-v2, p50 ms",
            f"{tx['memvid']:.2f}",
            f"{tx['faiss']:.2f}",
            f"{tx['ratio']:.2f}x (target <= 1.3x)",
        ),
        (
            "search process RSS, MiB (model loaded)",
            f"{mem['memvid']['rss_mb_after_open_and_search']:.0f}",
            f"{mem['faiss']['rss_mb_after_open_and_search']:.0f}",
            f"the model alone: {mem['memvid']['rss_mb_model_only']:.0f}",
        ),
        ("the store's share of that RSS, MiB", f"{share['memvid']:.0f}", f"{share['faiss']:.0f}", ""),
        (
            "open the store, s",
            f"{mem['memvid']['open_s']:.2f}",
            f"{mem['faiss']['open_s']:.2f}",
            "FAISS: pickle load",
        ),
        (
            "bytes on disk / raw text bytes",
            f"{res['disk_bytes']['memvid'] / res['text_bytes']:.2f}",
            f"{res['disk_bytes']['faiss'] / res['text_bytes']:.2f}",
            "float32 vectors dominate both",
        ),
        (
            "build, s (fake embedding)",
            f"{res['build_s']['memvid']:.1f}",
            f"{res['build_s']['faiss']:.1f}",
            "we write video; FAISS pickles RAM",
        ),
    ]
    return "\n".join(
        [
            "## The LangChain face beside LangChain's FAISS store",
            "",
            f"`python benchmarks/bench_langchain.py` on {res['machine']}: {res['n']:,} documents, the same",
            "384-dimensional vectors in both stores, flat (exact) indexes. Ours reads every returned text",
            "back from its video frame; LangChain's FAISS store keeps all texts in RAM (a pickled docstore).",
            "The text queries are embedded by the packaged all-MiniLM-L6-v2 model in both. The searches",
            "compared (ours, theirs, and FAISS alone inside ours) take turns query by query, so that load",
            "drifting on the shared machine reaches them alike; reading texts back is ours minus FAISS alone.",
            "",
            table(("figure", "langchain-memvid", "LangChain FAISS", "note"), rows),
            "",
            "![langchain](img/langchain.png)",
            "",
        ]
    )


def table_when(res: dict) -> str:
    """When the index table ran (its rows carry their own times; older results only the run's)."""
    stamps = sorted({r["when"] for r in res["indexes"].values() if "when" in r})
    return " to ".join(dict.fromkeys([stamps[0], stamps[-1]])) if stamps else res["when"]


def index_section(res: dict) -> str:
    seed = {"flat": "~100 ms, 1.5 GB", "ivf": "~5 ms, 1.5 GB, 98 %", "ivfpq": "~3 ms, 150 MB, 95 %"}
    rows = []
    for name, r in res["indexes"].items():
        single = r.get("single", {})
        ours, raw = single.get("ours", {}), single.get("raw_faiss", {})
        rows.append(
            (
                name,
                str(r.get("factory", "")),
                f"{r.get('build_s', 0):.1f}",
                f"{ours.get('p50_ms', float('nan')):.2f} / {ours.get('p99_ms', float('nan')):.2f}",
                f"{raw.get('p50_ms', float('nan')):.2f}",
                f"{r.get('recall_at_10', float('nan')):.3f}",
                f"{r.get('memory_mb', float('nan')):.0f}",
                f"{r.get('file_mb', float('nan')):.0f}",
                seed.get(name, "-"),
            )
        )
    return "\n".join(
        [
            "## FAISS index choices at 1,000,000 vectors",
            "",
            f"`python benchmarks/bench_index.py` on {res['machine']}, {table_when(res)}: {res['n']:,} vectors of",
            f"dimension {res['dim']} ({res['data']}), k={res['k']}, {res['queries']} queries, exact search as",
            "ground truth. [indexes.md](indexes.md) has the sweeps, the batched figures and the store growth curve.",
            "",
            table(
                (
                    "index",
                    "factory",
                    "build s",
                    "ours p50 / p99 ms",
                    "raw FAISS p50 ms",
                    "recall@10",
                    "memory MiB",
                    "file MiB",
                    "seed's claim",
                ),
                rows,
            ),
            "",
            "The ivfpq and lsh rows search with an exact re-ranking (refine) step; their raw FAISS column",
            "is without it, so that gap is the price of refine, not overhead.",
            "",
            table(
                ("target", "measured", "met"),
                [(t, m, "yes" if ok else "**no**") for t, m, ok in res.get("targets", [])],
            ),
            "",
            "![index](img/index.png)",
            "",
        ]
    )


def gpu_section(res: dict) -> str:
    rows = []
    for name, r in res["kinds"].items():
        for where in ("cpu", "gpu"):
            f = r[where]
            if "error" in f:
                rows.append((name, where, f["error"], "", "", "", ""))
                continue
            rows.append(
                (
                    f"{name} ({r['factory']})",
                    where.upper(),
                    f"{f['p50_ms']:.2f} / {f['p99_ms']:.2f}",
                    f"{f['batch_100']['per_query_ms']:.3f}",
                    f"{f['batch_1000']['per_query_ms']:.4f}",
                    f"{f['recall_at_10']:.3f}",
                    "",
                )
            )
        after = r.get("gpu_after_deleting_1pct")
        if after:
            rows[-1] = (
                *rows[-1][:-1],
                f"p50 {after['p50_ms']:.2f} ms, recall {after['recall_at_10']:.3f}, "
                f"{after['returned_deleted']} deleted returned",
            )
    m = res["machine"]
    return "\n".join(
        [
            "## Serving from a GPU",
            "",
            f"`python benchmarks/bench_gpu.py` on one {m['gpu']} beside {m['cpus']} CPU cores, faiss {m['faiss']},",
            f"{res['when']}: the same {res['n']:,} x {res['dim']} data and build as the table above, served by",
            'the store\'s `VectorIndex` on the CPU, then moved to the GPU (`index_options={"gpu": True}`).',
            "Batched columns are milliseconds per query.",
            "",
            table(
                (
                    "index",
                    "on",
                    "single p50 / p99 ms",
                    "batch of 100",
                    "batch of 1,000",
                    "recall@10",
                    "GPU after deleting 1 %",
                ),
                rows,
            ),
            "",
        ]
    )


def cold_start_section(res: dict) -> str:
    med, ratio, heavy, store = res["median_s"], res["ratio_to_baseline"], res["heavy_modules"], res["store"]
    inside = res["open_search_inside_s"]
    rows = [
        ("baseline: `VectorStore` + faiss + numpy", "baseline", "1.00"),
        ("`import langchain_core.vectorstores, faiss, numpy`", "baseline_literal", "-"),
        ("`import langchain_memvid`", "import", f"{ratio['import']:.2f}"),
        ("open the store + `similarity_search_by_vector`", "open_search", f"{ratio['open_search']:.2f}"),
        ("`lcmemvid info STORE`", "info", f"{ratio['info']:.2f}"),
    ]
    return "\n".join(
        [
            "## Cold start",
            "",
            f"`python benchmarks/bench_cold_start.py` on {res['machine']}, {res['when']}: median wall time of",
            f"{res['rounds']} fresh processes each, taking turns, on a store of {store['records']:,} records in",
            f"{store['segments']} segments (dimension {store['dim']}, {store['index_type']}). The search passes an",
            "embedding that raises if called: no model is loaded. Heavy modules: those left in `sys.modules`.",
            "",
            table(
                ("process", "median s", "/ baseline", "heavy modules loaded"),
                [(label, f"{med[key]:.3f}", r, ", ".join(heavy[key]) or "-") for label, key, r in rows],
            ),
            "",
            f"Inside the search process: importing takes {inside['import_s']:.3f} s, opening the store",
            f"{inside['open_s']:.3f} s and the search {inside['search_s'] * 1000:.1f} ms.",
            "",
        ]
    )


def vectors_section(res: dict) -> str:
    enc, procs, p50 = res["encodings"], res.get("processes", {}), res["search_p50_ms"]
    size_rows = []
    for name, got in enc.items():
        b = got["bytes"]
        size_rows.append(
            (
                f"`{name}`",
                f"{got['store_to_text']:.2f}",
                f"{b['video'] / res['text_bytes']:.2f}",
                f"{got['vectors_to_text']:.2f}",
                f"{b['catalog'] / res['text_bytes']:.2f}",
                f"{got['catalog_bytes_per_record']:.0f}",
                f"{got['recall_at_10']:.4f}",
                f"{p50[name]:.2f}",
            )
        )
    if "faiss_store_to_text" in res:
        size_rows.append(
            ("LangChain FAISS", f"{res['faiss_store_to_text']:.2f}", "-", "-", "-", "-", "1 (exact)", "-")
        )
    size_rows.append(
        (
            "`float32` loaded in RAM (as 0.1 served it)",
            "-",
            "-",
            "-",
            "-",
            "-",
            "1 (exact)",
            f"{p50['float32 in RAM (0.1)']:.2f}",
        )
    )
    proc_rows = [
        (
            f"`{name}`" if name != "faiss" else "LangChain FAISS",
            f"{got['open_and_first_query_s'] * 1000:.0f}",
            f"{got['process_wall_s']:.2f}",
            f"{got['process_to_baseline']:.2f}",
            f"{got['share_mib']['VmRSS']:.0f}",
            f"{got['share_mib'].get('RssAnon', 0):.0f}",
            f"{got['share_mib'].get('RssFile', 0):.0f}",
        )
        for name, got in procs.items()
    ]
    return "\n".join(
        [
            "## Compact vectors: the whole store beside its text",
            "",
            f"`python benchmarks/bench_vectors.py` on {res['machine']}, {res['date']}: {res['n']:,} chunks of",
            f"real text ({res['text_bytes']:,} bytes of UTF-8; `benchmarks/real_corpus.py`: CPython's pydoc",
            "topics and the docstrings and documentation of the standard library and installed packages),",
            "embedded once by the packaged all-MiniLM-L6-v2 and cached; one store per vector encoding, built",
            "from the same vectors and compacted. Recall@10 is against exact float32 search over the",
            f"original vectors, over {res['queries']} held-out queries (first sentences of chunks not in the",
            "store). Search p50 is `Engine.search` by vector, k=10, texts read back, the stores taking turns.",
            "",
            table(
                (
                    "vectors",
                    "store / text",
                    "video / text",
                    "vectors / text",
                    "catalog / text",
                    "catalog bytes a record",
                    "recall@10",
                    "search p50 ms",
                ),
                size_rows,
            ),
            "",
            f"Fresh processes (median of {res.get('rounds', '?')}): open the store and answer its first",
            "query by vector (imports done); the whole process (import, open, one query) beside one that",
            f"only runs `import langchain_core.vectorstores, faiss, numpy` ({res['baseline_import_s']:.2f} s);",
            "and the store's share of the process's memory after 200 queries (resident, of which anonymous",
            "and file-backed: mapped vector files are page cache, shared and reclaimable).",
            "",
            table(
                (
                    "store",
                    "open + first query ms",
                    "process s",
                    "/ baseline",
                    "share MiB",
                    "anon MiB",
                    "file MiB",
                ),
                proc_rows,
            ),
            "",
        ]
    )


def hybrid_section(res: dict) -> str:
    out = ["## Words as well as meanings: lexical and hybrid search", ""]
    q, s = res.get("quality"), res.get("speed")
    if q:
        d, methods = q["dataset"], q["methods"]
        kinds = ", ".join(f"{n} {k}" for k, n in d["queries_by_kind"].items())
        out += [
            f"`python benchmarks/bench_hybrid.py` on {res['machine']}, {res['date']}. Quality: the labelled set",
            f"`benchmarks/hybrid_eval/dataset.json` ({d['chunks']:,} chunks of CPython {d['python']}'s pydoc topics and",
            f"standard-library docstrings; {d['queries']} queries: {kinds}; made by",
            "`benchmarks/hybrid_eval/make_dataset.py`, which says how each query's relevant chunks are chosen), in one",
            f"store with the packaged all-MiniLM-L6-v2, k={q['k']}. EnsembleRetriever is LangChain's, over",
            "BM25Retriever and this store's retriever, weights 0.5 and 0.5: as LangChain packages it (BM25 on",
            "whitespace-split text) and with BM25 on lower-cased words. Overall: every query weighs the same.",
            "`hybrid` is the store's default (lexical weight 0.7); the `hybrid w=` rows are the sweep it was",
            "chosen from: the smallest weight that meets every target, exact-identifier hit@1 >= 0.9 included.",
            "",
        ]
        metric_names = ("hit@1", "hit@5", "mrr@10", "ndcg@10")
        rows: list[tuple[str, ...]] = []
        for name, got in methods.items():
            if not got.get("available"):
                rows.append((name, "not available", "", "", ""))
                continue
            rows.append((name, *(f"{got['overall'][m]:.3f}" for m in metric_names)))
        out += [table(("search", "hit@1", "hit@5", "MRR@10", "nDCG@10"), rows), ""]
        kind_names = list(d["queries_by_kind"])
        by_kind: list[tuple[str, ...]] = [
            (
                name,
                *(
                    f"{got['by_kind'][k]['hit@1']:.3f} / {got['by_kind'][k]['ndcg@10']:.3f}"
                    for k in kind_names
                ),
            )
            for name, got in methods.items()
            if got.get("available")
        ]
        out += ["hit@1 / nDCG@10 by kind of query:", "", table(("search", *kind_names), by_kind), ""]
    if s:
        p50, p90 = s["p50_ms"], s["p90_ms"]
        labels = {
            "vector": "vector (`similarity_search_with_score`)",
            "lexical": "lexical (`lexical_search_with_score`)",
            "hybrid": "hybrid (`hybrid_search_with_score`)",
            "vector ranking": "vector ranking alone (`Engine.search_ids`, no texts read)",
            "lexical ranking": "lexical ranking alone (no texts read)",
        }
        speed_rows: list[tuple[str, ...]] = [
            (label, f"{p50[k]:.2f}", f"{p90[k]:.2f}") for k, label in labels.items() if k in p50
        ]
        speed_rows.append(
            (f"LangChain BM25Retriever ({s['bm25']['queries']} queries)", f"{s['bm25']['p50_ms']:.2f}", "-")
        )
        mem = s["memory"]
        out += [
            f"Speed: {s['records']:,} chunks of real text with cached vectors (`benchmarks/real_corpus.py`), in a store",
            f"built through `add_texts`; {s['queries']} held-out query sentences, k={s['k']}, their vectors cached (no",
            "model in the times). Each search runs its own pass over the queries on a freshly opened store,",
            f"{s.get('rounds', 1)} rounds in alternating order; texts are read back from the video.",
            "",
            table(("search", "p50 ms", "p90 ms"), speed_rows),
            "",
            "Memory: a fresh process that opens the store and runs every query through every search, beside one",
            "that reads the same texts and builds LangChain's BM25Retriever over them (MiB, after minus before).",
            "",
            table(
                ("process", "resident", "anonymous", "file-backed"),
                [
                    (
                        label,
                        f"{mem[k]['delta_mib']['VmRSS']:.0f}",
                        f"{mem[k]['delta_mib'].get('RssAnon', 0):.0f}",
                        f"{mem[k]['delta_mib'].get('RssFile', 0):.0f}",
                    )
                    for k, label in (("store", "this store"), ("bm25", "BM25Retriever"))
                ],
            ),
            "",
            f"The raw text is {s['text_bytes'] / 2**20:.0f} MiB. The store (int8 vectors, the default, with its",
            f"lexical index) takes {s['disk_bytes'] / 2**20:.1f} MiB on disk: {s['disk_bytes'] / s['text_bytes']:.2f}x the text.",
            "",
        ]
    met = {True: "yes", False: "**no**", None: "n/a"}
    out += [
        table(
            ("target (issue 16)", "measured", "met"), [(t, m, met[ok]) for t, m, ok in res.get("targets", [])]
        ),
        "",
    ]
    return "\n".join(out)


def lexical_choice_section(res: dict) -> str:
    rows = [
        (
            name,
            f"{r['bytes'] / 1e6:.2f}",
            f"{r['bytes'] / res['text_bytes']:.3f}",
            f"{r['build_s']:.1f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p90_ms']:.2f}",
            "yes" if r["delete_without_text"] else "no",
            r["cjk"],
        )
        for name, r in res.items()
        if isinstance(r, dict) and "bytes" in r
    ]
    return "\n".join(
        [
            "## Which lexical index",
            "",
            f"`python benchmarks/bench_lexical_choice.py` on {res['machine']}: {res['records']:,} real chunks",
            f"({res['text_bytes'] / 1e6:.1f} MB of text, the cached corpus cycled), {res['queries']} queries (whole chunks",
            "and their first three words), k=10, ranking only. The store keeps texts only in the video, so a",
            "lexical index must delete a record without being given its text.",
            "",
            table(("index", "MB", "x text", "build s", "p50 ms", "p90 ms", "delete without text", "CJK"), rows),
            "",
        ]
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    storage()
    langchain()
    index()
    parts = [
        "# Benchmarks",
        "",
        "Generated by `python benchmarks/report.py` from `benchmarks/results/*.json`; re-run a benchmark",
        "script, then the report, to refresh this page. Machines are shared and noisy: absolute times are",
        "+-30 %, ratios inside one run and byte counts are firm. The anchors (memvid 0.1.3, the other",
        "langchain-memvid 0.1.11, LangChain's FAISS store) were measured on the same kind of machine and",
        "corpus.",
        "",
    ]
    for name, section in (
        ("storage", storage_section),
        ("langchain", langchain_section),
        ("index", index_section),
        ("gpu", gpu_section),
        ("cold_start", cold_start_section),
        ("vectors", vectors_section),
        ("hybrid", hybrid_section),
        ("lexical_choice", lexical_choice_section),
    ):
        res = load(name)
        if res is None:
            parts += [f"_{name}: no results yet; run benchmarks/bench_{name}.py._", ""]
            continue
        try:
            parts.append(section(res))
        except KeyError as e:
            print(f"skip {name}: result file lacks {e}", file=sys.stderr)
    # Written by hand from compare.json (benchmarks/compare_revisions.py prints it), kept verbatim.
    compare = RESULTS / "compare.md"
    if compare.is_file():
        parts.append(compare.read_text())
    page = OUT.parent / "benchmarks.md"
    page.write_text("\n".join(parts))
    print(f"wrote {page}")


if __name__ == "__main__":
    main()
