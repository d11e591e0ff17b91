"""Opening a store folder: what must hold before anything in it is written.

A path must be a folder that is a store, or empty, or new; no store file may be a link; an
existing catalog is checked read-only (``Catalog.inspect``) before anything writes to it; the
caller's dimension, metric and index options must agree with what the store recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_memvid.engine.catalog.catalog import Catalog
from langchain_memvid.engine.errors import CorruptData, NotAStore, StoreConfigMismatch, StoreNotFound
from langchain_memvid.engine.files import refuse_links
from langchain_memvid.engine.search.encodings import recorded_encoding
from langchain_memvid.engine.search.index_spec import IndexSpec
from langchain_memvid.engine.search.lexicon import keeps_lexicon

# What a store folder may hold before its catalog exists (a creation that never finished).
_OWN_NAMES = ("segments", "tmp", "LOCK", "index", "quarantine")


def open_folder(path: Path, create: bool) -> None:
    """Check (and create) the store folder and its ``segments/`` and ``tmp/``.

    Raises:
        NotAStore: a file, a folder with other content, or videos without a catalog.
        StoreNotFound: no store and ``create`` is False.
        UnsafePath: a store file is a symbolic link.
    """
    if path.is_file():
        msg = f"{path} is a file; a store is a folder. Pass a folder path (it is created if missing)."
        raise NotAStore(msg)
    if not (path / Catalog.FILE).exists():
        if not create:
            msg = f"No memvid store at {path}."
            raise StoreNotFound(msg)
        if path.exists() and any(p.name not in _OWN_NAMES for p in path.iterdir()):
            msg = f"{path} is a folder with other content and no catalog; refusing to use it as a store. Pass an empty or new folder."
            raise NotAStore(msg)
        videos = path / "segments"
        if videos.is_dir() and not videos.is_symlink() and any(videos.glob("*.mov")):
            # A fresh catalog here would know none of the videos: the records' only copy.
            msg = f"{path} holds segment videos but no {Catalog.FILE}; refusing to open it as a new, empty store. Run `rebuild` to recreate the catalog from the videos."
            raise NotAStore(msg)
    refuse_links(path)
    try:
        (path / "segments").mkdir(parents=True, exist_ok=True)
        (path / "tmp").mkdir(exist_ok=True)
    except OSError as e:
        msg = f"Cannot create the store folder {path}: {e.strerror}. Check the path and its permissions."
        raise NotAStore(msg) from e


def has_catalog(path: Path, create: bool) -> bool:
    """Whether the folder holds a catalog to open, checked without writing to it.

    A catalog file that is empty and a folder without segment files is a creation that never
    finished: there is nothing to lose, and the store is created afresh. An empty catalog beside
    videos is refused: opening it would make every video unknown to the store.
    """
    file = path / Catalog.FILE
    if not file.exists() or Catalog.inspect(file):
        return file.exists()
    if any(p.suffix in (".mov", ".faiss") for p in (path / "segments").iterdir()):
        msg = f"{file} is empty (0 bytes or no tables: an interrupted copy, a sync tool or a full disk?), but segments/ holds videos. They are untouched: move the empty file aside and run `lcmemvid rebuild {path}` to recreate the catalog from them."
        raise CorruptData(msg)
    if not create:
        msg = f"No memvid store at {path}: its catalog file is empty and it holds no segments."
        raise StoreNotFound(msg)
    return False


def check_settings(
    settings: Mapping[str, Any],
    dim: int | None,
    metric: str | None,
    encoding: str | None = None,
    lexical_index: bool | None = None,
) -> None:
    """Refuse an embedding of another dimension or metric, or other storage choices, than the store's."""
    if "metric" not in settings:
        msg = "The catalog has no `metric` setting, so it is not a complete memvid catalog; run `lcmemvid rebuild STORE` to recreate it from the videos."
        raise CorruptData(msg)
    if dim is not None and settings.get("dim") not in (None, dim):
        msg = f"The store holds {settings['dim']}-dimensional vectors (model {settings.get('model')!r}); got an embedding of dimension {dim}. Open it with the model it was built with."
        raise StoreConfigMismatch(msg)
    if metric is not None and settings.get("metric") != metric:
        msg = f"The store was built with metric {settings.get('metric')!r}, not {metric!r}."
        raise StoreConfigMismatch(msg)
    recorded = recorded_encoding(settings)
    if encoding is not None and recorded != encoding:
        msg = f"The store keeps {recorded} vectors, not {encoding}; open it without `vector_encoding`, or convert it with compact(vector_encoding={encoding!r})."
        raise StoreConfigMismatch(msg)
    keeps = keeps_lexicon(settings)
    if lexical_index is not None and bool(lexical_index) != keeps:
        how = "build_lexicons() adds it" if not keeps else "a store keeps its lexical index once it has one"
        msg = f"The store was made with lexical_index={keeps}, not {bool(lexical_index)}; open it without `lexical_index` ({how})."
        raise StoreConfigMismatch(msg)


def check_index_choice(recorded: IndexSpec, given: IndexSpec, index: str | None) -> None:
    """Refuse build options that differ from the index the store was built with."""
    want = given.build_options()
    have = recorded.build_options()
    if (
        index is not None and (given.kind, given.factory, want) != (recorded.kind, recorded.factory, have)
    ) or any(have.get(k) != v for k, v in want.items()):
        msg = f"The store was built with index {recorded.name!r} {have}, not {given.name!r} {want}; open it without index options, or change its index with build_index()."
        raise StoreConfigMismatch(msg)


__all__ = ["check_index_choice", "check_settings", "has_catalog", "open_folder"]
