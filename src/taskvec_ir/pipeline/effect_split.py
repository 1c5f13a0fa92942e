"""Where τ's effect goes (``analyses: [effect_split]``, under retriever=dense): Δ(α), task arithmetic at α less ΘT,
on the same queries three ways: the model ranking the whole corpus (``dense``), the model alone re-ranking BM25's
top k (``reranked``: fused at λ = 0, the model's order), and re-ranked then fused with BM25 at λ (``fused``). From
dense to re-ranked the candidate set takes its share of the effect, from re-ranked to fused the fusion does
(docs/analyses.md). Every run is read from the cache where a job made it before.
"""

from __future__ import annotations

from collections.abc import Sequence

from taskvec_ir.config.systems import TASK_ARITHMETIC
from taskvec_ir.ir import evaluation, fusion
from taskvec_ir.pipeline.model_scores import system_weights
from taskvec_ir.pipeline.pipeline import Pipeline

MODES = ("dense", "reranked", "fused")
DELTA_COLUMNS = ("alpha", "lam", *MODES, "candidates", "fusion", "kept")  # a row of ``deltas``
NO_EFFECT = 1e-12  # |Δ dense| at most this: no effect to share out


def shares(dense: float, reranked: float, fused: float) -> dict[str, float | None]:
    """The shares of the dense effect ``dense`` that the candidate set takes (``candidates``: dense − reranked),
    that fusion takes (``fusion``: reranked − fused) and that is left fused (``kept``), each over ``dense``: they
    sum to 1. None where there is no dense effect to share."""
    if abs(dense) <= NO_EFFECT:
        return dict.fromkeys(("candidates", "fusion", "kept"))
    return {"candidates": (dense - reranked) / dense, "fusion": (reranked - fused) / dense, "kept": fused / dense}


def effect_split(
    pipeline: Pipeline, split: str, alphas: Sequence[float], lambdas: Sequence[float], measures: Sequence[str]
) -> dict:
    """``measures`` of task arithmetic at every α (ΘT's α = 0 among them) in each mode (``rows``; the fused ones at
    each λ of ``lambdas``), and per α ≠ 0 and λ the Δ against ΘT in each mode with the shares of the first
    measure's (``deltas``)."""
    qrels, candidates = pipeline.split(split).qrels, pipeline.candidates(split)
    grid, measure = sorted({0.0, *alphas}), measures[0]
    means: dict[tuple[float, str, float | None], dict[str, float]] = {}
    for alpha in grid:
        setting = pipeline.spec.merge.at(alpha)
        scores = pipeline.scores(split, system_weights(TASK_ARITHMETIC, setting))
        runs = {
            ("dense", None): pipeline.system_run(split, TASK_ARITHMETIC, None, setting),
            ("reranked", 0.0): fusion.fuse(candidates, scores, 0.0),
            **{("fused", lam): fusion.fuse(candidates, scores, lam) for lam in lambdas},
        }
        for (mode, lam), run in runs.items():
            means[alpha, mode, lam] = evaluation.evaluate_run(qrels, run, measures)[0]
    deltas = []
    for alpha in (a for a in grid if a != 0.0):
        for lam in lambdas:
            keys = {"dense": ("dense", None), "reranked": ("reranked", 0.0), "fused": ("fused", lam)}
            delta = {mode: means[(alpha, *key)][measure] - means[(0.0, *key)][measure] for mode, key in keys.items()}
            deltas.append({"alpha": alpha, "lam": lam, **delta, **shares(*(delta[mode] for mode in MODES))})
    return {
        "split": split,
        "measure": measure,
        "top_k": pipeline.spec.retriever.top_k,
        "alphas": grid,
        "lams": list(lambdas),
        "rows": [{"alpha": a, "mode": mode, "lam": lam, **values} for (a, mode, lam), values in means.items()],
        "deltas": deltas,
    }


def effect_split_lines(found: dict) -> list[str]:
    """One line per α and λ: ``effect split (ndcg@10, Δ against ΘT) at α 0.5: dense -0.0430, BM25's top 100
    re-ranked by the model alone -0.0290, fused at λ 0.3 -0.0120: the candidate set takes 33%, fusion 40%, 28%
    left``."""
    lines = []
    for row in found["deltas"]:
        taken = (
            "no dense effect to share"
            if row["kept"] is None
            else f"the candidate set takes {100 * row['candidates']:.0f}%, fusion {100 * row['fusion']:.0f}%, "
            f"{100 * row['kept']:.0f}% left"
        )
        lines.append(
            f"effect split ({found['measure']}, Δ against ΘT) at α {row['alpha']:g}: dense {row['dense']:+.4f}, "
            f"BM25's top {found['top_k']} re-ranked by the model alone {row['reranked']:+.4f}, fused at λ "
            f"{row['lam']:g} {row['fused']:+.4f}: {taken}"
        )
    return lines


def effect_split_summary(found: dict) -> dict:
    """W&B summary values: ``effect_split/<α>/<λ>/<dense|reranked|fused|candidates|fusion|kept>``."""
    return {
        f"effect_split/{row['alpha']:g}/{row['lam']:g}/{key}": row[key]
        for row in found["deltas"]
        for key in DELTA_COLUMNS[2:]
        if row[key] is not None
    }
