"""`lcmemvid build-index`: train and save a store's index now, or switch it to another one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from langchain_memvid.cli import cli
from langchain_memvid.engine import Engine, Record


def flat_store(path: Path, n: int = 600) -> None:
    vectors = np.random.default_rng(3).standard_normal((n, 16)).astype(np.float32)
    with Engine(path, vector_encoding="float32", segment_records=200) as engine:
        engine.add([Record(f"r{i}", f"text {i}", {}) for i in range(n)], vectors)


def test_switches_a_flat_store_to_ivf_and_readers_serve_it(tmp_path: Path) -> None:
    flat_store(tmp_path / "s")
    result = CliRunner().invoke(cli, ["build-index", str(tmp_path / "s"), "--index", "ivf", "--option", "nlist=8"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("IVF8,Flat: approximate search over 600 vectors; snapshot ")
    with Engine(tmp_path / "s", create=False) as engine:
        info = engine.stats()["index"]
        assert (info["kind"], info["options"]["nlist"], info["vectors_in_main"]) == ("ivf", 8, 600)
    again = CliRunner().invoke(cli, ["build-index", str(tmp_path / "s"), "--json"])  # the store's own
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["factory"] == "IVF8,Flat"


def test_bad_options_and_missing_stores_are_refused_without_writing(tmp_path: Path) -> None:
    flat_store(tmp_path / "s", 50)
    runner = CliRunner()
    bad = runner.invoke(cli, ["build-index", str(tmp_path / "s"), "--option", "nlist"])
    assert bad.exit_code == 2
    assert "KEY=VALUE" in bad.output
    few = runner.invoke(cli, ["build-index", str(tmp_path / "s"), "--index", "ivf", "--option", "nlist=4096"])
    assert few.exit_code == 1
    assert "Error:" in few.output
    with Engine(tmp_path / "s", create=False) as engine:
        assert engine.stats()["index"]["kind"] == "flat"  # nothing recorded by the failed build
    opened = runner.invoke(cli, ["build-index", str(tmp_path / "s"), "--index", "ivf", "--option", "mmap=true"])
    assert opened.exit_code == 1
    assert "['mmap'] are open options" in opened.output
    alone = runner.invoke(cli, ["build-index", str(tmp_path / "s"), "--ray-address", "auto"])
    assert alone.exit_code == 2
    assert "--ray-address needs --ray" in alone.output
    missing = runner.invoke(cli, ["build-index", str(tmp_path / "nowhere")])
    assert missing.exit_code != 0
    assert not (tmp_path / "nowhere").exists()
