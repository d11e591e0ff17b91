"""The `lcmemvid` command line: build, search, inspect and repair memvid stores.

Each command only translates: arguments become calls on `MemvidVectorStore` and the engine's
public API, results go to stdout (as text or `--json`), progress and errors go to stderr. Errors
the library raises on purpose become `click.ClickException` (`Error: ...`, exit 1); usage errors
exit 2, as click does.

STORE is a folder or a URL (`cli_versions.py`: `--storage-option`, and `--version`/`--as-of`
on the reading commands, which hand each command one `StoreRef`); that module also holds the
commands of versioned stores (`log`, `cleanup`, `migrate`), added to the group at the end.

Each command imports what it uses when it runs: `info`, `verify` and the other maintenance commands
load the storage engine only, no LangChain (`rebuild` loads the embedding model only to re-embed
lost vectors); `search` and `ask` add the vector store and the model; only `ingest` loads the file
loaders and their parsing libraries.
"""

# ruff: noqa: D301 - click's "\b" (keep the next paragraph unwrapped) must be a real backspace.

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

from langchain_memvid.cli_versions import COMMANDS, StoreRef, read_store_argument, store_argument
from langchain_memvid.distributed import DEFAULT_COMMIT_EVERY, RayIngestReport
from langchain_memvid.engine import PROFILES, MemvidError, StoreNotFound
from langchain_memvid.engine.search.encodings import ENCODINGS
from langchain_memvid.errors import EmbeddingModelLoadError, LoaderError
from langchain_memvid.ingest import DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE
from langchain_memvid.ingest import ingest as ingest_sources
from langchain_memvid.querying import hit_dicts, load_embedding, open_store, parse_filter, search_with_mode
from langchain_memvid.rag import CHAT_MODEL_ENV, ChatModelError
from langchain_memvid.splitting import check_sizes

if TYPE_CHECKING:
    from langchain_memvid.engine import Location
    from langchain_memvid.ingest import IngestReport
    from langchain_memvid.vectorstores import MemvidVectorStore

__all__ = ["DEFAULT_MODEL", "cli", "main"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
"""Embedding model of new stores: small, fast on CPU, and packaged for offline use."""

PREVIEW_CHARS = 240
F = TypeVar("F", bound=Callable[..., Any])

# Errors a user can act on: shown as one `Error: ...` line, never as a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    MemvidError,
    LoaderError,
    EmbeddingModelLoadError,
    ChatModelError,
)


