"""The lexical index: BM25 over the words of the records, kept per segment, texts kept nowhere.

Each records segment gets one *lexicon* when it is written (a row of the catalog, built from
the texts going into the video; docs/format.md section 3.7): its records' vector ids and lengths
in tokens, and for every term the records holding it (as gaps, which compress well) with the
count; zstd level 15 over the whole: about 70 bytes a record of 400 bytes of text, 0.18x the text
(level 19 saves 9 % more at four times the time; benchmarks/bench_lexical_choice.py). Terms and counts only, no
text and no word positions. Like the segment, a lexicon never changes: deleted and replaced
records are excluded at search time through the vector index's live set, and compaction writes
fresh lexicons with the fresh segments.

Own postings on numpy, chosen by measurement (benchmarks/bench_lexical_choice.py, 100,000 real
chunks): 0.18x the text against 0.54x for SQLite FTS5 (contentless) and 0.97x for bm25s; query
p50 1.9 ms against 104 ms and 2.2 ms; and the only one of the three that deletes a record without
being given its text (FTS5 needs SQLite 3.43's contentless_delete; bm25s re-indexes everything).

Scoring is Okapi BM25 with Lucene's non-negative idf, over the *live* records only (their count,
average length and each term's document frequency), so a store scores as a store built afresh
with the same records would. A filter narrows the candidates before ranking; a record that holds
none of the query's terms is not a hit.

    score(d) = sum over query terms t in d of  idf(t) * tf * (K1 + 1) / (tf + K1 * (1 - B + B * len(d) / avglen))
    idf(t)   = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import zstandard

from langchain_memvid.engine.codec.frames import decompress_bounded
from langchain_memvid.engine.errors import CorruptData, LimitExceeded
from langchain_memvid.engine.search.tokens import tokenize

K1 = 1.2  # term-frequency saturation (Lucene's default)
B = 0.75  # length normalisation (Lucene's default)
MAX_LEXICON_BYTES = 1 << 30  # a lexicon decompresses to at most this much
MERGE_PARTS = 8  # search loops over this many parts at most before they are merged into one
MAX_QUERY_TERMS = 1024  # distinct terms of a query that are scored (a pasted document is cut there)
MAX_TF = 65_535  # term counts are held in 16 bits; BM25 saturates long before (tf 1,000 vs 65,535: 0.1 %)

_MAGIC = b"MVLX"
_VERSION = 1
_HEADER = struct.Struct("<4sHHIIQQ")  # magic, version, flags, docs, terms, postings, term bytes


def keeps_lexicon(settings: Mapping[str, object]) -> bool:
    """Whether a store keeps lexicons for its new segments (absent: yes, as every store did)."""
    return settings.get("lexical_index", True) is not False


def build_lexicon(vector_ids: Sequence[int] | np.ndarray, texts: Sequence[str]) -> bytes:
    """The compressed lexicon of records ``texts`` stored under ``vector_ids`` (one segment)."""
    vids = np.asarray(vector_ids, dtype=np.int64)
    counts = [Counter(tokenize(t)) for t in texts]
    lengths = np.array([sum(c.values()) for c in counts], dtype=np.uint32)
    by_term: dict[str, list[tuple[int, int]]] = {}
    for doc, c in enumerate(counts):
        for term, tf in c.items():
            by_term.setdefault(term, []).append((doc, tf))
    terms = list(by_term)
    offsets = np.zeros(len(terms) + 1, dtype=np.uint64)
    offsets[1:] = np.cumsum([len(by_term[t]) for t in terms], dtype=np.uint64)
    pairs = np.array([p for t in terms for p in by_term[t]], dtype=np.int64).reshape(-1, 2)
    gaps = np.diff(pairs[:, 0], prepend=0)  # each term's records ascend: store the gaps
    gaps[offsets[:-1].astype(np.int64)] = pairs[offsets[:-1].astype(np.int64), 0]  # a term starts absolute
    term_bytes = "\n".join(terms).encode()
    body = b"".join(
        [
            _HEADER.pack(_MAGIC, _VERSION, 0, len(vids), len(terms), len(pairs), len(term_bytes)),
            vids.astype("<i8").tobytes(),
            lengths.astype("<u4").tobytes(),
            offsets.astype("<u8").tobytes(),
            gaps.astype("<u4").tobytes(),
            np.ascontiguousarray(pairs[:, 1]).astype("<u4").tobytes(),
            term_bytes,
        ]
    )
    return zstandard.ZstdCompressor(level=15, write_content_size=True).compress(body)


@dataclass
class Part:
    """Records' postings in one searchable piece: a segment's lexicon, or several merged.

    ``terms`` maps each term to its row in ``offsets`` (in row order); the postings of term row
    ``r`` are ``docs[offsets[r]:offsets[r + 1]]`` (ascending positions into ``vector_ids``) and
    ``tfs``.
    """

    seqs: frozenset[int]
    vector_ids: np.ndarray
    lengths: np.ndarray
    terms: dict[str, int]
    offsets: np.ndarray
    docs: np.ndarray
    tfs: np.ndarray

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(record positions, counts) of ``term``, or None when no record here holds it."""
        row = self.terms.get(term)
        if row is None:
            return None
        start, stop = int(self.offsets[row]), int(self.offsets[row + 1])
        return self.docs[start:stop], self.tfs[start:stop]


