"""Files into a store: load, split, give each chunk its stable id, skip what is stored, add in batches.

:func:`ingest` is the whole pipeline, the one behind ``lcmemvid ingest`` and the examples. Each
step is also a function of its own, so that another driver (a distributed ingest, say) can run the
steps where it likes and still produce the same chunks and ids:

1. :func:`load_files`: files and folders to Documents, recording what could not be loaded;
2. :func:`split_into_chunks`: Documents to chunks, each with its id
   (:func:`~langchain_memvid.splitting.chunk_id`) in ``Document.id``;
3. :func:`skip_stored`: the chunks whose id the store does not hold yet;
4. :func:`add_batch`: embed and write chunks as one commit.

The chunk conventions (metadata keys, how ids are made) are defined once, in
:mod:`langchain_memvid.splitting`. Ids come from a chunk's text and reading position, so ingesting
the same files again adds only what changed; nothing is ever deleted.

The loaders (and the parsing libraries behind them) are imported when loading starts, so that
importing this module, as the command line does for its defaults, costs next to nothing.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_memvid.errors import LoaderError, LoaderWarning
from langchain_memvid.splitting import SOURCE_KEY, check_sizes, chunk_id, split_documents

if TYPE_CHECKING:
    from langchain_core.documents import Document
    from rich.progress import Progress

    from langchain_memvid.vectorstores import MemvidVectorStore

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CHUNK_OVERLAP",
    "DEFAULT_CHUNK_SIZE",
    "IngestReport",
    "Loaded",
    "NothingToIngest",
    "add_batch",
    "ingest",
    "load_files",
    "skip_stored",
    "split_into_chunks",
]

DEFAULT_CHUNK_SIZE = 1000
"""Largest chunk, in characters: a few paragraphs, well within a small embedding model's window."""
DEFAULT_CHUNK_OVERLAP = 150
"""Characters a chunk repeats from the previous one, so a sentence cut at a boundary is in both."""
DEFAULT_BATCH_SIZE = 256
"""Chunks embedded and written per commit: a failure keeps the batches before it."""

# DirectoryLoader sums up its skipped files in one warning; they are listed in `skipped` instead.
_DIRECTORY_SUMMARY = "DirectoryLoader skipped"


class NothingToIngest(LoaderError):
    """None of the sources gave any text; the message lists why each was skipped."""


@dataclass(frozen=True)
class Loaded:
    """What :func:`load_files` read, and what it left out."""

    documents: list[Document]
    """One Document per page (PDF), chapter (EPUB) or file (text, Markdown), in source order."""
    files: int
    """Distinct ``source`` values among the Documents: the files that gave text."""
    skipped: list[tuple[str, str]]
    """``(path, reason)`` for every file or path that gave no Documents."""
    warnings: list[str]
    """Warnings raised while loading (a textless PDF page, a guessed encoding), as messages."""


@dataclass(frozen=True)
class IngestReport:
    """What :func:`ingest` did: the counts ``lcmemvid ingest`` prints, and the store afterwards."""

    files_loaded: int
    """Files that gave text."""
    documents: int
    """Documents loaded from them (pages, chapters, files)."""
    chunks: int
    """Chunks split from the Documents (identical chunks counted each time they occur)."""
    added: int
    """Chunks embedded and written now."""
    unchanged: int
    """Distinct chunks skipped because the store already held their id."""
    skipped: list[tuple[str, str]]
    """``(path, reason)`` for every file not loaded: unsupported, unreadable or without text."""
    warnings: list[str]
    """Warnings raised while loading, as messages."""
    records: int
    """Records in the store afterwards."""
    video_bytes: int
    """Bytes of video in the store afterwards."""
    text_bytes: int
    """Bytes of text in the store afterwards."""
    model: str | None
    """The embedding model the store records."""
    seconds: float
    """Wall time, from the start of loading to the end of the last commit."""


