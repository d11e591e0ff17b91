"""Ingest and batch search on a real local Ray cluster (langchain_memvid.distributed, `ingest --ray`).

One cluster (2 CPUs) serves the module. The suite runs with `--disable-socket --allow-unix-socket`
(pytest-socket); Ray's driver talks to its own processes over TCP on this machine, so the module
allows connections to 127.0.0.1 only (pytest-socket's `allow_hosts` marker) and Ray is told to use
that address. Without Ray installed, the cluster tests are skipped, saying so; the command line's
answer to `--ray` without Ray is tested either way.

Failures are real: a worker process exits in the middle of a segment build (a setup hook that Ray
runs in each worker arms it, and a marker file lets it fire once), an embedding actor exits in the
middle of a batch, and a driver process is killed with SIGKILL after its first commit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

import langchain_memvid.cli as cli_module
from langchain_memvid import MemvidVectorStore
from langchain_memvid.cli import cli
from langchain_memvid.engine import Engine
from langchain_memvid.ingest import IngestReport, ingest, split_into_chunks

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "data"
DIM = 8
SIZES = {"chunk_size": 400, "chunk_overlap": 50}
QUERIES = ["QR codes", "Reed-Solomon error correction", "film as an archive", "video compression"]

pytestmark = [pytest.mark.slow, pytest.mark.allow_hosts(["127.0.0.1"])]


@dataclass
class Cluster:
    address: str
    marks: Path  # marker files arming and recording the failures injected into workers


def _kill_builds_once(marks: str) -> None:
    """Ray runs this in each worker it starts: a segment build exits its process once, when armed.

    The process exits after the segment's files are written to the store's tmp/ and before the
    task returns: the worst moment for leftovers.
    """
    import langchain_memvid.engine as engine

    real = engine.build_segment

    def build(job: Any, records: Any, vectors: Any, **options: Any) -> Any:
        built = real(job, records, vectors, **options)
        if os.path.exists(os.path.join(marks, "arm-build")):
            try:
                os.close(os.open(os.path.join(marks, "build-killed"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return built
            os._exit(1)
        return built

    engine.build_segment = build  # the build task looks it up there at each call


def _hook(marks: str) -> Callable[[], None]:
    def kill_builds_once() -> None:  # a named function: Ray names the hook after it
        _kill_builds_once(marks)

    return kill_builds_once


class DiesOnce(Embeddings):
    """The fake embedding, but the first batch it embeds kills its process (the actor's)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)
        self.inner = DeterministicFakeEmbedding(size=DIM)
        self.size = DIM

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return self.inner.embed_documents(texts)
        os._exit(1)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    ray = pytest.importorskip("ray", reason='Ray is not installed: pip install "langchain-qrvideo[ray]"')
    pytest.importorskip("ray.data", reason='Ray Data is not installed: pip install "langchain-qrvideo[ray]"')
    marks = tmp_path_factory.mktemp("ray-marks")
    # This module's functions and classes travel to the workers by value (they cannot import it).
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    context = ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=256 << 20,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        runtime_env={"worker_process_setup_hook": _hook(str(marks))},
    )
    try:
        yield Cluster(address=context.address_info["gcs_address"], marks=marks)
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The examples (PDF, EPUB, text, Markdown) and a folder with what a plain ingest skips."""
    extra = tmp_path_factory.mktemp("extra")
    (extra / "notes.md").write_text("# Notes\n\n" + "Reed-Solomon codes repair symbols. " * 30, encoding="utf-8")
    (extra / "table.csv").write_text("a,b\n1,2\n", encoding="utf-8")  # unsupported: skipped
    (extra / "empty.txt").write_text("   \n", encoding="utf-8")  # no text: skipped
    (extra / ".hidden.md").write_text("never read", encoding="utf-8")
    (extra / "sub").mkdir()
    (extra / "sub" / "deeper.txt").write_text("Film is an archive medium. " * 40, encoding="utf-8")
    return [str(EXAMPLES), str(extra), str(EXAMPLES / "reed_solomon.md")]  # a file twice: one copy stored


def plain(path: Path, sources: list[str]) -> tuple[IngestReport, MemvidVectorStore]:
    store = MemvidVectorStore(path, DeterministicFakeEmbedding(size=DIM), vector_encoding="float32")
    return ingest(store, sources, **SIZES), store


@pytest.fixture(scope="module")
def plain_store(corpus: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[IngestReport, MemvidVectorStore]]:
    report, store = plain(tmp_path_factory.mktemp("plain") / "store", corpus)
    try:
        yield report, store
    finally:
        store.close()


def records(path: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    with Engine(path, create=False) as engine:
        listed = list(engine.iter_records())
    ids = [r.id for r in listed]
    assert len(ids) == len(set(ids)), "a record is stored twice"
    return {r.id: (r.text, r.metadata) for r in listed}


def hits(store: MemvidVectorStore) -> list[list[tuple[str | None, float]]]:
    return [[(d.id, s) for d, s in store.similarity_search_with_score(q, k=5)] for q in QUERIES]


def assert_clean(path: Path, tmp_files: list[str]) -> None:
    """Nothing was left in tmp/ and verify() passes (every frame, checksum and file known).

    ``tmp_files`` must be listed before the store is opened again: opening a store that no
    writer holds deletes what tmp/ holds.
    """
    assert tmp_files == []
    with Engine(path, create=False) as engine:
        report = engine.verify(cross_check=False)
    assert report.ok, report.problems


def leftovers(path: Path) -> list[str]:
    return sorted(os.listdir(path / "tmp"))


def ray_ingest(path: Path, sources: Any, **kwargs: Any) -> Any:
    from langchain_memvid.distributed import ingest_on_ray

    options = {"embedding": DeterministicFakeEmbedding(size=DIM), "store_options": {"vector_encoding": "float32"}}
    return ingest_on_ray(path, sources, **{**options, **SIZES, "segment_size": 25, "commit_every": 2, **kwargs})


# -- the same store as a plain ingest ----------------------------------------------------------------


def test_same_store_and_search_results_as_plain_ingest_then_resumes(
    cluster: Cluster, corpus: list[str], plain_store: tuple[IngestReport, MemvidVectorStore], tmp_path: Path
) -> None:
    expected, reference = plain_store
    commits: list[tuple[int, int]] = []
    report = ray_ingest(tmp_path / "store", corpus, on_commit=lambda s, n: commits.append((s, n)))
    left = leftovers(tmp_path / "store")

    for field in ("files_loaded", "documents", "chunks", "added", "unchanged", "records", "text_bytes", "model"):
        assert getattr(report, field) == getattr(expected, field), field
    assert report.skipped == expected.skipped  # the same files, reasons and order
    assert {Path(p).name for p, _ in report.skipped} == {"table.csv", "empty.txt"}
    segments = -(-expected.added // 25)
    assert (report.segments, report.commits) == (segments, -(-segments // 2))
    assert commits[-1] == (segments, expected.added)
    assert [s for s, _ in commits] == sorted(s for s, _ in commits)
    assert records(tmp_path / "store") == records(reference.path)
    with MemvidVectorStore(tmp_path / "store", DeterministicFakeEmbedding(size=DIM)) as built:
        assert built.engine.vector_encoding == "float32"
        assert hits(built) == hits(reference)  # the same ids and the same scores, in the same order
        assert built.engine.ids() == reference.engine.ids()  # and the same storage order
    assert_clean(tmp_path / "store", left)

    again = ray_ingest(tmp_path / "store", corpus)
    assert (again.added, again.unchanged, again.segments, again.commits) == (0, expected.added, 0, 0)


def test_dataset_of_documents_gives_the_chunks_and_ids_of_split_into_chunks(cluster: Cluster, tmp_path: Path) -> None:
    import ray

    docs = [
        Document("QR codes store bytes. " * 40, metadata={"source": "a.txt", "tags": ["x", "y"]}),
        Document("Video frames hold QR codes. " * 30, metadata={"source": "b.md", "page": 3}),
        Document("No metadata here, but text enough for two chunks. " * 12),
    ]
    rows = [
        {"text": docs[0].page_content, "metadata": json.dumps(docs[0].metadata)},  # JSON: keys kept exactly
        {"text": docs[1].page_content, "metadata": json.dumps(docs[1].metadata)},
        {"text": docs[2].page_content, "metadata": "{}"},
    ]
    report = ray_ingest(tmp_path / "store", ray.data.from_items(rows))
    left = leftovers(tmp_path / "store")
    chunks = split_into_chunks(docs, **SIZES)
    assert (report.documents, report.chunks, report.added, report.files_loaded) == (3, len(chunks), len(chunks), 2)
    assert records(tmp_path / "store") == {c.id: (c.page_content, c.metadata) for c in chunks}
    assert_clean(tmp_path / "store", left)


def test_progress_is_one_bar_over_files_and_chunks(
    cluster: Cluster, corpus: list[str], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    report = ray_ingest(tmp_path / "store", corpus, progress=True)
    err = capfd.readouterr().err
    files = len(_list_files_of(corpus))
    assert f"{report.chunks:,} chunks, {report.added:,} committed" in err
    assert f"{files}/{files}" in err  # every listed file reached the driver
    assert "MapBatches" not in err  # no bars of Ray Data's own


def _list_files_of(sources: list[str]) -> list[dict[str, Any]]:
    from langchain_memvid.distributed import _list_files

    return _list_files(sources, "**/*")


def test_nothing_to_ingest_creates_no_store(cluster: Cluster, tmp_path: Path) -> None:
    from langchain_memvid.ingest import NothingToIngest

    (tmp_path / "only.csv").write_text("a,b\n", encoding="utf-8")
    with pytest.raises(NothingToIngest, match="unsupported file type"):
        ray_ingest(tmp_path / "store", [str(tmp_path)])
    assert not (tmp_path / "store").exists()


# -- failures ----------------------------------------------------------------------------------------


def test_killed_workers_are_retried_without_duplicates_or_orphans(
    cluster: Cluster, corpus: list[str], plain_store: tuple[IngestReport, MemvidVectorStore], tmp_path: Path
) -> None:
    expected, reference = plain_store
    (cluster.marks / "arm-build").touch()
    try:
        report = ray_ingest(tmp_path / "store", corpus, embedding=DiesOnce(tmp_path / "embed-killed"))
    finally:
        (cluster.marks / "arm-build").unlink()
    left = leftovers(tmp_path / "store")
    assert (cluster.marks / "build-killed").exists(), "no segment build was killed"
    assert (tmp_path / "embed-killed").exists(), "no embedding actor was killed"
    assert (report.added, report.records) == (expected.added, expected.added)
    assert records(tmp_path / "store") == records(reference.path)
    with Engine(tmp_path / "store", create=False) as engine:
        report = engine.verify(cross_check=False)  # no file in segments/ that the catalog does not name
        live = {Path(loc.segment).stem for loc in engine.locate(engine.ids()).values()}
    assert report.ok, report.problems
    # What the killed build wrote was never live (a retry committed a segment of another name), and
    # the bulk write emptied tmp/ when it ended.
    assert not {Path(name).stem for name in left} & live
    assert left == []


def test_killed_driver_leaves_the_last_commit_and_a_rerun_resumes(
    cluster: Cluster, corpus: list[str], plain_store: tuple[IngestReport, MemvidVectorStore], tmp_path: Path
) -> None:
    expected, reference = plain_store
    store = tmp_path / "store"
    script = textwrap.dedent(
        f"""
        import sys
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_memvid.distributed import ingest_on_ray

        ingest_on_ray(
            {str(store)!r}, {corpus!r}, embedding=DeterministicFakeEmbedding(size={DIM}),
            store_options={{"vector_encoding": "float32"}}, segment_size=10, commit_every=1,
            ray_address={cluster.address!r}, on_commit=lambda s, n: print("committed", n, flush=True),
            **{SIZES!r},
        )
        print("finished", flush=True)
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    driver = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    watchdog = threading.Timer(180, driver.kill)  # a driver that hangs ends the wait below
    watchdog.start()
    try:
        assert driver.stdout is not None
        line = driver.stdout.readline()  # blocks until the first commit (or the end)
        driver.send_signal(signal.SIGKILL)
    finally:
        watchdog.cancel()
        driver.kill()
        driver.wait(timeout=60)
    assert line.startswith("committed"), line
    committed = records(store)
    assert 0 < len(committed) < expected.added
    assert committed.items() <= records(reference.path).items()
    with Engine(store, create=False) as engine:
        assert engine.verify(cross_check=False).ok

    report = ray_ingest(store, corpus, segment_size=10)
    left = leftovers(store)
    assert report.unchanged >= len(committed)
    assert report.added == expected.added - report.unchanged
    assert records(store) == records(reference.path)
    assert_clean(store, left)


