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
from contextlib import suppress
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import filelock
import numpy as np
import zstandard

from langchain_memvid.engine.catalog.catalog import Catalog, RecordRow, SegmentRow, check_name
from langchain_memvid.engine.codec import qr
from langchain_memvid.engine.codec.frames import (
    KIND_DICTIONARY,
    KIND_RECORDS,
    KIND_SEGMENT_HEADER,
    KIND_TOMBSTONES,
    STORE_FORMAT_VERSION,
    FrameHeader,
    decompress,
    parse_frame,
)
from langchain_memvid.engine.codec.records import Record, unpack_entries
from langchain_memvid.engine.codec.video import FrameLocation, VideoInfo, decode_packet, probe, scan_packets
from langchain_memvid.engine.errors import (
    CorruptData,
    InvalidArgument,
    LimitExceeded,
    MemvidError,
    SegmentNotFound,
    StoreLocked,
    StoreNotFound,
    UnsafePath,
    UnsupportedFormat,
)
from langchain_memvid.engine.files import (
    check_regular,
    fsync_dir,
    move_aside,
    read_regular,
    refuse_links,
    sha256_regular,
)
from langchain_memvid.engine.search.encodings import recorded_encoding
from langchain_memvid.engine.search.lexicon import build_lexicon, keeps_lexicon
from langchain_memvid.engine.search.vector_files import (
    check_vector_file,
    deserialize_vectors,
    mapped_file,
    serialize_vectors,
)
from langchain_memvid.engine.search.vectors import prepare_vectors
from langchain_memvid.engine.storage.commit import install, write_durably

EmbedFn = Callable[[Sequence[str]], Any]
MAX_SCAN_BYTES = 4 << 30  # a video read whole to find its PNG frames; larger ones are only demuxed


@dataclass
class RebuildReport:
    """What rebuild recovered and what it had to give up."""

    segments: int = 0
    records: int = 0
    deleted: int = 0
    reembedded: int = 0
    lost_frames: int = 0
    problems: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)  # files moved to quarantine/, with why
    # True when the last catalog was readable and decided which segments had committed; without
    # it every segment is replayed, a write that crashed before its commit included.
    used_catalog: bool = False


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
    size = check_regular(path)
    info, packets = _demux(path, report)
    located: dict[int, tuple[FrameLocation, int]] = {}
    payloads: dict[int, tuple[FrameHeader, bytes]] = {}
    decoded: set[tuple[int, int]] = set()  # (offset, size) of packets that decoded

    def decode(loc: FrameLocation, data: bytes, info: VideoInfo, position: int | None) -> None:
        try:
            header, body = parse_frame(qr.decode(decode_packet(data, info), backend=decoder))
        except UnsupportedFormat as e:
            raise _newer(path, e) from e
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
    if (info is None or info.codec == "png") and size > MAX_SCAN_BYTES:
        report.problems.append(f"{path.name}: {size} bytes, too large to scan for frames; only demuxed")
    elif info is None or info.codec == "png":
        blobs = _scan_png(read_regular(path, limit=MAX_SCAN_BYTES))
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


def _newer(path: Path, e: Exception) -> UnsupportedFormat:
    """Rebuild stops at a segment from a newer format: skipping it would drop its records."""
    msg = f"{path.name} was written by a newer format than this library reads ({e}). Upgrade langchain-qrvideo (the langchain_memvid package) and run rebuild again; nothing was changed."
    return UnsupportedFormat(msg)


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
        if isinstance(meta, dict) and _int_hint(meta, "format_version", 0) > STORE_FORMAT_VERSION:
            msg = f"its header says format version {meta['format_version']}"
            raise _newer(path, UnsupportedFormat(msg))
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
    """Recreate the catalog from the videos in ``path/segments``; see the module docstring.

    Safe to run at any time: it holds the store's write lock; it applies the file rules of
    ``Engine`` (no links, regular files only, bounded sizes); when the last catalog is readable,
    only the segments it committed are replayed (a crashed write never becomes visible), and
    the others are moved to ``quarantine/``, never deleted; it stops at a segment from a newer
    format. The previous catalog is kept as ``catalog.sqlite.old-<time>``. When it is a sound
    SQLite file the new state is written into it in one transaction, so open handles see a
    commit (and refuse their next write once, with ``StoreReplaced``); otherwise the file is
    replaced.

    Args:
        path: The store folder.
        embed: Embeds texts whose vectors are lost.
        decoder: The QR decoder backend.
        make_embed: Instead of ``embed``: called with the model name the segments record, and only
            when some vectors are lost, so a caller loads an embedding model only when needed.
        lock_timeout: Seconds to wait for the store's write lock.

    Raises:
        InvalidArgument: vectors are needed (a vector file is damaged) and no ``embed`` was given.
        StoreLocked: another process held the write lock for ``lock_timeout`` seconds.
        UnsafePath: a link, FIFO or device where the store's own files belong.
        UnsupportedFormat: a segment was written by a newer format (nothing is changed).
    """
    if "://" in os.fspath(path) or (Path(path) / "_versions").is_dir():
        msg = f"rebuild works on store folders; {os.fspath(path)} is a versioned store (format 3), whose versions each name a whole catalog. Open an earlier version (version=N) or copy the objects into a folder to rebuild there."
        raise InvalidArgument(msg)
    root = Path(path)
    if not root.is_dir():
        msg = f"{root} is not a store folder; rebuild needs the folder that holds segments/."
        raise StoreNotFound(msg)
    refuse_links(root)
    if not (root / "segments").is_dir():
        msg = f"{root} has no segments/ folder, so there is nothing to rebuild from."
        raise StoreNotFound(msg)
    lock = filelock.FileLock(str(root / "LOCK"))
    try:
        lock.acquire(timeout=lock_timeout)
    except filelock.Timeout as e:
        msg = f"Another process is writing to {root}; rebuild waited {lock_timeout} s for its lock. Retry when it is done."
        raise StoreLocked(msg) from e
    try:
        refuse_links(root)  # again under the lock: the folder may have changed while waiting
        if (root / Catalog.FILE).exists() or (root / Catalog.FILE).is_symlink():
            check_regular(root / Catalog.FILE)  # it is kept as the backup: a folder cannot be
        return _rebuild(root, embed, decoder, make_embed)
    finally:
        lock.release()


