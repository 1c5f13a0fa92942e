"""Fusing the first-stage and the re-ranker's scores.

``fused = λ·minmax(BM25) + (1 − λ)·minmax(model)``, min-max per query: **λ weights BM25**, so λ = 0 is the
re-ranker alone and λ = 1 is BM25 alone. A document missing from one run gets 0 from it. This is ranx's
``wsum`` fusion with ``min-max`` normalisation (and gives the same numbers), written out because ranx compiles
its numba containers in every process (~20 s), which every trial job of a sweep would pay for a formula.
"""

from __future__ import annotations

from collections.abc import Mapping

from taskvec_ir.config.checks import check_lambda

Run = Mapping[str, Mapping[str, float]]
_FLAT = 1e-9  # ranx's floor on max − min: a query whose scores are all equal normalises to 0


def min_max(scores: Mapping[str, float]) -> dict[str, float]:
    low, high = min(scores.values()), max(scores.values())
    span = max(high - low, _FLAT)
    return {doc: (score - low) / span for doc, score in scores.items()}


def fuse(bm25: Run, model: Run, lam: float) -> dict[str, dict[str, float]]:
    """λ·minmax(bm25) + (1 − λ)·minmax(model), per query, over the union of both runs' documents; a query
    with no documents in either run has no results."""
    lam = check_lambda(lam)
    fused = {}
    for query in dict.fromkeys([*bm25, *model]):
        first, second = (min_max(run[query]) if run.get(query) else {} for run in (bm25, model))
        if first or second:
            fused[query] = {d: lam * first.get(d, 0.0) + (1 - lam) * second.get(d, 0.0) for d in {**first, **second}}
    return fused
