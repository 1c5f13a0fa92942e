import math

import numpy as np
import pytest
from scipy.stats import permutation_test, ttest_rel

from taskvec_ir.config.significance import SignificanceConfig
from taskvec_ir.reporting.significance import Family, adjust, compare, p_value, permutations_for, sign_test

OURS = [0.9, 0.8, 0.7, 0.95, 0.85, 0.9]
BM25 = [0.5, 0.4, 0.6, 0.5, 0.45, 0.55]
CLOSE = [0.89, 0.81, 0.69, 0.96, 0.84, 0.9]
T_TEST, RANDOMIZATION = SignificanceConfig(), SignificanceConfig(test="randomization")


def per_query(*columns, measure="ndcg@10"):
    return {name: {measure: {f"q{i}": v for i, v in enumerate(values)}} for name, values in columns}


def test_a_sweeps_report_tests_task_arithmetic_against_each_baseline_bonferroni_corrected():
    """One run, one system with baselines (as a sweep's report calls it): its family is its baselines."""
    runs = [per_query(("task_arithmetic", OURS), ("bm25", BM25), ("ir_model", CLOSE))]
    (found,) = compare(runs, {"task_arithmetic": ["bm25", "ir_model"]}, ["ndcg@10"], T_TEST)
    p = found["task_arithmetic"].p_values
    assert p["bm25"]["ndcg@10"] == pytest.approx(min(1.0, 2 * ttest_rel(OURS, BM25).pvalue))
    assert p["ir_model"]["ndcg@10"] == pytest.approx(min(1.0, 2 * ttest_rel(OURS, CLOSE).pvalue))
    assert p["bm25"]["ndcg@10"] < 0.05 < p["ir_model"]["ndcg@10"]
    assert found["task_arithmetic"].marks == {"ndcg@10": "▲‡"}  # better than BM25 (‡), not than ΘT (†)
    assert found["bm25"].p_values == {} and found["bm25"].marks == {"ndcg@10": ""}  # no baselines: not tested


def test_identical_runs_are_not_significant():
    for settings in (T_TEST, RANDOMIZATION):
        runs = [per_query(("task_arithmetic", OURS), ("ir_model", OURS))]
        (found,) = compare(runs, {"task_arithmetic": ["ir_model"]}, ["ndcg@10"], settings)
        assert found["task_arithmetic"].p_values == {"ir_model": {"ndcg@10": 1.0}}
        assert found["task_arithmetic"].marks == {"ndcg@10": ""}


# Two runs of three systems over 8 queries (a table's two selections): ΘT well above BM25 in both; TA close to ΘT
# in the first run, clearly below it in the second.
QUERIES = 8
BM25_VALUES = [0.20, 0.30, 0.25, 0.40, 0.35, 0.30, 0.20, 0.45]
IR_VALUES = [b + u for b, u in zip(BM25_VALUES, [0.10, 0.12, 0.09, 0.11, 0.13, 0.10, 0.08, 0.12], strict=True)]
TA_CLOSE = [i + n for i, n in zip(IR_VALUES, [0.03, -0.02, 0.04, 0.01, -0.01, 0.02, 0.03, 0.00], strict=True)]
TA_BELOW = [i + d for i, d in zip(IR_VALUES, [-0.05, -0.06, -0.04, -0.07, -0.05, -0.06, -0.03, -0.05], strict=True)]
BASELINES = {"ir_model": ("bm25",), "task_arithmetic": ("ir_model", "bm25")}


def two_runs():
    def run(ta):
        columns = {"bm25": BM25_VALUES, "ir_model": IR_VALUES, "task_arithmetic": ta}
        return {
            system: {
                "ndcg@10": {f"q{i}": v for i, v in enumerate(values)},
                "recall@100": {f"q{i}": min(1.0, 2 * v) for i, v in enumerate(values)},
            }
            for system, values in columns.items()
        }

    return [run(TA_CLOSE), run(TA_BELOW)]


def scipy_p_values():
    """Each test's p-value from scipy's paired t-test, computed here apart from the code under test."""
    return {
        "ir-bm25": ttest_rel(IR_VALUES, BM25_VALUES).pvalue,  # the same in both runs
        "close-ir": ttest_rel(TA_CLOSE, IR_VALUES).pvalue,
        "close-bm25": ttest_rel(TA_CLOSE, BM25_VALUES).pvalue,
        "below-ir": ttest_rel(TA_BELOW, IR_VALUES).pvalue,
        "below-bm25": ttest_rel(TA_BELOW, BM25_VALUES).pvalue,
    }


