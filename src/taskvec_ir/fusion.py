"""Fusing the first-stage and the re-ranker's scores.

``fused = λ·minmax(BM25) + (1 − λ)·minmax(model)``, min-max per query: **λ weights BM25**, so λ = 0 is the
re-ranker alone and λ = 1 is BM25 alone. This is ranx's ``wsum`` fusion with ``min-max`` normalisation.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

Run = Mapping[str, Mapping[str, float]]


def check_lambda(lam: float) -> float:
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or math.isnan(lam) or not 0 <= lam <= 1:
        raise ValueError(f"lam.value: {lam!r} must be a number in [0, 1] (the weight of BM25 in the fusion)")
    return float(lam)


def fuse(bm25: Run, model: Run, lam: float) -> dict[str, dict[str, float]]:
    """λ·minmax(bm25) + (1 − λ)·minmax(model), per query, over the union of both runs' documents."""
    from numba.core.errors import NumbaTypeSafetyWarning
    from ranx import Run as RanxRun
    from ranx import fuse as ranx_fuse

    lam = check_lambda(lam)
    runs = [RanxRun(_without_empty(bm25)), RanxRun(_without_empty(model))]
    with warnings.catch_warnings():
        # ranx's numba kernels warn about a uint64 -> int64 index cast that cannot overflow here.
        warnings.simplefilter("ignore", NumbaTypeSafetyWarning)
        fused = ranx_fuse(runs=runs, norm="min-max", method="wsum", params={"weights": [lam, 1 - lam]})
    return {q: {d: float(s) for d, s in docs.items()} for q, docs in fused.to_dict().items()}


def _without_empty(run: Run) -> dict[str, dict[str, float]]:
    # ranx cannot build a run from a query with no documents; such a query simply has no results.
    return {q: dict(docs) for q, docs in run.items() if docs}