def test_a_failing_build_stops_at_the_last_commit_and_leaves_no_files(cluster: Cluster, tmp_path: Path) -> None:
    import ray

    from langchain_memvid.engine import InvalidRecord

    good = [{"text": f"Document {n}: " + "QR codes in video frames. " * 20, "metadata": json.dumps({"n": n})} for n in range(12)]
    bad = {"text": "A document whose metadata the store refuses. " * 5, "metadata": '{"score": NaN}'}
    with pytest.raises(InvalidRecord, match="NaN"):
        ray_ingest(tmp_path / "store", ray.data.from_items([*good[:8], bad, *good[8:]]), segment_size=4, commit_every=1)
    left = leftovers(tmp_path / "store")
    committed = records(tmp_path / "store")
    # Segments are committed in order, so every segment before the bad one's was: 16 chunks here.
    before = split_into_chunks([Document(d["text"], metadata=json.loads(d["metadata"])) for d in good[:8]], **SIZES)
    assert len(before) == 16
    assert committed == {c.id: (c.page_content, c.metadata) for c in before}
    assert_clean(tmp_path / "store", left)

    report = ray_ingest(tmp_path / "store", ray.data.from_items(good), segment_size=4)
    assert report.unchanged == len(committed)
    assert report.unchanged + report.added == report.chunks


