"""Errors and warnings of the LangChain face that callers name without loading what raises them.

They live here, with no imports, so that naming them (``except LoaderError``, the command line's
list of errors it reports as one line, ``NothingToIngest``'s base class) costs nothing: the modules
that raise them import LangChain's loader and embedding classes, and through them pydantic. Each is
also importable from its usual home (``langchain_memvid.document_loaders``,
``langchain_memvid.embeddings``); it is the same class. The storage engine's errors are in
``langchain_memvid.engine``.
"""

from __future__ import annotations

__all__ = ["EmbeddingModelLoadError", "LoaderError", "LoaderWarning"]


class LoaderError(ValueError):
    """A file could not be loaded; the message names the file and what to do next."""


class LoaderWarning(UserWarning):
    """Something was left out while loading (textless pages, skipped files).

    A distinct category so that callers can silence or escalate it with
    :func:`warnings.filterwarnings` without touching other warnings.
    """


class EmbeddingModelLoadError(RuntimeError):
    """The sentence-transformers model could not be loaded."""