def p_values_of(found):
    """The p-values of ``compare``'s two runs, named as ``scipy_p_values`` names them (the runs' ΘT tests apart)."""
    first, second = found
    return {
        "ir-bm25 (run 1)": first["ir_model"].p_values["bm25"]["ndcg@10"],
        "ir-bm25 (run 2)": second["ir_model"].p_values["bm25"]["ndcg@10"],
        "close-ir": first["task_arithmetic"].p_values["ir_model"]["ndcg@10"],
        "close-bm25": first["task_arithmetic"].p_values["bm25"]["ndcg@10"],
        "below-ir": second["task_arithmetic"].p_values["ir_model"]["ndcg@10"],
        "below-bm25": second["task_arithmetic"].p_values["bm25"]["ndcg@10"],
    }


def test_compare_gives_means_bonferroni_corrected_p_values_and_marks_of_each_direction():
    p = scipy_p_values()
    found = compare(two_runs(), BASELINES, ["ndcg@10", "recall@100"], T_TEST, tested=["ndcg@10"])
    assert [list(run) for run in found] == [["bm25", "ir_model", "task_arithmetic"]] * 2
    first, second = found
    assert first["task_arithmetic"].means["ndcg@10"] == pytest.approx(sum(TA_CLOSE) / QUERIES)
    assert second["bm25"].means["recall@100"] == pytest.approx(sum(min(1.0, 2 * v) for v in BM25_VALUES) / QUERIES)
    assert all(c.queries == QUERIES for run in found for c in run.values())
    # Bonferroni within each value's baselines: ΘT has one (BM25), TA two (ΘT, BM25)
    assert p_values_of(found) == pytest.approx(
        {
            "ir-bm25 (run 1)": p["ir-bm25"],
            "ir-bm25 (run 2)": p["ir-bm25"],
            "close-ir": 2 * p["close-ir"],
            "close-bm25": 2 * p["close-bm25"],
            "below-ir": 2 * p["below-ir"],
            "below-bm25": 2 * p["below-bm25"],
        }
    )
    assert 2 * p["close-ir"] > 0.05 and max(p["ir-bm25"], 2 * p["below-ir"], 2 * p["below-bm25"]) < 0.05
    # ▲x / ▼x: significantly better / worse than the baseline marked x (ΘT †, BM25 ‡), in the baselines' order
    assert first["ir_model"].marks == {"ndcg@10": "▲‡"} and first["task_arithmetic"].marks == {"ndcg@10": "▲‡"}
    assert second["task_arithmetic"].marks == {"ndcg@10": "▼†▲‡"}
    assert "recall@100" not in first["task_arithmetic"].p_values["bm25"]  # measured, not tested


def test_holm_corrects_over_the_distinct_tests_of_a_measure_in_one_cell():
    """The two runs are two rows (selections) of one table cell: one family of five distinct tests, ΘT against
    BM25 being the same test in both (identical per-query values: counted once, its p shared)."""
    p = scipy_p_values()
    assert p["close-bm25"] < p["ir-bm25"] < p["below-ir"] < p["below-bm25"] < p["close-ir"]
    holm = SignificanceConfig(correction="holm")
    found = compare(two_runs(), BASELINES, ["ndcg@10"], holm, cells=["cell", "cell"])
    assert p_values_of(found) == pytest.approx(
        {
            "close-bm25": 5 * p["close-bm25"],
            "ir-bm25 (run 1)": 4 * p["ir-bm25"],  # one test, not two
            "ir-bm25 (run 2)": 4 * p["ir-bm25"],
            "below-ir": 3 * p["below-ir"],
            "below-bm25": 3 * p["below-ir"],  # 2·p is below the one before: step-down keeps it monotone
            "close-ir": p["close-ir"],
        }
    )
    assert 2 * p["below-bm25"] < 3 * p["below-ir"]
    assert {c.families["ndcg@10"].tests for run in found for c in run.values() if c.families} == {5}
    assert compare(two_runs(), BASELINES, ["ndcg@10"], holm) == found  # one cell: the default
    # each measure is a family of its own: testing a second one leaves the first's p-values as they were
    both = compare(two_runs(), BASELINES, ["ndcg@10", "recall@100"], holm, cells=["cell", "cell"])
    assert p_values_of(both) == p_values_of(found)
    # each cell is a family of its own: the same runs in two cells are corrected apart
    apart = compare(two_runs(), BASELINES, ["ndcg@10"], holm, cells=["a", "b"])
    first, second = apart
    assert first["task_arithmetic"].p_values["bm25"]["ndcg@10"] == pytest.approx(3 * p["close-bm25"])
    assert second["ir_model"].p_values["bm25"]["ndcg@10"] == pytest.approx(3 * p["ir-bm25"])  # 3rd of 3, after 2
    assert {c.families["ndcg@10"].tests for run in apart for c in run.values() if c.families} == {3}


