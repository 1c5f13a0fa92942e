"""Effectiveness of runs against qrels with ranx: means, per-query values, TREC run files, a table.

Measures are ranx metric names; ``MEASURES`` are the paper's (NDCG@10, P@10) and the usual extras.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from taskvec_ir.outputs import atomic_path

MEASURES = ("ndcg@10", "precision@10", "ndcg@3", "map@100", "recall@100")
# ranx's measures; each takes an optional cut-off (@k) and relevance level (-l<n>); rbp a persistence (rbp.95).
RANX_MEASURES = (
    "hits",
    "hit_rate",
    "precision",
    "recall",
    "f1",
    "r-precision",
    "mrr",
    "map",
    "dcg",
    "dcg_burges",
    "ndcg",
    "ndcg_burges",
    "bpref",
    "rbp",
)
_MEASURE = re.compile(r"^(?P<name>[a-z_-]+?)(@\d+|\.\d+)?(-l\d+)?$")
Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def check_measures(measures: Sequence[str]) -> None:
    """Refuse a measure ranx does not know, before anything is computed."""
    if not measures:
        raise ValueError("measures: name at least one measure (e.g. ndcg@10)")
    for measure in measures:
        match = _MEASURE.match(measure)
        if match is None or match["name"] not in RANX_MEASURES:
            raise ValueError(
                f"measures: '{measure}' is not a ranx measure ({', '.join(RANX_MEASURES)}, "
                "optionally with @k, e.g. ndcg@10)"
            )


def evaluate_run(
    qrels: Qrels, run: Run, measures: Sequence[str] = MEASURES
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean and per-query values of ``measures``; a query of the qrels without results scores 0.

    Queries of the run that have no qrels are not evaluated (as trec_eval does).
    """
    from ranx import Qrels as RanxQrels
    from ranx import Run as RanxRun
    from ranx import evaluate

    judged = {q: dict(docs) for q, docs in qrels.items() if docs}
    if not judged:
        raise ValueError("the qrels hold no judgement: nothing to evaluate")
    ranx_qrels = RanxQrels(judged)
    ranx_run = RanxRun({q: dict(docs) for q, docs in run.items() if docs and q in judged}).make_comparable(ranx_qrels)
    evaluate(ranx_qrels, ranx_run, list(measures))
    means = {m: float(ranx_run.mean_scores[m]) for m in measures}
    per_query = {m: {q: float(v) for q, v in ranx_run.scores[m].items()} for m in measures}
    return means, per_query


def save_trec_run(run: Run, path: Path, tag: str) -> None:
    """Write ``run`` in TREC format (query Q0 doc rank score tag), best first, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as out:
        for query_id, docs in run.items():
            ranked = sorted(docs.items(), key=lambda item: (-item[1], item[0]))
            for rank, (doc_id, score) in enumerate(ranked, start=1):
                out.write(f"{query_id} Q0 {doc_id} {rank} {score:.6f} {tag}\n")


def format_table(results: Mapping[str, Mapping[str, float]], measures: Sequence[str] = MEASURES) -> str:
    """A plain-text table: one row per system, one column per measure."""
    width = max(len(name) for name in results)
    header = f"{'system':<{width}}  " + "  ".join(f"{m:>12}" for m in measures)
    rows = [
        f"{name:<{width}}  " + "  ".join(f"{values[m]:>12.4f}" for m in measures) for name, values in results.items()
    ]
    return "\n".join([header, *rows])
