"""``rebuild``: recreate the catalog (and, if needed, the vectors) from the videos alone.

The videos are self-describing: each segment opens with a header frame (sequence number, kind,
settings), then its dictionary, record packs or tombstones. Rebuild demuxes every ``.mov`` in
``segments/``, decodes every frame it can, replays segments in sequence order (later records
replace earlier ones with the same id, tombstones delete), and writes a fresh catalog. Vectors come
from each segment's ``.faiss`` file when it is intact, otherwise from ``embed`` (the embedding
model). Damaged frames lose only the records in their pack; everything intact is recovered.

Damage to the container rather than the frames (a truncated file, a flipped byte in the ``moov``
index) does not lose the frames of a ``lossless`` segment: its packets are whole PNG files, so when
demuxing fails or loses frames, the file is also scanned for PNG images directly. Each frame's
place comes from its own header, so a lost frame does not shift the others. A segment whose header
frame is damaged is recovered from its other frames (sequence number and kinds are in every frame
header; its settings come from the other segments).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import filelock
import numpy as np
import zstandard

from . import qr
from .catalog import Catalog, RecordRow, SegmentRow, check_name
from .errors import CorruptData, InvalidArgument, MemvidError, StoreLocked, StoreNotFound, UnsafePath
from .files import read_regular
from .frames import (
    KIND_DICTIONARY,
    KIND_RECORDS,
    KIND_SEGMENT_HEADER,
    KIND_TOMBSTONES,
    FrameHeader,
    decompress,
    parse_frame,
)
from .index import deserialize_vectors, prepare_vectors
from .records import Record, unpack_entries
from .segments import sha256_file
from .video import FrameLocation, VideoInfo, decode_packet, probe, scan_packets

EmbedFn = Callable[[Sequence[str]], Any]


@dataclass
class RebuildReport:
    """What rebuild recovered and what it had to give up."""

    segments: int = 0
    records: int = 0
    deleted: int = 0
    reembedded: int = 0
    lost_frames: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class _Segment:
    seq: int
    name: str
    header: dict[str, Any]
    locations: list[FrameLocation]
    crcs: list[int]
    payloads: dict[int, tuple[FrameHeader, bytes]]
    records: list[tuple[Record, int, int, int]] = field(default_factory=list)  # record, first, count, slot
    tombstones: list[str] = field(default_factory=list)
    info: VideoInfo | None = None


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What a damaged container makes PyAV raise besides its own errors.
_DEMUX_ERRORS = (MemvidError, av.FFmpegError, AttributeError, IndexError, ValueError, OverflowError)


def _demux(path: Path, report: RebuildReport) -> tuple[VideoInfo | None, list[tuple[FrameLocation, bytes]]]:
    """The container's own packet list, or none when the container is too damaged to read."""
    try:
        return probe(path), list(scan_packets(path))
    except _DEMUX_ERRORS as e:
        detail = str(e) if isinstance(e, MemvidError) else f"{path.name}: not a readable video ({e})"
        report.problems.append(f"{detail}; scanning the file for frames")
        return None, []


def _png_end(data: bytes, start: int) -> int | None:
    """End offset of the PNG file starting at ``start`` (after its IEND chunk), or None."""
    pos = start + len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return pos if pos <= len(data) else None
    return None


def _scan_png(data: bytes) -> list[tuple[FrameLocation, bytes]]:
    """Every complete PNG file inside ``data``, in file order (the packets of a PNG video)."""
    out: list[tuple[FrameLocation, bytes]] = []
    pos = data.find(_PNG_SIGNATURE)
    while pos >= 0:
        end = _png_end(data, pos)
        if end is None:
            pos = data.find(_PNG_SIGNATURE, pos + 1)
            continue
        out.append((FrameLocation(pos, end - pos, len(out)), data[pos:end]))
        pos = data.find(_PNG_SIGNATURE, end)
    return out


def _png_info(blob: bytes) -> VideoInfo:
    width, height = int.from_bytes(blob[16:20], "big"), int.from_bytes(blob[20:24], "big")
    return VideoInfo(codec="png", width=width, height=height, time_base=Fraction(1, 30), extradata=b"")


