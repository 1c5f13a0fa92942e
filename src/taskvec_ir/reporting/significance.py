"""Systems compared over the queries of their runs: paired tests against baselines, corrected within a family, and
the marks they earn. ``compare`` is the one comparison a sweep's report and every table use: per-query values in,
means, p-values, marks and the families they were corrected in out, no file read. Method: docs/tables.md
("Significance").
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from taskvec_ir.config.significance import SignificanceConfig
from taskvec_ir.config.systems import HEADINGS, MARKS

PerQuery = Mapping[str, Mapping[str, Mapping[str, float]]]  # system -> measure -> query_id -> value
Key = TypeVar("Key", bound=Hashable)
SIGNIFICANCE = 0.05  # every table marks a difference with p below this (after its correction)
# The randomization test's permutations are raised until the smallest corrected p it can give is this far below
# SIGNIFICANCE: a mark is then reachable, with room for the test's own resolution.
REACH = SIGNIFICANCE / 10
BETTER, WORSE = "▲", "▼"  # before a baseline's mark: significantly better, or worse, than that baseline
TESTS = {"t_test": "paired t-test", "randomization": "Fisher's paired randomization test"}
CORRECTIONS = {"bonferroni": "Bonferroni", "holm": "Holm"}


def p_value(
    ours: Sequence[float], theirs: Sequence[float], settings: SignificanceConfig, permutations: int | None = None
) -> float:
    """The two-sided p-value of a paired test of ``ours`` against ``theirs`` (the same queries, in order):
    the paired t-test, or Fisher's randomization test of the mean difference (each query's pair swapped at
    random, ``permutations`` times (default ``settings.permutations``), seeded; every swap when 2^queries is
    fewer). Identical values give no evidence of a difference: 1."""
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
            n_resamples=permutations or settings.permutations,
            alternative="two-sided",
            rng=settings.seed,
        ).pvalue
    return 1.0 if math.isnan(p) else min(1.0, float(p))  # scipy's t-test gives nan where every difference is 0


def sign_test(helped: int, hurt: int) -> float:
    """The two-sided sign test of queries ``helped`` against queries ``hurt`` (a binomial test of ``helped`` of
    ``helped + hurt`` at p = 0.5, ``scipy.stats.binomtest``): could a change that helps and hurts queries alike
    have split them so? Unchanged queries carry no sign and are left out. 1 where no query changed."""
    from scipy.stats import binomtest

    return float(binomtest(helped, helped + hurt, 0.5).pvalue) if helped + hurt else 1.0


def permutations_for(tests: int, settings: SignificanceConfig) -> int | None:
    """The randomization test's permutations R for a family of ``tests`` tests: ``settings.permutations``, raised
    where needed so that the smallest corrected p it can give, tests · 2/(R + 1) (scipy's smallest two-sided p
    is 2/(R + 1)), is at most ``REACH``. None for the t-test."""
    if settings.test == "t_test":
        return None
    return max(settings.permutations, math.ceil(round(2 * tests / REACH, 6)) - 1)


def smallest_p(queries: int, settings: SignificanceConfig, permutations: int | None) -> float:
    """The smallest p-value the test can give over ``queries`` queries: the exact randomization test's 2/2^n where
    it enumerates every swap (2^n ≤ R), 2/(R + 1) otherwise; the t-test's 0 (1 with fewer than two queries)."""
    if settings.test == "t_test":
        return 0.0 if queries > 1 else 1.0
    return 2 / 2**queries if 2**queries <= permutations else 2 / (permutations + 1)


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


def family(test: Test, correction: str, cell: Hashable) -> Hashable:
    """The tests ``test`` is corrected with, the one definition every report and table uses: Bonferroni over one
    value's baselines (a system of one run, on one measure: the paper's), Holm over every test of one measure in
    the run's ``cell`` (a table cell, dataset × model × merge, whose rows a reader compares with each other;
    cells are separate experiments)."""
    return (cell, test.measure) if correction == "holm" else (test.run, test.system, test.measure)


@dataclass(frozen=True)
class Family:
    """The tests a p-value was corrected with: how many distinct ones (a comparison repeated with the same per-query
    values counts once), the randomization test's permutations for them (None: the t-test), and whether any of
    them could be marked at all (the smallest p the test can give, corrected, below ``SIGNIFICANCE``)."""

    tests: int
    permutations: int | None
    markable: bool


def family_note(correction: str, scope: str, families: Iterable[Family] = ()) -> str:
    """How a footnote names ``family``'s families and their sizes: those of a ``scope`` of many cells ("table", or
    "section": one general-domain collection's), or (``scope="row"``) of one system's baselines on each measure
    (a sweep's report)."""
    sizes = sorted({f.tests for f in families})
    count = "" if not sizes else f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
    if scope == "row":
        baselines = "baseline" if sizes == [1] else "baselines"
        return f"over the row's {count} tests of each measure" if correction == "holm" else f"over {count} {baselines}"
    if correction != "holm":
        return "over each value's baselines" + (f" ({count} tests)" if count else "")
    where = "table cell" if scope == "table" else "cell"
    sizes = f" ({count} tests per family)" if count else ""
    return (
        f"over the distinct tests of each {where} (dataset × model × merge) on the measure, a comparison repeated "
        f"across its rows counted once{sizes}"
    )


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


