"""The labelled retrieval set for lexical, vector and hybrid search (issue 16), and its metrics.

``make_dataset.py`` writes ``dataset.json`` (kept in the repository); ``metrics.py`` scores
ranked id lists against it; ``benchmarks/bench_hybrid.py`` runs the searches.
"""