def _read_segment(path: Path, report: RebuildReport, decoder: str) -> _Segment | None:
    info, packets = _demux(path, report)
    located: dict[int, tuple[FrameLocation, int]] = {}
    payloads: dict[int, tuple[FrameHeader, bytes]] = {}
    decoded: set[tuple[int, int]] = set()  # (offset, size) of packets that decoded

    def decode(loc: FrameLocation, data: bytes, info: VideoInfo, position: int | None) -> None:
        try:
            header, body = parse_frame(qr.decode(decode_packet(data, info), backend=decoder))
        except MemvidError:
            if position is not None:  # the container says where it is, even if it is damaged
                located.setdefault(position, (loc, zlib.crc32(data)))
            return
        decoded.add((loc.offset, loc.size))
        if position is None:  # found by scanning: the timestamp follows from the frame number
            loc = FrameLocation(loc.offset, loc.size, round(header.frame / (30 * info.time_base)))
        # A frame's own header says where it belongs, so one lost frame does not shift the rest.
        if header.frame not in payloads:
            payloads[header.frame] = (header, body)
            located[header.frame] = (loc, zlib.crc32(data))

    for n, (loc, data) in enumerate(packets):
        if info is not None:
            decode(loc, data, info, n)
    # Demuxing can also lose frames without failing on any (a damaged sample table): a PNG video
    # is always scanned too; packets already decoded from the same bytes are skipped.
    if info is None or info.codec == "png":
        blobs = _scan_png(read_regular(path))
        if blobs and info is None:
            info = _png_info(blobs[0][1])
        for loc, blob in blobs:
            if (loc.offset, loc.size) not in decoded and info is not None:
                decode(loc, blob, info, None)
    if info is None or not payloads:
        report.problems.append(f"{path.name}: no readable frame; segment skipped")
        return None
    count = max(len(packets), max(payloads) + 1)
    lost = [n for n in range(count) if n not in payloads]
    report.lost_frames += len(lost)
    report.problems += [f"{path.name} frame {n}: unreadable" for n in lost]
    # A frame no source could locate keeps a placeholder row that fails its CRC, so `verify`
    # keeps reporting the damage instead of the frame table silently shrinking.
    locations = [located.get(n, (FrameLocation(0, 1, n), 0)) for n in range(count)]
    meta = _segment_header(path, payloads, report)
    if meta is None:
        return None
    return _Segment(
        meta["segment"],
        path.stem,
        meta,
        [loc for loc, _ in locations],
        [crc for _, crc in locations],
        payloads,
        info=info,
    )


def _segment_header(
    path: Path, payloads: dict[int, tuple[FrameHeader, bytes]], report: RebuildReport
) -> dict[str, Any] | None:
    """The segment header frame's JSON; rebuilt from the other frames when it is damaged."""
    head = payloads.get(0)
    if head is not None and head[0].kind == KIND_SEGMENT_HEADER:
        try:
            meta = json.loads(head[1])
        except (ValueError, RecursionError):
            meta = None
        if isinstance(meta, dict) and _int_hint(meta, "segment", -1) >= 0:
            return meta
    seqs = Counter(h.segment for h, _ in payloads.values())
    kinds = {h.kind for h, _ in payloads.values()}
    dict_parts = [h.parts for h, _ in payloads.values() if h.kind == KIND_DICTIONARY]
    if not seqs:
        return None
    report.problems.append(f"{path.name}: segment header frame unreadable; recovered from the other frames")
    return {
        "segment": seqs.most_common(1)[0][0],
        "kind": "tombstones" if KIND_TOMBSTONES in kinds else "records",
        "dictionary_frames": dict_parts[0] if dict_parts else 0,
    }


def _int_hint(header: dict[str, Any], key: str, default: int = 0) -> int:
    """An integer from a segment header, or ``default`` when it is missing or not an integer."""
    value = header.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _parts(seg: _Segment, first: int, kind: int) -> tuple[bytes, int] | None:
    header, body = seg.payloads[first]
    if header.kind != kind or header.part != 0:
        return None
    bodies = [body]
    for i in range(1, header.parts):
        nxt = seg.payloads.get(first + i)
        if nxt is None or nxt[0].part != i or nxt[0].kind != kind:
            return None
        bodies.append(nxt[1])
    return b"".join(bodies), header.parts