def large_table(effect: float, rng, datasets: int = 4):
    """The per-query values of a table as large as the issue's (4 datasets × 6 models × 4 selections), 30 queries
    each: in every run, ΘT a little above BM25 and α=1 around ΘT; TA above ΘT by ``effect`` (plus noise). The
    selections of a cell share ΘT and BM25 (fused at one λ), and so their tests against each other."""
    runs, cells = [], []
    for dataset, model in ((d, m) for d in range(datasets) for m in range(6)):
        bm25 = rng.uniform(0.2, 0.6, 30)
        theta = bm25 + rng.normal(0.01, 0.05, 30)
        for _ in range(4):
            values = {"bm25": bm25, "ir_model": theta, "alpha_one": theta + rng.normal(0, 0.05, 30),
                      "task_arithmetic": theta + effect + rng.normal(0, 0.02, 30)}  # fmt: skip
            runs.append({s: {"ndcg@10": {f"q{i}": float(v) for i, v in enumerate(x)}} for s, x in values.items()})
            cells.append(f"d{dataset}/m{model}")
    return runs, cells


def test_a_large_effect_is_marked_under_randomization_and_holm_in_a_large_table_and_a_null_effect_is_not():
    """Across the table the family would hold 576 tests, and no corrected p could fall below 0.05; per cell it holds
    the cell's distinct tests (4 selections × TA's 3 and α=1's 2, ΘT's one shared: 21), every mark reachable."""
    settings = SignificanceConfig(test="randomization", correction="holm")
    rng = np.random.default_rng(0)
    runs, cells = large_table(0.1, rng)
    found = compare(runs, TABLE_BASELINES, ["ndcg@10"], settings, cells=cells)
    assert len(found) == 96 and all(run["task_arithmetic"].marks["ndcg@10"].startswith("▲†") for run in found)
    family = found[0]["task_arithmetic"].families["ndcg@10"]
    assert family.tests == 21 and family.markable and family.permutations == 10000  # 21 · 2/10,001 ≤ 0.005
    null, cells = large_table(0.0, np.random.default_rng(1), datasets=1)
    unmarked = compare(null, TABLE_BASELINES, ["ndcg@10"], settings, cells=cells)
    assert not any("†" in run["task_arithmetic"].marks["ndcg@10"] for run in unmarked)  # no TA = ΘT difference


TABLE_BASELINES = {"ir_model": ("bm25",), "alpha_one": ("ir_model", "bm25"),
                   "task_arithmetic": ("ir_model", "bm25", "alpha_one")}  # fmt: skip


def test_the_permutations_are_raised_until_a_mark_is_reachable_in_the_family():
    """50 distinct tests of a strong effect on 40 queries (every difference positive: no permutation reaches the
    observed mean but the identity, which scipy counts): each p is scipy's smallest, 2/(R + 1), with R raised from
    10,000 to 400·50 − 1, so that the corrected p, 50 · 2/(R + 1), is 0.005."""
    settings = SignificanceConfig(test="randomization", correction="holm")
    rng = np.random.default_rng(2)
    runs = []
    for _ in range(50):
        theirs = rng.uniform(0.2, 0.5, 40)
        runs.append(per_query(("task_arithmetic", theirs + rng.uniform(0.1, 0.2, 40)), ("ir_model", theirs)))
    found = compare(runs, {"task_arithmetic": ["ir_model"]}, ["ndcg@10"], settings)
    family = found[0]["task_arithmetic"].families["ndcg@10"]
    assert family == Family(tests=50, permutations=19999, markable=True)
    assert all(run["task_arithmetic"].p_values["ir_model"]["ndcg@10"] == pytest.approx(0.005) for run in found)
    assert all(run["task_arithmetic"].marks == {"ndcg@10": "▲†"} for run in found)
    # at the configured 10,000 permutations it would be 50 · 2/10,001 ≈ 0.01: the bound is what raised them
    assert permutations_for(50, settings) == 19999 and permutations_for(2, settings) == 10000


