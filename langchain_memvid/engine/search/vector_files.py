"""A segment's vector file (``NAME.faiss``): writing it, checking its layout, reading it back.

Each segment writes its vectors with FAISS's own writer (no pickle), in one of four *encodings*
(docs/format.md section 4.3), the source of truth for the store's vectors:

- ``float32``: an ``IndexIDMap2`` over a flat index, 4 bytes a dimension (exact; 0.1's format);
- ``float16``: an ``IndexIDMap`` over a scalar quantizer ``QT_fp16``, 2 bytes a dimension;
- ``int8``: an ``IndexIDMap`` over a scalar quantizer ``QT_8bit`` calibrated on the segment's
  own vectors (each dimension's minimum and range, kept in the file), 1 byte a dimension;
- ``binary``: an ``IndexBinaryIDMap2`` over the vectors' sign bits, 1 bit a dimension (cosine
  stores only; a vector reads back as its signs scaled to unit length).

The file says its own encoding, so the segments of one store may differ. ``check_vector_file``
checks every size in a file before FAISS reads it; ``VectorFiles`` serves vectors by vector id
from the memory-mapped files, decoding only the rows asked for. Everything above this module
sees float32 vectors: the decoded values, which are what the store holds.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from langchain_memvid.engine.errors import CorruptData
from langchain_memvid.engine.files import open_regular
from langchain_memvid.engine.search.encodings import check_encoding
from langchain_memvid.engine.search.vectors import flat_index


def serialize_vectors(ids: np.ndarray, vectors: np.ndarray, metric: str, encoding: str) -> bytes:
    """A segment's vector file: FAISS's own serialisation of ``vectors`` in ``encoding``.

    An empty set of vectors is always written as float32 (there is nothing to calibrate).
    """
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    if encoding == "binary" and len(ids):
        check_encoding(encoding, dim, metric)
        binary = faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(dim))
        binary.add_with_ids(np.packbits(vectors > 0, axis=1), ids)
        return bytes(faiss.serialize_index_binary(binary).tobytes())
    if encoding in ("float16", "int8") and len(ids):
        qtype = faiss.ScalarQuantizer.QT_fp16 if encoding == "float16" else faiss.ScalarQuantizer.QT_8bit
        kind = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        sq = faiss.IndexScalarQuantizer(dim, qtype, kind)
        sq.train(vectors)
        # IndexIDMap, not IDMap2: reading it FAISS builds no id -> position hash table (the
        # engine maps ids itself), so opening loads only the 8 bytes of ids a vector.
        index = faiss.IndexIDMap(sq)
    else:
        check_encoding(encoding)
        index = faiss.IndexIDMap2(flat_index(dim, metric))
    if len(ids):
        index.add_with_ids(vectors, ids)
    return bytes(faiss.serialize_index(index).tobytes())


# FAISS's serialisations (little-endian). A float index header: fourcc, d, ntotal, two reserved
# int64, is_trained, metric_type. A binary index header: fourcc, d, code_size, ntotal,
# is_trained, metric_type. A vector: uint64 count, then the items.
_HEADER = struct.Struct("<4siqqq?i")
_BINARY_HEADER = struct.Struct("<4siiq?i")
_COUNT = struct.Struct("<Q")
_SQ = struct.Struct("<iifQQ")  # qtype, rangestat, rangestat_arg, d, code_size
_QT_8BIT, _QT_FP16 = int(faiss.ScalarQuantizer.QT_8bit), int(faiss.ScalarQuantizer.QT_fp16)


@dataclass(frozen=True)
class Layout:
    """Where a vector file keeps its parts, every size checked against the file's length."""

    encoding: str
    count: int
    codes: int  # offset of the first code
    code_size: int  # bytes a vector
    ids: int  # offset of the first int64 id
    calibration: int = 0  # int8: offset of the per-dimension minimums, then ranges (float32)

    @property
    def size(self) -> int:
        """The file's length in bytes."""
        return self.ids + 8 * self.count

    def decode(self, data: Any, rows: np.ndarray | slice, dim: int) -> np.ndarray:
        """Float32 vectors of ``rows`` (positions in the file), decoded as FAISS decodes them."""
        n = self.count
        if self.encoding == "float32":
            out = np.frombuffer(data, "<f4", n * dim, self.codes).reshape(n, dim)[rows]
            return np.array(out, np.float32)
        codes = np.frombuffer(data, np.uint8, n * self.code_size, self.codes).reshape(n, self.code_size)[rows]
        if self.encoding == "float16":
            return codes.view("<f2").astype(np.float32)
        if self.encoding == "int8":
            lo = np.frombuffer(data, "<f4", dim, self.calibration)
            span = np.frombuffer(data, "<f4", dim, self.calibration + 4 * dim)
            # FAISS's QT_8bit decoding, in float32 as FAISS computes it.
            return (codes.astype(np.float32) + np.float32(0.5)) / np.float32(255.0) * span + lo
        signs = np.unpackbits(codes, axis=1, count=dim).astype(np.float32)
        return (signs * np.float32(2.0) - np.float32(1.0)) * np.float32(1.0 / np.sqrt(dim))

    def read_ids(self, data: Any) -> np.ndarray:
        """The file's vector ids, in row order."""
        return np.frombuffer(data, "<i8", self.count, self.ids).astype(np.int64)