def lexicon_problems(seq: int, blob: bytes, texts: Mapping[int, str]) -> list[str]:
    """How a stored lexicon differs from the live records' texts (vector id -> text), for ``verify``."""
    try:
        part = parse_lexicon(seq, blob)
    except (CorruptData, LimitExceeded) as e:
        return [str(e)]
    held: dict[int, Counter[str]] = {int(v): Counter() for v in part.vector_ids}
    words = list(part.terms)
    for row in range(len(words)):
        start, stop = int(part.offsets[row]), int(part.offsets[row + 1])
        for doc, tf in zip(part.docs[start:stop].tolist(), part.tfs[start:stop].tolist(), strict=True):
            held[int(part.vector_ids[doc])][words[row]] = int(tf)
    return [
        f"the lexicon of segment {seq} lacks record vector id {vid}"
        if vid not in held
        else f"the lexicon of segment {seq} holds other words than the video for vector id {vid}"
        for vid, text in texts.items()
        if held.get(vid) != Counter({w: min(n, MAX_TF) for w, n in Counter(tokenize(text)).items()})
    ]


def parse_lexicon(seq: int, blob: bytes) -> Part:
    """Read a stored lexicon, checking every count against the bytes before anything is sized by it.

    Raises:
        CorruptData: not a lexicon, or its counts, offsets or positions do not hold together.
        LimitExceeded: it would decompress to more than MAX_LEXICON_BYTES.
    """
    data = decompress_bounded(blob, None, MAX_LEXICON_BYTES, "lexicon")
    if len(data) < _HEADER.size:
        raise _damaged(seq, "is shorter than its header")
    magic, version, _flags, n_docs, n_terms, n_postings, term_bytes = _HEADER.unpack_from(data)
    if magic != _MAGIC or version != _VERSION:
        raise _damaged(seq, f"has magic {magic!r} version {version}, not a lexicon of this format")
    need = _HEADER.size + 12 * n_docs + 8 * (n_terms + 1) + 8 * n_postings + term_bytes
    if need != len(data):
        raise _damaged(seq, f"holds {len(data)} bytes where its counts call for {need}")
    at = _HEADER.size

    def take(dtype: str, count: int) -> np.ndarray:
        nonlocal at
        arr = np.frombuffer(data, dtype=dtype, count=count, offset=at)
        at += arr.nbytes
        return arr

    vids = take("<i8", n_docs).astype(np.int64)
    lengths = take("<u4", n_docs).astype(np.float32)
    offsets = take("<u8", n_terms + 1).astype(np.int64)
    gaps = take("<u4", n_postings).astype(np.int64)
    tfs = np.minimum(take("<u4", n_postings), MAX_TF).astype(np.uint16)
    words = data[at:].decode("utf-8", errors="strict").split("\n") if n_terms else []
    if len(words) != n_terms:
        raise _damaged(seq, "lists its terms wrongly (count)")
    if offsets[0] != 0 or offsets[-1] != n_postings or np.any(np.diff(offsets) <= 0):
        raise _damaged(seq, "has term offsets that do not partition its postings")
    starts = offsets[:-1]
    inner = np.ones(n_postings, bool)
    inner[starts] = False
    if np.any(gaps[inner] == 0):
        raise _damaged(seq, "lists a record twice under one term")
    total = np.cumsum(gaps)
    docs = total - np.repeat(total[starts] - gaps[starts], np.diff(offsets))
    if n_postings and (docs.max() >= n_docs or tfs.min() < 1):
        raise _damaged(seq, "has postings outside its records")
    terms = dict(zip(words, range(n_terms), strict=True))
    if len(terms) != n_terms:
        raise _damaged(seq, "lists a term twice")
    return Part(frozenset([seq]), vids, lengths, terms, offsets, docs.astype(np.int32), tfs)


