"""Version objects: ``_versions/<N>.json``, one per commit, created once and never changed.

A version names the catalog that holds everything else (docs/format.md section 11): a checkpoint
and the chain of deltas since it, each by name, size and SHA-256. Versions are numbered 1, 2, 3... without gaps, each
created as "parent + 1" with a create-if-absent PUT, so two writers can never both publish the
same number. ``_latest`` is a hint only (the number of a recent version) that saves a listing.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any

from langchain_memvid.engine.errors import CorruptData, UnsupportedFormat
from langchain_memvid.engine.storage.objects import ObjectNotFound, ObjectStore, check_name

FORMAT_VERSION = 3
VERSIONS = "_versions/"
LATEST = "_latest"
_NAME = re.compile(r"_versions/(\d{20})\.json")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_SHA = re.compile(r"[0-9a-f]{64}")
MAX_MANIFEST_BYTES = 1 << 20
MAX_CHAIN = 64  # deltas a version may name after its checkpoint (writers start a new checkpoint at 16)


def version_name(number: int) -> str:
    """``_versions/`` + the number in 20 digits, so names sort as numbers do."""
    return f"{VERSIONS}{number:020d}.json"


def new_id() -> str:
    """32 random hex digits (a store id or a commit id)."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class ObjectRef:
    """An object a version names, with the size and SHA-256 it must have."""

    name: str
    bytes: int
    sha256: str

    @classmethod
    def parse(cls, value: Any, what: str) -> ObjectRef:
        """Check a reference read from a version or catalog; ``CorruptData`` names ``what``."""
        if not isinstance(value, dict):
            msg = f"{what} is not an object reference."
            raise CorruptData(msg)
        name, size, sha = value.get("name"), value.get("bytes"), value.get("sha256")
        if not isinstance(name, str) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
            msg = f"{what} has no valid name and size."
            raise CorruptData(msg)
        if not isinstance(sha, str) or not _SHA.fullmatch(sha):
            msg = f"{what} has no valid SHA-256."
            raise CorruptData(msg)
        try:
            check_name(name)
        except Exception as e:
            msg = f"{what} names {name!r}, which is not an object of this store: {e}"
            raise CorruptData(msg) from e
        return cls(name, size, sha)


@dataclass(frozen=True)
class Version:
    """One commit: its number, when and by which operation, and the catalog it left."""

    number: int
    store_id: str
    parent: int | None
    commit_id: str
    created: float
    operation: str
    summary: str
    checkpoint: ObjectRef
    deltas: tuple[ObjectRef, ...]
    library: str = ""

    @property
    def name(self) -> str:
        """The version object's name in the store."""
        return version_name(self.number)

    def to_json(self) -> bytes:
        """The version object's bytes (what ``parse`` reads back)."""
        body: dict[str, Any] = {"format_version": FORMAT_VERSION, **asdict(self)}
        body["version"] = body.pop("number")
        body["deltas"] = list(body["deltas"])
        return json.dumps(body, sort_keys=True, indent=1).encode()

    @classmethod
    def parse(cls, data: bytes, name: str) -> Version:
        """Check and read a version object; anything off raises ``CorruptData`` naming it."""
        what = f"Version object {name}"
        if len(data) > MAX_MANIFEST_BYTES:
            msg = f"{what} is {len(data)} bytes, more than a version object can be; it is damaged."
            raise CorruptData(msg)
        try:
            body = json.loads(data)
        except ValueError as e:
            msg = f"{what} is not JSON ({e}); it is damaged."
            raise CorruptData(msg) from e
        if not isinstance(body, dict):
            msg = f"{what} is not a JSON object; it is damaged."
            raise CorruptData(msg)
        fmt = body.get("format_version")
        if not isinstance(fmt, int) or isinstance(fmt, bool):
            msg = f"{what} has no format_version; it is damaged."
            raise CorruptData(msg)
        if fmt > FORMAT_VERSION:
            msg = f"{what} was written in store format {fmt}, newer than this library reads ({FORMAT_VERSION}); upgrade langchain-qrvideo to open it."
            raise UnsupportedFormat(msg)
        number, parent = body.get("version"), body.get("parent")
        match = _NAME.fullmatch(name)
        if (
            not isinstance(number, int)
            or isinstance(number, bool)
            or match is None
            or int(match[1]) != number
            or number < 1
        ):
            msg = f"{what} says it is version {number!r}; the name and the content disagree."
            raise CorruptData(msg)
        if parent != (number - 1 if number > 1 else None) and not (
            parent is None and body.get("operation") == "migrate"
        ):
            msg = f"{what} names parent {parent!r}; version {number} must follow version {number - 1}."
            raise CorruptData(msg)
        for key in ("store_id", "commit_id"):
            if not isinstance(body.get(key), str) or not _HEX32.fullmatch(body[key]):
                msg = f"{what} has no valid {key}; it is damaged."
                raise CorruptData(msg)
        created = body.get("created")
        if not isinstance(created, (int, float)) or isinstance(created, bool):
            msg = f"{what} has no creation time; it is damaged."
            raise CorruptData(msg)
        operation, summary = body.get("operation"), body.get("summary", "")
        if not isinstance(operation, str) or not isinstance(summary, str):
            msg = f"{what} has no valid operation; it is damaged."
            raise CorruptData(msg)
        deltas = body.get("deltas", [])
        if not isinstance(deltas, list) or len(deltas) > MAX_CHAIN:
            msg = f"{what} names {len(deltas) if isinstance(deltas, list) else 'no list of'} catalog deltas; at most {MAX_CHAIN} can follow a checkpoint. It is damaged."
            raise CorruptData(msg)
        return cls(
            number=number,
            store_id=body["store_id"],
            parent=parent,
            commit_id=body["commit_id"],
            created=float(created),
            operation=operation,
            summary=summary,
            checkpoint=ObjectRef.parse(body.get("checkpoint"), f"{what}: its checkpoint"),
            deltas=tuple(ObjectRef.parse(d, f"{what}: its delta {i + 1}") for i, d in enumerate(deltas)),
            library=str(body.get("library", "")),
        )


