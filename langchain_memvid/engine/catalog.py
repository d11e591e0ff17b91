"""The catalog: one SQLite file that says which segments, frames and records are live.

The catalog is the single source of truth for what is visible. A write becomes visible in one
SQLite transaction, after its segment files are durable on disk; a crash before that commit leaves
only unreferenced files, which the next writer deletes. It holds ids, frame offsets, metadata (for
filtering) and checksums - never record text. WAL mode lets readers in other processes see the last
committed state while a writer works.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import ChecksumMismatch, CorruptData, UnsafePath, UnsupportedFormat
from .frames import FORMAT_VERSION
from .video import FrameLocation, VideoInfo

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
"""


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
    if not name or len(name) > 64 or any(c not in "0123456789abcdef-" for c in name):
        msg = f"Catalog names the segment {name!r}, which is not a plain segment name; refusing it."
        raise UnsafePath(msg)
    return name


class Catalog:
    """Thin typed access to the catalog database. Not thread-safe: the engine serialises calls."""

    FILE = "catalog.sqlite"

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        uri = f"file:{path}?mode={'ro' if readonly else 'rwc'}"
        self.db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            self.db.execute("PRAGMA journal_mode = WAL")
            # FULL: a transaction is durable once COMMIT returns, not just consistent.
            self.db.execute("PRAGMA synchronous = FULL")

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    # -- schema and settings -------------------------------------------------------------

    def create(self, settings: dict[str, Any]) -> None:
        """Create the schema and store the settings, unless a catalog already exists."""
        with self.transaction():
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    self.db.execute(stmt)
            if self.get_meta("format_version") is None:
                self.set_meta("format_version", FORMAT_VERSION)
                self.set_meta("generation", 0)
                self.set_meta("next_vector_id", 0)
                self.set_meta("next_seq", 1)
                for key, value in settings.items():
                    self.set_meta(key, value)

    def check_version(self) -> None:
        """Refuse catalogs from a newer format.

        Raises:
            UnsupportedFormat: written by a newer library version.
            CorruptData: not a memvid catalog.
        """
        try:
            version = self.get_meta("format_version")
        except sqlite3.DatabaseError as e:
            msg = f"{self.path} is not a readable memvid catalog ({e}); run `rebuild` to recreate it from the videos."
            raise CorruptData(msg) from e
        if version is None:
            msg = f"{self.path} has no format version: not a memvid catalog."
            raise CorruptData(msg)
        if int(version) > FORMAT_VERSION:
            msg = f"The store uses format version {version}; this library reads up to {FORMAT_VERSION}. Upgrade langchain-memvid."
            raise UnsupportedFormat(msg)

    def get_meta(self, key: str) -> Any:
        """A setting's JSON value, or None."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        """Store a setting as JSON."""
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def settings(self) -> dict[str, Any]:
        """All settings."""
        return {k: json.loads(v) for k, v in self.db.execute("SELECT key, value FROM meta")}

    def generation(self) -> int:
        """A counter bumped by every commit: readers reload when it moves."""
        return int(self.get_meta("generation") or 0)

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
        first = int(self.get_meta("next_vector_id") or 0)
        self.set_meta("next_vector_id", first + n)
        return first

    # -- segments and frames ---------------------------------------------------------------

    def next_seq(self) -> int:
        """The sequence number the next segment gets."""
        # Kept in meta, not derived from MAX(seq): compaction drops segments, and a sequence
        # number must never be reused (rebuild replays segments in sequence order).
        return int(self.get_meta("next_seq") or 1)

    def add_segment(self, seg: SegmentRow, frames: Sequence[tuple[FrameLocation, int]]) -> None:
        """Insert a segment and its frame table (inside a transaction)."""
        self.db.execute(
            "INSERT INTO segments VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
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
            ),
        )
        self.db.executemany(
            "INSERT INTO frames VALUES (?,?,?,?,?,?)",
            [(seg.seq, n, loc.offset, loc.size, loc.pts, crc) for n, (loc, crc) in enumerate(frames)],
        )
        self.set_meta("next_seq", seg.seq + 1)

    def drop_segments(self, seqs: Iterable[int]) -> None:
        """Forget segments and their frames (inside a transaction)."""
        seq_list = [(s,) for s in seqs]
        self.db.executemany("DELETE FROM frames WHERE seq = ?", seq_list)
        self.db.executemany("DELETE FROM segments WHERE seq = ?", seq_list)

    def segments(self) -> list[SegmentRow]:
        """All segments in sequence order."""
        rows = self.db.execute("SELECT * FROM segments ORDER BY seq").fetchall()
        return [
            SegmentRow(
                seq=r[0],
                name=check_name(r[1]),
                kind=r[2],
                profile=r[3],
                info=VideoInfo(
                    codec=r[4], width=r[5], height=r[6], time_base=Fraction(r[7]), extradata=bytes(r[8])
                ),
                frame_count=r[9],
                dict_frames=r[10],
                record_count=r[11],
                video_bytes=r[12],
                video_sha256=r[13],
                index_bytes=r[14],
                index_sha256=r[15],
                created=r[16],
            )
            for r in rows
        ]

    def frames(self, seq: int, first: int, count: int) -> list[tuple[FrameLocation, int]]:
        """Locations and packet CRC-32s of ``count`` frames starting at ``first``."""
        rows = self.db.execute(
            "SELECT frame, offset, size, pts, crc32 FROM frames WHERE seq = ? AND frame >= ? AND frame < ? ORDER BY frame",
            (seq, first, first + count),
        ).fetchall()
        if len(rows) != count:
            msg = f"Catalog lists {len(rows)} of frames {first}..{first + count - 1} of segment {seq}."
            raise CorruptData(msg)
        return [(FrameLocation(r[1], r[2], r[3]), r[4]) for r in rows]

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
            out.update((row.id, row) for row in map(_record_row, self.db.execute(query, chunk)))
        return out

    def records_by_vector_ids(self, vector_ids: Sequence[int]) -> dict[int, RecordRow]:
        """Rows of live records by vector id."""
        out: dict[int, RecordRow] = {}
        for chunk in _chunks(list(vector_ids), 500):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT * FROM records WHERE vector_id IN ({marks})"
            out.update((row.vector_id, row) for row in map(_record_row, self.db.execute(query, chunk)))
        return out

    def iter_records(self) -> Iterator[RecordRow]:
        """Every live record in storage order (segment, frame, slot): the order reads are cheapest."""
        yield from map(_record_row, self.db.execute("SELECT * FROM records ORDER BY seq, first_frame, slot"))

    def iter_metadata(self) -> Iterator[tuple[int, str]]:
        """(vector_id, metadata JSON) of every live record, for filtering."""
        yield from self.db.execute("SELECT vector_id, metadata FROM records")

    def live_vector_ids(self) -> list[int]:
        """Vector ids of all live records."""
        return [r[0] for r in self.db.execute("SELECT vector_id FROM records")]

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


def _record_row(r: Sequence[Any]) -> RecordRow:
    if _row_crc(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]) != r[8]:
        msg = f"Catalog row of record {r[0]!r} fails its CRC-32; run `verify`, then `rebuild`."
        raise ChecksumMismatch(msg)
    try:
        metadata = json.loads(r[7])
    except json.JSONDecodeError as e:  # pragma: no cover - the CRC catches this first
        msg = f"Catalog metadata of record {r[0]!r} is not JSON."
        raise CorruptData(msg) from e
    return RecordRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], metadata)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class _Transaction:
    """BEGIN IMMEDIATE takes SQLite's write lock up front, so a commit never fails half-way."""

    def __init__(self, db: sqlite3.Connection) -> None:
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
        else:
            self.db.execute("ROLLBACK")
