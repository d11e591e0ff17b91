"""Packing is linear in the records added, and every pack is valid whatever the records are like.

Spec: docs/format.md, section 3.2 "Packs": a pack of records is one zstd frame (content size set)
of count + entries; a writer sizes packs to fit one frame, and a record too large for one frame
gets a pack of its own spanning several.

Tiny, repetitive records compress so well that thousands share a pack. A packer that grows a pack
one record at a time and recompresses it each time does work proportional to the square of the
pack (100,000 tiny documents did not finish in 10 minutes). Instead of timing, the tests count
the bytes handed to zstd: they must stay within a small multiple of the records' own size.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
import zstandard

from langchain_memvid.engine import Engine, Record
from langchain_memvid.engine.codec import frames, qr
from langchain_memvid.engine.codec.records import EncodedRecord, encode_record, unpack_entries
from langchain_memvid.engine.storage.segments import train_dictionary

from .conftest import add

CAPACITY = qr.capacity("L")
ROOM = CAPACITY - frames.HEADER_SIZE
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "apple",
    "river",
    "stone",
    "cloud",
    "seven",
    "green",
    "house",
    "light",
    "paper",
    "music",
]


def numbered(n: int) -> list[Record]:
    """The worst case for the old packer: sequential ids and near-identical tiny texts."""
    return [Record(f"doc-{i:06d}", f"tiny document number {i}") for i in range(n)]


def same_text(n: int) -> list[Record]:
    return [Record(f"id-{i}", "hello world, hello world") for i in range(n)]


def tiny_words(n: int, seed: int = 1) -> list[Record]:
    """10-30 characters of common words, with metadata."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        target, text = rng.randint(10, 30), ""
        while len(text) < target:
            text += rng.choice(WORDS) + " "
        out.append(Record(f"w{i}", text[:target].strip(), {"i": i}))
    return out


def medium(n: int, seed: int = 2) -> list[Record]:
    """~500-character chunks of prose-like text."""
    rng = random.Random(seed)
    return [
        Record(f"m{i}", " ".join(rng.choice(WORDS) for _ in range(rng.randint(60, 90))), {"chunk_index": i})
        for i in range(n)
    ]


def big(n: int, seed: int = 3) -> list[Record]:
    """Records of poorly compressible text, each too large for one frame."""
    rng = random.Random(seed)
    alphabet = [chr(c) for c in range(0x21, 0x7F)] + [chr(c) for c in range(0x3B1, 0x3CA)]
    return [Record(f"b{i}", "".join(rng.choices(alphabet, k=rng.randint(4000, 12000)))) for i in range(n)]


def mixed(seed: int = 4) -> list[Record]:
    records = tiny_words(300, seed) + medium(60, seed) + big(4, seed) + same_text(200)
    random.Random(seed).shuffle(records)
    return list({r.id: r for r in records}.values())


class CountingCompressor:
    """zstandard.ZstdCompressor that tallies the bytes it is asked to compress."""

    calls = 0
    bytes_in = 0
    real: Any = zstandard.ZstdCompressor

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._inner = self.real(*args, **kwargs)

    def compress(self, data: bytes) -> bytes:
        CountingCompressor.calls += 1
        CountingCompressor.bytes_in += len(data)
        return self._inner.compress(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> type[CountingCompressor]:
    """Every zstd compressor created by the packer counts its input."""
    monkeypatch.setattr(CountingCompressor, "calls", 0)
    monkeypatch.setattr(CountingCompressor, "bytes_in", 0)
    monkeypatch.setattr(frames.zstandard, "ZstdCompressor", CountingCompressor)
    return CountingCompressor


def pack_all(
    records: list[Record], *, dictionary: bool = True
) -> tuple[list[EncodedRecord], list[frames.Pack]]:
    encoded = [encode_record(r) for r in records]
    zdict = train_dictionary(encoded) if dictionary else None
    return encoded, list(frames.Packer(CAPACITY, 19, zdict).packs(encoded))


@pytest.mark.parametrize("make", [numbered, same_text, tiny_words], ids=["numbered", "same-text", "words"])
@pytest.mark.parametrize("dictionary", [True, False], ids=["dict", "no-dict"])
def test_compression_work_is_linear_in_the_records(
    counting: type[CountingCompressor], make: Callable[[int], list[Record]], dictionary: bool
) -> None:
    n = 2000
    encoded, packs = pack_all(make(n), dictionary=dictionary)
    raw = sum(r.entry_size for r in encoded)
    # Growing a pack one record at a time compressed it once per record it took: about n ** 2 / 2
    # entries for the numbered records, all of which fit one pack (~1200x the input at 4,096
    # records, ~27x even for the words here). Each pack now takes a few tries.
    assert counting.bytes_in <= 8 * raw + 64 * 1024, (counting.bytes_in, raw)
    assert counting.calls <= 10 * len(packs) + 10, (counting.calls, len(packs))


def check_packs(records: list[Record], encoded: list[EncodedRecord], packs: list[frames.Pack]) -> None:
    """Packs cover the records in order, fit a frame unless single, and decompress byte-exact."""
    assert [r.id for p in packs for r in p.records] == [r.id for r in records]
    for pack in packs:
        assert pack.records
        if len(pack.records) > 1:
            assert len(pack.body) <= ROOM
        assert zstandard.get_frame_parameters(pack.body).content_size != zstandard.CONTENTSIZE_UNKNOWN
    zdict = train_dictionary(encoded)
    back = [rec for p in packs for rec in unpack_entries(frames.decompress(p.body, zdict))]
    assert back == records


@pytest.mark.parametrize(
    "make",
    [lambda: numbered(3000), lambda: tiny_words(3000), lambda: medium(300), lambda: big(5), mixed],
    ids=["numbered", "tiny", "medium", "multi-frame", "mixed"],
)
def test_packs_round_trip_and_fit(make: Callable[[], list[Record]]) -> None:
    records = make()
    encoded, packs = pack_all(records)
    check_packs(records, encoded, packs)


def test_big_records_span_several_frames() -> None:
    _, packs = pack_all(big(3) + tiny_words(50))
    spanning = [p for p in packs if len(p.body) > ROOM]
    assert len(spanning) == 3
    assert all(len(p.records) == 1 for p in spanning)
    assert all(len(frames.split_body(p.body, CAPACITY)) > 1 for p in spanning)


def test_tiny_packs_stay_full() -> None:
    """The search must not trade density for speed: packs before the last are nearly full."""
    for make in (numbered, tiny_words):
        _, packs = pack_all(make(4000))
        fills = [len(p.body) / ROOM for p in packs[:-1]]
        assert fills
        assert sum(fills) / len(fills) >= 0.93, fills


def test_incompressible_records_each_get_a_valid_pack() -> None:
    """Records that compress worse than the ratio carried from the previous packs."""
    records = numbered(500) + big(2) + same_text(300)
    encoded, packs = pack_all(records)
    check_packs(records, encoded, packs)


@pytest.mark.parametrize(
    "make",
    [lambda: numbered(3000), lambda: medium(150), mixed],
    ids=["tiny", "medium", "mixed-with-multi-frame"],
)
def test_store_round_trip(engine: Engine, make: Callable[[], list[Record]]) -> None:
    records = make()
    add(engine, records)
    assert engine.get([r.id for r in records]) == records
    located = engine.locate([r.id for r in records])
    assert any(loc.frame_count > 1 for loc in located.values()) == any(len(r.text) > 4000 for r in records)
    path = engine.path
    engine.close()
    with Engine(path) as again:
        assert again.get([r.id for r in records]) == records
        assert again.verify().ok