def load_files(
    sources: Sequence[str | Path], *, glob: str = "**/*", progress: Progress | None = None
) -> Loaded:
    """Load files and folders, skipping (not raising on) what cannot be loaded.

    A folder is loaded with :class:`~langchain_memvid.document_loaders.DirectoryLoader`
    (``glob`` picks its files), a file with the loader for its suffix. An unsupported or
    unreadable file, or one without text, is recorded in ``skipped`` with the reason, so one bad
    file does not stop a large ingest. Warnings raised while loading are collected, not shown.

    Args:
        sources: Files and folders.
        glob: Which files to take from folders.
        progress: A rich ``Progress`` to show a "Loading" task on; None shows nothing.

    Returns:
        The Documents, the number of files that gave text, the skipped paths and the warnings.

    Raises:
        TypeError: ``sources`` is a single path rather than a list of them.
    """
    if isinstance(sources, (str, os.PathLike)):
        msg = f"sources must be a list of files and folders, got the single path {sources!r}; pass [{sources!r}]."
        raise TypeError(msg)
    from langchain_memvid.document_loaders import DirectoryLoader, loader_for_path

    if progress is None:
        from rich.progress import Progress

        progress = Progress(disable=True)  # never started: it only counts
    docs: list[Document] = []
    skipped: list[tuple[str, str]] = []
    sources_seen: set[str] = set()
    task = progress.add_task("Loading", total=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LoaderWarning)
        for path in sources:
            try:
                loader = loader_for_path(path, glob=glob, on_error="skip")
                loaded = 0
                for doc in loader.lazy_load():
                    docs.append(doc)
                    sources_seen.add(str(doc.metadata.get(SOURCE_KEY)))
                    loaded += 1
                    name = Path(str(doc.metadata.get(SOURCE_KEY))).name
                    progress.update(task, advance=1, description=f"Loading {name}")
            except (LoaderError, OSError) as e:
                skipped.append((str(path), str(e)))
                continue
            if isinstance(loader, DirectoryLoader):
                skipped += loader.skipped
            elif not loaded:
                skipped.append((str(path), "no extractable text"))
        progress.update(task, description="Loading", total=len(docs))
    notes = [str(w.message) for w in caught if not str(w.message).startswith(_DIRECTORY_SUMMARY)]
    return Loaded(documents=docs, files=len(sources_seen), skipped=skipped, warnings=notes)


