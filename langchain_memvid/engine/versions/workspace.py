"""One handle's local working copy of a store that lives in object storage (format 3).

The engine works on an ordinary store folder; for a store at a URL that folder is a private
*workspace* in the cache folder, holding (docs/format.md section 11):

- ``catalog.sqlite``: the catalog of the version this handle serves, rebuilt from the version's
  checkpoint and its chain of deltas. A newer version is taken in as one transaction (``sync_into``), so the
  engine notices it exactly as it notices another process's commit today.
- ``segments/*.faiss`` and ``index/*.faiss``: vector files and index snapshots, downloaded once
  into the shared ``ObjectCache`` (checked by size and SHA-256) and hard-linked here.
- ``segments/*.mov`` only for segments this handle wrote: other segments' frames are read with
  one ranged GET each, where they are (``read_video``).

A write commits locally first, exactly as on a folder; ``publish`` then uploads the new files and
the commit's catalog delta and creates the next version object with a create-if-absent PUT. A writer
that loses that race gets ``CommitConflict`` and its workspace goes back to the newest version.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import math
import os
import shutil
import sqlite3
import tempfile
import time
import warnings
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from langchain_memvid.engine.errors import (
    CommitConflict,
    CorruptData,
    InvalidArgument,
    NotAStore,
    ReadOnlyStore,
    SegmentNotFound,
    StoreNotFound,
)
from langchain_memvid.engine.storage.cache import ObjectCache
from langchain_memvid.engine.storage.objects import (
    AtomicCreateUnsupported,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreIOError,
)
from langchain_memvid.engine.versions import catalog_state, manifest
from langchain_memvid.engine.versions.manifest import ObjectRef, Version

CATALOG = "catalog.sqlite"
# A commit uploads a delta of its own changes; a new checkpoint starts once a version would name
# more than CHAIN_LENGTH deltas or deltas outweighing the checkpoint (or CHAIN_MIN_BYTES): building
# any version's catalog then reads at most 1 + CHAIN_LENGTH objects and never much more than twice
# the checkpoint's bytes, and a commit uploads its own changes except once every CHAIN_LENGTH commits.
CHAIN_LENGTH = 16
CHAIN_MIN_BYTES = 1 << 20
READ_CHUNK = 64 << 20
MIN_GRACE = 3600.0  # cleanup's default grace period is never shorter
# A commit whose first upload is older than half the shortest grace period checks that its
# uploads are still there before it publishes (a cleanup may have taken them for leftovers).
RECHECK_AFTER = MIN_GRACE / 2
STALE_AFTER = 60.0  # a workspace younger than this may be one whose owner has not locked it yet


def library_name() -> str:
    try:
        return f"langchain-qrvideo {package_version('langchain-qrvideo')}"
    except PackageNotFoundError:
        return "langchain-qrvideo"


class Workspace:
    """The local side of a format-3 store: what the engine opens, and the link to the bucket.

    Args:
        url: the store's root (``s3://bucket/prefix``, ``gs://``, ``az://``, ``memory://``,
            ``file://`` or a folder holding ``_versions/``).
        storage_options: handed to fsspec unchanged.
        version: open this version read-only (time travel).
        as_of: open the newest version created at or before this Unix time, read-only.
        cache_dir: the shared object cache (default ``$LCMEMVID_CACHE`` or the user cache folder).
        create: allow a store that does not exist yet (its first commit creates it).
        refresh_interval: seconds between checks for a newer version before reads.
        cache_videos: keep whole videos in the cache too (a machine that serves many reads):
            each segment's first read downloads it once, later reads are local.
    """

    def __init__(
        self,
        url: str,
        storage_options: dict[str, Any] | None = None,
        *,
        version: int | None = None,
        as_of: float | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        create: bool = True,
        refresh_interval: float = 1.0,
        cache_videos: bool = False,
    ) -> None:
        if version is not None and as_of is not None:
            msg = "Pass version= or as_of=, not both."
            raise InvalidArgument(msg)
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            msg = f"version must be a version number (an int >= 1); got {version!r}."
            raise InvalidArgument(msg)
        if as_of is not None and (
            isinstance(as_of, bool) or not isinstance(as_of, (int, float)) or not math.isfinite(as_of)
        ):
            msg = f"as_of must be a Unix time in seconds (a finite number); got {as_of!r}."
            raise InvalidArgument(msg)
        self.url = url
        self.objects = ObjectStore(url, storage_options)
        self.cache = ObjectCache(cache_dir)
        self.read_only = version is not None or as_of is not None
        self.refresh_interval = max(0.0, float(refresh_interval))
        self.single_writer_warned = False
        self.cache_videos = bool(cache_videos)
        self._checked = time.monotonic()
        self._scratch, self._owner = _new_folder(self.cache.folder / "work")
        self.folder = self._scratch / "store"  # what the engine opens
        try:
            head = self._find(version, as_of)
            if head is None and (self.read_only or not create):
                msg = f"No memvid store at {url} (it has no versions)."
                raise StoreNotFound(msg)
            # Segments without versions are records whose versions were lost: never built over.
            # Catalog objects alone are a creation that died before its version 1 (or one in
            # progress elsewhere, which the create-if-absent of version 1 settles).
            if head is None and self.objects.list("segments/"):
                msg = f"{url} holds segment objects but no versions (_versions/ was deleted); refusing to create a new, empty store over them. Restore _versions/ from a backup, or move the objects away."
                raise NotAStore(msg)
            self.head = head
            self._remote: set[str] = set()  # object names this handle knows are in the bucket
            self._head_catalog = self._scratch / "head.sqlite"  # the head's catalog, base of the next delta
            if head is not None:
                catalog = self._materialize(head)
                shutil.copyfile(catalog, self._head_catalog)
                os.replace(catalog, self.folder / CATALOG)
            self._checked = time.monotonic()  # a slow first download is not a reason to look again
        except BaseException:
            self.close()
            raise

    # -- versions -----------------------------------------------------------------------

    def _find(self, version: int | None, as_of: float | None) -> Version | None:
        if version is not None:
            found = manifest.read_version(self.objects, version)
            if found is None:
                msg = f"{self.url} has no version {version} (never made, or removed by cleanup); `lcmemvid log` lists the versions it has."
                raise StoreNotFound(msg)
            return found
        if as_of is not None:
            found = manifest.as_of(self.objects, as_of)
            if found is None:
                msg = f"{self.url} has no version as old as {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(as_of))} UTC."
                raise StoreNotFound(msg)
            return found
        return manifest.latest(self.objects)

    def versions(self) -> list[Version]:
        """Every version still present, oldest first (one LIST and one GET each)."""
        out = []
        for number in manifest.version_numbers(self.objects):
            found = manifest.read_version(self.objects, number)
            if found is not None:
                out.append(found)
        return out

    def catch_up(self, *, force: bool = False) -> bool:
        """Take in versions published since this handle's head; True when there were any.

        At most one GET per ``refresh_interval`` unless ``force``. A time-travel handle stays put.
        """
        if self.read_only or (self.head is None and not force):
            return False
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_interval:
            return False
        self._checked = now
        try:
            newest = (
                manifest.newest_after(self.objects, self.head) if self.head else manifest.latest(self.objects)
            )
        except ObjectStoreIOError as e:
            if force:
                raise
            # A read goes on with the version it has (its files are local); a write would not.
            warnings.warn(
                f"Could not check {self.url} for a newer version ({e}); serving version {self.head.number if self.head else '?'}.",
                stacklevel=4,
            )
            return False
        if newest is None or (self.head is not None and newest.number == self.head.number):
            return False
        self._take(newest)
        return True

    def reset(self) -> None:
        """Go back to the newest published version, dropping local changes not published."""
        newest = manifest.latest(self.objects)
        if newest is not None:
            self._take(newest)

    def _take(self, newest: Version) -> None:
        catalog = self._materialize(newest)
        try:
            catalog_state.sync_into(self.folder / CATALOG, catalog)
            os.replace(catalog, self._head_catalog)
        finally:
            catalog.unlink(missing_ok=True)
        self.head = newest
        self._prune_checkpoints()

    # -- reading ------------------------------------------------------------------------

    def _fetch(self, ref: ObjectRef, dst: Path) -> None:
        """Hard-link (or copy) the cached, checked object to ``dst``."""
        src = self.cache.fetch(self.objects, ref.name, ref.sha256, ref.bytes)
        try:
            dst.unlink(missing_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
        finally:
            self.cache.release(ref.sha256)

    def _materialize(self, version: Version) -> Path:
        """The version's catalog as a new file in the workspace, its files fetched beside it."""
        out = self._catalog_of(version)
        try:
            self._fetch_files(out)
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        return out

    def _catalog_of(self, version: Version) -> Path:
        """The version's catalog (its checkpoint with its deltas applied in order) as a new scratch file."""
        if self.head is not None and version.store_id != self.head.store_id:
            msg = f"{self.url} now holds another store (id {version.store_id}, not {self.head.store_id}); close this handle and open it again."
            raise CorruptData(msg)
        base = self._checkpoint_file(version.checkpoint)
        out = self._scratch / f"version-{version.number}-{os.urandom(4).hex()}.sqlite"
        shutil.copyfile(base, out)
        os.chmod(out, 0o644)
        for ref in version.deltas:
            delta = self._scratch / f"delta-{ref.sha256}.sqlite"
            try:
                with self.cache.pinned(self.objects, ref.name, ref.sha256, ref.bytes) as packed:
                    catalog_state.decompress_to(packed.read_bytes(), delta, ref.name)
                catalog_state.apply_delta(out, delta)
            except sqlite3.DatabaseError as e:
                out.unlink(missing_ok=True)
                msg = f"Catalog delta {ref.name} of version {version.number} cannot be applied ({e}); that version is damaged."
                raise CorruptData(msg) from e
            except BaseException:
                out.unlink(missing_ok=True)
                raise
            finally:
                delta.unlink(missing_ok=True)
        self._remote.add(version.checkpoint.name)
        return out

    def _checkpoint_file(self, ref: ObjectRef) -> Path:
        """A read-only scratch copy of a catalog checkpoint (the base of deltas)."""
        path = self._scratch / f"checkpoint-{ref.sha256}.sqlite"
        if not path.exists():
            self._fetch(ref, path)
            os.chmod(path, 0o444)
        return path

    def _prune_checkpoints(self) -> None:
        """Delete scratch checkpoints other than the head's."""
        keep = f"checkpoint-{self.head.checkpoint.sha256}.sqlite" if self.head else None
        for path in self._scratch.glob("checkpoint-*.sqlite"):
            if path.name != keep:
                path.unlink(missing_ok=True)

    def _fetch_files(self, catalog: Path) -> None:
        """Vector files and the index snapshot the catalog names, into the workspace."""
        segments, snapshot = _files_named(catalog)
        for name, size, sha in segments:
            ref = ObjectRef(f"segments/{name}.faiss", size, sha)
            self._remote.update({ref.name, f"segments/{name}.mov"})
            dst = self.folder / "segments" / f"{name}.faiss"
            if not dst.exists():
                self._fetch(ref, dst)
        if snapshot is not None:
            self._remote.add(snapshot.name)
            dst = self.folder / snapshot.name
            if not dst.exists():
                self._fetch(snapshot, dst)

    def read_video(self, name: str, start: int, end: int) -> bytes:
        """Bytes ``start..end`` of a segment video in the bucket (one ranged GET)."""
        try:
            return self.objects.read_range(f"segments/{name}", start, end)
        except ObjectNotFound as e:
            msg = f"Video file {name} is missing from {self.url}: the version this handle reads was removed by cleanup (or the bucket was damaged). Open the store again; run `verify`."
            raise SegmentNotFound(msg) from e

    def keep_video(self, name: str, size: int, sha256: str) -> bool:
        """With ``cache_videos``: fetch a whole video into the cache (checked) and link it here."""
        if not self.cache_videos:
            return False
        self._fetch(ObjectRef(f"segments/{name}", size, sha256), self.folder / "segments" / name)
        return True

    def video_digest(self, name: str, size: int) -> tuple[int, str]:
        """Size and SHA-256 of a segment video in the bucket, read in 64 MiB ranges."""
        digest, read = hashlib.sha256(), 0
        while read <= size:
            chunk = self.read_video(name, read, read + READ_CHUNK)
            digest.update(chunk)
            read += len(chunk)
            if len(chunk) < READ_CHUNK:
                break
        return read, digest.hexdigest()

    # -- writing ------------------------------------------------------------------------

    def publish(self, operation: str, summary: str) -> Version:
        """Upload what the last local commit made and create the next version object.

        Raises:
            CommitConflict: another writer published that version first (the workspace is
                then back at the newest version; nothing of this call is in the store).
            ReadOnlyStore: a time-travel handle.
        """
        if self.read_only:
            msg = f"This handle reads version {self.head.number if self.head else '?'} of {self.url} and cannot write; open the store without version= or as_of=."
            raise ReadOnlyStore(msg)
        work = Path(tempfile.mkdtemp(prefix="publish-", dir=self._scratch))
        try:
            current = work / CATALOG
            catalog_state.copy_catalog(self.folder / CATALOG, current)
            started = time.time()
            uploaded = self._upload_files(current)
            checkpoint, deltas, uploaded_catalog = self._catalog_objects(current, work)
            if time.time() - started > RECHECK_AFTER:
                self._recheck(uploaded | uploaded_catalog, work)
            number = self.head.number + 1 if self.head else 1
            version = Version(
                number=number,
                store_id=self.head.store_id if self.head else manifest.new_id(),
                parent=number - 1 if number > 1 else None,
                commit_id=manifest.new_id(),
                created=time.time(),
                operation=operation,
                summary=summary,
                checkpoint=checkpoint,
                deltas=deltas,
                library=library_name(),
            )
            if not self._create_version(version):
                with contextlib.suppress(Exception):
                    self.reset()
                msg = f"Another writer committed version {number} of {self.url} first; nothing of this call was written. Retry it (this handle now reads the newest version)."
                raise CommitConflict(msg)
            manifest.publish_hint(self.objects, number)
            self._remote.update(uploaded | uploaded_catalog)
            if not deltas:  # a new checkpoint
                os.replace(
                    work / "checkpoint.sqlite", self._scratch / f"checkpoint-{checkpoint.sha256}.sqlite"
                )
            os.replace(current, self._head_catalog)
            self.head = version
            self._prune_checkpoints()
            return version
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _create_version(self, version: Version) -> bool:
        """Create the version object unless it exists: atomically, or in single-writer mode.

        A filesystem without an atomic create-if-absent (``AtomicCreateUnsupported``) gets a
        check-then-put under a lock in the cache folder: safe for writers on this machine only.
        """
        try:
            return self.objects.put_if_absent(version.name, version.to_json())
        except AtomicCreateUnsupported:
            if not self.single_writer_warned:
                self.single_writer_warned = True
                warnings.warn(
                    f"{self.url} has no atomic create-if-absent: commits run in single-writer mode, "
                    "safe only while every writer runs on this machine (docs/format.md section 11.5).",
                    stacklevel=4,
                )
        key = hashlib.sha256(self.url.encode()).hexdigest()[:32]
        lock = self.cache.folder / "locks" / f"writer-{key}"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if self.objects.exists(version.name):
                return False
            self.objects.put(version.name, version.to_json())
            return True
        finally:
            os.close(fd)

    def _recheck(self, names: set[str], work: Path) -> None:
        """Upload again what a slow commit uploaded and a cleanup has since removed."""
        for name in sorted(names):
            if self.objects.exists(name):
                continue
            local = self.folder / name if not name.startswith("catalog/") else None
            if local is None or not local.is_file():
                msg = f"{name} was removed from {self.url} (by a cleanup) while this commit was uploading; nothing was written. Retry the call."
                raise CommitConflict(msg)
            self.objects.put_file(name, local)

    def _upload_files(self, catalog: Path) -> set[str]:
        """Put the segment files and snapshot the catalog names that the bucket lacks."""
        segments, snapshot = _files_named(catalog)
        wanted = [f"segments/{name}{suffix}" for name, _, _ in segments for suffix in (".mov", ".faiss")]
        if snapshot is not None:
            wanted.append(snapshot.name)
        uploaded = set()
        for name in wanted:
            if name in self._remote:
                continue
            local = self.folder / name
            if not local.is_file():
                msg = f"{name} is named by this handle's catalog but is neither in {self.url} nor in the workspace; the commit cannot be published."
                raise SegmentNotFound(msg)
            self.objects.put_file(name, local)
            uploaded.add(name)
        return uploaded

    def _catalog_objects(
        self, current: Path, work: Path
    ) -> tuple[ObjectRef, tuple[ObjectRef, ...], set[str]]:
        """(checkpoint, deltas, uploaded names) of the new catalog ``current``.

        Usually the head's checkpoint and chain plus one new delta holding only this commit's
        changes (the rows that differ from the head's catalog); a new checkpoint once the chain
        reaches ``CHAIN_LENGTH`` deltas or outweighs the checkpoint, so building any version's
        catalog reads a bounded number of objects.
        """
        if self.head is not None:
            chain = self.head.deltas
            delta_file = work / "delta.sqlite"
            catalog_state.make_delta(self._head_catalog, current, delta_file)
            packed = catalog_state.compress(delta_file)
            weight = sum(d.bytes for d in chain) + len(packed)
            if len(chain) < CHAIN_LENGTH and weight <= max(self.head.checkpoint.bytes, CHAIN_MIN_BYTES):
                sha = hashlib.sha256(packed).hexdigest()
                ref = ObjectRef(f"catalog/delta-{sha}.zst", len(packed), sha)
                self.objects.put(ref.name, packed)
                return self.head.checkpoint, (*chain, ref), {ref.name}
        checkpoint = work / "checkpoint.sqlite"
        shutil.copyfile(current, checkpoint)
        catalog_state.compact_file(checkpoint)
        size, sha = checkpoint.stat().st_size, _sha256(checkpoint)
        ref = ObjectRef(f"catalog/{sha}.sqlite", size, sha)
        self.objects.put_file(ref.name, checkpoint)
        return ref, (), {ref.name}

    # -- cleanup ------------------------------------------------------------------------

    def cleanup(self, *, older_than: float, keep_last: int, grace: float | None = None) -> dict[str, Any]:
        """Remove old versions and the objects no kept version names (docs/format.md section 11.7).

        Kept: the newest version, the last ``keep_last``, and every version created within
        ``older_than`` seconds. An unreferenced object is deleted only once it is older than
        ``grace`` seconds (default ``older_than``, at least an hour): a reader may still hold an
        old version, and a writer's uploads are unreferenced until it publishes.
        """
        if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
            msg = f"keep_last must be an int >= 1 (the newest version is always kept); got {keep_last!r}."
            raise InvalidArgument(msg)
        if older_than < 0 or (grace is not None and grace < 0):
            msg = "older_than and grace are ages in seconds (>= 0)."
            raise InvalidArgument(msg)
        grace = max(older_than, MIN_GRACE) if grace is None else grace
        now = time.time()
        found = self.versions()
        if not found:
            return {"versions_removed": [], "objects_removed": 0, "bytes_removed": 0, "versions_kept": []}
        newest = found[-1].number
        kept = [
            v
            for v in found
            if v.number == newest or v.number > newest - keep_last or v.created >= now - older_than
        ]
        reachable: set[str] = set()
        for v in kept:
            reachable.add(v.checkpoint.name)
            reachable.update(d.name for d in v.deltas)
            catalog = self._catalog_of(v)
            try:
                segments, snapshot = _files_named(catalog)
            finally:
                catalog.unlink(missing_ok=True)
            reachable.update(f"segments/{n}{suffix}" for n, _, _ in segments for suffix in (".mov", ".faiss"))
            if snapshot is not None:
                reachable.add(snapshot.name)
        self._prune_checkpoints()
        removed_versions = [v.number for v in found if v not in kept]
        for number in removed_versions:  # oldest first: the chain stays readable from any kept one
            self.objects.delete(manifest.version_name(number))
        count = size = 0
        for prefix in ("segments/", "index/", "catalog/"):
            for name, nbytes, modified in self.objects.list_with_times(prefix):
                if name not in reachable and modified < now - grace:
                    self.objects.delete(name)
                    count, size = count + 1, size + nbytes
        return {
            "versions_removed": removed_versions,
            "objects_removed": count,
            "bytes_removed": size,
            "versions_kept": [v.number for v in kept],
        }

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Remove the workspace and release the cache's pins."""
        with contextlib.suppress(OSError):
            shutil.rmtree(self._scratch, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.close(self._owner)
        self.cache.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files_named(catalog: Path) -> tuple[list[tuple[str, int, str]], ObjectRef | None]:
    """(segment name, vector file bytes, SHA-256) of every segment, and the index snapshot."""
    import json

    conn = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT name, index_bytes, index_sha256 FROM segments ORDER BY seq").fetchall()
        snap = conn.execute("SELECT value FROM meta WHERE key = 'index_snapshot'").fetchone()
    except sqlite3.DatabaseError as e:
        msg = f"A catalog checkpoint is not a readable store catalog ({e})."
        raise CorruptData(msg) from e
    finally:
        conn.close()
    snapshot = None
    try:
        value = json.loads(snap[0]) if snap is not None else None
    except (TypeError, ValueError) as e:
        msg = f"A catalog names its index snapshot as {str(snap[0])[:80]!r}, which is not JSON; that version is damaged."
        raise CorruptData(msg) from e
    if isinstance(value, dict):
        snapshot = ObjectRef.parse(
            {
                "name": f"index/{value.get('file')}",
                "bytes": value.get("bytes"),
                "sha256": value.get("sha256"),
            },
            "The catalog's index snapshot",
        )
    files = []
    for name, size, sha in rows:
        ref = ObjectRef.parse(
            {"name": f"segments/{name}.faiss", "bytes": size, "sha256": sha}, f"Segment {name!r} of a catalog"
        )
        files.append((str(name), ref.bytes, ref.sha256))
    return files, snapshot


def _new_folder(parent: Path) -> tuple[Path, int]:
    """A new private workspace, held by an ``flock`` on its ``OWNER`` file while this process lives.

    Workspaces whose owner is gone (a killed process) are removed on the way.
    """
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.iterdir():
        owner = old / "OWNER"
        with contextlib.suppress(OSError):
            fd = os.open(owner, os.O_RDWR)
            try:
                if time.time() - os.fstat(fd).st_mtime < STALE_AFTER:
                    raise OSError("young: perhaps still being created")
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            shutil.rmtree(old, ignore_errors=True)
            os.close(fd)
    folder = Path(tempfile.mkdtemp(prefix="ws-", dir=parent))
    fd = os.open(folder / "OWNER", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    for sub in ("segments", "index", "tmp"):
        (folder / "store" / sub).mkdir(parents=True)
    return folder, fd


__all__ = ["Workspace"]
