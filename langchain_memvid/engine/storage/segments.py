"""Segments: immutable pairs of files (``NAME.mov`` video, ``NAME.faiss`` vectors) built in one go.

With them comes the segment's lexicon (its records' terms, for the catalog).

A segment's frames are, in order: one segment-header frame (JSON), the zstd dictionary frames (if
any), then the record packs (or, for a delete, the tombstone list). Everything a reader needs to
recover the records is inside the video; the vector file only saves re-embedding.

QR generation is the costly step and parallelises per frame, so large segments fan it out to a
pool of worker processes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zstandard

from langchain_memvid.engine.catalog.catalog import format_for
from langchain_memvid.engine.codec import qr
from langchain_memvid.engine.codec.frames import (
    KIND_DICTIONARY,
    KIND_RECORDS,
    KIND_SEGMENT_HEADER,
    KIND_TOMBSTONES,
    FrameHeader,
    Packer,
    build_frame,
    split_body,
)
from langchain_memvid.engine.codec.records import EncodedRecord, Record, encode_batch
from langchain_memvid.engine.codec.video import FrameLocation, VideoInfo, raise_if_disk_full, write_video
from langchain_memvid.engine.errors import CorruptData, InvalidArgument
from langchain_memvid.engine.files import fsync_file, sha256_regular
from langchain_memvid.engine.profiles import Profile, get_profile
from langchain_memvid.engine.search.encodings import recorded_encoding
from langchain_memvid.engine.search.lexicon import build_lexicon, keeps_lexicon
from langchain_memvid.engine.search.vector_files import (
    deserialize_vectors,
    serialize_vectors,
)
from langchain_memvid.engine.search.vectors import prepare_vectors

DICT_MIN_TEXT_BYTES = 32 << 10  # below this a dictionary costs more frames than it saves
DICT_MIN_RECORDS = 16
PARALLEL_MIN_FRAMES = 24  # below this, starting workers costs more than it saves


@dataclass(frozen=True)
class Placement:
    """Where a record landed: the pack's first frame, its frame count and the record's slot."""

    first_frame: int
    frame_count: int
    slot: int


@dataclass
class BuiltSegment:
    """The result of writing one segment, before the catalog commits it."""

    name: str
    seq: int
    kind: str
    video_path: Path
    index_path: Path
    locations: list[FrameLocation]
    frame_crcs: list[int]
    info: VideoInfo
    dict_frames: int
    placements: list[Placement] = field(default_factory=list)
    video_sha256: str = ""
    index_sha256: str = ""
    dictionary: zstandard.ZstdCompressionDict | None = None
    vectors: np.ndarray | None = None  # the vectors as stored (decoded from a lossy encoding)
    lexicon: bytes | None = None  # the records' terms and counts (search/lexicon.py)
    vector_ids: np.ndarray | None = None  # in the order of ``vectors``
    rows: list[tuple[str, int, int, dict[str, Any]]] | None = (
        None  # (id, vector id, text bytes, metadata): build_segment
    )

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for the trip from a worker to the writer (a zstd dictionary travels as bytes)."""
        state = dict(self.__dict__)
        if self.dictionary is not None:
            state["dictionary"] = self.dictionary.as_bytes()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state.get("dictionary"), bytes):
            state["dictionary"] = zstandard.ZstdCompressionDict(state["dictionary"])
        self.__dict__.update(state)


@dataclass(frozen=True)
class SegmentJob:
    """One records segment to build anywhere the store folder is visible (``build_segment``).

    Handed out by ``Engine.bulk``, which reserved its sequence number and its ``size`` vector
    ids from ``first_vector_id``; plain data, so it travels to other processes and machines.
    """

    store: str
    seq: int
    first_vector_id: int
    size: int
    settings: dict[str, Any]
    profile: str
    encoder: str = "zxing"


