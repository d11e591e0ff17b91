"""Retrieval metrics from ranked id lists and relevant sets: hit@1, hit@5, MRR@10, nDCG@10.

Relevance is binary. A ranked list is read best first; a repeated id counts once, at its first
place. Per query:

- hit@k: 1 when a relevant id is among the first k, else 0;
- MRR@10: 1 / the rank of the first relevant id within the first 10, else 0;
- nDCG@10: DCG = sum of 1 / log2(rank + 1) over the relevant ids within the first 10 (rank from
  1), divided by the DCG of an ideal list, which puts min(|relevant|, 10) relevant ids first.

``aggregate`` averages them overall (every query weighs the same), per query kind, and over the
kinds (each kind weighs the same: "macro").

>>> scores = score(["a", "b", "c"], {"b"})
>>> scores["hit@1"], scores["hit@5"], scores["mrr@10"], round(scores["ndcg@10"], 4)
(0.0, 1.0, 0.5, 0.6309)
>>> score([], {"b"})["ndcg@10"]
0.0
>>> agg = aggregate([("identifier", score(["x"], {"x"})), ("paraphrase", score(["y"], {"x"}))])
>>> agg["overall"]["hit@1"], agg["by_kind"]["identifier"]["n"], agg["macro"]["mrr@10"]
(0.5, 1, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence

__all__ = ["METRICS", "aggregate", "dcg", "hit_at", "mrr_at", "ndcg_at", "score"]

METRICS = ("hit@1", "hit@5", "mrr@10", "ndcg@10")


def _unique(ranked: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ranked))


def hit_at(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1.0 when one of the first ``k`` ids is relevant.

    >>> hit_at(["a", "b"], {"b"}, 1), hit_at(["a", "b"], {"b"}, 2)
    (0.0, 1.0)
    """
    return 1.0 if any(i in relevant for i in _unique(ranked)[:k]) else 0.0


def mrr_at(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """The reciprocal rank of the first relevant id among the first ``k``, else 0.

    >>> mrr_at(["a", "a", "b"], {"b"})  # a repeat does not push b down
    0.5
    """
    for rank, i in enumerate(_unique(ranked)[:k], start=1):
        if i in relevant:
            return 1.0 / rank
    return 0.0


def dcg(gains: Iterable[float]) -> float:
    """Discounted cumulative gain of gains listed from rank 1."""
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, start=1))


def ndcg_at(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """Binary nDCG@k: the list's DCG over that of the ideal list.

    >>> ndcg_at(["x", "y"], {"x", "y"}), ndcg_at(["q"], {"x"})
    (1.0, 0.0)
    """
    if not relevant:
        return 0.0
    got = dcg(1.0 if i in relevant else 0.0 for i in _unique(ranked)[:k])
    ideal = dcg([1.0] * min(len(relevant), k))
    return got / ideal


def score(ranked: Sequence[str], relevant: Collection[str]) -> dict[str, float]:
    """The four metrics of one query."""
    return {
        "hit@1": hit_at(ranked, relevant, 1),
        "hit@5": hit_at(ranked, relevant, 5),
        "mrr@10": mrr_at(ranked, relevant, 10),
        "ndcg@10": ndcg_at(ranked, relevant, 10),
    }


def _mean(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {m: sum(r[m] for r in rows) / len(rows) if rows else 0.0 for m in METRICS}
    out["n"] = len(rows)
    return out


def aggregate(per_query: Iterable[tuple[str, Mapping[str, float]]]) -> dict[str, dict]:
    """Means overall, per kind and over kinds, from ``(kind, score(...))`` pairs.

    Returns:
        ``{"overall": {metric: mean, "n": queries}, "macro": {...}, "by_kind": {kind: {...}}}``
    """
    rows = list(per_query)
    kinds: dict[str, list[Mapping[str, float]]] = {}
    for kind, s in rows:
        kinds.setdefault(kind, []).append(s)
    by_kind = {kind: _mean(got) for kind, got in kinds.items()}
    macro: dict[str, float] = {
        m: sum(k[m] for k in by_kind.values()) / len(by_kind) if by_kind else 0.0 for m in METRICS
    }
    macro["n"] = len(by_kind)
    return {"overall": _mean([s for _, s in rows]), "macro": macro, "by_kind": by_kind}
