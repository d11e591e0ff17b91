"""Opening: memory-mapped snapshots, GPU opt-in, damaged snapshots, readers in step with writers."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import pytest

from langchain_memvid.engine import Engine

from .conftest import HAS_GPU, KINDS, NEEDS_GPU, clustered, exact_top, records


def built(open_engine: Callable[..., Engine], kind: str, n: int = 300) -> np.ndarray:
    vectors = clustered(n + 50, seed=11)
    options, _ = KINDS[kind]
    engine = open_engine(index=kind, index_options=options, metric="l2" if kind == "lsh" else None)
    engine.add(records(0, n), vectors[:n])
    engine.close()
    return vectors


@pytest.mark.parametrize("kind", ["ivf", "ivfpq", "hnsw", "lsh"])
def test_mmap_open_serves_and_takes_writes(open_engine: Callable[..., Engine], kind: str) -> None:
    vectors = built(open_engine, kind)
    metric = "l2" if kind == "lsh" else "cosine"
    engine = open_engine(index_options={"mmap": True})
    info = engine.stats()["index"]
    assert (info["mmap"], info["vectors_in_main"], info["vectors_exact"]) == (True, 300, 0)
    index = engine._index
    assert index is not None
    assert index.mmapped
    assert not index.mutable
    if kind.startswith("ivf"):
        lists = faiss.extract_index_ivf(index.main).invlists
        assert type(faiss.downcast_InvertedLists(lists)).__name__ == "OnDiskInvertedLists"
    params = KINDS[kind][1]
    live = {f"r{i}": vectors[i] for i in range(300)}
    assert [r for r, _ in engine.search_ids(vectors[320], 5, search_params=params)] == exact_top(
        live, vectors[320], 5, metric
    )
    # Writes: new vectors go to the exact part, deleted ones are excluded (the map is read-only).
    engine.add(records(300, 320), vectors[300:320])
    engine.delete(["r0", "r1", "r305"])
    for rid in ("r0", "r1"):
        del live[rid]
    live.update({f"r{i}": vectors[i] for i in range(300, 320) if i != 305})
    info = engine.stats()["index"]
    assert (info["vectors_exact"], info["deleted_excluded"]) == (19, 2)
    for q in vectors[320:330]:
        got = [r for r, _ in engine.search_ids(q, 5, search_params=params)]
        assert got == exact_top(live, q, 5, metric)
    engine.compact()  # rebuilt in memory and saved: the next mmap open holds everything
    engine.close()
    again = open_engine(index_options={"mmap": True})
    assert again.stats()["index"]["vectors_in_main"] == len(live)


def test_gpu_request_without_gpu_warns_and_stays_on_cpu(open_engine: Callable[..., Engine]) -> None:
    if HAS_GPU:
        pytest.skip("a GPU is present; the fallback message is for machines without one")
    vectors = built(open_engine, "ivf")
    with pytest.warns(RuntimeWarning, match="gpu=True: .*(GPU|gpu).*; searching on the CPU"):
        engine = open_engine(index_options={"gpu": True})
    assert engine.stats()["index"]["gpu"] is False
    assert engine.search_ids(vectors[3], 1)[0][0] == "r3"


@pytest.mark.parametrize("gpu", [False, pytest.param(True, marks=NEEDS_GPU)])
def test_nprobe_is_taken_per_query(open_engine: Callable[..., Engine], gpu: bool) -> None:
    vectors = built(open_engine, "ivf")  # 8 lists
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        engine = open_engine(index_options={"gpu": gpu})
    assert engine.stats()["index"]["gpu"] is gpu
    live = {f"r{i}": vectors[i] for i in range(300)}

    def misses(nprobe: int) -> int:
        return sum(
            [r for r, _ in engine.search_ids(q, 10, search_params={"nprobe": nprobe})]
            != exact_top(live, q, 10, "cosine")
            for q in vectors[300:350]
        )

    assert misses(1) > 0  # one list of eight: some neighbours sit in other lists
    assert misses(8) == 0  # every list: exact


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        pytest.param("hnsw", "FAISS has no GPU version of HNSW8,Flat", marks=NEEDS_GPU),
        pytest.param("lsh", "FAISS has no GPU version of LSH32", marks=NEEDS_GPU),
        pytest.param("ivfpq", "FAISS cannot move IVF4,PQ4x4 to the GPU: .*nbits == 8", marks=NEEDS_GPU),
    ],
)
def test_gpu_request_for_a_cpu_only_type_warns(
    open_engine: Callable[..., Engine], kind: str, why: str
) -> None:
    vectors = built(open_engine, kind)
    with pytest.warns(RuntimeWarning, match=f"gpu=True: {why}.*; searching on the CPU"):
        engine = open_engine(index_options={"gpu": True})
    assert engine.stats()["index"]["gpu"] is False
    assert engine.search_ids(vectors[3], 1)[0][0] == "r3"


def test_damaged_snapshot_is_ignored_reported_and_rebuilt(
    open_engine: Callable[..., Engine], store_path: Path
) -> None:
    vectors = built(open_engine, "hnsw")
    snapshot = next((store_path / "index").iterdir())
    data = bytearray(snapshot.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snapshot.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="Ignoring the index snapshot.*SHA-256"):
        engine = open_engine()
    assert engine.stats()["index"]["serving"] == "exact"  # the segment files still answer
    assert engine.search_ids(vectors[4], 1)[0][0] == "r4"
    report = engine.verify()
    assert any(p.file.startswith("index/") and "SHA-256" in p.message for p in report.problems)
    engine.build_index()
    assert engine.verify().ok
    assert engine.stats()["index"]["serving"] == "approximate"


def test_missing_snapshot_falls_back_to_the_segments(
    open_engine: Callable[..., Engine], store_path: Path
) -> None:
    vectors = built(open_engine, "ivf")
    next((store_path / "index").iterdir()).unlink()
    with pytest.warns(RuntimeWarning, match="Ignoring the index snapshot"):
        engine = open_engine()
    assert engine.search_ids(vectors[7], 1)[0][0] == "r7"
    engine.compact()
    assert engine.stats()["index"]["serving"] == "approximate"


def test_reader_follows_a_writer_that_trains_and_compacts(open_engine: Callable[..., Engine]) -> None:
    vectors = clustered(400, seed=12)
    writer = open_engine(index="ivf", index_options={"nlist": 4, "min_vectors": 200})
    reader = open_engine()
    writer.add(records(0, 150), vectors[:150])
    assert reader.stats()["index"]["serving"] == "exact"
    writer.add(records(150, 300), vectors[150:300])
    assert reader.stats()["index"]["serving"] == "approximate"
    writer.delete(["r5"])
    writer.add(records(300, 310), vectors[300:310])
    live = {f"r{i}": vectors[i] for i in range(310) if i != 5}
    for q in vectors[350:355]:
        got = [r for r, _ in reader.search_ids(q, 5, search_params={"nprobe": 4})]
        assert got == exact_top(live, q, 5, "cosine")
    writer.compact()
    assert reader.stats()["index"]["snapshot"] == writer.stats()["index"]["snapshot"]
    assert reader.search_ids(vectors[305], 1)[0][0] == "r305"


def test_damaged_vector_file_is_reported_when_refine_reads_it(
    open_engine: Callable[..., Engine], store_path: Path
) -> None:
    from langchain_memvid.engine import CorruptData

    vectors = built(open_engine, "ivfpq")
    for file in (store_path / "segments").glob("*.faiss"):
        file.write_bytes(file.read_bytes()[:-8])  # the snapshot spares opening them; refine does not
    engine = open_engine()
    with pytest.raises(CorruptData, match=r"layout of this store's vector files"):
        engine.search(vectors[0], 3)
