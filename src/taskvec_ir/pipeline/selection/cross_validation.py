"""Cross-validation over the evaluated queries, as PyTerrier's KFold: each fold's α and λ maximise the objective on
the other folds' queries and labels, so a fold's own labels are never read to choose its setting."""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterable, Mapping, Sequence

from taskvec_ir.errors import UserError
from taskvec_ir.ir import evaluation
from taskvec_ir.pipeline.pipeline import Run
from taskvec_ir.pipeline.selection.choice import Choice, Evidence, Fold, Setting, best_setting


def kfold(query_ids: Iterable[str], folds: int, seed: int) -> list[tuple[str, ...]]:
    """``folds`` disjoint folds of ``query_ids`` of (nearly) equal size, drawn with ``seed``."""
    ids = sorted(query_ids)
    if len(ids) < folds:
        raise UserError(f"selection.folds: {folds} folds of {len(ids)} queries: use at most {len(ids)}")
    random.Random(seed).shuffle(ids)
    return [tuple(sorted(ids[i::folds])) for i in range(folds)]


def cross_validate(
    runs: Iterable[tuple[float, float, Run]], qrels: Mapping, folds: Sequence[Sequence[str]], measure: str
) -> Choice:
    """Each fold's (α, λ): the setting of ``runs`` maximising the mean of ``measure`` over the other folds'
    judged queries. Each setting is evaluated once, per query; a fold's choice averages only the other folds'
    values, so its own labels cannot move it."""
    judged = [q for q, docs in qrels.items() if docs]  # the queries evaluate_run averages over
    training = [[q for q in judged if q not in set(fold)] for fold in folds]
    if not all(training):
        raise UserError("cross-validation: a fold's other folds hold no judged query: use fewer selection.folds")
    values: list[dict[Setting, float]] = [{} for _ in folds]
    per_setting = {}
    for alpha, lam, run in runs:
        per_setting[alpha, lam] = per_query = evaluation.evaluate_run(qrels, run, [measure])[1][measure]
        for i, queries in enumerate(training):
            values[i][alpha, lam] = statistics.fmean(per_query[q] for q in queries)
    chosen = [Fold(tuple(fold), *best_setting(values[i])) for i, fold in enumerate(folds)]
    curve = [
        {"fold": i, "alpha": alpha, "lam": lam, "value": value, "undefined": 0}
        for i, fold_values in enumerate(values)
        for (alpha, lam), value in fold_values.items()
    ]
    criterion = f"{measure} on the other {len(folds) - 1} folds"
    return Choice("cross_validation", criterion, chosen, curve, evidence=Evidence(per_setting, training))
