"""benchmarks/real_corpus.py: deterministic real-text chunks and a verified, pickle-free cache.

A fake embedding function stands in for the model, so nothing here loads torch.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "real_corpus.py"
N = 300


def _import() -> ModuleType:
    spec = importlib.util.spec_from_file_location("real_corpus", PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["real_corpus"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


rc = _import()


class FakeEmbed:
    """A deterministic 8-dimensional embedding of a text's bytes; counts the texts it embeds."""

    model_name = "fake-8"

    def __init__(self) -> None:
        self.calls = 0
        self.texts = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        rows = []
        for text in texts:
            data = np.frombuffer(text.encode().ljust(8 * 64, b" ")[: 8 * 64], dtype=np.uint8)
            rows.append(data.reshape(8, 64).sum(axis=1).astype(np.float64))
        out = np.array(rows)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def split() -> Any:
    return rc.corpus_texts(N, min_held_out=12)


@pytest.fixture
def fake() -> FakeEmbed:
    return FakeEmbed()


# ---------------------------------------------------------------------------- chunking


def test_chunking_is_deterministic_and_prefix_consistent(split: Any) -> None:
    again = rc.corpus_texts(N, min_held_out=12)
    assert again.texts == split.texts
    assert again.sources == split.sources
    assert again.held_out == split.held_out
    assert rc.corpus_texts(100).texts == split.texts[:100]


def test_chunks_are_within_bounds_normalised_and_distinct(split: Any) -> None:
    assert len(split.texts) == N
    assert not split.exhausted
    everything = split.texts + [text for text, _ in split.held_out]
    assert len(set(everything)) == len(everything)
    for text in everything:
        assert rc.MIN_CHARS <= len(text) <= rc.CHUNK_SIZE
        assert text == " ".join(text.split())
        assert "\x00" not in text
    assert split.sources[0].startswith("pydoc:")  # the fixed order starts with pydoc topics
    assert split.raw_bytes == sum(len(t.encode()) for t in split.texts)


def test_every_hundredth_chunk_is_held_out() -> None:
    stream = [(f"chunk {i:04d} " + "word " * 50, f"s{i}") for i in range(1000)]
    split = rc.corpus_texts(500, stream=iter(stream))
    assert [text for text, _ in split.held_out] == [stream[i][0] for i in range(99, 500, 100)]
    assert len(split.texts) == 500
    assert set(split.texts).isdisjoint(text for text, _ in split.held_out)
    short = rc.corpus_texts(5000, stream=iter(stream))
    assert short.exhausted
    assert len(short.texts) + len(short.held_out) == 1000


def test_chunks_split_filter_and_deduplicate() -> None:
    sentence = "The quick brown fox jumps over the lazy dog near the river bank. "
    docs = [
        ("a", sentence * 20),  # 1300 characters: cut on sentence ends, at most 500 each
        ("b", sentence * 20),  # the same again: its chunks are duplicates
        ("c", "Too short to keep."),
        ("d", ">>> x = [1, 2, 3]; y = {k: v ** 2 for k, v in zip(x, x)} # 0x1f 0x2e\n" * 8),
    ]
    out = list(rc.chunks(docs))
    assert [source for _, source in out] == ["a"] * len(out)
    assert len({text for text, _ in out}) == len(out)
    for text, _ in out:
        assert rc.MIN_CHARS <= len(text) <= rc.CHUNK_SIZE
        assert text.endswith(".")


def test_first_sentence() -> None:
    text = "Short. This first sentence is long enough to be a query. Then more text follows here."
    assert rc._first_sentence(text) == "Short. This first sentence is long enough to be a query."
    long = "word " * 100
    query = rc._first_sentence(long)
    assert rc.QUERY_MIN_CHARS <= len(query) <= rc.QUERY_MAX_CHARS
    assert not query.endswith(" ")


def test_docstrings_skip_private_and_nested_definitions() -> None:
    import ast

    source = '''
"""Module doc."""
class Public:
    """Class doc."""
    def method(self):
        """Method doc."""
        def inner():
            """Nested: skipped."""
    def _private(self):
        """Private: skipped."""
    def __init__(self):
        """Dunder doc."""
if True:
    def guarded():
        """Guarded doc."""
def _hidden():
    """Private: skipped."""
'''
    assert rc._docstrings(ast.parse(source)) == [
        "Module doc.",
        "Class doc.",
        "Method doc.",
        "Dunder doc.",
        "Guarded doc.",
    ]


# ------------------------------------------------------------------------------- cache


