"""langchain_memvid.ingest: stable ids, skipping what is stored, batches, skipped files, the CLI on top.

Files are written to tmp_path and named by relative paths (the tests chdir there), so their
`source`, and with it every chunk id, is the same in every run.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

import langchain_memvid.cli as cli_module
from langchain_memvid import MemvidVectorStore
from langchain_memvid.cli import cli
from langchain_memvid.document_loaders import LoaderError, LoaderWarning
from langchain_memvid.engine import Engine
from langchain_memvid.ingest import ingest
from langchain_memvid.splitting import neighbor_filter, reading_position

# `langchain_memvid.ingest` the attribute is the function; the module is in sys.modules.
steps = importlib.import_module("langchain_memvid.ingest")

NOTES = (
    "Aztec codes and Data Matrix are other two-dimensional barcodes. They store less than a QR code.\n\n"
    "A QR code reader finds the three finder patterns in the corners first, then the timing patterns, "
    "and only then reads the modules in between.\n\n"
    "Error correction lets a reader repair up to thirty percent of a damaged symbol."
)
GUIDE = "# Storage guide\n\nFilm kept cool and dry lasts for centuries; magnetic tape for decades. Café ✓"
SIZES = {"chunk_size": 120, "chunk_overlap": 20}

# What `lcmemvid ingest store notes.txt guide.md --chunk-size 120 --chunk-overlap 20` stored
# before ingest.py existed (its own `_chunk_id`), by (source, chunk_index).
CLI_IDS_BEFORE = {
    ("guide.md", 0): "8cb85efc7dbd87cff9eb9e2afa447072",
    ("notes.txt", 0): "9f88256eac93c3357f967eea1048aff3",
    ("notes.txt", 1): "ad23bae3c67006bb3e9de1c07fe04cb1",
    ("notes.txt", 2): "19da946c83268a0e01d2d1e550fd3d7a",
    ("notes.txt", 3): "2976f325e23ce5b487ecfb4b877343da",
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text(NOTES, encoding="utf-8")
    Path("guide.md").write_text(GUIDE, encoding="utf-8")
    return tmp_path


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """`lcmemvid ingest --model ANY` builds a fake embedding instead of loading sentence-transformers."""
    monkeypatch.setattr(cli_module, "load_embedding", lambda model: DeterministicFakeEmbedding(size=6))


def documented_id(text: str, metadata: dict[str, Any]) -> str:
    """The recipe as `splitting.chunk_id`'s docstring states it, written out independently."""
    key = json.dumps([text, metadata], sort_keys=True, default=str)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def stored(path: Path | str) -> dict[str, Any]:
    with Engine(Path(path), create=False) as engine:
        return {r.id: r for r in engine.iter_records()}


# -- ids -------------------------------------------------------------------------------------------


def test_ids_follow_the_documented_recipe_and_equal_the_cli_ids_before(
    workdir: Path, store: MemvidVectorStore
) -> None:
    report = ingest(store, ["notes.txt", "guide.md"], **SIZES)
    assert (report.files_loaded, report.documents, report.chunks) == (2, 2, 5)
    assert (report.added, report.unchanged, report.skipped, report.warnings) == (5, 0, [], [])
    records = stored(store.path)
    by_place = {(r.metadata["source"], r.metadata["chunk_index"]): r.id for r in records.values()}
    assert by_place == CLI_IDS_BEFORE
    for record in records.values():
        assert record.id == documented_id(record.text, record.metadata)
        assert set(record.metadata) >= {"source", "chunk_index", "start_index"}


def test_ids_are_stable_across_runs_and_stores(workdir: Path) -> None:
    embedding = DeterministicFakeEmbedding(size=6)
    ids = []
    for name in ("one", "two"):
        with MemvidVectorStore(workdir / name, embedding) as store:
            ingest(store, ["notes.txt", "guide.md"], **SIZES)
        ids.append(sorted(stored(workdir / name)))
    assert ids[0] == ids[1] == sorted(CLI_IDS_BEFORE.values())


def test_split_into_chunks_sets_each_id_and_skip_stored_needs_them() -> None:
    docs = [Document(NOTES, metadata={"source": "notes.txt"})]
    chunks = steps.split_into_chunks(docs, **SIZES)
    assert [c.id for c in chunks] == [CLI_IDS_BEFORE[("notes.txt", i)] for i in range(4)]
    assert [c.id for c in chunks] == [documented_id(c.page_content, c.metadata) for c in chunks]
    with pytest.raises(ValueError, match="Chunk 0 has no id"):
        steps.skip_stored(None, [Document("x")])  # type: ignore[arg-type]  # fails before any lookup


# -- skipping what is stored -----------------------------------------------------------------------


def test_second_ingest_adds_nothing_and_reports_the_chunks_unchanged(
    workdir: Path, store: MemvidVectorStore
) -> None:
    ingest(store, ["notes.txt", "guide.md"], **SIZES)
    again = ingest(store, ["notes.txt", "guide.md"], **SIZES)
    assert (again.chunks, again.added, again.unchanged, again.records) == (5, 0, 5, 5)
    assert len(store) == 5


