"""Choosing α and λ without a dev split: by cross-validation over the evaluated queries, or with no relevance
label at all (the zero-shot case the paper leaves open).

A selection is a job setting (``selection=<method>``, ``conf/selection/``): the job chooses α from
``selection.alphas`` and λ from ``lam.grid``, then evaluates its systems once on its split. Every setting
considered is scored through the experiment's cache, so the α values a dev sweep scored cost nothing here.

- ``cross_validation``: k seeded folds of the evaluated queries; each fold's α and λ maximise the objective on
  the other folds' queries and labels and are evaluated on its own (as PyTerrier's KFold): a fold's labels are
  never read to choose its setting.
- ``pseudo_queries``: queries made from the corpus as ``adapt``'s inverse cloze makes them: a document's title,
  or one of its sentences, whose one relevant document is the rest of that document. Their BM25 candidates
  (the source scored without its query, ``Retriever.score_text``) are re-ranked and fused as usual; α and λ
  maximise the objective on them.
- ``stability``: how much the fused ranking of each unlabeled query agrees with those at the neighbouring α
  values (top-weighted Kendall τ, ``scipy.stats.weightedtau``); the most stable α is chosen, in the spirit of
  AdaMMS's generation consistency (CVPR 2025).
- ``nqc``: Normalized Query Commitment (Shtok et al., TOIS 2012), a query-performance predictor: the standard
  deviation of a query's top ``nqc_k`` fused scores over the mean score of its candidates (standing in for
  the corpus's score: only candidates are scored). α maximises its mean over the unlabeled queries.

Neither of the last two can choose λ, so both fuse at λ = ``selection.lam``: more BM25 weight always makes
runs agree more, and NQC across λ compares BM25's score distribution with the model's (on SciFact's dev
queries, for the demo triple, it chose λ = 1: BM25 alone).

The label-free methods read the queries of ``selection.queries`` (dev), or those of the evaluated split when
the dataset has no such split (its queries, never its labels), and no qrels at all.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from taskvec_ir.config.schema import Config, PseudoQueriesConfig
from taskvec_ir.config.systems import TASK_ARITHMETIC
from taskvec_ir.errors import UserError
from taskvec_ir.ir import data, evaluation
from taskvec_ir.pipeline.experiment import Experiment, Run
from taskvec_ir.pipeline.first_stage import dataset_identity
from taskvec_ir.storage.cache import CACHE_VERSION, cache_key
from taskvec_ir.storage.outputs import atomic_path

log = logging.getLogger(__name__)
Setting = tuple[float, float]  # (α, λ)
REST = "#rest"  # a pseudo-query's source document without the query, as a candidate id


@dataclass(frozen=True)
class Fold:
    """α and λ for some of the evaluated queries (``queries``; None: all of them)."""

    queries: tuple[str, ...] | None
    alpha: float
    lam: float


@dataclass
class Choice:
    """What a selection chose, and the criterion it maximised at every setting it considered (``curve``: rows
    of fold, α, λ and value; fold is None outside cross-validation)."""

    method: str
    criterion: str
    folds: list[Fold]
    curve: list[dict]

    @property
    def alpha(self) -> float:
        return statistics.fmean(fold.alpha for fold in self.folds)

    @property
    def lam(self) -> float:
        return statistics.fmean(fold.lam for fold in self.folds)

    def describe(self) -> dict:
        return {
            "method": self.method,
            "criterion": self.criterion,
            "alpha": self.alpha,
            "lam": self.lam,
            "folds": [
                {"queries": None if f.queries is None else len(f.queries), "alpha": f.alpha, "lam": f.lam}
                for f in self.folds
            ],
            "curve": self.curve,
        }


def best_setting(values: Mapping[Setting, float]) -> Setting:
    """The setting of highest value; ties go to the smaller α, then the smaller λ (the smaller change to ΘT)."""
    return max(values, key=lambda setting: (values[setting], -setting[0], -setting[1]))


def setting_runs(experiment: Experiment, split: str, alphas: Sequence[float], lams: Sequence[float]):
    """(α, λ, fused run of task arithmetic) for every setting: one set of model scores per α (cached)."""
    for alpha in alphas:
        setting = experiment.spec.merge.at(alpha)
        for lam in lams:
            yield alpha, lam, experiment.system_run(split, TASK_ARITHMETIC, lam, setting)


# -- cross-validation --------------------------------------------------------------------------------------------
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
    for alpha, lam, run in runs:
        per_query = evaluation.evaluate_run(qrels, run, [measure])[1][measure]
        for i, queries in enumerate(training):
            values[i][alpha, lam] = statistics.fmean(per_query[q] for q in queries)
    chosen = [Fold(tuple(fold), *best_setting(values[i])) for i, fold in enumerate(folds)]
    curve = [
        {"fold": i, "alpha": alpha, "lam": lam, "value": value}
        for i, fold_values in enumerate(values)
        for (alpha, lam), value in fold_values.items()
    ]
    return Choice("cross_validation", f"{measure} on the other {len(folds) - 1} folds", chosen, curve)


# -- label-free criteria -----------------------------------------------------------------------------------------
def nqc(scores: Mapping[str, float], k: int) -> float | None:
    """NQC of one query's scores: std of the top ``k`` over |mean of all| (None when that mean is 0)."""
    values = sorted(scores.values(), reverse=True)
    mean = statistics.fmean(values) if values else 0.0
    if mean == 0:
        return None
    return statistics.pstdev(values[:k]) / abs(mean)


