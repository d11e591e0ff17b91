"""Bad input at the API: a clear error, and the store exactly as it was.

Each bad call must raise a ``MemvidError`` (which also subclasses the builtin a caller would
expect: ``ValueError`` for bad values, ``OSError`` for bad paths) with a message that says what is
wrong, and leave the record count, every record and every file untouched.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_memvid import MemvidVectorStore
from langchain_memvid.engine import (
    Engine,
    InvalidArgument,
    InvalidRecord,
    InvalidVector,
    MemvidError,
    NotAStore,
    ReadOnlyStore,
    Record,
)

from . import stats
from .common import DIM, REPO


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with Engine(tmp_path / "store", dim=DIM) as eng:
        eng.add([Record(f"r{i}", f"text {i}", {"i": i, "tag": "x"}) for i in range(5)], _ones(5))
        yield eng


def _ones(n: int, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(n).random((n, dim)).astype(np.float32) + 0.1


def snapshot(engine: Engine) -> tuple[Any, ...]:
    files = sorted((p.name, p.stat().st_size) for p in (engine.path / "segments").iterdir())
    records = sorted((r.id, r.text, json.dumps(r.metadata, sort_keys=True)) for r in engine.iter_records())
    return len(engine), records, files, sorted(p.name for p in (engine.path / "tmp").iterdir())


def cyclic() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


BAD_CALLS: dict[str, tuple[Callable[[Engine], Any], type[Exception], str]] = {
    "wrong dimension": (lambda e: e.add([Record("n", "t")], _ones(1, DIM + 1)), InvalidVector, "dimension"),
    "NaN vector": (lambda e: e.add([Record("n", "t")], np.full((1, DIM), np.nan)), InvalidVector, "NaN"),
    "inf vector": (lambda e: e.add([Record("n", "t")], np.full((1, DIM), np.inf)), InvalidVector, "infinity"),
    "zero vector (cosine)": (lambda e: e.add([Record("n", "t")], np.zeros((1, DIM))), InvalidVector, "zeros"),
    "text vector": (lambda e: e.add([Record("n", "t")], [["a"] * DIM]), InvalidVector, "numbers"),
    "ragged vectors": (
        lambda e: e.add([Record("n", "t"), Record("m", "t")], [[1.0] * DIM, [1.0]]),
        InvalidVector,
        "vector",
    ),
    "no vectors": (lambda e: e.add([Record("n", "t")], None), InvalidArgument, "vectors"),
    "fewer vectors": (
        lambda e: e.add([Record("n", "t"), Record("m", "t")], _ones(1)),
        InvalidArgument,
        "2 records and 1",
    ),
    "text is bytes": (lambda e: e.add([Record("n", b"t")], _ones(1)), InvalidRecord, "text must be a str"),  # type: ignore[arg-type]
    "text is None": (lambda e: e.add([Record("n", None)], _ones(1)), InvalidRecord, "text must be a str"),  # type: ignore[arg-type]
    "text is a number": (lambda e: e.add([Record("n", 42)], _ones(1)), InvalidRecord, "text must be a str"),  # type: ignore[arg-type]
    "lone surrogate": (lambda e: e.add([Record("n", "bad \ud800")], _ones(1)), InvalidRecord, "surrogate"),
    "id not a string": (lambda e: e.add([Record(7, "t")], _ones(1)), InvalidRecord, "id"),  # type: ignore[arg-type]
    "empty id": (lambda e: e.add([Record("", "t")], _ones(1)), InvalidRecord, "id"),
    "metadata a set": (lambda e: e.add([Record("n", "t", {"s": {1}})], _ones(1)), InvalidRecord, "set"),
    "metadata NaN": (lambda e: e.add([Record("n", "t", {"x": math.nan})], _ones(1)), InvalidRecord, "NaN"),
    "metadata bytes": (lambda e: e.add([Record("n", "t", {"x": b"1"})], _ones(1)), InvalidRecord, "bytes"),
    "metadata int key": (lambda e: e.add([Record("n", "t", {1: 2})], _ones(1)), InvalidRecord, "key"),  # type: ignore[dict-item]
    "metadata a list": (lambda e: e.add([Record("n", "t", [1])], _ones(1)), InvalidRecord, "dict"),  # type: ignore[arg-type]
    "metadata a cycle": (lambda e: e.add([Record("n", "t", cyclic())], _ones(1)), InvalidRecord, "cycle"),
    "metadata an object": (
        lambda e: e.add([Record("n", "t", {"o": object()})], _ones(1)),
        InvalidRecord,
        "object",
    ),
    "not a Record": (lambda e: e.add([("n", "t")], _ones(1)), InvalidRecord, "not a Record"),  # type: ignore[list-item]
    "records None": (lambda e: e.add(None, _ones(1)), InvalidArgument, "list of Record"),  # type: ignore[arg-type]
    "one bad record among good": (
        lambda e: e.add([Record("good", "t"), Record("bad", "t", {"x": math.inf})], _ones(2)),
        InvalidRecord,
        "'bad'",
    ),
    "k = 0": (lambda e: e.search(_ones(1)[0], 0), InvalidArgument, "k must be a positive integer"),
    "k < 0": (lambda e: e.search(_ones(1)[0], -3), InvalidArgument, "k must be a positive integer"),
    "k a float": (lambda e: e.search(_ones(1)[0], 2.5), InvalidArgument, "k must be a positive integer"),  # type: ignore[arg-type]
    "k a bool": (lambda e: e.search(_ones(1)[0], True), InvalidArgument, "k must be a positive integer"),
    "query dimension": (lambda e: e.search(_ones(1, DIM + 2)[0], 2), InvalidVector, "dimension"),
    "query NaN": (lambda e: e.search(np.full(DIM, np.nan), 2), InvalidVector, "NaN"),
    "unknown filter operator": (
        lambda e: e.search(_ones(1)[0], 2, filter={"i": {"$regex": "x"}}),
        InvalidArgument,
        r"\$regex",
    ),
    "unknown logical operator": (
        lambda e: e.search(_ones(1)[0], 2, filter={"$xor": [{}]}),
        InvalidArgument,
        r"\$xor",
    ),
    "filter not a dict": (lambda e: e.search(_ones(1)[0], 2, filter=["i"]), InvalidArgument, "filter"),  # type: ignore[arg-type]
    "$in without a list": (
        lambda e: e.search(_ones(1)[0], 2, filter={"i": {"$in": 3}}),
        InvalidArgument,
        r"\$in",
    ),
    "ids a bare string (get)": (lambda e: e.get("r1"), InvalidArgument, "not a single string"),
    "ids a bare string (delete)": (lambda e: e.delete("r1"), InvalidArgument, "not a single string"),
    "ids not iterable": (lambda e: e.delete(5), InvalidArgument, "list of strings"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_input_is_refused_and_changes_nothing(engine: Engine, case: str) -> None:
    call, error, says = BAD_CALLS[case]
    before = snapshot(engine)
    with pytest.raises(error, match=says):
        call(engine)
    assert snapshot(engine) == before
    stats.add("bad_inputs_refused")


def test_empty_lists_are_no_ops(engine: Engine) -> None:
    before = snapshot(engine)
    assert engine.add([], []) == []
    assert engine.add([], np.zeros((0, DIM))) == []
    assert engine.delete([]) == 0
    assert engine.get([]) == []
    assert engine.locate([]) == {}
    assert engine.vectors([]) == {}
    assert snapshot(engine) == before


def test_odd_ids_in_reads_and_deletes_are_skipped(engine: Engine) -> None:
    before = snapshot(engine)
    assert [r.id for r in engine.get([None, 3, {"x": 1}, "r1", "r1", "missing"])] == ["r1"]  # type: ignore[list-item]
    assert engine.delete([None, 3, "missing"]) == 0  # type: ignore[list-item]
    assert list(engine.locate([None, {"x": 1}, "r2"])) == ["r2"]  # type: ignore[list-item]
    assert snapshot(engine) == before


def test_duplicate_ids_in_one_call_last_wins(engine: Engine) -> None:
    ids = engine.add(
        [Record("d", "first", {"n": 1}), Record("e", "e"), Record("d", "last", {"n": 2})], _ones(3)
    )
    assert ids == ["e", "d"]
    assert engine.get(["d"]) == [Record("d", "last", {"n": 2})]
    assert len(engine) == 7
    assert engine.verify(cross_check=False).ok


def test_a_path_that_is_a_file_is_not_a_store(tmp_path: Path) -> None:
    file = tmp_path / "file.txt"
    file.write_text("hello")
    with pytest.raises(NotAStore, match="is a file"):
        Engine(file, dim=DIM)
    with pytest.raises(NotAStore, match="other content"):
        Engine(tmp_path, dim=DIM)  # a folder with other files in it
    assert file.read_text() == "hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]
    stats.add("bad_inputs_refused", 2)


def test_vectorstore_face_refuses_bad_input(tmp_path: Path) -> None:
    store = MemvidVectorStore(tmp_path / "vs", DeterministicFakeEmbedding(size=DIM))
    store.add_texts(["one", "two"], [{"a": 1}, {"a": 2}], ids=["1", "2"])
    before = snapshot(store.engine)
    with pytest.raises(ValueError, match="metadatas"):
        store.add_texts(["x"], [{}, {}])
    with pytest.raises(ValueError, match="ids"):
        store.add_texts(["x"], ids=["1", "2"])
    with pytest.raises(ValueError, match="JSON"):
        store.add_texts(["x"], [{"bad": {1, 2}}])
    with pytest.raises(ValueError, match="k must be"):
        store.similarity_search("one", k=0)
    with pytest.raises(ValueError, match=r"\$like"):
        store.similarity_search("one", k=1, filter={"a": {"$like": 1}})
    with pytest.raises(ValueError, match="delete needs a list"):
        store.delete(None)
    assert snapshot(store.engine) == before
    store.close()
    stats.add("bad_inputs_refused", 6)


# -- a read-only folder ---------------------------------------------------------------------------


def _drop_privileges_works() -> bool:
    if os.geteuid() != 0:
        return False
    probe = subprocess.run(
        [sys.executable, "-c", "import os; os.setgid(65534); os.setuid(65534)"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def test_read_only_store_gives_a_clear_error_and_is_left_as_it_was(tmp_path: Path) -> None:
    """Root ignores file permissions, so the test runs the store's user as ``nobody`` in a child."""
    if os.geteuid() == 0 and not _drop_privileges_works():
        pytest.skip("running as root and cannot drop privileges to nobody: permissions cannot be tested")
    base = Path(tempfile.mkdtemp(prefix="memvid-ro-"))
    try:
        os.chmod(base, 0o755)
        path = base / "store"
        with Engine(path, dim=DIM) as eng:
            eng.add([Record("a", "alpha"), Record("b", "beta")], _ones(2))
            before = snapshot(eng)
        for p in [path, *path.rglob("*")]:
            os.chmod(p, 0o555 if p.is_dir() else 0o444)
        if os.geteuid() == 0:
            out = subprocess.run(
                [sys.executable, "-m", "tests.reliability.driver", "readonly", str(path)],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert out.returncode == 0, out.stderr[-2000:]
            results = json.loads(out.stdout.strip().splitlines()[-1])
        else:  # pragma: no cover - a non-root CI user
            from .driver import readonly_results

            results = readonly_results(str(path))
        undocumented = {k: v for k, v in results.items() if v.get("undocumented")}
        assert not undocumented, undocumented
        writes = [results[k] for k in ("open", "add", "delete", "compact", "create_new") if k in results]
        refused = [r for r in writes if "error" in r]
        assert refused, results
        for r in refused:
            assert r["error"] in ("ReadOnlyStore", "NotAStore", "StoreLocked"), r
            assert any(w in r["message"] for w in ("writable", "permission", "Permission")), r
        for p in [path, *path.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        with Engine(path, create=False) as eng:
            assert snapshot(eng) == before
        stats.add("bad_inputs_refused", len(refused))
    finally:
        for p in [base, *base.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        shutil.rmtree(base, ignore_errors=True)


def test_memvid_errors_are_also_the_builtin_a_caller_expects() -> None:
    assert issubclass(InvalidVector, ValueError)
    assert issubclass(InvalidRecord, ValueError)
    assert issubclass(InvalidArgument, ValueError)
    assert issubclass(NotAStore, OSError)
    assert issubclass(ReadOnlyStore, PermissionError)
    assert issubclass(ReadOnlyStore, MemvidError)
