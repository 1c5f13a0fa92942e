"""The selection methods run: each scores the grid of α (and λ) its way through the pipeline's cache and
chooses (``choose``), and gives each fused baseline its own λ by the same procedure (``tune_baseline_lambdas``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from itertools import product

from taskvec_ir.config.composed import Config
from taskvec_ir.config.systems import BM25, TASK_ARITHMETIC
from taskvec_ir.ir import evaluation
from taskvec_ir.ir.documents import join_fields, sample_doc_fields
from taskvec_ir.ir.splits import Split, load_queries
from taskvec_ir.pipeline.first_stage import dataset_identity
from taskvec_ir.pipeline.model_scores import system_weights
from taskvec_ir.pipeline.pipeline import Pipeline
from taskvec_ir.pipeline.selection.choice import Choice, Evidence, Fold, Setting, best_setting
from taskvec_ir.pipeline.selection.criteria import QueryMean, query_entropy, query_nqc, stability_against_chance
from taskvec_ir.pipeline.selection.cross_validation import cross_validate, kfold
from taskvec_ir.pipeline.selection.pseudo_queries import pseudo_queries
from taskvec_ir.storage.cache import CACHE_VERSION, cache_key

log = logging.getLogger(__name__)


def labelled_values(
    pipeline: Pipeline, split: str, system: str, settings: Iterable[Setting], measure: str
) -> dict[Setting, dict[str, float]]:
    """``measure`` of ``system``'s fused run of ``split`` per judged query, at each (α, λ) of ``settings`` (α only
    moves task arithmetic), from cached scores."""
    qrels = pipeline.split(split).qrels
    return {
        (alpha, lam): evaluation.evaluate_run(
            qrels, pipeline.system_run(split, system, lam, pipeline.spec.merge.at(alpha)), [measure]
        )[1][measure]
        for alpha, lam in settings
    }


def setting_runs(pipeline: Pipeline, split: str, alphas: Sequence[float], lambdas: Sequence[float]):
    """(α, λ, fused run of task arithmetic) for every setting: one set of model scores per α (cached)."""
    for alpha in alphas:
        setting = pipeline.spec.merge.at(alpha)
        for lam in lambdas:
            yield alpha, lam, pipeline.system_run(split, TASK_ARITHMETIC, lam, setting)


def unlabeled_split(cfg: Config) -> str:
    """The split whose queries the label-free methods read: ``selection.queries``, else the evaluated split."""
    return cfg.selection.queries if cfg.selection.queries in cfg.dataset.splits else cfg.split


def unlabeled_queries(pipeline: Pipeline, cfg: Config) -> str:
    """The label-free methods' query set, added to ``pipeline`` without qrels; returns its name."""
    split = unlabeled_split(cfg)
    name = f"{split} (unlabeled)"
    pipeline.first_stage.add_split(name, Split(load_queries(cfg.dataset, split), {}))
    return name


def corpus_sample(pipeline: Pipeline, split: str, size: int, seed: int) -> str:
    """Add ``split``'s queries as a split whose candidates are the same ``size`` corpus documents, drawn with
    ``seed`` (cached), for every query: what NQC standardises a query's scores against. Returns its name."""
    dataset = pipeline.spec.dataset
    key = cache_key(version=CACHE_VERSION, dataset=dataset_identity(dataset), size=size, seed=seed)
    texts = pipeline.cache.json(
        "corpus_sample",
        key,
        lambda: {doc: join_fields(parts) for doc, parts in sample_doc_fields(dataset, size, seed).items()},
    )
    queries = pipeline.split(split).queries
    name = f"{split} × corpus sample ({len(texts)})"
    pipeline.first_stage.add_split(
        name, Split(queries, {}), {query: dict.fromkeys(texts, 0.0) for query in queries}, texts
    )
    return name