def _layout(data: Any, dim: int) -> Layout | None:
    """The layout of a vector file of dimension ``dim``, or None when any size disagrees."""
    size = len(data)
    if size >= 4 and bytes(data[:4]) == b"IBM2":
        return _binary_layout(data, dim)
    head = 2 * _HEADER.size
    if size < head + _COUNT.size:
        return None
    outer, inner = _HEADER.unpack_from(data, 0), _HEADER.unpack_from(data, _HEADER.size)
    n = outer[2]
    if (
        outer[0] not in (b"IxM2", b"IxMp")
        or not (outer[1] == inner[1] == dim)
        or not (inner[2] == n >= 0)
        or inner[6] not in (0, 1)
    ):
        return None
    pos, calibration = head, 0
    if inner[0] in (b"IxFI", b"IxF2") and outer[0] == b"IxM2":  # as 0.1 wrote them
        encoding, code_size = "float32", 4 * dim
        if _COUNT.unpack_from(data, pos)[0] != n * dim:
            return None
    elif inner[0] == b"IxSQ":
        if size < pos + _SQ.size + _COUNT.size:
            return None
        qtype, _, _, sq_dim, code_size = _SQ.unpack_from(data, pos)
        pos += _SQ.size
        trained = _COUNT.unpack_from(data, pos)[0]
        pos += _COUNT.size
        if sq_dim != dim or (qtype, code_size, trained) not in (
            (_QT_FP16, 2 * dim, 0),
            (_QT_8BIT, dim, 2 * dim),
        ):
            return None
        encoding = "float16" if qtype == _QT_FP16 else "int8"
        calibration = pos
        pos += 4 * trained
        if size < pos or not np.isfinite(np.frombuffer(data, "<f4", trained, calibration)).all():
            return None  # a calibration of NaN or infinity would decode every vector to it
        if size < pos + _COUNT.size or _COUNT.unpack_from(data, pos)[0] != n * code_size:
            return None
    else:
        return None
    codes = pos + _COUNT.size
    ids = codes + n * code_size + _COUNT.size
    if size != ids + 8 * n or _COUNT.unpack_from(data, ids - _COUNT.size)[0] != n:
        return None
    return Layout(encoding, int(n), codes, int(code_size), ids, calibration)