class MemvidGroup(click.Group):
    """A click group that turns the library's errors into `ClickException` (exit 1)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Commands in the order of a store's life, not alphabetically."""
        return list(self.commands)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand, translating library errors."""
        try:
            return super().invoke(ctx)
        except USER_ERRORS as e:
            raise click.ClickException(str(e)) from e


@click.group(
    cls=MemvidGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(
    package_name="langchain-qrvideo", prog_name="lcmemvid", message="%(prog)s (%(package)s) %(version)s"
)
def cli() -> None:
    """Store documents as QR codes in video frames and search them with FAISS.

    A store is a folder: video segments hold the text, FAISS files the vectors, and a SQLite
    catalog what is live. It can also live at a URL (s3://bucket/prefix, gs://, az://,
    file://...), where every commit is a version: `log` lists them, --version or --as-of reads
    an old one, `cleanup` removes old ones, `migrate` copies a folder there. Objects read from a
    URL are cached in $LCMEMVID_CACHE (default: the user cache folder). Results go to stdout,
    progress and errors to stderr.

    \b
    Example:
        lcmemvid ingest ./store examples/data
        lcmemvid search ./store "Who invented the QR code?"
        lcmemvid search s3://my-bucket/library "QR" --as-of 2026-12-03T10:00:00Z
    """


def main() -> None:
    """Entry point of the `lcmemvid` console script."""
    # Hub and transformers progress bars ("Loading weights") would clutter stderr on every run.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # The library's own warnings (e.g. a store opened with another model than it was built with).
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("Warning: %(message)s"))
    library_logger = logging.getLogger("langchain_memvid")
    library_logger.addHandler(handler)
    library_logger.setLevel(logging.WARNING)
    cli(prog_name="lcmemvid")


# -- shared options ------------------------------------------------------------------------------


def model_option(func: F) -> F:
    """`--model`: the embedding model, defaulting to the one the store records."""
    return click.option(
        "--model",
        metavar="NAME",
        default=None,
        help="Embedding model (sentence-transformers name or folder). Default: the model the store "
        "was built with.",
    )(func)


def json_option(func: F) -> F:
    """`--json`: machine-readable output on stdout."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)


def k_option(func: F) -> F:
    """`-k`: how many passages to retrieve."""
    return click.option(
        "-k", "k", default=4, show_default=True, type=click.IntRange(min=1), help="How many hits."
    )(func)


# -- ingest --------------------------------------------------------------------------------------


@cli.command()
@store_argument
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--model",
    metavar="NAME",
    default=None,
    help=f"Embedding model. Default: the store's model, or {DEFAULT_MODEL} for a new store.",
)
@click.option(
    "--chunk-size",
    default=DEFAULT_CHUNK_SIZE,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest chunk, in characters.",
)
@click.option(
    "--chunk-overlap",
    default=DEFAULT_CHUNK_OVERLAP,
    show_default=True,
    type=click.IntRange(min=0),
    help="Characters a chunk repeats from the previous one.",
)
@click.option(
    "--profile",
    type=click.Choice(sorted(PROFILES)),
    default=None,
    help="Video profile of a new store: exact 1-bit PNG frames (lossless, the default) or "
    "H.264 frames that survive re-encoding (robust).",
)
@click.option(
    "--vector-encoding",
    type=click.Choice(ENCODINGS),
    default=None,
    help="How a new store keeps its vectors: int8 (the default: a quarter of float32's bytes, recall@10 "
    "0.992 against exact search), float32 (exact), float16, or binary (smallest, recall@10 0.674). "
    "See docs/indexes.md.",
)
@click.option(
    "--no-lexical-index",
    is_flag=True,
    help="Create the store without the lexical index (no --mode lexical|hybrid search until "
    "`build-lexicon`; saves about a sixth of the text's size).",
)
@click.option(
    "--batch-size",
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    type=click.IntRange(min=1),
    help="Chunks embedded and written per commit (with --ray: chunks per embedding call).",
)
@click.option("--glob", default="**/*", show_default=True, help="Files to take from folders.")
@click.option(
    "--ray",
    "use_ray",
    is_flag=True,
    help="Run on a Ray cluster: its workers read, embed and build segments, this process commits "
    'them (needs pip install "langchain-qrvideo[ray]"; see docs/ray.md).',
)
@click.option(
    "--ray-address",
    metavar="ADDRESS",
    default=None,
    help="With --ray: the cluster to join. Default: $RAY_ADDRESS, else a new local one.",
)
@click.option(
    "--workers",
    metavar="N",
    default=None,
    type=click.IntRange(min=1),
    help="With --ray: embedding workers. Default: one per GPU with --gpus-per-worker, else half the CPUs.",
)
@click.option(
    "--gpus-per-worker",
    metavar="G",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="With --ray: GPUs each embedding worker reserves (0: embed on CPUs).",
)
@click.option(
    "--segment-size",
    metavar="RECORDS",
    default=None,
    type=click.IntRange(min=1),
    help="With --ray: records per segment, each built by one task. Default: 4096.",
)
@click.option(
    "--commit-every",
    metavar="SEGMENTS",
    default=DEFAULT_COMMIT_EVERY,
    show_default=True,
    type=click.IntRange(min=1),
    help="With --ray: segments per commit; a crash loses at most the segments since the last one.",
)
@click.option("-s", "--silent", is_flag=True, help="No progress bars.")
@json_option
def ingest(
    store: StoreRef,
    paths: tuple[Path, ...],
    model: str | None,
    chunk_size: int,
    chunk_overlap: int,
    profile: str | None,
    vector_encoding: str | None,
    no_lexical_index: bool,
    batch_size: int,
    glob: str,
    use_ray: bool,
    ray_address: str | None,
    workers: int | None,
    gpus_per_worker: float,
    segment_size: int | None,
    commit_every: int,
    silent: bool,
    as_json: bool,
) -> None:
    """Add files and folders (PDF, EPUB, text, Markdown) to STORE (a folder or a URL).

    Files are loaded, split into chunks, embedded and written as QR frames. The store is
    created when missing; at a URL, each commit is a new version. A chunk's id comes from its
    text, source path and position, so ingesting the same files again (by the same paths) adds
    only what changed; nothing is deleted. With --ray, a Ray cluster's workers do the work (STORE must be on a file system
    they all see, at the same path) and --batch-size is the chunks per embedding call; the
    result is the same store.

    \b
    Example:
        lcmemvid ingest ./store examples/data notes.md --chunk-size 800
        lcmemvid ingest /shared/store /shared/books --ray --workers 8 --gpus-per-worker 1
    """
    try:
        check_sizes(chunk_size, chunk_overlap)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    ray_options = {
        "--ray-address": ray_address is not None,
        "--workers": workers is not None,
        "--gpus-per-worker": gpus_per_worker != 0,
        "--segment-size": segment_size is not None,
        "--commit-every": commit_every != DEFAULT_COMMIT_EVERY,
    }
    if not use_ray and any(ray_options.values()):
        raise click.UsageError(f"{', '.join(k for k, v in ray_options.items() if v)} only apply with --ray.")
    if use_ray and store.versioned:
        msg = f"--ray builds segments in the store's folder, which every node must see; {store} is a versioned store. Ingest into a shared folder with --ray, then `lcmemvid migrate FOLDER {store}`."
        raise click.ClickException(msg)

    def on_warning(note: str) -> None:
        click.echo(f"Warning: {note}", err=True)

    # NothingToIngest is a LoaderError: the group prints it as `Error: Nothing to ingest (...)`.
    if use_ray:
        report: IngestReport = _ingest_on_ray(
            Path(store.location),
            paths,
            model,
            {"profile": profile, "vector_encoding": vector_encoding, "lexical_index": not no_lexical_index},
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            batch_size=batch_size,
            segment_size=segment_size,
            commit_every=commit_every,
            workers=workers,
            gpus_per_worker=gpus_per_worker,
            ray_address=ray_address,
            glob=glob,
            progress=not silent,
            on_warning=on_warning,
        )
    else:
        report = ingest_sources(
            # opened only when there is text to add
            lambda: _open_or_create(store, model, profile, vector_encoding, lexical=not no_lexical_index),
            paths,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            batch_size=batch_size,
            glob=glob,
            progress=not silent,
            on_warning=on_warning,
        )
    summary = {
        "store": str(store),
        "files_loaded": report.files_loaded,
        "documents": report.documents,
        "chunks": report.chunks,
        "added": report.added,
        "unchanged": report.unchanged,
        "skipped": [{"path": p, "reason": r} for p, r in report.skipped],
        "records": report.records,
        "video_bytes": report.video_bytes,
        "model": report.model,
        "seconds": round(report.seconds, 2),
    }
    if isinstance(report, RayIngestReport):
        summary.update(ray=True, segments=report.segments, commits=report.commits)
    if as_json:
        _echo_json(summary)
        return
    click.echo(
        f"Ingested {_count(report.files_loaded, 'file')} ({_count(report.documents, 'document')}, "
        f"{_count(report.chunks, 'chunk')}) into {store} in "
        f"{summary['seconds']:.1f} s: {report.added} added, {report.unchanged} unchanged."
    )
    if isinstance(report, RayIngestReport):
        click.echo(
            f"On Ray: {_count(report.segments, 'segment')} written in {_count(report.commits, 'commit')}."
        )
    click.echo(
        f"The store now holds {report.records} records; video {_size(report.video_bytes)} "
        f"for {_size(report.text_bytes)} of text. Model: {report.model}."
    )
    if report.skipped:
        click.echo(f"Skipped {_count(len(report.skipped), 'file')}:")
        for path, reason in report.skipped:
            click.echo(f"  {path}: {reason}")


