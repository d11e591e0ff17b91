"""The store inside LangChain machinery: the indexing API and an LCEL RAG chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.indexing import InMemoryRecordManager, index
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

from langchain_memvid import MemvidRetriever, MemvidVectorStore


@pytest.fixture
def record_manager() -> InMemoryRecordManager:
    manager = InMemoryRecordManager(namespace="memvid/test")
    manager.create_schema()
    return manager


def _doc(text: str, source: str) -> Document:
    return Document(page_content=text, metadata={"source": source})


def _contents(store: MemvidVectorStore) -> list[str]:
    return sorted(d.page_content for d in store.similarity_search("x", k=100))


def _index(
    docs: list[Document], manager: InMemoryRecordManager, store: MemvidVectorStore, **kw: Any
) -> dict[str, int]:
    result = index(docs, manager, store, source_id_key="source", key_encoder="sha256", **kw)
    return dict(result)


def test_incremental_cleanup(store: MemvidVectorStore, record_manager: InMemoryRecordManager) -> None:
    a0, a1, b0 = _doc("a zero", "a.txt"), _doc("a one", "a.txt"), _doc("b zero", "b.txt")

    added = _index([a0, a1, b0], record_manager, store, cleanup="incremental")
    assert added == {"num_added": 3, "num_updated": 0, "num_skipped": 0, "num_deleted": 0}

    unchanged = _index([a0, a1, b0], record_manager, store, cleanup="incremental")
    assert unchanged == {"num_added": 0, "num_updated": 0, "num_skipped": 3, "num_deleted": 0}

    # a.txt changes one chunk: the new version is added and the old one deleted; b.txt is untouched.
    changed = _index([a0, _doc("a one, revised", "a.txt")], record_manager, store, cleanup="incremental")
    assert changed == {"num_added": 1, "num_updated": 0, "num_skipped": 1, "num_deleted": 1}
    assert _contents(store) == ["a one, revised", "a zero", "b zero"]

    # a.txt loses a chunk.
    shrunk = _index([a0], record_manager, store, cleanup="incremental")
    assert shrunk == {"num_added": 0, "num_updated": 0, "num_skipped": 1, "num_deleted": 1}
    assert _contents(store) == ["a zero", "b zero"]

    # force_update re-adds the same ids: a real upsert, no duplicates.
    forced = _index([a0, b0], record_manager, store, cleanup="incremental", force_update=True)
    assert forced == {"num_added": 0, "num_updated": 2, "num_skipped": 0, "num_deleted": 0}
    assert len(store) == 2


def test_full_cleanup(store: MemvidVectorStore, record_manager: InMemoryRecordManager) -> None:
    docs = [_doc("a zero", "a.txt"), _doc("a one", "a.txt"), _doc("b zero", "b.txt")]
    assert _index(docs, record_manager, store, cleanup="full")["num_added"] == 3
    result = _index([_doc("b zero", "b.txt"), _doc("c zero", "c.txt")], record_manager, store, cleanup="full")
    assert result == {"num_added": 1, "num_updated": 0, "num_skipped": 1, "num_deleted": 2}
    assert _contents(store) == ["b zero", "c zero"]


def test_index_with_small_batches(store: MemvidVectorStore, record_manager: InMemoryRecordManager) -> None:
    docs = [_doc(f"chunk {i}", "big.txt") for i in range(7)]
    result = _index(docs, record_manager, store, cleanup="incremental", batch_size=3)
    assert result["num_added"] == 7
    assert len(store) == 7


class _PromptSpy(BaseCallbackHandler):
    """Records the messages each chat model call receives."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        self.prompts.extend(str(m.content) for batch in messages for m in batch)


def _format_docs(docs: list[Document]) -> str:
    return "\n\n".join(d.page_content for d in docs)


async def test_rag_chain_passes_retrieved_text_to_the_model(
    tmp_path: Path, parsed_embedding: Embeddings
) -> None:
    texts = [
        "1 0 | The lighthouse keeper's name is Ottoline Varga.",
        "0 1 | Bread rises because yeast produces carbon dioxide.",
        "0.9 0.1 | The lighthouse stands on the northern cape.",
    ]
    store = MemvidVectorStore.from_texts(texts, parsed_embedding, path=tmp_path / "store")
    retriever = MemvidRetriever(vectorstore=store, k=2)
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from this context only:\n\n{context}"), ("human", "{question}")]
    )
    model = FakeListChatModel(responses=["Ottoline Varga.", "Ottoline Varga."])
    chain = (
        {"context": retriever | _format_docs, "question": RunnablePassthrough()}
        | prompt
        | model
        | StrOutputParser()
    )

    spy = _PromptSpy()
    question = "1 0 | Who keeps the lighthouse?"
    assert chain.invoke(question, config={"callbacks": [spy]}) == "Ottoline Varga."
    system = spy.prompts[0]
    assert "Ottoline Varga" in system
    assert "northern cape" in system
    assert "yeast" not in system  # k=2: the unrelated passage is not retrieved
    assert spy.prompts[1] == question

    assert await chain.ainvoke(question, config={"callbacks": [spy]}) == "Ottoline Varga."
    assert spy.prompts[2] == system
    store.close()
