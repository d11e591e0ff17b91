"""Round trips: whatever goes into ``Engine.add`` comes back byte-exact, metadata types intact.

Spec: docs/format.md, section 3.2 "Packs" (id, metadata JSON, UTF-8 text; a record too large for
one frame gets a pack spanning several) and section 3.1 "Frame header" (part/parts).
"""

from __future__ import annotations

import base64
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_memvid.engine import Engine, Record

from .conftest import add, fake_embed_one

TORTURE_TEXTS: dict[str, str] = {
    "empty": "",
    "ascii": "The quick brown fox jumps over the lazy dog.",
    "emoji-zwj-family": "family: 👨\u200d👩\u200d👧\u200d👦 and 👩🏽\u200d💻 at work",
    "flags": "🇺🇳🇯🇵🇧🇷 and the rainbow flag 🏳️\u200d🌈 and 🏴\u200d☠️",
    "combining-marks": "e\u0301 a\u0308 Z\u0324\u0354\u0367\u0311a\u0316\u0353 \u1100\u1161\u11a8",
    "cjk": "日本語のテキスト、中文文本，한국어 텍스트",  # noqa: RUF001
    "rtl-hebrew-arabic": "שלום עולם \u200fمرحبا بالعالم\u200e mixed 123 עם",  # noqa: RUF001
    "nul-and-controls": "a\x00b\x01c\x1b[31mred\x1b[0m\x7f\x08\x0c\x0b end\x00",
    "crlf": "line one\r\nline two\r\n\r\nlast\rcr only\n",
    "unicode-oddities": "\ufeffBOM \u2028LS \u2029PS \U0010ffff \uffff \ufffd \u00a0nbsp",
    "very-long-single-line": ("lorem ipsum dolor sit amet " * 8000).strip(),
    "whitespace-only": " \t \n ",
}

METADATA: dict[str, Any] = {
    "int": 7,
    "negative": -3,
    "big_int": 2**70 + 1,
    "float": 0.1,
    "float_whole": 2.0,
    "float_tiny": 5e-324,
    "float_huge": 1.7976931348623157e308,
    "true": True,
    "false": False,
    "none": None,
    "text": "ünïcödé 🙂 \x00 nul",
    "empty_list": [],
    "empty_dict": {},
    "nested": {"list": [1, 2.5, "x", None, [True, {"deep": [0.0]}]], "dict": {"k": {"z": -1}}},
    "ключ 🔑": "non-ASCII key",
    "": "empty key",
}


def assert_same_json(got: Any, want: Any, where: str = "metadata") -> None:
    """Equal values AND equal types all the way down (1 is not 1.0 is not True)."""
    assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, dict):
        assert set(got) == set(want), where
        for key in want:
            assert_same_json(got[key], want[key], f"{where}[{key!r}]")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same_json(g, w, f"{where}[{i}]")
    else:
        assert got == want, where


def assert_records_equal(got: Record, want: Record) -> None:
    assert got.id == want.id
    assert got.text.encode("utf-8") == want.text.encode("utf-8"), f"text of {want.id!r} differs"
    assert_same_json(got.metadata, want.metadata, f"metadata of {want.id!r}")


def test_torture_texts_round_trip_exactly_after_reopen(open_engine: Callable[..., Engine], store_path: Path):
    records = [
        Record(f"doc-{name}", text, {**METADATA, "name": name}) for name, text in TORTURE_TEXTS.items()
    ]
    add(open_engine(), records)

    reopened = open_engine()
    got = reopened.get([r.id for r in records])
    assert [r.id for r in got] == [r.id for r in records]
    for g, w in zip(got, records, strict=True):
        assert_records_equal(g, w)
    # The same records come back through every read path, not just get().
    by_id = {r.id: r for r in reopened.iter_records()}
    assert set(by_id) == {r.id for r in records}
    for w in records:
        assert_records_equal(by_id[w.id], w)
    hit = reopened.search(fake_embed_one(TORTURE_TEXTS["nul-and-controls"]), 1)[0]
    assert_records_equal(hit.record, records[list(TORTURE_TEXTS).index("nul-and-controls")])


def test_torture_ids_round_trip(open_engine: Callable[..., Engine]):
    """Ids are any non-empty Unicode string: emoji, RTL, spaces, NUL, very long."""
    ids = ["🏳️\u200d🌈", "שלום", "with space", "a\x00b", "a", "a\x00", "x" * 4096, "../../etc/passwd"]
    # Ids are compared as exact code points: no case folding, no Unicode normalisation.
    ids += ["A", "\u00e9", "e\u0301", "ﬁ", "fi"]
    records = [Record(rid, f"text of {i}", {"i": i}) for i, rid in enumerate(ids)]
    add(open_engine(), records)
    reopened = open_engine()
    assert len(reopened) == len(ids)
    assert set(reopened.ids()) == set(ids)
    for want in records:
        (got,) = reopened.get([want.id])
        assert_records_equal(got, want)


