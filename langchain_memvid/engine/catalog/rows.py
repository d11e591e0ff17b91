"""Catalog rows as the engine sees them, checked: types, ranges, names and CRC-32s.

SQLite stores any type in any column, and a crafted catalog may hold anything; every row read
goes through these checks, so a bad row is a ``MemvidError`` naming the catalog, never a wrong
value. The CRC-32 layouts are specified in docs/format.md section 5.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from langchain_memvid.engine.codec.frames import MAX_PACK_PARTS
from langchain_memvid.engine.codec.records import MAX_TEXT_BYTES
from langchain_memvid.engine.codec.video import VideoInfo
from langchain_memvid.engine.errors import (
    ChecksumMismatch,
    CorruptData,
    LimitExceeded,
    UnsafePath,
    UnsupportedFormat,
)

# Bounds on values read from the catalog, so a crafted one cannot make a reader allocate or loop
# without limit. Each is far beyond what the writer produces.
CODECS = ("png", "h264")  # the decoders a stored segment may ask for
MAX_FRAME_SIDE = 16384
MAX_SEGMENT_FRAMES = 1 << 24
MAX_PACKET_BYTES = 64 << 20  # one frame's packet (a QR image): a few KB to a few hundred KB
MAX_FILE_BYTES = 1 << 40
MAX_DIM = 1 << 16


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


def row_crc(
    id_: str, vector_id: int, seq: int, first: int, count: int, slot: int, size: int, meta: str
) -> int:
    """CRC-32 of a ``records`` row (format.md section 5)."""
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


def meta_crc(key: str, value: str) -> int:
    """CRC-32 of a ``meta`` row (``key NUL value``), also used for ``garbage`` rows."""
    return zlib.crc32(f"{key}\x00{value}".encode())


def dead_crc(vector_id: int, seq: int) -> int:
    """CRC-32 of a ``dead_vectors`` row (``vector_id NUL seq``, in decimal)."""
    return zlib.crc32(f"{vector_id}\x00{seq}".encode())


def segment_crc(values: Sequence[Any]) -> int:
    """CRC-32 of a ``segments`` row as inserted (the BLOB in hex)."""
    parts = [v.hex() if isinstance(v, (bytes, bytearray, memoryview)) else repr(v) for v in values]
    return zlib.crc32("\x00".join(parts).encode())


def frames_crc(rows: Iterable[Sequence[Any]]) -> int:
    """CRC-32 of a segment's ``frames`` rows (frame, offset, size, pts, crc32), in frame order."""
    crc = 0
    for row in rows:
        crc = zlib.crc32((",".join(map(repr, row)) + ";").encode(), crc)
    return crc


def damaged(what: str, detail: str) -> CorruptData:
    """The error for a damaged catalog row, saying what to run."""
    return CorruptData(f"Catalog {what}: {detail}; run `verify`, then `rebuild` to recreate the catalog.")