def mean_nqc(run: Run, k: int) -> float:
    """NQC averaged over the queries it is defined for (0 when none)."""
    values = [value for scores in run.values() if (value := nqc(scores, k)) is not None]
    return statistics.fmean(values) if values else 0.0


def rank_agreement(first: Run, second: Run) -> float:
    """Mean top-weighted Kendall τ between two runs' scores of each query's documents (a document one run
    lacks scores 0 there); queries with fewer than two documents, or constant scores, are left out."""
    from scipy.stats import weightedtau

    values = []
    for query in first.keys() & second.keys():
        docs = sorted(first[query].keys() | second[query].keys())
        if len(docs) < 2:
            continue
        tau = weightedtau([first[query].get(d, 0.0) for d in docs], [second[query].get(d, 0.0) for d in docs])
        if math.isfinite(tau.statistic):
            values.append(tau.statistic)
    return statistics.fmean(values) if values else 1.0


def stability(runs: Mapping[float, Run]) -> dict[float, float]:
    """Each α's mean rank agreement with the runs at its neighbouring α values (one neighbour at the ends)."""
    alphas = sorted(runs)
    if len(alphas) < 2:
        raise UserError("selection.alphas: stability compares neighbouring α values: give at least two")
    between = [rank_agreement(runs[a], runs[b]) for a, b in zip(alphas, alphas[1:], strict=False)]
    # between[j] compares alphas[j] and alphas[j + 1]: α_i's neighbours are at j = i − 1 and j = i.
    return {
        alpha: statistics.fmean(between[j] for j in (i - 1, i) if 0 <= j < len(between))
        for i, alpha in enumerate(alphas)
    }


# -- pseudo-queries ------------------------------------------------------------------------------------------------
def pseudo_queries(experiment: Experiment, settings: PseudoQueriesConfig) -> str:
    """Add the corpus's pseudo-queries to ``experiment`` as a split (queries, one relevant document each, BM25
    candidates, texts), cached; returns its name. Reads documents only."""
    spec = experiment.spec
    key = cache_key(
        version=CACHE_VERSION,
        dataset=dataset_identity(spec.dataset),
        language=spec.dataset.language,
        retriever=spec.retriever.identity(),
        settings=asdict(settings),
    )
    made = experiment.cache.json("pseudo_queries", key, lambda: _make_pseudo_queries(experiment, settings))
    name = f"pseudo-queries ({len(made['queries'])})"
    qrels = {query: {doc: 1} for query, doc in made["relevant"].items()}
    experiment.first_stage.add_split(name, data.Split(made["queries"], qrels), made["candidates"], made["texts"])
    return name


def _make_pseudo_queries(experiment: Experiment, settings: PseudoQueriesConfig) -> dict:
    from taskvec_ir.models.adapt import document_pairs

    dataset, top_k = experiment.spec.dataset, experiment.spec.retriever.top_k
    # Twice the documents: some give no pair (a short title, a single sentence).
    documents = data.sample_doc_fields(dataset, 2 * settings.count, settings.seed)
    ids = list(documents)
    try:
        pairs = document_pairs(list(documents.values()), settings.source, settings.count, settings.seed)
    except ValueError as error:  # its message names adapt's key
        raise UserError(str(error).replace("adapt.pair_source", "selection.pseudo_queries.source")) from None
    queries, relevant, rest_texts = {}, {}, {}
    for document in pairs:
        for query in document.queries:
            text, rest = document.pair(query)
            query_id = f"pq{len(queries)}"
            queries[query_id], relevant[query_id] = text, ids[document.document] + REST + str(query)
            rest_texts[relevant[query_id]] = rest
    log.info("Pseudo-queries: %d from %d documents of %s (%s)", len(queries), len(ids), dataset.name, settings.source)
    bm25 = experiment.first_stage.bm25()
    found = bm25.search(queries, top_k + 1)
    candidates = {}
    for query_id, ranking in found.items():
        source = relevant[query_id].split(REST)[0]
        ranking = {doc: score for doc, score in ranking.items() if doc != source}
        score = bm25.score_text(queries[query_id], rest_texts[relevant[query_id]])
        if score > 0:  # as BM25 would find the source with the query taken out of it
            ranking[relevant[query_id]] = score
        best = sorted(ranking.items(), key=lambda item: (item[1], item[0]), reverse=True)[:top_k]
        candidates[query_id] = dict(best)
    listed = {doc for ranking in candidates.values() for doc in ranking if REST not in doc}
    texts = {**data.doc_texts(dataset, listed), **rest_texts}
    return {"queries": queries, "relevant": relevant, "candidates": candidates, "texts": texts}


