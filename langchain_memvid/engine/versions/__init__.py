"""Versioned stores in object storage (format 3): version objects, catalog deltas, the workspace.

A store at a URL (``s3://``, ``gs://``, ``az://``, ``memory://``, ``file://``), or a folder that
holds ``_versions/``, is a chain of immutable version objects, each naming a catalog checkpoint
and delta; segments and snapshots are immutable objects beside them. The engine serves such a
store from a local ``Workspace`` and publishes each commit as the next version
(docs/format.md section 11).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from langchain_memvid.engine.errors import InvalidArgument


def remote_location(
    path: str | os.PathLike[str], storage_options: dict[str, Any] | None, *, versioned_args: bool
) -> str | None:
    """The URL to open as a format-3 store, or None for a format-1/2 folder opened in place.

    A URL is format 3, except a ``file://`` URL of a folder that already holds a format-1/2
    catalog; a plain path is format 3 when the folder holds ``_versions/``.
    """
    text = os.fspath(path)
    if "://" in text:
        scheme, rest = text.split("://", 1)
        if scheme.lower() == "file":
            folder = Path(rest)
            if (folder / "catalog.sqlite").exists() and not (folder / "_versions").exists():
                _check_plain(rest, storage_options, versioned_args)
                return None
        return text
    if (Path(text) / "_versions").is_dir():
        return text
    _check_plain(text, storage_options, versioned_args)
    return None


def is_versioned(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a versioned store (format 3): a URL, or a folder holding ``_versions/``."""
    return remote_location(path, None, versioned_args=False) is not None


def local_folder(path: str | os.PathLike[str]) -> Path:
    """The folder of a format-1/2 location: a plain path, or a ``file://`` URL's path."""
    text = os.fspath(path)
    if text.lower().startswith("file://"):
        return Path(text[len("file://") :])
    return Path(text)


def _check_plain(path: str, storage_options: dict[str, Any] | None, versioned_args: bool) -> None:
    """Refuse what only a versioned store can take, for a format-1/2 folder."""
    if versioned_args:
        msg = f"{path} is a format-1/2 store folder, which keeps no versions; version= and as_of= need a store at a URL or one migrated to format 3 (`lcmemvid migrate {path} DEST`)."
        raise InvalidArgument(msg)
    if storage_options:
        msg = f"storage_options are for stores at a URL (s3://, gs://, az://, memory://...); {path} is a local folder."
        raise InvalidArgument(msg)


__all__ = ["is_versioned", "local_folder", "remote_location"]
