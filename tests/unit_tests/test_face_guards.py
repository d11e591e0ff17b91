"""The LangChain face refuses bad input the engine would refuse (issue #12).

Bare strings as id lists, neighbours crossing a filter or obeying operator-like stored metadata,
metadata and filters nested deep enough to exhaust the stack, and loose search arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from langchain_memvid import MemvidRetriever, MemvidVectorStore
from langchain_memvid.cli import cli
from langchain_memvid.engine import CorruptData, InvalidArgument, InvalidRecord, compile_filter
from langchain_memvid.engine.codec import records as records_module
from langchain_memvid.engine.codec.records import MAX_METADATA_DEPTH, PackReader
from langchain_memvid.engine.search.filters import MAX_FILTER_DEPTH

# -- helpers --------------------------------------------------------------------------------


@pytest.fixture
def abc(store: MemvidVectorStore) -> MemvidVectorStore:
    """A store holding ids "b", "1" and "b1": a bare "b1" iterates as two of them."""
    store.add_texts(["bee", "one", "bee one"], ids=["b", "1", "b1"])
    return store


def _nested_dicts(depth: int) -> dict[str, Any]:
    """A dict `depth` levels deep (the outer dict counts as one)."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _nested_lists(depth: int) -> dict[str, Any]:
    """A metadata dict whose one value nests lists, `depth` containers in all."""
    value: Any = [1]
    for _ in range(depth - 2):
        value = [value]
    return {"a": value}


def _deep_filter(op: str, depth: int) -> dict[str, Any]:
    flt: dict[str, Any] = {"n": 1}
    for _ in range(depth):
        flt = {op: flt} if op == "$not" else {op: [flt]}
    return flt


# -- 5. a bare string is not a list of ids ----------------------------------------------------

BARE_STRING_CALLS: dict[str, Callable[[MemvidVectorStore], Any]] = {
    "delete": lambda s: s.delete("b1"),
    "delete-bytes": lambda s: s.delete(b"b1"),  # type: ignore[arg-type]
    "get_by_ids": lambda s: s.get_by_ids("b1"),
    "get_by_ids-bytes": lambda s: s.get_by_ids(b"b1"),  # type: ignore[arg-type]
    "locate": lambda s: s.locate("b1"),
    "add_texts": lambda s: s.add_texts(["x", "y"], ids="ab"),  # type: ignore[arg-type]
    "add_documents": lambda s: s.add_documents([Document("x"), Document("y")], ids="ab"),
}


@pytest.mark.parametrize("call", BARE_STRING_CALLS.values(), ids=BARE_STRING_CALLS.keys())
def test_a_bare_string_of_ids_is_refused(
    abc: MemvidVectorStore, call: Callable[[MemvidVectorStore], Any]
) -> None:
    with pytest.raises(InvalidArgument, match="list of ids"):
        call(abc)
    assert sorted(abc.engine.ids()) == ["1", "b", "b1"]  # nothing deleted, nothing added


async def test_async_twins_refuse_a_bare_string_of_ids(abc: MemvidVectorStore) -> None:
    with pytest.raises(InvalidArgument, match="list of ids"):
        await abc.adelete("b1")
    with pytest.raises(InvalidArgument, match="list of ids"):
        await abc.aget_by_ids("b1")
    with pytest.raises(InvalidArgument, match="list of ids"):
        await abc.aadd_texts(["x", "y"], ids="ab")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="list of ids"):
        await abc.aadd_documents([Document("x"), Document("y")], ids="ab")
    assert sorted(abc.engine.ids()) == ["1", "b", "b1"]
    assert await abc.adelete(["b1"]) is True
    assert sorted(abc.engine.ids()) == ["1", "b"]


# -- 6. neighbours stay inside the filter, and stored metadata is data -------------------------


@pytest.fixture
def tenants(tmp_path: Path, parsed_embedding: Embeddings) -> Generator[MemvidVectorStore, None, None]:
    """Alice's and Bob's chunks interleaved under one shared source."""
    docs = [
        Document(
            f"1 {i / 10} | chunk {i}",
            id=f"{owner}{i}",
            metadata={"source": "shared.txt", "chunk_index": i, "tenant": owner},
        )
        for i, owner in enumerate(["alice", "bob", "alice", "bob", "alice"])
    ]
    vs = MemvidVectorStore(tmp_path / "tenants", parsed_embedding)
    try:
        vs.add_documents(docs)
        yield vs
    finally:
        vs.close()


