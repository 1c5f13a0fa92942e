"""Choosing α and λ without a dev split: by cross-validation over the evaluated queries, or with no relevance
label at all (the zero-shot case the paper leaves open).

A selection is a job setting (``selection=<method>``, ``conf/selection/``): the job chooses α from
``selection.alphas`` and λ from ``lam.grid``, then evaluates its systems once on its split. Every setting
considered is scored through the experiment's cache, so the α values a dev sweep scored cost nothing here.

- ``cross_validation``: k seeded folds of the evaluated queries; each fold's α and λ maximise the objective on
  the other folds' queries and labels and are evaluated on its own (as PyTerrier's KFold): a fold's labels are
  never read to choose its setting. Folds may choose differently: what ran is each fold's setting, so there is
  then no one α or λ (``Choice.alpha`` is None) and every report shows the folds'.
- ``pseudo_queries``: queries made from the corpus as ``adapt``'s inverse cloze makes them: a document's title,
  one of its sentences, or a span of its words, whose one relevant document is the rest of that document
  (``auto``, the default source: titles where the corpus has them, sentences where it has none, word spans
  where its text has no sentence punctuation). Their BM25 candidates (the source scored without its query,
  ``Retriever.score_text``) are re-ranked and fused as usual; α and λ maximise the objective on them.
- ``stability``: how little each unlabeled query's fused ranking changes per unit α between α and its two
  neighbouring α values (1 − top-weighted Kendall τ, ``scipy.stats.weightedtau``, over the α gap); the most
  stable α is chosen, in the spirit of AdaMMS's generation consistency (CVPR 2025). Only α values with a
  neighbour on each side are scored (``stability`` says why).
- ``nqc``: Normalized Query Commitment (Shtok et al., TOIS 2012), a query-performance predictor, on the raw
  scores of Θ' (not the fused ones: min-max normalisation would erase the scale NQC measures): the standard
  deviation of the query's top ``nqc_k`` scores among its candidates over the magnitude of its corpus score.
  Shtok et al.'s corpus score is the score of the whole corpus as one document, which a neural re-ranker
  cannot take (a cross-encoder's input is one passage); it is estimated as Θ'’s mean score of the query
  against ``nqc_corpus_sample`` documents drawn from the corpus (seeded by ``selection.seed``; the same for
  every query and α): the expected score of a corpus document, which, as the corpus score does, normalises
  the spread for the query and for the scale of the model's scores. α maximises its mean over the unlabeled
  queries.

Neither of the last two can choose λ, so both fuse at λ = ``selection.lam``: more BM25 weight always makes
runs agree more, and NQC of the model's scores does not depend on λ.

The fused baselines (ΘT, α = 1, ΘD) get their own λ by the same procedure with the same budget (``lam.grid``,
on the same queries and folds; ``selection.lam`` where the method cannot choose λ), so that TA's extra tuning
is not what makes it win (``baseline_lambdas``).

A criterion undefined for a query (NQC where the corpus score is 0, τ of a query with constant scores) leaves
the query out of that setting's mean, with a warning; the curve counts such queries (``undefined``), a
setting undefined for every query is NaN and never chosen, and a criterion undefined everywhere is an error.

The label-free methods read the queries of ``selection.queries`` (dev), or those of the evaluated split when
the dataset has no such split (its queries, never its labels), and no qrels at all.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import product
from pathlib import Path

from taskvec_ir.config.composed import Config
from taskvec_ir.config.selection import PseudoQueriesConfig
from taskvec_ir.config.systems import BM25, TASK_ARITHMETIC
from taskvec_ir.errors import UserError
from taskvec_ir.ir import data, evaluation
from taskvec_ir.pipeline.experiment import Experiment, Run
from taskvec_ir.pipeline.first_stage import dataset_identity
from taskvec_ir.pipeline.model_scores import system_weights
from taskvec_ir.reporting import report
from taskvec_ir.storage.cache import CACHE_VERSION, cache_key

log = logging.getLogger(__name__)
Setting = tuple[float, float]  # (α, λ)
REST = "#rest"  # a pseudo-query's source document without the query, as a candidate id


@dataclass(frozen=True)
class Fold:
    """α and λ for some of the evaluated queries (``queries``; None: all of them)."""

    queries: tuple[str, ...] | None
    alpha: float
    lam: float | None  # None under retriever=dense (no fusion)


@dataclass(frozen=True)
class Evidence:
    """What a choice maximises, per query: ``values[setting][query]`` (a query absent: the criterion is undefined
    for it there), and the queries each fold chooses on (``tuning``: one entry outside cross-validation). A
    setting's criterion is the mean of its values over a fold's tuning queries where defined; computed once, it
    is what a bootstrap resamples (``taskvec_ir.pipeline.bootstrap``)."""

    values: Mapping[Setting, Mapping[str, float]]
    tuning: Sequence[Sequence[str]]


@dataclass
class Choice:
    """What a selection chose, and the criterion it maximised at every setting it considered (``curve``: rows
    of fold, α, λ, value and the queries the value left out, ``undefined``; fold is None outside
    cross-validation). ``details``: what else the choice depended on (e.g. the pseudo-queries' source)."""

    method: str
    criterion: str
    folds: list[Fold]
    curve: list[dict]
    details: dict = field(default_factory=dict)
    baseline_lams: dict[str, list[float]] = field(default_factory=dict)  # each fused baseline's λ, fold by fold
    evidence: Evidence | None = field(default=None, repr=False)  # the per-query values the choice was made from

    def lams(self, system: str) -> list[float]:
        """``system``'s λ in each fold: a baseline's own, else the fold's."""
        return self.baseline_lams.get(system) or [fold.lam for fold in self.folds]

    def system_lams(self, systems: Sequence[str]) -> dict[str, float | None]:
        """Each system's λ (None for BM25, and where folds chose differently)."""
        return {s: None if s == BM25 else _common(self.lams(s)) for s in systems}

    @property
    def alpha(self) -> float | None:
        """The α every fold chose; None when folds chose differently (no one α ran: see ``folds``)."""
        return _common(fold.alpha for fold in self.folds)

    @property
    def lam(self) -> float | None:
        """The λ every fold chose; None when folds chose differently."""
        return _common(fold.lam for fold in self.folds)

    def describe(self) -> dict:
        return {
            "method": self.method,
            "criterion": self.criterion,
            "alpha": self.alpha,
            "lam": self.lam,
            "folds": [
                {
                    "queries": None if f.queries is None else len(f.queries),
                    "alpha": f.alpha,
                    "lam": f.lam,
                    **{f"lam[{system}]": lams[i] for system, lams in self.baseline_lams.items()},
                }
                for i, f in enumerate(self.folds)
            ],
            **self.details,
            # JSON has no NaN: an undefined value is null (its row's ``undefined`` says how many queries lacked it)
            "curve": [{**row, "value": None if math.isnan(row["value"]) else row["value"]} for row in self.curve],
        }

    def settings_text(self) -> str:
        """``α=0.5 · λ=0.3``, or each fold's ``α/λ`` when folds differ."""
        if all(fold.lam is None for fold in self.folds):  # retriever=dense: no fusion
            return (
                f"α={self.alpha:g} · no fusion"
                if self.alpha is not None
                else "α per fold: " + " ".join(f"{f.alpha:g}" for f in self.folds)
            )
        if self.alpha is not None and self.lam is not None:
            return f"α={self.alpha:g} · λ={self.lam:g}"
        return "α/λ per fold: " + " ".join(f"{f.alpha:g}/{f.lam:g}" for f in self.folds)


def _common(values: Iterable[float]) -> float | None:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def best_setting(values: Mapping[Setting, float]) -> Setting:
    """The setting of highest value; ties go to the smaller α, then the smaller λ (the smaller change to ΘT). An
    undefined value (NaN) never wins; a criterion undefined at every setting is an error."""
    defined = {setting: value for setting, value in values.items() if not math.isnan(value)}
    if not defined:
        raise UserError(
            "selection: the criterion is undefined at every setting considered (see the log for why): "
            "give more queries or α values, or choose another selection.method"
        )
    return max(defined, key=lambda setting: (defined[setting], -setting[0], -(setting[1] or 0.0)))


def labelled_values(
    experiment: Experiment, split: str, system: str, settings: Iterable[Setting], measure: str
) -> dict[Setting, dict[str, float]]:
    """``measure`` of ``system``'s fused run of ``split`` per judged query, at each (α, λ) of ``settings`` (α only
    moves task arithmetic), from cached scores."""
    qrels = experiment.split(split).qrels
    return {
        (alpha, lam): evaluation.evaluate_run(
            qrels, experiment.system_run(split, system, lam, experiment.spec.merge.at(alpha)), [measure]
        )[1][measure]
        for alpha, lam in settings
    }


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


# -- label-free criteria -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueryMean:
    """A per-query criterion averaged over the queries it is defined for (``value`` NaN when none is)."""

    value: float
    defined: int
    queries: int

    @classmethod
    def of(cls, per_query: Mapping[str, float], queries: int) -> QueryMean:
        value = statistics.fmean(per_query.values()) if per_query else math.nan
        return cls(value, len(per_query), queries)

    @property
    def undefined(self) -> int:
        return self.queries - self.defined


def nqc(top_scores: Iterable[float], corpus_score: float, k: int) -> float:
    """Shtok et al.'s NQC of one query: the standard deviation of its top ``k`` retrieval scores over the
    magnitude of the corpus's score for it; NaN when that score is 0 or there are no scores."""
    top = sorted(top_scores, reverse=True)[:k]
    if not top or corpus_score == 0:
        return math.nan
    return statistics.pstdev(top) / abs(corpus_score)


def query_nqc(scores: Run, corpus_scores: Run, k: int) -> dict[str, float]:
    """NQC of each query of ``scores`` (a re-ranker's raw scores of the candidates) where defined, its corpus
    score the mean of the same model's raw scores of the corpus sample (``corpus_scores``)."""
    per_query = {}
    for query, candidates in scores.items():
        sample = corpus_scores.get(query, {})
        corpus_score = statistics.fmean(sample.values()) if sample else 0.0
        if not math.isnan(value := nqc(candidates.values(), corpus_score, k)):
            per_query[query] = value
    return per_query


def mean_nqc(scores: Run, corpus_scores: Run, k: int) -> QueryMean:
    """``query_nqc`` averaged over the queries where it is defined."""
    return QueryMean.of(query_nqc(scores, corpus_scores, k), len(scores))


def query_agreement(first: Run, second: Run) -> dict[str, float]:
    """Top-weighted Kendall τ between two runs' scores of each query's documents (a document one run lacks
    scores 0 there), for the queries where it is defined: not those with fewer than two documents, or constant
    scores."""
    from scipy.stats import weightedtau

    values = {}
    for query in first.keys() & second.keys():
        docs = sorted(first[query].keys() | second[query].keys())
        if len(docs) < 2:
            continue
        tau = weightedtau([first[query].get(d, 0.0) for d in docs], [second[query].get(d, 0.0) for d in docs])
        if math.isfinite(tau.statistic):
            values[query] = tau.statistic
    return values


def rank_agreement(first: Run, second: Run) -> QueryMean:
    """``query_agreement`` averaged over the queries of either run where it is defined."""
    return QueryMean.of(query_agreement(first, second), len(first.keys() | second.keys()))


def stability(runs: Mapping[float, Run]) -> dict[float, QueryMean]:
    """``query_stability`` averaged over the queries where it is defined."""
    return {alpha: QueryMean.of(per_query, len(runs[alpha])) for alpha, per_query in query_stability(runs).items()}


def query_stability(runs: Mapping[float, Run]) -> dict[float, dict[str, float]]:
    """How little each query's fused ranking changes per unit α on either side of α, for the α values of the
    grid that have a neighbour on both sides: minus the mean, over its two neighbours α', of
    (1 − weighted τ between the rankings at α and α') / |α − α'|, per query (``stability`` averages it); 0 is
    perfectly stable. A query counts where both τ are defined.

    Like is compared with like: every value scored has two sides (an end of the grid, with one, would be
    scored on half the evidence, and on a steady trend always won), and the change is per unit α (a value
    between wide gaps would otherwise look less stable only for being far from its neighbours). The ends are
    therefore never chosen: to let α = 0 compete, give the grid a value below it."""
    alphas = sorted(runs)
    if len(alphas) < 3:
        raise UserError("selection.alphas: stability scores α values with a neighbour each side: give three or more")
    # change[j][q]: query q's rank change per unit α between alphas[j] and alphas[j + 1]
    change = [
        {q: (1 - tau) / (b - a) for q, tau in query_agreement(runs[a], runs[b]).items()}
        for a, b in zip(alphas, alphas[1:], strict=False)
    ]
    values = {}
    for i in range(1, len(alphas) - 1):
        before, after = change[i - 1], change[i]
        values[alphas[i]] = {q: -(before[q] + after[q]) / 2 for q in before.keys() & after.keys()}
    return values


# -- pseudo-queries ------------------------------------------------------------------------------------------------
def pseudo_queries(experiment: Experiment, settings: PseudoQueriesConfig) -> tuple[str, str]:
    """Add the corpus's pseudo-queries to ``experiment`` as a split (queries, one relevant document each, BM25
    candidates, texts), cached; returns its name and the source of its queries (``auto`` resolved). Reads
    documents only."""
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
    return name, made.get("source", settings.source)  # entries cached before auto existed: their explicit source


def pseudo_query_source(documents: Sequence[Mapping[str, str]]) -> str:
    """``auto``: the first of title, sentence and span that gives pairs for at least half of ``documents`` (titles
    where the corpus has them; sentences where it has none; word spans where its text has no sentence
    punctuation, as in preprocessed corpora), else the one that gives the most."""
    from taskvec_ir.models.adapt import document_pairs

    covered = {}
    for source in ("title", "sentence", "span"):
        try:
            covered[source] = len(document_pairs(documents, source, None, seed=0))
        except ValueError:  # no pair of this source at all
            covered[source] = 0
        if covered[source] >= len(documents) / 2:
            return source
    best = max(covered, key=lambda source: covered[source])  # ties: the earlier source
    if not covered[best]:
        raise UserError(
            f"selection.pseudo_queries.source: auto found no title, sentence or span pairs in {len(documents)} "
            "sampled documents: are their texts empty (dataset.doc_fields)?"
        )
    return best


def _make_pseudo_queries(experiment: Experiment, settings: PseudoQueriesConfig) -> dict:
    from taskvec_ir.models.adapt import document_pairs

    dataset, top_k = experiment.spec.dataset, experiment.spec.retriever.top_k
    # Twice the documents: some give no pair (a short title, a single sentence).
    documents = data.sample_doc_fields(dataset, 2 * settings.count, settings.seed)
    ids = list(documents)
    kind = pseudo_query_source(list(documents.values())) if settings.source == "auto" else settings.source
    try:
        pairs = document_pairs(list(documents.values()), kind, settings.count, settings.seed)
    except ValueError as error:  # its message names adapt's key
        raise UserError(str(error).replace("adapt.pair_source", "selection.pseudo_queries.source")) from None
    queries, relevant, rest_texts = {}, {}, {}
    for document in pairs:
        for query in document.queries:
            text, rest = document.pair(query)
            query_id = f"pq{len(queries)}"
            queries[query_id], relevant[query_id] = text, ids[document.document] + REST + str(query)
            rest_texts[relevant[query_id]] = rest
    log.info("Pseudo-queries: %d from %d documents of %s (%s)", len(queries), len(ids), dataset.name, kind)
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
    return {"queries": queries, "relevant": relevant, "candidates": candidates, "texts": texts, "source": kind}


# -- choosing ------------------------------------------------------------------------------------------------------
def unlabeled_split(cfg: Config) -> str:
    """The split whose queries the label-free methods read: ``selection.queries``, else the evaluated split."""
    return cfg.selection.queries if cfg.selection.queries in cfg.dataset.splits else cfg.split


def unlabeled_queries(experiment: Experiment, cfg: Config) -> str:
    """The label-free methods' query set, added to ``experiment`` without qrels; returns its name."""
    split = unlabeled_split(cfg)
    name = f"{split} (unlabeled)"
    experiment.first_stage.add_split(name, data.Split(data.load_queries(cfg.dataset, split), {}))
    return name


def corpus_sample(experiment: Experiment, split: str, size: int, seed: int) -> str:
    """Add ``split``'s queries as a split whose candidates are the same ``size`` corpus documents, drawn with
    ``seed`` (cached), for every query: what NQC's corpus score is estimated on. Returns its name."""
    dataset = experiment.spec.dataset
    key = cache_key(version=CACHE_VERSION, dataset=dataset_identity(dataset), size=size, seed=seed)
    texts = experiment.cache.json(
        "corpus_sample",
        key,
        lambda: {doc: data.join_fields(parts) for doc, parts in data.sample_doc_fields(dataset, size, seed).items()},
    )
    queries = experiment.split(split).queries
    name = f"{split} × corpus sample ({len(texts)})"
    experiment.first_stage.add_split(
        name, data.Split(queries, {}), {query: dict.fromkeys(texts, 0.0) for query in queries}, texts
    )
    return name


def choose(experiment: Experiment, cfg: Config) -> Choice:
    """α and λ as ``cfg.selection`` chooses them (see the module docstring)."""
    selection, objective = cfg.selection, cfg.objective
    alphas, lams = sorted(set(selection.alphas)), list(cfg.lam.grid)
    fixed_lam = selection.lam
    if cfg.retriever.dense:  # no fusion: λ is not a setting to choose (None throughout)
        lams, fixed_lam = [None], None
    if selection.method == "cross_validation":
        split = experiment.split(cfg.split)
        folds = kfold(split.queries, selection.folds, selection.seed)
        return cross_validate(setting_runs(experiment, cfg.split, alphas, lams), split.qrels, folds, objective)
    details = {}
    per_query: dict[Setting, dict[str, float]] = {}  # the criterion per setting and query, where defined
    if selection.method == "pseudo_queries":
        name, details["pseudo_queries_source"] = pseudo_queries(experiment, selection.pseudo_queries)
        queries = list(experiment.split(name).qrels)  # every pseudo-query has its document: all are judged
        per_query = labelled_values(experiment, name, TASK_ARITHMETIC, product(alphas, lams), objective)
        criterion = f"{objective} on {len(queries)} pseudo-queries ({details['pseudo_queries_source']})"
    elif selection.method == "nqc":
        name = unlabeled_queries(experiment, cfg)
        sample = corpus_sample(experiment, name, selection.nqc_corpus_sample, selection.seed)
        for alpha in alphas:  # Θ'’s raw scores: fusion's min-max would erase the scale NQC measures
            weights = system_weights(TASK_ARITHMETIC, experiment.spec.merge.at(alpha))
            scores, corpus_scores = experiment.model_run(name, weights), experiment.scores(sample, weights)
            per_query[alpha, fixed_lam] = query_nqc(scores, corpus_scores, selection.nqc_k)
        queries = list(scores)
        criterion = f"NQC@{selection.nqc_k} of Θ' on {name} (corpus score: {selection.nqc_corpus_sample} documents)"
    else:
        name, lam = unlabeled_queries(experiment, cfg), fixed_lam
        runs = {alpha: run for alpha, _, run in setting_runs(experiment, name, alphas, [lam])}
        per_query = {(alpha, lam): value for alpha, value in query_stability(runs).items()}
        queries = list(runs[alphas[0]])
        criterion = f"−rank change per unit α towards both neighbours on {name}"
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
    alpha, lam = best_setting({setting: value.value for setting, value in values.items()})
    curve = [
        {"fold": None, "alpha": a, "lam": lam_, "value": v.value, "undefined": v.undefined}
        for (a, lam_), v in values.items()
    ]
    evidence = Evidence(per_query, [tuple(queries)])
    return Choice(selection.method, criterion, [Fold(None, alpha, lam)], curve, details, evidence=evidence)


def baseline_lambdas(experiment: Experiment, cfg: Config, choice: Choice, systems: Sequence[str]) -> None:
    """Give each fused baseline of ``systems`` its own λ in ``choice``, chosen by the selection's own procedure
    at the baseline's fixed weights: per fold on the other folds' queries (cross-validation), on the pseudo-queries,
    or ``selection.lam`` (stability and NQC choose no λ). α = 0 and α = 1 are among the α values a selection scores,
    so this reads cached scores."""
    grid, objective = list(cfg.lam.grid), cfg.objective
    if cfg.retriever.dense:  # no fusion: no baseline has a λ
        return
    for system in systems:
        if system in (TASK_ARITHMETIC, BM25):
            continue
        if choice.method == "cross_validation":
            runs = ((0.0, lam, experiment.system_run(cfg.split, system, lam)) for lam in grid)  # α fixed: λ varies
            folds = [fold.queries for fold in choice.folds]
            tuned = cross_validate(runs, experiment.split(cfg.split).qrels, folds, objective)
            choice.baseline_lams[system] = [fold.lam for fold in tuned.folds]
        elif choice.method == "pseudo_queries":
            name, _ = pseudo_queries(experiment, cfg.selection.pseudo_queries)
            choice.baseline_lams[system] = [experiment.best_lambda(name, system, grid, objective)[0]]
        else:
            choice.baseline_lams[system] = [cfg.selection.lam]


def combine_folds(folds: Sequence[Fold], runs: Sequence[Run]) -> Run:
    """One run of a split from each fold's run (``runs[i]`` made at ``folds[i]``'s setting): each fold's queries
    from its own run (a fold of None queries: all of them)."""
    combined: Run = {}
    for fold, run in zip(folds, runs, strict=True):
        combined.update(run if fold.queries is None else {q: run[q] for q in fold.queries if q in run})
    return combined


def evaluate_choice(
    experiment: Experiment,
    split: str,
    systems: Sequence[str],
    choice: Choice,
    measures: Sequence[str],
    runs_dir: Path | None = None,
):
    """means[system][measure] and per_query[system][measure][query] of ``split``, each fold's queries run at
    its setting (every system at its λ in the fold, Θ' at the fold's α); TREC runs into ``runs_dir``."""
    qrels = experiment.split(split).qrels
    means, per_query = {}, {}
    for system in systems:
        fold_runs = [
            experiment.system_run(split, system, lam, experiment.spec.merge.at(fold.alpha))
            for fold, lam in zip(choice.folds, choice.lams(system), strict=True)
        ]
        run = combine_folds(choice.folds, fold_runs)
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
        lam = "no fusion" if fold.lam is None else f"λ = {fold.lam:g}"
        label = f"fold {index + 1}, {lam}" if key is not None else lam
        (line,) = ax.plot(*zip(*points, strict=True), marker="o", label=label)
        chosen = [value for alpha, value in points if alpha == fold.alpha]
        ax.scatter([fold.alpha], chosen, s=160, facecolors="none", edgecolors=line.get_color(), zorder=4)
    ax.set_xlabel("α")
    ax.set_ylabel(choice.criterion)
    ax.set_title(f"selection={choice.method} (chosen α circled)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    report.save_figure(fig, path)
