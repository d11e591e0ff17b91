"""Vector id -> record id, held in memory so that ids-only search needs no SQLite lookup.

Within one catalog a vector id belongs to one version of one record and is never reused (an
upsert takes a new one, compaction keeps it), so an entry, once loaded, stays true until the engine
reloads everything (a rebuild may renumber re-embedded vectors). The map is filled from the
catalog, newest vector ids last, and a lookup is one array read per result. It costs the id's
bytes plus 16 bytes a vector id (1M records with 18-byte ids: 34 MB), against 1,536 bytes for one
384-d float32 vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from langchain_memvid.engine.catalog.catalog import Catalog


class RecordIds:
    """A map from vector id to record id.

    The ids lie back to back in one bytes object; a table indexed by vector id says where each one
    starts and ends (-1 where none is held).

    >>> ids = RecordIds()
    >>> ids.extend([(0, "a"), (5, "héllo")])
    >>> ids.lookup([5, 0, 3, 99])
    ['héllo', 'a', None, None]
    >>> len(ids), ids.last
    (2, 5)
    >>> ids.extend([(0, "b")])  # a vector id loaded again holds its new record id
    >>> ids.lookup([0]), len(ids)
    (['b'], 2)
    """

    def __init__(self) -> None:
        self._spans = np.full((0, 2), -1, np.int64)
        self._cells = self._spans.data  # a memoryview, read cell by cell: no numpy call per lookup
        self._blob = b""
        self.count = 0
        self.last = -1  # the largest vector id held

    def __len__(self) -> int:
        return self.count

    def extend(self, rows: Sequence[tuple[int, str]]) -> None:
        """Add (vector id, record id) pairs."""
        if not rows:
            return
        vids = np.fromiter((v for v, _ in rows), np.int64, len(rows))
        if vids.min() < 0:
            msg = "Vector ids are never negative."
            raise ValueError(msg)
        top = int(vids.max())
        if top >= len(self._spans):
            grown = np.full((max(top + 1, 2 * len(self._spans)), 2), -1, np.int64)
            grown[: len(self._spans)] = self._spans
            self._spans, self._cells = grown, grown.data
        encoded = [rid.encode() for _, rid in rows]
        sizes = np.fromiter(map(len, encoded), np.int64, len(encoded))
        ends = np.cumsum(sizes) + len(self._blob)
        self.count += int((self._spans[vids, 0] < 0).sum())
        self._spans[vids, 0] = ends - sizes
        self._spans[vids, 1] = ends
        self._blob += b"".join(encoded)
        self.last = max(self.last, top)

    def resolve(self, vector_ids: Sequence[int], catalog: Catalog) -> list[str | None]:
        """Like ``lookup``, filling the map from the catalog on a miss (None: no longer live)."""
        names = self.lookup(vector_ids)
        if None in names:  # records committed since the map was last filled
            self.extend(catalog.record_ids_after(self.last))
            names = self.lookup(vector_ids)
        if None in names:  # below ``last`` yet not held (a rebuild that numbered vectors anew)
            missing = [v for v, n in zip(vector_ids, names, strict=True) if n is None]
            rows = catalog.records_by_vector_ids(missing)
            self.extend([(v, row.id) for v, row in rows.items()])
            names = self.lookup(vector_ids)
        return names

    def lookup(self, vector_ids: Sequence[int]) -> list[str | None]:
        """The record id of each (non-negative) vector id, None where the map does not hold it.

        Plain Python over a memoryview: between searches of a large index, each numpy call
        costs ~10 us of cold caches (measured), more than these few reads.
        """
        held, cells, blob = len(self._spans), self._cells, self._blob
        out: list[str | None] = []
        for v in vector_ids:
            start = cells[v, 0] if v < held else -1
            out.append(blob[start : cells[v, 1]].decode() if start >= 0 else None)
        return out
