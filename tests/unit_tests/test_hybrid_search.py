"""Lexical and hybrid search on the LangChain face: methods, search types, retrievers, async twins."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStoreRetriever
from pydantic import ValidationError

from langchain_memvid import MemvidRetriever, MemvidVectorStore
from langchain_memvid.engine import InvalidArgument, LexiconMissing

DOCS = [
    Document("Set PYTHONHASHSEED=0 to make str hashing reproducible.", id="env", metadata={"kind": "env"}),
    Document("os.fsync flushes a file's buffers to the disk.", id="fsync", metadata={"kind": "api"}),
    Document("shutil.copytree copies a directory tree recursively.", id="copy", metadata={"kind": "api"}),
    Document("Error E1234 means the frame failed its checksum.", id="err", metadata={"kind": "error"}),
    Document("A fox is a small omnivore.", id="fox", metadata={"kind": "animal"}),
]


@pytest.fixture
def filled(store: MemvidVectorStore) -> MemvidVectorStore:
    store.add_documents(DOCS)
    return store


def test_lexical_finds_exact_identifiers_with_bm25_scores(filled: MemvidVectorStore) -> None:
    for query, want in [("PYTHONHASHSEED", "env"), ("os.fsync", "fsync"), ("E1234", "err")]:
        (doc, score), *_ = filled.lexical_search_with_score(query, k=2)
        assert doc.id == want
        assert score > 0
        assert doc.page_content == next(d.page_content for d in DOCS if d.id == want)
    assert filled.lexical_search("no such words anywhere") == []


def test_lexical_and_hybrid_respect_the_filter(filled: MemvidVectorStore) -> None:
    got = filled.lexical_search("copies the disk", k=4, filter={"kind": "api"})
    assert {d.id for d in got} == {"fsync", "copy"}
    hybrid = filled.hybrid_search("copies the disk", k=2, filter={"kind": "api"})
    assert {d.id for d in hybrid} == {"fsync", "copy"}  # k=2 and two records match: both come back


def test_hybrid_puts_the_exact_identifier_first_at_full_word_weight(filled: MemvidVectorStore) -> None:
    pairs = filled.hybrid_search_with_score("PYTHONHASHSEED", k=3, weight=1.0)
    assert pairs[0][0].id == "env"
    assert [s for _, s in pairs] == sorted((s for _, s in pairs), reverse=True)
    assert len(filled.hybrid_search("PYTHONHASHSEED", k=5)) == 5  # the vector side fills the rest


def test_search_dispatches_every_search_type(filled: MemvidVectorStore) -> None:
    assert filled.search("E1234", "lexical", k=1)[0].id == "err"
    assert filled.search("E1234", "hybrid", k=1, weight=1.0)[0].id == "err"
    assert len(filled.search("E1234", "similarity", k=2)) == 2
    assert len(filled.search("E1234", "mmr", k=2)) == 2
    with pytest.raises(ValueError, match="lexical"):
        filled.search("x", "fuzzy")


@pytest.mark.parametrize("search_type", ["lexical", "hybrid"])
def test_as_retriever_takes_the_new_search_types(filled: MemvidVectorStore, search_type: str) -> None:
    retriever = filled.as_retriever(search_type=search_type, search_kwargs={"k": 1})
    assert isinstance(retriever, VectorStoreRetriever)
    kwargs = {"weight": 1.0} if search_type == "hybrid" else {}
    assert [d.id for d in retriever.invoke("os.fsync", **kwargs)] == ["fsync"]
    with pytest.raises(ValidationError, match="not allowed"):
        filled.as_retriever(search_type="fuzzy")


async def test_async_twins_match_the_sync_calls(filled: MemvidVectorStore) -> None:
    assert await filled.alexical_search("shutil.copytree", k=2) == filled.lexical_search("shutil.copytree", k=2)
    assert await filled.ahybrid_search("copy a tree", k=3) == filled.hybrid_search("copy a tree", k=3)
    assert await filled.alexical_search_with_score("fox", k=1) == filled.lexical_search_with_score("fox", k=1)
    assert await filled.ahybrid_search_with_score("fox", k=2) == filled.hybrid_search_with_score("fox", k=2)
    assert await filled.asearch("fox", "lexical", k=1) == filled.lexical_search("fox", k=1)
    retriever = filled.as_retriever(search_type="lexical", search_kwargs={"k": 1})
    assert [d.id for d in await retriever.ainvoke("E1234")] == ["err"]


def test_memvid_retriever_search_types(filled: MemvidVectorStore) -> None:
    words = MemvidRetriever(vectorstore=filled, k=1, search_type="lexical")
    assert [d.id for d in words.invoke("E1234")] == ["err"]
    assert [d.id for d in words.invoke("fox", filter={"kind": "api"})] == []
    both = MemvidRetriever(vectorstore=filled, k=2, search_type="hybrid", search_kwargs={"weight": 0.9})
    assert both.invoke("E1234")[0].id == "err"


def test_bad_arguments_are_refused_before_any_work(filled: MemvidVectorStore) -> None:
    with pytest.raises(InvalidArgument, match="k must be"):
        filled.lexical_search("fox", k=0)
    with pytest.raises(InvalidArgument, match="weight"):
        filled.hybrid_search("fox", weight=2)
    with pytest.raises(TypeError, match="unexpected keyword"):
        filled.lexical_search("fox", fetch_k=3)


def test_upserts_and_deletes_reach_the_word_index(filled: MemvidVectorStore) -> None:
    filled.add_documents([Document("Now about E9999 only.", id="err", metadata={"kind": "error"})])
    assert filled.lexical_search("E1234") == []
    assert [d.id for d in filled.lexical_search("E9999")] == ["err"]
    filled.delete(["err"])
    assert filled.lexical_search("E9999") == []


def test_a_store_from_before_the_word_index_says_what_to_run(
    tmp_path: Path, embedding: Embeddings
) -> None:
    store = MemvidVectorStore(tmp_path / "old", embedding)
    store.add_documents(DOCS)
    with store.engine.catalog.transaction():
        store.engine.catalog.db.execute("DELETE FROM lexicon")
    store.close()
    reopened = MemvidVectorStore(tmp_path / "old", embedding)
    try:
        with pytest.raises(LexiconMissing, match="build-lexicon"):
            reopened.lexical_search("fox")
        assert reopened.similarity_search("fox", k=1)  # vectors still work
        assert reopened.build_lexicons() == 1
        assert reopened.lexical_search("fox", k=1)[0].id == "fox"
    finally:
        reopened.close()
