"""A RAG chatbot over the PDF and EPUB library in examples/data.

    MEMVID_CHAT_MODEL=ollama:llama3 python examples/rag_chatbot.py ["Your question" ...]

The chain is plain LCEL: retriever | format_docs | prompt | chat model | StrOutputParser. Any
LangChain chat model works: pass one to `main(llm=...)`, or name one in MEMVID_CHAT_MODEL
("openai:gpt-4o-mini", "ollama:llama3"; install the provider's package) and it is built with
`langchain.chat_models.init_chat_model`. Without one, the script shows what it would send the
model: the retrieved passages.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnablePassthrough

from langchain_memvid import MemvidVectorStore, SentenceTransformerEmbeddings
from langchain_memvid.ingest import ingest
from langchain_memvid.rag import CHAT_MODEL_ENV, format_docs, load_chat_model

DATA = Path(__file__).resolve().parent / "data"
STORE = Path(tempfile.gettempdir()) / "langchain-memvid-library"  # built once, reused by later runs

QUESTIONS = (
    "Who invented the QR code, and why?",
    "What is a group of pictures in video compression?",
    "How did early toys make pictures move?",
)

PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "You answer questions about a small library of books on QR codes, film and video. "
            "Use only the numbered passages below and cite them as [1], [2]. If they do not "
            "hold the answer, say so.\n\n{context}",
        ),
        ("human", "{question}"),
    ]
)


def build_store(path: str | Path = STORE, embedding: Embeddings | None = None) -> MemvidVectorStore:
    """Open the library store, ingesting the PDF and EPUB books of examples/data the first time."""
    store = MemvidVectorStore(path, embedding or SentenceTransformerEmbeddings())
    if len(store) == 0:  # ingest() would skip every stored chunk anyway; this skips the parsing too
        books = sorted([*DATA.glob("*.pdf"), *DATA.glob("*.epub")])
        ingest(store, books, chunk_size=800, chunk_overlap=100)
    return store


def build_chain(store: MemvidVectorStore, llm: BaseChatModel, k: int = 3) -> Runnable[str, str]:
    """The RAG chain: retrieve k passages, number them, prompt the model, return its text."""
    retriever = store.as_retriever(search_kwargs={"k": k})
    return (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | PROMPT
        | llm
        | StrOutputParser()
    )


def chat(
    chain: Runnable[str, str], questions: Sequence[str], echo: Callable[[str], None] = print
) -> list[tuple[str, str]]:
    """Ask each question in turn; returns (question, answer) pairs."""
    session = []
    for question in questions:
        answer = chain.invoke(question)
        echo(f"You: {question}\nBot: {answer}\n")
        session.append((question, answer))
    return session


def main(
    llm: BaseChatModel | None = None,
    embedding: Embeddings | None = None,
    store_path: str | Path = STORE,
    questions: Sequence[str] = QUESTIONS,
) -> list[tuple[str, str]]:
    """Run a short question-answer session over the library.

    Returns:
        (question, answer) pairs; empty when no chat model is available.
    """
    llm = llm or load_chat_model()  # None unless MEMVID_CHAT_MODEL is set
    with build_store(store_path, embedding) as store:
        if llm is None:
            print(f"No chat model: set {CHAT_MODEL_ENV}=provider:model (e.g. ollama:llama3).")
            print("The model would be given these passages:\n")
            for question in questions:
                print(f"Q: {question}\n{format_docs(store.similarity_search(question, k=3))}\n")
            return []
        return chat(build_chain(store, llm), questions)


if __name__ == "__main__":
    main(questions=sys.argv[1:] or QUESTIONS)
