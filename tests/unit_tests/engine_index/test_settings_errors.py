"""Impossible or conflicting index settings fail clearly, before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from langchain_memvid.engine import Engine, InvalidArgument, Record, StoreConfigMismatch

from .conftest import DIM, clustered, records


@pytest.mark.parametrize(
    ("index", "options", "metric", "message"),
    [
        ("ivfpq", {"m": 5}, "cosine", r"m=5 does not divide the dimension 16"),
        ("lsh", {}, "cosine", r"LSH index accepts only metric 'l2'"),
        ("lsh", {}, "ip", r"LSH index accepts only metric 'l2'"),
        (
            "IVF4,Flat,nonsense",
            {},
            "cosine",
            r"FAISS cannot build index 'IVF4,Flat,nonsense'.*could not parse",
        ),
        ("PQ5", {}, "cosine", r"FAISS cannot build index 'PQ5' for 16-dimensional"),
        ("hnsw", {"nlist": 4}, "cosine", r"'nlist' does not apply to index 'hnsw'"),
        ("ivf", {"bogus": 1}, "cosine", r"'bogus' does not apply"),
        ("ivf", {"nprobe": 0}, "cosine", r"'nprobe' must be an integer >= 1"),
        ("ivfpq", {"nbits": 17}, "cosine", r"'nbits' of ivfpq must be between 1 and 16"),
        ("ivf", {"retrain_growth": 1}, "cosine", r"'retrain_growth' must be a number > 1"),
        ("ivf", {"mmap": "yes"}, "cosine", r"'mmap' must be True or False"),
        ("", {}, "cosine", r"index must be one of"),
    ],
)
def test_impossible_settings_raise_invalid_argument(
    store_path: Path, index: str, options: dict[str, object], metric: str, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        Engine(store_path, dim=DIM, metric=metric, index=index, index_options=options)
    assert not store_path.exists()  # refused before the store folder was made


def test_dimension_dependent_errors_surface_at_the_first_add(open_engine: Callable[..., Engine]) -> None:
    engine = open_engine(index="ivfpq", index_options={"m": 5})  # dimension not known yet
    with pytest.raises(InvalidArgument, match=r"m=5 does not divide the dimension 16"):
        engine.add(records(0, 3), clustered(3))
    assert len(engine) == 0
    assert engine.dim is None


def test_reopening_with_other_build_options_is_refused(open_engine: Callable[..., Engine]) -> None:
    engine = open_engine(index="ivf", index_options={"nlist": 4})
    engine.add([Record("a", "a")], clustered(1))
    engine.close()
    with pytest.raises(StoreConfigMismatch, match=r"built with index 'ivf' \{'nlist': 4\}, not 'hnsw'"):
        open_engine(index="hnsw")
    with pytest.raises(StoreConfigMismatch, match=r"not 'ivf' \{'nlist': 8\}"):
        open_engine(index_options={"nlist": 8})
    # The same choice, or search knobs and open options alone, are fine.
    assert open_engine(index="ivf", index_options={"nlist": 4, "nprobe": 2}).stats()["index"]["kind"] == "ivf"
    assert open_engine(index_options={"nprobe": 2, "mmap": True}).stats()["index"]["kind"] == "ivf"


def test_bad_search_params_are_refused(open_engine: Callable[..., Engine]) -> None:
    engine = open_engine(index="hnsw", index_options={"min_vectors": 10})
    engine.add(records(0, 20), clustered(20))
    with pytest.raises(InvalidArgument, match=r"Unknown search parameter 'ef'"):
        engine.search(clustered(1)[0], 3, search_params={"ef": 10})
    with pytest.raises(InvalidArgument, match=r"'efSearch' must be an integer >= 1"):
        engine.search(clustered(1)[0], 3, search_params={"efSearch": -1})
    # Knobs of other index types are accepted and ignored, so callers can pass one set for all.
    assert len(engine.search(clustered(1)[0], 3, search_params={"nprobe": 4, "efSearch": 16})) == 3


def test_build_index_refuses_open_options_and_too_few_vectors(open_engine: Callable[..., Engine]) -> None:
    engine = open_engine()
    engine.add(records(0, 20), clustered(20))
    with pytest.raises(InvalidArgument, match=r"open options"):
        engine.build_index("ivf", {"mmap": True})
    with pytest.raises(InvalidArgument, match=r"Training IVF.*failed"):
        engine.build_index("ivfpq", {"m": 4, "nbits": 8})  # 256 centroids per sub-quantizer, 20 vectors
    assert engine.stats()["index_type"] == "Flat (exact)"  # unchanged after the failure


def test_lsh_on_the_default_metric_is_refused_before_the_store_exists(store_path: Path) -> None:
    with pytest.raises(
        InvalidArgument, match=r"LSH index accepts only metric 'l2' .*; this store uses 'cosine'"
    ):
        Engine(store_path, index="lsh")
    assert not store_path.exists()
