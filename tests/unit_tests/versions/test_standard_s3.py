"""LangChain's standard vector store and retriever suites on a store in S3 (moto, tests/s3_server.py).

The same suites as tests/unit_tests/test_vectorstore_standard.py, with the store at
``s3://memvid-test/store`` instead of a folder: a versioned (format 3) store whose every write is
a commit uploaded to the bucket.
"""

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
from tests.s3_server import S3Target

pytest_plugins = ["tests.s3_server"]  # the moto_server and s3_bucket fixtures

# moto listens on 127.0.0.1; nothing else may be reached (see tests/s3_server.py).
pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])


@pytest.fixture(autouse=True)
def _object_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the object cache out of ~/.cache."""
    monkeypatch.setenv("LCMEMVID_CACHE", str(tmp_path / "cache"))


class TestMemvidVectorStoreStandardS3(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, s3_bucket: S3Target) -> Generator[MemvidVectorStore, None, None]:  # type: ignore[override]
        store = MemvidVectorStore(
            s3_bucket.url, self.get_embeddings(), storage_options=s3_bucket.storage_options
        )
        try:
            yield store
        finally:
            store.close()


class TestMemvidRetrieverStandardS3(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _store(self, s3_bucket: S3Target) -> None:
        # Fixture methods run on the same instance as the test, so the properties below see it.
        self.target = s3_bucket
        texts = [f"memvid stores text as QR codes in video frame {i}" for i in range(6)]
        MemvidVectorStore.from_texts(
            texts, self.embedding, path=s3_bucket.url, storage_options=s3_bucket.storage_options
        ).close()

    @property
    def embedding(self) -> DeterministicFakeEmbedding:
        return DeterministicFakeEmbedding(size=6)

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return MemvidRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {
            "path": self.target.url,
            "embedding": self.embedding,
            "storage_options": self.target.storage_options,
        }

    @property
    def retriever_query_example(self) -> str:
        return "Where does memvid keep the text?"