def _ingest_on_ray(
    store: Path, paths: Sequence[Path], model: str | None, new_store: dict[str, Any], **kwargs: Any
) -> RayIngestReport:
    """`ingest --ray`: an existing store is opened here, a new one once there is something to add.

    An existing store is opened as without --ray (warning about the options it keeps); a new one
    is created with `new_store`'s options.
    """
    from langchain_memvid import distributed

    try:
        distributed.require_ray()  # before anything is loaded
    except distributed.RayMissing as e:
        raise click.ClickException(str(e)) from e
    folder = store.absolute()  # the workers see the store by this path
    if (folder / "catalog.sqlite").exists():
        profile, encoding = new_store["profile"], new_store["vector_encoding"]
        with _open_or_create(StoreRef(folder), model, profile, encoding) as vstore:
            return distributed.ingest_on_ray(vstore, paths, **kwargs)
    options = {**new_store, "profile": new_store["profile"] or "lossless"}
    embedding = load_embedding(model or DEFAULT_MODEL)  # loaded by each worker, never here
    return distributed.ingest_on_ray(folder, paths, embedding=embedding, store_options=options, **kwargs)


def _open_or_create(
    store: StoreRef, model: str | None, profile: str | None, encoding: str | None, *, lexical: bool = True
) -> MemvidVectorStore:
    """Open the store with its recorded model (or `model`), or create it with `model`."""
    from langchain_memvid.engine import recorded_settings
    from langchain_memvid.vectorstores import MemvidVectorStore

    where = store.storage_options
    if model is None:
        try:
            vstore = MemvidVectorStore(store.location, storage_options=where)
        except StoreNotFound:
            new = True
        else:
            _warn_kept(vstore, profile, encoding)
            return vstore
    elif store.versioned:
        new = not recorded_settings(store.location, where)
    else:
        new = not (Path(store.location) / "catalog.sqlite").exists()
    # an existing store keeps its encoding (warned)
    vstore = MemvidVectorStore(
        store.location,
        load_embedding(model or DEFAULT_MODEL),
        profile=profile or "lossless",
        vector_encoding=encoding if new else None,
        lexical_index=lexical if new else None,
        storage_options=where,
    )
    _warn_kept(vstore, profile, encoding)
    return vstore


