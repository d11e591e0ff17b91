"""Shared fixtures: offline embeddings and an empty store on tmp_path."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

if TYPE_CHECKING:
    from langchain_memvid import MemvidVectorStore


class ParsedEmbedding(Embeddings):
    """Embeds "x y z | words" as the vector [x, y, z], so a test states its geometry in its texts."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in text.split("|", 1)[0].split()]


@pytest.fixture
def embedding() -> DeterministicFakeEmbedding:
    return DeterministicFakeEmbedding(size=6)


@pytest.fixture
def parsed_embedding() -> ParsedEmbedding:
    return ParsedEmbedding()


@pytest.fixture
def store(tmp_path: Path, embedding: Embeddings) -> Generator[MemvidVectorStore, None, None]:
    # Imported here so that engine-only test modules still collect while the package is edited.
    from langchain_memvid import MemvidVectorStore

    vs = MemvidVectorStore(tmp_path / "store", embedding)
    try:
        yield vs
    finally:
        vs.close()
