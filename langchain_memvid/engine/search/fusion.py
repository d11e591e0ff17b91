"""Hybrid ranking: weighted reciprocal rank fusion of a lexical and a vector ranking.

Each ranking gives a record ``weight / (RRF_K + rank)`` (rank 1 is the best); a record's fused
score is the sum over the rankings that hold it. RRF needs no calibration between BM25 scores
and similarities, which live on unrelated scales; ``RRF_K = 60`` is the constant of Cormack et
al. (2009), also used by LangChain's ``EnsembleRetriever`` and memvid v2.

>>> [(vid, round(score, 5)) for vid, score in fuse([([7, 8], 0.5), ([8, 9], 0.5)], k=3)]
[(8, 0.01626), (7, 0.0082), (9, 0.00806)]
"""

from __future__ import annotations

from collections.abc import Sequence

RRF_K = 60
# The lexical ranking's default weight, chosen by measurement (benchmarks/bench_hybrid.py: the
# smallest weight in the sweep that met every target, hit@1 >= 0.9 on exact-identifier queries
# included; 0.5 ranked paraphrases a little better and identifiers worse).
LEXICAL_WEIGHT = 0.7


def fuse(
    rankings: Sequence[tuple[Sequence[int], float]], k: int, rrf_k: int = RRF_K
) -> list[tuple[int, float]]:
    """The k best ids by fused score, best first; ties go to the id ranked best in any ranking."""
    scores: dict[int, float] = {}
    best: dict[int, int] = {}
    for ids, weight in rankings:
        for rank, vid in enumerate(ids, start=1):
            scores[vid] = scores.get(vid, 0.0) + weight / (rrf_k + rank)
            best[vid] = min(best.get(vid, rank), rank)
    return sorted(scores.items(), key=lambda item: (-item[1], best[item[0]], item[0]))[:k]


__all__ = ["LEXICAL_WEIGHT", "RRF_K", "fuse"]