def _binary_layout(data: Any, dim: int) -> Layout | None:
    head = 2 * _BINARY_HEADER.size
    if len(data) < head + _COUNT.size:
        return None
    outer, inner = _BINARY_HEADER.unpack_from(data, 0), _BINARY_HEADER.unpack_from(data, _BINARY_HEADER.size)
    n, code_size = outer[3], dim // 8
    if (
        dim % 8
        or inner[0] != b"IBxF"
        or not (outer[1] == inner[1] == dim)
        or not (outer[2] == inner[2] == code_size)
        or not (inner[3] == n >= 0)
        or _COUNT.unpack_from(data, head)[0] != n * code_size
    ):
        return None
    codes = head + _COUNT.size
    ids = codes + n * code_size + _COUNT.size
    if len(data) != ids + 8 * n or _COUNT.unpack_from(data, ids - _COUNT.size)[0] != n:
        return None
    return Layout("binary", int(n), codes, code_size, ids)


def check_vector_file(data: Any, dim: int) -> Layout:
    """Check a vector file's layout before anything reads it; returns the layout.

    FAISS sizes its buffers from counts stored in the file, so a crafted file could make it
    allocate gigabytes before noticing the file is short. Every count is checked against the
    file's actual length first.

    Raises:
        CorruptData: not a vector file of dimension ``dim`` in one of ENCODINGS with consistent sizes.
    """
    layout = _layout(data, dim)
    if layout is None:
        msg = f"Not a vector file of this store: expected a FAISS IndexIDMap2 (float32), IndexIDMap (float16, int8) or IndexBinaryIDMap2 (binary) of dimension {dim} with sizes matching its {len(data)} bytes."
        raise CorruptData(msg)
    return layout


