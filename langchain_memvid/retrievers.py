"""Retrievers over a MemvidVectorStore, with the lexical and hybrid search types too.

``MemvidRetriever`` can add neighbouring chunks; ``MemvidStoreRetriever`` is what
``as_retriever`` returns: LangChain's own retriever, which knows only the vector search types,
taught the two others.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from langchain_core.vectorstores import VectorStoreRetriever
from pydantic import ConfigDict, Field, model_validator

from langchain_memvid.engine import Filter
from langchain_memvid.splitting import chunk_group, reading_position
from langchain_memvid.vectorstores import SEARCH_TYPES, MemvidVectorStore

if TYPE_CHECKING:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )
    from langchain_core.documents import Document

__all__ = ["MemvidRetriever", "MemvidStoreRetriever"]

_STORE_OPTIONS = ("storage_options", "version", "as_of")
"""The retriever's fields that go to `MemvidVectorStore` when it opens `path`."""

SearchType = Literal["similarity", "mmr", "similarity_score_threshold", "lexical", "hybrid"]


class MemvidRetriever(BaseRetriever):
    """Retrieve documents from a memvid store, optionally with the chunks around each hit.

    Unlike `store.as_retriever()`, it takes `k` in the constructor and in `invoke`, and it can add
    neighbouring chunks of the same source (`include_neighbors`) so an LLM sees each hit in
    context.

    Example:
        ```python
        from langchain_memvid import MemvidRetriever

        retriever = MemvidRetriever(path="./my_store", k=3, include_neighbors=1)
        docs = retriever.invoke("What is a QR code?")
        docs = retriever.invoke("What is a QR code?", k=5, filter={"source": "qr.pdf"})

        # a store in a bucket, pinned to one version
        retriever = MemvidRetriever(path="s3://my-bucket/store", storage_options={...}, version=12)
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    vectorstore: MemvidVectorStore
    """The store to search. Built from `path` (and `embedding`) when not given."""
    path: str | Path | None = None
    """Store folder or URL (`s3://bucket/prefix`, `memory://...`) to open when no `vectorstore` is given."""
    embedding: Embeddings | None = None
    """Embedding for `path`; omit it to load the sentence-transformers model the store records."""
    storage_options: dict[str, Any] | None = None
    """fsspec options for a `path` that is a URL (credentials, `endpoint_url`, ...)."""
    version: int | None = None
    """Open this version of the store at `path`, read-only."""
    as_of: datetime | float | None = None
    """Open the newest version of the store at `path` created at or before this time (a datetime
    or a Unix time), read-only."""
    k: int = 4
    """How many hits to return (before neighbours are added); `invoke(query, k=...)` overrides."""
    search_type: SearchType = "similarity"
    """"similarity", "mmr" (diverse hits), "similarity_score_threshold" (needs
    `search_kwargs={"score_threshold": x}` with x in [0, 1]), "lexical" (words, BM25) or
    "hybrid" (words and meaning fused; docs/user-guide.md says when to use which)."""
    search_kwargs: dict[str, Any] = Field(default_factory=dict)
    """More arguments for the search: `fetch_k`, `lambda_mult`, `score_threshold`, `filter`,
    `search_params` (per-query index knobs such as `{"nprobe": 64}`), `weight` (hybrid)."""
    filter: Filter | None = None
    """Metadata filter (dict or callable) applied to every search unless one is passed."""
    include_neighbors: int = Field(default=0, ge=0)
    """Chunks to add on each side of every hit: same `source`, adjacent `chunk_index`, and
    matching the search's filter. The result is deduplicated and grouped by source in the order of
    each source's best hit, each group in reading order, so it can hold more than `k` documents."""

    @model_validator(mode="before")
    @classmethod
    def _open_store(cls, values: Any) -> Any:
        """Open the store from `path` when no `vectorstore` is given."""
        if not isinstance(values, dict) or values.get("vectorstore") is not None:
            return values
        path = values.get("path")
        if path is None:
            msg = "MemvidRetriever needs vectorstore= or path=."
            raise ValueError(msg)
        options = {name: values[name] for name in _STORE_OPTIONS if values.get(name) is not None}
        return {**values, "vectorstore": MemvidVectorStore(path, values.get("embedding"), **options)}

    @model_validator(mode="after")
    def _check_search(self) -> MemvidRetriever:
        if self.search_type == "similarity_score_threshold":
            threshold = self.search_kwargs.get("score_threshold")
            if not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
                msg = (
                    'search_type="similarity_score_threshold" needs search_kwargs='
                    f'{{"score_threshold": x}} with x in [0, 1]; got {threshold!r}.'
                )
                raise ValueError(msg)
        return self

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        """Search, then add neighbours; keyword arguments override `k` and `search_kwargs`."""
        options = {**self.search_kwargs, **kwargs}
        k = options.pop("k", self.k)
        if "filter" not in options and self.filter is not None:
            options["filter"] = self.filter
        store = self.vectorstore
        if self.search_type == "mmr":
            hits = store.max_marginal_relevance_search(query, k=k, **options)
        elif self.search_type == "similarity_score_threshold":
            pairs = store.similarity_search_with_relevance_scores(query, k=k, **options)
            hits = [doc for doc, _ in pairs]
        else:
            hits = store.search(query, self.search_type, k=k, **options)
        if not self.include_neighbors:
            return hits
        return self._with_neighbors(hits, options.get("filter"))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        """Run the search on a worker thread (the store is thread-safe), passing `**kwargs` on."""
        return await run_in_executor(
            None, self._get_relevant_documents, query, run_manager=run_manager.get_sync(), **kwargs
        )

    def _with_neighbors(self, hits: list[Document], flt: Filter | None) -> list[Document]:
        """Each hit's window of chunks, merged per source, sources in order of their best hit.

        Neighbours must match the search's filter too: a filter is often an access boundary
        (one tenant's documents), and chunks sharing a `source` must not cross it.
        """
        groups: dict[Any, dict[str, Document]] = {}
        for hit in hits:
            key = _group_key(hit)
            group = groups.setdefault(key, {})
            for doc in self.vectorstore.get_neighbors(hit, window=self.include_neighbors, filter=flt):
                group.setdefault(doc.id or str(id(doc)), doc)
        out: list[Document] = []
        for group in groups.values():
            out.extend(sorted(group.values(), key=reading_position))
        return out


def _group_key(doc: Document) -> Any:
    # A hit outside the chunk convention is its own group, so it keeps its rank.
    return chunk_group(doc) or ("id", doc.id or str(id(doc)))


class MemvidStoreRetriever(VectorStoreRetriever):
    """LangChain's ``VectorStoreRetriever`` that also takes ``search_type="lexical"`` or ``"hybrid"``."""

    allowed_search_types: ClassVar[Collection[str]] = SEARCH_TYPES

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type in ("lexical", "hybrid"):
            return self.vectorstore.search(query, self.search_type, **(self.search_kwargs | kwargs))
        return super()._get_relevant_documents(query, run_manager=run_manager, **kwargs)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type in ("lexical", "hybrid"):
            return await self.vectorstore.asearch(query, self.search_type, **(self.search_kwargs | kwargs))
        return await super()._aget_relevant_documents(query, run_manager=run_manager, **kwargs)