async def test_neighbors_never_cross_the_callers_filter(tenants: MemvidVectorStore) -> None:
    alice = {"tenant": "alice"}
    retriever = MemvidRetriever(vectorstore=tenants, k=1, include_neighbors=1, filter=alice)
    docs = retriever.invoke("1 0.2 | q")
    assert [d.id for d in docs] == ["alice2"]  # bob1 and bob3 share the source, not the tenant
    wide = MemvidRetriever(vectorstore=tenants, k=1, include_neighbors=2, filter=alice)
    assert [d.id for d in wide.invoke("1 0.2 | q")] == ["alice0", "alice2", "alice4"]
    assert [d.id for d in await wide.ainvoke("1 0.2 | q")] == ["alice0", "alice2", "alice4"]
    # A filter passed at invoke time binds the neighbours too, as do search_kwargs.
    open_retriever = MemvidRetriever(vectorstore=tenants, k=1, include_neighbors=1)
    assert [d.id for d in open_retriever.invoke("1 0.2 | q")] == ["bob1", "alice2", "bob3"]
    assert [d.id for d in open_retriever.invoke("1 0.2 | q", filter=alice)] == ["alice2"]
    mmr = MemvidRetriever(
        vectorstore=tenants, k=1, include_neighbors=1, search_type="mmr", search_kwargs={"filter": alice}
    )
    assert {d.metadata["tenant"] for d in mmr.invoke("1 0.2 | q")} == {"alice"}
    # A callable filter composes the same way.
    by_callable = MemvidRetriever(
        vectorstore=tenants, k=1, include_neighbors=1, filter=lambda m: m.get("tenant") == "alice"
    )
    assert [d.id for d in by_callable.invoke("1 0.2 | q")] == ["alice2"]


def test_get_neighbors_takes_a_filter(tenants: MemvidVectorStore) -> None:
    (hit,) = tenants.get_by_ids(["alice2"])
    assert [d.id for d in tenants.get_neighbors(hit)] == ["bob1", "alice2", "bob3"]
    assert [d.id for d in tenants.get_neighbors(hit, filter={"tenant": "alice"})] == ["alice2"]
    with pytest.raises(InvalidArgument, match="unknown filter operator"):
        tenants.get_neighbors(hit, filter={"tenant": {"$near": 1}})
    with pytest.raises(InvalidArgument, match="window"):
        tenants.get_neighbors(hit, window=1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "poison",
    [
        {"source": {"$ne": "x"}, "chunk_index": 1},
        {"source": {"$exists": True}, "chunk_index": 1},
        {"source": ["a.txt", "b.txt"], "chunk_index": 1},
        {"source": "a.txt", "page": {"$exists": True}, "chunk_index": 1},
        {"source": "a.txt", "page": {"$ne": 0}, "chunk_index": 1},
    ],
    ids=["source-ne", "source-exists", "source-list", "page-exists", "page-ne"],
)
def test_operator_like_stored_metadata_is_data(store: MemvidVectorStore, poison: dict[str, Any]) -> None:
    others = [
        Document(f"{src}{p}.{i}", id=f"{src}{p}.{i}", metadata={"source": src, "page": p, "chunk_index": i})
        for src in ("a.txt", "b.txt")
        for p in (0, 1)
        for i in range(3)
    ]
    others += [
        Document(f"{src}.{i}", id=f"{src}.{i}", metadata={"source": src, "chunk_index": i})
        for src in ("a.txt", "b.txt")
        for i in range(3)
    ]
    store.add_documents([*others, Document("poison", id="poison", metadata=poison)])
    (doc,) = store.get_by_ids(["poison"])
    assert store.get_neighbors(doc, window=5) == [doc]
    retriever = MemvidRetriever(vectorstore=store, k=1, include_neighbors=2)
    assert [d.id for d in retriever.invoke("poison")] == ["poison"]


