"""A model-based test: random call sequences on a real ``Engine`` against a plain-Python model.

Hypothesis drives one small store (dimension 8, three records a segment, so most writes make
several segments) through adds and upserts, deletes, gets, searches with and without a filter,
compactions, reopens and rebuilds from the videos alone. The model is a dict of
id -> (text, metadata, vector) with a brute-force numpy search; every answer the engine gives is
compared with it, value for value, so a wrong text, a stale metadata dict, a resurrected record or
a missing search hit fails the test (``test_fuzz.py`` only checks which exceptions escape).

Search results are compared score by score: the i-th hit must score what the model's i-th best
candidate scores (within ``TOL``), and each hit's score must be the model's score of that record.
Records that tie (equal scores, e.g. parallel vectors under cosine) may come in any order.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from langchain_memvid.engine import Engine, Record, rebuild_store
from langchain_memvid.engine.search.filters import compile_filter

from . import stats
from .common import DIM
from .conftest import SEED

SEGMENT_RECORDS = 3
TOL = 1e-5  # scores are float32 in the engine, float64 in the model
ID_POOL = ["a", "b", "c", "d", "e", "f", "é", "日本語", "with space", "x" * 200]

MODEL_SETTINGS = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- strategies ---------------------------------------------------------------------------------


def noise(seed: int, size: int) -> str:
    """``size`` random characters (BMP and emoji, no surrogates): text zstd cannot shrink."""
    rng = random.Random(seed)
    return "".join(
        chr(rng.choice((rng.randrange(0x20, 0xD800), rng.randrange(0x1F300, 0x1FB00)))) for _ in range(size)
    )


ids = st.one_of(st.sampled_from(ID_POOL), st.text(min_size=1, max_size=12))
texts = st.one_of(
    st.just(""),
    st.text(max_size=40),  # any Unicode but lone surrogates: NUL, emoji, combining marks...
    st.builds(lambda piece, times: piece * times, st.text(min_size=1, max_size=12), st.integers(20, 400)),
    st.builds(noise, st.integers(0, 2**32 - 1), st.integers(200, 3000)),  # a pack over several frames
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
# A few fixed keys with a few values, so that filters match some records and miss others.
metadatas = st.fixed_dictionaries(
    {},
    optional={
        "g": st.sampled_from(["a", "b", 1, 1.0, True, None]),
        "n": st.integers(-3, 3),
        "tags": st.lists(st.sampled_from(["x", "y", "z"]), max_size=3),
        "deep": st.fixed_dictionaries({"k": st.sampled_from(["u", "v"])}),
        "any": json_values,
    },
).flatmap(
    lambda fixed: st.dictionaries(st.text(max_size=6), json_values, max_size=2).map(
        lambda extra: {**extra, **fixed}
    )
)
# Small integer vectors: parallel and equal vectors (exact ties) are common.
vectors = (
    st.lists(st.integers(-2, 2), min_size=DIM, max_size=DIM)
    .filter(any)
    .map(lambda v: np.array(v, dtype=np.float64))
)


def _odd_keys(meta: Mapping[str, Any]) -> bool:
    return len(meta) % 2 == 1


filters = st.sampled_from(
    [
        {},
        {"g": "a"},
        {"g": 1},  # 1.0 matches, True does not
        {"g": None},
        {"n": {"$gte": 0}},
        {"n": {"$lt": 1}, "g": {"$ne": "b"}},
        {"tags": {"$contains": "x"}},
        {"deep.k": "u"},
        {"$or": [{"g": True}, {"tags": {"$contains": "z"}}]},
        {"$not": {"n": {"$exists": True}}},
        {"g": {"$in": ["b", None]}},
        _odd_keys,
    ]
)


def canonical(metadata: Mapping[str, Any]) -> str:
    """Metadata as canonical JSON: equal only when every value has the same JSON type and value.

    (``Record.__eq__`` compares dicts with ``==``, for which ``1 == 1.0 == True``.)
    """
    return json.dumps(metadata, sort_keys=True, ensure_ascii=False)


# -- the machine --------------------------------------------------------------------------------


@seed(SEED)
class EngineModel(RuleBasedStateMachine):
    """A real Engine on a temporary folder, and the model it must agree with."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="memvid-model-"))
        self.path = self.root / "store"
        self.model: dict[str, tuple[str, dict[str, Any], np.ndarray]] = {}
        self.clock = itertools.count()
        self.written: dict[str, int] = {}  # id -> when it was last written (``find`` keeps that order)
        self.metric = "cosine"
        self.dim: int | None = DIM  # what the store records; None after a rebuild from no videos
        self.engine: Engine | None = None

    @initialize(metric=st.sampled_from(["cosine", "cosine", "ip", "l2"]), data=st.data(), n=st.integers(0, 8))
    def create(self, metric: str, data: st.DataObject, n: int) -> None:
        """A new store, with a first batch of records (up to three segments) or none."""
        self.metric = metric
        # Exact vectors: the model compares stored vectors and scores with its own float math.
        self.engine = Engine(
            self.path, dim=DIM, metric=metric, segment_records=SEGMENT_RECORDS, vector_encoding="float32"
        )
        if n:
            self.write(data, n, ids)

    @property
    def store(self) -> Engine:
        assert self.engine is not None
        return self.engine

    def compared(self) -> None:
        stats.add("model steps compared")

    # -- the model's answers

    def expected_record(self, rid: str) -> tuple[str, str, str]:
        text, meta, _ = self.model[rid]
        return rid, text, canonical(meta)

    def stored_vector(self, rid: str) -> np.ndarray:
        """The vector the engine should hold for ``rid``: normalised under cosine, as float32."""
        vec = self.model[rid][2]
        if self.metric == "cosine":
            vec = vec / np.linalg.norm(vec)
        return vec.astype(np.float32)

    def scores(self, query: np.ndarray, candidates: Sequence[str]) -> dict[str, float]:
        """Brute force: cosine similarity, inner product or Euclidean distance to each candidate."""
        out = {}
        for rid in candidates:
            vec = self.model[rid][2]
            if self.metric == "cosine":
                out[rid] = float(vec @ query / (np.linalg.norm(vec) * np.linalg.norm(query)))
            elif self.metric == "ip":
                out[rid] = float(vec @ query)
            else:
                out[rid] = float(np.linalg.norm(vec - query))
        return out

    def check_hits(self, got: Sequence[tuple[str, float]], k: int, expected: Mapping[str, float]) -> None:
        """``got`` must be the k best of ``expected``, best first; ties may come in any order."""
        ranked = sorted(expected.values(), reverse=self.metric != "l2")[:k]
        got_ids = [rid for rid, _ in got]
        assert len(got) == len(ranked), f"{len(got)} hits for k={k} among {len(expected)} candidates"
        assert len(set(got_ids)) == len(got_ids), f"a record came back twice: {got_ids}"
        for n, ((rid, score), best) in enumerate(zip(got, ranked, strict=True)):
            assert rid in expected, f"hit {rid!r} is not a live record matching the filter"
            tol = TOL * max(1.0, abs(best))
            assert math.isclose(score, expected[rid], abs_tol=tol), (
                f"{rid!r} scored {score}, not {expected[rid]}"
            )
            assert math.isclose(score, best, abs_tol=tol), (
                f"hit {n} scores {score}; the model's {n}th best is {best}"
            )

    def check_records(self, got: Sequence[Record], want: Sequence[str]) -> None:
        assert [(r.id, r.text, canonical(r.metadata)) for r in got] == [self.expected_record(i) for i in want]

    # -- rules

    def write(self, data: st.DataObject, n: int, pick: st.SearchStrategy[str]) -> None:
        """Add ``n`` records whose ids ``pick`` draws, and check which ids the engine says it wrote."""
        batch = [
            (data.draw(pick), data.draw(texts), data.draw(metadatas), data.draw(vectors)) for _ in range(n)
        ]
        written = self.store.add([Record(i, t, m) for i, t, m, _ in batch], [v for *_, v in batch])
        last = {rid: pos for pos, (rid, *_) in enumerate(batch)}  # a repeated id: the last one wins
        assert written == sorted(last, key=last.__getitem__)
        for rid, text, meta, vec in batch:
            self.model[rid] = (text, meta, vec)
        for rid in written:
            self.written[rid] = next(self.clock)
        self.dim = DIM

    @rule(data=st.data(), n=st.integers(1, 5))
    def add(self, data: st.DataObject, n: int) -> None:
        """Mostly new ids (from a small pool, so some are upserts), a repeat within the call at times."""
        self.write(data, n, ids)
        self.compared()

    @rule(data=st.data(), n=st.integers(1, 5))
    def upsert(self, data: st.DataObject, n: int) -> None:
        """Mostly ids already stored: new texts, metadata and vectors for them."""
        known = sorted(self.model)
        self.write(data, n, st.one_of(st.sampled_from(known), st.sampled_from(known), ids) if known else ids)
        self.compared()

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        known = sorted(self.model)
        pick = st.one_of(ids, st.sampled_from(known)) if known else ids
        wanted = data.draw(st.lists(pick, max_size=6))
        assert self.store.delete(wanted) == len(set(wanted) & set(self.model))
        for rid in wanted:
            self.model.pop(rid, None)
        self.compared()

    @rule(data=st.data())
    def get(self, data: st.DataObject) -> None:
        known = sorted(self.model)
        pick = st.one_of(ids, st.sampled_from(known)) if known else ids
        wanted = data.draw(st.lists(pick, max_size=8))
        want = [rid for rid in dict.fromkeys(wanted) if rid in self.model]  # asked order, once each
        self.check_records(self.store.get(wanted), want)
        assert sorted(self.store.vectors(wanted)) == sorted(want)  # their values: whole_store
        self.compared()

    @rule(
        query=vectors,
        extra=st.integers(0, 7),
        flt=st.none() | filters,
        with_vectors=st.booleans(),
    )
    def search(
        self,
        query: np.ndarray,
        extra: int,
        flt: dict[str, Any] | Callable[[Mapping[str, Any]], bool] | None,
        with_vectors: bool,
    ) -> None:
        k = 1 + extra % (len(self.model) + 2)  # 1 .. n+2
        match = compile_filter(flt) or (lambda _: True)
        expected = self.scores(query, [rid for rid, (_, meta, _) in self.model.items() if match(meta)])
        hits = self.store.search(query.astype(np.float32), k, filter=flt, with_vectors=with_vectors)
        self.check_hits([(h.record.id, h.score) for h in hits], k, expected)
        self.check_records([h.record for h in hits], [h.record.id for h in hits])
        for h in hits:
            if with_vectors:
                assert h.vector is not None
                np.testing.assert_allclose(h.vector, self.stored_vector(h.record.id), rtol=TOL, atol=TOL)
            else:
                assert h.vector is None
        # The ids-only path answers from an in-memory id map, not from the video.
        self.check_hits(self.store.search_ids(query, k, filter=flt), k, expected)
        if flt is not None:
            # find: every match, no k, in the order the records were last written.
            self.check_records(self.store.find(flt), sorted(expected, key=self.written.__getitem__))
        self.compared()

    @rule()
    def compact(self) -> None:
        result = self.store.compact()
        assert result["records"] == len(self.model)
        assert result["segments_after"] == -(-len(self.model) // SEGMENT_RECORDS)
        self.compared()

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.engine = Engine(self.path, segment_records=SEGMENT_RECORDS)  # dim and metric: the store's
        assert (self.store.dim, self.store.metric) == (self.dim, self.metric)
        self.compared()

    @rule(keep_catalog=st.booleans())
    def rebuild(self, keep_catalog: bool) -> None:
        """Recreate the catalog from the videos (consulting the old one, or without it), then reopen."""
        self.store.close()
        self.engine = None
        if not keep_catalog:
            for file in self.path.glob("catalog.sqlite*"):
                file.unlink()
        videos = any((self.path / "segments").glob("*.mov"))
        report = rebuild_store(self.path)  # no embed: every .faiss file is intact, none is needed
        assert (report.records, report.reembedded, report.problems) == (len(self.model), 0, [])
        assert report.used_catalog == keep_catalog
        self.engine = Engine(self.path, segment_records=SEGMENT_RECORDS)
        if not videos and not keep_catalog:
            # The settings live in the segments' header frames. With no segment (nothing added
            # yet, or everything deleted and compacted away) the rebuilt store has no dimension
            # and the default metric, whatever it had before: the model follows.
            self.dim, self.metric = None, self.store.metric
        assert (self.store.dim, self.store.metric) == (self.dim, self.metric)
        self.compared()

    @invariant()
    def whole_store(self) -> None:
        """After every step: the same ids, and every record and vector equal to the model's."""
        if self.engine is None:
            return
        live = self.store.ids()
        assert len(live) == len(set(live)) == len(self.store) == len(self.model)
        assert set(live) == set(self.model)
        everything = sorted(self.model)
        self.check_records(self.store.get(everything), everything)
        found = self.store.vectors(everything)
        assert sorted(found) == everything
        for rid, vec in found.items():
            np.testing.assert_allclose(vec, self.stored_vector(rid), rtol=TOL, atol=TOL, err_msg=rid)

    def teardown(self) -> None:
        try:
            if self.engine is not None:
                # iter_records reads in storage order, batch by batch: another path than get.
                self.check_records(
                    sorted(self.store.iter_records(batch=2), key=lambda r: r.id), sorted(self.model)
                )
                assert self.store.verify(cross_check=False).ok
                self.store.close()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def test_engine_agrees_with_model() -> None:
    run_state_machine_as_test(EngineModel, settings=MODEL_SETTINGS)
