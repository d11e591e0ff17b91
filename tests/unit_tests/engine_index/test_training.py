"""Training: exact search until ``min_vectors``, then a trained index saved as a snapshot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from langchain_memvid.engine import Engine, Record, rebuild_store

from .conftest import clustered, exact_top, records

IVF = {"nlist": 4, "min_vectors": 300}


def snapshots(store_path: Path) -> list[str]:
    folder = store_path / "index"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_exact_search_until_enough_vectors_then_trained(
    open_engine: Callable[..., Engine], store_path: Path
) -> None:
    vectors = clustered(700)
    engine = open_engine(index="ivf", index_options=IVF)
    engine.add(records(0, 200), vectors[:200])
    info = engine.stats()["index"]
    assert (info["serving"], info["trained"], info["snapshot"]) == ("exact", False, None)
    assert "exact search until 300 vectors" in engine.stats()["index_type"]
    assert snapshots(store_path) == []
    live = {f"r{i}": vectors[i] for i in range(200)}
    assert [r for r, _ in engine.search_ids(vectors[650], 5)] == exact_top(live, vectors[650], 5, "cosine")

    engine.add(records(200, 300), vectors[200:300])  # reaches min_vectors: trained and saved
    info = engine.stats()["index"]
    assert (info["serving"], info["trained"], info["trained_on"]) == ("approximate", True, 300)
    assert info["factory"] == "IVF4,Flat"
    assert snapshots(store_path) == [info["snapshot"]["file"]]
    assert "trained on 300 of 300 vectors" in engine.stats()["index_type"]

    # A reader opened earlier picks the trained index up from the snapshot.
    reader = open_engine()
    assert reader.stats()["index"]["vectors_in_main"] == 300


def test_snapshot_rewritten_as_the_store_doubles_so_reopening_replays_little(
    open_engine: Callable[..., Engine], store_path: Path
) -> None:
    vectors = clustered(700, seed=4)
    engine = open_engine(index="hnsw", index_options={"M": 8, "min_vectors": 100})
    engine.add(records(0, 100), vectors[:100])
    first = engine.stats()["index"]["snapshot"]
    assert first["ntotal"] == 100
    engine.add(records(100, 150), vectors[100:150])  # 50 unsaved < 100 saved: no new snapshot
    assert engine.stats()["index"]["snapshot"]["file"] == first["file"]
    engine.add(records(150, 250), vectors[150:250])  # 150 unsaved >= 100 saved: snapshot again
    second = engine.stats()["index"]["snapshot"]
    assert (second["ntotal"], second["max_vector_id"]) == (250, 249)
    assert snapshots(store_path) == [second["file"]]  # the old one is gone
    engine.add(records(250, 260), vectors[250:260])
    engine.close()
    reopened = open_engine()
    info = reopened.stats()["index"]
    assert info["vectors_in_main"] == 260  # 250 from the snapshot + 10 re-added from their segment


def test_compact_retrains_only_when_the_data_outgrew_the_training(
    open_engine: Callable[..., Engine], store_path: Path
) -> None:
    vectors = clustered(1000, seed=5)
    engine = open_engine(index="ivfpq", index_options={**IVF, "m": 4, "nbits": 4})
    engine.add(records(0, 300), vectors[:300])
    assert engine.stats()["index"]["trained_on"] == 300
    engine.delete([f"r{i}" for i in range(0, 300, 3)])
    engine.compact()  # 200 live < 2 x 300: training kept, deleted vectors dropped
    info = engine.stats()["index"]
    assert (info["trained_on"], info["vectors_in_main"], info["snapshot"]["ntotal"]) == (300, 200, 200)
    engine.add(records(300, 1000), vectors[300:1000])
    engine.compact()  # 900 live >= 2 x 300: retrained
    info = engine.stats()["index"]
    assert info["trained_on"] == 900
    assert info["deleted_excluded"] == 0
    assert len(snapshots(store_path)) == 1
    live = {f"r{i}": vectors[i] for i in range(1000) if i >= 300 or i % 3}
    got = [r for r, _ in engine.search_ids(vectors[5], 5, search_params={"nprobe": 4, "refine": 400})]
    assert got == exact_top(live, vectors[5], 5, "cosine")


def test_hnsw_drops_deleted_vectors_on_compaction(open_engine: Callable[..., Engine]) -> None:
    vectors = clustered(300, seed=6)
    engine = open_engine(index="hnsw", index_options={"M": 8, "min_vectors": 100})
    engine.add(records(0, 300), vectors)
    engine.delete([f"r{i}" for i in range(100)])
    assert engine.stats()["index"]["deleted_excluded"] == 100  # HNSW cannot remove: excluded
    assert "100 deleted excluded until compact()" in engine.stats()["index_type"]
    hits = engine.search_ids(vectors[5], 10)
    assert len(hits) == 10
    assert all(int(r[1:]) >= 100 for r, _ in hits)
    engine.compact()
    info = engine.stats()["index"]
    assert (info["deleted_excluded"], info["vectors_in_main"], info["snapshot"]["ntotal"]) == (0, 200, 200)


def test_build_index_switches_the_index_of_an_existing_store(
    open_engine: Callable[..., Engine], store_path: Path
) -> None:
    vectors = clustered(200, seed=7)
    engine = open_engine()
    engine.add(records(0, 200), vectors)
    assert engine.stats()["index_type"] == "Flat (exact)"
    info = engine.build_index("hnsw", {"M": 8})  # explicit: built now, below min_vectors
    assert (info["kind"], info["serving"], info["factory"]) == ("hnsw", "approximate", "HNSW8,Flat")
    engine.close()
    engine = open_engine()
    assert engine.stats()["index"]["kind"] == "hnsw"
    engine.build_index("flat")
    assert engine.stats()["index_type"] == "Flat (exact)"
    assert snapshots(store_path) == []
    live = {f"r{i}": vectors[i] for i in range(200)}
    assert [r for r, _ in engine.search_ids(vectors[9], 4)] == exact_top(live, vectors[9], 4, "cosine")


def test_rebuild_keeps_the_index_choice(open_engine: Callable[..., Engine], store_path: Path) -> None:
    vectors = clustered(300, seed=8)
    engine = open_engine(index="ivf", index_options=IVF)
    engine.add(records(0, 300), vectors)
    engine.close()
    rebuild_store(store_path)
    engine = open_engine()
    info = engine.stats()["index"]
    assert (info["kind"], info["options"]["nlist"]) == ("ivf", 4)
    assert info["snapshot"] is None  # vector ids were renumbered: exact search until rebuilt
    assert engine.search_ids(vectors[3], 1)[0][0] == "r3"
    engine.add([Record("new", "new")], vectors[:1] + 1)  # a write trains again
    assert engine.stats()["index"]["serving"] == "approximate"
    assert snapshots(store_path) == [engine.stats()["index"]["snapshot"]["file"]]


def test_training_sample_is_bounded(open_engine: Callable[..., Engine]) -> None:
    vectors = clustered(600, seed=9)
    engine = open_engine(index="ivf", index_options={"nlist": 4, "min_vectors": 600, "train_size": 250})
    engine.add(records(0, 600), vectors)
    info = engine.stats()["index"]
    assert (info["train_sample"], info["trained_on"]) == (250, 600)
    assert np.isfinite([s for _, s in engine.search_ids(vectors[0], 3)]).all()
