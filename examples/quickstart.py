"""Quick start: create a store, add documents, search it, and find a hit in the video.

    python examples/quickstart.py [STORE_FOLDER]

Uses the packaged all-MiniLM-L6-v2 model, so it runs offline. Without a folder argument the store
goes into a new temporary folder.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from langchain_memvid import MemvidVectorStore, SentenceTransformerEmbeddings

DOCUMENTS = [
    Document(
        page_content="The QR code was invented in 1994 at Denso Wave to track car parts.",
        metadata={"source": "history.txt", "year": 1994, "tags": ["qr", "history"]},
    ),
    Document(
        page_content="Reed-Solomon codes let a damaged QR code still be read.",
        metadata={"source": "ecc.txt", "year": 1960, "tags": ["qr", "error-correction"]},
    ),
    Document(
        page_content="Video codecs save space by storing only what changes between frames.",
        metadata={"source": "video.txt", "year": 2003, "tags": ["video"]},
    ),
    Document(page_content="This document will be deleted.", metadata={"source": "scratch.txt"}),
]


def main(path: str | Path | None = None, embedding: Embeddings | None = None) -> list[Document]:
    """Build a small store, search it three ways, delete a document, and reopen it.

    Returns:
        The hits of the first search.
    """
    folder = Path(path) if path is not None else Path(tempfile.mkdtemp()) / "quickstart-store"
    embedding = embedding or SentenceTransformerEmbeddings()  # all-MiniLM-L6-v2, offline

    # A store is a folder; it is created when missing and opened when it exists.
    with MemvidVectorStore(folder, embedding) as store:
        store.add_documents(DOCUMENTS, ids=["history", "ecc", "video", "scratch"])

        hits = store.similarity_search("Who invented the QR code?", k=2)
        for doc in hits:
            print(f"* {doc.page_content} [{doc.metadata['source']}]")

        # Filters run before the nearest-neighbour search, so k hits come back whenever k match.
        for doc, score in store.similarity_search_with_score(
            "error correction", k=1, filter={"year": {"$lt": 2000}, "tags": {"$contains": "qr"}}
        ):
            print(f"* [cosine={score:.3f}] {doc.page_content}")

        # Every hit can be traced to the video frame whose QR code holds it.
        where = store.locate([hits[0].id or ""])[hits[0].id or ""]
        print(f"'{hits[0].id}' is frame {where.frame} of {where.segment} (t={where.timestamp:.3f} s)")

        store.delete(["scratch"])

    # Reopening needs no embedding when the store was built with a sentence-transformers model;
    # here the same embedding is passed so the example also works with a fake one.
    with MemvidVectorStore(folder, embedding) as store:
        print(f"{len(store)} documents in {folder}")
    return hits


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