# -- batch search ------------------------------------------------------------------------------------


def test_search_on_ray_returns_what_the_store_returns(
    cluster: Cluster, plain_store: tuple[IngestReport, MemvidVectorStore]
) -> None:
    import ray

    from langchain_memvid.distributed import search_on_ray

    _, reference = plain_store
    queries = ray.data.from_items([{"query": q, "n": n} for n, q in enumerate(QUERIES)])
    found = search_on_ray(reference.path, queries, k=5, embedding=DeterministicFakeEmbedding(size=DIM), batch_size=2)
    rows = sorted(found.take_all(), key=lambda row: row["n"])
    assert [list(zip(r["ids"], r["scores"], strict=True)) for r in rows] == hits(reference)
    assert [r["query"] for r in rows] == QUERIES

    filtered = search_on_ray(
        reference.path,
        QUERIES[:1],
        k=3,
        embedding=DeterministicFakeEmbedding(size=DIM),
        filter={"source": str(EXAMPLES / "reed_solomon.md")},
        with_documents=True,
    ).take_all()
    (row,) = filtered
    assert len(row["ids"]) == 3
    assert all(json.loads(m)["source"] == str(EXAMPLES / "reed_solomon.md") for m in row["metadata"])
    assert list(row["texts"]) == [d.page_content for d in reference.get_by_ids(list(row["ids"]))]


