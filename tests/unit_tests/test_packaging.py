"""The distribution name is the same everywhere a user or the code names it.

PyPI's `langchain-memvid` is an unrelated package, so this one is published under another name
(pyproject's [project] name). The README and docs install lines, the install hints in messages
and `lcmemvid --version` must all use that name, and the extras they name must exist.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from langchain_memvid.cli import cli

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
NAME = PROJECT["name"]
EXTRAS = set(PROJECT["optional-dependencies"])
# `pip install "name[extra,...]"` or 'name[extra]' as written in docs and messages.
INSTALL = re.compile(r"""pip install (?:-U )?["']?([A-Za-z0-9_.-]+)\[([a-z0-9,-]+)\]""")
# Hints in files another change owns; drop an entry once that file uses NAME.
PENDING: set[str] = set()  # files whose install lines may still name another distribution


def _install_lines() -> list[tuple[str, str, str]]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    files += sorted((ROOT / "langchain_memvid").rglob("*.py"))
    found = []
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if rel in PENDING:
            continue
        for m in INSTALL.finditer(path.read_text(encoding="utf-8")):
            found.append((rel, m.group(1), m.group(2)))
    return found


def test_name_is_not_the_unrelated_pypi_package() -> None:
    assert re.sub(r"[-_.]+", "-", NAME).lower() != "langchain-memvid"


def test_install_lines_use_the_distribution_name_and_real_extras() -> None:
    lines = _install_lines()
    assert any(rel == "README.md" for rel, _, _ in lines)
    assert any(rel == "docs/user-guide.md" for rel, _, _ in lines)
    for rel, name, extras in lines:
        assert name == NAME, f"{rel} says pip install {name}[...], the distribution is {NAME}"
        assert set(extras.split(",")) <= EXTRAS, f"{rel} names unknown extras {extras}"


def test_extras_name_no_old_distribution() -> None:
    for extra, reqs in PROJECT["optional-dependencies"].items():
        for req in reqs:
            assert not re.match(r"langchain[-_.]memvid\b", req, re.IGNORECASE), (extra, req)


def test_version_option_names_the_distribution() -> None:
    source = (ROOT / "langchain_memvid" / "cli.py").read_text(encoding="utf-8")
    assert re.findall(r"version_option\(\s*package_name=\"([^\"]+)\"", source) == [NAME]


def test_installed_metadata_and_version_line() -> None:
    try:
        version = importlib.metadata.version(NAME)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a stale .venv
        pytest.fail(f"{NAME} is not installed: run scripts/setup.sh (the .venv predates the rename)")
    assert version == PROJECT["version"]
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"lcmemvid ({NAME}) {version}"