def _decode_segment(seg: _Segment, report: RebuildReport) -> None:
    dictionary = None
    n_dict = _int_hint(seg.header, "dictionary_frames")
    if n_dict:
        got = seg.payloads.get(1) and _parts(seg, 1, KIND_DICTIONARY)
        if not got:
            report.problems.append(
                f"{seg.name}: dictionary frames damaged; its records cannot be decompressed"
            )
            return
        dictionary = zstandard.ZstdCompressionDict(decompress(got[0], None))
    frame = 1 + n_dict
    while frame < len(seg.locations):
        entry = seg.payloads.get(frame)
        if entry is None:
            frame += 1
            continue
        header = entry[0]
        got = _parts(seg, frame, header.kind) if header.part == 0 else None
        if got is None:
            frame += 1
            continue
        body, count = got
        try:
            if header.kind == KIND_RECORDS:
                records = unpack_entries(decompress(body, dictionary))
                seg.records += [(r, frame, count, slot) for slot, r in enumerate(records)]
            elif header.kind == KIND_TOMBSTONES:
                ids = json.loads(decompress(body, None))
                if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                    msg = "tombstone frames do not hold a list of ids"
                    raise CorruptData(msg)
                seg.tombstones += ids
        except (MemvidError, ValueError, RecursionError) as e:
            report.problems.append(f"{seg.name} frames {frame}..{frame + count - 1}: {e}")
        frame += count


def rebuild_store(
    path: str | os.PathLike[str],
    *,
    embed: EmbedFn | None = None,
    decoder: str = "zxing",
    make_embed: Callable[[str | None], EmbedFn] | None = None,
    lock_timeout: float = 60.0,
) -> RebuildReport:
    """Recreate ``catalog.sqlite`` from the videos in ``path/segments``; see the module docstring.

    The old catalog (if any) is kept beside the new one as ``catalog.sqlite.old-<time>``.

    Args:
        path: The store folder.
        embed: Embeds texts whose vectors are lost.
        decoder: The QR decoder backend.
        make_embed: Instead of ``embed``: called with the model name the segments record, and only
            when some vectors are lost, so a caller loads an embedding model only when needed.
        lock_timeout: Seconds to wait for the store's write lock: rebuild replaces the catalog
            and vector files, so it must never run beside a writer.

    Raises:
        InvalidArgument: vectors are needed (a vector file is damaged) and no ``embed`` was given.
        StoreLocked: another process held the write lock for ``lock_timeout`` seconds.
    """
    root = Path(path)
    if not root.is_dir():
        msg = f"{root} is not a store folder; rebuild needs the folder that holds segments/."
        raise StoreNotFound(msg)
    if (root / "LOCK").is_symlink():
        msg = f"{root / 'LOCK'} is a symbolic link; refusing to open it (it could point outside the store)."
        raise UnsafePath(msg)
    lock = filelock.FileLock(str(root / "LOCK"))
    try:
        lock.acquire(timeout=lock_timeout)
    except filelock.Timeout as e:
        msg = f"Another process is writing to {root}; rebuild waited {lock_timeout} s for its lock. Retry when it is done."
        raise StoreLocked(msg) from e
    try:
        return _rebuild(root, embed, decoder, make_embed)
    finally:
        lock.release()


