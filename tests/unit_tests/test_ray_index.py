"""IVF indexes built on a real two-node Ray cluster (langchain_memvid.distributed_index).

``ray.cluster_utils.Cluster`` starts a head and a second node on this machine (one CPU each), to
stand for two machines sharing the store's folder. The suite runs with `--disable-socket
--allow-unix-socket`; the module allows 127.0.0.1 only, as test_ray_ingest.py does. A worker
process is killed in the middle of a fill (a setup hook Ray runs in each worker arms it, and a
marker file lets it fire once): Ray runs the task again and the index comes out whole.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_memvid.engine import Engine, Record

DIM = 16
N = 3000
IVF = {"nlist": 16, "min_vectors": 100_000}

pytestmark = [pytest.mark.slow, pytest.mark.allow_hosts(["127.0.0.1"])]


def _kill_a_fill_once(marks: str) -> None:
    """Ray runs this in each worker it starts: a fill writes its part, then its process exits, once."""
    from langchain_memvid.engine import parallel_index

    real = parallel_index.fill_index_part

    def fill(job: Any, template: bytes) -> Any:
        part = real(job, template)
        if os.path.exists(os.path.join(marks, "arm-fill")):
            try:
                os.close(os.open(os.path.join(marks, "fill-killed"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return part
            os._exit(1)
        return part

    parallel_index.fill_index_part = fill  # type: ignore[assignment]


def _hook(marks: str) -> Callable[[], None]:
    def kill_a_fill_once() -> None:
        _kill_a_fill_once(marks)

    return kill_a_fill_once


@pytest.fixture(scope="module")
def marks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    ray = pytest.importorskip("ray", reason='Ray is not installed: pip install "langchain-qrvideo[ray]"')
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    folder = tmp_path_factory.mktemp("ray-index-marks")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    # ray.init(address=...) turns 127.0.0.1 into this machine's outward address, where the
    # nodes below do not listen (and pytest-socket allows 127.0.0.1 only); Ray's own switch for
    # single-machine clusters keeps the loopback address.
    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False,
                        "object_store_memory": 128 << 20},
    )
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", object_store_memory=128 << 20)
    ray.init(address=cluster.address, log_to_driver=False,
             runtime_env={"worker_process_setup_hook": _hook(str(folder))})
    try:
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        yield folder
    finally:
        ray.shutdown()
        cluster.shutdown()
        ray_constants.ENABLE_RAY_CLUSTER = saved


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, DIM)) * 3
    return (centres[rng.integers(0, 8, n)] + rng.standard_normal((n, DIM))).astype(np.float32)


def fill(path: Path) -> dict[str, np.ndarray]:
    vectors = clustered(N, seed=21)
    with Engine(path, index="ivf", index_options=IVF, vector_encoding="float32", segment_records=400) as engine:
        engine.add([Record(f"r{i}", f"text {i}", {}) for i in range(N)], vectors)
        engine.delete([f"r{i}" for i in range(0, N, 5)])
    return {f"r{i}": vectors[i] for i in range(N) if i % 5}


def answers(engine: Engine, queries: np.ndarray) -> list[list[str]]:
    return [[rid for rid, _ in engine.search_ids(q, 10, search_params={"nprobe": 4})] for q in queries]


def recall(found: list[list[str]], live: dict[str, np.ndarray], queries: np.ndarray) -> float:
    ids = list(live)
    mat = np.stack([live[i] for i in ids])
    mat = mat / np.linalg.norm(mat, axis=1, keepdims=True)
    hits = 0
    for got, q in zip(found, queries, strict=True):
        exact = {ids[i] for i in np.argsort(-(mat @ (q / np.linalg.norm(q))))[:10]}
        hits += len(exact & set(got))
    return hits / (10 * len(queries))


def test_ivf_built_on_two_nodes_equals_one_built_in_one_process(marks: Path, tmp_path: Path) -> None:
    from langchain_memvid.distributed_index import build_index_on_ray

    live = fill(tmp_path / "ray")
    fill(tmp_path / "one")
    (marks / "arm-fill").touch()  # one fill dies after writing its part: Ray runs it again
    try:
        info = build_index_on_ray(tmp_path / "ray")
    finally:
        (marks / "arm-fill").unlink()
    assert (marks / "fill-killed").exists()
    assert info["serving"] == "approximate"
    assert info["vectors_in_main"] == len(live)
    assert not [p for p in os.listdir(tmp_path / "ray" / "tmp") if p.endswith(".part")]

    queries = clustered(80, seed=22) + 0.01
    with Engine(tmp_path / "ray") as ours, Engine(tmp_path / "one") as one:
        one.build_index()
        got, want = answers(ours, queries), answers(one, queries)
        assert abs(recall(got, live, queries) - recall(want, live, queries)) <= 0.005
        assert got == want
        assert ours.verify().ok


def test_ingest_into_an_ivf_store_builds_its_index_on_the_cluster(marks: Path, tmp_path: Path) -> None:
    from langchain_memvid.distributed import ingest_on_ray

    src = tmp_path / "docs"
    src.mkdir()
    for n in range(12):
        (src / f"doc{n}.txt").write_text(" ".join(f"word{n}x{i} topic{i % 9}" for i in range(400)), encoding="utf-8")
    report = ingest_on_ray(
        tmp_path / "store",
        [str(src)],
        embedding=DeterministicFakeEmbedding(size=DIM),
        store_options={"vector_encoding": "float32", "index": "ivf", "index_options": {"nlist": 4, "min_vectors": 50}},
        chunk_size=300,
        chunk_overlap=0,
        segment_size=40,
    )
    assert report.added >= 100
    assert report.segments >= 3
    with Engine(tmp_path / "store") as engine:
        info = engine.stats()["index"]
        assert (info["serving"], info["trained_on"], info["vectors_in_main"]) == ("approximate", report.added, report.added)
        assert info["snapshot"]["ntotal"] == report.added
        assert engine.verify().ok
    first = info["snapshot"]["file"]

    # A small ingest later keeps the snapshot (its vectors are read from their segment at open);
    # one that more than doubles the store builds the index again on the cluster.
    options = {"embedding": DeterministicFakeEmbedding(size=DIM), "chunk_size": 300, "chunk_overlap": 0, "segment_size": 40}
    (src / "late.txt").write_text("late arrival " * 30, encoding="utf-8")
    small = ingest_on_ray(tmp_path / "store", [str(src)], **options)
    with Engine(tmp_path / "store") as engine:
        info = engine.stats()["index"]
        assert info["snapshot"]["file"] == first
        assert info["vectors_in_main"] + info["vectors_exact"] == report.added + small.added
    big = tmp_path / "more"
    big.mkdir()
    for n in range(30):
        (big / f"more{n}.txt").write_text(" ".join(f"more{n}x{i}" for i in range(400)), encoding="utf-8")
    grown = ingest_on_ray(tmp_path / "store", [str(big)], **options)
    assert grown.added > report.added + small.added
    with Engine(tmp_path / "store") as engine:
        info = engine.stats()["index"]
        assert info["snapshot"]["file"] != first
        assert info["snapshot"]["ntotal"] == info["vectors_in_main"] == report.added + small.added + grown.added


def test_cli_build_index_ray(marks: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from langchain_memvid.cli import cli

    live = fill(tmp_path / "s")
    result = CliRunner().invoke(cli, ["build-index", str(tmp_path / "s"), "--ray", "--option", "nlist=8", "--index", "ivf"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"IVF8,Flat: approximate search over {len(live):,} vectors; snapshot ")
    hnsw = CliRunner().invoke(cli, ["build-index", str(tmp_path / "s"), "--ray", "--index", "hnsw"])
    assert hnsw.exit_code == 1
    assert "Only IVF indexes are built in parallel" in hnsw.output
