"""LangChain integration for memvid stores: documents kept as QR codes in video, found with FAISS.

The public surface is the vector store, its retriever, the offline embedding model, and the
loaders and splitter that turn files into chunks; `langchain_memvid.ingest` does all of it for a
list of files. The storage engine is in `langchain_memvid.engine`.
"""

from __future__ import annotations

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