def _rebuild(
    root: Path, embed: EmbedFn | None, decoder: str, make_embed: Callable[[str | None], EmbedFn] | None
) -> RebuildReport:
    report = RebuildReport()
    segments: list[_Segment] = []
    for video in sorted((root / "segments").glob("*.mov")):
        if video.is_symlink():
            report.problems.append(f"{video.name}: a symbolic link; skipped")
            continue
        try:
            check_name(video.stem)
            seg = _read_segment(video, report, decoder)
        except MemvidError as e:
            report.problems.append(f"{video.name}: {e}")
            continue
        if seg is not None:
            _decode_segment(seg, report)
            segments.append(seg)
    segments.sort(key=lambda s: (s.seq, _created(s.header)))
    # Two files with one sequence number: a write that crashed before its commit, whose number the
    # next write reused (writers delete such files, but a copy may hold both). The later one is
    # the committed one.
    unique = {seg.seq: seg for seg in segments}
    report.problems += [
        f"{seg.name}: same sequence number as {unique[seg.seq].name}, which is newer; skipped"
        for seg in segments
        if unique[seg.seq] is not seg
    ]
    segments = list(unique.values())
    settings = _settings(segments)
    index = _recorded_index(root)
    if index is not None:
        settings["index"] = index  # not its snapshot: vector ids are renumbered, the index rebuilt
    # Intact vector files are kept as they are, ids included (format.md 4.3: one vector per
    # record of the segment, in pack order); only segments whose file is lost are re-embedded.
    hashes = _recorded_vector_hashes(root)
    vector_ids: dict[int, np.ndarray] = {}
    seen: set[int] = set()
    for seg in segments:
        ids = _segment_vector_ids(root, seg, settings, hashes.get(seg.name))
        if ids is not None and seen.isdisjoint(ids.tolist()):
            vector_ids[seg.seq] = ids
            seen.update(ids.tolist())
    lost = [seg for seg in segments if seg.records and seg.seq not in vector_ids]
    if lost and embed is None and make_embed is not None:
        embed = make_embed(settings.get("model"))
    if lost and embed is None:
        count = sum(len(seg.records) for seg in lost)
        msg = f"{count} records in {len(lost)} segments have no intact vector file; pass the embedding model (embed=...) to re-embed them."
        raise InvalidArgument(msg)
    next_id = max(seen, default=-1) + 1
    for seg in lost:
        assert embed is not None
        raw = embed([record.text for record, *_ in seg.records])
        dim = settings["dim"] or int(np.asarray(raw[0]).size)
        settings["dim"] = dim
        vectors = prepare_vectors(raw, int(dim), str(settings["metric"]))
        ids = np.arange(next_id, next_id + len(vectors), dtype=np.int64)
        next_id += len(vectors)
        _write_vector_file(root, seg, ids, vectors, str(settings["metric"]))
        vector_ids[seg.seq] = ids
        report.reembedded += len(vectors)
    live: dict[str, tuple[_Segment, Record, int, int, int, int]] = {}
    for seg in segments:
        for i, (record, first, count, slot) in enumerate(seg.records):
            live.pop(record.id, None)
            live[record.id] = (seg, record, first, count, slot, int(vector_ids[seg.seq][i]))
        for rid in seg.tombstones:
            report.deleted += live.pop(rid, None) is not None
        if not seg.records and settings["dim"] is not None:
            empty = np.zeros((0, int(settings["dim"])), np.float32)
            if _segment_vector_ids(root, seg, settings, hashes.get(seg.name)) is None:
                _write_vector_file(root, seg, np.zeros(0, np.int64), empty, str(settings["metric"]))
    _write_catalog(root, segments, live, settings, next_id, report)
    return report


def _write_vector_file(root: Path, seg: _Segment, ids: np.ndarray, vectors: np.ndarray, metric: str) -> None:
    """Replace a segment's vector file atomically (temp file, fsync, rename)."""
    from .index import serialize_vectors

    final = root / "segments" / f"{seg.name}.faiss"
    tmp = root / "tmp" / f"{seg.name}.faiss"
    tmp.parent.mkdir(exist_ok=True)
    with tmp.open("wb") as fh:
        fh.write(serialize_vectors(ids, vectors, metric))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def _created(header: dict[str, Any]) -> float:
    value = header.get("created")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else time.time()


def _settings(segments: list[_Segment]) -> dict[str, Any]:
    settings: dict[str, Any] = {"dim": None, "metric": "cosine", "model": None, "profile": "lossless"}
    for seg in segments:
        emb = seg.header.get("embedding") or {}
        settings.update({k: v for k, v in emb.items() if v is not None})
        settings["profile"] = seg.header.get("profile", settings["profile"])
    return settings