@dataclass
class _LastCatalog:
    """What the catalog being replaced says, when it is readable: the committed state."""

    live: set[str]
    garbage: dict[str, str]
    index: Any
    vector_hashes: dict[str, str]
    generation: int
    settings: dict[str, Any]  # metric, dim, model, profile: kept even when no segment records them


def _last_catalog(root: Path) -> _LastCatalog | None:
    """The committed state of the old catalog, or None when there is none or it cannot be read."""
    path = root / Catalog.FILE
    try:
        if not path.exists() or not Catalog.inspect(path):
            return None
        catalog = Catalog(path, readonly=True)
    except (sqlite3.Error, MemvidError, OSError, ValueError):
        return None
    try:
        rows = catalog.db.execute("SELECT name FROM segments").fetchall()
        hashes: dict[str, str] = {}
        with suppress(MemvidError):  # damaged rows: no vector file is trusted on their word
            hashes = {s.name: s.index_sha256 for s in catalog.segments()}
        index = None
        with suppress(MemvidError):
            index = catalog.get_meta("index")
        generation = 0
        with suppress(MemvidError):
            generation = catalog.generation()
        settings: dict[str, Any] = {}
        with suppress(MemvidError):
            recorded = catalog.settings()
            settings = {
                k: recorded[k]
                for k in ("dim", "metric", "model", "profile", "vector_encoding")
                if recorded.get(k) is not None
            }
        return _LastCatalog(
            settings=settings,
            live={r[0] for r in rows if isinstance(r[0], str)},
            garbage=catalog.garbage(),
            index=index,
            vector_hashes=hashes,
            generation=generation,
        )
    except (sqlite3.Error, MemvidError, ValueError):
        return None
    finally:
        catalog.close()


def _segment_videos(root: Path) -> list[Path]:
    """The ``.mov`` files in ``segments/``, each a regular file (else the rebuild stops)."""
    videos = []
    for entry in sorted((root / "segments").iterdir()):
        if entry.suffix in (".mov", ".faiss"):
            check_regular(entry)
            if entry.suffix == ".mov":
                videos.append(entry)
    return videos


def _quarantine(root: Path, name: str, why: str, report: RebuildReport) -> None:
    """Move a segment's files to ``quarantine/`` (never delete them) and say why."""
    for suffix in (".mov", ".faiss"):
        src = root / "segments" / f"{name}{suffix}"
        if src.exists():
            dst = move_aside(src, root / "quarantine")
            report.quarantined.append(f"segments/{src.name} -> quarantine/{dst.name}: {why}")


