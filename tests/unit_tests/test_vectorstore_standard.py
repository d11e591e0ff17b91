"""LangChain's standard vector store and retriever suites, run offline on a tmp_path store."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import (
    RetrieversIntegrationTests,
    VectorStoreIntegrationTests,
)

from langchain_memvid import MemvidRetriever, MemvidVectorStore


class TestMemvidVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Generator[MemvidVectorStore, None, None]:  # type: ignore[override]
        store = MemvidVectorStore(tmp_path / "store", self.get_embeddings())
        try:
            yield store
        finally:
            store.close()


class TestMemvidRetrieverStandard(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _store(self, tmp_path: Path) -> None:
        # Fixture methods run on the same instance as the test, so the properties below see it.
        self.path = tmp_path / "store"
        texts = [f"memvid stores text as QR codes in video frame {i}" for i in range(6)]
        MemvidVectorStore.from_texts(texts, self.embedding, path=self.path).close()

    @property
    def embedding(self) -> DeterministicFakeEmbedding:
        return DeterministicFakeEmbedding(size=6)

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return MemvidRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"path": self.path, "embedding": self.embedding}

    @property
    def retriever_query_example(self) -> str:
        return "Where does memvid keep the text?"
