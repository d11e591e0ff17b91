"""A segment's vector file (``NAME.faiss``): writing it, checking its layout, reading it back.

Each segment writes its vectors as a FAISS ``IndexIDMap2`` over a flat index with FAISS's own
writer (no pickle): the source of truth for the store's vectors. ``check_vector_file`` checks the
layout before FAISS reads a file; ``VectorFiles`` serves exact vectors by vector id from the
memory-mapped files without loading them.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from langchain_memvid.engine.errors import CorruptData
from langchain_memvid.engine.files import open_regular
from langchain_memvid.engine.search.vectors import flat_index


def serialize_vectors(ids: np.ndarray, vectors: np.ndarray, metric: str) -> bytes:
    """A segment's vector file: FAISS's own serialisation of an IndexIDMap2 over a flat index."""
    index = faiss.IndexIDMap2(flat_index(vectors.shape[1], metric))
    if len(ids):
        index.add_with_ids(vectors, ids.astype(np.int64))
    return faiss.serialize_index(index).tobytes()


# FAISS's serialisation of an IndexIDMap2 over IndexFlatIP/L2 (little-endian): two index headers
# (fourcc, d, ntotal, two reserved int64, is_trained, metric_type), then the codes (uint64 count of
# floats, the floats) and the ids (uint64 count, the int64 ids).
_FAISS_HEADER = struct.Struct("<4siqqq?i")
_FAISS_COUNT = struct.Struct("<Q")


def check_vector_file(data: bytes, dim: int) -> int:
    """Check a vector file's layout before FAISS reads it; returns its number of vectors.

    FAISS sizes its buffers from counts stored in the file, so a crafted file could make it
    allocate gigabytes before noticing the file is short. Every count is checked against the
    file's actual length first.

    Raises:
        CorruptData: not an IndexIDMap2 over a flat index of dimension ``dim`` with consistent sizes.
    """
    head = 2 * _FAISS_HEADER.size
    if len(data) >= head + 2 * _FAISS_COUNT.size:
        outer = _FAISS_HEADER.unpack_from(data, 0)
        inner = _FAISS_HEADER.unpack_from(data, _FAISS_HEADER.size)
        n = outer[2]
        per_vector = 4 * dim + 8
        if (
            outer[0] == b"IxM2"
            and inner[0] in (b"IxFI", b"IxF2")
            and outer[1] == inner[1] == dim
            and inner[2] == n >= 0
            and inner[6] in (0, 1)
            and len(data) == head + 2 * _FAISS_COUNT.size + n * per_vector
            and _FAISS_COUNT.unpack_from(data, head)[0] == n * dim
            and _FAISS_COUNT.unpack_from(data, head + _FAISS_COUNT.size + 4 * n * dim)[0] == n
        ):
            return int(n)
    msg = f"Not a vector file of this store: expected FAISS IndexIDMap2 over a flat index of dimension {dim} with sizes matching its {len(data)} bytes."
    raise CorruptData(msg)


def deserialize_vectors(data: bytes, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) from a segment's vector file.

    Raises:
        CorruptData: not a FAISS IndexIDMap2 of the store's dimension.
    """
    check_vector_file(data, dim)
    try:
        # deserialize_index returns the concrete type; keep this reference alive while in use,
        # because a downcast copy does not own the C++ object.
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as e:
        msg = f"Not a readable FAISS vector file: {str(e).splitlines()[0] if str(e) else e}"
        raise CorruptData(msg) from e
    if not isinstance(index, faiss.IndexIDMap2) or index.d != dim:
        msg = f"Vector file holds a {type(index).__name__} of dimension {index.d}, expected IndexIDMap2 of {dim}."
        raise CorruptData(msg)
    n = index.ntotal
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    vectors = index.index.reconstruct_n(0, n) if n else np.zeros((0, dim), np.float32)
    return ids, np.ascontiguousarray(vectors, dtype=np.float32)


