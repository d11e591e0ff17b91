"""Precomputed vectors: add_embeddings and from_embeddings, with LangChain FAISS's signatures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_memvid import MemvidVectorStore
from langchain_memvid.engine import InvalidVector

TEXTS = ["alpha beta", "gamma delta", "epsilon zeta"]


def test_add_embeddings_stores_the_given_vectors_and_searches_like_add_texts(tmp_path: Path) -> None:
    embedding = DeterministicFakeEmbedding(size=6)
    pairs = list(zip(TEXTS, embedding.embed_documents(TEXTS), strict=True))
    given = MemvidVectorStore(tmp_path / "given", embedding, vector_encoding="float32")
    embedded = MemvidVectorStore(tmp_path / "embedded", embedding, vector_encoding="float32")
    ids = given.add_embeddings(pairs, [{"n": i} for i in range(3)], ["a", "b", "c"])  # positional, as FAISS
    embedded.add_texts(TEXTS, [{"n": i} for i in range(3)], ids=["a", "b", "c"])
    assert ids == ["a", "b", "c"]
    assert [d.metadata for d in given.get_by_ids(ids)] == [{"n": 0}, {"n": 1}, {"n": 2}]
    for query in TEXTS:
        assert given.similarity_search_with_score(query, k=3) == embedded.similarity_search_with_score(query, k=3)
    stored = given.engine.vectors(["a"])["a"]
    expected = np.asarray(pairs[0][1], np.float32)
    assert np.allclose(stored, expected / np.linalg.norm(expected), atol=1e-6)  # cosine: normalised
    assert given.lexical_search("gamma", k=1)[0].id == "b"  # the word index too


def test_from_embeddings_builds_a_store(tmp_path: Path) -> None:
    embedding = DeterministicFakeEmbedding(size=6)
    pairs = list(zip(TEXTS, embedding.embed_documents(TEXTS), strict=True))
    store = MemvidVectorStore.from_embeddings(pairs, embedding, ids=["x", "y", "z"], path=tmp_path / "s")
    try:
        assert len(store) == 3
        assert store.similarity_search(TEXTS[1], k=1)[0].id == "y"
    finally:
        store.close()


@pytest.mark.parametrize(
    ("pairs", "error", "match"),
    [
        ([("a", [0.1] * 5)], ValueError, "holds 6-dimensional|returned 5"),
        ([("a", [float("nan")] * 6)], InvalidVector, "NaN|finite"),
        ([("a",)], ValueError, "pairs"),
        ([(1, [0.1] * 6)], ValueError, "pairs"),
    ],
)
def test_bad_pairs_are_refused_and_nothing_is_written(
    store: MemvidVectorStore, pairs: list, error: type[Exception], match: str
) -> None:
    store.add_texts(["kept"], ids=["kept"])
    with pytest.raises(error, match=match):
        store.add_embeddings([("fine", [0.2] * 6), *pairs])
    assert store.engine.ids() == ["kept"]


def test_lengths_must_match(store: MemvidVectorStore) -> None:
    pair = ("t", [0.1] * 6)
    with pytest.raises(ValueError, match="metadatas"):
        store.add_embeddings([pair], metadatas=[{}, {}])
    with pytest.raises(ValueError, match="ids"):
        store.add_embeddings([pair], ids=["a", "b"])
    with pytest.raises(TypeError, match="unexpected keyword"):
        store.add_embeddings([pair], nonsense=1)
