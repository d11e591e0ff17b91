"""Frame payloads: the 32-byte header every QR symbol carries, and packing records into frames.

Each QR symbol holds one frame payload: a header (magic, version, kind, segment, frame, part of
pack, body length, CRC-32) and a body. Records are grouped into *packs* that are zstd-compressed
(with the segment's dictionary when it has one) and sized to fit one symbol; a pack too large for
one symbol is split into consecutive parts. ``docs/format.md`` is the normative description.

>>> h = FrameHeader(KIND_RECORDS, segment=3, frame=7, part=0, parts=1)
>>> parse_frame(build_frame(h, b"body")) == (h, b"body")
True
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import zstandard

from .errors import ChecksumMismatch, CorruptData, LimitExceeded, UnsupportedFormat
from .records import EncodedRecord, pack_entries

MAGIC = b"MVDB"
FORMAT_VERSION = 1
HEADER = struct.Struct(">4sBBHIIIII")  # magic, version, kind, flags, segment, frame, part, parts, body length
CRC = struct.Struct(">I")
HEADER_SIZE = HEADER.size + CRC.size  # 32 bytes

KIND_SEGMENT_HEADER = 1
KIND_DICTIONARY = 2
KIND_RECORDS = 3
KIND_TOMBSTONES = 4
KINDS = (KIND_SEGMENT_HEADER, KIND_DICTIONARY, KIND_RECORDS, KIND_TOMBSTONES)

MAX_PACK_BYTES = 1 << 31  # decompressed size refused beyond this: a decompression bomb
MAX_PACK_PARTS = 1 << 20
# RFC 8878: every zstd block has a 3-byte header and decompresses to at most 128 KiB, so a frame
# of n bytes cannot honestly produce more than about (n / 3) * 128 KiB (a ratio of ~43,000).
_ZSTD_BLOCK_MAX = 128 << 10


@dataclass(frozen=True)
class FrameHeader:
    """Where a frame payload belongs: its kind, segment, frame number and part of a pack."""

    kind: int
    segment: int
    frame: int
    part: int
    parts: int
    flags: int = 0


def build_frame(header: FrameHeader, body: bytes) -> bytes:
    """Serialise a header and body; the CRC-32 covers the header fields and the body."""
    head = HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        header.kind,
        header.flags,
        header.segment,
        header.frame,
        header.part,
        header.parts,
        len(body),
    )
    return head + CRC.pack(zlib.crc32(body, zlib.crc32(head))) + body


def parse_frame(payload: bytes) -> tuple[FrameHeader, bytes]:
    """Check and split a frame payload.

    Raises:
        CorruptData: not a frame of ours, or its CRC does not match.
        UnsupportedFormat: written by a newer format version.
    """
    if len(payload) < HEADER_SIZE:
        msg = f"Frame payload is {len(payload)} bytes, shorter than the {HEADER_SIZE}-byte header."
        raise CorruptData(msg)
    magic, version, kind, flags, segment, frame, part, parts, length = HEADER.unpack_from(payload)
    if magic != MAGIC:
        msg = f"Frame payload does not start with {MAGIC!r} (got {magic!r}): not a memvid frame."
        raise CorruptData(msg)
    if version > FORMAT_VERSION:
        msg = f"Frame format version {version} is newer than this library ({FORMAT_VERSION}); upgrade."
        raise UnsupportedFormat(msg)
    body = payload[HEADER_SIZE:]
    (crc,) = CRC.unpack_from(payload, HEADER.size)
    if length != len(body) or zlib.crc32(body, zlib.crc32(payload[: HEADER.size])) != crc:
        msg = f"Frame {frame} of segment {segment}: CRC-32 mismatch in its QR payload."
        raise ChecksumMismatch(msg)
    if kind not in KINDS or parts == 0 or part >= parts or parts > MAX_PACK_PARTS:
        msg = f"Frame {frame} of segment {segment}: impossible header (kind {kind}, part {part}/{parts})."
        raise CorruptData(msg)
    return FrameHeader(kind, segment, frame, part, parts, flags), body


def split_body(body: bytes, capacity: int) -> list[bytes]:
    """Cut a pack into parts that each fit a frame body (an empty body is one empty part)."""
    room = capacity - HEADER_SIZE
    return [body[i : i + room] for i in range(0, len(body), room)] or [b""]


def decompress(
    data: bytes, dictionary: zstandard.ZstdCompressionDict | None, limit: int = MAX_PACK_BYTES
) -> bytes:
    """Decompress one pack, refusing a decompression bomb before allocating for it.

    The zstd frame must declare its decompressed size (writers always set it); that size must be
    at most ``limit``, at most MAX_PACK_BYTES, and no more than the frame's length can honestly
    produce. Exactly that much is allocated, and output beyond it is an error.

    Raises:
        CorruptData: the bytes are not a valid zstd frame, or do not declare their size.
        LimitExceeded: the frame would decompress to more than the limits.
    """
    try:
        size = zstandard.get_frame_parameters(data).content_size
        if size == zstandard.CONTENTSIZE_UNKNOWN:
            msg = "A pack's zstd frame does not declare its decompressed size; refusing it."
            raise CorruptData(msg)
        bound = min(limit, MAX_PACK_BYTES, (len(data) // 3 + 1) * _ZSTD_BLOCK_MAX)
        if size > bound:
            msg = f"A pack of {len(data)} bytes claims {size} bytes decompressed; the limit here is {bound}."
            raise LimitExceeded(msg)
        if size == 0:
            # zstandard cannot tell "empty" from "unknown" here; the frame must still be valid.
            out = zstandard.ZstdDecompressor(dict_data=dictionary).decompressobj()
            if out.decompress(data) or not out.eof:
                msg = "A pack declared empty holds data or is truncated."
                raise CorruptData(msg)
            return b""
        return zstandard.ZstdDecompressor(dict_data=dictionary).decompress(data)
    except zstandard.ZstdError as e:
        msg = f"A pack is not valid zstd data: {e}"
        raise CorruptData(msg) from e


@dataclass(frozen=True)
class Pack:
    """A compressed group of records, stored in one frame or, when large, several."""

    records: Sequence[EncodedRecord]
    body: bytes


class Packer:
    """Groups records into packs that fill one QR symbol each, compressing with zstd.

    Fill is found by compressing candidate groups: the ratio seen so far predicts how many records
    fit, and the last record is dropped until the pack fits. Most packs take two or three tries.
    """

    def __init__(
        self,
        capacity: int,
        level: int,
        dictionary: zstandard.ZstdCompressionDict | None = None,
    ) -> None:
        self.room = capacity - HEADER_SIZE
        self._compressor = zstandard.ZstdCompressor(
            level=level, dict_data=dictionary, write_content_size=True
        )

    def compress(self, records: Sequence[EncodedRecord]) -> bytes:
        """One pack's body: the records' entries compressed as a single zstd frame."""
        return self._compressor.compress(pack_entries(records))

    def packs(self, records: Sequence[EncodedRecord]) -> Iterator[Pack]:
        """Yield packs covering ``records`` in order."""
        ratio = 0.5
        start, n = 0, len(records)
        while start < n:
            end, raw = start, 4
            while end < n and (end == start or (raw + records[end].entry_size) * ratio <= self.room):
                raw += records[end].entry_size
                end += 1
            body = self.compress(records[start:end])
            while len(body) > self.room and end - start > 1:
                end -= 1
                body = self.compress(records[start:end])
            # Room left over: try to take one more record before closing the pack.
            while end < n and len(body) < self.room * 0.97:
                bigger = self.compress(records[start : end + 1])
                if len(bigger) > self.room:
                    break
                body, end = bigger, end + 1
            raw = sum(r.entry_size for r in records[start:end]) + 4
            ratio = max(0.05, min(1.2, len(body) / raw)) * 0.7 + ratio * 0.3
            yield Pack(records[start:end], body)
            start = end
