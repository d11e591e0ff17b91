"""The lexical index and hybrid search: BM25 over the records' words, kept in step with every write.

Scores are compared with an independent BM25 written here from the textbook formula, over the
live records only; every way a store changes (add, upsert, delete, compact, rebuild, another
handle's commit) must leave lexical search answering as a store built afresh with the same
records would.
"""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import zstandard

from langchain_memvid.engine import (
    ChecksumMismatch,
    CorruptData,
    Engine,
    InvalidArgument,
    LexiconMissing,
    LimitExceeded,
    Record,
    StoreConfigMismatch,
    rebuild_store,
)
from langchain_memvid.engine.search import lexicon as lexicon_mod
from langchain_memvid.engine.search.fusion import RRF_K
from langchain_memvid.engine.search.lexicon import K1, B, build_lexicon, parse_lexicon
from langchain_memvid.engine.search.tokens import tokenize

from .conftest import add, fake_embed, fake_embed_one

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Set PYTHONHASHSEED to 0 for reproducible hashing of str objects.",
    "os.fsync forces a file's data to disk; call it before os.replace.",
    "A lazy afternoon: the dog sleeps, the fox watches.",
    "shutil.copytree copies a whole directory tree, recursively.",
    "Foxes are small omnivores; a fox is quick and clever.",
    "向量数据库保存文本和向量。",
    "Straße und Verkehr: die STRASSE ist lang.",
    "हिन्दी भाषा में पाठ",
    "nothing in common with the queries at all",
]


def records(texts: Sequence[str], *, prefix: str = "r", meta: Callable[[int], dict] | None = None) -> list[Record]:
    return [Record(f"{prefix}{i}", t, meta(i) if meta else {"n": i}) for i, t in enumerate(texts)]


def reference_bm25(texts: dict[str, str], query: str) -> dict[str, float]:
    """BM25 (Lucene idf, K1, B) from the formula, over ``texts`` (id -> text): the expected scores."""
    docs = {rid: Counter(tokenize(t)) for rid, t in texts.items()}
    n = len(docs)
    avg = sum(sum(c.values()) for c in docs.values()) / n
    out: dict[str, float] = {}
    for word in dict.fromkeys(tokenize(query)):
        df = sum(1 for c in docs.values() if word in c)
        if not df:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for rid, c in docs.items():
            tf = c.get(word, 0)
            if tf:
                length = sum(c.values())
                out[rid] = out.get(rid, 0.0) + idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / avg))
    return out


def ranked(engine: Engine, query: str, k: int = 20, **kw: object) -> list[tuple[str, float]]:
    return [(h.record.id, h.score) for h in engine.lexical_search(query, k, **kw)]  # type: ignore[arg-type]


def assert_matches_reference(engine: Engine, live: dict[str, str], query: str, k: int = 20) -> None:
    want = reference_bm25(live, query)
    got = ranked(engine, query, k)
    assert len(got) == min(k, len(want))
    for rid, score in got:
        assert score == pytest.approx(want[rid], rel=1e-5)
    scores = [s for _, s in got]
    assert scores == sorted(scores, reverse=True)
    best = sorted(want.values(), reverse=True)[: len(got)]
    assert scores == pytest.approx(best, rel=1e-5)


QUERIES = ["quick fox", "PYTHONHASHSEED", "os.fsync", "lazy dog sleeps", "向量", "strasse", "भाषा", "copytree"]


def test_tokens_are_unicode_aware_case_folded_and_split_identifiers():
    assert tokenize("Straße") == tokenize("STRASSE") == ["strasse"]
    assert tokenize("\uff21\uff30\uff29 key") == ["api", "key"]  # full-width letters: NFKC
    assert tokenize("हिन्दी") == ["हिन्दी"]  # vowel signs stay inside the word
    assert tokenize("東京タワー") == ["東京", "京タ", "タワ", "ワー"]
    assert tokenize("add_texts()") == ["add_texts", "add", "texts"]
    assert tokenize("") == []
    assert tokenize("... !!! ---") == []


def test_scores_equal_textbook_bm25(engine: Engine):
    add(engine, records(TEXTS))
    live = {f"r{i}": t for i, t in enumerate(TEXTS)}
    for q in QUERIES:
        assert_matches_reference(engine, live, q)


def test_exact_identifier_and_non_latin_queries_find_their_record(engine: Engine):
    add(engine, records(TEXTS))
    assert ranked(engine, "PYTHONHASHSEED", 1)[0][0] == "r1"
    assert ranked(engine, "shutil.copytree", 1)[0][0] == "r4"
    assert ranked(engine, "数据库", 1)[0][0] == "r6"
    assert ranked(engine, "Strasse", 1)[0][0] == "r7"


