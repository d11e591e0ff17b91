"""Which vector ids are live, known one of two ways, so that opening need not read every live id.

The catalog lists the vector ids whose records were deleted or replaced while their segment files
still hold them (``Catalog.dead_vector_ids``). With that list, the live ids are those in the live
segments' vector files less the dead ones: opening reads the files' id lists (in C, 8 bytes a
vector) and the short list, not a row per record. Without it (a store from 0.1, a stale list, an
approximate index that needs every id), every live id is read from the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LiveSet:
    """Every live vector id (``ids``), or the dead ids among the files' (``dead``); both sorted.

    >>> LiveSet(dead=np.array([2])).mask(np.array([1, 2, 3])).tolist()
    [True, False, True]
    >>> LiveSet(ids=np.array([1, 3])).gone(np.array([1, 2, 3])).tolist()
    [2]
    """

    ids: np.ndarray | None = None
    dead: np.ndarray | None = None

    def mask(self, held: np.ndarray) -> np.ndarray:
        """Which of ``held`` (ids in live segments' files) are live."""
        if self.ids is not None:
            return np.isin(held, self.ids)
        assert self.dead is not None
        return ~np.isin(held, self.dead)

    def gone(self, held: np.ndarray) -> np.ndarray:
        """The ids among ``held`` (sorted, unique) that are no longer live."""
        if self.ids is not None:
            return np.setdiff1d(held, self.ids, assume_unique=True)
        assert self.dead is not None
        return np.intersect1d(held, self.dead, assume_unique=True)

    def all(self) -> np.ndarray:
        """Every live id (only when known that way).

        Raises:
            ValueError: the set is known by its dead ids only.
        """
        if self.ids is None:
            msg = "every live id was not read"
            raise ValueError(msg)
        return self.ids
