"""The catalog: one SQLite file that says which segments, frames and records are live.

The catalog is the single source of truth for what is visible. A write becomes visible in one
SQLite transaction, after its segment files are durable on disk; a crash before that commit leaves
files that a committed ``pending`` garbage row names, which the next writer deletes. A segment file
the catalog does not name is never deleted. It holds ids, frame offsets, metadata (for
filtering) and checksums - never record text. WAL mode lets readers in other processes see the last
committed state while a writer works.

Every row is checksummed: ``records`` rows carry their own CRC-32; ``meta`` rows, ``segments`` rows
and each segment's ``frames`` rows are covered by CRC-32s in the ``checksums`` table. A damaged or
crafted catalog surfaces as a ``MemvidError`` (mostly ``CorruptData``) naming the catalog - never
as a ``sqlite3`` error, a ``ValueError`` from parsing, or a silently wrong value.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

from .errors import (
    ChecksumMismatch,
    CorruptData,
    DiskFull,
    InvalidArgument,
    LimitExceeded,
    MemvidError,
    ReadOnlyStore,
    StoreIOError,
    StoreLocked,
    UnsafePath,
    UnsupportedFormat,
)
from .files import open_regular
from .frames import FORMAT_VERSION, MAX_PACK_PARTS
from .records import MAX_TEXT_BYTES
from .video import FrameLocation, VideoInfo

# Bounds on values read from the catalog, so a crafted one cannot make a reader allocate or loop
# without limit. Each is far beyond what the writer produces.
CODECS = ("png", "h264")  # the decoders a stored segment may ask for
MAX_FRAME_SIDE = 16384
MAX_SEGMENT_FRAMES = 1 << 24
MAX_PACKET_BYTES = 64 << 20  # one frame's packet (a QR image): a few KB to a few hundred KB
MAX_FILE_BYTES = 1 << 40
MAX_DIM = 1 << 16

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS segments (
    seq          INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL CHECK (kind IN ('records', 'tombstones')),
    profile      TEXT NOT NULL,
    codec        TEXT NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    time_base    TEXT NOT NULL,
    extradata    BLOB NOT NULL,
    frame_count  INTEGER NOT NULL,
    dict_frames  INTEGER NOT NULL,
    record_count INTEGER NOT NULL,
    video_bytes  INTEGER NOT NULL,
    video_sha256 TEXT NOT NULL,
    index_bytes  INTEGER NOT NULL,
    index_sha256 TEXT NOT NULL,
    created      REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS frames (
    seq    INTEGER NOT NULL,
    frame  INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    size   INTEGER NOT NULL,
    pts    INTEGER NOT NULL,
    crc32  INTEGER NOT NULL,
    PRIMARY KEY (seq, frame)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    id          TEXT PRIMARY KEY,
    vector_id   INTEGER NOT NULL UNIQUE,
    seq         INTEGER NOT NULL,
    first_frame INTEGER NOT NULL,
    frame_count INTEGER NOT NULL,
    slot        INTEGER NOT NULL,
    text_bytes  INTEGER NOT NULL,
    metadata    TEXT NOT NULL,
    crc32       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_seq ON records (seq);
CREATE TABLE IF NOT EXISTS checksums (
    tbl   TEXT NOT NULL,
    key   TEXT NOT NULL,
    crc32 INTEGER NOT NULL,
    PRIMARY KEY (tbl, key)
) WITHOUT ROWID;
"""

# Segment files that a committed state proves are garbage: 'pending' names a write's files before
# they are renamed into segments/ (the write commits by deleting the row), 'dropped' names the
# files of segments a committed compaction dropped. Nothing else in segments/ is ever deleted.
GARBAGE_SCHEMA = """
CREATE TABLE IF NOT EXISTS garbage (
    name  TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('pending', 'dropped')),
    crc32 INTEGER NOT NULL
) WITHOUT ROWID
"""
SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class SegmentRow:
    """A segment as the catalog records it; file names are relative to ``segments/``."""

    seq: int
    name: str
    kind: str
    profile: str
    info: VideoInfo
    frame_count: int
    dict_frames: int
    record_count: int
    video_bytes: int
    video_sha256: str
    index_bytes: int
    index_sha256: str
    created: float

    @property
    def video_file(self) -> str:
        """The video's file name inside ``segments/``."""
        return f"{self.name}.mov"

    @property
    def index_file(self) -> str:
        """The vector file's name inside ``segments/``."""
        return f"{self.name}.faiss"


@dataclass(frozen=True)
class RecordRow:
    """Where one live record lives: its pack's frames and its slot in the pack."""

    id: str
    vector_id: int
    seq: int
    first_frame: int
    frame_count: int
    slot: int
    text_bytes: int
    metadata: dict[str, Any]


def _row_crc(
    id_: str, vector_id: int, seq: int, first: int, count: int, slot: int, size: int, meta: str
) -> int:
    return zlib.crc32(
        f"{id_}\x00{vector_id}\x00{seq}\x00{first}\x00{count}\x00{slot}\x00{size}\x00{meta}".encode()
    )


