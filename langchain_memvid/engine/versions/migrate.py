"""Copying a format-1/2 store folder into a new versioned store (format 3) at a URL.

The source stays as it is. Its segment files and index snapshot are uploaded under the same names
(already unique) after a check against the catalog; a consistent copy of its catalog becomes the
first checkpoint; version 1 (``migrate``) publishes it. Run under the source's write lock, after
``verify``: a damaged store is refused rather than copied into a format without ``quarantine/``.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_memvid.engine.errors import InvalidArgument
from langchain_memvid.engine.storage.objects import ObjectStore
from langchain_memvid.engine.versions import catalog_state, manifest
from langchain_memvid.engine.versions.manifest import ObjectRef, Version
from langchain_memvid.engine.versions.workspace import CATALOG, _files_named, library_name


def copy_store(folder: Path, url: str, storage_options: dict[str, Any] | None = None) -> Version:
    """Upload the store in ``folder`` (write lock held, verified) as version 1 of a store at ``url``.

    Raises:
        InvalidArgument: ``url`` already holds a versioned store.
        CommitConflict-free: a concurrent migration to the same URL loses at version 1 and says so.
    """
    objects = ObjectStore(url, storage_options)
    if manifest.version_numbers(objects):
        msg = f"{url} already holds a versioned store; migrate into a new, empty location."
        raise InvalidArgument(msg)
    with tempfile.TemporaryDirectory(prefix="lcmemvid-migrate-") as tmp:
        checkpoint = Path(tmp) / CATALOG
        catalog_state.copy_catalog(folder / CATALOG, checkpoint)
        catalog_state.compact_file(checkpoint)
        segments, snapshot = _files_named(checkpoint)
        names = [f"segments/{n}{suffix}" for n, _, _ in segments for suffix in (".mov", ".faiss")]
        if snapshot is not None:
            names.append(snapshot.name)
        for name in names:
            objects.put_file(name, folder / name)
        data = checkpoint.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        ref = ObjectRef(f"catalog/{sha}.sqlite", len(data), sha)
        objects.put_file(ref.name, checkpoint)
    version = Version(
        number=1,
        store_id=manifest.new_id(),
        parent=None,
        commit_id=manifest.new_id(),
        created=time.time(),
        operation="migrate",
        summary=f"migrate: {len(segments)} segments from {folder}",
        checkpoint=ref,
        deltas=(),
        library=library_name(),
    )
    if not objects.put_if_absent(version.name, version.to_json()):
        msg = f"Another process created a store at {url} while this migration was uploading; nothing was published. Migrate into a new location."
        raise InvalidArgument(msg)
    manifest.publish_hint(objects, 1)
    return version


__all__ = ["copy_store"]
