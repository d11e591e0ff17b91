"""Fuzzing the decoders and the catalog loader: only ``MemvidError`` may escape.

Hypothesis drives the frame parser, the pack parser, the zstd wrapper and the whole open/read/
verify path on a mutated catalog, with a fixed budget and a fixed seed. Any other exception -
IndexError, struct.error, UnicodeDecodeError, MemoryError, a sqlite3 error - is a bug.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zstandard
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from langchain_memvid.engine import Engine, MemvidError, Record, rebuild_store
from langchain_memvid.engine.codec.frames import (
    KIND_RECORDS,
    FrameHeader,
    build_frame,
    decompress,
    parse_frame,
)
from langchain_memvid.engine.codec.records import PackReader, encode_record, pack_entries, unpack_entries

from . import stats
from .common import DIM
from .conftest import SEED

BUDGET = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def only_memvid_errors(fn: Callable[[], Any]) -> None:
    stats.add("fuzz_cases")
    with contextlib.suppress(MemvidError):
        fn()


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` with a few bytes flipped, overwritten, inserted or cut."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "truncate", "extend"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80]))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "truncate":
            del data[pos:]
        else:
            data += draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


RECORDS = [
    Record("a", "héllo wörld " * 5, {"n": 1, "tags": ["x", "y"], "nested": {"k": None}}),
    Record("b", "", {}),
    Record("ccc", "日本語のテキスト 👋", {"f": 1.5, "b": True}),
]
PACK = pack_entries([encode_record(r) for r in RECORDS])
ZSTD = zstandard.ZstdCompressor(level=3).compress(PACK)
FRAME = build_frame(FrameHeader(KIND_RECORDS, 3, 7, 0, 1), ZSTD)


@seed(SEED)
@BUDGET
@given(st.one_of(st.binary(max_size=200), mutated(FRAME)))
def test_fuzz_parse_frame(payload: bytes) -> None:
    only_memvid_errors(lambda: parse_frame(payload))


@seed(SEED)
@BUDGET
@given(st.one_of(st.binary(max_size=200), mutated(PACK)))
def test_fuzz_unpack_entries(data: bytes) -> None:
    def parse() -> None:
        unpack_entries(data)
        reader = PackReader(data)
        for slot in range(len(reader)):
            reader.record_id(slot)
            reader.record(slot)

    only_memvid_errors(parse)


@seed(SEED)
@BUDGET
@given(st.one_of(st.binary(max_size=200), mutated(ZSTD)), st.booleans())
def test_fuzz_decompress(data: bytes, small_limit: bool) -> None:
    only_memvid_errors(lambda: decompress(data, None, 64 if small_limit else 1 << 31))


# -- the catalog loader, end to end -------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog_template() -> Iterator[tuple[Path, bytes]]:
    root = Path(tempfile.mkdtemp(prefix="memvid-fuzz-"))
    path = root / "template"
    rng = np.random.default_rng(0)
    with Engine(path, dim=DIM) as engine:
        engine.add([Record(f"r{i}", f"text {i}", {"i": i}) for i in range(12)], rng.random((12, DIM)))
        engine.add([Record("r3", "upserted", {"v": 2})], rng.random((1, DIM)))
        engine.delete(["r5"])
    yield path, (path / "catalog.sqlite").read_bytes()
    shutil.rmtree(root, ignore_errors=True)


def _open_and_use(store: Path) -> None:
    with Engine(store, create=False, lock_timeout=5) as engine:
        ids = engine.ids()
        engine.get([*ids, "r0", "r3"])
        list(engine.iter_records())
        engine.search(np.ones(DIM, np.float32), 3, filter={"i": {"$gte": 2}})
        engine.locate(ids[:3])
        engine.verify(cross_check=False)
        len(engine)


def test_fuzz_catalog_loader(catalog_template: tuple[Path, bytes]) -> None:
    template, valid = catalog_template
    work = template.parent / "case"
    pages = len(valid) // 4096

    @seed(SEED)
    @settings(BUDGET, max_examples=300)
    @given(
        st.one_of(
            mutated(valid),
            # whole pages overwritten or zeroed: what a torn or misdirected write leaves
            st.tuples(st.integers(0, pages - 1), st.sampled_from([b"\0", b"\xff", b"\x55"])).map(
                lambda t: valid[: t[0] * 4096] + t[1] * 4096 + valid[(t[0] + 1) * 4096 :]
            ),
        )
    )
    def run(catalog: bytes) -> None:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(template, work)
        (work / "catalog.sqlite").write_bytes(catalog)
        only_memvid_errors(lambda: _open_and_use(work))

    run()


def test_fuzz_rebuild_on_mutated_videos(catalog_template: tuple[Path, bytes]) -> None:
    """Rebuild reads whatever is in segments/: it reports damage, it never crashes on it."""
    template, _ = catalog_template
    videos = sorted(p.name for p in (template / "segments").glob("*.mov"))
    work = template.parent / "rebuild-case"

    @seed(SEED)
    @settings(BUDGET, max_examples=60)
    @given(st.sampled_from(videos), st.data())
    def run(name: str, data: st.DataObject) -> None:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(template, work)
        video = work / "segments" / name
        video.write_bytes(data.draw(mutated(video.read_bytes())))
        for file in work.glob("catalog.sqlite*"):
            file.unlink()
        only_memvid_errors(lambda: rebuild_store(work, embed=lambda texts: np.ones((len(texts), DIM))))

    run()