def test_only_records_holding_a_query_word_are_hits(engine: Engine):
    add(engine, records(TEXTS))
    assert ranked(engine, "zebra xylophone") == []
    assert ranked(engine, "?!") == []
    got = ranked(engine, "fox", k=10)
    assert {rid for rid, _ in got} == {"r0", "r3", "r5"}


def test_deletes_and_upserts_score_as_a_fresh_store_would(open_engine: Callable[..., Engine], tmp_path: Path):
    engine = open_engine()
    add(engine, records(TEXTS))
    engine.delete(["r3", "r9"])
    add(engine, [Record("r0", "a fox and another fox and a third fox", {"n": 0})])  # upsert
    live = {f"r{i}": t for i, t in enumerate(TEXTS) if i not in (0, 3, 9)}
    live["r0"] = "a fox and another fox and a third fox"
    fresh = open_engine(path=tmp_path / "fresh")
    add(fresh, [Record(rid, t, {}) for rid, t in live.items()])
    for q in QUERIES:
        assert_matches_reference(engine, live, q)
        assert [r for r, _ in ranked(engine, q)] == [r for r, _ in ranked(fresh, q)]


def test_filter_applies_before_ranking(engine: Engine):
    # Twenty records mention "fox" many times but are excluded by the filter; five mention it once.
    loud = [f"fox fox fox fox number {i}" for i in range(20)]
    quiet = [f"one fox among many other words here {i}" for i in range(5)]
    add(engine, records(loud, prefix="loud", meta=lambda i: {"keep": False}))
    add(engine, records(quiet, prefix="quiet", meta=lambda i: {"keep": True}))
    got = ranked(engine, "fox", k=5, filter={"keep": True})
    assert sorted(r for r, _ in got) == [f"quiet{i}" for i in range(5)]
    assert ranked(engine, "fox", k=5, filter={"keep": "nobody"}) == []


def test_every_write_path_keeps_the_index_in_step(open_engine: Callable[..., Engine], store_path: Path):
    engine = open_engine(segment_records=3)  # several segments per add
    add(engine, records(TEXTS))
    add(engine, records(["the fox returns", "dog days"], prefix="late"))
    engine.delete(["r1"])
    live = {f"r{i}": t for i, t in enumerate(TEXTS) if i != 1}
    live.update({"late0": "the fox returns", "late1": "dog days"})
    expected = {q: ranked(engine, q) for q in QUERIES}

    other = open_engine()  # a second handle on the same store sees the same index
    assert {q: ranked(other, q) for q in QUERIES} == expected
    add(other, [Record("fresh", "a brand new fox", {})])  # committed by the other handle
    live["fresh"] = "a brand new fox"
    assert_matches_reference(engine, live, "fox")

    engine.compact()
    for q in QUERIES:
        assert_matches_reference(engine, live, q)
    assert engine.verify(cross_check=False).ok
    engine.close()
    other.close()

    rebuild_store(store_path, embed=fake_embed)
    rebuilt = open_engine()
    for q in QUERIES:
        assert_matches_reference(rebuilt, live, q)
    assert rebuilt.verify(cross_check=False).ok


def test_many_segments_merge_into_one_part_with_the_same_answers(open_engine: Callable[..., Engine]):
    engine = open_engine()
    for i, text in enumerate(TEXTS * 2):
        add(engine, [Record(f"s{i}", text, {})])  # one segment per add: more than MERGE_PARTS
    live = {f"s{i}": t for i, t in enumerate(TEXTS * 2)}
    for q in QUERIES:
        assert_matches_reference(engine, live, q)
    assert engine._lexical is not None
    assert len(engine._lexical.parts) <= lexicon_mod.MERGE_PARTS


def test_hybrid_fuses_both_rankings(engine: Engine):
    add(engine, records(TEXTS))
    query = "quick fox"
    vector = fake_embed_one("lazy dog")  # the vector side ranks other records than the words
    words = [h.record.id for h in engine.lexical_search(query, 40)]
    near = [h.record.id for h in engine.search(vector, 40)]
    for weight in (0.0, 0.3, 0.5, 1.0):
        fused: dict[str, float] = {}
        for ids, w in ((words, weight), (near, 1 - weight)):
            for rank, rid in enumerate(ids, start=1):
                fused[rid] = fused.get(rid, 0.0) + w / (RRF_K + rank)
        got = engine.hybrid_search(query, vector, 5, weight=weight)
        assert [h.score for h in got] == pytest.approx(sorted(fused.values(), reverse=True)[:5])
        for h in got:
            assert h.score == pytest.approx(fused[h.record.id])
    assert engine.hybrid_search(query, vector, 3, weight=1.0)[0].record.id == words[0]
    assert engine.hybrid_search(query, vector, 3, weight=0.0)[0].record.id == near[0]