def _from_old_catalog(root: Path, read: Callable[[Catalog], Any], default: Any) -> Any:
    """``read(catalog)`` on the old catalog, or ``default`` when it is missing or unreadable."""
    path = root / Catalog.FILE
    if not path.is_file():
        return default
    try:
        catalog = Catalog(path, readonly=True)
        try:
            return read(catalog)
        finally:
            catalog.close()
    except (sqlite3.Error, MemvidError, ValueError):
        return default


def _recorded_index(root: Path) -> Any:
    """The index choice (``Engine(index=...)``) the old catalog recorded, or None."""
    return _from_old_catalog(root, lambda catalog: catalog.get_meta("index"), None)


def _recorded_vector_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of each vector file as the old catalog recorded it; empty when it is unreadable.

    Bytes flipped inside the floats still parse, so when the old catalog survives its checksums
    decide which vector files to trust; the others are re-embedded.
    """
    hashes: dict[str, str] = _from_old_catalog(
        root, lambda catalog: {s.name: s.index_sha256 for s in catalog.segments()}, {}
    )
    return hashes


def _segment_vector_ids(
    root: Path, seg: _Segment, settings: dict[str, Any], sha256: str | None = None
) -> np.ndarray | None:
    """The vector ids of an intact vector file holding one vector per record, else None."""
    if settings["dim"] is None:
        return None
    try:
        data = (root / "segments" / f"{seg.name}.faiss").read_bytes()
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            return None
        ids, vectors = deserialize_vectors(data, int(settings["dim"]))
    except (OSError, MemvidError):
        return None
    # Vectors are written in the segment's record order; a count mismatch means damage.
    expected = _int_hint(seg.header, "records") if seg.records else 0
    if len(vectors) != expected or expected != len(seg.records):
        return None
    return ids


def _write_catalog(
    root: Path,
    segments: list[_Segment],
    live: dict[str, tuple[_Segment, Record, int, int, int, int]],
    settings: dict[str, Any],
    next_vector_id: int,
    report: RebuildReport,
) -> None:
    tmp = root / "tmp" / f"rebuild-{os.getpid()}.sqlite"
    tmp.parent.mkdir(exist_ok=True)
    tmp.unlink(missing_ok=True)
    catalog = Catalog(tmp)
    catalog.create(settings)
    next_seq = max((s.seq for s in segments), default=0) + 1
    with catalog.transaction():
        rows = [
            RecordRow(rid, vid, seg.seq, first, count, slot, len(record.text.encode()), record.metadata)
            for rid, (seg, record, first, count, slot, vid) in live.items()
        ]
        for seg in segments:
            video = root / "segments" / f"{seg.name}.mov"
            index_path = root / "segments" / f"{seg.name}.faiss"
            assert seg.info is not None
            kind = seg.header.get("kind")
            catalog.add_segment(
                SegmentRow(
                    seq=seg.seq,
                    name=seg.name,
                    kind=kind if kind in ("records", "tombstones") else "records",
                    profile=str(seg.header.get("profile", "lossless")),
                    info=seg.info,
                    frame_count=len(seg.locations),
                    dict_frames=_int_hint(seg.header, "dictionary_frames"),
                    record_count=len(seg.records),
                    video_bytes=video.stat().st_size,
                    video_sha256=sha256_file(video),
                    index_bytes=index_path.stat().st_size if index_path.exists() else 0,
                    index_sha256=sha256_file(index_path) if index_path.exists() else "",
                    created=_created(seg.header),
                ),
                list(zip(seg.locations, seg.crcs, strict=False)),
            )
        catalog.put_records(rows)
        catalog.set_meta("next_vector_id", next_vector_id)
        catalog.set_meta("next_seq", next_seq)
        catalog.set_meta("generation", int(time.time()))
    catalog.close()
    old = root / Catalog.FILE
    if old.exists():
        os.replace(old, root / f"{Catalog.FILE}.old-{int(time.time())}")
    for suffix in ("-wal", "-shm"):
        (root / (Catalog.FILE + suffix)).unlink(missing_ok=True)
    os.replace(tmp, old)
    report.segments = len(segments)
    report.records = len(rows)


__all__ = ["RebuildReport", "rebuild_store"]