def train_dictionary(records: Sequence[EncodedRecord]) -> zstandard.ZstdCompressionDict | None:
    """A zstd dictionary trained on this segment's texts, when the segment is big enough to gain.

    The dictionary is stored in the segment's own frames, so it is sized to pay for itself:
    about 1/16 of the text, between 4 and 16 KiB (measured: a larger one saves less than it
    costs on a 460 KB corpus). Fixed cover parameters (k=256, d=8) train in about 0.1 s; letting
    zstd search for them takes several times longer for a gain under 1 %.
    """
    total = sum(len(r.text_bytes) for r in records)
    if total < DICT_MIN_TEXT_BYTES or len(records) < DICT_MIN_RECORDS:
        return None
    size = max(4 << 10, min(16 << 10, total // 16))
    samples: list[bytes | bytearray | memoryview] = [r.text_bytes for r in records if r.text_bytes]
    try:
        return zstandard.train_dictionary(size, samples, k=256, d=8, level=19)
    except zstandard.ZstdError:
        return None  # too few distinct samples; packs are compressed without a dictionary


def _encode_images(payloads: list[bytes], ecc: str, module_px: int, backend: str) -> list[np.ndarray]:
    return [qr.encode(p, ecc=ecc, module_px=module_px, backend=backend) for p in payloads]


_POOL: Executor | None = None


def _pool() -> Executor:
    """A lazily started pool of worker processes, shared by all stores in this process."""
    global _POOL  # noqa: PLW0603 - one pool per process, started on first large write
    if _POOL is None:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        _POOL = ProcessPoolExecutor(
            max_workers=os.cpu_count() or 1, mp_context=multiprocessing.get_context(method)
        )
    return _POOL


def render_frames(
    payloads: list[bytes], profile: Profile, backend: str, processes: int | None = None
) -> list[np.ndarray]:
    """QR-encode frame payloads into images, in parallel for large segments.

    ``processes=1`` encodes in this process (a cluster task that was given one core).
    """
    workers = processes or os.cpu_count() or 1
    if len(payloads) < PARALLEL_MIN_FRAMES or workers < 2:
        return _encode_images(payloads, profile.ecc, profile.module_px, backend)
    step = max(8, len(payloads) // (workers * 4))
    batches = [payloads[i : i + step] for i in range(0, len(payloads), step)]
    futures = [_pool().submit(_encode_images, b, profile.ecc, profile.module_px, backend) for b in batches]
    return [image for f in futures for image in f.result()]


def segment_name(seq: int) -> str:
    """A new segment's name: its sequence number and a random part (format.md section 2).

    >>> import re
    >>> bool(re.fullmatch(r"00000042-[0-9a-f]{8}", segment_name(42)))
    True
    """
    return f"{seq:08d}-{secrets.token_hex(4)}"


class SegmentBuilder:
    """Writes one segment's files into a temporary folder; the store moves them into place."""

    def __init__(
        self,
        tmp_dir: Path,
        profile: Profile,
        *,
        encoder: str = "zxing",
        settings: dict[str, Any],
        processes: int | None = None,
    ) -> None:
        self.tmp_dir = tmp_dir
        self.profile = profile
        self.encoder = encoder
        self.settings = settings
        self.processes = processes
        self.capacity = qr.capacity(profile.ecc)

    def _header(self, seq: int, kind: str, extra: dict[str, Any], *, vectors: bool = False) -> bytes:
        encoding = self.settings.get("vector_encoding") if vectors else None
        body = {
            "format_version": format_for(encoding),  # 2 for a segment with compact vectors
            "segment": seq,
            "kind": kind,
            "created": time.time(),
            "profile": self.profile.name,
            "embedding": {k: self.settings.get(k) for k in ("model", "dim", "metric", "vector_encoding")},
            **extra,
        }
        return json.dumps(body, sort_keys=True).encode()

    def build_records(
        self, seq: int, records: Sequence[EncodedRecord], vectors: np.ndarray, vector_ids: np.ndarray
    ) -> BuiltSegment:
        """Pack, QR-encode and write records and their vectors as a new segment."""
        name = segment_name(seq)
        dictionary = train_dictionary(records)
        # The dictionary is mostly text fragments, so it is stored zstd-compressed (without a
        # dictionary): fewer frames to store and fewer to decode when a reader opens the segment.
        dict_body = zstandard.ZstdCompressor(level=19).compress(dictionary.as_bytes()) if dictionary else b""
        dict_parts = split_body(dict_body, self.capacity) if dictionary is not None else []
        packs = list(Packer(self.capacity, self.profile.zstd_level, dictionary).packs(records))

        frame_no = 1 + len(dict_parts)
        payloads: list[bytes] = []
        placements: list[Placement] = []
        for pack in packs:
            parts = split_body(pack.body, self.capacity)
            for i, part in enumerate(parts):
                payloads.append(
                    build_frame(FrameHeader(KIND_RECORDS, seq, frame_no + i, i, len(parts)), part)
                )
            placements += [Placement(frame_no, len(parts), slot) for slot in range(len(pack.records))]
            frame_no += len(parts)
        dict_payloads = [
            build_frame(FrameHeader(KIND_DICTIONARY, seq, 1 + i, i, len(dict_parts)), part)
            for i, part in enumerate(dict_parts)
        ]
        header = self._header(
            seq,
            "records",
            {"records": len(records), "packs": len(packs), "dictionary_frames": len(dict_parts)},
            vectors=bool(len(records)),
        )
        head_payloads = [build_frame(FrameHeader(KIND_SEGMENT_HEADER, seq, 0, 0, 1), header)]
        built = self._write(
            seq, name, "records", head_payloads + dict_payloads + payloads, vectors, vector_ids
        )
        built.dict_frames = len(dict_parts)
        built.dictionary = dictionary
        built.placements = placements
        built.vector_ids = np.asarray(vector_ids, dtype=np.int64)
        if keeps_lexicon(self.settings):
            built.lexicon = build_lexicon(vector_ids, [r.text_bytes.decode() for r in records])
        return built

    def build_tombstones(self, seq: int, ids: Sequence[str]) -> BuiltSegment:
        """Write a segment that records deletions, so the video alone can replay them."""
        name = segment_name(seq)
        body = zstandard.ZstdCompressor(level=19).compress(json.dumps(list(ids), ensure_ascii=False).encode())
        parts = split_body(body, self.capacity)
        payloads = [
            build_frame(FrameHeader(KIND_TOMBSTONES, seq, 1 + i, i, len(parts)), p)
            for i, p in enumerate(parts)
        ]
        header = self._header(seq, "tombstones", {"deleted": len(ids)})
        head = [build_frame(FrameHeader(KIND_SEGMENT_HEADER, seq, 0, 0, 1), header)]
        dim = int(self.settings["dim"])
        empty = np.zeros((0, dim), np.float32)
        return self._write(seq, name, "tombstones", head + payloads, empty, np.zeros(0, np.int64))

    def _write(
        self,
        seq: int,
        name: str,
        kind: str,
        payloads: list[bytes],
        vectors: np.ndarray,
        vector_ids: np.ndarray,
    ) -> BuiltSegment:
        images = render_frames(payloads, self.profile, self.encoder, self.processes)
        video_path = self.tmp_dir / f"{name}.mov"
        index_path = self.tmp_dir / f"{name}.faiss"
        writing = video_path  # the file a full disk would be reported against
        try:
            locations, info = write_video(video_path, images, self.profile)
            with video_path.open("rb") as fh:
                crcs = [zlib.crc32(_pread(fh.fileno(), loc)) for loc in locations]
            writing = index_path
            encoding = recorded_encoding(self.settings)
            data = serialize_vectors(vector_ids, vectors, str(self.settings["metric"]), encoding)
            if encoding != "float32":  # the index must search what the file holds
                vectors = deserialize_vectors(data, vectors.shape[1])[1]
            index_path.write_bytes(data)
            for writing in (video_path, index_path):  # ``writing`` names the file being fsynced
                fsync_file(writing)
        except BaseException as e:
            # The caller only knows about segments that were built; a half-written one (disk full,
            # encoder error) would otherwise stay in tmp/ until the store is next opened.
            for path in (video_path, index_path):
                path.unlink(missing_ok=True)
            # Nothing is committed before every segment file is built, so a full disk here is
            # reported as DiskFull (errno ENOSPC or EFBIG kept) rather than a raw OSError.
            raise_if_disk_full(e, writing)
            raise
        return BuiltSegment(
            name=name,
            seq=seq,
            kind=kind,
            video_path=video_path,
            index_path=index_path,
            locations=locations,
            frame_crcs=crcs,
            info=info,
            dict_frames=0,
            video_sha256=sha256_regular(video_path)[1],
            index_sha256=sha256_regular(index_path)[1],
            vectors=vectors,
        )


def build_segment(
    job: SegmentJob, records: Sequence[Record], vectors: Any, *, processes: int | None = None
) -> BuiltSegment:
    """Build ``job``'s segment from records and their vectors into the store's ``tmp/`` folder.

    Runs in any process that sees the store folder at the same path (a worker of a cluster); the
    store's writer commits the result (``Engine.bulk``); it pickles. Records are validated as
    ``Engine.add`` does: the last of duplicate ids wins, and nothing is written for bad input.
    ``processes`` caps the QR-encoding processes (default: one per core; 1 in a task given one).

    Raises:
        InvalidRecord, InvalidVector: as for ``Engine.add``.
        InvalidArgument: more records than the job reserved vector ids for.
    """
    encoded, kept = encode_batch(records, vectors)
    if not encoded:
        msg = f"Segment job {job.seq} got no records; a job that is not needed is simply not committed."
        raise InvalidArgument(msg)
    if len(encoded) > job.size:
        msg = f"Segment job {job.seq} reserved {job.size} vector ids; got {len(encoded)} records."
        raise InvalidArgument(msg)
    dim = int(job.settings["dim"])
    prepared = prepare_vectors(kept, dim, str(job.settings["metric"]))
    vids = np.arange(job.first_vector_id, job.first_vector_id + len(encoded), dtype=np.int64)
    builder = SegmentBuilder(
        Path(job.store) / "tmp",
        get_profile(job.profile),
        encoder=job.encoder,
        settings=job.settings,
        processes=processes,
    )
    built = builder.build_records(job.seq, encoded, prepared, vids)
    built.rows = [
        (e.id, int(v), len(e.text_bytes), json.loads(e.metadata_json))
        for e, v in zip(encoded, vids, strict=True)
    ]
    return built


def _pread(fd: int, loc: FrameLocation) -> bytes:
    data = os.pread(fd, loc.size, loc.offset)
    if len(data) != loc.size:
        msg = "Video packet shorter than its recorded size."
        raise CorruptData(msg)
    return data