def test_hybrid_returns_k_whenever_k_records_match_the_filter(engine: Engine):
    add(engine, records(TEXTS, meta=lambda i: {"even": i % 2 == 0}))
    got = engine.hybrid_search("zebra", fake_embed_one("x"), 4, filter={"even": True})
    assert len(got) == 4
    assert all(h.record.metadata["even"] for h in got)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weight": 1.5}, "weight"),
        ({"weight": True}, "weight"),
        ({"fetch_k": 0}, "fetch_k"),
        ({"fetch_k": 2}, "at least k"),
    ],
)
def test_hybrid_refuses_bad_arguments(engine: Engine, kwargs: dict, message: str):
    add(engine, records(TEXTS))
    with pytest.raises(InvalidArgument, match=message):
        engine.hybrid_search("fox", fake_embed_one("fox"), 5, **kwargs)


def test_lexical_search_refuses_bad_arguments(engine: Engine):
    add(engine, records(TEXTS))
    with pytest.raises(InvalidArgument, match="k must be"):
        engine.lexical_search("fox", 0)
    with pytest.raises(InvalidArgument, match="string"):
        engine.lexical_search(b"fox", 3)  # type: ignore[arg-type]
    assert Engine.lexical_search  # an empty store answers nothing, without error:


def test_empty_store_answers_nothing(engine: Engine):
    assert engine.lexical_search("fox", 3) == []
    assert engine.hybrid_search("fox", np.ones(8, np.float32), 3) == []


def test_a_store_without_lexicons_says_how_to_add_them(engine: Engine):
    add(engine, records(TEXTS))
    with engine.catalog.transaction():
        engine.catalog.db.execute("DELETE FROM lexicon")  # as a store written before 0.2
    engine._lexical = None
    with pytest.raises(LexiconMissing, match="build-lexicon"):
        engine.lexical_search("fox", 3)
    assert engine.search(fake_embed_one("fox"), 3)  # vector search is unaffected
    assert engine.stats()["segments_without_lexicon"] == 1
    assert engine.build_lexicons() == 1
    assert engine.build_lexicons() == 0
    assert_matches_reference(engine, {f"r{i}": t for i, t in enumerate(TEXTS)}, "quick fox")
    assert engine.stats()["segments_without_lexicon"] == 0


def test_a_catalog_from_before_the_lexicon_table_gets_it(store_path: Path, open_engine: Callable[..., Engine]):
    engine = open_engine()
    add(engine, records(TEXTS))
    engine.close()
    db = sqlite3.connect(store_path / "catalog.sqlite")
    db.execute("DROP TABLE lexicon")
    db.commit()
    db.close()
    reopened = open_engine()
    with pytest.raises(LexiconMissing):
        reopened.lexical_search("fox", 3)
    reopened.build_lexicons()
    assert ranked(reopened, "PYTHONHASHSEED", 1)[0][0] == "r1"


def test_verify_catches_a_lexicon_that_disagrees_with_the_video(engine: Engine):
    add(engine, records(TEXTS))
    seq = next(iter(engine.catalog.lexicons([s.seq for s in engine.catalog.segments()])))
    vids = [engine.catalog.vector_ids([f"r{i}"])[f"r{i}"] for i in range(len(TEXTS))]
    forged = build_lexicon(vids, ["wrong words"] * len(TEXTS))  # valid, checksummed, wrong
    with engine.catalog.transaction():
        engine.catalog.put_lexicon(seq, forged)
    report = engine.verify(cross_check=False)
    assert not report.ok
    assert any("other words than the video" in p.message for p in report.problems)


def test_a_damaged_lexicon_row_is_refused_not_used(engine: Engine):
    add(engine, records(TEXTS))
    (seq, data), *_ = engine.catalog.db.execute("SELECT seq, data FROM lexicon").fetchall()
    flipped = data[:20] + bytes([data[20] ^ 1]) + data[21:]
    with engine.catalog.transaction():
        engine.catalog.db.execute("UPDATE lexicon SET data = ? WHERE seq = ?", (flipped, seq))
    engine._lexical = None
    with pytest.raises(ChecksumMismatch, match="lexicon"):
        engine.lexical_search("fox", 3)
    assert not engine.verify(cross_check=False).ok


def _frame(body: bytes) -> bytes:
    return zstandard.ZstdCompressor(write_content_size=True).compress(body)


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"not zstd at all",
        _frame(b"MVLX"),  # shorter than its header
        _frame(b"XXXX" + bytes(28)),  # wrong magic
        build_lexicon([1, 2], ["a b", "b c"])[:-3],  # truncated frame
    ],
)
def test_hostile_lexicon_bytes_are_refused_with_a_clear_error(blob: bytes):
    with pytest.raises((CorruptData, LimitExceeded)):
        parse_lexicon(7, blob)


