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
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate

import zstandard

from langchain_memvid.engine.codec.records import EncodedRecord, pack_entries
from langchain_memvid.engine.errors import ChecksumMismatch, CorruptData, LimitExceeded, UnsupportedFormat

MAGIC = b"MVDB"
FORMAT_VERSION = 1  # of frame headers (docs/format.md section 3.1): unchanged since version 1
# The newest store format this library reads (catalog and segment headers; section 10). Version 2
# adds compact vector files (float16, int8, binary); a store of float32 vectors stays version 1.
STORE_FORMAT_VERSION = 2
COMPACT_VECTORS_VERSION = 2
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
    """Cut a pack into parts that each fit a frame body (an empty body is one empty part).

    ``capacity`` is the whole frame payload, header included:

    >>> [len(part) for part in split_body(bytes(100), HEADER_SIZE + 40)]
    [40, 40, 20]
    >>> split_body(b"", HEADER_SIZE + 40)
    [b'']
    """
    room = capacity - HEADER_SIZE
    return [body[i : i + room] for i in range(0, len(body), room)] or [b""]


def decompress(
    data: bytes, dictionary: zstandard.ZstdCompressionDict | None, limit: int = MAX_PACK_BYTES
) -> bytes:
    """Decompress one pack, refusing a decompression bomb before allocating for it.

    The zstd frame must declare its decompressed size (writers always set it); that size must be
    at most ``limit``, at most MAX_PACK_BYTES, and no more than the frame's length can honestly
    produce. Exactly that much is allocated, and output beyond it is an error.

    >>> packed = zstandard.ZstdCompressor(write_content_size=True).compress(b"ab" * 1000)
    >>> decompress(packed, None) == b"ab" * 1000
    True
    >>> decompress(packed, None, limit=1000)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    langchain_memvid.engine.errors.LimitExceeded: A pack of ... bytes claims 2000 bytes decompressed; the limit here is 1000.

    Raises:
        CorruptData: the bytes are not a valid zstd frame, or do not declare their size.
        LimitExceeded: the frame would decompress to more than the limits.
    """
    return decompress_bounded(data, dictionary, min(limit, MAX_PACK_BYTES), "pack")


