"""Split loaded Documents into overlapping chunks that never cut a word in two.

Built on langchain-text-splitters' ``RecursiveCharacterTextSplitter``: text is
split at paragraph breaks first, then sentence ends, then line breaks, then any
whitespace, and only a single word longer than ``chunk_size`` is ever cut
inside. Every chunk carries a copy of its source Document's metadata plus
``chunk_index`` (its position within that Document) and ``start_index`` (its
character offset in the Document's text).

The splitter only returns strings, and finding them again in repetitive text is
ambiguous, so :func:`split_documents` follows the splitter's pieces to exact
offsets (checked against the splitter's own output), and drops the occasional
chunk the splitter emits that lies wholly inside a neighbouring chunk.

This module is also the one place that defines the chunk conventions every
other part relies on (ingest, neighbour lookup, a future distributed ingest):

- the metadata keys of a chunk's reading position: ``source`` (the file, set by
  the loaders), ``page`` (PDF, 0-based) or ``chapter`` (EPUB), ``chunk_index``
  and ``start_index`` (set here);
- :func:`chunk_id`, the stable id of a chunk, which existing stores hold;
- :func:`chunk_group`, the loaded Document a chunk belongs to, within which
  ``chunk_index`` counts; :func:`neighbor_filter` and :func:`reading_position`
  follow from it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Imported where they are used: the vector store and the command line read the chunk
    # conventions below without paying for pydantic Documents or langchain-text-splitters.
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

__all__ = [
    "CHAPTER_KEY",
    "CHUNK_ID_LENGTH",
    "CHUNK_INDEX_KEY",
    "DEFAULT_SEPARATORS",
    "PAGE_KEY",
    "SOURCE_KEY",
    "START_INDEX_KEY",
    "check_sizes",
    "chunk_group",
    "chunk_id",
    "default_splitter",
    "neighbor_filter",
    "reading_position",
    "split_documents",
]

# -- chunk conventions ---------------------------------------------------------------------------

SOURCE_KEY = "source"
"""Metadata key of the file a Document was loaded from (the path as given to the loader)."""
PAGE_KEY = "page"
"""Metadata key of a PDF Document's 0-based page; ``chunk_index`` restarts on each page."""
CHAPTER_KEY = "chapter"
"""Metadata key of an EPUB Document's chapter title (with ``chapter_index``, its 0-based number)."""
CHUNK_INDEX_KEY = "chunk_index"
"""Metadata key of a chunk's 0-based position among the chunks of its Document."""
START_INDEX_KEY = "start_index"
"""Metadata key of a chunk's character offset in its Document's text."""
CHUNK_ID_LENGTH = 32
"""Hex digits of SHA-256 kept in a chunk id (128 bits: collisions are not a concern)."""


def chunk_id(chunk: Document) -> str:
    """The stable id of a chunk: a hash of its text and all of its metadata.

    The id is the first :data:`CHUNK_ID_LENGTH` hex digits of the SHA-256 of the
    UTF-8 bytes of ``json.dumps([text, metadata], sort_keys=True, default=str)``
    (ASCII-only, as ``json.dumps`` writes by default; a value JSON cannot hold
    counts as its ``str``). The metadata holds the chunk's reading position (``source``,
    ``page`` or ``chapter``, ``chunk_index``, ``start_index``) and whatever the
    loader added, and ``Document.id`` plays no part. So the same file, loaded
    by the same path and split with the same sizes, gives the same ids in every
    run and process, which is what lets an ingest skip what a store already
    holds; a chunk whose text or position changes gets a new id.

    Existing stores hold ids made this way: changing the recipe would make the
    next ingest of the same files add everything again.

    >>> from langchain_core.documents import Document
    >>> chunk_id(Document("QR codes", metadata={"source": "a.txt", "chunk_index": 0, "start_index": 0}))
    'ebb34ff9ab2b907b85b0f5c1d4d4272f'

    Args:
        chunk: A chunk, usually from :func:`split_documents`.

    Returns:
        32 lower-case hex digits.
    """
    key = json.dumps([chunk.page_content, chunk.metadata], sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:CHUNK_ID_LENGTH]