def test_a_family_an_exact_test_cannot_mark_says_so():
    """Five queries: the exact test enumerates 2^5 = 32 swaps, its smallest p 2/32; three tests make it 0.19."""
    settings = SignificanceConfig(test="randomization")
    runs = [per_query(("task_arithmetic", [0.9] * 5), ("ir_model", [0.1] * 5), ("bm25", [0.2] * 5),
                      ("alpha_one", [0.3] * 5))]  # fmt: skip
    (found,) = compare(runs, {"task_arithmetic": ["ir_model", "bm25", "alpha_one"]}, ["ndcg@10"], settings)
    assert found["task_arithmetic"].families["ndcg@10"] == Family(tests=3, permutations=10000, markable=False)
    assert found["task_arithmetic"].p_values["ir_model"]["ndcg@10"] == pytest.approx(3 * 2 / 32)
    assert found["task_arithmetic"].marks == {"ndcg@10": ""}


def test_the_randomization_test_is_exact_on_few_queries_and_matches_scipy_on_many():
    # 6 queries: 2^6 = 64 sign flips, all enumerated. Every difference is positive, so only the identity and the
    # flip of all signs reach |mean| ≥ the observed one: p = 2/64.
    assert p_value(OURS, BM25, RANDOMIZATION) == pytest.approx(2 / 64)
    # By hand: the flips whose |mean difference| reaches the observed one.
    differences = np.subtract(CLOSE, BM25)
    signs = np.array([[1 - 2 * ((i >> j) & 1) for j in range(6)] for i in range(64)])
    by_hand = np.mean(np.abs((signs * differences).mean(axis=1)) >= abs(differences.mean()) - 1e-12)
    assert p_value(CLOSE, BM25, RANDOMIZATION) == pytest.approx(by_hand)
    rng = np.random.default_rng(3)
    ours, theirs = rng.random(40), rng.random(40) + 0.1
    expected = permutation_test(
        (ours, theirs),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        n_resamples=2000,
        rng=7,
    ).pvalue
    settings = SignificanceConfig(test="randomization", permutations=2000, seed=7)
    assert p_value(list(ours), list(theirs), settings) == pytest.approx(expected)
    assert p_value(list(ours), list(theirs), settings) == p_value(list(ours), list(theirs), settings)  # seeded


def test_holm_steps_down_where_bonferroni_multiplies():
    raw = {"a": 0.01, "b": 0.04, "c": 0.03}
    assert adjust(raw, "bonferroni") == pytest.approx({"a": 0.03, "b": 0.12, "c": 0.09})
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1 -> 0.03, 0.06, 0.04 -> monotone: 0.03, 0.06, 0.06
    assert adjust(raw, "holm") == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06})
    assert adjust({"a": 0.6, "b": 0.7}, "holm") == {"a": 1.0, "b": 1.0}


def binomial_two_sided(helped, hurt):
    """By hand: twice the probability of a split at least as uneven as the smaller side, of n fair coin flips."""
    n, low = helped + hurt, min(helped, hurt)
    return min(1.0, 2 * sum(math.comb(n, k) for k in range(low + 1)) / 2**n)


def test_the_sign_test_is_the_two_sided_binomial_test_of_helped_against_hurt():
    # 2 of 10: 2·(C(10,0) + C(10,1) + C(10,2)) / 2^10 = 2·56/1024
    assert sign_test(2, 8) == pytest.approx(112 / 1024, rel=1e-12) == sign_test(8, 2)
    assert sign_test(56, 93) == pytest.approx(binomial_two_sided(56, 93), rel=1e-9)  # the Cranfield α 0.5
    assert 0.002 < sign_test(56, 93) < 0.004
    assert sign_test(5, 5) == 1.0 and sign_test(0, 0) == 1.0  # an even split, and no query changed
    assert sign_test(0, 6) == pytest.approx(2 / 64)  # the smallest p six queries can give