def merge_parts(parts: Iterable[Part]) -> Part:
    """One part holding the postings of ``parts`` (records keep their order, part after part).

    One pass: a generator of freshly parsed parts is merged one at a time, so only the merged
    vocabulary and one part's terms are held at once.
    """
    terms: dict[str, int] = {}
    seqs: set[int] = set()
    vids, lengths, rows, docs, tfs = [], [], [], [], []
    shift = 0
    for p in parts:
        global_row = np.fromiter((terms.setdefault(t, len(terms)) for t in p.terms), np.int32, len(p.terms))
        rows.append(np.repeat(global_row, np.diff(p.offsets)))
        docs.append(p.docs + np.int32(shift))
        tfs.append(p.tfs)
        vids.append(p.vector_ids)
        lengths.append(p.lengths)
        seqs |= p.seqs
        shift += len(p.vector_ids)
    row = np.concatenate(rows) if rows else np.zeros(0, np.int32)
    order = np.argsort(row, kind="stable")  # within a term, records stay ascending
    offsets = np.zeros(len(terms) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(row, minlength=len(terms)))
    return Part(
        frozenset(seqs),
        np.concatenate(vids) if vids else np.zeros(0, np.int64),
        np.concatenate(lengths) if lengths else np.zeros(0, np.float32),
        terms,
        offsets,
        np.concatenate(docs)[order] if docs else np.zeros(0, np.int32),
        np.concatenate(tfs)[order] if tfs else np.zeros(0, np.uint16),
    )