def test_cache_round_trips_without_embedding_again(tmp_path: Path, fake: FakeEmbed, split: Any) -> None:
    texts, metadatas, vectors = rc.load(N, cache=tmp_path, embed=fake, progress=False)
    assert texts == split.texts
    assert metadatas == [{"source": s} for s in split.sources]
    assert vectors.dtype == np.float32
    assert vectors.shape == (N, 8)
    assert fake.texts == N

    for suffix in (".npy", ".jsonl", ".json"):
        assert (tmp_path / f"real-{N}{suffix}").is_file()
    assert np.array_equal(np.load(tmp_path / f"real-{N}.npy", allow_pickle=False), vectors)
    lines = (tmp_path / f"real-{N}.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"text": t, "source": s} for t, s in zip(split.texts, split.sources, strict=True)
    ]
    meta = json.loads((tmp_path / f"real-{N}.json").read_text(encoding="utf-8"))
    assert meta["model"] == "fake-8"
    assert meta["dimension"] == 8
    assert meta["count"] == N
    assert meta["raw_text_bytes"] == split.raw_bytes
    assert meta["fingerprint"]["chunks_sha256"] == rc.texts_sha256(split.texts)
    assert meta["fingerprint"]["environment"]["python"] == sys.version.split()[0]
    assert {"created", "embed_seconds", "npy_sha256", "jsonl_sha256"} <= meta.keys()

    texts2, metadatas2, vectors2 = rc.load(N, cache=tmp_path, embed=fake, progress=False)
    assert fake.calls == 1  # served from the cache
    assert (texts2, metadatas2) == (texts, metadatas)
    assert np.array_equal(vectors2, vectors)


def test_tampered_npy_is_detected_and_rebuilt(tmp_path: Path, fake: FakeEmbed) -> None:
    _, _, vectors = rc.load(N, cache=tmp_path, embed=fake, progress=False)
    npy = tmp_path / f"real-{N}.npy"
    data = bytearray(npy.read_bytes())
    data[-1] ^= 0x01  # one bit of the last float
    npy.write_bytes(bytes(data))

    _, _, rebuilt = rc.load(N, cache=tmp_path, embed=fake, progress=False)
    assert fake.texts == 2 * N
    assert np.array_equal(rebuilt, vectors)
    assert np.array_equal(np.load(npy, allow_pickle=False), vectors)
    rc.load(N, cache=tmp_path, embed=fake, progress=False)
    assert fake.texts == 2 * N  # the rebuilt cache is valid again