def split_into_chunks(
    docs: Sequence[Document],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
) -> list[Document]:
    """Split Documents into chunks and set each chunk's ``Document.id`` to its stable id.

    The chunks are those of :func:`~langchain_memvid.splitting.split_documents` (with
    ``chunk_index`` and ``start_index``); the ids those of
    :func:`~langchain_memvid.splitting.chunk_id`, the ones ``lcmemvid ingest`` has always used.

    Args:
        docs: The loaded Documents.
        chunk_size: The largest chunk, in characters.
        chunk_overlap: The most characters a chunk repeats from the previous one.

    Returns:
        The chunks, in input order; identical chunks (same text and metadata) share an id.

    Raises:
        ValueError: The sizes are invalid (see :func:`~langchain_memvid.splitting.check_sizes`).
    """
    chunks = split_documents(docs, chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    for chunk in chunks:
        chunk.id = chunk_id(chunk)
    return chunks


def skip_stored(store: MemvidVectorStore, chunks: Sequence[Document]) -> list[Document]:
    """The chunks whose id the store does not hold yet, each id once, in input order.

    One exact lookup of the ids in the catalog (``store.locate``), no embedding.

    Args:
        store: The store to look in.
        chunks: Chunks with ids, as :func:`split_into_chunks` makes them.

    Returns:
        The first chunk of each id that is not stored.

    Raises:
        ValueError: A chunk has no id.
    """
    unique: dict[str, Document] = {}
    for n, chunk in enumerate(chunks):
        if not chunk.id:
            msg = f"Chunk {n} has no id; make the chunks with split_into_chunks() (or set Document.id)."
            raise ValueError(msg)
        unique.setdefault(chunk.id, chunk)
    present = store.locate(list(unique))
    return [chunk for key, chunk in unique.items() if key not in present]


def add_batch(store: MemvidVectorStore, chunks: Sequence[Document]) -> list[str]:
    """Embed chunks and write them under their own ids, as one atomic commit.

    Args:
        store: The store to write to.
        chunks: Chunks with ids, usually from :func:`skip_stored`.

    Returns:
        The ids written.
    """
    return store.add_documents(list(chunks), ids=[chunk.id for chunk in chunks])


def ingest(
    store: MemvidVectorStore | Callable[[], MemvidVectorStore],
    sources: Sequence[str | Path],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
    batch_size: int = DEFAULT_BATCH_SIZE,
    glob: str = "**/*",
    progress: bool = False,
    on_warning: Callable[[str], None] | None = None,
) -> IngestReport:
    """Add files and folders (PDF, EPUB, text, Markdown) to a store, skipping what it holds.

    Files are loaded (:func:`load_files`), split into chunks with stable ids
    (:func:`split_into_chunks`), the chunks the store already holds are left out
    (:func:`skip_stored`), and the rest are embedded and written ``batch_size`` at a time, one
    commit per batch (:func:`add_batch`). Ingesting the same files again (by the same paths, with
    the same sizes) adds nothing; a changed file adds the chunks whose text or position changed
    and keeps the old ones (nothing is deleted).

    Example:
        ```python
        from langchain_memvid import MemvidVectorStore, SentenceTransformerEmbeddings
        from langchain_memvid.ingest import ingest

        with MemvidVectorStore("./library", SentenceTransformerEmbeddings()) as store:
            report = ingest(store, ["examples/data"], chunk_size=800, chunk_overlap=100)
        print(report.added, report.unchanged, report.skipped)
        ```

    Args:
        store: The store, or a function that opens it. A function is called only once there is
            something to add, so an ingest that finds no text creates no store; the store it
            returns is closed at the end.
        sources: Files and folders.
        chunk_size: The largest chunk, in characters.
        chunk_overlap: The most characters a chunk repeats from the previous one; smaller than
            ``chunk_size``.
        batch_size: Chunks embedded and written per commit; a failure keeps the batches before it.
        glob: Which files to take from folders.
        progress: Show rich progress bars on stderr: one while loading, one while embedding and
            writing.
        on_warning: Called with each loading warning (a textless PDF page, a guessed encoding)
            once loading is done. Default: each is issued again as a
            :class:`~langchain_memvid.document_loaders.LoaderWarning`.

    Returns:
        The counts and the store's size afterwards.

    Raises:
        ValueError: The sizes or ``batch_size`` are invalid; nothing was loaded.
        TypeError: ``sources`` is a single path rather than a list of them.
        NothingToIngest: No source gave any text (the message lists why each was skipped); no
            store was opened.
    """
    check_sizes(chunk_size, chunk_overlap)
    if isinstance(batch_size, bool) or batch_size < 1:
        msg = f"batch_size must be a positive integer, got {batch_size!r}."
        raise ValueError(msg)
    started = time.perf_counter()
    with progress_bars(progress) as bars:
        loaded = load_files(sources, glob=glob, progress=bars)
    for note in loaded.warnings:
        if on_warning is None:
            warnings.warn(note, LoaderWarning, stacklevel=2)
        else:
            on_warning(note)
    chunks = split_into_chunks(loaded.documents, chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    if not chunks:
        reasons = "; ".join(f"{p}: {r}" for p, r in loaded.skipped) or "the files hold no text"
        msg = f"Nothing to ingest ({reasons})."
        raise NothingToIngest(msg)
    with ExitStack() as stack:
        # A store this call opens, it closes; one it was given stays open.
        vstore = stack.enter_context(store()) if callable(store) else store
        todo = skip_stored(vstore, chunks)
        with progress_bars(progress) as bars:
            task = bars.add_task("Embedding and writing", total=len(todo))
            for start in range(0, len(todo), batch_size):
                batch = todo[start : start + batch_size]
                add_batch(vstore, batch)
                bars.advance(task, len(batch))
        stats = vstore.stats()
    return IngestReport(
        files_loaded=loaded.files,
        documents=len(loaded.documents),
        chunks=len(chunks),
        added=len(todo),
        unchanged=len({chunk.id for chunk in chunks}) - len(todo),
        skipped=loaded.skipped,
        warnings=loaded.warnings,
        records=stats["records"],
        video_bytes=stats["video_bytes"],
        text_bytes=stats["text_bytes"],
        model=stats["model"],
        seconds=time.perf_counter() - started,
    )


@contextmanager
def progress_bars(show: bool) -> Iterator[Progress]:
    """A rich progress display on stderr; hidden (but still usable) when ``show`` is False."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not show,
    ) as progress:
        yield progress