def chunk_group(document: Document) -> tuple[str, str] | None:
    """The loaded Document a chunk came from, as a hashable key; None outside the convention.

    Chunks of one loaded Document share ``source`` (and ``page`` for a PDF page) and are
    numbered by an integer ``chunk_index``, so two chunks are neighbours only within one
    group. ``source`` and ``page`` must be plain scalars (``page`` may also be None): they
    become equality conditions of a filter, and a stored dict such as ``{"$ne": "x"}`` must
    never act as an operator.

    ``chapter`` is not part of the group: the chunks of an EPUB's chapters, each numbered from
    0, fall into one group per book. This is the grouping neighbour lookup has always used
    (``MemvidVectorStore.get_neighbors``), kept as it is so that its results do not change.

    >>> from langchain_core.documents import Document
    >>> chunk_group(Document("x", metadata={"source": "a.pdf", "page": 2, "chunk_index": 0}))
    ("'a.pdf'", '2')
    >>> chunk_group(Document("x", metadata={"source": "a.txt"})) is None
    True

    Args:
        document: A chunk.

    Returns:
        ``(repr(source), repr(page))`` (``repr(Ellipsis)`` when there is no page), or None
        when ``source`` or ``chunk_index`` is missing or ``source``/``page`` is not a scalar.
    """
    meta = document.metadata
    if not _is_scalar(meta.get(SOURCE_KEY)) or not _is_int(meta.get(CHUNK_INDEX_KEY)):
        return None
    page = meta.get(PAGE_KEY)
    if page is not None and not _is_scalar(page):
        return None
    return repr(meta[SOURCE_KEY]), repr(meta.get(PAGE_KEY, ...))


def neighbor_filter(document: Document, window: int) -> dict[str, Any] | None:
    """The metadata filter that selects the chunks within ``window`` of ``document`` in its group.

    An exact query (same ``source``, same ``page`` or no page, ``chunk_index`` within the
    window), never a vector search; None when the document is outside the convention
    (see :func:`chunk_group`).

    >>> from langchain_core.documents import Document
    >>> neighbor_filter(Document("x", metadata={"source": "a.txt", "chunk_index": 4}), 1)
    {'source': {'$eq': 'a.txt'}, 'page': {'$exists': False}, 'chunk_index': {'$gte': 3, '$lte': 5}}

    Args:
        document: A chunk.
        window: How many chunks to take on each side (0 or more).

    Returns:
        A filter in the engine's language, or None.
    """
    if chunk_group(document) is None:
        return None
    meta = document.metadata
    index = int(meta[CHUNK_INDEX_KEY])
    return {
        SOURCE_KEY: {"$eq": meta[SOURCE_KEY]},
        PAGE_KEY: {"$eq": meta[PAGE_KEY]} if PAGE_KEY in meta else {"$exists": False},
        CHUNK_INDEX_KEY: {"$gte": index - window, "$lte": index + window},
    }


def reading_position(document: Document) -> tuple[int, str]:
    """A sort key that puts the chunks of one group in reading order (-1 without a ``chunk_index``).

    The id breaks ties, so the order is the same in every run.
    """
    index = document.metadata.get(CHUNK_INDEX_KEY)
    position = index if isinstance(index, int) and not isinstance(index, bool) else -1
    return position, document.id or ""


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- splitting -----------------------------------------------------------------------------------