def check_name(name: str) -> str:
    """Refuse a segment name that could point outside ``segments/`` (a crafted catalog).

    Raises:
        UnsafePath: the name has a separator, ``..``, or other characters than [0-9a-f-].
    """
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 64
        or any(c not in "0123456789abcdef-" for c in name)
    ):
        msg = f"Catalog names the segment {name!r}, which is not a plain segment name; refusing it."
        raise UnsafePath(msg)
    return name


def _meta_crc(key: str, value: str) -> int:
    return zlib.crc32(f"{key}\x00{value}".encode())


def _segment_crc(values: Sequence[Any]) -> int:
    """CRC-32 of a ``segments`` row as inserted (the BLOB in hex)."""
    parts = [v.hex() if isinstance(v, (bytes, bytearray, memoryview)) else repr(v) for v in values]
    return zlib.crc32("\x00".join(parts).encode())


def _frames_crc(rows: Iterable[Sequence[Any]]) -> int:
    """CRC-32 of a segment's ``frames`` rows (frame, offset, size, pts, crc32), in frame order."""
    crc = 0
    for row in rows:
        crc = zlib.crc32((",".join(map(repr, row)) + ";").encode(), crc)
    return crc


_RECOVER = (
    "The videos in segments/ are untouched: move this file aside and run `lcmemvid rebuild STORE` "
    "to recreate the catalog from them."
)


def _check_format_version(path: Path, row: Sequence[Any] | None) -> None:
    """Refuse a catalog without a format version, or with a newer one (before any bounds check)."""
    version: Any = None
    if row is not None:
        try:
            version = json.loads(row[0])
        except (ValueError, TypeError, RecursionError):
            version = None
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        msg = f"{path} has no valid format version ({version!r:.40}), so it is not a memvid catalog. {_RECOVER}"
        raise CorruptData(msg)
    if version > FORMAT_VERSION:
        msg = f"The store at {path.parent} uses format version {version}; this library reads up to {FORMAT_VERSION}. Upgrade langchain-memvid; nothing was changed."
        raise UnsupportedFormat(msg)


def _file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``, or None when it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _damaged(what: str, detail: str) -> CorruptData:
    return CorruptData(f"Catalog {what}: {detail}; run `verify`, then `rebuild` to recreate the catalog.")