def deserialize_vectors(data: bytes, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, decoded float32 vectors) from a segment's vector file.

    Raises:
        CorruptData: not a vector file of the store's dimension.
    """
    layout = check_vector_file(data, dim)
    ids = layout.read_ids(data)
    if layout.count and (ids.min() < 0 or ids.max() >= 1 << 40):
        msg = "The vector file holds out-of-range vector ids; run `verify`."
        raise CorruptData(msg)
    return ids, np.ascontiguousarray(layout.decode(data, slice(None), dim), dtype=np.float32)


def vector_file_encoding(data: Any, dim: int) -> str:
    """The encoding a vector file is written in.

    Raises:
        CorruptData: as ``check_vector_file``.
    """
    return check_vector_file(data, dim).encoding


@contextmanager
def mapped_file(path: Path) -> Iterator[Any]:
    """A regular file mapped read-only for the duration (no link followed, no descriptor kept).

    Python's mmap keeps a duplicate of the file descriptor while the mapping lives, so a mapping
    per segment kept open would hold a descriptor per segment: every mapping here is closed on
    exit (numpy views of it must be copied before).
    """
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        mapped = mmap.mmap(fd, size, access=mmap.ACCESS_READ) if size else None
    finally:
        os.close(fd)
    try:
        yield mapped if mapped is not None else b""
    finally:
        if mapped is not None:
            with suppress(BufferError):  # a view still held by an error's traceback: freed with it
                mapped.close()


def read_file_ids(path: Path, dim: int) -> np.ndarray:
    """The vector ids in a vector file, in row order, after its layout check.

    Raises:
        CorruptData: not a vector file of dimension ``dim``.
    """
    with mapped_file(path) as mapped:
        return check_vector_file(mapped, dim).read_ids(mapped)


class VectorFiles:
    """Vectors by vector id, read on demand from the segments' vector files.

    The engine says which files exist (``track``/``forget``); the first lookup after that checks
    each new file's layout and reads its id list into a vector id -> (segment, row) table of 8
    bytes a vector. Rows are then decoded out of the files as they are asked for (each file
    mapped only while it is read), so a store of any size serves ``reconstruct`` and re-ranking
    without loading its vectors or holding a descriptor per segment.
    """

    def __init__(self, folder: Path, dim: int) -> None:
        self.folder, self.dim = folder, dim
        self._names: dict[int, str] = {}
        self._pending: set[int] = set()
        self._seq = np.full(0, -1, np.int32)  # by vector id
        self._row = np.zeros(0, np.int32)
        self._layouts: dict[int, Layout] = {}  # seq -> its file's checked layout

    def track(self, seq: int, name: str) -> None:
        """A segment's vector file (``name`` inside the folder) now holds live vectors."""
        self._names[seq] = name
        self._pending.add(seq)
        self._layouts.pop(seq, None)

    def follow(self, files: dict[int, str]) -> None:
        """Track exactly these segments' vector files (seq -> file name), forgetting the rest."""
        for seq in [s for s in self._names if s not in files]:
            self.forget(seq)
        for seq, name in files.items():
            if self._names.get(seq) != name:
                self.track(seq, name)

    def forget(self, seq: int) -> None:
        """The segment is gone (compacted away)."""
        self._names.pop(seq, None)
        self._pending.discard(seq)
        self._layouts.pop(seq, None)

    def close(self) -> None:
        """Forget every layout (nothing is held open between calls)."""
        self._layouts.clear()

    def _layout(self, seq: int, mapped: Any) -> Layout:
        layout = self._layouts.get(seq)
        if layout is not None and len(mapped) != layout.size:
            msg = f"Vector file {self._names[seq]} changed size since the store opened it (segment files never change); run `verify`."
            raise CorruptData(msg)
        if layout is None:
            found = _layout(mapped, self.dim)
            if found is None:
                msg = f"Vector file {self._names[seq]} does not have the layout of this store's vector files; run `verify`."
                raise CorruptData(msg)
            layout = self._layouts[seq] = found
        return layout

    def _map(self, seq: int) -> None:
        with mapped_file(self.folder / self._names[seq]) as mapped:
            layout = self._layout(seq, mapped)
            ids = layout.read_ids(mapped)
        if layout.count and (ids.min() < 0 or ids.max() >= 1 << 40):
            msg = f"Vector file {self._names[seq]} holds out-of-range vector ids; run `verify`."
            raise CorruptData(msg)
        if layout.count and ids.max() >= len(self._seq):
            grow = max(int(ids.max()) + 1, 2 * len(self._seq)) - len(self._seq)
            self._seq = np.concatenate([self._seq, np.full(grow, -1, np.int32)])
            self._row = np.concatenate([self._row, np.zeros(grow, np.int32)])
        self._seq[ids] = seq
        self._row[ids] = np.arange(layout.count)

    def encodings(self) -> dict[str, int]:
        """Vectors kept per encoding, over the tracked files (the replaced included until compact)."""
        out: dict[str, int] = {}
        for seq, name in self._names.items():
            if seq not in self._layouts:
                with mapped_file(self.folder / name) as mapped:
                    self._layout(seq, mapped)
            layout = self._layouts[seq]
            out[layout.encoding] = out.get(layout.encoding, 0) + layout.count
        return out

    def get(self, ids: np.ndarray) -> np.ndarray:
        """The decoded vectors of ``ids`` (all live), in order.

        Raises:
            CorruptData: an id is in no tracked file, or a file is damaged.
        """
        for seq in sorted(self._pending):
            self._map(seq)
            self._pending.discard(seq)
        ids = np.asarray(ids, dtype=np.int64)
        inside = (ids >= 0) & (ids < len(self._seq))
        seqs = np.where(inside, self._seq[np.where(inside, ids, 0)], -1)
        if (seqs < 0).any():
            msg = f"Vectors {ids[seqs < 0][:5].tolist()} are in no segment vector file; run `verify`."
            raise CorruptData(msg)
        out = np.empty((len(ids), self.dim), np.float32)
        rows = self._row[ids]
        order = np.argsort(seqs, kind="stable")
        bounds = np.flatnonzero(np.diff(seqs[order])) + 1
        for part in np.split(order, bounds):
            seq = int(seqs[part[0]])
            if seq not in self._names:
                msg = f"Vectors {ids[part][:5].tolist()} point at a segment that is gone; run `verify`."
                raise CorruptData(msg)
            with mapped_file(self.folder / self._names[seq]) as mapped:
                out[part] = self._layout(seq, mapped).decode(mapped, rows[part], self.dim)
        return out