def test_pickled_or_mislabelled_cache_is_rebuilt(tmp_path: Path, fake: FakeEmbed) -> None:
    rc.load(N, cache=tmp_path, embed=fake, progress=False)
    npy = tmp_path / f"real-{N}.npy"
    np.save(npy, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    meta_path = tmp_path / f"real-{N}.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["npy_sha256"] = rc._sha256_file(npy)  # even with a matching sum it must not unpickle
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    _, _, vectors = rc.load(N, cache=tmp_path, embed=fake, progress=False)
    assert vectors.shape == (N, 8)
    assert fake.calls == 2

    other = FakeEmbed()
    other.model_name = "another-model"
    rc.load(N, cache=tmp_path, embed=other, progress=False)
    assert other.texts == N  # a different model never reuses the vectors


def test_tampered_texts_are_detected(tmp_path: Path, fake: FakeEmbed) -> None:
    rc.load(N, cache=tmp_path, embed=fake, progress=False)
    jsonl = tmp_path / f"real-{N}.jsonl"
    jsonl.write_text(jsonl.read_text(encoding="utf-8").replace("a", "b", 1), encoding="utf-8")
    texts, _, _ = rc.load(N, cache=tmp_path, embed=fake, progress=False)
    assert fake.calls == 2
    assert texts == rc.corpus_texts(N).texts


def test_changed_environment_rechecks_the_text(
    tmp_path: Path, fake: FakeEmbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    rc.load(N, cache=tmp_path, embed=fake, progress=False)
    real = rc.environment()
    monkeypatch.setattr(rc, "environment", lambda: {**real, "python": "9.9.9"})
    rc.load(N, cache=tmp_path, embed=fake, progress=False)
    assert fake.calls == 1  # the same text: the vectors are kept, the fingerprint updated
    meta = json.loads((tmp_path / f"real-{N}.json").read_text(encoding="utf-8"))
    assert meta["fingerprint"]["environment"]["python"] == "9.9.9"

    # Now the text differs (one chunk gone): only texts the cache lacks are embedded.
    before, _, old_vectors = rc.load(N, cache=tmp_path, embed=fake, progress=False)
    stream = list(itertools.islice(rc.chunks(), 2 * N))
    monkeypatch.setattr(rc, "environment", lambda: {**real, "python": "9.9.10"})
    monkeypatch.setattr(rc, "chunks", lambda: iter(stream[1:]))
    texts, _, vectors = rc.load(N, cache=tmp_path, embed=fake, progress=False)
    assert fake.calls == 2
    assert texts[0] != stream[0][0]
    new = [t for t in texts if t not in before]
    assert 0 < len(new) < 5
    assert fake.texts == N + len(new)
    assert np.array_equal(vectors, fake(texts).astype(np.float32))
    meta = json.loads((tmp_path / f"real-{N}.json").read_text(encoding="utf-8"))
    assert (meta["embedded"], meta["kept_from_previous_cache"]) == (len(new), N - len(new))
    assert old_vectors.shape == vectors.shape


def test_fewer_chunks_than_asked_says_so(
    tmp_path: Path, fake: FakeEmbed, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    few = [(f"Sentence number {i} is here. " + "Real words follow it. " * 10, f"s{i}") for i in range(250)]
    monkeypatch.setattr(rc, "chunks", lambda: iter(few))
    texts, _, vectors = rc.load(1000, cache=tmp_path, embed=fake)
    assert len(texts) == vectors.shape[0] == 250 - 2  # two of 250 are held out
    assert "only 248 chunks are available" in capsys.readouterr().err
    assert json.loads((tmp_path / "real-1000.json").read_text(encoding="utf-8"))["exhausted"] is True


def test_bad_embedding_output_is_refused(tmp_path: Path) -> None:
    def one_row(texts: list[str]) -> np.ndarray:
        return np.zeros((1, 4))

    with pytest.raises(ValueError, match="shape"):
        rc.load(N, cache=tmp_path, embed=one_row, progress=False)
    assert not (tmp_path / f"real-{N}.json").exists()


# ----------------------------------------------------------------------------- queries


def test_queries_are_held_out_distinct_and_seeded(tmp_path: Path, fake: FakeEmbed, split: Any) -> None:
    texts, vectors = rc.queries(6, seed=0, n=N, cache=tmp_path, embed=fake, progress=False)
    assert len(texts) == len(set(texts)) == 6
    assert vectors.shape == (6, 8)
    assert vectors.dtype == np.float32
    held = [chunk for chunk, _ in split.held_out]
    for query in texts:
        assert rc.QUERY_MIN_CHARS <= len(query) <= rc.QUERY_MAX_CHARS
        assert any(chunk.startswith(query) for chunk in held)
        assert not any(text.startswith(query) for text in split.texts)
    again, _ = rc.queries(6, seed=0, n=N, cache=tmp_path, embed=fake, progress=False)
    assert again == texts
    assert fake.calls == 1  # cached
    other, _ = rc.queries(6, seed=1, n=N, cache=tmp_path, embed=fake, progress=False)
    assert other != texts
    assert (tmp_path / f"real-{N}-queries-6-seed0.npy").is_file()


# --------------------------------------------------------------------------------- CLI


def test_cli_builds_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeEmbed()
    monkeypatch.setattr(rc, "packaged_embedder", lambda *args: fake)
    few = [
        (f"Sentence number {i} is here. " + "Real words follow it. " * 10, f"kind:{i}") for i in range(1200)
    ]
    monkeypatch.setattr(rc, "chunks", lambda: iter(few))
    assert rc.main(["--n", "100", "--queries", "5", "--cache", str(tmp_path), "--count-all"]) == 0
    out = capsys.readouterr().out
    assert "corpus: 100 chunks of 100 asked, float32 (100, 8)" in out
    assert f"raw text: {sum(len(t.encode()) for t, _ in few[:101]) - len(few[99][0].encode()):,} bytes" in out
    assert "queries: 5 held out" in out
    assert "available: 1,200 distinct chunks (kind 1,200)" in out
    assert str(tmp_path / "real-100.npy") in out
    assert "a corpus can hold 1,188 of them" in out
    assert rc.available() == {"kind": 1200}


def test_load_cached_serves_the_set_as_built_and_refuses_a_bad_one(
    tmp_path: Path, fake: FakeEmbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts, metadatas, vectors = rc.load(N, cache=tmp_path, embed=fake, progress=False)
    real = rc.environment()
    monkeypatch.setattr(rc, "environment", lambda: {**real, "python": "9.9.9"})
    monkeypatch.setattr(rc, "chunks", lambda: pytest.fail("load_cached must not extract"))
    got = rc.load_cached(f"real-{N}", cache=tmp_path)
    assert got[0] == texts
    assert got[1] == metadatas
    assert np.array_equal(got[2], vectors)
    (tmp_path / f"real-{N}.npy").write_bytes(b"not an array")
    with pytest.raises(FileNotFoundError, match="sha256"):
        rc.load_cached(f"real-{N}", cache=tmp_path)
    with pytest.raises(FileNotFoundError, match="no cache"):
        rc.load_cached("real-1", cache=tmp_path)
