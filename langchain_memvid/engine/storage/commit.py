"""The commit protocol: files made durable and renamed into place, then one catalog transaction.

Every change to a store goes the same way (docs/format.md section 6): build files in ``tmp/``,
fsync them, commit their names as ``pending`` garbage, rename them into place and fsync the
folder, then one SQLite transaction that records them and forgets the pending rows. A failure
before that transaction removes the files (or leaves their pending rows for the next writer).
Recovery applies the garbage rows and nothing else: a file no committed row names is never
deleted. The callers (``Engine``'s writes, index snapshots, ``rebuild``) hold the write lock.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from langchain_memvid.engine.catalog.catalog import Catalog, RecordRow, SegmentRow
from langchain_memvid.engine.errors import MemvidError
from langchain_memvid.engine.files import fsync_dir, fsync_file, move_aside
from langchain_memvid.engine.storage.segments import BuiltSegment


def write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and fsync it (the step before any rename)."""
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def install(src: Path, dst: Path) -> None:
    """Rename a durable file into place and make the rename durable."""
    fsync_file(src)
    os.replace(src, dst)
    fsync_dir(dst.parent)


class SegmentCommit:
    """New segment files published into ``segments/`` and recorded in one transaction.

    ::

        commit = SegmentCommit(root, catalog, profile)
        built = []
        with commit.undone_on_failure(built):   # any error below removes the files again
            built.append(builder.build_records(...))
            commit.publish(built)               # pending rows, renames, fsync
            with catalog.transaction():
                commit.record(seg, records)     # segment row in, pending row out
                ...                             # record rows, counters
    """

    def __init__(self, root: Path, catalog: Catalog, profile: str) -> None:
        self.root = root
        self.catalog = catalog
        self.profile = profile

    @contextmanager
    def undone_on_failure(self, built: list[BuiltSegment]) -> Iterator[None]:
        """Run a write (build into ``built``, ``publish``, commit); on any error remove its files.

        Segments appended to ``built`` inside the body are covered whether or not they were
        published yet; their pending rows go once the files are gone (``unpublish``).
        """
        try:
            yield
        except BaseException:
            self.unpublish(built)
            raise

    def publish(self, built: list[BuiltSegment]) -> None:
        """Move finished segment files into ``segments/`` and make the renames durable.

        Their names are committed as pending first: if this process dies before the write
        commits, that committed row is what lets the next writer delete the files (nothing
        the catalog does not name is ever deleted). The write's commit removes the row.
        """
        with self.catalog.transaction():
            self.catalog.mark_garbage([seg.name for seg in built], "pending")
        folder = self.root / "segments"
        for seg in built:
            for src in (seg.video_path, seg.index_path):
                os.replace(src, folder / src.name)
            seg.video_path = folder / seg.video_path.name
            seg.index_path = folder / seg.index_path.name
        fsync_dir(folder)

    def unpublish(self, built: list[BuiltSegment]) -> None:
        """Best-effort removal of the files of a write that did not commit.

        Their pending rows stay until the files are surely gone: the next writer finishes the job.
        """
        for seg in built:
            for name in (f"{seg.name}.mov", f"{seg.name}.faiss"):
                for folder in ("tmp", "segments"):
                    with suppress(OSError):
                        (self.root / folder / name).unlink()
        with suppress(MemvidError, OSError):
            fsync_dir(self.root / "segments")
            with self.catalog.transaction():
                self.catalog.forget_garbage([seg.name for seg in built])

    def record(self, seg: BuiltSegment, records: int) -> None:
        """Insert a published segment's rows (inside the commit's transaction)."""
        row = SegmentRow(
            seq=seg.seq,
            name=seg.name,
            kind=seg.kind,
            profile=self.profile,
            info=seg.info,
            frame_count=len(seg.locations),
            dict_frames=seg.dict_frames,
            record_count=records,
            video_bytes=seg.video_path.stat().st_size,
            video_sha256=seg.video_sha256,
            index_bytes=seg.index_path.stat().st_size,
            index_sha256=seg.index_sha256,
            created=seg.video_path.stat().st_mtime,
        )
        self.catalog.add_segment(row, list(zip(seg.locations, seg.frame_crcs, strict=False)))
        if seg.lexicon is not None:
            self.catalog.put_lexicon(seg.seq, seg.lexicon)
        self.catalog.forget_garbage([seg.name])  # committed with the segment: no longer pending


