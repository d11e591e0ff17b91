"""Shared helpers for the storage-engine tests: a fake embedding and store factories.

The fake embedding is deterministic (a hash of the text seeds the vector), so tests can compare
search results against numpy brute force and re-embed during ``rebuild`` with the same function.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from langchain_memvid.engine import Engine, Record
from langchain_memvid.engine.codec import qr

DIM = 8

HAS_ZBAR = "zbar" in qr.available_decoders()
HAS_QRCODE = "qrcode" in qr.available_encoders()
HAS_FFPROBE = shutil.which("ffprobe") is not None
HAS_FFMPEG = shutil.which("ffmpeg") is not None


def fake_embed_one(text: str) -> np.ndarray:
    """A dim-8 vector seeded from the SHA-256 of the text (lone surrogates allowed)."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    return rng.standard_normal(DIM).astype(np.float32)


def fake_embed(texts: Sequence[str]) -> np.ndarray:
    """Embed many texts (the signature ``rebuild_store(embed=...)`` expects)."""
    return np.stack([fake_embed_one(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)


def vectors_for(records: Sequence[Record]) -> np.ndarray:
    """One fake vector per record, from its text."""
    return fake_embed([r.text for r in records])


def add(engine: Engine, records: Sequence[Record]) -> list[str]:
    """``engine.add`` with the fake embedding of each record's text."""
    return engine.add(list(records), vectors_for(records))


def store_files(path: Path) -> set[str]:
    """Every file in a store, as paths relative to the store folder."""
    return {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()}


def segment_files(path: Path, suffix: str = "") -> set[str]:
    """Names of the files in ``segments/`` (optionally only those ending in ``suffix``)."""
    return {p.name for p in (path / "segments").iterdir() if p.name.endswith(suffix)}


def file_digests(path: Path, pattern: str) -> dict[str, str]:
    """SHA-256 of each file in ``path`` matching ``pattern``."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.glob(pattern))}


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """A not-yet-existing store folder."""
    return tmp_path / "store"


@pytest.fixture
def open_engine(store_path: Path) -> Iterator[Callable[..., Engine]]:
    """Factory: ``open_engine(**kwargs)`` opens an Engine (on ``store_path`` unless ``path=``).

    Every engine opened through it is closed at teardown, so file handles never leak between tests.
    """
    opened: list[Engine] = []

    def factory(path: Path | None = None, **kwargs: object) -> Engine:
        path = path or store_path
        if not (path / "catalog.sqlite").exists():
            # These tests compare stored vectors and scores with numpy over the vectors given,
            # so new stores keep them exactly (float32); test_vector_encodings.py tests the rest.
            kwargs.setdefault("vector_encoding", "float32")
        engine = Engine(path, **kwargs)  # type: ignore[arg-type]
        opened.append(engine)
        return engine

    yield factory
    for engine in opened:
        with contextlib.suppress(Exception):  # closing twice or after a failure is fine here
            engine.close()


@pytest.fixture
def engine(open_engine: Callable[..., Engine]) -> Engine:
    """A fresh, empty lossless store."""
    return open_engine()