def test_identical_chunks_are_added_once(store: MemvidVectorStore, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Same text.", encoding="utf-8")
    path = str(tmp_path / "a.txt")
    report = ingest(store, [path, path])  # the same file twice: the same chunk, the same id
    assert (report.documents, report.chunks, report.added, report.unchanged) == (2, 2, 1, 0)


def test_a_changed_end_adds_only_the_changed_chunk(workdir: Path, store: MemvidVectorStore) -> None:
    ingest(store, ["notes.txt", "guide.md"], **SIZES)
    Path("notes.txt").write_text(NOTES.replace("damaged symbol.", "damaged code."), encoding="utf-8")
    report = ingest(store, ["notes.txt", "guide.md"], **SIZES)
    assert (report.added, report.unchanged) == (1, 4)
    # Nothing is deleted: the old version of the last chunk stays beside the new one.
    assert report.records == len(store) == 6
    assert set(CLI_IDS_BEFORE.values()) < set(stored(store.path))


def test_a_changed_start_moves_every_later_chunk_so_they_are_added_again(
    workdir: Path, store: MemvidVectorStore
) -> None:
    ingest(store, ["notes.txt", "guide.md"], **SIZES)
    Path("notes.txt").write_text(NOTES.replace("Aztec codes", "Aztec"), encoding="utf-8")
    report = ingest(store, ["notes.txt", "guide.md"], **SIZES)
    # The id holds start_index: every chunk of notes.txt moved, guide.md did not.
    assert (report.added, report.unchanged) == (4, 1)
    assert report.records == 9


# -- batches ---------------------------------------------------------------------------------------


def test_batches_smaller_than_the_chunk_count_all_land(
    workdir: Path, store: MemvidVectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    add_batch = steps.add_batch

    def spy(vstore: MemvidVectorStore, chunks: list[Document]) -> list[str]:
        sizes.append(len(chunks))
        return add_batch(vstore, chunks)

    monkeypatch.setattr(steps, "add_batch", spy)
    report = ingest(store, ["notes.txt", "guide.md"], batch_size=2, **SIZES)
    assert sizes == [2, 2, 1]
    assert report.added == report.records == 5
    assert sorted(stored(store.path)) == sorted(CLI_IDS_BEFORE.values())
    assert store.stats()["segments"] == 3  # one commit per batch


def test_bad_sizes_fail_before_loading(store: MemvidVectorStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps, "load_files", lambda *a, **k: pytest.fail("loaded"))
    with pytest.raises(ValueError, match="chunk_overlap"):
        ingest(store, ["x.txt"], chunk_size=100, chunk_overlap=100)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        ingest(store, ["x.txt"], batch_size=0)


def test_a_single_path_is_refused_not_read_letter_by_letter(store: MemvidVectorStore) -> None:
    with pytest.raises(TypeError, match=r"got the single path 'notes.txt'; pass \['notes.txt'\]"):
        ingest(store, "notes.txt")  # type: ignore[arg-type]


# -- files that cannot be loaded -------------------------------------------------------------------


def test_unsupported_and_broken_files_are_skipped_with_the_reason(
    workdir: Path, store: MemvidVectorStore
) -> None:
    Path("folder").mkdir()
    Path("folder/table.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    Path("folder/empty.txt").write_text("  \n", encoding="utf-8")
    Path("broken.pdf").write_bytes(b"%PDF-1.4 not really")
    Path("odd.xyz").write_text("x", encoding="utf-8")
    report = ingest(store, ["notes.txt", "folder", "broken.pdf", "odd.xyz"], **SIZES)
    reasons = dict(report.skipped)
    assert list(reasons) == [
        str(Path("folder/empty.txt")),
        str(Path("folder/table.csv")),
        "broken.pdf",
        "odd.xyz",
    ]
    assert reasons[str(Path("folder/empty.txt"))] == "no extractable text"
    assert reasons[str(Path("folder/table.csv"))] == "unsupported file type (.csv)"
    assert reasons["broken.pdf"].startswith("broken.pdf: cannot read this PDF")
    assert reasons["odd.xyz"].startswith("odd.xyz: unsupported file type (.xyz); supported types are")
    assert (report.files_loaded, report.added) == (1, 4)


def test_nothing_to_ingest_raises_and_never_opens_the_store(workdir: Path) -> None:
    Path("table.csv").write_text("a,b\n", encoding="utf-8")
    opened: list[bool] = []

    def open_store() -> MemvidVectorStore:
        opened.append(True)
        raise AssertionError

    with pytest.raises(steps.NothingToIngest) as caught:
        ingest(open_store, ["table.csv"])
    assert isinstance(caught.value, LoaderError)  # the CLI prints it as `Error: ...`, exit 1
    assert str(caught.value).startswith(
        "Nothing to ingest (table.csv: table.csv: unsupported file type (.csv);"
    )
    assert opened == []


def test_a_store_opened_by_ingest_is_closed_and_a_given_one_is_not(
    workdir: Path, store: MemvidVectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[str] = []

    def open_store() -> MemvidVectorStore:
        vs = MemvidVectorStore(workdir / "s", DeterministicFakeEmbedding(size=6))
        close = vs.close
        monkeypatch.setattr(vs, "close", lambda: closed.append("opened") or close())
        return vs

    monkeypatch.setattr(store, "close", lambda: closed.append("given"))
    assert ingest(open_store, ["guide.md"]).added == 1
    assert ingest(store, ["guide.md"]).added == 1
    assert closed == ["opened"]


def test_loading_warnings_are_issued_again_or_passed_to_on_warning(
    workdir: Path, store: MemvidVectorStore
) -> None:
    Path("latin.txt").write_bytes("Café crème brûlée, déjà vu, naïve façade, à l'école.".encode("latin-1"))
    with pytest.warns(LoaderWarning, match=r"latin\.txt is not UTF-8"):
        report = ingest(store, ["latin.txt"])
    assert len(report.warnings) == 1
    assert "latin.txt is not UTF-8" in report.warnings[0]
    seen: list[str] = []
    again = ingest(store, ["latin.txt"], on_warning=seen.append)
    assert seen == report.warnings == again.warnings


# -- the command line on top -----------------------------------------------------------------------


def test_cli_json_is_the_report(workdir: Path, fake_model: None) -> None:
    args = ["ingest", "store", "notes.txt", "guide.md", "table.csv", "--model", "fake", "-s", "--json"]
    args += ["--chunk-size", "120", "--chunk-overlap", "20"]
    Path("table.csv").write_text("a,b\n", encoding="utf-8")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert list(summary) == [
        "store", "files_loaded", "documents", "chunks", "added", "unchanged", "skipped",
        "records", "video_bytes", "model", "seconds",
    ]  # fmt: skip
    reason = summary["skipped"][0]["reason"]
    assert reason.startswith("table.csv: unsupported file type (.csv)")
    assert {k: v for k, v in summary.items() if k not in ("video_bytes", "seconds")} == {
        "store": "store",
        "files_loaded": 2,
        "documents": 2,
        "chunks": 5,
        "added": 5,
        "unchanged": 0,
        "skipped": [{"path": "table.csv", "reason": reason}],
        "records": 5,
        "model": "DeterministicFakeEmbedding",
    }
    assert sorted(stored("store")) == sorted(CLI_IDS_BEFORE.values())


def test_cli_text_and_progress_as_before(workdir: Path, fake_model: None) -> None:
    base = ["ingest", "store", "notes.txt", "guide.md", "--model", "fake", "--chunk-size", "120"]
    base += ["--chunk-overlap", "20"]
    assert CliRunner().invoke(cli, [*base, "-s"]).exit_code == 0
    Path("latin.txt").write_bytes("Café crème brûlée, déjà vu, naïve façade, à l'école.".encode("latin-1"))
    result = CliRunner().invoke(cli, [*base, "latin.txt"])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        r"Ingested 3 files \(3 documents, 6 chunks\) into store in \d+\.\d s: 1 added, 5 unchanged\.\n"
        r"The store now holds 6 records; video \d+\.\d KiB for \d+ B of text\. "
        r"Model: DeterministicFakeEmbedding\.\n",
        result.stdout,
    ), result.stdout
    # Progress and warnings on stderr, in this order: loading, the warning, embedding.
    lines = result.stderr.splitlines()
    assert [line.split()[0] for line in lines] == ["Loading", "Warning:", "Embedding"]
    assert re.match(r"Loading +━+ 3/3 ", lines[0])
    assert lines[1].startswith("Warning: latin.txt is not UTF-8; decoded it as")
    assert re.match(r"Embedding and writing +━+ 1/1 ", lines[2])


def test_cli_nothing_to_ingest_message(workdir: Path, fake_model: None) -> None:
    Path("table.csv").write_text("a,b\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["ingest", "store", "table.csv", "--model", "fake", "-s"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: Nothing to ingest (table.csv: table.csv: unsupported file type (.csv); supported types "
        "are .pdf, .epub, .txt, .md, .markdown; convert it first (e.g. with pandoc)).\n"
    )
    assert not Path("store").exists()


# -- neighbour lookup uses the same conventions ----------------------------------------------------


def test_neighbour_lookup_follows_the_chunk_conventions(workdir: Path, store: MemvidVectorStore) -> None:
    ingest(store, ["notes.txt", "guide.md"], **SIZES)
    chunks = store.get_by_ids(list(CLI_IDS_BEFORE.values()))
    hit = next(
        c for c in chunks if c.metadata == {"source": "notes.txt", "chunk_index": 1, "start_index": 97}
    )
    flt = neighbor_filter(hit, 1)
    assert flt is not None
    selected = sorted(
        (Document(r.text, id=r.id, metadata=r.metadata) for r in store.engine.find(flt)), key=reading_position
    )
    found = store.get_neighbors(hit, window=1)
    assert (
        [d.id for d in found]
        == [d.id for d in selected]
        == [CLI_IDS_BEFORE["notes.txt", i] for i in range(3)]
    )