# -- the command line --------------------------------------------------------------------------------


def test_cli_ingest_ray_matches_plain_ingest(
    cluster: Cluster, corpus: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_module, "load_embedding", lambda model: DeterministicFakeEmbedding(size=DIM))
    runner = CliRunner()
    sizes = ["--chunk-size", "400", "--chunk-overlap", "50", "--vector-encoding", "float32", "-s", "--json"]
    done = runner.invoke(cli, ["ingest", str(tmp_path / "plain"), *corpus, *sizes])
    assert done.exit_code == 0, done.output
    ray_args = ["--ray", "--workers", "1", "--segment-size", "30", "--commit-every", "3"]
    on_ray = runner.invoke(cli, ["ingest", str(tmp_path / "ray"), *corpus, *sizes, *ray_args])
    assert on_ray.exit_code == 0, on_ray.output
    a, b = json.loads(done.stdout), json.loads(on_ray.stdout)
    assert b.pop("ray") is True
    assert b.pop("segments") >= 3
    assert b.pop("commits") >= 1
    for summary in (a, b):
        summary.pop("store"), summary.pop("seconds"), summary.pop("video_bytes")
        summary["skipped"] = sorted(s["path"] for s in summary["skipped"])
    assert a == b
    assert records(tmp_path / "ray") == records(tmp_path / "plain")

    again_args = ["-s", "--ray", "--model", "fake", "--chunk-size", "400", "--chunk-overlap", "50"]
    again = runner.invoke(cli, ["ingest", str(tmp_path / "ray"), *corpus, *again_args])
    assert again.exit_code == 0, again.output
    assert "0 added" in again.stdout
    assert "On Ray: 0 segments written in 0 commits." in again.stdout


def test_cli_ray_without_ray_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ray", "ray.data"):
        monkeypatch.setitem(sys.modules, name, None)  # `import ray` raises ImportError
    (tmp_path / "a.txt").write_text("text", encoding="utf-8")
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "store"), str(tmp_path / "a.txt"), "--ray"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        'Error: Ray (with Ray Data) is not installed; install it with: pip install "langchain-qrvideo[ray]"'
    ]
    assert not (tmp_path / "store").exists()


def test_cli_ray_options_need_ray(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("text", encoding="utf-8")
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "s"), str(tmp_path / "a.txt"), "--workers", "2"])
    assert result.exit_code == 2
    assert "--workers only apply with --ray" in result.output