DEFAULT_SEPARATORS: tuple[str, ...] = (
    r"\n[^\S\n]*\n\s*",  # paragraph break: a blank line (which may hold spaces)
    r"(?<=[.!?;:])\s+",  # whitespace after the end of a sentence or clause
    r"\n",  # line break
    r"\s+",  # any whitespace: a word boundary
    # A piece is "whitespace + word"; when the two together do not fit but the
    # word does, this parts them so that the word is not cut character by character.
    r"(?<=\s)(?=\S)",
    "",  # last resort, only for a single word longer than chunk_size
)
"""Regular expressions tried in order; each piece keeps its separator at its start."""


def check_sizes(chunk_size: int, chunk_overlap: int) -> None:
    """Reject sizes the splitter would mishandle, with a message saying what to change.

    Callers that do slow work before splitting (loading files) call it first, to fail early.

    Raises:
        ValueError: ``chunk_size`` is not positive, ``chunk_overlap`` is negative, or
            ``chunk_overlap >= chunk_size``.
    """
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


def default_splitter(chunk_size: int = 1000, chunk_overlap: int = 150) -> RecursiveCharacterTextSplitter:
    """Return the splitter :func:`split_documents` uses.

    Its own ``split_documents``/``create_documents`` set ``start_index`` by
    searching for each chunk, which can be off in repetitive text; prefer
    :func:`split_documents`, which knows the exact offsets.

    Args:
        chunk_size: The largest chunk, in characters.
        chunk_overlap: The most characters a chunk repeats from the end of the
            previous one; must be smaller than ``chunk_size``.

    Raises:
        ValueError: ``chunk_size`` is not positive, ``chunk_overlap`` is negative,
            or ``chunk_overlap >= chunk_size``.
    """
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    check_sizes(chunk_size, chunk_overlap)
    return RecursiveCharacterTextSplitter(
        separators=list(DEFAULT_SEPARATORS),
        is_separator_regex=True,
        keep_separator="start",
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        strip_whitespace=True,
        add_start_index=True,
    )


def _pieces(text: str, separator: str) -> list[str]:
    """Split ``text`` at a regex, each piece keeping its separator at its start.

    The same pieces as the splitter's ``keep_separator="start"``; joined, they
    give back ``text``.
    """
    if not separator:
        return list(text)
    parts = re.split(f"({separator})", text)
    pieces = [parts[0]] + [parts[i] + parts[i + 1] for i in range(1, len(parts) - 1, 2)]
    return [piece for piece in pieces if piece]


def _spans(text: str, offset: int, separators: list[str], size: int, overlap: int) -> list[tuple[str, int]]:
    """Split ``text`` exactly as the splitter does, keeping each chunk's offset.

    ``RecursiveCharacterTextSplitter`` returns bare strings, and searching for
    them again is ambiguous in repetitive text; this mirror of its recursion and
    merging knows where every piece came from. :func:`split_documents` checks
    the result against the splitter's own output before trusting it.
    """
    separator, rest = separators[-1], []
    for i, candidate in enumerate(separators):
        if not candidate:
            separator = candidate
            break
        if re.search(candidate, text):
            separator, rest = candidate, separators[i + 1 :]
            break
    chunks: list[tuple[str, int]] = []
    good: list[tuple[str, int]] = []
    position = offset
    for piece in _pieces(text, separator):
        if len(piece) < size:
            good.append((piece, position))
        else:
            chunks.extend(_merge(good, size, overlap))
            good = []
            if rest:
                chunks.extend(_spans(piece, position, rest, size, overlap))
            elif piece.strip():
                chunks.append((piece, position))
        position += len(piece)
    chunks.extend(_merge(good, size, overlap))
    return chunks


def _merge(pieces: list[tuple[str, int]], size: int, overlap: int) -> list[tuple[str, int]]:
    """Merge consecutive pieces into chunks the way ``TextSplitter._merge_splits`` does."""
    chunks: list[tuple[str, int]] = []
    current: list[tuple[str, int]] = []
    total = 0

    def emit() -> None:
        joined = "".join(piece for piece, _ in current)
        stripped = joined.strip()
        if stripped:
            chunks.append((stripped, current[0][1] + len(joined) - len(joined.lstrip())))

    for piece, position in pieces:
        if total + len(piece) > size and current:
            emit()
            while total > overlap or (total + len(piece) > size and total > 0):
                total -= len(current.pop(0)[0])
        current.append((piece, position))
        total += len(piece)
    if current:
        emit()
    return chunks