def significance_note(
    symbols: Mapping[str, str], settings: SignificanceConfig, family: str, families: Iterable[Family] = ()
) -> str:
    """What a table's marks say, and how they were tested (``families``: those its marks were corrected in, for
    the randomization test's permutations): the footnote of every table that has them."""
    legend = ", ".join(f"{symbol} {HEADINGS[baseline]}" for baseline, symbol in symbols.items())
    return (
        f"{BETTER}x / {WORSE}x: significantly better / worse than the baseline marked x ({legend}); "
        f"{TESTS[settings.test]}{_permutations_note(settings, families)}, two-sided, over the test queries, "
        f"{CORRECTIONS[settings.correction]} {family}, p < {SIGNIFICANCE}."
    )


def _permutations_note(settings: SignificanceConfig, families: Iterable[Family]) -> str:
    if settings.test == "t_test":
        return ""
    most = max((f.permutations for f in families), default=settings.permutations)
    raised = f", raised to up to {most:,} for the larger families" if most > settings.permutations else ""
    return f" ({settings.permutations:,} permutations{raised}, so that a corrected p ≤ {REACH:g} is reachable)"


def unmarkable_note(names: Sequence[str], settings: SignificanceConfig) -> str:
    """A footnote's sentence naming the families (``names``) where no value could be marked, and why; empty where
    there is none."""
    if not names:
        return ""
    why = (
        "the exact randomization test over so few queries cannot give a p-value that, corrected, falls below "
        if settings.test == "randomization"
        else "too few queries to test at "
    )
    return f" No mark was reachable for {', '.join(names)}: {why}{SIGNIFICANCE}."


@dataclass(frozen=True)
class Compared:
    """One system of one run: its mean of each measure and how many queries it is over, its p-value against each of
    its baselines on each tested measure (``p_values[baseline][measure]``, corrected within its family), the
    marks those earn on each tested measure, and the family of its tests on each (``families``; none where it is
    not tested)."""

    means: dict[str, float]
    queries: int
    p_values: dict[str, dict[str, float]]
    marks: dict[str, str]
    families: dict[str, Family] = field(default_factory=dict)


def compare(
    runs: Sequence[PerQuery],
    baselines: Mapping[str, Sequence[str]],
    measures: Sequence[str],
    settings: SignificanceConfig,
    tested: Sequence[str] | None = None,
    cells: Sequence[Hashable] | None = None,
) -> list[dict[str, Compared]]:
    """Every system of every run (``runs``: each one's per-query values): its means of ``measures``, and its tests
    against its ``baselines`` (system -> its baselines, in the order of their marks; a system with none is not
    tested) on each of ``tested`` (default: every measure), over the queries of the system's values, corrected
    within the ``family`` of ``settings.correction`` (``cells``: each run's cell; default: one cell for all). In
    a family, tests of identical per-query values are one test, counted once; the randomization test runs with
    the permutations its family needs (``permutations_for``). One dict per run, its systems in the order of its
    values."""
    tested = list(measures if tested is None else tested)
    cells = [None] * len(runs) if cells is None else list(cells)
    contents: dict[Test, tuple] = {}  # each test's queries and both systems' values on them
    for run, per_query in enumerate(runs):
        for system in per_query:
            for baseline in baselines.get(system, ()):
                for measure in tested:
                    queries = tuple(sorted(per_query[system][measure]))
                    ours = tuple(per_query[system][measure][q] for q in queries)
                    theirs = tuple(per_query[baseline][measure][q] for q in queries)
                    contents[Test(run, system, baseline, measure)] = (queries, ours, theirs)
    families: dict[Hashable, dict[Test, tuple]] = {}
    for test, content in contents.items():
        families.setdefault(family(test, settings.correction, cells[test.run]), {})[test] = content
    corrected: dict[Test, float] = {}
    family_of: dict[Test, Family] = {}
    for members in families.values():
        distinct = list(dict.fromkeys(members.values()))
        permutations = permutations_for(len(distinct), settings)
        raw = {content: p_value(content[1], content[2], settings, permutations) for content in distinct}
        adjusted = adjust(raw, settings.correction)
        lowest = min(smallest_p(len(content[0]), settings, permutations) for content in distinct)
        found = Family(len(distinct), permutations, len(distinct) * lowest < SIGNIFICANCE)
        for test, content in members.items():
            corrected[test], family_of[test] = adjusted[content], found
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
                {m: family_of[Test(run, system, own[0], m)] for m in tested} if own else {},
            )
        compared.append(found)
    return compared


def _mean(values: Mapping[str, float]) -> float:
    return sum(values.values()) / len(values)