def _int(value: Any, what: str, low: int = 0, high: int = 1 << 62) -> int:
    """A stored integer, type- and range-checked (SQLite stores any type in any column)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _damaged(what, f"holds {value!r:.60}, not an integer")
    if not low <= value <= high:
        msg = f"Catalog {what} is {value}, outside {low}..{high}; refusing it (a damaged or crafted catalog)."
        raise LimitExceeded(msg)
    return value


def _check_setting(key: str, value: Any) -> Any:
    """A stored setting, checked where the engine relies on its type and range."""
    if key in ("generation", "next_vector_id", "next_seq", "format_version"):
        _int(value, f"setting {key!r}")
    elif key == "dim" and value is not None:
        _int(value, "setting 'dim'", 1, MAX_DIM)
    elif key == "metric" and value not in ("cosine", "ip", "l2"):
        raise _damaged("setting 'metric'", f"is {value!r:.40}, not cosine, ip or l2")
    elif key in ("profile", "model") and value is not None and not isinstance(value, str):
        raise _damaged(f"setting {key!r}", "is not a string")
    return value


def _translate(e: sqlite3.Error, path: Path) -> MemvidError:
    """The engine's error for an SQLite error on the catalog at ``path``."""
    text = str(e)
    low = text.lower()
    if getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in low:
        return DiskFull(
            errno.ENOSPC,
            f"No room left to write the catalog {path} ({text}): the disk is full or a file-size "
            "limit was reached. Nothing of this call was committed; free space and retry.",
        )
    if getattr(e, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_IOERR or "disk i/o error" in low:
        if _nearly_full(path.parent):  # e.g. no room for the -shm file a reader maps
            return DiskFull(
                errno.ENOSPC,
                f"No room left on the disk of {path} ({text}): free space and retry. Nothing of "
                "this call was committed.",
            )
        return StoreIOError(
            f"The operating system failed a read or write of the catalog {path} ({text}): an I/O "
            "error or a file-size limit. Nothing of this call was committed; check the disk and retry."
        )
    if "locked" in low or "busy" in low:
        return StoreLocked(f"The catalog {path} stayed locked by another process ({text}); retry later.")
    if any(w in low for w in ("readonly", "read-only", "permission", "unable to open", "access")):
        return ReadOnlyStore(
            f"Cannot use the catalog {path} ({text}): the store folder and its files must be "
            "readable and writable by this user, on a writable file system."
        )
    if isinstance(e, sqlite3.ProgrammingError) and "closed" in low:
        return InvalidArgument(f"The store at {path.parent} is closed; open it again.")
    if isinstance(e, sqlite3.InterfaceError):
        return InvalidArgument(f"A value of an unsupported type was passed to the catalog: {text}")
    return CorruptData(
        f"The catalog {path} is damaged ({text}); run `verify`, then `rebuild` to recreate it from the videos."
    )


def _nearly_full(folder: Path) -> bool:
    """True when the file system of ``folder`` has under 1 MiB free (then an I/O error is that)."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return False
    return st.f_bavail * st.f_frsize < (1 << 20)


class _Guard:
    """Context manager turning ``sqlite3`` errors into the engine's own (see ``_translate``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, sqlite3.Error):
            raise _translate(exc, self.path) from exc
        if isinstance(exc, UnicodeDecodeError):  # text in a damaged catalog
            msg = f"The catalog {self.path} holds text that is not UTF-8; run `verify`, then `rebuild`."
            raise CorruptData(msg) from exc


class _Cursor:
    """A cursor whose fetches (and iteration) go through the guard."""

    def __init__(self, cursor: sqlite3.Cursor, guard: _Guard) -> None:
        self._cursor, self._guard = cursor, guard

    def fetchone(self) -> Any:
        with self._guard:
            return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        with self._guard:
            return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        while True:
            with self._guard:
                rows = self._cursor.fetchmany(256)
            if not rows:
                return
            yield from rows


class _Connection:
    """The catalog's SQLite connection, with every call guarded."""

    def __init__(self, path: Path, uri: str) -> None:
        self._guard = _Guard(path)
        with self._guard:
            self._db = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30
            )
        self._shm = Path(f"{path}-shm")
        self._shm_fd: int | None = None
        self._wal_hint: bytes | None = None  # the WAL-index header when ``_token`` was read
        self._token = (-1, -1)

    @property
    def in_transaction(self) -> bool:
        return self._db.in_transaction

    def change_token(self) -> tuple[int, int]:
        """SQLite's ``data_version`` and ``total_changes``, cheaply when nothing was committed.

        The first moves with other connections' commits, the second with this connection's writes.
        Every commit in WAL mode rewrites the WAL-index header, so while that header and
        ``total_changes`` stand still the last token still holds; reading 48 bytes costs a few
        microseconds where the PRAGMA cost ~30 at 1M vectors, measured between FAISS searches.
        """
        hint = self._read_wal_hint()
        if hint is not None and hint == self._wal_hint and self._db.total_changes == self._token[1]:
            return self._token
        with self._guard:
            token = self._db.execute("PRAGMA data_version").fetchone()[0], self._db.total_changes
        self._wal_hint, self._token = hint, token  # the hint read first: a commit between moves it
        return token

    def _read_wal_hint(self) -> bytes | None:
        """The WAL-index header, or None where it cannot be read (no WAL yet, no ``os.pread``).

        That is the first 48 bytes of the ``-shm`` file, in SQLite's documented wal-index format.
        """
        if self._shm_fd is None:
            if not hasattr(os, "pread") or not self._shm.exists():
                return None
            try:
                self._shm_fd = os.open(self._shm, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                return None
        try:
            head = os.pread(self._shm_fd, 48, 0)
        except OSError:
            return None
        return head if len(head) == 48 else None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        with self._guard:
            return _Cursor(self._db.execute(sql, params), self._guard)

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        with self._guard:
            self._db.executemany(sql, params)

    def backup(self, dest: Path) -> None:
        """A consistent copy of the database (WAL content included) at ``dest``, fsynced."""
        with self._guard:
            target = sqlite3.connect(dest)
            try:
                self._db.backup(target)
            finally:
                target.close()
        with open(dest, "rb+") as fh:
            os.fsync(fh.fileno())

    def close(self) -> None:
        if self._shm_fd is not None:
            os.close(self._shm_fd)
            self._shm_fd = None
        with self._guard:
            self._db.close()


class Catalog:
    """Thin typed access to the catalog database. Not thread-safe: the engine serialises calls."""

    FILE = "catalog.sqlite"

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        uri = f"file:{path}?mode={'ro' if readonly else 'rwc'}"
        self.db = _Connection(path, uri)
        self._identity = _file_identity(path)
        self._has_checksums = False
        self.db.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            self.db.execute("PRAGMA journal_mode = WAL")
            # FULL: a transaction is durable once COMMIT returns, not just consistent.
            self.db.execute("PRAGMA synchronous = FULL")

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def backup_to(self, dest: Path) -> None:
        """Copy the catalog, as committed, to ``dest`` (SQLite's backup API: WAL content included)."""
        self.db.backup(dest)

    def replaced(self) -> bool:
        """True when ``path`` no longer names the file this connection opened (moved or replaced)."""
        return _file_identity(self.path) != self._identity

    @staticmethod
    def inspect(path: Path) -> bool:
        """Check an existing catalog file without writing to it; False when it holds nothing yet.

        Opening a store writes to its catalog (WAL mode, new tables); a file that is not ours must
        be refused before that, or it would be turned into an empty catalog of a store whose
        videos then look unknown. Empty means 0 bytes or an SQLite file without tables: a store
        whose creation was interrupted, or a copy that never finished.

        Raises:
            UnsafePath: the file is a symbolic link, FIFO, device or folder.
            CorruptData: not an SQLite file, or an SQLite file that is not a memvid catalog.
            UnsupportedFormat: a catalog written by a newer format version.
        """
        fd = open_regular(path)
        try:
            head = os.pread(fd, len(SQLITE_MAGIC), 0)
        finally:
            os.close(fd)
        if not head:
            return False
        if head != SQLITE_MAGIC:
            msg = f"{path} is not an SQLite file, so not a memvid catalog. {_RECOVER}"
            raise CorruptData(msg)
        db = _Connection(path, f"file:{path}?mode=ro")
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                return False
            if "meta" not in tables:
                msg = f"{path} is an SQLite database of another program (no `meta` table), not a memvid catalog. {_RECOVER}"
                raise CorruptData(msg)
            row = db.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
        finally:
            db.close()
        _check_format_version(path, row)
        return True

    # -- schema and settings -------------------------------------------------------------

    def create(self, settings: dict[str, Any]) -> None:
        """Create the schema and store the settings, unless a catalog already exists."""
        with self.transaction():
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    self.db.execute(stmt)
            self.db.execute(GARBAGE_SCHEMA)
            if not self.db.execute("SELECT 1 FROM meta WHERE key = 'format_version'").fetchone():
                self.set_meta("format_version", FORMAT_VERSION)
                self.set_meta("generation", 0)
                self.set_meta("next_vector_id", 0)
                self.set_meta("next_seq", 1)
                for key, value in settings.items():
                    self.set_meta(key, value)
            elif not self.db.execute("SELECT 1 FROM checksums LIMIT 1").fetchone():
                self._backfill_checksums()  # a catalog written before row checksums existed
            if self.get_meta("catalog_id") is None:
                self.new_catalog_id()

    def _backfill_checksums(self) -> None:
        for key, value in self.db.execute("SELECT key, value FROM meta").fetchall():
            self.db.execute(
                "INSERT OR REPLACE INTO checksums VALUES ('meta', ?, ?)", (key, _meta_crc(key, value))
            )
        for (seq,) in self.db.execute("SELECT seq FROM segments").fetchall():
            self._checksum_segment(seq)

    def _checksum_segment(self, seq: int) -> None:
        """Record the CRC-32s of a segment's row and frame table, computed from what SQLite stored."""
        row = self.db.execute("SELECT * FROM segments WHERE seq = ?", (seq,)).fetchone()
        frames = self.db.execute(
            "SELECT frame, offset, size, pts, crc32 FROM frames WHERE seq = ? ORDER BY frame", (seq,)
        ).fetchall()
        self.db.executemany(
            "INSERT OR REPLACE INTO checksums (tbl, key, crc32) VALUES (?, ?, ?)",
            [("segments", str(seq), _segment_crc(row)), ("frames", str(seq), _frames_crc(frames))],
        )

    def _checksummed(self) -> bool:
        """True once the catalog has row checksums (then a row without one is damage)."""
        if not self._has_checksums:
            try:
                self._has_checksums = bool(self.db.execute("SELECT 1 FROM checksums LIMIT 1").fetchone())
            except CorruptData as e:
                if "no such table: checksums" not in str(e):
                    raise
        return self._has_checksums

    def check_version(self) -> None:
        """Refuse catalogs from a newer format.

        Raises:
            UnsupportedFormat: written by a newer library version.
            CorruptData: not a memvid catalog.
        """
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
        except CorruptData as e:
            msg = f"{self.path} is not a readable memvid catalog ({e}). {_RECOVER}"
            raise CorruptData(msg) from e
        _check_format_version(self.path, row)
        self.get_meta("format_version")  # now check its checksum

    def _raw_version(self) -> Any:
        """``format_version``, read without its checksum (None when absent or unreadable).

        A newer format may checksum differently, and "upgrade" is the useful answer then.
        """
        row = self.db.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except (ValueError, TypeError, RecursionError):
            return None

    def is_empty(self) -> bool:
        """True while the database has no tables at all (a store being created)."""
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1").fetchone() is None

    def new_catalog_id(self) -> str:
        """Give the catalog a new identity (inside a transaction): ``rebuild`` does, so open handles notice."""
        value = secrets.token_hex(8)
        self.set_meta("catalog_id", value)
        return value

    _META_QUERY = (
        "SELECT m.key, m.value, c.crc32 FROM meta m LEFT JOIN checksums c ON c.tbl = 'meta' AND c.key = m.key"
    )

    def _meta_rows(self, where: str = "", params: Sequence[Any] = ()) -> Iterator[tuple[str, Any]]:
        try:
            rows = self.db.execute(self._META_QUERY + where, params)
        except CorruptData as e:
            if "no such table: checksums" not in str(e):
                raise
            # A catalog written before row checksums existed, opened by a reader: unchecked.
            rows = self.db.execute("SELECT key, value, NULL FROM meta m" + where, params)
        for key, value, crc in rows:
            if not isinstance(key, str) or not isinstance(value, str):
                raise _damaged(f"meta row {key!r:.40}", "holds values of the wrong type")
            if (crc is None and self._checksummed()) or (crc is not None and _meta_crc(key, value) != crc):
                msg = f"Catalog setting {key!r:.60} fails its CRC-32; run `verify`, then `rebuild`."
                raise ChecksumMismatch(msg)
            try:
                parsed = json.loads(value)
            except (ValueError, RecursionError) as e:
                raise _damaged(f"setting {key!r}", "is not JSON") from e
            yield key, _check_setting(key, parsed)

    def get_meta(self, key: str) -> Any:
        """A setting's JSON value, or None (checked against its CRC-32)."""
        for _, value in self._meta_rows(" WHERE m.key = ?", (key,)):
            return value
        return None

    def set_meta(self, key: str, value: Any) -> None:
        """Store a setting as JSON, with its CRC-32."""
        text = json.dumps(value)
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, text))
        self.db.execute(
            "INSERT OR REPLACE INTO checksums (tbl, key, crc32) VALUES ('meta', ?, ?)",
            (key, _meta_crc(key, text)),
        )

    def settings(self) -> dict[str, Any]:
        """All settings."""
        return dict(self._meta_rows())

    def _counter(self, key: str, default: int) -> int:
        value = self.get_meta(key)
        return default if value is None else _int(value, key)

    def generation(self) -> int:
        """A counter bumped by every commit: readers reload when it moves."""
        return self._counter("generation", 0)

    def change_token(self) -> tuple[int, int]:
        """A value that moves whenever anything writes to the catalog; cheaper than ``generation``.

        SQLite's ``data_version`` counts other connections' commits, ``total_changes`` this
        connection's own writes.
        """
        return self.db.change_token()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Run several reads against one committed state (a read transaction); nests in a write."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            if self.db.in_transaction:
                self.db.execute("COMMIT")

    def transaction(self) -> _Transaction:
        """``with catalog.transaction():`` - BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error."""
        return _Transaction(self.db)

    def bump_generation(self) -> int:
        """Advance the generation inside the current transaction."""
        gen = self.generation() + 1
        self.set_meta("generation", gen)
        return gen

    def allocate_vector_ids(self, n: int) -> int:
        """Reserve ``n`` vector ids inside the current transaction; returns the first."""
        first = self._counter("next_vector_id", 0)
        self.set_meta("next_vector_id", first + n)
        return first

    # -- segments and frames ---------------------------------------------------------------

    def next_seq(self) -> int:
        """The sequence number the next segment gets."""
        # Kept in meta, not derived from MAX(seq): compaction drops segments, and a sequence
        # number must never be reused (rebuild replays segments in sequence order).
        return self._counter("next_seq", 1)

    def add_segment(self, seg: SegmentRow, frames: Sequence[tuple[FrameLocation, int]]) -> None:
        """Insert a segment and its frame table, with their CRC-32s (inside a transaction)."""
        values = (
            seg.seq,
            check_name(seg.name),
            seg.kind,
            seg.profile,
            seg.info.codec,
            seg.info.width,
            seg.info.height,
            str(seg.info.time_base),
            seg.info.extradata,
            seg.frame_count,
            seg.dict_frames,
            seg.record_count,
            seg.video_bytes,
            seg.video_sha256,
            seg.index_bytes,
            seg.index_sha256,
            seg.created,
        )
        self.db.execute("INSERT INTO segments VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", values)
        rows = [(n, loc.offset, loc.size, loc.pts, crc) for n, (loc, crc) in enumerate(frames)]
        self.db.executemany("INSERT INTO frames VALUES (?,?,?,?,?,?)", [(seg.seq, *r) for r in rows])
        self._checksum_segment(seg.seq)
        self.set_meta("next_seq", seg.seq + 1)

    def drop_segments(self, seqs: Iterable[int]) -> None:
        """Forget segments and their frames (inside a transaction)."""
        seq_list = [(s,) for s in seqs]
        self.db.executemany("DELETE FROM frames WHERE seq = ?", seq_list)
        self.db.executemany("DELETE FROM segments WHERE seq = ?", seq_list)
        self.db.executemany(
            "DELETE FROM checksums WHERE tbl IN ('segments', 'frames') AND key = ?",
            [(str(s),) for (s,) in seq_list],
        )

    # -- garbage: files a committed state proves unneeded ----------------------------------

    def mark_garbage(self, names: Iterable[str], state: str) -> None:
        """Record segment names as ``pending`` (a write about to publish them) or ``dropped``.

        Inside a transaction. The table is created here too: a handle that opened the store while
        an older library held the lock may write before any migration ran.
        """
        self.db.execute(GARBAGE_SCHEMA)
        self.db.executemany(
            "INSERT OR REPLACE INTO garbage (name, state, crc32) VALUES (?, ?, ?)",
            [(check_name(n), state, _meta_crc(n, state)) for n in names],
        )

    def forget_garbage(self, names: Iterable[str]) -> None:
        """Remove garbage rows: their files were deleted, or a write committed them."""
        if self._has_garbage_table():
            self.db.executemany("DELETE FROM garbage WHERE name = ?", [(n,) for n in names])

    def garbage(self) -> dict[str, str]:
        """Segment name -> ``pending`` or ``dropped``; every row checked, names made safe.

        Raises:
            ChecksumMismatch: a row fails its CRC-32 (then nothing is deleted on its word).
        """
        if not self._has_garbage_table():
            return {}
        out = {}
        for name, state, crc in self.db.execute("SELECT name, state, crc32 FROM garbage").fetchall():
            if not isinstance(name, str) or state not in ("pending", "dropped") or _meta_crc(name, state) != crc:
                msg = f"Catalog garbage row {name!r:.60} fails its check; run `verify`, then `rebuild`."
                raise ChecksumMismatch(msg)
            out[check_name(name)] = state
        return out

    def _has_garbage_table(self) -> bool:
        row = self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'garbage'")
        return row.fetchone() is not None

    def _checksums(self, table: str) -> dict[str, int]:
        try:
            rows = self.db.execute("SELECT key, crc32 FROM checksums WHERE tbl = ?", (table,)).fetchall()
        except CorruptData as e:
            if "no such table: checksums" not in str(e):
                raise
            return {}  # a catalog from before row checksums, opened by a reader: unchecked
        return {str(k): c for k, c in rows}

    def segments(self) -> list[SegmentRow]:
        """All segments in sequence order, each checked against its CRC-32 and sane bounds."""
        crcs = self._checksums("segments")
        out = []
        for r in self.db.execute("SELECT * FROM segments ORDER BY seq").fetchall():
            crc = crcs.get(str(r[0]))
            if (crc is None and self._checksummed()) or (crc is not None and _segment_crc(r) != crc):
                msg = f"Catalog row of segment {r[0]!r} fails its CRC-32; run `verify`, then `rebuild`."
                raise ChecksumMismatch(msg)
            out.append(_segment_row(r))
        return out

    def frames(self, seq: int, first: int, count: int) -> list[tuple[FrameLocation, int]]:
        """Locations and packet CRC-32s of ``count`` frames starting at ``first``."""
        rows = self.db.execute(
            "SELECT frame, offset, size, pts, crc32 FROM frames WHERE seq = ? AND frame >= ? AND frame < ? ORDER BY frame",
            (seq, first, first + count),
        ).fetchall()
        if len(rows) != count:
            msg = f"Catalog lists {len(rows)} of frames {first}..{first + count - 1} of segment {seq}."
            raise CorruptData(msg)
        where = f"frame row of segment {seq}"
        return [
            (
                FrameLocation(
                    _int(r[1], where, 0, MAX_FILE_BYTES),
                    _int(r[2], where, 1, MAX_PACKET_BYTES),
                    _int(r[3], where, -(1 << 62)),
                ),
                _int(r[4], where, 0, 0xFFFFFFFF),
            )
            for r in rows
        ]

    def frames_problem(self, seq: int) -> str | None:
        """Why the frame table of segment ``seq`` fails its CRC-32, or None when it holds."""
        crc = self._checksums("frames").get(str(seq))
        rows = self.db.execute(
            "SELECT frame, offset, size, pts, crc32 FROM frames WHERE seq = ? ORDER BY frame", (seq,)
        ).fetchall()
        if crc is not None and _frames_crc(rows) != crc:
            return f"the catalog's frame table of segment {seq} fails its CRC-32"
        return None

    def integrity_problems(self) -> list[str]:
        """Whole-catalog checks for ``verify``; one message per problem found.

        SQLite's own structural check (b-trees, indexes, UNIQUE constraints); the schema of this
        format's tables, as SQLite stores it, against ``SCHEMA``; and checksum coverage (a row
        without a checksum, or a checksum without a row).
        """
        problems: list[str] = []
        try:
            problems += [str(r[0]) for r in self.db.execute("PRAGMA integrity_check") if r[0] != "ok"]
            stored = {
                str(name).lower(): (name, str(table), " ".join(str(sql).split()))
                for name, table, sql in self.db.execute(
                    "SELECT name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL"
                )
            }
            for stmt in SCHEMA.split(";"):
                words = stmt.replace("IF NOT EXISTS ", "").split()
                if not words:
                    continue
                table = words[words.index("ON") + 1] if words[1] == "INDEX" else words[2]
                if stored.get(words[2]) != (words[2], table, " ".join(words)):
                    problems.append(f"the schema of {words[2]} is missing or not this format's")
            if self._checksummed():
                expected = {("meta", k) for (k,) in self.db.execute("SELECT key FROM meta")}
                expected |= {
                    (t, str(s))
                    for (s,) in self.db.execute("SELECT seq FROM segments")
                    for t in ("segments", "frames")
                }
                have = {(t, str(k)) for t, k in self.db.execute("SELECT tbl, key FROM checksums")}
                problems += [f"{t} row {k!r:.60} has no checksum" for t, k in sorted(expected - have)]
                problems += [
                    f"checksum for {t} row {k!r:.60}, which does not exist"
                    for t, k in sorted(have - expected)
                ]
        except MemvidError as e:
            problems.append(str(e))
        return problems

    # -- records ----------------------------------------------------------------------------

    def put_records(self, rows: Sequence[RecordRow]) -> list[int]:
        """Insert or replace records (inside a transaction); returns replaced vector ids."""
        replaced = self.vector_ids([r.id for r in rows])
        self.db.executemany("DELETE FROM records WHERE id = ?", [(r.id,) for r in rows])
        values = []
        for r in rows:
            meta = json.dumps(r.metadata, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
            crc = _row_crc(r.id, r.vector_id, r.seq, r.first_frame, r.frame_count, r.slot, r.text_bytes, meta)
            values.append(
                (r.id, r.vector_id, r.seq, r.first_frame, r.frame_count, r.slot, r.text_bytes, meta, crc)
            )
        self.db.executemany("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?)", values)
        return list(replaced.values())

    def delete_records(self, ids: Sequence[str]) -> dict[str, int]:
        """Delete records (inside a transaction); returns {id: vector_id} of those that existed."""
        found = self.vector_ids(ids)
        self.db.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in found])
        return found

    def vector_ids(self, ids: Sequence[str]) -> dict[str, int]:
        """{id: vector_id} for the ids that are live."""
        out: dict[str, int] = {}
        for chunk in _chunks(list(dict.fromkeys(ids)), 500):
            marks = ",".join("?" * len(chunk))
            out.update(
                self.db.execute(f"SELECT id, vector_id FROM records WHERE id IN ({marks})", chunk).fetchall()
            )
        return out

    def records(self, ids: Sequence[str]) -> dict[str, RecordRow]:
        """Rows of the live records among ``ids``, checked against their row CRC."""
        out: dict[str, RecordRow] = {}
        for chunk in _chunks(list(dict.fromkeys(ids)), 500):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT * FROM records WHERE id IN ({marks})"
            try:
                rows = list(map(_record_row, self.db.execute(query, chunk)))
                asked = set(chunk)
                stray = [row.id for row in rows if row.id not in asked]
                if stray:  # a damaged index led the lookup to another record's row
                    msg = f"The catalog's index returned the row of record {stray[0]!r} for another id; run `verify`, then `rebuild`."
                    raise CorruptData(msg)
            except CorruptData as e:
                msg = f"{e} (reading the rows of records {', '.join(map(repr, chunk[:5]))})"
                raise type(e)(msg) from e
            out.update((row.id, row) for row in rows)
        return out

    def records_by_vector_ids(self, vector_ids: Sequence[int]) -> dict[int, RecordRow]:
        """Rows of live records by vector id."""
        out: dict[int, RecordRow] = {}
        for chunk in _chunks(list(vector_ids), 500):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT * FROM records WHERE vector_id IN ({marks})"
            out.update((row.vector_id, row) for row in map(_record_row, self.db.execute(query, chunk)))
        return out

    def record_ids_after(self, vector_id: int) -> list[tuple[int, str]]:
        """(vector_id, id) of the live records whose vector id is above ``vector_id``, ascending.

        Rows are checked against their CRC-32, but their metadata is not parsed: this feeds the
        in-memory id map of ids-only search, where a million rows must load in seconds.
        """
        out = []
        for r in self.db.execute(
            "SELECT * FROM records WHERE vector_id > ? ORDER BY vector_id", (vector_id,)
        ):
            _check_row_crc(r)
            if not isinstance(r[0], str):
                raise _damaged(f"row of record {r[0]!r:.80}", "holds values of the wrong type")
            out.append((_int(r[1], f"row of record {r[0]!r:.80}"), r[0]))
        return out

    def iter_records(self) -> Iterator[RecordRow]:
        """Every live record in storage order (segment, frame, slot): the order reads are cheapest."""
        yield from map(_record_row, self.db.execute("SELECT * FROM records ORDER BY seq, first_frame, slot"))

    def iter_metadata(self) -> Iterator[tuple[int, str]]:
        """(vector_id, metadata JSON) of every live record, for filtering; rows are CRC-checked."""
        for r in self.db.execute("SELECT * FROM records"):
            row = _record_row(r)
            yield row.vector_id, r[7]

    def live_vector_ids(self) -> list[int]:
        """Vector ids of all live records."""
        ids = [r[0] for r in self.db.execute("SELECT vector_id FROM records")]
        if not all(type(i) is int for i in ids):  # a damaged row: find it for the message
            bad = next(i for i in ids if type(i) is not int)
            raise _damaged("vector_id of a record", f"holds {bad!r:.40}, not an integer")
        return ids

    def count(self) -> int:
        """Number of live records."""
        return int(self.db.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def stats(self) -> dict[str, int]:
        """Totals for ``info``: live records, their text bytes, segments, frames, video bytes."""
        records, text = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(text_bytes), 0) FROM records"
        ).fetchone()
        segs, video, index = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(video_bytes), 0), COALESCE(SUM(index_bytes), 0) FROM segments"
        ).fetchone()
        frames = self.db.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
        return {
            "records": records,
            "text_bytes": text,
            "segments": segs,
            "frames": frames,
            "video_bytes": video,
            "index_bytes": index,
        }


