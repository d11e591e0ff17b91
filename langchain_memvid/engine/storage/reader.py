"""The segment reader: catalog rows -> video packets -> QR payloads -> packs -> records.

One positioned read per frame, checked three times (the packet's CRC-32 from the catalog, the
payload's own CRC-32 after the QR decode, the record id at its slot after decompression). It keeps
what makes a second read cheap: open file descriptors (bounded), decoded packs (bounded) and each
segment's zstd dictionary. It knows nothing of commits or search; the ``Engine`` tells it which
segments are live (``segments``) and forgets a segment's state when a commit drops it.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import zstandard

from langchain_memvid.engine.catalog.catalog import Catalog, RecordRow, SegmentRow
from langchain_memvid.engine.codec import qr
from langchain_memvid.engine.codec.frames import (
    KIND_DICTIONARY,
    KIND_RECORDS,
    MAX_PACK_BYTES,
    decompress,
    parse_frame,
)
from langchain_memvid.engine.codec.records import PackReader, Record
from langchain_memvid.engine.codec.video import FrameLocation, decode_packet, read_packet
from langchain_memvid.engine.errors import (
    ChecksumMismatch,
    CorruptData,
    InvalidArgument,
    LimitExceeded,
    MemvidError,
    SegmentNotFound,
    UnsafePath,
)
from langchain_memvid.engine.files import open_regular, read_regular, sha256_regular
from langchain_memvid.engine.search.vector_files import deserialize_vectors

MAX_OPEN_FILES = 64
PACK_CACHE = 32
MAX_DICTIONARY_BYTES = 16 << 20


@dataclass(frozen=True)
class Location:
    """Where a record lives in the video: file, frame(s), timestamp and slot in its pack."""

    id: str
    segment: str
    frame: int
    frame_count: int
    timestamp: float
    slot: int


class RemoteVideo(Protocol):
    """Where a reader finds videos it does not hold (``versions.Workspace``)."""

    def read_video(self, name: str, start: int, end: int) -> bytes: ...

    def video_digest(self, name: str, size: int) -> tuple[int, str]: ...

    def keep_video(self, name: str, size: int, sha256: str) -> bool: ...


REMOTE_GAP = 64 << 10  # packets closer than this are fetched in one ranged GET
PREFETCH_THREADS = 16  # ranged GETs in flight at once when reading several hits from a bucket


class SegmentReader:
    """Reads records, frames and vector files of the live segments of one store folder.

    Not thread-safe: the engine serialises calls.
    """

    def __init__(
        self, root: Path, catalog: Catalog, decoder: str = "zxing", remote: RemoteVideo | None = None
    ) -> None:
        self.root = root
        self.remote = remote  # where videos not in root/segments are read (a store in a bucket)
        self._remote_segs: set[int] = set()
        self._fetched: dict[tuple[int, int], bytes] = {}  # (seq, offset) -> packet, for one read_rows
        self.catalog = catalog
        self.decoder = decoder
        self.segments: Mapping[int, SegmentRow] = {}  # the live segments, set by the engine
        self._fds: OrderedDict[int, int] = OrderedDict()
        self._packs: OrderedDict[tuple[int, int], PackReader] = OrderedDict()
        self._dicts: dict[int, zstandard.ZstdCompressionDict | None] = {}

    # -- state ---------------------------------------------------------------------------

    def forget(self, seq: int) -> None:
        """Drop what is held for a segment (its file descriptor and dictionary)."""
        fd = self._fds.pop(seq, None)
        if fd is not None:
            os.close(fd)
        self._dicts.pop(seq, None)
        self._remote_segs.discard(seq)

    def clear_packs(self) -> None:
        """Forget decoded packs: after a commit, a slot may hold another record."""
        self._packs.clear()

    def remember_dictionary(self, seq: int, dictionary: zstandard.ZstdCompressionDict | None) -> None:
        """Keep the dictionary a writer just trained, so its first read decodes no dictionary frame."""
        self._dicts[seq] = dictionary

    def close(self) -> None:
        """Close every file descriptor."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._packs.clear()

    # -- records -------------------------------------------------------------------------

    def read_rows(self, rows: Sequence[RecordRow]) -> dict[str, Record]:
        """The records the rows point at, each pack decoded once; any failed check raises.

        Raises:
            CorruptData: a check failed (the message names the record, file and frame).
            SegmentNotFound: a row's video file is missing.
        """
        out: dict[str, Record] = {}
        try:
            if self.remote is not None:
                self._prefetch(rows)
            for row in sorted(rows, key=lambda r: (r.seq, r.first_frame, r.slot)):
                self._read_row(row, out)
        finally:
            self._fetched.clear()
        return out

    def _read_row(self, row: RecordRow, out: dict[str, Record]) -> None:
        pack = self._pack(row)
        if row.slot >= len(pack) or pack.record_id(row.slot) != row.id:
            msg = f"Record {row.id!r}: the video frame {row.first_frame} of segment {row.seq} holds other records than the catalog says; run `verify`."
            raise CorruptData(msg)
        out[row.id] = pack.record(row.slot)

    def _prefetch(self, rows: Sequence[RecordRow]) -> None:
        """Fetch the packets of remote packs (and dictionaries) these rows need, in parallel.

        One ranged GET per pack, issued together, so reading k hits from a bucket costs about one
        round trip rather than k. Local segments and packs already decoded are left alone.
        """
        wanted: dict[tuple[int, int], tuple[SegmentRow, int, int]] = {}
        for row in rows:
            seg = self.segments.get(row.seq)
            if seg is None or (row.seq, row.first_frame) in self._packs:
                continue
            if seg.seq not in self._remote_segs and self._local(seg):
                continue
            wanted[(row.seq, row.first_frame)] = (seg, row.first_frame, row.frame_count)
            if seg.seq not in self._dicts and seg.dict_frames:
                wanted[(row.seq, 1)] = (seg, 1, seg.dict_frames)
        if len(wanted) < 2:
            return
        jobs = []
        for seg, first, count in wanted.values():
            frames = self.catalog.frames(seg.seq, first, count)
            jobs.append((seg, first, [loc for loc, _ in frames]))
        with ThreadPoolExecutor(max_workers=min(PREFETCH_THREADS, len(jobs))) as pool:
            results = list(pool.map(lambda job: self._packets(job[0], job[2]), jobs))
        for (seg, _, locations), packets in zip(jobs, results, strict=True):
            for loc, data in zip(locations, packets, strict=True):
                self._fetched[(seg.seq, loc.offset)] = data

    def _pack(self, row: RecordRow) -> PackReader:
        key = (row.seq, row.first_frame)
        pack = self._packs.get(key)
        if pack is None:
            seg = self.segment(row.seq, row.id)
            # A pack spanning several frames holds one record, whose size the (CRC-checked) row
            # gives: a bomb declaring more is refused before anything is allocated for it.
            limit = MAX_PACK_BYTES if row.frame_count == 1 else _entry_bytes(row) + 4096
            try:
                body = self._read_body(seg, row.first_frame, row.frame_count, KIND_RECORDS)
                pack = PackReader(decompress(body, self._dictionary(seg), limit))
            except MemvidError as e:
                msg = f"Record {row.id!r} in {seg.video_file} (frame {row.first_frame}): {e}"
                raise type(e)(msg) from e
            self._packs[key] = pack
            if len(self._packs) > PACK_CACHE:
                self._packs.popitem(last=False)
        else:
            self._packs.move_to_end(key)
        return pack

    def segment(self, seq: int, record_id: str) -> SegmentRow:
        """The live segment a record row points at."""
        seg = self.segments.get(seq)
        if seg is None:
            msg = f"Record {record_id!r} points at segment {seq}, which the catalog does not list; run `verify`."
            raise CorruptData(msg)
        return seg

    def _read_body(self, seg: SegmentRow, first: int, count: int, kind: int) -> bytes:
        bodies = []
        frames = self.catalog.frames(seg.seq, first, count)
        packets = self._packets(seg, [loc for loc, _ in frames])
        for i, ((_, crc), data) in enumerate(zip(frames, packets, strict=True)):
            header, body = parse_frame(self._payload(seg, first + i, data, crc))
            if (header.kind, header.segment, header.frame, header.part, header.parts) != (
                kind,
                seg.seq,
                first + i,
                i,
                count,
            ):
                msg = f"Frame {first + i} of {seg.video_file} is not the frame the catalog expects (kind {header.kind}, part {header.part}/{header.parts})."
                raise CorruptData(msg)
            bodies.append(body)
        return b"".join(bodies)

    def _dictionary(self, seg: SegmentRow) -> zstandard.ZstdCompressionDict | None:
        if seg.seq not in self._dicts:
            body = self._read_body(seg, 1, seg.dict_frames, KIND_DICTIONARY) if seg.dict_frames else b""
            raw = decompress(body, None, MAX_DICTIONARY_BYTES) if body else b""
            self._dicts[seg.seq] = zstandard.ZstdCompressionDict(raw) if raw else None
        return self._dicts[seg.seq]

    def locate(self, row: RecordRow) -> Location:
        """Where a record row points: its video file, first frame and that frame's timestamp."""
        seg = self.segment(row.seq, row.id)
        (loc, _), *_ = self.catalog.frames(row.seq, row.first_frame, 1)
        return Location(
            id=row.id,
            segment=f"segments/{seg.video_file}",
            frame=row.first_frame,
            frame_count=row.frame_count,
            timestamp=float(loc.pts * seg.info.time_base),
            slot=row.slot,
        )

    # -- frames --------------------------------------------------------------------------

    def frame_payload(
        self, seg: SegmentRow, frame: int, loc: FrameLocation, crc: int, decoder: str | None = None
    ) -> bytes:
        """The QR payload of one frame: one positioned read, the packet's CRC-32, one decode."""
        return self._payload(seg, frame, self._packets(seg, [loc])[0], crc, decoder)

    def _payload(
        self, seg: SegmentRow, frame: int, data: bytes, crc: int, decoder: str | None = None
    ) -> bytes:
        if zlib.crc32(data) != crc:
            msg = f"Frame {frame} of {seg.video_file}: video bytes fail their CRC-32."
            raise ChecksumMismatch(msg)
        return qr.decode(decode_packet(data, seg.info), backend=decoder or self.decoder)

    def frame_image(self, seg: SegmentRow, frame: int) -> np.ndarray:
        """The grayscale image of one frame, as stored (its packet checked, not its QR symbol)."""
        if isinstance(frame, bool) or not 0 <= frame < seg.frame_count:
            msg = f"Segment {seg.video_file} has frames 0..{seg.frame_count - 1}; got {frame!r}."
            raise InvalidArgument(msg)
        ((loc, crc),) = self.catalog.frames(seg.seq, frame, 1)
        data = self._packets(seg, [loc])[0]
        if zlib.crc32(data) != crc:
            msg = f"Frame {frame} of {seg.video_file}: video bytes fail their CRC-32; run `verify`."
            raise ChecksumMismatch(msg)
        return decode_packet(data, seg.info)

    def _packets(self, seg: SegmentRow, locations: Sequence[FrameLocation]) -> list[bytes]:
        """The packets at ``locations``: positioned reads of a local file, or one ranged GET.

        A video this handle does not hold (a store in a bucket) is read where it is: one request
        for a run of adjacent packets (a pack's frames are written next to each other).
        """
        if self.remote is None or (seg.seq not in self._remote_segs and self._local(seg)):
            fd = self._fd(seg)
            return [read_packet(fd, loc) for loc in locations]
        if locations and all((seg.seq, loc.offset) in self._fetched for loc in locations):
            return [self._fetched[(seg.seq, loc.offset)] for loc in locations]
        for loc in locations:
            if loc.offset < 0 or loc.size < 0 or loc.offset + loc.size > seg.video_bytes:
                msg = f"Frame packet at byte {loc.offset} ({loc.size} bytes) lies outside the {seg.video_bytes}-byte video file."
                raise CorruptData(msg)
        if not locations:
            return []
        start = min(loc.offset for loc in locations)
        end = max(loc.offset + loc.size for loc in locations)
        if end - start > sum(loc.size for loc in locations) + REMOTE_GAP * len(locations):
            return [self._range(seg, loc.offset, loc.offset + loc.size) for loc in locations]
        data = self._range(seg, start, end)
        return [data[loc.offset - start : loc.offset - start + loc.size] for loc in locations]

    def _range(self, seg: SegmentRow, start: int, end: int) -> bytes:
        assert self.remote is not None
        data = self.remote.read_video(seg.video_file, start, end)
        if len(data) != end - start:
            msg = f"Bytes {start}..{end} of {seg.video_file} came back short ({len(data)} of {end - start}): the video is truncated; run `verify`."
            raise CorruptData(msg)
        return data

    def video_digest(self, seg: SegmentRow) -> tuple[int, str]:
        """Size and SHA-256 of a segment's video, wherever it is."""
        if self.remote is not None and (seg.seq in self._remote_segs or not self._local(seg)):
            return self.remote.video_digest(seg.video_file, seg.video_bytes)
        return sha256_regular(self.segment_file(seg.video_file))

    def _local(self, seg: SegmentRow) -> bool:
        """Whether this handle holds the video itself (else it is read remotely from now on)."""
        if seg.seq in self._fds or self.segment_file(seg.video_file).exists():
            return True
        if self.remote is not None and self.remote.keep_video(
            seg.video_file, seg.video_bytes, seg.video_sha256
        ):
            return True  # downloaded whole (checked) into the handle's folder: read locally from now on
        self._remote_segs.add(seg.seq)
        return False

    def _fd(self, seg: SegmentRow) -> int:
        fd = self._fds.get(seg.seq)
        if fd is not None:
            self._fds.move_to_end(seg.seq)
            return fd
        path = self.segment_file(seg.video_file)
        try:
            fd = open_regular(path)
        except SegmentNotFound as e:
            msg = f"Video file {path.name} is missing from {self.root / 'segments'}; its records cannot be read. Run `verify`."
            raise SegmentNotFound(msg) from e
        self._fds[seg.seq] = fd
        if len(self._fds) > MAX_OPEN_FILES:
            _, old = self._fds.popitem(last=False)
            os.close(old)
        return fd

    def segment_file(self, name: str) -> Path:
        """``segments/name``, refused when it is a symbolic link."""
        path = self.root / "segments" / name
        if path.is_symlink():
            msg = f"{path} is a symbolic link; refusing to follow it out of the store."
            raise UnsafePath(msg)
        return path

    # -- vector files ----------------------------------------------------------------------

    def load_vectors(self, seg: SegmentRow, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of a segment's vector file, after its size and SHA-256 check."""
        path = self.segment_file(seg.index_file)
        try:
            return load_vector_file(path, seg.index_bytes, seg.index_sha256, dim)
        except SegmentNotFound as e:
            msg = f"Vector file {path.name} of segment {seg.seq} is missing; run `rebuild` (with the embedding model)."
            raise SegmentNotFound(msg) from e


def load_vector_file(path: Path, size: int, sha256: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of the vector file at ``path`` once it has the ``size`` and ``sha256`` the catalog records.

    Needs no catalog, so a worker that sees only the store folder reads the files the same way.

    Raises:
        SegmentNotFound: the file is missing.
        ChecksumMismatch: it is larger than recorded, or its bytes are not the recorded ones.
    """
    try:
        data = read_regular(path, limit=size)
    except LimitExceeded as e:
        msg = f"Vector file {path.name} is larger than the catalog records; run `rebuild` (with the embedding model)."
        raise ChecksumMismatch(msg) from e
    except SegmentNotFound as e:
        msg = f"Vector file {path.name} is missing; run `rebuild` (with the embedding model)."
        raise SegmentNotFound(msg) from e
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
        msg = f"Vector file {path.name} fails its SHA-256 check; run `rebuild` (with the embedding model)."
        raise ChecksumMismatch(msg)
    return deserialize_vectors(data, dim)


def _entry_bytes(row: RecordRow) -> int:
    """Size of a record's entry in an uncompressed pack, from its catalog row."""
    meta = json.dumps(row.metadata, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return (
        4
        + 12
        + len(row.id.encode("utf-8", "surrogatepass"))
        + len(meta.encode("utf-8", "surrogatepass"))
        + row.text_bytes
    )


__all__ = ["Location", "SegmentReader"]
