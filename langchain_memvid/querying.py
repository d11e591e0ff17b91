"""Opening a store and searching it for the doors people use: the command line and the web page.

`lcmemvid search` and `lcmemvid serve` (its `/api/search`) take the same filter, open the store
the same way and describe a hit with the same fields, from these helpers; `search_with_mode` is
the one dispatch from a search mode ("vector", "lexical", "hybrid") to the store's method. Nothing
here imports LangChain or the embedding model until a function needs it, so `lcmemvid info`
stays light.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_memvid.engine import InvalidArgument, MemvidError, compile_filter
from langchain_memvid.rag import describe_source

if TYPE_CHECKING:
    from datetime import datetime

    from langchain_core.documents import Document

    from langchain_memvid.embeddings import SentenceTransformerEmbeddings
    from langchain_memvid.vectorstores import MemvidVectorStore

__all__ = [
    "MODES",
    "available_modes",
    "hit_dicts",
    "load_embedding",
    "open_store",
    "parse_filter",
    "search_with_mode",
]

MODES: dict[str, str] = {
    "vector": "similarity_search_with_score",
    "lexical": "lexical_search_with_score",
    "hybrid": "hybrid_search_with_score",
}
"""Search modes and the store method each one calls; a mode is offered when the store has it."""


def open_store(
    path: str | Path,
    model: str | None,
    *,
    storage_options: dict[str, Any] | None = None,
    version: int | None = None,
    as_of: datetime | float | None = None,
) -> MemvidVectorStore:
    """Open an existing store (a folder or a URL) with `model`, or with the model it records.

    `storage_options` (fsspec's, for a URL), `version` and `as_of` (an old version, read-only) go
    to `MemvidVectorStore` as they are.
    """
    from langchain_memvid.vectorstores import MemvidVectorStore

    options: dict[str, Any] = {"storage_options": storage_options, "version": version, "as_of": as_of}
    if model is None:
        return MemvidVectorStore(path, **options)
    return MemvidVectorStore(path, load_embedding(model), create=False, **options)


def load_embedding(model: str) -> SentenceTransformerEmbeddings:
    """The sentence-transformers model `model` (a name or a folder), loaded on first use."""
    from langchain_memvid.embeddings import SentenceTransformerEmbeddings

    return SentenceTransformerEmbeddings(model_name=model)


def parse_filter(value: str) -> dict[str, Any]:
    """A metadata filter given as JSON text, checked as the store will check it.

    >>> parse_filter('{"page": {"$lt": 2}}')
    {'page': {'$lt': 2}}
    >>> parse_filter('["a"]')
    Traceback (most recent call last):
    ...
    ValueError: must be a JSON object, e.g. '{"source": "notes.md"}'

    Raises:
        ValueError: the text is not JSON, not a JSON object, or not a valid filter; the message
            says which.
    """
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as e:
        msg = f"not valid JSON ({e.msg} at character {e.pos})"
        raise ValueError(msg) from e
    except RecursionError as e:  # json's own parser gives up before compile_filter's depth limit
        msg = "nested too deeply; flatten the filter"
        raise ValueError(msg) from e
    if not isinstance(parsed, dict):
        msg = 'must be a JSON object, e.g. \'{"source": "notes.md"}\''
        raise ValueError(msg)
    try:
        compile_filter(parsed)
    except MemvidError as e:
        raise ValueError(str(e)) from e
    return parsed


def hit_dicts(
    vstore: MemvidVectorStore, docs: Sequence[Document], scores: Sequence[float] | None
) -> list[dict[str, Any]]:
    """Search results as plain dicts: rank, id, score, source label, text, metadata, video location."""
    places = vstore.locate([d.id for d in docs if d.id])
    out = []
    for n, doc in enumerate(docs):
        place = places.get(doc.id or "")
        hit: dict[str, Any] = {"rank": n + 1, "id": doc.id}
        if scores is not None:
            hit["score"] = scores[n]
        hit.update(
            where=describe_source(doc.metadata),
            source=doc.metadata.get("source"),
            page=doc.metadata.get("page_label", doc.metadata.get("page")),
            text=doc.page_content,
            metadata=doc.metadata,
            location=dataclasses.asdict(place) if place else None,
        )
        out.append(hit)
    return out


def available_modes(store: object) -> list[str]:
    """The search modes `store` offers, in `MODES` order: those whose method it has.

    >>> class OnlyVectors:
    ...     def similarity_search_with_score(self, query, k=4, filter=None): return []
    >>> available_modes(OnlyVectors())
    ['vector']
    """
    return [mode for mode, method in MODES.items() if callable(getattr(store, method, None))]


def search_with_mode(
    store: object, mode: str, query: str, k: int, filter: dict[str, Any] | None, **options: Any
) -> list[tuple[Document, float]]:
    """THE dispatch from a search mode to the store's method: (document, score) pairs, best first.

    `options` go to the method as they are (e.g. hybrid's `weight`).

    Raises:
        InvalidArgument: `mode` is unknown or the store does not offer it; the message lists the
            modes it does.
    """
    modes = available_modes(store)
    if mode not in modes:
        msg = f"mode must be one of {', '.join(modes)}; got {mode!r}."
        raise InvalidArgument(msg)
    method = getattr(store, MODES[mode])
    return list(method(query, k=k, filter=filter, **options))