def _check_row_crc(r: Sequence[Any]) -> None:
    if len(r) != 9 or _row_crc(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]) != r[8]:
        msg = f"Catalog row of record {r[0]!r:.80} fails its CRC-32; run `verify`, then `rebuild`."
        raise ChecksumMismatch(msg)


def _record_row(r: Sequence[Any]) -> RecordRow:
    _check_row_crc(r)
    where = f"row of record {r[0]!r:.80}"
    # The CRC covers the decimal text of each field, so a row can pass it with a TEXT "5" where an
    # INTEGER belongs: check the types as well.
    if not isinstance(r[0], str) or not isinstance(r[7], str):
        raise _damaged(where, "holds values of the wrong type")
    vector_id, seq = _int(r[1], where), _int(r[2], where)
    first, count = _int(r[3], where, 0, MAX_SEGMENT_FRAMES), _int(r[4], where, 1, MAX_PACK_PARTS)
    slot, size = _int(r[5], where, 0, 1 << 32), _int(r[6], where, 0, MAX_TEXT_BYTES)
    try:
        metadata = json.loads(r[7])
    except (ValueError, RecursionError) as e:
        raise _damaged(f"metadata of record {r[0]!r:.80}", "is not JSON") from e
    if not isinstance(metadata, dict):
        raise _damaged(f"metadata of record {r[0]!r:.80}", "is not a JSON object")
    return RecordRow(r[0], vector_id, seq, first, count, slot, size, metadata)