# -- choosing ------------------------------------------------------------------------------------------------------
def unlabeled_queries(experiment: Experiment, cfg: Config) -> str:
    """The label-free methods' query set, added to ``experiment`` without qrels; returns its name."""
    selection, dataset = cfg.selection, cfg.dataset
    split = selection.queries if selection.queries in dataset.splits else cfg.split
    name = f"{split} (unlabeled)"
    experiment.first_stage.add_split(name, data.Split(data.load_queries(dataset, split), {}))
    return name


def choose(experiment: Experiment, cfg: Config) -> Choice:
    """α and λ as ``cfg.selection`` chooses them (see the module docstring)."""
    selection, objective = cfg.selection, cfg.objective
    alphas, lams = sorted(set(selection.alphas)), list(cfg.lam.grid)
    if selection.method == "cross_validation":
        split = experiment.split(cfg.split)
        folds = kfold(split.queries, selection.folds, selection.seed)
        return cross_validate(setting_runs(experiment, cfg.split, alphas, lams), split.qrels, folds, objective)
    if selection.method == "pseudo_queries":
        name = pseudo_queries(experiment, selection.pseudo_queries)
        qrels = experiment.split(name).qrels
        values = {
            (alpha, lam): evaluation.evaluate_run(qrels, run, [objective])[0][objective]
            for alpha, lam, run in setting_runs(experiment, name, alphas, lams)
        }
        criterion = f"{objective} on {len(qrels)} pseudo-queries"
    elif selection.method == "nqc":
        name = unlabeled_queries(experiment, cfg)
        values = {
            (alpha, lam): mean_nqc(run, selection.nqc_k)
            for alpha, lam, run in setting_runs(experiment, name, alphas, [selection.lam])
        }
        criterion = f"NQC@{selection.nqc_k} on {name}"
    else:
        name, lam = unlabeled_queries(experiment, cfg), selection.lam
        runs = {alpha: run for alpha, _, run in setting_runs(experiment, name, alphas, [lam])}
        values = {(alpha, lam): value for alpha, value in stability(runs).items()}
        criterion = f"rank agreement with neighbouring α on {name}"
    alpha, lam = best_setting(values)
    curve = [{"fold": None, "alpha": a, "lam": lam_, "value": v} for (a, lam_), v in values.items()]
    return Choice(selection.method, criterion, [Fold(None, alpha, lam)], curve)


def evaluate_choice(
    experiment: Experiment,
    split: str,
    systems: Sequence[str],
    choice: Choice,
    measures: Sequence[str],
    runs_dir: Path | None = None,
):
    """means[system][measure] and per_query[system][measure][query] of ``split``, each fold's queries run at
    its setting (every system at the fold's λ, Θ' at its α); TREC runs into ``runs_dir``."""
    qrels = experiment.split(split).qrels
    means, per_query = {}, {}
    for system in systems:
        run = {}
        for fold in choice.folds:
            fused = experiment.system_run(split, system, fold.lam, experiment.spec.merge.at(fold.alpha))
            run.update(fused if fold.queries is None else {q: fused[q] for q in fold.queries if q in fused})
        if runs_dir is not None:
            evaluation.save_trec_run(run, runs_dir / f"{split}.{system}.trec", system)
        means[system], per_query[system] = evaluation.evaluate_run(qrels, run, measures)
    return means, per_query


def curve_plot(choice: Choice, path: Path) -> None:
    """The criterion against α at each fold's chosen λ, the chosen α marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for index, fold in enumerate(choice.folds):
        key = index if choice.method == "cross_validation" else None
        points = sorted((r["alpha"], r["value"]) for r in choice.curve if r["fold"] == key and r["lam"] == fold.lam)
        label = f"fold {index + 1}, λ = {fold.lam:g}" if key is not None else f"λ = {fold.lam:g}"
        (line,) = ax.plot(*zip(*points, strict=True), marker="o", label=label)
        chosen = [value for alpha, value in points if alpha == fold.alpha]
        ax.scatter([fold.alpha], chosen, s=160, facecolors="none", edgecolors=line.get_color(), zorder=4)
    ax.set_xlabel("α")
    ax.set_ylabel(choice.criterion)
    ax.set_title(f"selection={choice.method} (chosen α circled)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
