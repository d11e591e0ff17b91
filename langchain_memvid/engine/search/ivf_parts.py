"""IVF indexes built in parts: train once, fill slices anywhere, merge list by list on disk.

FAISS's own recipe for an index larger than one machine (``benchs/distributed_ondisk``; autofaiss
does the same on Spark): train one quantizer on a sample, fill the inverted lists of slices of the
data independently, then merge them. Here a *part* is one slice's inverted lists in a plain file,
and ``merge_parts`` streams the parts, one list at a time, into one ordinary FAISS index file
(array inverted lists: ``faiss.read_index`` reads it, and ``IO_FLAG_MMAP`` maps its lists). No
process ever holds more than the trained template, one slice, or one list of codes.

A part file, little-endian::

    magic "MVIP", version uint32 (1), nlist uint64, code_size uint64, count uint64,
    sizes uint64[nlist], the codes of lists 0..nlist-1, the ids (int64) of lists 0..nlist-1
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from langchain_memvid.engine.errors import CorruptData, InvalidArgument

PART_MAGIC = b"MVIP"
PART_VERSION = 1
_HEADER = struct.Struct("<4sIQQQ")  # magic, version, nlist, code_size, count
_WRITE_BLOCK = 1 << 22  # bytes per write while merging


@dataclass(frozen=True)
class IndexPart:
    """A filled part: its file, the job it answers (``key``) and how many vectors it holds."""

    path: str
    key: int
    count: int


def template_of(index: faiss.Index) -> bytes:
    """The serialized trained, empty IVF index that every part is filled from.

    Raises:
        InvalidArgument: not a trained, empty IVF index with plain array inverted lists (the
            only kind whose lists FAISS serialises last, where the merge writes them).
    """
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None or not index.is_trained or index.ntotal:
        msg = "Building an index in parts needs a trained, empty IVF index (IVF-Flat, IVF-PQ, IVF-SQ...)."
        raise InvalidArgument(msg)
    if ivf.direct_map.type != 0:  # faiss.DirectMap.NoMap
        msg = "Building an index in parts does not support IVF indexes with a direct map."
        raise InvalidArgument(msg)
    data = bytes(faiss.serialize_index(index))
    if not data.endswith(_empty_lists(ivf)):
        msg = f"{type(ivf).__name__} does not end with plain inverted lists; build it with build_index() in one process."
        raise InvalidArgument(msg)
    return data


def fill_part(template: bytes, ids: np.ndarray, vectors: np.ndarray, path: Path, key: int) -> IndexPart:
    """Add one slice's vectors to a copy of ``template`` and write its lists to ``path`` (fsynced)."""
    index, ivf = _load(template)
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
    lists, nlist, code_size = ivf.invlists, int(ivf.nlist), int(ivf.code_size)
    sizes = np.array([lists.list_size(i) for i in range(nlist)], dtype="<u8")
    count = int(sizes.sum())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(_HEADER.pack(PART_MAGIC, PART_VERSION, nlist, code_size, count))
        out.write(sizes.tobytes())
        for i in np.flatnonzero(sizes):
            out.write(faiss.rev_swig_ptr(lists.get_codes(int(i)), int(sizes[i]) * code_size).tobytes())
        for i in np.flatnonzero(sizes):
            out.write(faiss.rev_swig_ptr(lists.get_ids(int(i)), int(sizes[i])).astype("<i8").tobytes())
        out.flush()
        os.fsync(out.fileno())
    return IndexPart(str(path), key, count)


def merge_parts(template: bytes, parts: Sequence[Path], out: Path) -> int:
    """Write the IVF index holding every part's lists to ``out``; returns its vector count.

    The file is ``template`` as FAISS serialises it with its vector count set, followed by
    FAISS's array inverted lists (``ilar``, ``full``): each list's codes, then its ids, the parts
    in the order given. The parts are read memory-mapped, so memory stays flat.

    Raises:
        CorruptData: a part file is truncated, foreign, or of another template.
    """
    index, ivf = _load(template)
    nlist, code_size = int(ivf.nlist), int(ivf.code_size)
    opened = [_Part(Path(p), nlist, code_size) for p in parts]
    sizes = np.zeros(nlist, dtype="<u8")
    for part in opened:
        sizes += part.sizes
    total = int(sizes.sum())
    index.ntotal = ivf.ntotal = total  # (an IndexPreTransform's count and its IVF's)
    head = bytes(faiss.serialize_index(index))
    empty = _empty_lists(ivf)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "wb", buffering=_WRITE_BLOCK) as f:
        f.write(head[: len(head) - len(empty)])
        f.write(b"ilar" + struct.pack("<QQ", nlist, code_size) + b"full" + struct.pack("<Q", nlist))
        f.write(sizes.tobytes())
        for i in np.flatnonzero(sizes):
            for part in opened:
                f.write(part.codes(int(i)))
            for part in opened:
                f.write(part.ids(int(i)))
    return total


class _Part:
    """A part file, checked against its own length and the template, its lists memory-mapped."""

    def __init__(self, path: Path, nlist: int, code_size: int) -> None:
        length = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(_HEADER.size)
        if len(head) < _HEADER.size:
            raise CorruptData(f"Index part {path.name} is truncated.")
        magic, version, n, cs, count = _HEADER.unpack(head)
        if magic != PART_MAGIC or version != PART_VERSION:
            raise CorruptData(f"{path.name} is not an index part of this library.")
        if (n, cs) != (nlist, code_size):
            raise CorruptData(
                f"Index part {path.name} was filled from another index ({n} lists of {cs}-byte codes)."
            )
        start = _HEADER.size + 8 * nlist
        if length != start + count * (code_size + 8):
            raise CorruptData(f"Index part {path.name} is {length} bytes, not what its header says.")
        self.sizes = np.fromfile(path, dtype="<u8", count=nlist, offset=_HEADER.size)
        if int(self.sizes.sum()) != count:
            raise CorruptData(f"Index part {path.name}'s list sizes do not add up to its count.")
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        raw: Any = np.memmap(path, dtype=np.uint8, mode="r") if length else np.zeros(0, np.uint8)
        self._codes = raw[start : start + count * code_size]
        self._ids = raw[start + count * code_size :]
        self._code_size = code_size

    def codes(self, i: int) -> memoryview:
        a, n = int(self.starts[i]) * self._code_size, int(self.sizes[i]) * self._code_size
        return memoryview(self._codes[a : a + n])

    def ids(self, i: int) -> memoryview:
        a, n = int(self.starts[i]) * 8, int(self.sizes[i]) * 8
        return memoryview(self._ids[a : a + n])


def _load(template: bytes) -> tuple[faiss.Index, Any]:
    index = faiss.deserialize_index(np.frombuffer(template, dtype=np.uint8))
    return index, faiss.extract_index_ivf(index)


def _empty_lists(ivf: Any) -> bytes:
    """How FAISS serialises an IVF's empty array inverted lists (``ilar``, sparse, no entries)."""
    return b"ilar" + struct.pack("<QQ", int(ivf.nlist), int(ivf.code_size)) + b"sprs" + struct.pack("<Q", 0)