def placed_rows(
    built: Sequence[BuiltSegment], items: Sequence[tuple[str, int, int, dict[str, Any]]], per_segment: int
) -> list[RecordRow]:
    """Catalog rows of the records ``built`` holds, ``per_segment`` a segment in input order.

    ``items`` are (record id, vector id, text bytes, metadata) in the order the records went in.
    """
    return [
        RecordRow(rid, vid, seg.seq, p.first_frame, p.frame_count, p.slot, size, meta)
        for n, seg in enumerate(built)
        for (rid, vid, size, meta), p in zip(items[n * per_segment :], seg.placements, strict=False)
    ]


def drop(catalog: Catalog, segments: Sequence[SegmentRow]) -> None:
    """Stop referencing segments and name their files as garbage (inside a transaction)."""
    catalog.drop_segments(s.seq for s in segments)
    catalog.mark_garbage([s.name for s in segments], "dropped")


def collect_garbage(root: Path, catalog: Catalog) -> None:
    """Recovery: empty ``tmp/`` and delete what the garbage rows name (under the write lock).

    ``tmp/`` holds only the files of writes in progress, and none is in progress while the lock
    is held. In ``segments/`` only the files the catalog's garbage table names go (see
    ``delete_garbage``): a file the catalog does not know is never deleted, since it may be the
    only copy of records. A damaged catalog proves nothing: then every file is kept.
    """
    shutil.rmtree(root / "tmp", ignore_errors=True)
    (root / "tmp").mkdir(exist_ok=True)
    with suppress(MemvidError):
        delete_garbage(root, catalog)


def delete_garbage(root: Path, catalog: Catalog) -> None:
    """Unlink the segment files of pending writes that never committed and of dropped segments.

    A name that the catalog lists both as garbage and as a live segment is damage: its files are
    kept. Rows are forgotten only once their files are gone (and the unlinks durable).
    """
    garbage = catalog.garbage()
    if not garbage:
        return
    live = {s.name for s in catalog.segments()}
    gone = []
    for name in garbage:
        if name in live:
            continue
        try:
            for suffix in (".mov", ".faiss"):
                (root / "segments" / f"{name}{suffix}").unlink(missing_ok=True)
        except OSError:
            continue  # e.g. a folder by that name: keep the row, delete nothing else
        gone.append(name)
    fsync_dir(root / "segments")
    with catalog.transaction():
        catalog.forget_garbage(gone)


def unknown_files(root: Path, catalog: Catalog) -> list[str]:
    """``segments/`` files that neither a live segment nor a garbage row of the catalog names."""
    known = {s.name for s in catalog.segments()} | set(catalog.garbage())
    return [
        f"segments/{p.name}"
        for p in sorted((root / "segments").iterdir())
        if p.suffix in (".mov", ".faiss") and p.stem not in known
    ]


def quarantine(root: Path, catalog: Catalog) -> list[str]:
    """Move ``unknown_files`` into ``quarantine/`` (under the write lock); returns where each went."""
    moved = []
    for name in unknown_files(root, catalog):
        dst = move_aside(root / name, root / "quarantine")
        moved.append(f"{name} -> quarantine/{dst.name}")
    return moved


__all__ = [
    "SegmentCommit",
    "collect_garbage",
    "delete_garbage",
    "drop",
    "install",
    "placed_rows",
    "quarantine",
    "unknown_files",
    "write_durably",
]
