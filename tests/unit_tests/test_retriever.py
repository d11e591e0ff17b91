"""MemvidRetriever: constructions, search types, k and filter at invoke, neighbouring chunks."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from pydantic import ValidationError

from langchain_memvid import MemvidRetriever, MemvidVectorStore


@pytest.fixture
def chunks() -> list[Document]:
    docs = [
        Document(f"1 {i / 10} | alpha chunk {i}", id=f"a{i}", metadata={"source": "a.txt", "chunk_index": i})
        for i in range(6)
    ]
    docs += [
        Document(f"0 1 | beta chunk {i}", id=f"b{i}", metadata={"source": "b.txt", "chunk_index": i})
        for i in range(3)
    ]
    return docs


@pytest.fixture
def store(
    tmp_path: Path, parsed_embedding: Embeddings, chunks: list[Document]
) -> Generator[MemvidVectorStore, None, None]:
    vs = MemvidVectorStore(tmp_path / "store", parsed_embedding)
    try:
        vs.add_documents(chunks)
        yield vs
    finally:
        vs.close()


def test_from_vectorstore_and_from_path(store: MemvidVectorStore, parsed_embedding: Embeddings) -> None:
    by_store = MemvidRetriever(vectorstore=store, k=2)
    by_path = MemvidRetriever(path=store.path, embedding=parsed_embedding, k=2)
    assert by_path.vectorstore is not store
    first = by_store.invoke("1 0.2 | q")
    assert [d.id for d in first] == ["a2", "a3"]
    assert by_path.invoke("1 0.2 | q") == first
    with pytest.raises(ValidationError, match="vectorstore= or path="):
        MemvidRetriever()


def test_invoke_k_overrides_constructor(store: MemvidVectorStore) -> None:
    retriever = MemvidRetriever(vectorstore=store)
    assert len(retriever.invoke("1 0 | q")) == 4
    assert len(retriever.invoke("1 0 | q", k=3)) == 3
    assert len(MemvidRetriever(vectorstore=store, k=7).invoke("1 0 | q")) == 7


def test_filter_field_and_invoke_kwarg(store: MemvidVectorStore) -> None:
    retriever = MemvidRetriever(vectorstore=store, k=5, filter={"source": "b.txt"})
    assert {d.id for d in retriever.invoke("1 0 | q")} == {"b0", "b1", "b2"}
    narrowed = retriever.invoke("1 0 | q", filter={"chunk_index": {"$gte": 4}})
    assert {d.id for d in narrowed} == {"a4", "a5"}
    in_kwargs = MemvidRetriever(vectorstore=store, search_kwargs={"filter": lambda m: m["chunk_index"] == 0})
    assert {d.id for d in in_kwargs.invoke("1 0 | q")} == {"a0", "b0"}


def test_mmr(store: MemvidVectorStore) -> None:
    plain = MemvidRetriever(vectorstore=store, k=2).invoke("1 0.5 | q")
    mmr = MemvidRetriever(
        vectorstore=store, k=2, search_type="mmr", search_kwargs={"fetch_k": 9, "lambda_mult": 0.3}
    ).invoke("1 0.5 | q")
    assert {d.metadata["source"] for d in plain} == {"a.txt"}
    assert {d.metadata["source"] for d in mmr} == {"a.txt", "b.txt"}


def test_similarity_score_threshold(store: MemvidVectorStore) -> None:
    retriever = MemvidRetriever(
        vectorstore=store,
        k=9,
        search_type="similarity_score_threshold",
        search_kwargs={"score_threshold": 0.99},
    )
    # cosine relevance (1 + s) / 2 >= 0.99 keeps only the alpha chunks closest to the query
    docs = retriever.invoke("1 0 | q")
    assert docs
    assert all(d.metadata["source"] == "a.txt" for d in docs)
    assert len(retriever.invoke("1 0 | q", k=1)) == 1
    with pytest.raises(ValidationError, match="score_threshold"):
        MemvidRetriever(vectorstore=store, search_type="similarity_score_threshold")
    with pytest.raises(ValidationError):
        MemvidRetriever(vectorstore=store, search_type="nearest")  # type: ignore[arg-type]


def test_neighbors_are_added_in_reading_order(store: MemvidVectorStore) -> None:
    retriever = MemvidRetriever(vectorstore=store, k=2, include_neighbors=1)
    # Hits a2 and a3 (adjacent): their windows overlap and are merged without duplicates.
    docs = retriever.invoke("1 0.25 | q")
    assert [d.id for d in docs] == ["a1", "a2", "a3", "a4"]
    # Hits from two sources: groups follow the best hit's rank, each in chunk order. Neighbours
    # must match the filter too (issue #12): b0 and b2 do not, a4 does.
    docs = retriever.invoke("0 1 | q", k=2, filter={"chunk_index": {"$in": [1, 4, 5]}})
    assert [d.id for d in docs] == ["b1", "a4", "a5"]
    with pytest.raises(ValidationError):
        MemvidRetriever(vectorstore=store, include_neighbors=-1)


def test_documents_outside_the_chunk_convention_keep_their_rank(
    tmp_path: Path, parsed_embedding: Embeddings
) -> None:
    with MemvidVectorStore(tmp_path / "s", parsed_embedding) as vs:
        vs.add_texts(["1 0 | first", "1 0.5 | second"], ids=["x", "y"])
        docs = MemvidRetriever(vectorstore=vs, k=2, include_neighbors=2).invoke("1 0 | q")
    assert [d.id for d in docs] == ["x", "y"]


async def test_ainvoke(store: MemvidVectorStore) -> None:
    retriever = MemvidRetriever(vectorstore=store, k=2, include_neighbors=1)
    assert await retriever.ainvoke("1 0.25 | q") == retriever.invoke("1 0.25 | q")
    assert [d.id for d in await retriever.ainvoke("1 0 | q", k=1)] == ["a0", "a1"]


def test_as_retriever_search_types(store: MemvidVectorStore) -> None:
    similarity = store.as_retriever(search_kwargs={"k": 2, "filter": {"source": "a.txt"}})
    assert [d.id for d in similarity.invoke("0 1 | q")] == ["a5", "a4"]
    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 9, "lambda_mult": 0.3})
    assert {d.metadata["source"] for d in mmr.invoke("1 0.5 | q")} == {"a.txt", "b.txt"}
    threshold = store.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"k": 9, "score_threshold": 0.99}
    )
    assert {d.id for d in threshold.invoke("1 0 | q")} == {"a0", "a1", "a2"}
