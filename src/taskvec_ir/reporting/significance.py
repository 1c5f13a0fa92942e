"""Systems compared over the queries of their runs: paired tests against baselines, corrected within a family, and
the marks they earn. ``compare`` is the one comparison a sweep's report and every table use: per-query values in,
means, p-values and marks out, no file read. Method: docs/tables.md ("Significance").
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from taskvec_ir.config.significance import SignificanceConfig
from taskvec_ir.config.systems import HEADINGS, MARKS

PerQuery = Mapping[str, Mapping[str, Mapping[str, float]]]  # system -> measure -> query_id -> value
Key = TypeVar("Key", bound=Hashable)
SIGNIFICANCE = 0.05  # every table marks a difference with p below this (after its correction)
BETTER, WORSE = "▲", "▼"  # before a baseline's mark: significantly better, or worse, than that baseline
TESTS = {"t_test": "paired t-test", "randomization": "Fisher's paired randomization test"}
CORRECTIONS = {"bonferroni": "Bonferroni", "holm": "Holm"}


def p_value(ours: Sequence[float], theirs: Sequence[float], settings: SignificanceConfig) -> float:
    """The two-sided p-value of a paired test of ``ours`` against ``theirs`` (the same queries, in order):
    the paired t-test, or Fisher's randomization test of the mean difference (each query's pair swapped at
    random, ``settings.permutations`` times, seeded; every swap when 2^queries is fewer). Identical values
    give no evidence of a difference: 1."""
    import numpy as np
    from scipy.stats import permutation_test, ttest_rel

    if settings.test == "t_test":
        p = float(ttest_rel(ours, theirs).pvalue)
    else:
        p = permutation_test(
            (np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)),
            lambda x, y, axis: np.mean(x - y, axis=axis),
            permutation_type="samples",
            vectorized=True,
            n_resamples=settings.permutations,
            alternative="two-sided",
            rng=settings.seed,
        ).pvalue
    return 1.0 if math.isnan(p) else min(1.0, float(p))  # scipy's t-test gives nan where every difference is 0


def adjust(p_values: Mapping[Key, float], correction: str) -> dict[Key, float]:
    """One family of p-values adjusted for its number of tests m: Bonferroni (p·m) or Holm's step-down (the i-th
    smallest times m − i + 1, never below the adjusted one before it), each at most 1."""
    m = len(p_values)
    if correction == "bonferroni":
        return {key: min(1.0, p * m) for key, p in p_values.items()}
    adjusted, running = {}, 0.0
    for i, (key, p) in enumerate(sorted(p_values.items(), key=lambda item: item[1])):
        running = max(running, min(1.0, (m - i) * p))
        adjusted[key] = running
    return {key: adjusted[key] for key in p_values}


@dataclass(frozen=True)
class Test:
    """One test of a comparison: ``system`` of its ``run``-th run against ``baseline`` on ``measure``."""

    run: int
    system: str
    baseline: str
    measure: str


def family(test: Test, correction: str) -> Hashable:
    """The tests ``test`` is corrected with, the one definition every report and table uses: Bonferroni over one
    value's baselines (a system of one run, on one measure: the paper's), Holm over every test of one measure in
    the comparison (a table, or one general-domain collection's section)."""
    return (test.measure,) if correction == "holm" else (test.run, test.system, test.measure)


def family_note(correction: str, scope: str, baselines: int = 0) -> str:
    """How a footnote names ``family``'s families: for the tests of a whole ``scope`` ("table", "section"), or
    (``scope="row"``) of one system's ``baselines`` on each measure (a sweep's report)."""
    if scope == "row":
        return "per measure" if correction == "holm" else f"over {baselines} baselines"
    return f"over all of this {scope}'s tests" if correction == "holm" else "over each value's baselines"


def marks(
    p_values: Mapping[str, float | None], differences: Mapping[str, float | None], symbols: Mapping[str, str]
) -> str:
    """The symbols of the baselines whose p-value is below ``SIGNIFICANCE``, in ``symbols``' order, each after
    ``BETTER`` or ``WORSE`` as the value's difference to the baseline's is positive or negative."""
    return "".join(
        (BETTER if differences[name] > 0 else WORSE) + symbol
        for name, symbol in symbols.items()
        if p_values.get(name) is not None and p_values[name] < SIGNIFICANCE
    )


def significance_note(symbols: Mapping[str, str], settings: SignificanceConfig, family: str) -> str:
    """What a table's marks say, and how they were tested: the footnote of every table that has them."""
    legend = ", ".join(f"{symbol} {HEADINGS[baseline]}" for baseline, symbol in symbols.items())
    return (
        f"{BETTER}x / {WORSE}x: significantly better / worse than the baseline marked x ({legend}); "
        f"{TESTS[settings.test]}, two-sided, over the test queries, {CORRECTIONS[settings.correction]} {family}, "
        f"p < {SIGNIFICANCE}."
    )


@dataclass(frozen=True)
class Compared:
    """One system of one run: its mean of each measure and how many queries it is over, its p-value against each of
    its baselines on each tested measure (``p_values[baseline][measure]``, corrected within its family), and the
    marks those earn on each tested measure."""

    means: dict[str, float]
    queries: int
    p_values: dict[str, dict[str, float]]
    marks: dict[str, str]


def compare(
    runs: Sequence[PerQuery],
    baselines: Mapping[str, Sequence[str]],
    measures: Sequence[str],
    settings: SignificanceConfig,
    tested: Sequence[str] | None = None,
) -> list[dict[str, Compared]]:
    """Every system of every run (``runs``: each one's per-query values): its means of ``measures``, and its tests
    against its ``baselines`` (system -> its baselines, in the order of their marks; a system with none is not
    tested) on each of ``tested`` (default: every measure), over the queries of the system's values, corrected
    within the ``family`` of ``settings.correction`` among all the runs' tests. One dict per run, its systems in
    the order of its values."""
    tested = list(measures if tested is None else tested)
    raw: dict[Test, float] = {}
    for run, per_query in enumerate(runs):
        for system in per_query:
            for baseline in baselines.get(system, ()):
                for measure in tested:
                    queries = sorted(per_query[system][measure])
                    raw[Test(run, system, baseline, measure)] = p_value(
                        [per_query[system][measure][q] for q in queries],
                        [per_query[baseline][measure][q] for q in queries],
                        settings,
                    )
    families: dict[Hashable, dict[Test, float]] = {}
    for test, p in raw.items():
        families.setdefault(family(test, settings.correction), {})[test] = p
    corrected = {test: p for found in families.values() for test, p in adjust(found, settings.correction).items()}
    compared = []
    for run, per_query in enumerate(runs):
        means = {s: {m: _mean(per_query[s][m]) for m in measures} for s in per_query}
        found = {}
        for system in per_query:
            own = baselines.get(system, ())
            p_values = {b: {m: corrected[Test(run, system, b, m)] for m in tested} for b in own}
            found[system] = Compared(
                means[system],
                len(per_query[system][measures[0]]),
                p_values,
                {
                    m: marks(
                        {b: p_values[b][m] for b in own},
                        {b: means[system][m] - means[b][m] for b in own},
                        {b: MARKS[b] for b in own},
                    )
                    for m in tested
                },
            )
        compared.append(found)
    return compared


def _mean(values: Mapping[str, float]) -> float:
    return sum(values.values()) / len(values)
