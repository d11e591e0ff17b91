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

import json
import os
import secrets
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from langchain_memvid.engine.catalog.db import Connection, Transaction
from langchain_memvid.engine.catalog.rows import (
    MAX_FILE_BYTES,
    MAX_PACKET_BYTES,
    RecordRow,
    SegmentRow,
    check_name,
    check_row_crc,
    check_setting,
    checked_int,
    damaged,
    dead_crc,
    frames_crc,
    meta_crc,
    record_row,
    row_crc,
    segment_crc,
    segment_row,
)
from langchain_memvid.engine.codec.frames import COMPACT_VECTORS_VERSION, STORE_FORMAT_VERSION
from langchain_memvid.engine.codec.video import FrameLocation
from langchain_memvid.engine.errors import (
    ChecksumMismatch,
    CorruptData,
    MemvidError,
    UnsupportedFormat,
)
from langchain_memvid.engine.files import open_regular

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
# Vector ids still in live segments' vector files whose records were deleted or replaced (a
# deletion list, as Lucene and Lance keep): a reader excludes them without reading the id of every
# live record. Complete while meta.dead_vectors equals meta.generation: every commit of this
# version moves both, so a commit by a library that does not know the list makes it stale, and
# readers then fall back to reading every live id (until a writer lists them again).
DEAD_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_vectors (
    vector_id INTEGER PRIMARY KEY,
    seq       INTEGER NOT NULL,
    crc32     INTEGER NOT NULL
)
"""
# One lexicon per records segment (BM25 terms and counts of its records, search/lexicon.py),
# written in the transaction that adds the segment. A records segment without a row was written
# by a library that kept none: lexical search then asks for ``build_lexicons``.
LEXICON_SCHEMA = """
CREATE TABLE IF NOT EXISTS lexicon (
    seq   INTEGER PRIMARY KEY,
    data  BLOB NOT NULL,
    crc32 INTEGER NOT NULL
)
"""
SQLITE_MAGIC = b"SQLite format 3\x00"


_RECOVER = (
    "The videos in segments/ are untouched: move this file aside and run `lcmemvid rebuild STORE` "
    "to recreate the catalog from them."
)


def format_for(encoding: str | None) -> int:
    """The store format version that vector files in ``encoding`` need.

    >>> format_for("float32"), format_for(None), format_for("int8")
    (1, 1, 2)
    """
    return 1 if encoding in (None, "float32") else COMPACT_VECTORS_VERSION


def _check_format_version(path: Path, row: Sequence[Any] | None) -> None:
    """Refuse a catalog without a format version, or with a newer one (before any bounds check)."""
    version: Any = None
    if row is not None:
        try:
            version = json.loads(row[0])
        except (ValueError, TypeError, RecursionError):
            version = None
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        msg = (
            f"{path} has no valid format version ({version!r:.40}), so it is not a memvid catalog. {_RECOVER}"
        )
        raise CorruptData(msg)
    if version > STORE_FORMAT_VERSION:
        msg = f"The store at {path.parent} uses format version {version}; this library reads up to {STORE_FORMAT_VERSION}. Upgrade langchain-qrvideo (the langchain_memvid package); nothing was changed."
        raise UnsupportedFormat(msg)


def _file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``, or None when it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class Catalog:
    """Thin typed access to the catalog database. Not thread-safe: the engine serialises calls."""

    FILE = "catalog.sqlite"

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        uri = f"file:{path}?mode={'ro' if readonly else 'rwc'}"
        self.db = Connection(path, uri)
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
        db = Connection(path, f"file:{path}?mode=ro")
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
        """Create the schema and store the settings, unless a catalog already exists.

        The format version is 1 unless the settings keep vectors in a compact encoding (2).
        """
        with self.transaction():
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    self.db.execute(stmt)
            self.db.execute(GARBAGE_SCHEMA)
            self.db.execute(DEAD_SCHEMA)
            self.db.execute(LEXICON_SCHEMA)
            if not self.db.execute("SELECT 1 FROM meta WHERE key = 'format_version'").fetchone():
                self.set_meta("format_version", format_for(settings.get("vector_encoding")))
                self.set_meta("generation", 0)
                self.set_meta("dead_vectors", 0)  # complete: no vectors yet
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
                "INSERT OR REPLACE INTO checksums VALUES ('meta', ?, ?)", (key, meta_crc(key, value))
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
            [("segments", str(seq), segment_crc(row)), ("frames", str(seq), frames_crc(frames))],
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

    def set_vector_encoding(self, encoding: str) -> None:
        """Record the encoding new segments use, and the format version its files need.

        Inside a transaction.
        """
        self.set_meta("vector_encoding", encoding)
        self.require_format(encoding)

    def require_format(self, encoding: str) -> None:
        """Raise the store's format version to what vectors in ``encoding`` need (in a transaction).

        A library that reads only version 1 then refuses the store with "upgrade", instead of
        failing on a vector file it does not know.
        """
        need = format_for(encoding)
        if need > self._counter("format_version", 1):
            self.set_meta("format_version", need)

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

    def raw_version(self) -> Any:
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
                raise damaged(f"meta row {key!r:.40}", "holds values of the wrong type")
            if (crc is None and self._checksummed()) or (crc is not None and meta_crc(key, value) != crc):
                msg = f"Catalog setting {key!r:.60} fails its CRC-32; run `verify`, then `rebuild`."
                raise ChecksumMismatch(msg)
            try:
                parsed = json.loads(value)
            except (ValueError, RecursionError) as e:
                raise damaged(f"setting {key!r}", "is not JSON") from e
            yield key, check_setting(key, parsed)

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
            (key, meta_crc(key, text)),
        )

    def settings(self) -> dict[str, Any]:
        """All settings."""
        return dict(self._meta_rows())

    def _counter(self, key: str, default: int) -> int:
        value = self.get_meta(key)
        return default if value is None else checked_int(value, key)

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

    def transaction(self) -> Transaction:
        """``with catalog.transaction():`` - BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error."""
        return Transaction(self.db)

    def bump_generation(self) -> int:
        """Advance the generation inside the current transaction (and the dead list's mark)."""
        listed = self._dead_listed()
        gen = self.generation() + 1
        self.set_meta("generation", gen)
        if listed:
            self.set_meta("dead_vectors", gen)
        return gen

    # -- the dead-vector list ----------------------------------------------------------------

    def _dead_listed(self) -> bool:
        """Whether ``dead_vectors`` is complete for the current state."""
        try:
            return self.get_meta("dead_vectors") == self.generation()
        except MemvidError:
            return False

    def dead_vector_ids(self) -> np.ndarray | None:
        """Vector ids in live segments' files whose records are gone, ascending; None if not listed.

        None also when a row fails its CRC-32 (``verify`` reports it): the caller then reads
        every live id instead, which needs no list.
        """
        if not self._dead_listed():
            return None
        rows = self.db.execute("SELECT vector_id, seq, crc32 FROM dead_vectors ORDER BY vector_id").fetchall()
        if any(type(v) is not int or type(s) is not int or dead_crc(v, s) != c for v, s, c in rows):
            return None
        return np.array([r[0] for r in rows], dtype=np.int64)

    def _note_dead(self, gone: Iterable[tuple[int, int]]) -> None:
        """List (vector_id, seq) pairs whose records left the store (inside a transaction)."""
        if self._dead_listed():
            self.db.executemany(
                "INSERT OR REPLACE INTO dead_vectors VALUES (?, ?, ?)",
                [(v, s, dead_crc(v, s)) for v, s in gone],
            )

    def list_dead(self, files: Mapping[int, np.ndarray]) -> None:
        """Make the list complete from the live segments' vector ids (seq -> ids in its file).

        Inside a transaction: what a writer runs once on a catalog whose list is missing or stale
        (a store from 0.1, or written since by a library that did not keep it).
        """
        self.db.execute(DEAD_SCHEMA)
        self.db.execute("DELETE FROM dead_vectors")
        self.db.executemany(
            "INSERT OR REPLACE INTO dead_vectors VALUES (?, ?, ?)",
            [(v, seq, dead_crc(v, seq)) for v, seq in self._dead_in(files)],
        )
        self.set_meta("dead_vectors", self.generation())

    def _dead_in(self, files: Mapping[int, np.ndarray]) -> set[tuple[int, int]]:
        """(vector_id, seq) of the ids in the live segments' files whose records are gone."""
        live = self.live_vector_ids()
        return {(int(v), seq) for seq, ids in files.items() for v in np.setdiff1d(ids, live)}

    def dead_list_problems(self, files: Mapping[int, np.ndarray]) -> list[str]:
        """What is wrong with the list against the live segments' vector ids (for ``verify``)."""
        if not self._dead_listed():
            return []
        rows = self.db.execute("SELECT vector_id, seq, crc32 FROM dead_vectors").fetchall()
        problems = [f"dead_vectors row {v!r:.30} fails its CRC-32" for v, s, c in rows if dead_crc(v, s) != c]
        listed = {(v, s) for v, s, _ in rows}
        want = self._dead_in(files)
        if listed != want:
            problems.append(
                f"the dead-vector list differs from the vector files: {len(want - listed)} missing, "
                f"{len(listed - want)} extra"
            )
        return problems

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
        if self._dead_listed():
            self.db.executemany("DELETE FROM dead_vectors WHERE seq = ?", seq_list)
        if self._has_table("lexicon"):
            self.db.executemany("DELETE FROM lexicon WHERE seq = ?", seq_list)
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
            [(check_name(n), state, meta_crc(n, state)) for n in names],
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
            if (
                not isinstance(name, str)
                or state not in ("pending", "dropped")
                or meta_crc(name, state) != crc
            ):
                msg = f"Catalog garbage row {name!r:.60} fails its check; run `verify`, then `rebuild`."
                raise ChecksumMismatch(msg)
            out[check_name(name)] = state
        return out

    def _has_garbage_table(self) -> bool:
        return self._has_table("garbage")

    def _has_table(self, name: str) -> bool:
        row = self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return row.fetchone() is not None

    # -- lexicons: the lexical index, one per records segment --------------------------------

    def put_lexicon(self, seq: int, data: bytes) -> None:
        """Store segment ``seq``'s lexicon with its CRC-32 (inside a transaction)."""
        self.db.execute(LEXICON_SCHEMA)
        self.db.execute("INSERT OR REPLACE INTO lexicon VALUES (?, ?, ?)", (seq, data, zlib.crc32(data)))

    def lexicons(self, seqs: Sequence[int]) -> dict[int, bytes]:
        """The stored lexicons of segments ``seqs`` (those that have one), each checked.

        Raises:
            ChecksumMismatch: a lexicon fails its CRC-32.
        """
        if not seqs or not self._has_table("lexicon"):
            return {}
        out = {}
        for batch in _chunks(list(seqs), 500):
            marks = ",".join("?" * len(batch))
            for seq, data, crc in self.db.execute(
                f"SELECT seq, CAST(data AS BLOB), crc32 FROM lexicon WHERE seq IN ({marks})", batch
            ):
                if not isinstance(data, bytes) or zlib.crc32(data) != crc:
                    msg = f"The catalog's lexicon of segment {seq} fails its CRC-32. {_RECOVER}"
                    raise ChecksumMismatch(msg)
                out[int(seq)] = data
        return out

    def without_lexicon(self) -> list[int]:
        """Records segments that have no lexicon (written by a library that kept none)."""
        if not self._has_table("lexicon"):
            return [s for (s,) in self.db.execute("SELECT seq FROM segments WHERE kind = 'records'")]
        return [
            s
            for (s,) in self.db.execute(
                "SELECT seq FROM segments WHERE kind = 'records' "
                "AND seq NOT IN (SELECT seq FROM lexicon) ORDER BY seq"
            )
        ]

    def prune_lexicons(self) -> None:
        """Forget lexicons of segments no longer live (left by a library that kept none)."""
        if self._has_table("lexicon"):
            self.db.execute("DELETE FROM lexicon WHERE seq NOT IN (SELECT seq FROM segments)")

    def lexicon_bytes(self) -> int:
        """Bytes the live segments' lexicons take (compressed, as stored)."""
        if not self._has_table("lexicon"):
            return 0
        row = self.db.execute(
            "SELECT COALESCE(SUM(length(data)), 0) FROM lexicon WHERE seq IN (SELECT seq FROM segments)"
        ).fetchone()
        return int(row[0])

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
            if (crc is None and self._checksummed()) or (crc is not None and segment_crc(r) != crc):
                msg = f"Catalog row of segment {r[0]!r} fails its CRC-32; run `verify`, then `rebuild`."
                raise ChecksumMismatch(msg)
            out.append(segment_row(r))
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
                    checked_int(r[1], where, 0, MAX_FILE_BYTES),
                    checked_int(r[2], where, 1, MAX_PACKET_BYTES),
                    checked_int(r[3], where, -(1 << 62)),
                ),
                checked_int(r[4], where, 0, 0xFFFFFFFF),
            )
            for r in rows
        ]

    def frames_problem(self, seq: int) -> str | None:
        """Why the frame table of segment ``seq`` fails its CRC-32, or None when it holds."""
        crc = self._checksums("frames").get(str(seq))
        rows = self.db.execute(
            "SELECT frame, offset, size, pts, crc32 FROM frames WHERE seq = ? ORDER BY frame", (seq,)
        ).fetchall()
        if crc is not None and frames_crc(rows) != crc:
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
        placed = self._placed([r.id for r in rows])
        replaced = {i: v for i, (v, _) in placed.items()}
        kept = {r.vector_id for r in rows}  # compaction moves records, keeping their vector ids
        self._note_dead(p for p in placed.values() if p[0] not in kept)
        self.db.executemany("DELETE FROM records WHERE id = ?", [(r.id,) for r in rows])
        values = []
        for r in rows:
            meta = json.dumps(r.metadata, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
            crc = row_crc(r.id, r.vector_id, r.seq, r.first_frame, r.frame_count, r.slot, r.text_bytes, meta)
            values.append(
                (r.id, r.vector_id, r.seq, r.first_frame, r.frame_count, r.slot, r.text_bytes, meta, crc)
            )
        self.db.executemany("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?)", values)
        return list(replaced.values())

    def delete_records(self, ids: Sequence[str]) -> dict[str, int]:
        """Delete records (inside a transaction); returns {id: vector_id} of those that existed."""
        placed = self._placed(ids)
        self._note_dead(placed.values())
        self.db.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in placed])
        return {i: v for i, (v, _) in placed.items()}

    def _placed(self, ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """{id: (vector_id, seq)} for the ids that are live."""
        out: dict[str, tuple[int, int]] = {}
        for chunk in _chunks(list(dict.fromkeys(ids)), 500):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT id, vector_id, seq FROM records WHERE id IN ({marks})"
            out.update((i, (v, s)) for i, v, s in self.db.execute(query, chunk).fetchall())
        return out

    def vector_ids(self, ids: Sequence[str]) -> dict[str, int]:
        """{id: vector_id} for the ids that are live."""
        return {i: v for i, (v, _) in self._placed(ids).items()}

    def records(self, ids: Sequence[str]) -> dict[str, RecordRow]:
        """Rows of the live records among ``ids``, checked against their row CRC."""
        out: dict[str, RecordRow] = {}
        for chunk in _chunks(list(dict.fromkeys(ids)), 500):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT * FROM records WHERE id IN ({marks})"
            try:
                rows = list(map(record_row, self.db.execute(query, chunk)))
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

    def check_records(self) -> Iterator[tuple[str, RecordRow | None, MemvidError | None]]:
        """Every ``records`` row in storage order, checked one by one: (id, row, None) or (id, None, error).

        For ``verify``, which reports a damaged row and goes on with the others.
        """
        for raw in self.db.execute("SELECT * FROM records ORDER BY seq, first_frame, slot"):
            rid = raw[0] if isinstance(raw[0], str) else repr(raw[0])
            try:
                yield rid, record_row(raw), None
            except MemvidError as e:
                yield rid, None, e

    def records_by_vector_ids(self, vector_ids: Sequence[int]) -> dict[int, RecordRow]:
        """Rows of live records by vector id."""
        out: dict[int, RecordRow] = {}
        for chunk in _chunks(list(vector_ids), 500):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT * FROM records WHERE vector_id IN ({marks})"
            out.update((row.vector_id, row) for row in map(record_row, self.db.execute(query, chunk)))
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
            check_row_crc(r)
            if not isinstance(r[0], str):
                raise damaged(f"row of record {r[0]!r:.80}", "holds values of the wrong type")
            out.append((checked_int(r[1], f"row of record {r[0]!r:.80}"), r[0]))
        return out

    def iter_records(self) -> Iterator[RecordRow]:
        """Every live record in storage order (segment, frame, slot): the order reads are cheapest."""
        yield from map(record_row, self.db.execute("SELECT * FROM records ORDER BY seq, first_frame, slot"))

    def iter_metadata(self) -> Iterator[tuple[int, str]]:
        """(vector_id, metadata JSON) of every live record, for filtering; rows are CRC-checked."""
        for r in self.db.execute("SELECT * FROM records"):
            row = record_row(r)
            yield row.vector_id, r[7]

    def live_vector_ids(self) -> np.ndarray:
        """Vector ids of all live records, ascending.

        Read as one string from the covering index of ``vector_id`` (no Python object per
        record: half the time of a row-by-row read at 100,000 records).
        """
        joined, bad = self.db.execute(
            "SELECT group_concat(vector_id), sum(typeof(vector_id) != 'integer') "
            "FROM (SELECT vector_id FROM records ORDER BY vector_id)"
        ).fetchone()
        if bad:  # a damaged row: find it for the message
            row = self.db.execute(
                "SELECT vector_id FROM records WHERE typeof(vector_id) != 'integer'"
            ).fetchone()
            raise damaged("vector_id of a record", f"holds {row[0]!r:.40}, not an integer")
        return np.fromstring(joined, dtype=np.int64, sep=",") if joined else np.zeros(0, np.int64)

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


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
