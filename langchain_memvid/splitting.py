"""Split loaded Documents into overlapping chunks that never cut a word in two.

Built on langchain-text-splitters' ``RecursiveCharacterTextSplitter``: text is
split at paragraph breaks first, then sentence ends, then line breaks, then any
whitespace, and only a single word longer than ``chunk_size`` is ever cut
inside. Every chunk carries a copy of its source Document's metadata plus
``chunk_index`` (its position within that Document) and ``start_index`` (its
character offset in the Document's text).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

__all__ = ["DEFAULT_SEPARATORS", "default_splitter", "split_documents"]

DEFAULT_SEPARATORS: tuple[str, ...] = (
    r"\n[^\S\n]*\n\s*",  # paragraph break: a blank line (which may hold spaces)
    r"(?<=[.!?;:])\s+",  # whitespace after the end of a sentence or clause
    r"\n",  # line break
    # Every word boundary, as an empty match: words and whitespace runs become
    # separate pieces, so a word that fits in a chunk is never glued to the
    # whitespace before it and then cut because the two together do not fit.
    r"(?<=\s)(?=\S)|(?<=\S)(?=\s)",
    "",  # last resort, only for a single word longer than chunk_size
)
"""Regular expressions tried in order; each piece keeps its separator at its start."""


def _check_sizes(chunk_size: int, chunk_overlap: int) -> None:
    """Reject sizes the splitter would mishandle, with a message saying what to change."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive number of characters, got {chunk_size}")
    if chunk_overlap < 0:
        raise ValueError(f"chunk_overlap must be 0 or more characters, got {chunk_overlap}")
    if chunk_overlap >= chunk_size:
        raise ValueError(
            f"chunk_overlap ({chunk_overlap}) must be smaller than chunk_size ({chunk_size}); "
            f"a common choice is about 10-20% of chunk_size, e.g. "
            f"chunk_overlap={max(0, chunk_size // 7)}"
        )


def default_splitter(
    chunk_size: int = 1000, chunk_overlap: int = 150
) -> RecursiveCharacterTextSplitter:
    """Return the splitter :func:`split_documents` uses.

    Args:
        chunk_size: The largest chunk, in characters.
        chunk_overlap: The most characters a chunk repeats from the end of the
            previous one; must be smaller than ``chunk_size``.

    Raises:
        ValueError: ``chunk_size`` is not positive, ``chunk_overlap`` is negative,
            or ``chunk_overlap >= chunk_size``.
    """
    _check_sizes(chunk_size, chunk_overlap)
    return RecursiveCharacterTextSplitter(
        separators=list(DEFAULT_SEPARATORS),
        is_separator_regex=True,
        keep_separator="start",
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        strip_whitespace=True,
        add_start_index=True,
    )


def _is_boundary(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` begins and ends at word boundaries."""
    return (start == 0 or text[start - 1].isspace()) and (end == len(text) or text[end].isspace())


def _locate(text: str, chunks: list[str], chunk_overlap: int) -> list[int]:
    """Find each chunk's offset in ``text``.

    The splitter's own ``start_index`` takes the first match after an estimate,
    which in repetitive text can land on an identical string inside an earlier
    word. Here a chunk must start after the previous one, end after it, begin
    no earlier than the overlap allows, and preferably sit on word boundaries.
    """
    offsets: list[int] = []
    prev_start, prev_end = -1, 0
    for chunk in chunks:
        lowest = max(prev_start + 1, prev_end - chunk_overlap, 0)
        fallback = -1
        position = text.find(chunk, lowest)
        while position != -1:
            end = position + len(chunk)
            if end > prev_end or not offsets:
                if _is_boundary(text, position, end):
                    break
                if fallback == -1:
                    fallback = position
            position = text.find(chunk, position + 1)
        if position == -1:
            position = fallback if fallback != -1 else text.find(chunk, max(prev_start, 0))
        offsets.append(position)
        if position != -1:
            prev_start, prev_end = position, position + len(chunk)
    return offsets


def split_documents(
    docs: Iterable[Document], *, chunk_size: int = 1000, chunk_overlap: int = 150
) -> list[Document]:
    """Split Documents into chunks of at most ``chunk_size`` characters.

    The input Documents are not changed. Each chunk gets a deep copy of its
    source's metadata plus ``chunk_index`` (0-based position among the chunks of
    that Document) and ``start_index`` (offset of the chunk in the Document's
    text). Documents with no text produce no chunks.

    Args:
        docs: The Documents to split.
        chunk_size: The largest chunk, in characters.
        chunk_overlap: The most characters a chunk repeats from the end of the
            previous one; must be smaller than ``chunk_size``.

    Returns:
        The chunks, in input order.

    Raises:
        ValueError: The sizes are invalid (see :func:`default_splitter`).
    """
    splitter = default_splitter(chunk_size, chunk_overlap)
    chunks: list[Document] = []
    for doc in docs:
        text = doc.page_content
        pieces = splitter.split_text(text)
        for index, (piece, start) in enumerate(
            zip(pieces, _locate(text, pieces, chunk_overlap), strict=True)
        ):
            metadata = copy.deepcopy(doc.metadata)
            metadata["chunk_index"] = index
            metadata["start_index"] = start
            chunks.append(Document(page_content=piece, metadata=metadata))
    return chunks