def _open_store(store: StoreRef, model: str | None) -> MemvidVectorStore:
    """The existing store with `model` or its recorded one, at the version asked (`open_store`)."""
    asked = {key: value for key, value in store.open_options().items() if value is not None}
    return open_store(store.location, model, **asked)


def _warn_kept(vstore: MemvidVectorStore, profile: str | None, encoding: str | None) -> None:
    """Warn that an existing store keeps its profile and vector encoding whatever was asked."""
    engine = vstore.engine
    if profile is not None and profile != engine.profile.name:
        click.echo(
            f"Warning: {vstore.path} keeps its profile {engine.profile.name!r}; --profile applies to new stores.",
            err=True,
        )
    if encoding is not None and encoding != engine.vector_encoding:
        click.echo(
            f"Warning: {vstore.path} keeps its {engine.vector_encoding} vectors; --vector-encoding applies "
            f"to new stores (`lcmemvid compact --vector-encoding {encoding}` converts this one).",
            err=True,
        )


# -- search and ask ------------------------------------------------------------------------------


def _parse_filter(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        return parse_filter(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from e


@cli.command()
@read_store_argument
@click.argument("query")
@k_option
@click.option(
    "--filter",
    "filter_",
    metavar="JSON",
    callback=_parse_filter,
    help='Metadata filter, e.g. \'{"page": {"$lt": 2}}\'. Operators: $eq $ne $gt $gte $lt $lte '
    "$in $nin $exists $contains $and $or $not.",
)
@click.option(
    "--mode",
    type=click.Choice(["vector", "lexical", "hybrid"]),
    default="vector",
    show_default=True,
    help="vector: by meaning; lexical: by words (BM25, no model loaded); hybrid: both, fused.",
)
@click.option(
    "--weight",
    type=click.FloatRange(0, 1),
    default=0.7,
    show_default=True,
    help="Hybrid only: the words' weight, from 0 (meaning only) to 1 (words only).",
)
@model_option
@json_option
def search(
    store: StoreRef,
    query: str,
    k: int,
    filter_: dict[str, Any] | None,
    mode: str,
    weight: float,
    model: str | None,
    as_json: bool,
) -> None:
    """Find the chunks of STORE that best match QUERY, by meaning, words or both.

    Each hit shows its source, page or chapter, score, and where it lives in the video
    (segment file, frame, timestamp). Scores: in vector mode the store's metric (cosine
    similarity by default, higher is closer); in lexical mode BM25; in hybrid mode the fused
    reciprocal-rank score (higher is better in both).

    \b
    Example:
        lcmemvid search ./store "error correction" -k 3
        lcmemvid search ./store "PYTHONHASHSEED" --mode lexical
        lcmemvid search ./store "QR" --filter '{"source": "examples/data/qr_code_history.pdf"}' --json
    """
    if mode == "lexical" and model is None:
        from langchain_memvid.engine import recorded_settings

        # a word search never embeds: never loaded
        model = recorded_settings(store.location, store.storage_options).get("model")
    with _open_store(store, model) as vstore:
        options = {"weight": weight} if mode == "hybrid" else {}
        pairs = search_with_mode(vstore, mode, query, k, filter_, **options)
        hits = hit_dicts(vstore, [d for d, _ in pairs], [s for _, s in pairs])
        metric = {"vector": vstore.metric, "lexical": "bm25", "hybrid": "rrf"}[mode]
    if as_json:
        _echo_json({"query": query, "mode": mode, "metric": metric, "hits": hits})
        return
    if not hits:
        click.echo("No matches.")
    for hit in hits:
        click.echo(_format_hit(hit))


@cli.command()
@read_store_argument
@click.argument("question")
@k_option
@click.option(
    "--chat-model",
    metavar="SPEC",
    envvar=CHAT_MODEL_ENV,
    show_envvar=True,
    help="Chat model as provider:model, e.g. openai:gpt-4o-mini or ollama:llama3 (needs the "
    "provider's package, e.g. langchain-openai). Without one, the passages are printed.",
)
@model_option
@json_option
def ask(
    store: StoreRef, question: str, k: int, chat_model: str | None, model: str | None, as_json: bool
) -> None:
    """Answer QUESTION from the passages of STORE with a chat model.

    Retrieves the K most relevant passages and asks the chat model to answer from them,
    citing them. With no chat model set, prints the passages and their sources instead (exit 0).

    \b
    Example:
        lcmemvid ask ./store "Why do QR codes survive damage?" --chat-model ollama:llama3
        MEMVID_CHAT_MODEL=openai:gpt-4o-mini lcmemvid ask ./store "What is a GOP?"
    """
    from langchain_memvid.rag import answer_chain, chat_model_spec, format_docs, load_chat_model

    spec = chat_model_spec(chat_model)
    llm = load_chat_model(spec)
    with _open_store(store, model) as vstore:
        docs = vstore.similarity_search(question, k=k)
        hits = hit_dicts(vstore, docs, None)
    answer = None
    if llm is not None and docs:
        try:
            answer = answer_chain(llm).invoke({"context": format_docs(docs), "question": question})
        except Exception as e:  # network, authentication, rate limits: the provider's own errors
            msg = f"The chat model {spec!r} failed: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            raise click.ClickException(msg) from e
    if as_json:
        _echo_json({"question": question, "chat_model": spec, "answer": answer, "passages": hits})
        return
    if llm is None:
        click.echo(
            f"No chat model is set, so here are the {len(hits)} most relevant passages. To get an "
            f"answer, pass --chat-model provider:model (e.g. openai:gpt-4o-mini, ollama:llama3) or "
            f"set {CHAT_MODEL_ENV}, and install the provider's package (langchain-openai, "
            "langchain-ollama, ...).",
            err=True,
        )
    elif not docs:
        click.echo("The store holds no passages to answer from.", err=True)
    if answer is not None:
        click.echo(answer.strip())
        click.echo("\nSources:")
        for n, hit in enumerate(hits, 1):
            click.echo(f"  [{n}] {hit['where']}  ({_video_place(hit['location'])})")
        return
    for hit in hits:
        click.echo(_format_hit(hit, full=True))


@cli.command()
@read_store_argument
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. 0.0.0.0 listens on every interface: anyone who can reach this "
    "machine can then read the store (there is no login).",
)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default web browser.")
@model_option
def serve(store: StoreRef, host: str, port: int, open_browser: bool, model: str | None) -> None:
    """Search STORE and look at its frames in a local web page.

    The page searches (with k and a metadata filter), shows each hit's QR frame beside its
    decoded text with the neighbouring frames, browses the records, shows the store's figures
    and runs verify. It only reads, and answers this machine only unless --host says
    otherwise. A search is a link: /?q=...&k=...&mode=... The JSON API behind the page is in
    docs/web.md. Needs the web extra (pip install "langchain-qrvideo[web]"). Ctrl+C stops it.

    \b
    Example:
        lcmemvid serve ./store --open
        lcmemvid serve ./store --port 0
    """
    from langchain_memvid import web

    try:
        web.require_web_stack()  # before loading the model, which takes seconds
    except web.WebStackMissing as e:
        raise click.ClickException(str(e)) from e
    with _open_store(store, model) as vstore:
        try:
            web.serve(
                vstore,
                host=host,
                port=port,
                open_browser=open_browser,
                on_ready=lambda url: click.echo(f"Serving {store} at {url} (read-only; Ctrl+C stops it)."),
            )
        except web.CannotListen as e:
            raise click.ClickException(str(e)) from e


def _video_place(location: dict[str, Any] | None) -> str:
    if location is None:
        return "not located"
    return f"{location['segment']} frame {location['frame']} at {location['timestamp']:.3f} s"


def _format_hit(hit: dict[str, Any], *, full: bool = False) -> str:
    score = f"  score {hit['score']:.4f}" if "score" in hit else ""
    text = " ".join(hit["text"].split())
    if not full and len(text) > PREVIEW_CHARS:
        text = text[: PREVIEW_CHARS - 1].rstrip() + "…"
    body = textwrap.fill(text, width=100, initial_indent="    ", subsequent_indent="    ")
    return (
        f"[{hit['rank']}] {hit['where']}{score}\n"
        f"    video: {_video_place(hit['location'])}   id: {hit['id']}\n"
        f"{body}\n"
    )


# -- inspection and maintenance ------------------------------------------------------------------


@cli.command()
@read_store_argument
@json_option
def info(store: StoreRef, as_json: bool) -> None:
    """Show the counts, sizes and settings of STORE.

    Records, text, video and vector bytes, the ratio of video to text, the embedding model,
    dimension, metric, index type and storage profile.

    \b
    Example:
        lcmemvid info ./store
        lcmemvid info ./store --json
    """
    with store.engine() as engine:
        stats = {
            "store": str(store),
            "version": engine.version,
            "read_only": engine.read_only,
            **engine.stats(),
        }
    if as_json:
        _echo_json(stats)
        return
    ratio = stats["video_to_text"]
    rows = [
        ("Store", stats["store"]),
        *([("Version", _version_line(stats))] if stats["version"] is not None else []),
        ("Records", f"{stats['records']:,}"),
        ("Text", _size(stats["text_bytes"])),
        (
            "Video",
            f"{_size(stats['video_bytes'])} in {_count(stats['segments'], 'segment')}, "
            f"{_count(stats['frames'], 'frame')}"
            + (f" ({ratio:.2f}x the text)" if ratio is not None else ""),
        ),
        (
            "Vectors",
            f"{_size(stats['index_bytes'])} {stats['vector_encoding']} "
            f"({stats['vectors_in_index']:,} in the index)",
        ),
        ("Catalog", _size(stats["catalog_bytes"])),
        ("Words", _lexicon_line(stats)),
        ("Model", stats["model"] or "(none recorded)"),
        ("Dimension", stats["dim"] if stats["dim"] is not None else "(no vectors yet)"),
        ("Metric", stats["metric"]),
        ("Index", stats["index_type"]),
        ("Profile", stats["profile"]),
    ]
    for name, value in rows:
        click.echo(f"{name:<10} {value}")


def _version_line(stats: dict[str, Any]) -> str:
    return f"{stats['version']}" + (" (an old version: read-only)" if stats["read_only"] else "")


def _lexicon_line(stats: dict[str, Any]) -> str:
    if not stats["lexical_index"]:
        return "no lexical index (made without one; `lcmemvid build-lexicon` adds it)"
    if stats["segments_without_lexicon"]:
        missing = _count(stats["segments_without_lexicon"], "segment")
        return f"no lexical index for {missing} written before it existed: run `lcmemvid build-lexicon`"
    return f"{_size(stats['lexicon_bytes'])} lexical index (in the catalog)"


@cli.command()
@read_store_argument
@click.option("--no-cross-check", is_flag=True, help="Skip decoding every frame a second time with zbar.")
@json_option
def verify(store: StoreRef, no_cross_check: bool, as_json: bool) -> None:
    """Check every frame, record and checksum of STORE.

    Decodes every frame (and, when zbar is installed, decodes it again with it), checks every
    CRC-32 and SHA-256, and compares the video with the catalog. Exits 1 when anything is
    wrong, listing each problem.

    \b
    Example:
        lcmemvid verify ./store
    """
    with store.engine() as engine:
        report = engine.verify(cross_check=not no_cross_check)
    problems = [dataclasses.asdict(p) for p in report.problems]
    if as_json:
        _echo_json({**dataclasses.asdict(report), "ok": report.ok, "problems": problems})
        if not report.ok:
            sys.exit(1)
        return
    click.echo(
        f"Checked {report.records_checked} records and {report.frames_checked} frames "
        f"({report.frames_cross_checked} cross-checked with a second decoder)."
    )
    if report.ok:
        click.echo("OK: no problems found.")
        return
    for p in report.problems:
        where = "".join(
            [
                f" frame {p.frame}" if p.frame is not None else "",
                f" record {p.record_id}" if p.record_id else "",
            ]
        )
        click.echo(f"  {p.file}{where}: {p.message}")
    actions = {p.action for p in report.problems}
    if store.versioned and "upgrade" not in actions:
        msg = f"{len(problems)} problems found in {store}; a versioned store is not repaired in place (`rebuild` and `quarantine` work on folders): `lcmemvid log {store}` lists the versions, and `verify --version N` checks an earlier one."
    elif "upgrade" in actions:
        msg = f"{len(problems)} problems found in {store}; some data was written by a newer version of langchain-qrvideo: upgrade it before anything else (rebuild would not understand that data either)."
    elif actions == {"quarantine"}:
        msg = f"{len(problems)} files in {store} are not in its catalog; they are kept untouched. `lcmemvid quarantine {store}` moves them to quarantine/."
    else:
        msg = f"{len(problems)} problems found in {store}; `lcmemvid rebuild {store}` recovers what the videos still hold."
    raise click.ClickException(msg)


@cli.command()
@store_argument
@click.option(
    "--vector-encoding",
    type=click.Choice(ENCODINGS),
    default=None,
    help="Convert every vector to this encoding on the way (and keep it for new ones).",
)
@json_option
def compact(store: StoreRef, vector_encoding: str | None, as_json: bool) -> None:
    """Rewrite STORE without its deleted and replaced records.

    Live records are copied into fresh segments; old segments and tombstones are removed.

    \b
    Example:
        lcmemvid compact ./store
        lcmemvid compact ./store --vector-encoding int8
    """
    with store.engine() as engine:
        result = engine.compact(vector_encoding=vector_encoding)
    if as_json:
        _echo_json(result)
        return
    click.echo(
        f"Compacted {result['records']} records: {result['segments_before']} -> {result['segments_after']} "
        f"segments, video {_size(result['video_bytes_before'])} -> {_size(result['video_bytes_after'])}."
    )


@cli.command()
@store_argument
@click.option(
    "--model",
    metavar="NAME",
    default=None,
    help="Embedding model for records whose vector file is damaged. Default: the model the "
    "videos record. Loaded only when needed.",
)
@json_option
def rebuild(store: StoreRef, model: str | None, as_json: bool) -> None:
    """Recreate the catalog (and lost vectors) of STORE from its videos.

    Use it when `verify` reports a damaged catalog or vector file. The old catalog is kept
    beside the new one.

    \b
    Example:
        lcmemvid rebuild ./store
    """
    from langchain_memvid.engine import rebuild_store

    folder = store.folder("`lcmemvid rebuild`")
    if not (folder / "segments").is_dir():
        msg = f"No memvid store at {store} (no segments/ folder)."
        raise click.ClickException(msg)

    def make_embed(recorded: str | None) -> Callable[[Sequence[str]], list[list[float]]]:
        name = model or recorded or DEFAULT_MODEL
        click.echo(f"Re-embedding lost vectors with {name}...", err=True)
        return lambda texts: load_embedding(name).embed_documents(list(texts))

    report = rebuild_store(folder, make_embed=make_embed)
    if as_json:
        _echo_json(dataclasses.asdict(report))
        return
    for problem in report.problems:
        click.echo(f"Warning: {problem}", err=True)
    for moved in report.quarantined:
        click.echo(f"Moved aside: {moved}", err=True)
    if not report.used_catalog:
        click.echo(
            "Note: no readable catalog, so every segment was replayed (a write that crashed "
            "before its commit, if any, is included).",
            err=True,
        )
    click.echo(
        f"Rebuilt {store}: {report.records} records in {report.segments} segments "
        f"({report.reembedded} re-embedded, {report.deleted} deletions replayed, "
        f"{report.lost_frames} frames unreadable)."
    )


@cli.command("build-lexicon")
@store_argument
@json_option
def build_lexicon(store: StoreRef, as_json: bool) -> None:
    """Add the lexical index (for `search --mode lexical|hybrid`) to an older STORE.

    Stores written before the lexical index existed have none; this reads their texts from the
    video once and indexes their words. New stores, `compact` and `rebuild` need no such step.

    \b
    Example:
        lcmemvid build-lexicon ./store
    """
    with store.engine() as engine:
        built = engine.build_lexicons()
    if as_json:
        _echo_json({"segments_indexed": built})
        return
    click.echo(
        f"Indexed the words of {_count(built, 'segment')}." if built else "The lexical index was complete."
    )


@cli.command("build-index")
@store_argument
@click.option(
    "--index",
    "index_kind",
    metavar="KIND",
    default=None,
    help="The index to build: flat, ivf, ivfpq, hnsw, lsh or a FAISS factory string. Default: the store's own.",
)
@click.option(
    "--option",
    "options",
    metavar="KEY=VALUE",
    multiple=True,
    help="An index option (nlist, m, nbits, M, min_vectors...); repeatable. See docs/indexes.md.",
)
@click.option(
    "--ray",
    "use_ray",
    is_flag=True,
    help="Build an IVF index on a Ray cluster: trained here, filled per segment on the workers, "
    "merged on disk here (see docs/ray.md).",
)
@click.option(
    "--ray-address",
    metavar="ADDRESS",
    default=None,
    help="With --ray: the cluster to join. Default: $RAY_ADDRESS, else a new local one.",
)
@json_option
def build_index(
    store: StoreRef,
    index_kind: str | None,
    options: tuple[str, ...],
    use_ray: bool,
    ray_address: str | None,
    as_json: bool,
) -> None:
    """Train and save STORE's vector index now, or switch it to another index.

    A store builds its approximate index by itself once it holds `min_vectors` vectors; this
    builds it now (even below that), after a bulk load, or as another type. With --ray, an IVF
    index is built on a cluster, for stores larger than one machine's memory.

    \b
    Example:
        lcmemvid build-index ./store --index ivf --option nlist=1024
        lcmemvid build-index /shared/library --ray --ray-address auto
    """
    index_options = dict(_index_option(text) for text in options) or None
    if ray_address is not None and not use_ray:
        raise click.UsageError("--ray-address needs --ray.")
    if use_ray:
        from langchain_memvid import distributed
        from langchain_memvid.distributed_index import build_index_on_ray

        folder = store.folder(
            "`lcmemvid build-index --ray` (its workers fill index parts in a folder every node sees)"
        )
        try:
            distributed.require_ray()
        except distributed.RayMissing as e:
            raise click.ClickException(str(e)) from e
        info = build_index_on_ray(folder, index_kind, index_options, ray_address=ray_address)
    else:
        with store.engine() as engine:
            info = engine.build_index(index_kind, index_options)
    if as_json:
        _echo_json(info)
        return
    snapshot = info.get("snapshot")
    saved = f"; snapshot {_size(snapshot['bytes'])}" if snapshot else ""
    click.echo(
        f"{info['factory']}: {info['serving']} search over {_count(info['vectors_in_main'] + info['vectors_exact'], 'vector')}{saved}."
    )


def _index_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE true/false, an integer, a number or a word."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{text!r} is not KEY=VALUE.", param_hint="--option")
    if value.lower() in ("true", "false"):
        return key, value.lower() == "true"
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


