"""Index specs: the FAISS index a store is built with, its build options and search knobs, checked.

``IndexSpec`` is a kind (``KINDS``) or a FAISS factory string with its build options, as the
catalog records it; ``IndexSpec.parse`` checks ``Engine(index=..., index_options=...)`` and splits
off the open options (``OPEN_KEYS``). Search knobs (``SEARCH_KEYS``) are checked by
``check_search_params``; the defaults derived from the data (``auto_nlist``, ``auto_nprobe``,
``auto_pq_m``) live here too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import faiss

from langchain_memvid.engine.errors import CorruptData, InvalidArgument
from langchain_memvid.engine.search.faiss_helpers import faiss_reason, find_hnsw

KINDS = ("flat", "ivf", "ivfpq", "hnsw", "lsh")
SEARCH_KEYS = ("nprobe", "efSearch", "refine", "exact_max")
OPEN_KEYS = ("mmap", "gpu")
_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "flat": (),
    "ivf": ("nlist", "min_vectors", "train_size", "retrain_growth"),
    "ivfpq": ("nlist", "m", "nbits", "min_vectors", "train_size", "retrain_growth"),
    "hnsw": ("M", "efConstruction", "min_vectors"),
    "lsh": ("nbits", "min_vectors"),
    "factory": ("min_vectors", "train_size", "retrain_growth"),
}
_MIN_VECTORS = {"ivf": 25_000, "ivfpq": 25_000, "hnsw": 10_000, "lsh": 10_000, "factory": 10_000}
DEFAULT_EF_SEARCH = 128
DEFAULT_EXACT_MAX = 2048


def _check_int(key: str, value: object, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        msg = f"Index option {key!r} must be an integer >= {low}, got {value!r}."
        raise InvalidArgument(msg)
    return value


def check_search_params(params: Mapping[str, Any] | None) -> dict[str, int]:
    """Validate per-query knobs (``SEARCH_KEYS``); knobs that do not apply to an index are ignored.

    Raises:
        InvalidArgument: an unknown key or a value out of range.
    """
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        msg = f"search_params must be a mapping, got {type(params).__name__}."
        raise InvalidArgument(msg)
    out = {}
    for key, value in params.items():
        if key not in SEARCH_KEYS:
            msg = f"Unknown search parameter {key!r}; choose from {list(SEARCH_KEYS)}."
            raise InvalidArgument(msg)
        out[key] = _check_int(key, value, 0 if key in ("refine", "exact_max") else 1)
    return out


def auto_nlist(n: int) -> int:
    """Inverted lists for ``n`` vectors: about 4*sqrt(n), at most n/39 (FAISS's k-means minimum)."""
    return max(1, min(round(4 * math.sqrt(n)), n // 39))


def auto_nprobe(nlist: int) -> int:
    """Lists probed per query by default: sqrt(nlist)/2, at least 8 (32 of 4,000 lists)."""
    return min(nlist, max(8, math.ceil(math.sqrt(nlist) / 2)))


def auto_pq_m(dim: int) -> int:
    """PQ sub-quantizers by default: the largest divisor of ``dim`` up to dim/8 (48 for 384)."""
    return max(m for m in range(1, max(1, dim // 8) + 1) if dim % m == 0)


@dataclass(frozen=True)
class IndexSpec:
    """The index a store is built with: a kind (or a FAISS factory string) and its options."""

    kind: str = "flat"
    factory: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(
        cls, index: str | None, options: Mapping[str, Any] | None, metric: str
    ) -> tuple[IndexSpec, dict[str, Any]]:
        """(spec, open options) from ``Engine(index=..., index_options=...)``.

        Raises:
            InvalidArgument: an unknown option, a bad value, or LSH with a metric other than l2.
        """
        if index is not None and (not isinstance(index, str) or not index.strip()):
            msg = f"index must be one of {list(KINDS)} or a FAISS factory string, got {index!r}."
            raise InvalidArgument(msg)
        if options is not None and not isinstance(options, Mapping):
            msg = f"index_options must be a mapping, got {type(options).__name__}."
            raise InvalidArgument(msg)
        name = (index or "flat").strip()
        kind, factory = (name.lower(), None) if name.lower() in KINDS else ("factory", name)
        opts = dict(options or {})
        runtime = {k: opts.pop(k) for k in OPEN_KEYS if k in opts}
        for key, value in runtime.items():
            if not isinstance(value, bool):
                msg = f"Index option {key!r} must be True or False, got {value!r}."
                raise InvalidArgument(msg)
        search = check_search_params({k: opts.pop(k) for k in SEARCH_KEYS if k in opts})
        allowed = _KIND_KEYS[kind]
        for key, value in opts.items():
            if key not in allowed:
                takes = sorted({*allowed, *SEARCH_KEYS, *OPEN_KEYS})
                msg = f"Index option {key!r} does not apply to index {name!r}; it takes {takes}."
                raise InvalidArgument(msg)
            if key == "retrain_growth":
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 1:
                    msg = f"Index option 'retrain_growth' must be a number > 1, got {value!r}."
                    raise InvalidArgument(msg)
            else:
                _check_int(key, value, 2 if key == "M" else 1)
        if kind == "ivfpq" and not 1 <= opts.get("nbits", 8) <= 16:
            msg = f"Index option 'nbits' of ivfpq must be between 1 and 16, got {opts['nbits']}."
            raise InvalidArgument(msg)
        if (kind == "lsh" or (factory and "LSH" in factory.upper())) and metric != "l2":
            msg = f"FAISS's LSH index accepts only metric 'l2' (it hashes by sign and ranks by Hamming distance); this store uses {metric!r}. Pick 'hnsw' or 'ivf' for {metric!r}."
            raise InvalidArgument(msg)
        return cls(kind, factory, {**opts, **search}), runtime

    @classmethod
    def from_meta(cls, meta: Any) -> IndexSpec:
        """The spec recorded in the catalog (flat when none is).

        Raises:
            CorruptData: the record is not a spec this version understands.
        """
        if meta is None:
            return cls()
        kind = meta.get("kind") if isinstance(meta, dict) else None
        if kind not in (*KINDS, "factory") or not isinstance(meta.get("options") or {}, dict):
            msg = f"The catalog records an index this version does not understand: {meta!r:.200}."
            raise CorruptData(msg)
        factory = meta.get("factory")
        return cls(str(kind), str(factory) if factory else None, dict(meta.get("options") or {}))

    def to_meta(self) -> dict[str, Any]:
        """What the catalog records."""
        return {"kind": self.kind, "factory": self.factory, "options": self.options}

    def build_options(self) -> dict[str, Any]:
        """The options that shape the index (not the search knobs)."""
        return {k: v for k, v in self.options.items() if k not in SEARCH_KEYS}

    @property
    def name(self) -> str:
        """The kind, or the factory string."""
        return self.factory or self.kind

    @property
    def min_vectors(self) -> int:
        """Below this many vectors the store serves exact search (and trains nothing)."""
        return int(self.options.get("min_vectors", _MIN_VECTORS.get(self.kind, 0)))

    @property
    def retrain_growth(self) -> float:
        """``compact()`` retrains once the data has grown this many times past its training size."""
        return float(self.options.get("retrain_growth", 2.0))

    def train_size(self, n: int, nlist: int) -> int:
        """Vectors sampled for training: 50 per list, at least 65,536 (k-means cost grows with it)."""
        return min(n, int(self.options.get("train_size", max(50 * nlist, 65_536))))

    def default_refine(self) -> int:
        """Candidates per result re-ranked exactly by default: 10 for PQ and LSH, else none."""
        return 10 if self.kind in ("ivfpq", "lsh") else 0

    def new_index(self, dim: int, metric: str, n: int) -> tuple[faiss.Index, str]:
        """An empty FAISS index sized for ``n`` vectors, and the factory string describing it.

        Raises:
            InvalidArgument: the settings are impossible for this dimension or metric.
        """
        o = self.options
        nlist = int(o.get("nlist") or auto_nlist(max(n, 1)))
        m, nbits = (
            int(o.get("m") or auto_pq_m(dim)),
            int(o.get("nbits", 8 if self.kind == "ivfpq" else 2 * dim)),
        )
        if self.kind == "ivfpq" and dim % m:
            divisors = [x for x in range(1, dim + 1) if dim % x == 0]
            msg = f"IVF-PQ option m={m} does not divide the dimension {dim}; choose a divisor of {dim} such as {divisors[-4:-1] if len(divisors) > 3 else divisors}."
            raise InvalidArgument(msg)
        factory = {
            "ivf": f"IVF{nlist},Flat",
            "ivfpq": f"IVF{nlist},PQ{m}x{nbits}",
            "hnsw": f"HNSW{o.get('M', 32)},Flat",
            "lsh": f"LSH{nbits}",
        }.get(self.kind, self.factory or "Flat")
        fmetric = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
        index: Any
        try:
            if self.kind == "lsh":
                index = faiss.IndexLSH(dim, nbits, True, False)
            else:
                index = faiss.index_factory(dim, factory, fmetric)
        except RuntimeError as e:
            msg = f"FAISS cannot build index {self.name!r} for {dim}-dimensional vectors with metric {metric!r}: {faiss_reason(e)}"
            raise InvalidArgument(msg) from e
        hnsw = find_hnsw(index)
        if hnsw is not None and "efConstruction" in o:
            hnsw.hnsw.efConstruction = int(o["efConstruction"])
        return index, factory