def _rebuild(
    root: Path, embed: EmbedFn | None, decoder: str, make_embed: Callable[[str | None], EmbedFn] | None
) -> RebuildReport:
    report = RebuildReport()
    last = _last_catalog(root)
    segments: list[_Segment] = []
    # Files not replayed go to quarantine/ (after every check passed), never deleted.
    aside: list[tuple[str, str]] = []
    for video in _segment_videos(root):
        try:
            check_name(video.stem)
            seg = _read_segment(video, report, decoder)
        except (UnsupportedFormat, UnsafePath):
            raise
        except MemvidError as e:
            report.problems.append(f"{video.name}: {e}")
            aside.append((video.stem, "unreadable"))
            continue
        if seg is None:
            aside.append((video.stem, "no readable frame"))
            continue
        _decode_segment(seg, report)
        segments.append(seg)
    # Only what the last catalog committed is replayed: a write killed after its files were
    # renamed into place never committed, and must not become visible now.
    if last is not None:
        for seg in segments:
            if seg.name not in last.live:
                state = last.garbage.get(seg.name)
                why = {
                    "pending": "a write that never committed",
                    "dropped": "a segment a committed compaction dropped",
                }.get(
                    state or "",
                    "not in the last catalog (a write that never committed, or a file from elsewhere)",
                )
                aside.append((seg.name, why))
        segments = [seg for seg in segments if seg.name in last.live]
    report.used_catalog = last is not None
    segments.sort(key=lambda s: (s.seq, _created(s.header)))
    # Two files with one sequence number (only without a catalog): a write that crashed before its
    # commit, whose number the next write reused. The later one is the committed one.
    unique = {seg.seq: seg for seg in segments}
    aside += [
        (seg.name, f"same sequence number as {unique[seg.seq].name}, which is newer")
        for seg in segments
        if unique[seg.seq] is not seg
    ]
    segments = list(unique.values())
    settings = _settings(segments, last.settings if last is not None else {})
    if last is not None and last.index is not None:
        settings["index"] = last.index  # not its snapshot: vector ids are renumbered, the index rebuilt
    # Intact vector files are kept as they are, ids included (format.md 4.3: one vector per
    # record of the segment, in pack order); only segments whose file is lost are re-embedded.
    hashes = last.vector_hashes if last is not None else {}
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
    replayed = {seg.name for seg in segments} | {name for name, _ in aside}
    aside += [
        (p.stem, "a vector file without its video")
        for p in sorted((root / "segments").glob("*.faiss"))
        if p.stem not in replayed
    ]
    for name, why in aside:
        _quarantine(root, name, why, report)
    next_id = max(seen, default=-1) + 1
    for seg in lost:
        assert embed is not None
        raw = embed([record.text for record, *_ in seg.records])
        dim = settings["dim"] or int(np.asarray(raw[0]).size)
        settings["dim"] = dim
        vectors = prepare_vectors(raw, int(dim), str(settings["metric"]))
        ids = np.arange(next_id, next_id + len(vectors), dtype=np.int64)
        next_id += len(vectors)
        _write_vector_file(root, seg, ids, vectors, settings, report)
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
                _write_vector_file(root, seg, np.zeros(0, np.int64), empty, settings, report)
    generation = max(last.generation + 1 if last is not None else 0, int(time.time()))
    tmp = _write_catalog(root, segments, live, settings, next_id, generation, vector_ids)
    _install_catalog(root, tmp)
    report.segments = len(segments)
    report.records = len(live)
    return report


def _write_vector_file(
    root: Path,
    seg: _Segment,
    ids: np.ndarray,
    vectors: np.ndarray,
    settings: dict[str, Any],
    report: RebuildReport,
) -> None:
    """Replace a segment's vector file atomically (temp file, fsync, rename); a damaged one is kept aside.

    Written in the store's vector encoding (intact files keep theirs: they are never rewritten).
    """
    final = root / "segments" / f"{seg.name}.faiss"
    tmp = root / "tmp" / f"{seg.name}.faiss"
    tmp.parent.mkdir(exist_ok=True)
    encoding = recorded_encoding(settings)
    write_durably(tmp, serialize_vectors(ids, vectors, str(settings["metric"]), encoding))
    if final.exists():
        aside = move_aside(final, root / "quarantine")
        report.quarantined.append(f"segments/{final.name} -> quarantine/{aside.name}: damaged vector file")
    install(tmp, final)


def _created(header: dict[str, Any]) -> float:
    value = header.get("created")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else time.time()


def _settings(segments: list[_Segment], recorded: dict[str, Any]) -> dict[str, Any]:
    """The store's settings: what the segments' headers say, else what the last catalog said."""
    settings: dict[str, Any] = {
        "dim": None,
        "metric": "cosine",
        "model": None,
        "profile": "lossless",
        **recorded,
    }
    for seg in segments:
        emb = seg.header.get("embedding") or {}
        settings.update({k: v for k, v in emb.items() if v is not None})
        settings["profile"] = seg.header.get("profile", settings["profile"])
    return settings


def _segment_vector_ids(
    root: Path, seg: _Segment, settings: dict[str, Any], sha256: str | None = None
) -> np.ndarray | None:
    """The vector ids of an intact vector file holding one vector per record, else None."""
    if settings["dim"] is None:
        return None
    # Vectors are written in the segment's record order; a count mismatch means damage.
    expected = _int_hint(seg.header, "records") if seg.records else 0
    if expected != len(seg.records):
        return None
    path = root / "segments" / f"{seg.name}.faiss"
    try:
        # Read only what a file of that many vectors can be: a crafted size fills no memory.
        # (float32 is the largest encoding; int8 adds 8 bytes a dimension of calibration.)
        data = read_regular(path, limit=(expected + 2) * (int(settings["dim"]) * 4 + 8) + 4096)
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            return None
        ids, vectors = deserialize_vectors(data, int(settings["dim"]))
    except (SegmentNotFound, LimitExceeded, CorruptData):
        return None
    if len(vectors) != expected:
        return None
    return ids