@cli.command()
@store_argument
@json_option
def quarantine(store: StoreRef, as_json: bool) -> None:
    """Move the segment files STORE's catalog does not know into STORE/quarantine/.

    `verify` lists such files: a write that crashed under an older version, a file copied in, or
    records of a catalog that was lost. Nothing is deleted; move a file back (and run `rebuild`)
    to make its records live again.

    \b
    Example:
        lcmemvid quarantine ./store
    """
    folder = store.folder("`lcmemvid quarantine`")
    with store.engine() as engine:
        moved = engine.quarantine()
    if as_json:
        _echo_json({"moved": moved})
        return
    for line in moved:
        click.echo(f"Moved {line}")
    click.echo(f"{_count(len(moved), 'file')} moved to {folder / 'quarantine'}.")


@cli.command()
@read_store_argument
@click.option("--id", "record_id", metavar="ID", help="Show the first frame of this record.")
@click.option("--segment", metavar="NAME", help="Segment file, as `search` prints it.")
@click.option("--frame", "frame_no", type=click.IntRange(min=0), help="Frame number in --segment.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="PNG file to write.",
)
@click.option(
    "--scale",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Enlarge each pixel (QR module) to SCALE x SCALE pixels.",
)
def frame(
    store: StoreRef,
    record_id: str | None,
    segment: str | None,
    frame_no: int | None,
    output: Path,
    scale: int,
) -> None:
    """Save one video frame of STORE (a QR code) as a PNG.

    Pick the frame by record id or by segment and frame number; the image can be looked at or
    scanned with any QR reader.

    \b
    Example:
        lcmemvid frame ./store --id 3f2a... -o hit.png --scale 4
        lcmemvid frame ./store --segment segments/00000001-3f2a9c1e.mov --frame 2 -o f2.png
    """
    import cv2

    if (record_id is None) == (segment is None) or (segment is None) != (frame_no is None):
        msg = "Pass either --id, or both --segment and --frame."
        raise click.UsageError(msg)
    if output.suffix.lower() != ".png":
        raise click.BadParameter("the output file must end in .png", param_hint="'-o' / '--output'")
    with store.engine() as engine:
        if record_id is not None:
            found = engine.locate([record_id])
            if record_id not in found:
                msg = f"No record with id {record_id!r} in {store}; `lcmemvid search` or `export` list ids."
                raise click.ClickException(msg)
            place: Location = found[record_id]
            segment, frame_no = place.segment, place.frame
        assert segment is not None
        assert frame_no is not None
        image = engine.frame_image(segment, frame_no)
    if scale > 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    if not cv2.imwrite(str(output), image):
        msg = f"Could not write {output}; check that its folder exists and is writable."
        raise click.ClickException(msg)
    height, width = image.shape[:2]
    click.echo(f"Wrote {output} ({width}x{height} px): frame {frame_no} of {segment}.")


