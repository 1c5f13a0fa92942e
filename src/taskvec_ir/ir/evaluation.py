"""Effectiveness of runs against qrels: means, per-query values, TREC run files, a table.

The measures are trec_eval's (through ir_measures and pytrec_eval): the field's reference implementation,
with its tie rule (equal scores rank in descending order of document id), and imported in a fraction of a
second, which matters because every trial of a sweep is a new process (ranx, used before, spent ~20 s per
process compiling its numba containers). Measures are named as in configs, ``metrics.json`` and W&B:
``ndcg@10``, ``precision@10``, ``map@100``, ``recall@100``, ``mrr``, ...; ``-l<n>`` sets the relevance level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from taskvec_ir.config.measures import MEASURES, trec_measure
from taskvec_ir.errors import UserError
from taskvec_ir.storage.outputs import atomic_path

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def evaluate_run(
    qrels: Qrels, run: Run, measures: Sequence[str] = MEASURES
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean and per-query values of ``measures``; a query of the qrels without results scores 0.

    Queries of the run that have no qrels are not evaluated (as trec_eval does).
    """
    import ir_measures
    import numpy as np

    judged = {q: {d: int(r) for d, r in docs.items()} for q, docs in qrels.items() if docs}
    if not judged:
        raise UserError("the qrels hold no judgement: nothing to evaluate")
    wanted: dict = {}  # ir_measures' measure -> the names it was asked for by (ndcg@10 and nDCG@10 are one)
    for m in measures:
        wanted.setdefault(trec_measure(m), []).append(m)
    per_query = {m: dict.fromkeys(judged, 0.0) for m in measures}
    ranked = {q: {d: float(s) for d, s in docs.items()} for q, docs in run.items() if docs and q in judged}
    # trec_eval computes what it can; the rest (e.g. Judged@k) by the ir_measures provider that does. Those break
    # equal scores by ascending document id: they get the ranking in trec_eval's order, as strictly decreasing scores.
    trec = [m for m in wanted if ir_measures.pytrec_eval.supports(m)]
    others = [m for m in wanted if m not in trec]
    evaluators = [(ir_measures.pytrec_eval.evaluator(trec, judged), ranked)] if trec else []
    if others:
        ordered = {
            q: {d: float(-rank) for rank, (d, _) in enumerate(trec_eval_order(docs))} for q, docs in ranked.items()
        }
        evaluators.append((ir_measures.evaluator(others, judged), ordered))
    for evaluator, scored in evaluators:
        for metric in evaluator.iter_calc(scored):
            for name in wanted[metric.measure]:
                per_query[name][metric.query_id] = float(metric.value)
    means = {m: float(np.mean(list(values.values()))) for m, values in per_query.items()}
    return means, per_query


def trec_eval_order(docs: Mapping[str, float]) -> list[tuple[str, float]]:
    """A query's (document, score) pairs as trec_eval ranks them: best first, equal scores in descending order of
    document id."""
    return sorted(docs.items(), key=lambda item: (item[1], item[0]), reverse=True)


def save_trec_run(run: Run, path: Path, tag: str) -> None:
    """Write ``run`` in TREC format (query Q0 doc rank score tag), atomically, ranked as trec_eval ranks it:
    best first, equal scores in descending order of document id. Scores are written in full (the shortest
    text that reads back as the same float), so a run read back (``retriever=run_file``) is the same run."""
    with atomic_path(path) as tmp, open(tmp, "w") as out:
        for query_id, docs in run.items():
            for rank, (doc_id, score) in enumerate(trec_eval_order(docs), start=1):
                out.write(f"{query_id} Q0 {doc_id} {rank} {float(score)!r} {tag}\n")


def format_table(results: Mapping[str, Mapping[str, float]], measures: Sequence[str] = MEASURES) -> str:
    """A plain-text table: one row per system, one column per measure."""
    width = max(len(name) for name in results)
    header = f"{'system':<{width}}  " + "  ".join(f"{m:>12}" for m in measures)
    rows = [
        f"{name:<{width}}  " + "  ".join(f"{values[m]:>12.4f}" for m in measures) for name, values in results.items()
    ]
    return "\n".join([header, *rows])
