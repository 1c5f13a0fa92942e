"""The label-free criteria, per query and averaged: NQC (Shtok et al., TOIS 2012) of a re-ranker's raw scores,
standardised against a corpus sample's, the entropy of its scores' softmax over the candidates (as AdaMerging's
prediction entropy), and the stability of the fused ranking as α moves (top-weighted Kendall τ), read against the
same grid's random-direction null. A criterion undefined for a query leaves the query out of the mean, and the mean
counts it."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from taskvec_ir.errors import UserError
from taskvec_ir.pipeline.pipeline import Run


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


def nqc(top_scores: Iterable[float], sample_scores: Iterable[float], k: int) -> float:
    """NQC of one query: the standard deviation of its top ``k`` retrieval scores in units of the standard deviation
    of its scores of a corpus sample, i.e. Shtok et al.'s σ of the top scores once standardised against the sample
    (z-scores: Montague & Aslam, CIKM 2001); a positive scale and an offset of the query's scores cannot move it.
    NaN (undefined) with fewer than two top scores, or where the sample's scores do not spread."""
    top = sorted(top_scores, reverse=True)[:k]
    sample = list(sample_scores)
    spread = statistics.pstdev(sample) if len(sample) > 1 else 0.0
    if len(top) < 2 or spread == 0:
        return math.nan
    return statistics.pstdev(top) / spread


def query_nqc(scores: Run, corpus_scores: Run, k: int) -> dict[str, float]:
    """NQC of each query of ``scores`` (a re-ranker's raw scores of the candidates) where defined, against the same
    model's raw scores of the corpus sample (``corpus_scores``)."""
    per_query = {}
    for query, candidates in scores.items():
        sample = corpus_scores.get(query, {}).values()
        if not math.isnan(value := nqc(candidates.values(), sample, k)):
            per_query[query] = value
    return per_query


def ranking_entropy(scores: Iterable[float], temperature: float) -> float:
    """The entropy (nats) of the softmax, at ``temperature``, of one query's scores of its candidates once
    standardised by their own mean and standard deviation: a positive scale and an offset of the query's scores
    cannot move it. Lower: the scores commit to fewer candidates. NaN (undefined) with fewer than two candidates, or
    where their scores do not spread."""
    from scipy.special import softmax
    from scipy.stats import entropy

    values = np.asarray(list(scores), dtype=float)
    spread = values.std() if len(values) > 1 else 0.0
    if spread == 0:
        return math.nan
    return float(entropy(softmax((values - values.mean()) / (spread * temperature))))


def query_entropy(scores: Run, temperature: float) -> dict[str, float]:
    """``ranking_entropy`` of each query of ``scores`` (a re-ranker's raw scores of the candidates) where defined."""
    per_query = {}
    for query, candidates in scores.items():
        if not math.isnan(value := ranking_entropy(candidates.values(), temperature)):
            per_query[query] = value
    return per_query


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


def query_stability(runs: Mapping[float, Run]) -> dict[float, dict[str, float]]:
    """How little each query's fused ranking changes per unit α on either side of α, for the α values of the
    grid that have a neighbour on both sides: minus the mean, over its two neighbours α', of
    (1 − weighted τ between the rankings at α and α') / |α − α'|, per query; 0 is perfectly stable. A query counts
    where both τ are defined.

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


@dataclass(frozen=True)
class StabilityAgainstChance:
    """Stability read against the random-direction null of the same grid: per α, each query's stability less the
    null's (``excess``), for the queries where Kendall's τ is defined at every α, for both (``queries``, of the
    ``asked``); τ's own curve and the null's (``raw``, ``null``), each averaged over those same queries."""

    excess: dict[float, dict[str, float]]
    raw: dict[float, float]
    null: dict[float, float]
    queries: tuple[str, ...]
    asked: tuple[str, ...]


def stability_against_chance(runs: Mapping[float, Run], null_runs: Mapping[float, Run]) -> StabilityAgainstChance:
    """``query_stability`` of ``runs`` (τ's fused runs by α) less that of ``null_runs`` (the null's, the same α),
    per query: a change per unit α that any direction of τ's size makes as α grows (a monotone trend both share)
    cancels, and what is left is the stability τ's direction adds. Every α is averaged over the same queries."""
    raw, null = query_stability(runs), query_stability(null_runs)
    asked = sorted(set().union(*runs.values(), *null_runs.values()))
    queries = sorted(set(asked).intersection(*raw.values(), *null.values()))

    def mean(curve: Mapping[str, float]) -> float:
        return statistics.fmean(curve[q] for q in queries) if queries else math.nan

    return StabilityAgainstChance(
        {alpha: {q: raw[alpha][q] - null[alpha][q] for q in queries} for alpha in raw},
        {alpha: mean(raw[alpha]) for alpha in raw},
        {alpha: mean(null[alpha]) for alpha in null},
        tuple(queries),
        tuple(asked),
    )