def test_a_lexicon_whose_counts_lie_is_refused():
    good = zstandard.ZstdDecompressor().decompress(build_lexicon([1, 2], ["a b", "b c"]))
    header = lexicon_mod._HEADER
    magic, version, flags, docs, terms, postings, term_bytes = header.unpack_from(good)
    for fields in (
        (docs + 1000, terms, postings, term_bytes),  # counts beyond the bytes
        (docs, terms, postings, term_bytes + 1),
        (docs, terms + 1, postings, term_bytes),
    ):
        bad = header.pack(magic, version, flags, *fields) + good[header.size :]
        with pytest.raises(CorruptData):
            parse_lexicon(7, _frame(bad))
    # postings that point past the records
    n = header.size + 12 * docs + 8 * (terms + 1)
    bad = good[:n] + np.full(postings, 99, "<u4").tobytes() + good[n + 4 * postings :]
    with pytest.raises(CorruptData, match="outside"):
        parse_lexicon(7, _frame(bad))


def test_a_lexicon_claiming_a_huge_size_is_refused_before_allocating(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(lexicon_mod, "MAX_LEXICON_BYTES", 100)
    with pytest.raises(LimitExceeded):
        parse_lexicon(7, build_lexicon(range(50), ["some words here"] * 50))


def test_a_store_can_be_made_without_the_lexical_index(open_engine: Callable[..., Engine]):
    engine = open_engine(lexical_index=False)
    add(engine, records(TEXTS))
    assert engine.catalog.lexicons([s.seq for s in engine.catalog.segments()]) == {}
    assert engine.stats()["lexical_index"] is False
    assert engine.stats()["lexicon_bytes"] == 0
    with pytest.raises(LexiconMissing, match="lexical_index=False"):
        engine.lexical_search("fox", 3)
    assert engine.verify(cross_check=False).ok
    engine.close()
    with pytest.raises(StoreConfigMismatch, match="build_lexicons"):
        open_engine(lexical_index=True)
    reopened = open_engine()
    assert reopened.build_lexicons() == 1
    add(reopened, [Record("later", "a later fox", {})])  # kept from now on, for new segments too
    live = {f"r{i}": t for i, t in enumerate(TEXTS)} | {"later": "a later fox"}
    assert_matches_reference(reopened, live, "fox")
    assert reopened.stats()["lexical_index"] is True


def test_an_open_handle_follows_a_rebuild_that_renumbers_vectors(
    open_engine: Callable[..., Engine], store_path: Path
):
    engine = open_engine()
    add(engine, records(TEXTS[:5]))
    add(engine, [Record(f"r{i}", t, {"n": i}) for i, t in enumerate(TEXTS) if i >= 5])
    assert ranked(engine, "PYTHONHASHSEED", 1)[0][0] == "r1"  # its lexicons are loaded now
    first = min(s.seq for s in engine.catalog.segments())
    before = engine.catalog.vector_ids(["r1"])
    (seg,) = [s for s in engine.catalog.segments() if s.seq == first]
    (store_path / "segments" / f"{seg.name}.faiss").unlink()  # lost: rebuild re-embeds, new vector ids
    rebuild_store(store_path, embed=fake_embed)
    assert engine.catalog.vector_ids(["r1"]) != before
    live = {f"r{i}": t for i, t in enumerate(TEXTS)}
    for q in QUERIES:
        assert_matches_reference(engine, live, q)


def test_small_adds_after_a_big_load_do_not_merge_the_big_part_again(open_engine: Callable[..., Engine]):
    engine = open_engine()
    for n in range(lexicon_mod.MERGE_PARTS + 1):  # more than MERGE_PARTS segments: merged on first load
        add(engine, [Record(f"b{n}-{i}", f"bulk text {n} {i} fox", {}) for i in range(20)])
    assert len(ranked(engine, "fox", 3)) == 3
    assert engine._lexical is not None
    (big,) = engine._lexical.parts
    live = {f"b{n}-{i}": f"bulk text {n} {i} fox" for n in range(lexicon_mod.MERGE_PARTS + 1) for i in range(20)}
    for n in range(2 * lexicon_mod.MERGE_PARTS):  # small adds, a search after each
        add(engine, [Record(f"s{n}", f"small fox {n}", {})])
        live[f"s{n}"] = f"small fox {n}"
        assert_matches_reference(engine, live, "small fox", k=5)
        assert engine._lexical.parts[0] is big  # held as it is, not merged again
        assert len(engine._lexical.parts) <= lexicon_mod.MERGE_PARTS