@cli.command()
@read_store_argument
@click.option(
    "-o",
    "--output",
    type=click.File("w", encoding="utf-8", lazy=True),
    default="-",
    show_default=True,
    help="JSONL file to write; - for stdout.",
)
def export(store: StoreRef, output: TextIO) -> None:
    """Write every record of STORE as JSON lines.

    One object per line, {"id", "text", "metadata"}, read back from the video.

    \b
    Example:
        lcmemvid export ./store -o records.jsonl
        lcmemvid export ./store | head -n 3
    """
    count = 0
    with store.engine() as engine:
        for record in engine.iter_records():
            line = {"id": record.id, "text": record.text, "metadata": record.metadata}
            output.write(json.dumps(line, ensure_ascii=False) + "\n")
            count += 1
    output.flush()
    if getattr(output, "name", "-") not in ("-", "<stdout>"):
        click.echo(f"Exported {count} records to {output.name}.", err=True)


# -- helpers -------------------------------------------------------------------------------------


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _size(n: int) -> str:
    """Bytes in binary units: `_size(1536) == '1.5 KiB'`."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - the loop always returns


def _count(n: int, noun: str) -> str:
    """`_count(1, "file") == "1 file"`, `_count(2, "file") == "2 files"`."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


for _command in COMMANDS:  # log, cleanup, migrate: the commands of versioned stores
    cli.add_command(_command)
