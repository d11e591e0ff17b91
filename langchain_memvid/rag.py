"""Retrieval-augmented answers: the prompt, passage formatting and chat-model set-up.

Shared by the `ask` command and the RAG examples so that both cite passages the same way. The chat
model is any LangChain chat model; `load_chat_model` builds one from a "provider:model" spec (or
the `MEMVID_CHAT_MODEL` environment variable) with `langchain.chat_models.init_chat_model`.

LangChain's prompt and runnable classes are imported by the functions that build chains (and
`RAG_PROMPT` is made on first access), so that the command line can name `CHAT_MODEL_ENV` and
`ChatModelError` without loading them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_core.documents import Document
    from langchain_core.language_models import BaseChatModel
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import Runnable

    RAG_PROMPT: ChatPromptTemplate  # made on first access, by `__getattr__` below

__all__ = [
    "CHAT_MODEL_ENV",
    "RAG_PROMPT",
    "ChatModelError",
    "answer_chain",
    "chat_model_spec",
    "describe_source",
    "format_docs",
    "load_chat_model",
    "rag_chain",
]

CHAT_MODEL_ENV = "MEMVID_CHAT_MODEL"
"""Environment variable naming the chat model, e.g. "openai:gpt-4o-mini" or "ollama:llama3"."""

_RAG_MESSAGES = [
    (
        "system",
        "Answer the question using only the numbered passages below. Cite the passages you "
        "use as [1], [2]. If the passages do not contain the answer, say that you do not "
        "know.\n\n{context}",
    ),
    ("human", "{question}"),
]


def _rag_prompt() -> ChatPromptTemplate:
    """`RAG_PROMPT`, made once: passages in the system turn, then the question."""
    prompt = globals().get("RAG_PROMPT")
    if prompt is None:
        from langchain_core.prompts import ChatPromptTemplate

        prompt = globals()["RAG_PROMPT"] = ChatPromptTemplate.from_messages(_RAG_MESSAGES)
    return prompt


if not TYPE_CHECKING:  # type checkers see `RAG_PROMPT` declared above, and no other name

    def __getattr__(name: str) -> Any:
        """`RAG_PROMPT`, the prompt both `answer_chain` and `rag_chain` use, made on first access (PEP 562)."""
        if name == "RAG_PROMPT":
            return _rag_prompt()
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)


def __dir__() -> list[str]:
    """The module's names, `RAG_PROMPT` included before it is made."""
    return sorted({*globals(), *__all__})


class ChatModelError(RuntimeError):
    """The configured chat model could not be set up; the message says how to fix the spec."""


def describe_source(metadata: Mapping[str, Any]) -> str:
    """A short human label for where a chunk came from: file name, then page or chapter.

    >>> describe_source({"source": "docs/qr.pdf", "page": 1, "page_label": "2"})
    'qr.pdf, p. 2'
    >>> describe_source({"source": "book.epub", "chapter": "Digital video"})
    'book.epub, Digital video'
    >>> describe_source({})
    '(unknown source)'
    """
    source = metadata.get("source")
    label = PurePath(str(source)).name if source else "(unknown source)"
    if metadata.get("page_label") is not None:
        return f"{label}, p. {metadata['page_label']}"
    page = metadata.get("page")
    if isinstance(page, int) and not isinstance(page, bool):
        return f"{label}, p. {page + 1}"
    if metadata.get("chapter"):
        return f"{label}, {metadata['chapter']}"
    return label


def format_docs(docs: Sequence[Document]) -> str:
    """Number the passages and label each with its source, for the prompt's `{context}`.

    >>> from langchain_core.documents import Document
    >>> print(format_docs([Document("QR codes date from 1994.", metadata={"source": "qr.md"})]))
    [1] (qr.md)
    QR codes date from 1994.
    """
    return "\n\n".join(
        f"[{n}] ({describe_source(doc.metadata)})\n{doc.page_content}" for n, doc in enumerate(docs, 1)
    )


def answer_chain(llm: BaseChatModel, prompt: ChatPromptTemplate | None = None) -> Runnable[Any, str]:
    """`prompt | llm | StrOutputParser()`: answers `{"context": ..., "question": ...}`.

    `prompt` defaults to `RAG_PROMPT`.
    """
    from langchain_core.output_parsers import StrOutputParser

    return (prompt if prompt is not None else _rag_prompt()) | llm | StrOutputParser()


def rag_chain(
    retriever: BaseRetriever | Runnable[str, list[Document]],
    llm: BaseChatModel,
    prompt: ChatPromptTemplate | None = None,
) -> Runnable[str, str]:
    """The LCEL RAG chain: `{context: retriever | format_docs, question} | prompt | llm | parser`.

    `prompt` defaults to `RAG_PROMPT`.
    """
    from langchain_core.runnables import RunnablePassthrough

    return {"context": retriever | format_docs, "question": RunnablePassthrough()} | answer_chain(llm, prompt)


def chat_model_spec(spec: str | None = None) -> str | None:
    """The chat model to use: `spec` when given, else `$MEMVID_CHAT_MODEL`, else None."""
    chosen = spec if spec is not None else os.environ.get(CHAT_MODEL_ENV)
    return (chosen.strip() or None) if chosen else None


def load_chat_model(spec: str | None = None, **kwargs: Any) -> BaseChatModel | None:
    """Build the chat model named by `spec` (or `$MEMVID_CHAT_MODEL`); None when neither is set.

    Args:
        spec: "provider:model", as `init_chat_model` takes it: "openai:gpt-4o-mini",
            "ollama:llama3", "anthropic:claude-3-5-haiku-latest".
        **kwargs: Passed to `init_chat_model` (`temperature`, `base_url`...).

    Raises:
        ChatModelError: `langchain` or the provider's package is missing, or the spec is not
            understood.
    """
    chosen = chat_model_spec(spec)
    if chosen is None:
        return None
    try:
        from langchain.chat_models import init_chat_model
    except ImportError as e:
        msg = "A chat model needs the `langchain` package: pip install 'langchain-qrvideo[chat]'."
        raise ChatModelError(msg) from e
    try:
        return init_chat_model(chosen, **kwargs)
    except Exception as e:  # ImportError for a missing provider, ValueError for a bad spec, ...
        first = str(e).strip().splitlines()[0].rstrip(".") if str(e).strip() else type(e).__name__
        msg = (
            f"Cannot set up the chat model {chosen!r}: {first}. Give it as 'provider:model' "
            "(e.g. 'openai:gpt-4o-mini' or 'ollama:llama3') and install the provider's package "
            "(langchain-openai, langchain-ollama, ...)."
        )
        raise ChatModelError(msg) from e
