"""Move a chain written for LangChain's FAISS store to memvid: one line changes.

    python examples/swap_faiss.py [STORE_FOLDER]

Before (langchain-community's FAISS; not needed here):

    from langchain_community.vectorstores import FAISS
    vectorstore = FAISS.from_texts(TEXTS, embedding, metadatas=METADATAS)

After:

    from langchain_memvid import MemvidVectorStore
    vectorstore = MemvidVectorStore.from_texts(TEXTS, embedding, metadatas=METADATAS, path=folder)

Everything after that line - the retriever, the chain, scored search - is unchanged. What you
drop: `save_local`/`load_local(..., allow_dangerous_deserialization=True)`, since a memvid
store is already on disk (no pickle) and reopens with `MemvidVectorStore(folder, embedding)`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

from langchain_memvid import MemvidVectorStore, SentenceTransformerEmbeddings
from langchain_memvid.rag import format_docs, load_chat_model

TEXTS = [
    "The QR code was invented at Denso Wave in 1994.",
    "A QR code can be read even when up to 30% of it is damaged, at error correction level H.",
    "Motion pictures were first shown to a paying audience in 1895.",
]
METADATAS = [{"source": "qr.txt"}, {"source": "qr.txt"}, {"source": "film.txt"}]
PROMPT = ChatPromptTemplate.from_template(
    "Answer from the context only.\n\nContext:\n{context}\n\nQuestion: {question}"
)


def main(
    embedding: Embeddings | None = None, llm: BaseChatModel | None = None, path: str | Path | None = None
) -> str:
    """Build the store the FAISS way, run the unchanged chain, and return its answer."""
    embedding = embedding or SentenceTransformerEmbeddings()
    folder = Path(path) if path is not None else Path(tempfile.mkdtemp()) / "swap-store"

    # vectorstore = FAISS.from_texts(TEXTS, embedding, metadatas=METADATAS)
    vectorstore = MemvidVectorStore.from_texts(TEXTS, embedding, metadatas=METADATAS, path=folder)

    # --- unchanged from here on ---
    for doc, score in vectorstore.similarity_search_with_score("When was the QR code invented?", k=2):
        print(f"{score:.3f}  {doc.page_content}")
    retriever = vectorstore.as_retriever(search_kwargs={"k": 2})
    llm = llm or load_chat_model()  # MEMVID_CHAT_MODEL, e.g. "ollama:llama3"
    if llm is None:
        answer = format_docs(retriever.invoke("How robust is a QR code?"))
        print(f"(no chat model set: MEMVID_CHAT_MODEL=provider:model)\n{answer}")
    else:
        chain = {"context": retriever | format_docs, "question": RunnablePassthrough()} | PROMPT | llm
        answer = (chain | StrOutputParser()).invoke("How robust is a QR code?")
        print(answer)
    vectorstore.close()
    return answer


if __name__ == "__main__":
    main(path=sys.argv[1] if len(sys.argv) > 1 else None)