def choose(pipeline: Pipeline, cfg: Config) -> Choice:
    """α and λ as ``cfg.selection`` chooses them (docs/selection.md)."""
    selection, objective = cfg.selection, cfg.objective
    alphas, lambdas = sorted(set(selection.alphas)), list(cfg.lam.grid)
    fixed_lam = selection.lam
    if cfg.retriever.dense:  # no fusion: λ is not a setting to choose (None throughout)
        lambdas, fixed_lam = [None], None
    if selection.method == "cross_validation":
        split = pipeline.split(cfg.split)
        folds = kfold(split.queries, selection.folds, selection.seed)
        return cross_validate(setting_runs(pipeline, cfg.split, alphas, lambdas), split.qrels, folds, objective)
    details = {}
    per_query: dict[Setting, dict[str, float]] = {}  # the criterion per setting and query, where defined
    columns: dict[Setting, dict] = {}  # what a curve's row shows beside the criterion (stability: τ's, the null's)
    if selection.method == "pseudo_queries":
        name, details["pseudo_queries_source"] = pseudo_queries(pipeline, selection.pseudo_queries)
        queries = list(pipeline.split(name).qrels)  # every pseudo-query has its document: all are judged
        per_query = labelled_values(pipeline, name, TASK_ARITHMETIC, product(alphas, lambdas), objective)
        criterion = f"{objective} on {len(queries)} pseudo-queries ({details['pseudo_queries_source']})"
    elif selection.method == "nqc":
        name = unlabeled_queries(pipeline, cfg)
        sample = corpus_sample(pipeline, name, selection.nqc_corpus_sample, selection.seed)
        for alpha in alphas:  # Θ'’s raw scores: fusion's min-max would erase the spread NQC measures
            weights = system_weights(TASK_ARITHMETIC, pipeline.spec.merge.at(alpha))
            scores, corpus_scores = pipeline.model_run(name, weights), pipeline.scores(sample, weights)
            per_query[alpha, fixed_lam] = query_nqc(scores, corpus_scores, selection.nqc_k)
        queries = list(scores)
        criterion = (
            f"NQC@{selection.nqc_k} of Θ' on {name} (standardised against {selection.nqc_corpus_sample} corpus "
            "documents' scores)"
        )
    elif selection.method == "entropy":
        name, temperature = unlabeled_queries(pipeline, cfg), selection.entropy_temperature
        for alpha in alphas:  # Θ'’s raw scores, as NQC's; lower entropy (more committed) is better
            scores = pipeline.model_run(name, system_weights(TASK_ARITHMETIC, pipeline.spec.merge.at(alpha)))
            per_query[alpha, fixed_lam] = {q: -h for q, h in query_entropy(scores, temperature).items()}
        queries = list(scores)
        criterion = (
            f"−ranking entropy of Θ' on {name} (softmax at T={temperature:g} of each query's candidate scores "
            "standardised by their own mean and σ)"
        )
    else:
        name, lam = unlabeled_queries(pipeline, cfg), fixed_lam
        runs = {alpha: run for alpha, _, run in setting_runs(pipeline, name, alphas, [lam])}
        null = replace(pipeline.spec.merge, method=pipeline.spec.merge.method.null)
        null_runs = {alpha: pipeline.system_run(name, TASK_ARITHMETIC, lam, null.at(alpha)) for alpha in alphas}
        found = stability_against_chance(runs, null_runs)
        per_query = {(alpha, lam): value for alpha, value in found.excess.items()}
        queries = list(found.asked)  # those whose τ is undefined at some α are in none of the means, and counted
        criterion = (
            f"−rank change per unit α towards both neighbours on {name}, less the random-direction null's "
            f"(merge.seed {null.method.seed})"
        )
        details["null"] = {"direction": null.method.direction, "seed": null.method.seed,
                           "queries": len(found.queries), "of": len(found.asked)}  # fmt: skip
        columns = {(alpha, lam): {"raw": found.raw[alpha], "null": found.null[alpha]} for alpha in found.raw}
    values = {setting: QueryMean.of(by_query, len(queries)) for setting, by_query in per_query.items()}
    for (alpha, lam), value in values.items():
        if value.undefined:
            log.warning(
                "selection=%s: the criterion is undefined for %d of %d queries at α=%g, λ=%s (left out of its mean)",
                selection.method,
                value.undefined,
                value.queries,
                alpha,
                lam,
            )
    curve = [
        {"fold": None, "alpha": a, "lam": lam, "value": v.value, "undefined": v.undefined, **columns.get((a, lam), {})}
        for (a, lam), v in values.items()
    ]
    alpha, lam = best_setting({setting: value.value for setting, value in values.items()})
    evidence = Evidence(per_query, [tuple(queries)])
    return Choice(selection.method, criterion, [Fold(None, alpha, lam)], curve, details, evidence=evidence)


def tune_baseline_lambdas(pipeline: Pipeline, cfg: Config, choice: Choice, systems: Sequence[str]) -> None:
    """Give each fused baseline of ``systems`` its own λ in ``choice``, chosen by the selection's own procedure
    at the baseline's fixed weights: per fold on the other folds' queries (cross-validation), on the pseudo-queries,
    or ``selection.lam`` (stability, NQC and entropy choose no λ). α = 0 and α = 1 are among the α values a selection
    scores, so this reads cached scores."""
    grid, objective = list(cfg.lam.grid), cfg.objective
    if cfg.retriever.dense:  # no fusion: no baseline has a λ
        return
    for system in systems:
        if system in (TASK_ARITHMETIC, BM25):
            continue
        if choice.method == "cross_validation":
            runs = ((0.0, lam, pipeline.system_run(cfg.split, system, lam)) for lam in grid)  # α fixed: λ varies
            folds = [fold.queries for fold in choice.folds]
            tuned = cross_validate(runs, pipeline.split(cfg.split).qrels, folds, objective)
            choice.baseline_lambdas[system] = [fold.lam for fold in tuned.folds]
        elif choice.method == "pseudo_queries":
            name, _ = pseudo_queries(pipeline, cfg.selection.pseudo_queries)
            choice.baseline_lambdas[system] = [pipeline.tune_lambda(name, system, grid, objective)[0]]
        else:
            choice.baseline_lambdas[system] = [cfg.selection.lam]
