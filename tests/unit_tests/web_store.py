"""A small store for the web page's tests (test_web.py, test_web_browser.py): no model, fixed geometry.

`TopicEmbedding` counts a few topic words, so a query's best hits follow from the texts below
without a real model. The store holds pages and chapters, a record that spans several frames, an id
that needs escaping in a URL, a page of fillers to browse, and a hostile document whose text and
metadata are markup that must be shown, never run.
"""

from __future__ import annotations

import random
import string
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from langchain_memvid import MemvidVectorStore

TOPICS = ("qr", "damage", "video", "film", "filler", "hostile", "long")

HOSTILE_TEXT = (
    "hostile <img src=x onerror=\"document.title='pwned'\"> and "
    "<script>window.pwned=1</script> and <b>bold</b> & &amp; entities"
)
HOSTILE_META = {"source": "hostile.txt", "title": '<img src=x onerror="window.pwnedMeta=1">'}
ODD_ID = "notes/a b?c#d%e&f=g"
FILLERS = 45


class TopicEmbedding(Embeddings):
    """One dimension per topic word (its count in the text), plus a constant one."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        words = text.lower().replace(",", " ").replace(".", " ").split()
        return [float(words.count(t)) for t in TOPICS] + [0.1]


def documents() -> list[Document]:
    rng = random.Random(18)
    long_text = "long " + "".join(rng.choice(string.ascii_letters + " ") for _ in range(9000))
    docs = [
        Document(
            id="qr-history",
            page_content="The QR code was invented in 1994 at Denso Wave. QR means quick response.",
            metadata={"source": "docs/qr.pdf", "page": 0, "page_label": "1", "chunk_index": 0},
        ),
        Document(
            id="qr-damage",
            page_content="A QR code survives damage: Reed-Solomon codes repair damaged QR symbols.",
            metadata={"source": "docs/qr.pdf", "page": 1, "page_label": "2", "chunk_index": 0},
        ),
        Document(
            id="video-codecs",
            page_content="Video codecs save space by predicting each video frame from the last one.",
            metadata={"source": "books/video.epub", "chapter": "Digital video", "chunk_index": 0},
        ),
        Document(
            id="film-archive",
            page_content="Film kept cool and dry lasts for centuries; film is an archive medium.",
            metadata={"source": "notes/film.txt", "chunk_index": 0},
        ),
        Document(id="long-record", page_content=long_text, metadata={"source": "long.txt"}),
        Document(id="hostile", page_content=HOSTILE_TEXT, metadata=HOSTILE_META),
        Document(id=ODD_ID, page_content="An id with a slash, spaces and ? # % & = in it.", metadata={}),
    ]
    docs += [
        Document(
            id=f"filler-{n:02d}",
            page_content=f"filler number {n}: nothing to see here.",
            metadata={"source": "filler.txt", "chunk_index": n},
        )
        for n in range(FILLERS)
    ]
    return docs


def build_store(path: Path) -> MemvidVectorStore:
    """The test store at `path` (created), open; the caller closes it."""
    store = MemvidVectorStore(path, TopicEmbedding())
    store.add_documents(documents())
    return store