def _is_boundary(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` begins and ends at word boundaries."""
    return (start == 0 or text[start - 1].isspace()) and (end == len(text) or text[end].isspace())


def _search(text: str, chunks: list[str], chunk_overlap: int) -> list[tuple[str, int]]:
    """Find each chunk's offset by searching, for when :func:`_spans` disagrees.

    A chunk must start after the previous one, end after it, begin no earlier
    than the overlap allows, and preferably sit on word boundaries.
    """
    found: list[tuple[str, int]] = []
    prev_start, prev_end = -1, 0
    for chunk in chunks:
        fallback = -1
        position = text.find(chunk, max(prev_start + 1, prev_end - chunk_overlap, 0))
        while position != -1:
            end = position + len(chunk)
            if end > prev_end:
                if _is_boundary(text, position, end):
                    break
                if fallback == -1:
                    fallback = position
            position = text.find(chunk, position + 1)
        if position == -1:
            position = fallback
        if position == -1:
            continue  # nothing beyond the previous chunk: a repeat
        found.append((chunk, position))
        prev_start, prev_end = position, position + len(chunk)
    return found


def _drop_repeats(spans: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Drop chunks that lie inside the chunk before or after them.

    The splitter can emit one when the overlap it keeps is followed by a piece
    too long to join it, or when the overlap swallows a whole short chunk; such
    a chunk only repeats text that another chunk already holds.
    """

    def inside(inner: tuple[str, int], outer: tuple[str, int]) -> bool:
        return outer[1] <= inner[1] and inner[1] + len(inner[0]) <= outer[1] + len(outer[0])

    kept: list[tuple[str, int]] = []
    for index, span in enumerate(spans):
        if kept and inside(span, kept[-1]):
            continue
        if index + 1 < len(spans) and inside(span, spans[index + 1]):
            continue
        kept.append(span)
    return kept


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

    Examples:
        >>> from langchain_core.documents import Document
        >>> doc = Document("One sentence here. Another one follows it.", metadata={"page": 3})
        >>> for chunk in split_documents([doc], chunk_size=24, chunk_overlap=0):
        ...     print(repr(chunk.page_content), chunk.metadata)
        'One sentence here.' {'page': 3, 'chunk_index': 0, 'start_index': 0}
        'Another one follows it.' {'page': 3, 'chunk_index': 1, 'start_index': 19}
        >>> split_documents([doc], chunk_size=10, chunk_overlap=10)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: chunk_overlap (10) must be smaller than chunk_size (10); ...
    """
    from langchain_core.documents import Document

    splitter = default_splitter(chunk_size, chunk_overlap)
    chunks: list[Document] = []
    for doc in docs:
        # Trailing whitespace would be a piece of its own, which the splitter
        # can emit as a repeat of the previous chunk.
        text = doc.page_content.rstrip()
        # With chunk_size=1 the splitter passes single whitespace characters through.
        expected = [chunk for chunk in splitter.split_text(text) if chunk.strip()]
        spans = _spans(text, 0, list(DEFAULT_SEPARATORS), chunk_size, chunk_overlap)
        if [chunk for chunk, _ in spans] != expected:  # a langchain-text-splitters change
            spans = _search(text, expected, chunk_overlap)
        for index, (chunk, start) in enumerate(_drop_repeats(spans)):
            metadata = copy.deepcopy(doc.metadata)
            metadata[CHUNK_INDEX_KEY] = index
            metadata[START_INDEX_KEY] = start
            chunks.append(Document(page_content=chunk, metadata=metadata))
    return chunks