def decompress_bounded(
    data: bytes, dictionary: zstandard.ZstdCompressionDict | None, limit: int, what: str
) -> bytes:
    """Decompress one zstd frame of a stored ``what`` (a pack, a lexicon) of at most ``limit`` bytes.

    As ``decompress``, with the caller's limit alone: the frame must declare its size, which must
    be at most ``limit`` and no more than the frame's length can honestly produce.

    Raises:
        CorruptData: the bytes are not a valid zstd frame, or do not declare their size.
        LimitExceeded: the frame would decompress to more than the limits.
    """
    try:
        size = zstandard.get_frame_parameters(data).content_size
        if size == zstandard.CONTENTSIZE_UNKNOWN:
            msg = f"A {what}'s zstd frame does not declare its decompressed size; refusing it."
            raise CorruptData(msg)
        bound = min(limit, (len(data) // 3 + 1) * _ZSTD_BLOCK_MAX)
        if size > bound:
            msg = (
                f"A {what} of {len(data)} bytes claims {size} bytes decompressed; the limit here is {bound}."
            )
            raise LimitExceeded(msg)
        if size == 0:
            # zstandard cannot tell "empty" from "unknown" here; the frame must still be valid.
            out = zstandard.ZstdDecompressor(dict_data=dictionary).decompressobj()
            if out.decompress(data) or not out.eof:
                msg = f"A {what} declared empty holds data or is truncated."
                raise CorruptData(msg)
            return b""
        return zstandard.ZstdDecompressor(dict_data=dictionary).decompress(data)
    except zstandard.ZstdError as e:
        msg = f"A {what} is not valid zstd data: {e}"
        raise CorruptData(msg) from e


@dataclass(frozen=True)
class Pack:
    """A compressed group of records, stored in one frame or, when large, several."""

    records: Sequence[EncodedRecord]
    body: bytes


class Packer:
    """Groups records into packs that fill one QR symbol each, compressing with zstd.

    How many records a pack takes is found by a short search. A first candidate is sized from the
    compression ratio of the previous pack; each candidate is compressed once, and its measured
    size (with the other tries of the same pack) predicts the next one, until a candidate fills
    at least ``FULL`` of the frame or the largest fitting and the smallest overflowing candidates
    are neighbours. A pack takes a bounded number of tries (usually one to three) whatever it
    holds, so packing is linear in the records added even when thousands of tiny, repetitive
    records share one pack (growing a pack one record at a time recompressed it per record).

    Every pack is compressed and measured before it is emitted: a pack of several records always
    fits one frame body; only a single record too large for a frame gets a pack that spans several.
    """

    FULL = 0.97  # a pack this full is good enough: the last records rarely fit anyway
    AIM = 0.985  # predictions aim a little below the room, as the estimate is not exact
    MAX_TRIES = 8  # then the fullest fitting candidate is taken
    MAX_GROWTH = 16  # a candidate's raw size grows at most this much per try (a bad guess stays cheap)

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
        # offsets[i]: uncompressed bytes of records[:i]; a pack of records[a:b] is
        # 4 + offsets[b] - offsets[a] bytes before compression (4: the record count).
        offsets = [0, *accumulate(r.entry_size for r in records)]
        ratio, last_raw = 0.5, 0
        start = 0
        while start < len(records):
            pack = self._pack(records, offsets, start, ratio, last_raw)
            last_raw = 4 + offsets[start + len(pack.records)] - offsets[start]
            ratio = max(len(pack.body), 1) / last_raw
            yield pack
            start += len(pack.records)

    def _pack(
        self,
        records: Sequence[EncodedRecord],
        offsets: list[int],
        start: int,
        ratio: float,
        last_raw: int,
    ) -> Pack:
        """The pack that starts at ``start``: as many records as fit one frame body."""
        n, room = len(records), self.room

        def raw(end: int) -> int:
            return 4 + offsets[end] - offsets[start]

        def end_for(target: float, lo: int, hi: int) -> int:
            """The end whose raw size is nearest ``target`` from below, kept strictly in (lo, hi)."""
            end = bisect_right(offsets, offsets[start] + target - 4, lo=start + 1, hi=n + 1) - 1
            return min(max(end, lo + 1), hi - 1)

        lo, lo_body = start, b""  # records[start:lo] is the fullest candidate known to fit
        hi, hi_body = n + 1, b""  # records[start:hi] is the smallest known not to fit
        tries: list[tuple[int, int]] = []  # (raw size, compressed size) of this pack's tries
        first = room * self.AIM / ratio
        if last_raw:
            first = min(first, last_raw * self.MAX_GROWTH)
        end = end_for(first, lo, hi)
        for _ in range(self.MAX_TRIES):
            body = self.compress(records[start:end])
            tries.append((raw(end), len(body)))
            if len(body) <= room:
                lo, lo_body = end, body
                if end == n or len(body) >= room * self.FULL:
                    break
            else:
                hi, hi_body = end, body
                if end == start + 1:
                    break  # one record larger than a frame: it gets a pack of its own
            if hi - lo <= 1:
                break
            end = end_for(self._predict(tries), lo, hi)
            if lo > start:
                end = min(end, end_for(raw(lo) * self.MAX_GROWTH, lo, hi))
        if lo == start:
            # Nothing fitted within the tries (the first guesses were far too large): halve the
            # candidate until it fits; the sizes shrink geometrically, so this stays linear.
            while hi > start + 1:
                end = end_for(raw(hi) / 2, start, hi)
                body = self.compress(records[start:end])
                if len(body) <= room:
                    lo, lo_body = end, body
                    break
                hi, hi_body = end, body
            else:
                lo, lo_body = hi, hi_body  # a single record, spanning several frames
        return Pack(records[start:lo], lo_body)

    def _predict(self, tries: list[tuple[int, int]]) -> float:
        """The raw size predicted to compress to ``AIM`` of the room, from this pack's tries.

        With two tries, follow the line through the last two (the secant method: it closes in on
        the target from either side, or from both); with one, scale it by its own ratio. The
        caller keeps the result between the largest fitting and smallest overflowing candidates.
        """
        target = self.room * self.AIM
        raw_b, size_b = tries[-1]
        if len(tries) > 1:
            raw_a, size_a = tries[-2]
            if size_b != size_a and raw_b != raw_a and (size_b - size_a) * (raw_b - raw_a) > 0:
                return raw_b + (target - size_b) * (raw_b - raw_a) / (size_b - size_a)
        return raw_b * target / size_b
