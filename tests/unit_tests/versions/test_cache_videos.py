"""``cache_videos``: a handle that keeps whole videos in the object cache reads them locally.

The default reads each record with one ranged GET where the video is; with ``cache_videos`` the
first read of a segment downloads its video once (checked against the catalog's SHA-256) and every
later read is a local positioned read: no request at all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from langchain_memvid.engine import ChecksumMismatch, Engine, Record
from langchain_memvid.engine.storage.objects import ObjectStore


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LCMEMVID_CACHE", str(tmp_path / "cache"))


def _store(url: str, n: int = 60) -> dict[str, str]:
    rng = np.random.default_rng(7)
    texts = {f"r{i}": f"record {i} " + "é" * (i % 5) for i in range(n)}
    with Engine(url, dim=8, segment_records=20) as writer:
        writer.add([Record(id=k, text=v) for k, v in texts.items()], rng.normal(size=(n, 8)).astype("float32"))
    return texts


def test_a_segment_is_downloaded_once_then_read_locally() -> None:
    url = "memory://cache-videos/once"
    texts = _store(url)
    with Engine(url, cache_videos=True) as reader:
        objects = reader._versions.objects  # type: ignore[union-attr]
        objects.reset_requests()
        first = reader.get(["r1"])
        assert first[0].text == texts["r1"]
        assert objects.requests["GET_RANGE"] == 1  # the whole video of r1's segment, once
        objects.reset_requests()
        got = reader.get([f"r{i}" for i in range(20)])  # the same segment, other packs
        assert [r.text for r in got] == [texts[f"r{i}"] for i in range(20)]
        assert sum(objects.requests.values()) == 0
        assert reader.verify().ok


def test_without_it_every_read_goes_to_the_bucket() -> None:
    url = "memory://cache-videos/default"
    texts = _store(url)
    with Engine(url) as reader:
        objects = reader._versions.objects  # type: ignore[union-attr]
        reader.get(["r1"])
        reader.reader.clear_packs()
        objects.reset_requests()
        assert reader.get(["r2"])[0].text == texts["r2"]
        assert objects.requests["GET_RANGE"] == 1


def test_a_damaged_video_is_refused_and_not_cached(tmp_path: Path) -> None:
    url = "memory://cache-videos/damaged"
    _store(url)
    objects = ObjectStore(url)
    video = next(n for n in objects.list("segments/") if n.endswith(".mov"))
    data = bytearray(objects.read(video))
    data[len(data) // 2] ^= 0xFF
    objects.put(video, bytes(data))
    with Engine(url, cache_videos=True) as reader:
        seg = next(s for s in reader.reader.segments.values() if f"segments/{s.video_file}" == video)
        rid = next(r.id for r in reader.catalog.iter_records() if r.seq == seg.seq)
        with pytest.raises(ChecksumMismatch):
            reader.get([rid])
    cached = list((tmp_path / "cache" / "objects").rglob("*"))
    assert all(p.is_dir() or p.stat().st_size != len(data) for p in cached)