def test_neighbors_are_an_exact_metadata_query(
    store: MemvidVectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 30 chunks share one position: a k-NN search with a guessed k returned only some of them.
    docs = [
        Document(f"dup {n}", id=f"d{n:02d}", metadata={"source": "s", "chunk_index": 0}) for n in range(30)
    ]
    docs.append(Document("next", id="next", metadata={"source": "s", "chunk_index": 1}))
    store.add_documents(docs)

    def no_vector_search(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("neighbours must not run a vector search")

    monkeypatch.setattr(store.engine, "search", no_vector_search)
    found = store.get_neighbors(docs[0], window=1)
    assert [d.id for d in found] == [f"d{n:02d}" for n in range(30)] + ["next"]


def test_engine_find_is_exact_and_validated(store: MemvidVectorStore) -> None:
    store.add_texts(
        [f"t{i}" for i in range(5)], [{"n": i} for i in range(5)], ids=[f"r{i}" for i in range(5)]
    )
    engine = store.engine
    assert [r.id for r in engine.find({"n": {"$gte": 2}})] == ["r2", "r3", "r4"]
    assert [r.id for r in engine.find({"n": {"$gte": 2}}, limit=np.int64(2))] == ["r2", "r3"]
    assert engine.find({"n": 99}) == []
    for limit in (0, -1, 1.5, True):
        with pytest.raises(InvalidArgument, match="limit"):
            engine.find({"n": 1}, limit=limit)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="needs a filter"):
        engine.find(None)  # type: ignore[arg-type]


# -- 7. nesting depth is bounded -----------------------------------------------------------------


@pytest.mark.parametrize("make", [_nested_dicts, _nested_lists], ids=["dicts", "lists"])
def test_metadata_nesting_is_bounded_at_write(store: MemvidVectorStore, make: Callable[[int], Any]) -> None:
    store.add_texts(["ok"], [make(MAX_METADATA_DEPTH)], ids=["ok"])
    for depth in (MAX_METADATA_DEPTH + 1, 600):
        with pytest.raises(InvalidRecord, match=f"nested more than {MAX_METADATA_DEPTH} levels"):
            store.add_texts(["deep"], [make(depth)], ids=["deep"])
    assert store.engine.ids() == ["ok"]
    (doc,) = store.get_by_ids(["ok"])
    assert doc.metadata == make(MAX_METADATA_DEPTH)
    assert [d.id for d in store.similarity_search("ok", k=5)] == ["ok"]


def test_a_self_containing_metadata_dict_is_refused(store: MemvidVectorStore) -> None:
    meta: dict[str, Any] = {}
    meta["self"] = [meta]
    with pytest.raises(InvalidRecord, match="cycle"):
        store.add_texts(["loop"], [meta])
    assert len(store) == 0


def test_deep_stored_metadata_reads_as_corrupt_data(
    tmp_path: Path, embedding: Embeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A store written by a build without the bound (the limit raised while writing).
    path = tmp_path / "old"
    with monkeypatch.context() as patch:
        patch.setattr(records_module, "MAX_METADATA_DEPTH", 10_000)
        with MemvidVectorStore(path, embedding) as old:
            old.add_texts(
                ["deep", "fine", "mid"], [_nested_dicts(600), {"n": 1}, _nested_dicts(100)], ids=["deep", "fine", "mid"]
            )
    with MemvidVectorStore(path, embedding) as vs:
        # Deeper than a write accepts now, yet within what a read accepts: what 0.1 stored stays readable.
        assert [d.metadata for d in vs.get_by_ids(["mid"])] == [_nested_dicts(100)]
        with pytest.raises(CorruptData, match="nested more than"):
            vs.get_by_ids(["deep"])
        with pytest.raises(CorruptData, match="nested more than"):
            vs.similarity_search("deep", k=2)
        assert [d.id for d in vs.get_by_ids(["fine"])] == ["fine"]
        assert [d.id for d in vs.similarity_search("x", k=1, filter={"n": 1})] == ["fine"]


def test_pack_reader_refuses_deep_metadata() -> None:
    deep = '{"a":' * 600 + "1" + "}" * 600
    entry = records_module.EncodedRecord("r", b"r", deep, b"text")
    pack = PackReader(records_module.pack_entries([entry]))
    with pytest.raises(CorruptData, match="nested more than"):
        pack.record(0)


@pytest.mark.parametrize(
    ("op", "depth"), [("$not", 1000), ("$and", 400), ("$or", 400), ("$not", MAX_FILTER_DEPTH)]
)
def test_deep_filters_are_refused(store: MemvidVectorStore, op: str, depth: int) -> None:
    store.add_texts(["one"], [{"n": 1}])
    flt = _deep_filter(op, depth)
    with pytest.raises(InvalidArgument, match=f"nested more than {MAX_FILTER_DEPTH} levels"):
        compile_filter(flt)
    with pytest.raises(InvalidArgument, match="nested more than"):
        store.similarity_search("one", k=1, filter=flt)
    with pytest.raises(InvalidArgument, match="nested more than"):
        store.max_marginal_relevance_search("one", k=1, filter=flt)


def test_filters_within_the_bound_still_work(store: MemvidVectorStore) -> None:
    store.add_texts(["one"], [{"n": 1}])
    assert len(store.similarity_search("one", k=1, filter=_deep_filter("$not", 30))) == 1
    assert len(store.similarity_search("one", k=1, filter=_deep_filter("$and", 20))) == 1
    literal = {"n": {"$eq": _nested_dicts(MAX_METADATA_DEPTH - 1)}}
    assert store.similarity_search("one", k=1, filter=literal) == []
    cyclic: dict[str, Any] = {}
    cyclic["$and"] = [cyclic]
    with pytest.raises(InvalidArgument, match="contains itself"):
        compile_filter(cyclic)


@pytest.mark.parametrize(
    "text",
    [
        '{"$not":' * 1000 + '{"n":1}' + "}" * 1000,
        '{"$and":[' * 400 + '{"n":1}' + "]}" * 400,
        '{"$or":[' * 400 + '{"n":1}' + "]}" * 400,
    ],
    ids=["not-1000", "and-400", "or-400"],
)
def test_cli_reports_a_deep_filter_without_a_traceback(tmp_path: Path, text: str) -> None:
    result = CliRunner().invoke(cli, ["search", str(tmp_path / "store"), "q", "--filter", text])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1
    assert "nested" in error_lines[0]
    assert not (tmp_path / "store").exists()


# -- 9. search arguments ----------------------------------------------------------------------

BAD_K = [0, -1, 2.0, True, "2", None]


def _searches(store: MemvidVectorStore) -> dict[str, Callable[..., Any]]:
    vector = store.embeddings.embed_query("doc 1")
    return {
        "similarity_search": lambda **kw: store.similarity_search("doc 1", **kw),
        "with_score": lambda **kw: store.similarity_search_with_score("doc 1", **kw),
        "with_relevance": lambda **kw: store.similarity_search_with_relevance_scores("doc 1", **kw),
        "by_vector": lambda **kw: store.similarity_search_by_vector(vector, **kw),
        "mmr": lambda **kw: store.max_marginal_relevance_search("doc 1", **kw),
        "mmr_by_vector": lambda **kw: store.max_marginal_relevance_search_by_vector(vector, **kw),
    }


def _asearches(store: MemvidVectorStore) -> dict[str, Callable[..., Any]]:
    vector = store.embeddings.embed_query("doc 1")
    return {
        "asimilarity_search": lambda **kw: store.asimilarity_search("doc 1", **kw),
        "awith_score": lambda **kw: store.asimilarity_search_with_score("doc 1", **kw),
        "awith_relevance": lambda **kw: store.asimilarity_search_with_relevance_scores("doc 1", **kw),
        "aby_vector": lambda **kw: store.asimilarity_search_by_vector(vector, **kw),
        "ammr": lambda **kw: store.amax_marginal_relevance_search("doc 1", **kw),
        "ammr_by_vector": lambda **kw: store.amax_marginal_relevance_search_by_vector(vector, **kw),
    }


@pytest.fixture
def docs5(store: MemvidVectorStore) -> MemvidVectorStore:
    store.add_texts([f"doc {i}" for i in range(5)], ids=[f"d{i}" for i in range(5)])
    return store


async def test_every_search_kind_validates_k_alike(docs5: MemvidVectorStore) -> None:
    for name, search in _searches(docs5).items():
        for k in BAD_K:
            with pytest.raises(InvalidArgument, match="k must be a positive integer"):
                search(k=k)
            assert name  # the loop variable names the failing kind in a traceback
        assert len(search(k=np.int64(3))) == 3
        assert len(search(k=np.int32(2))) == 2
    for name, asearch in _asearches(docs5).items():
        for k in BAD_K:
            with pytest.raises(InvalidArgument, match="k must be a positive integer"):
                await asearch(k=k)
            assert name
        assert len(await asearch(k=np.int64(3))) == 3


def test_engine_search_accepts_numpy_integers(docs5: MemvidVectorStore) -> None:
    query = docs5.embeddings.embed_query("doc 1")
    assert len(docs5.engine.search(query, np.int64(2))) == 2
    assert len(docs5.engine.search_ids(query, np.uint8(3))) == 3
    with pytest.raises(InvalidArgument, match="k must be"):
        docs5.engine.search(query, np.bool_(True))  # type: ignore[arg-type]


@pytest.mark.parametrize("lambda_mult", [math.nan, -0.1, 1.5, math.inf, -math.inf, "0.5", True, None])
async def test_mmr_lambda_mult_must_be_in_the_unit_interval(
    docs5: MemvidVectorStore, lambda_mult: Any
) -> None:
    vector = docs5.embeddings.embed_query("doc 1")
    with pytest.raises(InvalidArgument, match="lambda_mult must be a number from 0 to 1"):
        docs5.max_marginal_relevance_search("doc 1", k=2, lambda_mult=lambda_mult)
    with pytest.raises(InvalidArgument, match="lambda_mult"):
        docs5.max_marginal_relevance_search_by_vector(vector, k=2, lambda_mult=lambda_mult)
    with pytest.raises(InvalidArgument, match="lambda_mult"):
        await docs5.amax_marginal_relevance_search("doc 1", k=2, lambda_mult=lambda_mult)
    with pytest.raises(InvalidArgument, match="lambda_mult"):
        await docs5.amax_marginal_relevance_search_by_vector(vector, k=2, lambda_mult=lambda_mult)


def test_mmr_edges_of_lambda_mult_and_fetch_k_still_work(docs5: MemvidVectorStore) -> None:
    for lambda_mult in (0, 1, 0.0, 1.0, np.float32(0.25)):
        found = docs5.max_marginal_relevance_search("doc 1", k=3, lambda_mult=lambda_mult)
        assert len({d.id for d in found}) == 3
    assert len(docs5.max_marginal_relevance_search("doc 1", k=3, fetch_k=np.int64(4))) == 3
    assert len(docs5.max_marginal_relevance_search("doc 1", k=3, fetch_k=1)) == 3  # fetch_k < k: k


@pytest.mark.parametrize("fetch_k", [0, -5, 2.5, "3", True, None])
async def test_mmr_fetch_k_must_be_a_positive_integer(docs5: MemvidVectorStore, fetch_k: Any) -> None:
    with pytest.raises(InvalidArgument, match="fetch_k must be a positive integer"):
        docs5.max_marginal_relevance_search("doc 1", k=2, fetch_k=fetch_k)
    with pytest.raises(InvalidArgument, match="fetch_k"):
        await docs5.amax_marginal_relevance_search("doc 1", k=2, fetch_k=fetch_k)


EMPTY_ID_CALLS: dict[str, tuple[Callable[[MemvidVectorStore], Any], str]] = {
    "add_texts": (lambda s: s.add_texts(["x"], ids=[""]), r"ids\[0\]"),
    "add_texts-second": (lambda s: s.add_texts(["x", "y"], ids=["x", ""]), r"ids\[1\]"),
    "add_documents": (lambda s: s.add_documents([Document("x"), Document("y")], ids=[None, ""]), r"ids\[1\]"),
    "document-id": (
        lambda s: s.add_documents([Document("x", id="x"), Document("y", id="")]),
        r"documents\[1\]\.id",
    ),
    "from_texts": (lambda s: type(s).from_texts(["x"], s.embeddings, ids=[""], path=s.path), r"ids\[0\]"),
}


@pytest.mark.parametrize(("call", "where"), EMPTY_ID_CALLS.values(), ids=EMPTY_ID_CALLS.keys())
def test_an_empty_id_is_refused_not_replaced(
    store: MemvidVectorStore, call: Callable[[MemvidVectorStore], Any], where: str
) -> None:
    with pytest.raises(InvalidRecord, match=where):
        call(store)
    assert len(store) == 0


async def test_async_adds_refuse_an_empty_id_and_none_still_generates(store: MemvidVectorStore) -> None:
    with pytest.raises(InvalidRecord, match=r"ids\[0\]"):
        await store.aadd_texts(["x"], ids=[""])
    with pytest.raises(InvalidRecord, match=r"documents\[0\]\.id"):
        await store.aadd_documents([Document("x", id="")])
    assert len(store) == 0
    ids = await store.aadd_texts(["x", "y"], ids=[None, "named"])  # type: ignore[list-item]
    assert ids[1] == "named"
    assert ids[0] not in ("", None)
    assert sorted(store.engine.ids()) == sorted(ids)