def read_version(objects: ObjectStore, number: int) -> Version | None:
    """Version ``number``, or None when no such object exists (one GET)."""
    name = version_name(number)
    try:
        data = objects.read(name)
    except ObjectNotFound:
        return None
    return Version.parse(data, name)


def version_numbers(objects: ObjectStore) -> list[int]:
    """The version numbers present (one LIST), ascending: the unbroken run from the oldest."""
    out = []
    for name in objects.list(VERSIONS):
        match = _NAME.fullmatch(name)
        if match:
            out.append(int(match[1]))
    return _chain(sorted(out))


def follow(objects: ObjectStore, current: Version) -> Version:
    """The newest version at or after ``current``: one GET per newer version, plus one that misses."""
    while (newer := read_version(objects, current.number + 1)) is not None:
        current = newer
    return current


def newest_after(objects: ObjectStore, current: Version) -> Version:
    """The newest version, starting from ``current``: 1 GET when there is none newer, plus 1 HEAD.

    A missing ``current + 1`` proves nothing new only while ``current`` itself is still there:
    cleanup removes the oldest versions first, so if ``current`` was removed (a handle idle past
    ``keep_last``), ``current + 1`` may have been removed too, and the newest is found by listing.
    Without this check such a handle would never catch up, and its next commit would recreate a
    removed number: a fork.
    """
    newest = follow(objects, current)
    if newest.number == current.number and not objects.exists(current.name):
        found = latest(objects)
        if found is not None:
            return found
    return newest


def latest(objects: ObjectStore) -> Version | None:
    """The newest version, or None for no store: warm, 3 GETs (``_latest``, its version, the next's miss)."""
    hint: int | None = None
    try:
        text = objects.read_range(LATEST, 0, 24).decode("ascii", "replace").strip()
        hint = int(text) if text.isdigit() else None
    except ObjectNotFound:
        pass
    start = read_version(objects, hint) if hint else None
    if start is None:
        numbers = version_numbers(objects)
        if not numbers:
            return None
        start = read_version(objects, numbers[-1])
        if start is None:  # removed between the LIST and the GET: cleanup never removes the newest
            return latest(objects)
    return follow(objects, start)


def _chain(numbers: list[int]) -> list[int]:
    """The unbroken run of version numbers from the oldest kept one.

    Versions are created as "parent + 1" and cleanup removes the oldest, so the versions present
    are one run; a number past a gap was not made by a commit (a stray or hostile object).
    """
    run = numbers[:1]
    for n in numbers[1:]:
        if n != run[-1] + 1:
            break
        run.append(n)
    return run


def as_of(objects: ObjectStore, when: float) -> Version | None:
    """The newest version created at or before Unix time ``when`` (a LIST, then a bisection of GETs)."""
    numbers = version_numbers(objects)
    lo, hi, found = 0, len(numbers) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        version = read_version(objects, numbers[mid])
        if version is None:  # cleaned up meanwhile: look among the newer ones
            lo = mid + 1
            continue
        if version.created <= when:
            found, lo = version, mid + 1
        else:
            hi = mid - 1
    return found


def publish_hint(objects: ObjectStore, number: int) -> None:
    """Best effort: point ``_latest`` at ``number`` (a reader that finds it stale reads a little more)."""
    try:
        objects.put(LATEST, str(number).encode())
    except Exception:  # the hint is never needed for correctness
        return


__all__ = [
    "FORMAT_VERSION",
    "ObjectRef",
    "Version",
    "as_of",
    "follow",
    "latest",
    "new_id",
    "newest_after",
    "publish_hint",
    "read_version",
    "version_name",
    "version_numbers",
]
