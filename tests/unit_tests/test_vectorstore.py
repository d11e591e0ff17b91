"""MemvidVectorStore beyond the standard suite: filters, scores, reopening, concurrency, the video."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import zxingcpp
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from langchain_memvid import MemvidVectorStore
from langchain_memvid.engine import (
    InvalidArgument,
    InvalidRecord,
    MemvidError,
    SegmentNotFound,
    StoreConfigMismatch,
    StoreNotFound,
)

# -- helpers --------------------------------------------------------------------------------


class UnsizedEmbedding(Embeddings):
    """An embedding that states no dimension, so a mismatch shows only when it is called."""

    def __init__(self, size: int) -> None:
        self._inner = DeterministicFakeEmbedding(size=size)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._inner.embed_query(text)


def _metadata(i: int) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "n": i,
        "parity": "even" if i % 2 == 0 else "odd",
        "tags": [f"t{i % 3}"],
        "name": f"doc{i:02d}",
    }
    if i % 4 == 0:
        meta["extra"] = True
    return meta


@pytest.fixture
def filled(store: MemvidVectorStore) -> MemvidVectorStore:
    store.add_texts(
        [f"document number {i}" for i in range(12)],
        [_metadata(i) for i in range(12)],
        ids=[f"d{i}" for i in range(12)],
    )
    return store


FILTERS: list[tuple[str, Any, Callable[[Mapping[str, Any]], bool]]] = [
    ("implicit-eq", {"parity": "even"}, lambda m: m["parity"] == "even"),
    ("eq", {"n": {"$eq": 3}}, lambda m: m["n"] == 3),
    ("ne", {"n": {"$ne": 3}}, lambda m: m["n"] != 3),
    ("gt", {"n": {"$gt": 8}}, lambda m: m["n"] > 8),
    ("gte", {"n": {"$gte": 8}}, lambda m: m["n"] >= 8),
    ("lt", {"n": {"$lt": 3}}, lambda m: m["n"] < 3),
    ("lte", {"n": {"$lte": 3}}, lambda m: m["n"] <= 3),
    ("in", {"n": {"$in": [1, 5, 99]}}, lambda m: m["n"] in (1, 5)),
    ("nin", {"n": {"$nin": [1, 5]}}, lambda m: m["n"] not in (1, 5)),
    ("exists", {"extra": {"$exists": True}}, lambda m: "extra" in m),
    ("not-exists", {"extra": {"$exists": False}}, lambda m: "extra" not in m),
    ("contains", {"tags": {"$contains": "t1"}}, lambda m: "t1" in m["tags"]),
    ("str-range", {"name": {"$gte": "doc05", "$lt": "doc08"}}, lambda m: 5 <= m["n"] < 8),
    (
        "and",
        {"$and": [{"parity": "even"}, {"n": {"$gt": 4}}]},
        lambda m: m["parity"] == "even" and m["n"] > 4,
    ),
    ("or", {"$or": [{"n": 1}, {"n": {"$gte": 10}}]}, lambda m: m["n"] == 1 or m["n"] >= 10),
    (
        "nested",
        {
            "$or": [
                {"$and": [{"parity": "odd"}, {"n": {"$lt": 5}}]},
                {"$and": [{"extra": True}, {"n": {"$gt": 5}}]},
            ]
        },
        lambda m: (m["parity"] == "odd" and m["n"] < 5) or ("extra" in m and m["n"] > 5),
    ),
    ("not", {"$not": {"parity": "even"}}, lambda m: m["parity"] != "even"),
    ("callable", lambda m: m["n"] % 5 == 0, lambda m: m["n"] % 5 == 0),
    ("empty", {}, lambda m: True),
]


# -- filters --------------------------------------------------------------------------------


@pytest.mark.parametrize(("flt", "expected"), [(f, e) for _, f, e in FILTERS], ids=[n for n, _, _ in FILTERS])
def test_filter_operators(filled: MemvidVectorStore, flt: Any, expected: Callable[..., bool]) -> None:
    want = {f"d{i}" for i in range(12) if expected(_metadata(i))}
    docs = filled.similarity_search("document", k=100, filter=flt)
    assert {d.id for d in docs} == want
    assert all(d.metadata == _metadata(int(d.id[1:])) for d in docs if d.id)


@pytest.mark.parametrize(
    ("flt", "k", "count"),
    [
        ({"n": {"$in": [2, 7]}}, 5, 2),  # fewer match than k
        ({"n": 99}, 5, 0),  # none match
        ({"n": {"$gte": 0}}, 5, 5),  # all match
        ({"parity": "odd"}, 6, 6),  # exactly k match
    ],
)
def test_filter_counts(filled: MemvidVectorStore, flt: dict[str, Any], k: int, count: int) -> None:
    assert len(filled.similarity_search("document", k=k, filter=flt)) == count
    assert len(filled.similarity_search_with_score("document", k=k, filter=flt)) == count
    assert len(filled.max_marginal_relevance_search("document", k=k, filter=flt)) == count


def test_filter_runs_before_the_knn(store: MemvidVectorStore, embedding: Embeddings) -> None:
    texts = [f"passage {i}" for i in range(200)]
    query = "passage 0"
    vectors = np.array(embedding.embed_documents(texts))
    q = np.array(embedding.embed_query(query))
    cos = vectors @ q / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(q))
    rare = set(np.argsort(cos)[:4].tolist())  # the four passages farthest from the query
    store.add_texts(texts, [{"rare": i in rare} for i in range(200)], ids=[str(i) for i in range(200)])
    # A post-filter over the 20 nearest candidates would find none of them.
    nearest = store.similarity_search(query, k=20)
    assert not {d.id for d in nearest} & {str(i) for i in rare}
    docs = store.similarity_search(query, k=4, filter={"rare": True})
    assert {d.id for d in docs} == {str(i) for i in rare}


def test_unknown_filter_operator(filled: MemvidVectorStore) -> None:
    with pytest.raises(ValueError, match=r"\$regex") as info:
        filled.similarity_search("document", k=2, filter={"name": {"$regex": "doc.*"}})
    assert isinstance(info.value, MemvidError)


# -- scores ---------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_relevance_scores_in_unit_interval(tmp_path: Path, embedding: Embeddings, metric: str) -> None:
    texts = [f"text {i}" for i in range(10)]
    # Exact vectors: the exact match must score exactly 1 (int8 gives 0.999; see the encodings test).
    exact = {"vector_encoding": "float32"}
    with MemvidVectorStore.from_texts(texts, embedding, path=tmp_path / metric, metric=metric, **exact) as store:
        assert store.metric == metric
        raw = store.similarity_search_with_score("text 3", k=10)
        relevance = store.similarity_search_with_relevance_scores("text 3", k=10)
    assert [d.id for d, _ in raw] == [d.id for d, _ in relevance]
    scores = [s for _, s in relevance]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)
    if metric != "ip":  # the exact match comes first and is fully relevant
        assert relevance[0][0].page_content == "text 3"
        assert relevance[0][1] == pytest.approx(1.0, abs=1e-5)
    if metric == "l2":
        assert [s for _, s in raw] == sorted(s for _, s in raw)  # distances, closest first


def test_relevance_of_extreme_inner_products(tmp_path: Path, parsed_embedding: Embeddings) -> None:
    texts = ["1000 0 | far along", "-1000 0 | far against", "0 1 | orthogonal"]
    with MemvidVectorStore.from_texts(texts, parsed_embedding, path=tmp_path / "s", metric="ip") as store:
        scored = {
            d.page_content: s for d, s in store.similarity_search_with_relevance_scores("1000 0 | q", k=3)
        }
    assert scored["1000 0 | far along"] == 1.0
    assert scored["-1000 0 | far against"] == 0.0
    assert scored["0 1 | orthogonal"] == pytest.approx(0.5)


def test_score_threshold(filled: MemvidVectorStore) -> None:
    docs = filled.similarity_search_with_relevance_scores("document number 4", k=5, score_threshold=0.99)
    assert [d.id for d, _ in docs] == ["d4"]


# -- reopening ------------------------------------------------------------------------------


def test_reopen_gives_same_results(tmp_path: Path, embedding: Embeddings) -> None:
    path = tmp_path / "store"
    with MemvidVectorStore(path, embedding) as store:
        store.add_texts([f"fact {i}" for i in range(20)], [{"i": i} for i in range(20)])
        before = store.similarity_search_with_score("fact 7", k=5, filter={"i": {"$lt": 15}})
    with MemvidVectorStore(str(path), DeterministicFakeEmbedding(size=6)) as reopened:
        after = reopened.similarity_search_with_score("fact 7", k=5, filter={"i": {"$lt": 15}})
        assert len(reopened) == 20
        assert reopened.stats()["model"] == "DeterministicFakeEmbedding"
    assert [(d, pytest.approx(s)) for d, s in before] == after


def test_dimension_mismatch_on_reopen(tmp_path: Path, embedding: Embeddings) -> None:
    path = tmp_path / "store"
    MemvidVectorStore.from_texts(["a", "b"], embedding, path=path).close()
    with pytest.raises(StoreConfigMismatch, match="6-dimensional"):
        MemvidVectorStore(path, DeterministicFakeEmbedding(size=8))
    # An embedding that does not state its size is caught on first use, before anything is written.
    with MemvidVectorStore(path, UnsizedEmbedding(8)) as store:
        with pytest.raises(StoreConfigMismatch, match="returned 8"):
            store.similarity_search("a")
        with pytest.raises(ValueError, match="model it was built with"):
            store.add_texts(["c"])
        assert len(store) == 2


def test_metric_is_kept_on_reopen(tmp_path: Path, embedding: Embeddings) -> None:
    path = tmp_path / "store"
    MemvidVectorStore.from_texts(["a"], embedding, path=path, metric="l2").close()
    with MemvidVectorStore(path, embedding) as store:
        assert store.metric == "l2"
    with pytest.raises(StoreConfigMismatch, match="l2"):
        MemvidVectorStore(path, embedding, metric="cosine")


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_reopen_without_embedding_needs_a_loadable_model(tmp_path: Path, embedding: Embeddings) -> None:
    path = tmp_path / "store"
    MemvidVectorStore.from_texts(["a"], embedding, path=path).close()
    with pytest.raises(InvalidArgument, match=r"DeterministicFakeEmbedding.*Pass the embedding"):
        MemvidVectorStore(path)


def test_open_missing_store_without_embedding(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFound, match="pass an embedding"):
        MemvidVectorStore(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


# -- writing --------------------------------------------------------------------------------


def test_ids_precedence_and_generation(store: MemvidVectorStore) -> None:
    docs = [Document("a", id="doc-a"), Document("b"), Document("c", id="doc-c")]
    ids = store.add_documents(docs)
    assert ids[0] == "doc-a"
    assert ids[2] == "doc-c"
    assert str(uuid.UUID(ids[1])) == ids[1]
    assert store.add_documents([Document("a2", id="ignored")], ids=["doc-a"]) == ["doc-a"]
    assert store.add_documents([Document("d", id="doc-d")], ids=[None]) == ["doc-d"]  # type: ignore[list-item]
    assert {d.id: d.page_content for d in store.get_by_ids(["doc-a", "doc-c", "doc-d", "nope"])} == {
        "doc-a": "a2",
        "doc-c": "c",
        "doc-d": "d",
    }
    assert [d.id for d in docs] == ["doc-a", None, "doc-c"]


def test_add_texts_checks_lengths(store: MemvidVectorStore) -> None:
    with pytest.raises(ValueError, match="2 metadatas and 1 texts"):
        store.add_texts(["a"], [{}, {}])
    with pytest.raises(ValueError, match="2 ids and 1 documents"):
        store.add_texts(["a"], ids=["1", "2"])
    with pytest.raises(TypeError, match="unexpected keyword"):
        store.add_texts(["a"], upsert=True)
    assert store.add_texts([]) == []
    assert len(store) == 0


def test_batch_size_commits_per_batch(store: MemvidVectorStore) -> None:
    store.add_texts([f"t{i}" for i in range(5)], batch_size=2)
    assert store.stats()["segments"] == 3
    assert len(store) == 5
    with pytest.raises(ValueError, match="batch_size"):
        store.add_texts(["x"], batch_size=0)


def test_metadata_round_trips_and_is_a_copy(store: MemvidVectorStore) -> None:
    meta = {"int": 1, "float": 1.5, "bool": True, "none": None, "list": [1, "a"], "dict": {"k": [2]}}
    store.add_texts(["x"], [meta], ids=["x"])
    (doc,) = store.get_by_ids(["x"])
    assert doc.metadata == meta
    assert type(doc.metadata["int"]) is int
    doc.metadata["list"].append("mutated")
    assert store.get_by_ids(["x"])[0].metadata == meta
    assert store.similarity_search("x", k=1)[0].metadata == meta


def test_unstorable_metadata_writes_nothing(store: MemvidVectorStore) -> None:
    with pytest.raises(InvalidRecord, match="set"):
        store.add_texts(["ok", "bad"], [{}, {"s": {1, 2}}])
    assert len(store) == 0


def test_per_query_index_knobs(tmp_path: Path) -> None:
    # 40 clusters of 20 points in IVF with 8 lists: one probed list cannot hold every true
    # neighbour of a point near a list boundary; probing all 8 is exact.
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((40, 16))
    points = (centres[np.arange(800) % 40] + 0.8 * rng.standard_normal((800, 16))).astype(np.float32)
    texts = [f"p{i}" for i in range(800)]
    by_text = dict(zip(texts, points, strict=True))

    class Table(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [by_text[t].tolist() for t in texts]

        def embed_query(self, text: str) -> list[float]:
            return by_text[text].tolist()

    store = MemvidVectorStore(
        tmp_path / "ivf",
        Table(),
        index="ivf",
        index_options={"nlist": 8, "nprobe": 1, "min_vectors": 100},
        vector_encoding="float32",  # compared with numpy over the exact points
    )
    store.add_texts(texts, ids=texts)
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    misses = {"default": 0, "all lists": 0}
    for i in range(0, 800, 20):
        truth = [f"p{j}" for j in np.argsort(-(unit @ unit[i]))[:10]]
        default = [d.id for d in store.similarity_search(f"p{i}", k=10)]
        probed = store.similarity_search(f"p{i}", k=10, search_params={"nprobe": 8})
        misses["default"] += len(set(truth) - set(default))
        misses["all lists"] += len(set(truth) - {d.id for d in probed})
    assert misses["all lists"] == 0
    assert misses["default"] > 0, "nprobe=1 should miss some neighbours, or the knob proves nothing"
    retriever = store.as_retriever(search_kwargs={"k": 3, "search_params": {"nprobe": 8}})
    found = retriever.invoke("p5")
    assert len(found) == 3
    assert found[0].id == "p5"
    with pytest.raises(InvalidArgument, match="Unknown search parameter 'probes'"):
        store.similarity_search("p1", search_params={"probes": 3})
    with pytest.raises(InvalidArgument, match="nprobe"):
        store.max_marginal_relevance_search("p1", search_params={"nprobe": 0})
    store.close()


def test_delete(filled: MemvidVectorStore) -> None:
    assert filled.delete(["d1", "d2", "missing"]) is True
    assert len(filled) == 10
    assert filled.get_by_ids(["d1", "d2"]) == []
    with pytest.raises(ValueError, match="list of ids"):
        filled.delete()


def test_empty_store_searches(tmp_path: Path) -> None:
    # An embedding that states no size: the dimension stays unknown until the first add.
    store = MemvidVectorStore(tmp_path / "store", UnsizedEmbedding(6))
    assert store.stats()["dim"] is None
    assert store.similarity_search("x") == []
    assert store.similarity_search_with_relevance_scores("x") == []
    assert store.max_marginal_relevance_search("x") == []
    assert store.get_by_ids(["x"]) == []
    store.add_texts(["x"])
    assert store.stats()["dim"] == 6
    with pytest.raises(ValueError, match="k must be a positive integer"):
        store.similarity_search("x", k=0)
    store.close()


def test_from_texts_uses_a_temporary_folder(embedding: Embeddings) -> None:
    store = MemvidVectorStore.from_texts(["a", "b"], embedding, ids=["1", "2"])
    try:
        assert store.path.is_dir()
        assert "memvid-" in store.path.name
        assert store.embeddings is embedding
        assert len(store) == 2
    finally:
        store.close()


def test_from_documents_keeps_document_ids(tmp_path: Path, embedding: Embeddings) -> None:
    docs = [Document("a", id="x"), Document("b", id="y")]
    with MemvidVectorStore.from_documents(docs, embedding, path=tmp_path / "s", batch_size=1) as store:
        assert sorted(d.id or "" for d in store.get_by_ids(["x", "y"])) == ["x", "y"]
        assert store.stats()["segments"] == 2


# -- MMR, neighbours, the video --------------------------------------------------------------


def test_mmr_returns_diverse_results(tmp_path: Path, parsed_embedding: Embeddings) -> None:
    texts = ["1 0 | a1", "1 0.01 | a2", "1 0.02 | a3", "0.6 0.8 | b"]
    # Vectors 0.01 apart: exact (float32) vectors keep them apart (int8 would round them together).
    exact = {"vector_encoding": "float32"}
    with MemvidVectorStore.from_texts(texts, parsed_embedding, path=tmp_path / "s", **exact) as store:
        plain = [d.page_content for d in store.similarity_search("1 0.1 | q", k=2)]
        diverse = [d.page_content for d in store.max_marginal_relevance_search("1 0.1 | q", k=2, fetch_k=4)]
        relevant = store.max_marginal_relevance_search("1 0.1 | q", k=2, fetch_k=4, lambda_mult=1.0)
        by_vector = store.max_marginal_relevance_search_by_vector([1.0, 0.1], k=2, fetch_k=4)
    assert plain == ["1 0.02 | a3", "1 0.01 | a2"]
    assert diverse == ["1 0.02 | a3", "0.6 0.8 | b"]
    assert [d.page_content for d in relevant] == plain
    assert [d.page_content for d in by_vector] == diverse


def test_get_neighbors(store: MemvidVectorStore) -> None:
    docs = [Document(f"a{i}", metadata={"source": "a.txt", "chunk_index": i}) for i in range(6)]
    docs += [Document(f"b{i}", metadata={"source": "b.txt", "chunk_index": i}) for i in range(3)]
    docs += [
        Document(f"c{p}.{i}", metadata={"source": "c.pdf", "page": p, "chunk_index": i})
        for p in range(2)
        for i in range(3)
    ]
    store.add_documents(docs)

    def around(text: str, window: int = 1) -> list[str]:
        (doc,) = [d for d in store.similarity_search(text, k=100) if d.page_content == text]
        return [d.page_content for d in store.get_neighbors(doc, window=window)]

    assert around("a2") == ["a1", "a2", "a3"]
    assert around("a0", window=2) == ["a0", "a1", "a2"]
    assert around("a5", window=0) == ["a5"]
    assert around("b1", window=5) == ["b0", "b1", "b2"]
    assert around("c1.0") == ["c1.0", "c1.1"]  # chunk numbering restarts on each page
    loose = Document("loose")
    assert store.get_neighbors(loose) == [loose]
    with pytest.raises(ValueError, match="window"):
        store.get_neighbors(docs[0], window=-1)


def test_locate_points_at_a_real_frame(filled: MemvidVectorStore) -> None:
    hit = filled.similarity_search("document number 5", k=1)[0]
    assert hit.id is not None
    loc = filled.locate([hit.id, "unknown"])
    assert list(loc) == [hit.id]
    where = loc[hit.id]
    assert where.segment.startswith("segments/")
    assert where.segment.endswith(".mov")
    with av.open(str(filled.path / where.segment)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
    assert 0 <= where.frame < len(frames)
    frame = frames[where.frame]
    assert float(frame.pts * stream.time_base) == pytest.approx(where.timestamp)
    assert zxingcpp.read_barcodes(frame.to_ndarray(format="gray")), "the frame holds a QR code"
    assert "frame" not in hit.metadata  # location is not injected into results


def test_text_lives_only_in_the_video(tmp_path: Path, embedding: Embeddings) -> None:
    path = tmp_path / "store"
    needle = "zebra-quasar-7731 is only ever written into QR frames"
    with MemvidVectorStore(path, embedding) as store:
        store.add_texts([needle, "another text"], [{"k": 1}, {"k": 2}], ids=["z", "o"])
        assert store.get_by_ids(["z"])[0].page_content == needle
    others = [
        f for f in path.rglob("*") if f.is_file() and not (f.parent.name == "segments" and f.suffix == ".mov")
    ]
    assert any(f.name.startswith("catalog") for f in others)
    assert any(f.suffix == ".faiss" for f in others)
    for file in others:
        data = file.read_bytes()
        assert b"zebra-quasar" not in data, file
        assert "zebra-quasar".encode("utf-16-le") not in data, file
    for video in (path / "segments").glob("*.mov"):
        video.unlink()
    with MemvidVectorStore(path, embedding) as store:
        assert len(store) == 2  # the catalog and vectors are intact...
        with pytest.raises(SegmentNotFound, match=r"missing.*cannot be read"):
            store.get_by_ids(["z"])  # ...but the text is gone with the video
        with pytest.raises(FileNotFoundError):
            store.similarity_search("anything", k=1)


# -- concurrency ----------------------------------------------------------------------------


def test_threads_add_and_search_at_once(store: MemvidVectorStore) -> None:
    errors: list[BaseException] = []
    workers, rounds = 6, 8

    def work(w: int) -> None:
        try:
            for r in range(rounds):
                ids = [f"t{w}-{r}-{j}" for j in range(2)]
                store.add_texts([f"thread {w} round {r} item {j}" for j in range(2)], ids=ids)
                assert len(store.similarity_search(f"thread {w}", k=3)) == 3 or r == 0
                got = {d.id: d.page_content for d in store.get_by_ids(ids)}
                assert got == {i: f"thread {w} round {r} item {i[-1]}" for i in ids}
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(store) == workers * rounds * 2
    ids = [f"t{w}-{r}-{j}" for w in range(workers) for r in range(rounds) for j in range(2)]
    docs = {d.id: d.page_content for d in store.get_by_ids(ids)}
    assert docs == {i: "thread {} round {} item {}".format(*i[1:].split("-")) for i in ids}


def _write_from_process(path: str, worker: int, count: int) -> None:
    with MemvidVectorStore(path, DeterministicFakeEmbedding(size=6)) as store:
        for i in range(count):
            store.add_texts([f"process {worker} text {i}"], [{"worker": worker}], ids=[f"p{worker}-{i}"])


@pytest.mark.slow
def test_two_processes_write_the_same_store(store: MemvidVectorStore) -> None:
    store.add_texts(["seed"], ids=["seed"])
    ctx = multiprocessing.get_context("spawn")
    count = 15
    procs = [ctx.Process(target=_write_from_process, args=(str(store.path), w, count)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert [p.exitcode for p in procs] == [0, 0]
    # The store opened before the writers ran sees their commits.
    assert len(store) == 1 + 2 * count
    ids = [f"p{w}-{i}" for w in range(2) for i in range(count)]
    docs = {d.id: d for d in store.get_by_ids(ids)}
    assert {i: d.page_content for i, d in docs.items()} == {
        f"p{w}-{i}": f"process {w} text {i}" for w in range(2) for i in range(count)
    }
    assert len(store.similarity_search("process", k=100, filter={"worker": 1})) == count
    assert store.verify().ok


# -- async ----------------------------------------------------------------------------------


async def test_async_twins(store: MemvidVectorStore) -> None:
    ids = await store.aadd_texts(["alpha", "beta", "gamma"], [{"i": 0}, {"i": 1}, {"i": 2}])
    assert len(ids) == 3
    assert [d.page_content for d in await store.asimilarity_search("beta", k=1)] == ["beta"]
    scored = await store.asimilarity_search_with_relevance_scores("beta", k=3)
    assert all(0 <= s <= 1 for _, s in scored)
    mmr = await store.amax_marginal_relevance_search("beta", k=2, filter={"i": {"$gt": 0}})
    assert {d.page_content for d in mmr} == {"beta", "gamma"}
    assert await store.adelete([ids[0]]) is True
    assert await store.aget_by_ids(ids) == store.get_by_ids(ids[1:])


# -- maintenance ----------------------------------------------------------------------------


def test_verify_compact_stats(filled: MemvidVectorStore) -> None:
    filled.delete(["d0", "d1"])
    filled.add_texts(["replacement"], ids=["d2"])
    assert filled.verify().ok
    before = filled.stats()
    result = filled.compact()
    assert result["records"] == 10
    assert result["segments_after"] <= before["segments"]
    assert filled.get_by_ids(["d2"])[0].page_content == "replacement"
    assert filled.verify().ok
    assert filled.stats()["records"] == 10


# -- the real model -------------------------------------------------------------------------


@pytest.mark.model
def test_real_model_and_reopen_without_embedding(tmp_path: Path) -> None:
    from langchain_memvid import SentenceTransformerEmbeddings

    path = tmp_path / "store"
    sentences = [
        "The cat sat on the warm windowsill all afternoon.",
        "Interest rates were raised by the central bank.",
        "The rocket reached orbit after a flawless launch.",
        "Fresh basil and tomatoes make a simple pasta sauce.",
    ]
    with MemvidVectorStore(path, SentenceTransformerEmbeddings()) as store:
        store.add_texts(sentences)
        assert store.similarity_search("monetary policy and inflation", k=1)[0].page_content == sentences[1]
    with MemvidVectorStore(path) as reopened:
        assert isinstance(reopened.embeddings, SentenceTransformerEmbeddings)
        assert reopened.stats()["dim"] == 384
        assert reopened.similarity_search("a spacecraft launch", k=1)[0].page_content == sentences[2]


# -- vector encodings ------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["float16", "int8", "binary"])
def test_a_compact_store_answers_like_its_stored_vectors_and_converts(tmp_path: Path, encoding: str) -> None:
    embedding = DeterministicFakeEmbedding(size=16)
    texts = [f"document number {i}" for i in range(40)]
    store = MemvidVectorStore(tmp_path / "s", embedding, vector_encoding=encoding)
    ids = store.add_texts(texts, metadatas=[{"i": i} for i in range(40)])
    assert store.engine.stats()["vector_encodings"] == {encoding: 40}
    docs = store.similarity_search_with_score(texts[7], k=3)
    reopened = MemvidVectorStore(tmp_path / "s", embedding)
    assert reopened.similarity_search_with_score(texts[7], k=3) == docs
    assert reopened.get_by_ids([ids[7]])[0].page_content == texts[7]
    mmr = reopened.max_marginal_relevance_search(texts[7], k=2, fetch_k=10)
    assert len(mmr) == 2
    with pytest.raises(StoreConfigMismatch, match="compact"):
        MemvidVectorStore(tmp_path / "s", embedding, vector_encoding="float32")
    reopened.compact(vector_encoding="float32")
    assert MemvidVectorStore(tmp_path / "s", embedding).engine.stats()["vector_encodings"] == {"float32": 40}