def _segment_row(r: Sequence[Any]) -> SegmentRow:
    """A ``segments`` row, type- and range-checked (a crafted catalog must not reach a decoder)."""
    where = f"row of segment {r[0]!r:.40}"
    seq = _int(r[0], where)
    if len(r) != 17 or r[2] not in ("records", "tombstones") or not isinstance(r[3], str):
        raise _damaged(where, "holds values of the wrong type")
    if r[4] not in CODECS:
        msg = f"Catalog {where} asks for the codec {r[4]!r:.40}; stores use only {list(CODECS)}. Refusing it."
        raise UnsupportedFormat(msg)
    if not isinstance(r[8], bytes) or not all(isinstance(r[i], str) for i in (7, 13, 15)):
        raise _damaged(where, "holds values of the wrong type")
    try:
        time_base = Fraction(r[7])
    except (ValueError, ZeroDivisionError) as e:
        raise _damaged(where, f"has the time base {r[7]!r:.40}") from e
    if time_base <= 0 or not isinstance(r[16], (int, float)):
        raise _damaged(where, "holds values of the wrong type")
    frame_count = _int(r[9], where, 1, MAX_SEGMENT_FRAMES)
    return SegmentRow(
        seq=seq,
        name=check_name(r[1]),
        kind=r[2],
        profile=r[3],
        info=VideoInfo(
            codec=r[4],
            width=_int(r[5], where, 1, MAX_FRAME_SIDE),
            height=_int(r[6], where, 1, MAX_FRAME_SIDE),
            time_base=time_base,
            extradata=r[8],
        ),
        frame_count=frame_count,
        dict_frames=_int(r[10], where, 0, frame_count - 1),
        record_count=_int(r[11], where),
        video_bytes=_int(r[12], where, 0, MAX_FILE_BYTES),
        video_sha256=r[13],
        index_bytes=_int(r[14], where, 0, MAX_FILE_BYTES),
        index_sha256=r[15],
        created=float(r[16]),
    )


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class _Transaction:
    """BEGIN IMMEDIATE takes SQLite's write lock up front, so a commit never fails half-way."""

    def __init__(self, db: _Connection) -> None:
        self.db = db
        self.outer = False

    def __enter__(self) -> None:
        self.outer = not self.db.in_transaction
        if self.outer:
            self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self.outer:
            return
        if exc_type is None:
            self.db.execute("COMMIT")
        elif self.db.in_transaction:
            # SQLite rolls back by itself on some errors (a full disk); and a failed ROLLBACK
            # must not hide the error that caused it.
            with suppress(MemvidError):
                self.db.execute("ROLLBACK")
