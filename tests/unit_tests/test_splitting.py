"""Tests for split_documents: word boundaries, offsets, metadata and argument checks."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from langchain_memvid.document_loaders import PDFLoader
from langchain_memvid.splitting import (
    DEFAULT_SEPARATORS,
    _search,
    _spans,
    default_splitter,
    split_documents,
)

PDF = Path(__file__).resolve().parents[2] / "examples" / "data" / "qr_code_history.pdf"

WORD_CHARS = "abcxyzéß0123456789-'.,!?:;()"
SEPARATORS = [" ", "  ", "\n", "\n\n", "\t", " \n ", "\n \n", "\u00a0", "\u2003", "\r\n"]


def _check_chunks(text: str, chunks: list[Document], chunk_size: int) -> None:
    """Every chunk is a word-aligned slice of ``text`` no longer than ``chunk_size``."""
    covered = [False] * len(text)
    for chunk in chunks:
        start = chunk.metadata["start_index"]
        end = start + len(chunk.page_content)
        assert text[start:end] == chunk.page_content
        assert 0 < len(chunk.page_content) <= chunk_size
        assert not chunk.page_content[0].isspace()
        assert not chunk.page_content[-1].isspace()
        assert start == 0 or text[start - 1].isspace(), f"chunk starts inside a word: {chunk!r}"
        assert end == len(text) or text[end].isspace(), f"chunk ends inside a word: {chunk!r}"
        for i in range(start, end):
            covered[i] = True
    lost = [c for c, seen in zip(text, covered, strict=True) if not seen and not c.isspace()]
    assert not lost, "some words are in no chunk"


@st.composite
def word_texts(draw: st.DrawFn) -> tuple[str, int, int]:
    words = draw(st.lists(st.text(alphabet=WORD_CHARS, min_size=1, max_size=12), min_size=1, max_size=80))
    seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(words), max_size=len(words)))
    text = "".join(w + s for w, s in zip(words, seps, strict=True)).strip()
    longest = max(len(w) for w in words)
    chunk_size = draw(st.integers(min_value=longest, max_value=max(longest, 120)))
    overlap = draw(st.integers(min_value=0, max_value=chunk_size - 1))
    return text, chunk_size, overlap


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(word_texts())
def test_chunks_never_cut_a_word(case: tuple[str, int, int]) -> None:
    text, chunk_size, overlap = case
    chunks = split_documents([Document(page_content=text)], chunk_size=chunk_size, chunk_overlap=overlap)
    _check_chunks(text, chunks, chunk_size)
    # The offset-tracking mirror agrees with langchain's splitter, so the exact
    # offsets are used rather than the search fallback.
    expected = default_splitter(chunk_size, overlap).split_text(text)
    spans = _spans(text, 0, list(DEFAULT_SEPARATORS), chunk_size, overlap)
    assert [chunk for chunk, _ in spans] == [c for c in expected if c.strip()]
    assert [c.metadata["chunk_index"] for c in chunks] == list(range(len(chunks)))
    starts = [c.metadata["start_index"] for c in chunks]
    assert starts == sorted(starts)
    assert len(set(starts)) == len(starts)


@settings(max_examples=100, deadline=None)
@given(
    words=st.lists(st.sampled_from(["a", "ab", "ba", "aa", "b"]), min_size=1, max_size=60),
    chunk_size=st.integers(min_value=2, max_value=12),
    data=st.data(),
)
def test_repetitive_text_offsets_are_word_aligned(
    words: list[str], chunk_size: int, data: st.DataObject
) -> None:
    # Repeated words make many identical substrings: the offsets must still be
    # word-aligned (a naive str.find can land inside "ba" for the chunk "a").
    overlap = data.draw(st.integers(min_value=0, max_value=chunk_size - 1))
    text = " ".join(words)
    chunks = split_documents([Document(page_content=text)], chunk_size=chunk_size, chunk_overlap=overlap)
    _check_chunks(text, chunks, chunk_size)


def test_repeated_chunks_are_dropped() -> None:
    # langchain's splitter emits "a" again after "abcd a": the overlap it keeps
    # plus a trailing space make a chunk with nothing new in it.
    text = "abcd a \n abc"
    assert default_splitter(6, 4).split_text(text) == ["abcd a", "a", "abc"]
    chunks = split_documents([Document(page_content=text)], chunk_size=6, chunk_overlap=4)
    assert [(c.page_content, c.metadata["start_index"]) for c in chunks] == [("abcd a", 0), ("abc", 9)]
    assert [c.metadata["chunk_index"] for c in chunks] == [0, 1]
    # Here the kept overlap swallows the whole chunk "0 0", a prefix of the next.
    text = "0 0 0 0 0 0 0 0\n\n0 0 \n 0 000"
    assert default_splitter(12, 5).split_text(text)[2:] == ["0 0", "0 0 \n 0 000"]
    chunks = split_documents([Document(page_content=text)], chunk_size=12, chunk_overlap=5)
    assert [(c.page_content, c.metadata["start_index"]) for c in chunks] == [
        ("0 0 0 0 0 0", 0),
        ("0 0 0 0", 8),
        ("0 0 \n 0 000", 17),
    ]


def test_search_fallback_matches_exact_offsets() -> None:
    page = PDFLoader(PDF).load()[0].page_content
    spans = _spans(page, 0, list(DEFAULT_SEPARATORS), 300, 60)
    assert _search(page, [chunk for chunk, _ in spans], 60) == spans


def test_search_fallback_stays_word_aligned_in_repetitive_text() -> None:
    text = "ba a a a a a a ba a"
    found = _search(text, ["ba a", "a a a", "a a", "a ba", "ba a"], 2)
    for chunk, start in found:
        assert text[start : start + len(chunk)] == chunk
        assert start == 0 or text[start - 1] == " "


def test_overlong_word_is_the_only_cut() -> None:
    text = "short words then " + "x" * 30 + " and more short words"
    chunks = split_documents([Document(page_content=text)], chunk_size=10, chunk_overlap=0)
    assert all(len(c.page_content) <= 10 for c in chunks)
    assert "".join(c.page_content for c in chunks if set(c.page_content) == {"x"}) == "x" * 30
    for chunk in chunks:
        if "x" not in chunk.page_content:
            start = chunk.metadata["start_index"]
            end = start + len(chunk.page_content)
            assert start == 0 or text[start - 1] == " "
            assert end == len(text) or text[end] == " "


def test_prefers_paragraphs_then_sentences() -> None:
    para1 = "First sentence here. Second sentence here."
    para2 = "Another paragraph."
    chunks = split_documents([Document(page_content=f"{para1}\n\n{para2}")], chunk_size=45, chunk_overlap=0)
    assert [c.page_content for c in chunks] == [para1, para2]
    chunks = split_documents([Document(page_content=para1)], chunk_size=30, chunk_overlap=0)
    assert [c.page_content for c in chunks] == ["First sentence here.", "Second sentence here."]


def test_metadata_is_copied_and_input_untouched() -> None:
    nested = {"tags": ["film", "qr"]}
    docs = [
        Document(page_content="one two three four five six seven", metadata={"source": "a", "extra": nested}),
        Document(page_content="alpha beta gamma delta", metadata={"source": "b"}, id="doc-b"),
    ]
    before = copy.deepcopy(docs)
    chunks = split_documents(docs, chunk_size=12, chunk_overlap=4)
    assert docs == before
    assert docs[1].id == "doc-b"
    assert "chunk_index" not in docs[0].metadata
    by_source: dict[str, list[Document]] = {}
    for chunk in chunks:
        by_source.setdefault(chunk.metadata["source"], []).append(chunk)
    assert set(by_source) == {"a", "b"}
    for source_chunks in by_source.values():
        assert [c.metadata["chunk_index"] for c in source_chunks] == list(range(len(source_chunks)))
    assert by_source["a"][0].metadata["extra"] == nested
    # Deep copies: changing one chunk's metadata leaves the source and siblings alone.
    by_source["a"][0].metadata["extra"]["tags"].append("changed")
    assert nested == {"tags": ["film", "qr"]}
    assert by_source["a"][1].metadata["extra"] == {"tags": ["film", "qr"]}
    assert all(chunk.id is None for chunk in chunks)


def test_empty_documents_give_no_chunks() -> None:
    assert split_documents([Document(page_content=""), Document(page_content=" \n ")]) == []


def test_overlap_is_used() -> None:
    text = " ".join(f"w{i}" for i in range(100))
    chunks = split_documents([Document(page_content=text)], chunk_size=50, chunk_overlap=20)
    for prev, nxt in itertools.pairwise(chunks):
        prev_end = prev.metadata["start_index"] + len(prev.page_content)
        assert nxt.metadata["start_index"] < prev_end  # they share some words
        assert prev_end - nxt.metadata["start_index"] <= 20


def test_real_pdf_pages() -> None:
    pages = PDFLoader(PDF).load()
    chunks = split_documents(pages, chunk_size=500, chunk_overlap=80)
    assert len(chunks) > len(pages)
    for chunk in chunks:
        page = pages[chunk.metadata["page"]]
        start = chunk.metadata["start_index"]
        assert page.page_content[start : start + len(chunk.page_content)] == chunk.page_content
        assert chunk.metadata["title"] == "A Short History of the QR Code"
        assert len(chunk.page_content) <= 500


@pytest.mark.parametrize(
    ("chunk_size", "chunk_overlap", "message"),
    [
        (100, 100, "must be smaller than chunk_size"),
        (100, 150, "must be smaller than chunk_size"),
        (0, 0, "chunk_size must be a positive"),
        (-5, 0, "chunk_size must be a positive"),
        (100, -1, "chunk_overlap must be 0 or more"),
    ],
)
def test_invalid_sizes(chunk_size: int, chunk_overlap: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_documents([Document(page_content="x")], chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    with pytest.raises(ValueError, match=message):
        default_splitter(chunk_size, chunk_overlap)


def test_default_splitter() -> None:
    splitter = default_splitter()
    assert isinstance(splitter, RecursiveCharacterTextSplitter)
    assert splitter._chunk_size == 1000
    assert splitter._chunk_overlap == 150
    assert splitter._add_start_index is True
    assert DEFAULT_SEPARATORS[-1] == ""
    docs = splitter.create_documents(["one two three"], metadatas=[{"source": "s"}])
    assert docs[0].metadata == {"source": "s", "start_index": 0}