def test_get_keeps_requested_order_and_skips_unknown_ids(engine: Engine):
    records = [Record(f"id{i}", f"text {i}") for i in range(5)]
    add(engine, records)
    got = engine.get(["id3", "missing", "id0", "id3", "id4"])
    assert [r.id for r in got] == ["id3", "id0", "id4"]
    assert [r.text for r in got] == ["text 3", "text 0", "text 4"]
    assert engine.get([]) == []


def test_metadata_default_is_an_empty_dict(engine: Engine):
    add(engine, [Record("plain", "no metadata given")])
    (got,) = engine.get(["plain"])
    assert got.metadata == {}
    assert type(got.metadata) is dict


# -- property test ----------------------------------------------------------------------------

_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_json_value = st.recursive(
    _json_leaf,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)
_texts = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=2000, max_size=6000),
)
_records = st.lists(
    st.builds(
        Record,
        id=st.text(min_size=1, max_size=12),
        text=_texts,
        metadata=st.dictionaries(st.text(max_size=8), _json_value, max_size=4),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(records=_records)
def test_property_add_then_reopen_returns_the_same_records(records: list[Record]):
    """Any valid records survive add -> close -> open a NEW Engine -> get; last duplicate wins."""
    expected = {r.id: r for r in records}  # a later duplicate replaces an earlier one
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store"
        with Engine(path) as writer:
            written = add(writer, records)
        assert sorted(written) == sorted(expected)
        with Engine(path) as reader:
            assert len(reader) == len(expected)
            got = reader.get(list(expected))
            assert [r.id for r in got] == list(expected)
            for g in got:
                assert_records_equal(g, expected[g.id])


# -- multi-frame records ----------------------------------------------------------------------


def _poorly_compressible_text(n_bytes: int, seed: int) -> str:
    """Base64 of random bytes interleaved with words and non-ASCII: compresses to about 0.75."""
    rng = random.Random(seed)
    words = ["alpha", "βήτα", "gamma", "δέλτα", "video", "frame", "кадр", "映像", "🎞️"]
    parts, size = [], 0
    while size < n_bytes:
        chunk = (
            base64.b64encode(rng.randbytes(3000)).decode() + " " + " ".join(rng.choices(words, k=40)) + "\n"
        )
        parts.append(chunk)
        size += len(chunk.encode())
    text = "".join(parts)
    while len(text.encode()) > n_bytes:
        text = text[: n_bytes - (len(text.encode()) - len(text))]
    return text


def test_five_megabyte_record_spans_many_frames_and_comes_back_exact(
    open_engine: Callable[..., Engine],
):
    """Spec: sections 3.1 and 3.2 - part/parts split one pack over consecutive frames."""
    big = _poorly_compressible_text(5_000_000, seed=7)
    assert len(big.encode()) > 4_900_000
    records = [
        Record("small-before", "tiny ✓", {"n": 1}),
        Record("big", big, {"kind": "big", "bytes": len(big.encode())}),
        Record("small-after", "", {"n": 2}),
        Record("medium", _poorly_compressible_text(9000, seed=8), {"n": 3.5}),
    ]
    writer = open_engine()
    add(writer, records)

    location = writer.locate(["big"])["big"]
    assert location.frame_count > 1000, "a 5 MB poorly compressible text needs over 1000 v40 frames"
    assert writer.stats()["frames"] >= location.frame_count + 2

    reader = open_engine()
    got = {r.id: r for r in reader.get([r.id for r in records])}
    for want in records:
        assert_records_equal(got[want.id], want)
    # The small records around the big one were not swallowed into or damaged by its frames.
    small_locations = reader.locate(["small-before", "small-after", "medium"])
    big_frames = range(location.frame, location.frame + location.frame_count)
    assert all(loc.frame not in big_frames for loc in small_locations.values())


def test_search_returns_exact_records_with_scores(engine: Engine):
    records = [Record(f"r{i}", f"document number {i} ✓", {"i": i}) for i in range(20)]
    add(engine, records)
    query = fake_embed_one(records[11].text)
    hits = engine.search(query, 3)
    assert hits[0].record == records[11]
    assert np.isclose(hits[0].score, 1.0, atol=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
