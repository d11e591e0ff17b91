"""Every index type: save and reopen, delete, upsert and filters, against brute-force answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from langchain_memvid.engine import Engine, Record
from langchain_memvid.engine.search.vectors import prepare_vectors

from .conftest import DIM, KINDS, NEEDS_GPU, N, clustered, exact_top, metric_of, records

K = 5
# Every type on the CPU; the IVF types again served from a GPU (gpu=True), with the same answers.
CASES = [pytest.param(kind, False, id=kind) for kind in KINDS] + [
    pytest.param(kind, True, id=f"{kind}-gpu", marks=NEEDS_GPU) for kind in ("ivf", "IVF4,SQ8", "IVF4,PQ4x8")
]


def build(open_engine: Callable[..., Engine], kind: str, vectors: np.ndarray, gpu: bool = False) -> Engine:
    options, _ = KINDS[kind]
    engine = open_engine(index=kind, index_options={**options, "gpu": gpu}, metric=metric_of(kind))
    engine.add(records(0, N), vectors[:N])  # trains the index, which then moves to the GPU
    assert engine.stats()["index"]["gpu"] is gpu
    return engine


def reopen(open_engine: Callable[..., Engine], gpu: bool) -> Engine:
    engine = open_engine(index_options={"gpu": True}) if gpu else open_engine()
    assert engine.stats()["index"]["gpu"] is gpu
    return engine


def ids_of(engine: Engine, query: np.ndarray, kind: str, k: int = K, **kwargs: object) -> list[str]:
    return [rid for rid, _ in engine.search_ids(query, k, search_params=KINDS[kind][1], **kwargs)]  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "gpu"), CASES)
def test_index_round_trips_through_save_and_reopen(
    open_engine: Callable[..., Engine], store_path: Path, kind: str, gpu: bool
) -> None:
    vectors = clustered(N + 20)
    engine = build(open_engine, kind, vectors, gpu)
    queries = vectors[N:]
    live = {f"r{i}": vectors[i] for i in range(N)}
    before = [ids_of(engine, q, kind) for q in queries]
    assert before == [exact_top(live, q, K, metric_of(kind)) for q in queries]
    info = engine.stats()["index"]
    assert info["kind"] == ("factory" if "," in kind else kind)
    if kind == "flat":
        assert info["snapshot"] is None
        assert not (store_path / "index").exists() or not any((store_path / "index").iterdir())
    else:
        assert info["serving"] == "approximate"
        assert (store_path / "index" / info["snapshot"]["file"]).is_file()
    engine.close()

    reopened = reopen(open_engine, gpu)  # no index argument: the store says what it is
    assert reopened.stats()["index"]["kind"] == info["kind"]
    assert reopened.stats()["index"]["factory"] == info["factory"]
    assert [ids_of(reopened, q, kind) for q in queries] == before
    hits = reopened.search(queries[0], K, search_params=KINDS[kind][1])
    assert [h.record.id for h in hits] == before[0]
    assert hits[0].record.text == f"text {before[0][0][1:]}"


@pytest.mark.parametrize(("kind", "gpu"), CASES)
def test_delete_upsert_and_filter_stay_exact(
    open_engine: Callable[..., Engine], kind: str, gpu: bool
) -> None:
    vectors = clustered(N + 40, seed=1)
    engine = build(open_engine, kind, vectors, gpu)
    metric = metric_of(kind)
    live = {f"r{i}": vectors[i] for i in range(N)}
    queries = vectors[N : N + 20]

    # Delete the current nearest neighbour of every query, after searching once: nothing the
    # searches cached (search parameters, the record-id map) may outlive the deletes.
    doomed = sorted({exact_top(live, q, 1, metric)[0] for q in queries})
    assert {ids_of(engine, q, kind, 1)[0] for q in queries} == set(doomed)
    assert engine.delete(doomed) == len(doomed)
    for rid in doomed:
        del live[rid]
    # Upsert: r7 and r8 get new vectors (and texts); a query at the new vector finds them.
    engine.add(
        [
            Record("r7", "seven, moved", {"group": 3, "n": 7}),
            Record("r8", "eight, moved", {"group": 0, "n": 8}),
        ],
        vectors[N + 20 : N + 22],
    )
    live["r7"], live["r8"] = vectors[N + 20], vectors[N + 21]

    def check(engine: Engine) -> None:
        for q in queries:
            got = ids_of(engine, q, kind)
            assert got == exact_top(live, q, K, metric)
            assert not set(got) & set(doomed)
        assert ids_of(engine, vectors[N + 20], kind, 1) == ["r7"]
        assert (
            engine.search(vectors[N + 21], 1, search_params=KINDS[kind][1])[0].record.text == "eight, moved"
        )
        assert engine.stats()["vectors_in_index"] == len(live)
        # Filters: k results whenever k records match, from a small set (searched exactly) or a
        # large one searched through the index with an ID selector (exact_max=0).
        small = {"n": {"$in": [1, 2, 3, 50, 60, 70, 390]}}
        wanted = {rid: v for rid, v in live.items() if int(rid[1:]) in (1, 2, 3, 50, 60, 70, 390)}
        assert ids_of(engine, queries[0], kind, 10, filter=small) == exact_top(wanted, queries[0], 10, metric)
        group = {rid: v for rid, v in live.items() if int(rid[1:]) % 4 == 1}
        params = {**KINDS[kind][1], "exact_max": 0}
        for q in queries[:5]:
            got = [r for r, _ in engine.search_ids(q, K, filter={"group": 1}, search_params=params)]
            assert got == exact_top(group, q, K, metric)

    check(engine)
    engine.close()
    engine = reopen(open_engine, gpu)
    check(engine)  # snapshot + delta + deletions excluded, after a reopen
    engine.compact()  # folds everything into a new snapshot, served from the GPU again
    assert engine.stats()["index"]["gpu"] is gpu
    assert engine.stats()["index"]["deleted_excluded"] == 0
    check(engine)


@pytest.mark.parametrize("kind", ["ivfpq", "lsh", "hnsw"])
def test_vectors_come_back_exact_for_lossy_indexes(open_engine: Callable[..., Engine], kind: str) -> None:
    vectors = clustered(N, seed=2)
    engine = build(open_engine, kind, vectors)
    stored = engine.vectors(["r3", "r399"])
    scale = (lambda v: v / np.linalg.norm(v)) if metric_of(kind) == "cosine" else (lambda v: v)
    np.testing.assert_allclose(stored["r3"], scale(vectors[3]), rtol=1e-6)
    np.testing.assert_allclose(stored["r399"], scale(vectors[399]), rtol=1e-6)
    hit = engine.search(vectors[3], 1, with_vectors=True, search_params=KINDS[kind][1])[0]
    assert hit.record.id == "r3"
    np.testing.assert_allclose(hit.vector, scale(vectors[3]), rtol=1e-6)


def test_scores_keep_the_metric_after_training(open_engine: Callable[..., Engine]) -> None:
    vectors = clustered(N, seed=3)
    engine = build(open_engine, "hnsw", vectors)
    q = vectors[10]
    hits = engine.search(q, 3, search_params=KINDS["hnsw"][1])
    expected = [
        float(
            vectors[int(h.record.id[1:])]
            @ q
            / np.linalg.norm(vectors[int(h.record.id[1:])])
            / np.linalg.norm(q)
        )
        for h in hits
    ]
    np.testing.assert_allclose([h.score for h in hits], expected, rtol=1e-4)
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_ivfpq_drops_distance_tables_larger_than_its_codes(open_engine: Callable[..., Engine]) -> None:
    import faiss

    engine = build(open_engine, "ivfpq", clustered(N, seed=4))
    assert engine._index is not None
    pq = faiss.downcast_index(faiss.extract_index_ivf(engine._index.main))
    assert pq.use_precomputed_table == -1
    assert pq.precomputed_table.size() == 0


def test_a_column_major_batch_of_queries_is_searched_row_by_row(open_engine: Callable[..., Engine]) -> None:
    # FAISS reads a batch as C-ordered rows: a batch in another layout must still be read row by row.
    vectors = clustered(N, seed=4)
    engine = build(open_engine, "ivf", vectors)
    engine.build_index()  # every vector in the trained index: the planned search path
    index = engine._index
    assert index is not None
    assert index._plan_for(3) is not None
    batch = vectors[[5, 50, 150]]
    one_by_one = [index.search(prepare_vectors(row, DIM, "cosine"), 3)[1][0].tolist() for row in batch]
    for layout in (batch, np.asfortranarray(batch)):
        assert prepare_vectors(layout, DIM, "cosine").flags.c_contiguous
        assert index.search(prepare_vectors(layout, DIM, "cosine"), 3)[1].tolist() == one_by_one
