"""The public names of the package are part of its contract."""

from __future__ import annotations

import subprocess
import sys

import langchain_memvid

EXPECTED_ALL = [
    "MemvidVectorStore",
    "MemvidRetriever",
    "SentenceTransformerEmbeddings",
    "PDFLoader",
    "EPUBLoader",
    "TextLoader",
    "MarkdownLoader",
    "DirectoryLoader",
    "load_path",
    "LoaderError",
    "split_documents",
]


def test_all_imports() -> None:
    assert sorted(langchain_memvid.__all__) == sorted(EXPECTED_ALL)
    for name in EXPECTED_ALL:
        assert getattr(langchain_memvid, name) is not None


def test_import_does_not_load_torch() -> None:
    # The embedding model loads lazily; importing the package stays cheap.
    code = "import sys, langchain_memvid; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