def checked_int(value: Any, what: str, low: int = 0, high: int = 1 << 62) -> int:
    """A stored integer, type- and range-checked (SQLite stores any type in any column)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise damaged(what, f"holds {value!r:.60}, not an integer")
    if not low <= value <= high:
        msg = f"Catalog {what} is {value}, outside {low}..{high}; refusing it (a damaged or crafted catalog)."
        raise LimitExceeded(msg)
    return value


def check_setting(key: str, value: Any) -> Any:
    """A stored setting, checked where the engine relies on its type and range."""
    if key in ("generation", "next_vector_id", "next_seq", "format_version"):
        checked_int(value, f"setting {key!r}")
    elif key == "dim" and value is not None:
        checked_int(value, "setting 'dim'", 1, MAX_DIM)
    elif key == "metric" and value not in ("cosine", "ip", "l2"):
        raise damaged("setting 'metric'", f"is {value!r:.40}, not cosine, ip or l2")
    elif key == "vector_encoding" and value not in ("float32", "float16", "int8", "binary"):
        raise damaged("setting 'vector_encoding'", f"is {value!r:.40}, not float32, float16, int8 or binary")
    elif key in ("profile", "model") and value is not None and not isinstance(value, str):
        raise damaged(f"setting {key!r}", "is not a string")
    return value


def check_row_crc(r: Sequence[Any]) -> None:
    """Refuse a ``records`` row whose CRC-32 does not match."""
    if len(r) != 9 or row_crc(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]) != r[8]:
        msg = f"Catalog row of record {r[0]!r:.80} fails its CRC-32; run `verify`, then `rebuild`."
        raise ChecksumMismatch(msg)


def record_row(r: Sequence[Any]) -> RecordRow:
    """A ``records`` row as read from SQLite, checked (CRC, types, bounds)."""
    check_row_crc(r)
    where = f"row of record {r[0]!r:.80}"
    # The CRC covers the decimal text of each field, so a row can pass it with a TEXT "5" where an
    # INTEGER belongs: check the types as well.
    if not isinstance(r[0], str) or not isinstance(r[7], str):
        raise damaged(where, "holds values of the wrong type")
    vector_id, seq = checked_int(r[1], where), checked_int(r[2], where)
    first, count = (
        checked_int(r[3], where, 0, MAX_SEGMENT_FRAMES),
        checked_int(r[4], where, 1, MAX_PACK_PARTS),
    )
    slot, size = checked_int(r[5], where, 0, 1 << 32), checked_int(r[6], where, 0, MAX_TEXT_BYTES)
    try:
        metadata = json.loads(r[7])
    except (ValueError, RecursionError) as e:
        raise damaged(f"metadata of record {r[0]!r:.80}", "is not JSON") from e
    if not isinstance(metadata, dict):
        raise damaged(f"metadata of record {r[0]!r:.80}", "is not a JSON object")
    return RecordRow(r[0], vector_id, seq, first, count, slot, size, metadata)


def segment_row(r: Sequence[Any]) -> SegmentRow:
    """A ``segments`` row, type- and range-checked (a crafted catalog must not reach a decoder)."""
    where = f"row of segment {r[0]!r:.40}"
    seq = checked_int(r[0], where)
    if len(r) != 17 or r[2] not in ("records", "tombstones") or not isinstance(r[3], str):
        raise damaged(where, "holds values of the wrong type")
    if r[4] not in CODECS:
        msg = f"Catalog {where} asks for the codec {r[4]!r:.40}; stores use only {list(CODECS)}. Refusing it."
        raise UnsupportedFormat(msg)
    if not isinstance(r[8], bytes) or not all(isinstance(r[i], str) for i in (7, 13, 15)):
        raise damaged(where, "holds values of the wrong type")
    try:
        time_base = Fraction(r[7])
    except (ValueError, ZeroDivisionError) as e:
        raise damaged(where, f"has the time base {r[7]!r:.40}") from e
    if time_base <= 0 or not isinstance(r[16], (int, float)):
        raise damaged(where, "holds values of the wrong type")
    frame_count = checked_int(r[9], where, 1, MAX_SEGMENT_FRAMES)
    return SegmentRow(
        seq=seq,
        name=check_name(r[1]),
        kind=r[2],
        profile=r[3],
        info=VideoInfo(
            codec=r[4],
            width=checked_int(r[5], where, 1, MAX_FRAME_SIDE),
            height=checked_int(r[6], where, 1, MAX_FRAME_SIDE),
            time_base=time_base,
            extradata=r[8],
        ),
        frame_count=frame_count,
        dict_frames=checked_int(r[10], where, 0, frame_count - 1),
        record_count=checked_int(r[11], where),
        video_bytes=checked_int(r[12], where, 0, MAX_FILE_BYTES),
        video_sha256=r[13],
        index_bytes=checked_int(r[14], where, 0, MAX_FILE_BYTES),
        index_sha256=r[15],
        created=float(r[16]),
    )