class LexicalIndex:
    """BM25 search over the lexicons of a store's live records segments.

    ``follow`` keeps it in step with the segments (loading new lexicons, dropping parts that hold
    a dropped segment); ``search`` scores. Liveness comes from the caller (the vector index knows
    which vector ids are live), cached while the caller's ``live_key`` stays the same. Not
    thread-safe: the engine serialises calls.
    """

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self._live: list[np.ndarray] | None = None  # per part: which records are live
        self._live_key: object = None
        self._stats: tuple[int, float] = (0, 0.0)  # live records, their average length

    def follow(self, seqs: Iterable[int], load: Callable[[list[int]], Mapping[int, bytes]]) -> None:
        """Hold exactly the segments ``seqs``, reading missing lexicons with ``load(seqs)``."""
        wanted = set(seqs)
        kept = [p for p in self.parts if p.seqs <= wanted]
        have = frozenset().union(*(p.seqs for p in kept))
        missing = sorted(wanted - have)
        if not missing and len(kept) == len(self.parts):
            return
        blobs = dict(load(missing)) if missing else {}
        if len(kept) + len(missing) <= MERGE_PARTS:
            self.parts = kept + [parse_lexicon(seq, blobs[seq]) for seq in missing]
        elif not kept:  # the first load: merged as they are read, to hold little at once
            self.parts = [merge_parts(parse_lexicon(seq, blobs.pop(seq)) for seq in missing)]
        else:  # tiers: small parts merge among themselves; the big one is merged only when outgrown
            parts = sorted(
                kept + [parse_lexicon(seq, blobs[seq]) for seq in missing], key=_size, reverse=True
            )
            big, rest = parts[0], parts[1:]
            self.parts = (
                [big, merge_parts(rest)] if _size(big) >= sum(map(_size, rest)) else [merge_parts(parts)]
            )
        self._live = None

    def _live_masks(self, key: object, is_live: Callable[[np.ndarray], np.ndarray]) -> list[np.ndarray]:
        if self._live is None or key != self._live_key:
            self._live = [is_live(p.vector_ids) for p in self.parts]
            self._live_key = key
            count = sum(int(m.sum()) for m in self._live)
            total = sum(float(p.lengths[m].sum()) for p, m in zip(self.parts, self._live, strict=True))
            self._stats = (count, total / count if count else 0.0)
        return self._live

    def search(
        self,
        query: str,
        k: int,
        *,
        live_key: object,
        is_live: Callable[[np.ndarray], np.ndarray],
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Vector ids and BM25 scores of the k best live records holding a query term, best first.

        ``allowed`` (sorted vector ids), when given, is the only records that may be returned;
        ties go to the lower vector id, so results are reproducible.
        """
        masks = self._live_masks(live_key, is_live)
        n_live, avg_len = self._stats
        words = list(dict.fromkeys(tokenize(query)))[:MAX_QUERY_TERMS]
        if not n_live or not words:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        found: list[list[tuple[np.ndarray, np.ndarray] | None]] = [
            [p.postings(w) for p in self.parts] for w in words
        ]
        scores: list[np.ndarray | None] = [None] * len(self.parts)
        for per_part in found:
            df = sum(int(m[hit[0]].sum()) for hit, m in zip(per_part, masks, strict=True) if hit is not None)
            if not df:
                continue
            idf = math.log(1.0 + (n_live - df + 0.5) / (df + 0.5))
            for i, hit in enumerate(per_part):
                if hit is None:
                    continue
                docs, counts = hit
                tf = counts.astype(np.float32)
                norm = K1 * (1.0 - B + B * self.parts[i].lengths[docs] / avg_len)
                if scores[i] is None:
                    scores[i] = np.zeros(len(self.parts[i].vector_ids), np.float32)
                scores[i][docs] += np.float32(idf) * tf * (K1 + 1.0) / (tf + norm)  # type: ignore[index]
        ids, vals = [], []
        for part, mask, s in zip(self.parts, masks, scores, strict=True):
            if s is None:
                continue
            keep = np.flatnonzero(mask & (s > 0))
            vids = part.vector_ids[keep]
            if allowed is not None:
                inside = np.isin(vids, allowed, assume_unique=True)
                keep, vids = keep[inside], vids[inside]
            ids.append(vids)
            vals.append(s[keep])
        if not ids:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        all_ids, all_scores = np.concatenate(ids), np.concatenate(vals)
        if len(all_ids) > k:
            top = np.argpartition(-all_scores, k - 1)[:k]
            cut = all_scores[top].min()  # keep every tie at the cut, then break ties by id
            top = np.flatnonzero(all_scores >= cut)
            all_ids, all_scores = all_ids[top], all_scores[top]
        order = np.lexsort((all_ids, -all_scores))[:k]
        return all_ids[order], all_scores[order]


def _size(part: Part) -> int:
    return len(part.vector_ids)


def _damaged(seq: int, what: str) -> CorruptData:
    return CorruptData(
        f"The lexicon of segment {seq} {what}. Run `lcmemvid rebuild STORE` to recreate the catalog from the videos."
    )


__all__ = [
    "B",
    "K1",
    "LexicalIndex",
    "Part",
    "build_lexicon",
    "keeps_lexicon",
    "lexicon_problems",
    "merge_parts",
    "parse_lexicon",
]