class VectorFiles:
    """Exact vectors by vector id, read on demand from the segments' vector files.

    The engine says which files exist (``track``/``forget``); the first lookup after that maps
    each new file read-only and reads its id list (its tail; layout checked as in
    ``check_vector_file``) into a vector id -> (segment, row) table of 8 bytes a vector. Rows are
    then copied out of the mapped files, so a store of any size serves ``reconstruct`` and exact
    re-ranking without loading its vectors; mapped pages are page cache, not process memory.
    """

    _HEAD = 2 * _FAISS_HEADER.size + _FAISS_COUNT.size

    def __init__(self, folder: Path, dim: int) -> None:
        self.folder, self.dim = folder, dim
        self._names: dict[int, str] = {}
        self._pending: set[int] = set()
        self._seq = np.full(0, -1, np.int32)  # by vector id
        self._row = np.zeros(0, np.int32)
        self._rows: dict[int, np.ndarray] = {}  # seq -> (n, dim) view of the mapped file

    def track(self, seq: int, name: str) -> None:
        """A segment's vector file (``name`` inside the folder) now holds live vectors."""
        self._names[seq] = name
        self._pending.add(seq)
        self._rows.pop(seq, None)

    def follow(self, files: dict[int, str]) -> None:
        """Track exactly these segments' vector files (seq -> file name), forgetting the rest."""
        for seq in [s for s in self._names if s not in files]:
            self.forget(seq)
        for seq, name in files.items():
            if self._names.get(seq) != name:
                self.track(seq, name)

    def forget(self, seq: int) -> None:
        """The segment is gone (compacted away); its mapping is released."""
        self._names.pop(seq, None)
        self._pending.discard(seq)
        self._rows.pop(seq, None)

    def close(self) -> None:
        """Release every mapping."""
        self._rows.clear()

    def _matrix(self, seq: int) -> np.ndarray:
        rows = self._rows.get(seq)
        if rows is None:
            name = self._names[seq]
            fd = open_regular(self.folder / name)
            try:
                size = os.fstat(fd).st_size
                mapped = mmap.mmap(fd, size, access=mmap.ACCESS_READ) if size else b""
            finally:
                os.close(fd)
            n = self._layout(mapped, name)
            rows = np.frombuffer(mapped, dtype="<f4", count=n * self.dim, offset=self._HEAD)
            rows = rows.reshape(n, self.dim)
            self._rows[seq] = rows
        return rows

    def _layout(self, data: Any, name: str) -> int:
        """The number of vectors in a mapped vector file, after checking every size in it."""
        n = -1
        if len(data) >= self._HEAD + _FAISS_COUNT.size:
            outer = _FAISS_HEADER.unpack_from(data, 0)
            inner = _FAISS_HEADER.unpack_from(data, _FAISS_HEADER.size)
            count = _FAISS_COUNT.unpack_from(data, 2 * _FAISS_HEADER.size)[0]
            n = outer[2]
            if not (
                outer[0] == b"IxM2"
                and inner[0] in (b"IxFI", b"IxF2")
                and outer[1] == inner[1] == self.dim
                and inner[2] == n >= 0
                and count == n * self.dim
                and len(data) == self._HEAD + _FAISS_COUNT.size + n * (4 * self.dim + 8)
                and _FAISS_COUNT.unpack_from(data, self._HEAD + 4 * n * self.dim)[0] == n
            ):
                n = -1
        if n < 0:
            msg = f"Vector file {name} does not have the layout of this store's vector files; run `verify`."
            raise CorruptData(msg)
        return int(n)

    def _map(self, seq: int) -> None:
        rows = self._matrix(seq)
        n = len(rows)
        base: Any = rows.base
        while getattr(base, "base", None) is not None:  # the mmap under numpy's views
            base = base.base
        tail = self._HEAD + 4 * n * self.dim + _FAISS_COUNT.size
        ids = np.frombuffer(base, dtype="<i8", count=n, offset=tail).astype(np.int64)
        if n and (ids.min() < 0 or ids.max() >= 1 << 40):
            msg = f"Vector file {self._names[seq]} holds out-of-range vector ids; run `verify`."
            raise CorruptData(msg)
        if n and ids.max() >= len(self._seq):
            grow = max(int(ids.max()) + 1, 2 * len(self._seq)) - len(self._seq)
            self._seq = np.concatenate([self._seq, np.full(grow, -1, np.int32)])
            self._row = np.concatenate([self._row, np.zeros(grow, np.int32)])
        self._seq[ids] = seq
        self._row[ids] = np.arange(n)

    def get(self, ids: np.ndarray) -> np.ndarray:
        """The exact vectors of ``ids`` (all live), in order.

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
            out[part] = self._matrix(seq)[rows[part]]
        return out
