"""LangChain integration for memvid stores: documents kept as QR codes in video, found with FAISS.

The public surface is the vector store, its retriever, the offline embedding model, and the
loaders and splitter that turn files into chunks; `langchain_memvid.ingest` does all of it for a
list of files. The storage engine is in `langchain_memvid.engine`.

Each public name is imported on first use (PEP 562), so `import langchain_memvid` costs almost
nothing and using the vector store never imports the loaders, the retriever or the parsing, video
and model libraries behind them.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_memvid.document_loaders import (
        DirectoryLoader,
        EPUBLoader,
        LoaderError,
        MarkdownLoader,
        PDFLoader,
        TextLoader,
        load_path,
    )
    from langchain_memvid.embeddings import SentenceTransformerEmbeddings
    from langchain_memvid.retrievers import MemvidRetriever
    from langchain_memvid.splitting import split_documents
    from langchain_memvid.vectorstores import MemvidVectorStore

__all__ = [
    "MemvidVectorStore",
    "MemvidRetriever",
    "SentenceTransformerEmbeddings",
    "PDFLoader",
    "EPUBLoader",
    "TextLoader",
    "MarkdownLoader",
    "DirectoryLoader",
    "load_path",
    "LoaderError",
    "split_documents",
]


# Where each public name lives: imported by `__getattr__` on first access, each module by a literal
# import statement (nothing here imports a name it was given).
def _vectorstores() -> ModuleType:
    from langchain_memvid import vectorstores

    return vectorstores


def _retrievers() -> ModuleType:
    from langchain_memvid import retrievers

    return retrievers


def _embeddings() -> ModuleType:
    from langchain_memvid import embeddings

    return embeddings


def _loaders() -> ModuleType:
    from langchain_memvid import document_loaders

    return document_loaders


def _errors() -> ModuleType:
    from langchain_memvid import errors

    return errors


def _splitting() -> ModuleType:
    from langchain_memvid import splitting

    return splitting


_SOURCES: dict[str, Callable[[], ModuleType]] = {
    "MemvidVectorStore": _vectorstores,
    "MemvidRetriever": _retrievers,
    "SentenceTransformerEmbeddings": _embeddings,
    "PDFLoader": _loaders,
    "EPUBLoader": _loaders,
    "TextLoader": _loaders,
    "MarkdownLoader": _loaders,
    "DirectoryLoader": _loaders,
    "load_path": _loaders,
    "LoaderError": _errors,
    "split_documents": _splitting,
}


# Hidden from type checkers, which would otherwise take any misspelt name for an attribute; they
# see the names through the imports under TYPE_CHECKING above.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        """Import a public name from its module on first access (PEP 562), then keep it here."""
        load = _SOURCES.get(name)
        if load is None:
            msg = f"module {__name__!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(load(), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    """The module's own names plus the public ones not imported yet."""
    return sorted({*globals(), *__all__})