def _file_encoding(path: Path, dim: int) -> str:
    """The encoding of an intact vector file (rebuild has checked or rewritten each one)."""
    with mapped_file(path) as mapped:
        return check_vector_file(mapped, dim).encoding


def _write_catalog(
    root: Path,
    segments: list[_Segment],
    live: dict[str, tuple[_Segment, Record, int, int, int, int]],
    settings: dict[str, Any],
    next_vector_id: int,
    generation: int,
    file_ids: dict[int, np.ndarray],
) -> Path:
    """The new catalog, complete, in ``tmp/``; returns its path."""
    tmp = root / "tmp" / f"rebuild-{os.getpid()}.sqlite"
    tmp.parent.mkdir(exist_ok=True)
    tmp.unlink(missing_ok=True)
    catalog = Catalog(tmp)
    try:
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
                if seg.records and settings.get("dim") is not None:  # compact vectors: version 2
                    catalog.require_format(_file_encoding(index_path, int(settings["dim"])))
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
                        video_sha256=sha256_regular(video)[1],
                        index_bytes=index_path.stat().st_size if index_path.exists() else 0,
                        index_sha256=sha256_regular(index_path)[1] if index_path.exists() else "",
                        created=_created(seg.header),
                    ),
                    list(zip(seg.locations, seg.crcs, strict=False)),
                )
            catalog.put_records(rows)
            words: dict[int, list[tuple[int, str]]] = {}
            if keeps_lexicon(settings):
                words = {s.seq: [] for s in segments if s.header.get("kind") != "tombstones"}
                for seg, record, _first, _count, _slot, vid in live.values():
                    words.setdefault(seg.seq, []).append((vid, record.text))
            for seq, pairs in words.items():
                catalog.put_lexicon(seq, build_lexicon([v for v, _ in pairs], [t for _, t in pairs]))
            catalog.set_meta("next_vector_id", next_vector_id)
            catalog.set_meta("next_seq", next_seq)
            catalog.set_meta("generation", generation)
            catalog.list_dead({seg.seq: file_ids[seg.seq] for seg in segments if seg.seq in file_ids})
            catalog.new_catalog_id()
    finally:
        catalog.close()
    return tmp


def _install_catalog(root: Path, new: Path) -> None:
    """Make ``new`` the store's catalog, keeping the previous one as ``catalog.sqlite.old-<time>``.

    A sound old catalog receives the new state in one transaction: there is never a moment
    without a catalog, and open handles (whose connections stay valid) see it as a commit. A
    damaged one cannot take a transaction: it is linked to its backup name, its ``-wal`` and
    ``-shm`` files are moved aside with it, and the new file renamed over it.
    """
    path = root / Catalog.FILE
    backup = root / f"{Catalog.FILE}.old-{time.time_ns()}"
    if path.exists():
        try:
            ours = Catalog.inspect(path)  # never write into another program's database
        except MemvidError:
            ours = False
        if ours:
            try:
                _replace_contents(path, new, backup)
                new.unlink()
                return
            except (MemvidError, sqlite3.Error):
                backup.unlink(missing_ok=True)  # damaged beyond a transaction: swap the files
        os.link(path, backup)
        for suffix in ("-wal", "-shm"):
            side = root / f"{Catalog.FILE}{suffix}"
            if side.exists():
                os.replace(side, root / f"{backup.name}{suffix}")
    os.replace(new, path)
    fsync_dir(root)


_TABLES = ("meta", "segments", "frames", "records", "checksums", "garbage", "dead_vectors", "lexicon")


def _replace_contents(path: Path, new: Path, backup: Path) -> None:
    """Back up the catalog at ``path``, then replace every row with ``new``'s in one transaction."""
    catalog = Catalog(path)
    try:
        catalog.backup_to(backup)
        catalog.create({})  # the tables of this version, on a catalog an older version wrote
        catalog.db.execute("ATTACH DATABASE ? AS rebuilt", (str(new),))
        try:
            with catalog.transaction():
                for table in _TABLES:
                    catalog.db.execute(f"DELETE FROM main.{table}")  # fixed table names
                    catalog.db.execute(f"INSERT INTO main.{table} SELECT * FROM rebuilt.{table}")
        finally:
            catalog.db.execute("DETACH DATABASE rebuilt")
    finally:
        catalog.close()


__all__ = ["RebuildReport", "rebuild_store"]
