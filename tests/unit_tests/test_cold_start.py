"""A cold start loads only what is used (issue 15): checked in fresh interpreters.

`import langchain_memvid` imports none of its modules; opening a store and searching it by vector
loads neither an embedding model nor the loaders, the retriever, the video writer or the text
splitter; `lcmemvid info` and `lcmemvid --version` load no LangChain at all. Each check runs in a
subprocess, because this test session has long imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

import langchain_memvid
import langchain_memvid.engine

# Loaded by no cold start: the model stack, the video writer, the QR alternatives, the parsers,
# progress bars, the text splitter, LangChain's prompts and loaders, and the modules of ours that
# need them.
NEVER = [
    "torch",
    "sentence_transformers",
    "transformers",
    "av",
    "qrcode",
    "pyzbar",
    "PIL",
    "pypdf",
    "ebooklib",
    "bs4",
    "lxml",
    "tqdm",
    "rich",
    "langchain_text_splitters",
    "langchain_core.prompts",
    "langchain_core.output_parsers",
    "langchain_core.document_loaders",
    "langchain_memvid.document_loaders",
    "langchain_memvid.retrievers",
    "langchain_memvid.engine.rebuild",
]
# Loaded by reading a frame (OpenCV decodes the PNG packet, zxing-cpp the QR symbol), so allowed
# by a search, which reads its hits back from the video, and by nothing that reads no frame.
FRAME_READING = ["cv2", "zxingcpp"]
# LangChain itself: `VectorStore`'s module imports `langchain_core.retrievers` (and through it
# the tracers and langsmith), so the vector store cannot avoid it; the command line's store
# commands and the bare package import need none of it.
LANGCHAIN = ["langchain_core", "langchain_core.retrievers", "langchain_core.runnables", "pydantic"]


def _loaded(code: str, *args: str) -> dict[str, object]:
    """Run `code` in a fresh interpreter; it ends by printing a JSON object on its last line."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def _present(report: dict[str, object], names: list[str]) -> list[str]:
    modules = report["modules"]
    assert isinstance(modules, list)
    return [name for name in names if name in modules]


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[float]]:
    """A store of a few records (too little text for a zstd dictionary, so opening reads no frame)."""
    from langchain_memvid import MemvidVectorStore

    path = tmp_path_factory.mktemp("cold") / "store"
    with MemvidVectorStore(path, DeterministicFakeEmbedding(size=6)) as store:
        ids = store.add_texts(
            [f"cold start note {i}" for i in range(20)], metadatas=[{"n": i} for i in range(20)]
        )
        vector = store.engine.vectors([ids[7]])[ids[7]]
    return path, ids[7], [float(x) for x in vector]


def test_import_langchain_memvid_imports_none_of_its_modules() -> None:
    report = _loaded(
        """
        import json, sys
        import langchain_memvid
        listed = dir(langchain_memvid)
        modules = sorted(sys.modules)
        # Then the lazy path itself, in a process where nothing was imported before.
        resolved = {}
        for package in ("langchain_memvid", "langchain_memvid.engine"):
            namespace = {}
            exec(f"from {package} import *", namespace)
            resolved[package] = sorted(k for k in namespace if k != "__builtins__")
        print(json.dumps({"modules": modules, "listed": listed, "resolved": resolved}))
        """
    )
    assert _present(report, NEVER + FRAME_READING + LANGCHAIN + ["faiss", "numpy", "click"]) == []
    modules = report["modules"]
    assert isinstance(modules, list)
    assert [m for m in modules if m.startswith("langchain_memvid.")] == []
    # dir() lists the public names before any of them is imported (and listing imports nothing).
    listed = report["listed"]
    assert isinstance(listed, list)
    assert set(langchain_memvid.__all__) <= set(listed)
    # `from ... import *` imports every name of `__all__` on first access.
    assert report["resolved"] == {
        "langchain_memvid": sorted(langchain_memvid.__all__),
        "langchain_memvid.engine": sorted(langchain_memvid.engine.__all__),
    }


def test_every_public_name_still_imports() -> None:
    for package in (langchain_memvid, langchain_memvid.engine):
        for name in package.__all__:
            namespace: dict[str, object] = {}
            exec(f"from {package.__name__} import {name}", namespace)
            assert namespace[name] is getattr(package, name) is not None, name
            assert name in dir(package), name
        with pytest.raises(AttributeError):
            package.no_such_name  # noqa: B018
        with pytest.raises(ImportError):
            exec(f"from {package.__name__} import no_such_name")
    from langchain_memvid.document_loaders import LoaderError
    from langchain_memvid.embeddings import EmbeddingModelLoadError
    from langchain_memvid.errors import EmbeddingModelLoadError as LightEmbeddingModelLoadError
    from langchain_memvid.errors import LoaderError as LightLoaderError

    assert LoaderError is LightLoaderError is langchain_memvid.LoaderError
    assert EmbeddingModelLoadError is LightEmbeddingModelLoadError


def test_rag_prompt_is_made_on_first_access() -> None:
    report = _loaded(
        """
        import json, sys
        from langchain_memvid import rag
        before = "langchain_core.prompts" in sys.modules
        from langchain_memvid.rag import RAG_PROMPT
        print(json.dumps({"modules": sorted(sys.modules), "before": before,
                          "same": RAG_PROMPT is rag.RAG_PROMPT, "type": type(RAG_PROMPT).__name__}))
        """
    )
    assert report["before"] is False
    assert report["same"] is True
    assert report["type"] == "ChatPromptTemplate"


def test_open_and_search_by_vector_needs_no_model(small_store: tuple[Path, str, list[float]]) -> None:
    path, record_id, vector = small_store
    report = _loaded(
        """
        import json, sys
        from langchain_core.embeddings import Embeddings
        from langchain_memvid.vectorstores import MemvidVectorStore

        class NoModel(Embeddings):
            size = 6  # the dimension, stated so that the store need not embed anything
            model_name = "DeterministicFakeEmbedding"  # the model the store records

            def embed_documents(self, texts):
                raise AssertionError("the model was called")

            def embed_query(self, text):
                raise AssertionError("the model was called")

        with MemvidVectorStore(sys.argv[1], NoModel()) as store:
            docs = store.similarity_search_by_vector(json.loads(sys.argv[2]), k=1)
        print(json.dumps({"modules": sorted(sys.modules), "ids": [d.id for d in docs],
                          "texts": [d.page_content for d in docs]}))
        """,
        str(path),
        json.dumps(vector),
    )
    assert report["ids"] == [record_id]
    assert report["texts"] == ["cold start note 7"]
    assert _present(report, NEVER) == []


@pytest.mark.parametrize("args", [["info", "{store}"], ["info", "{store}", "--json"], ["--version"]])
def test_lcmemvid_info_and_version_load_no_langchain(
    small_store: tuple[Path, str, list[float]], args: list[str]
) -> None:
    path = small_store[0]
    report = _loaded(
        """
        import json, sys
        from langchain_memvid.cli import main

        sys.argv = ["lcmemvid", *sys.argv[1:]]
        try:
            main()
        except SystemExit as e:
            code = e.code
        else:
            code = 0
        print()
        print(json.dumps({"modules": sorted(sys.modules), "code": code}))
        """,
        *[a.format(store=path) for a in args],
    )
    assert report["code"] in (0, None)
    assert _present(report, NEVER + FRAME_READING + LANGCHAIN + ["langchain_memvid.embeddings"]) == []
    if args == ["--version"]:
        assert _present(report, ["faiss", "numpy", "langchain_memvid.engine.store"]) == []
