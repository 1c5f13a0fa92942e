import numpy as np
import pytest
from scipy.stats import permutation_test, ttest_rel

from taskvec_ir.config.significance import SignificanceConfig
from taskvec_ir.reporting.significance import adjust, compare, p_value

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


def test_holm_corrects_over_every_test_of_a_measure_across_the_runs():
    p = scipy_p_values()
    # the six tests in ascending order (ΘT's against BM25 twice: a tie)
    assert p["close-bm25"] < p["ir-bm25"] < p["below-ir"] < p["below-bm25"] < p["close-ir"]
    holm = SignificanceConfig(correction="holm")
    found = compare(two_runs(), BASELINES, ["ndcg@10"], holm)
    assert p_values_of(found) == pytest.approx(
        {
            "close-bm25": 6 * p["close-bm25"],
            "ir-bm25 (run 1)": 5 * p["ir-bm25"],  # the tie: both at the larger of 5·p and 4·p
            "ir-bm25 (run 2)": 5 * p["ir-bm25"],
            "below-ir": 3 * p["below-ir"],
            "below-bm25": 3 * p["below-ir"],  # 2·p is below the one before: step-down keeps it monotone
            "close-ir": p["close-ir"],
        }
    )
    assert 2 * p["below-bm25"] < 3 * p["below-ir"]
    # each measure is a family of its own: testing a second one leaves the first's p-values as they were
    both = compare(two_runs(), BASELINES, ["ndcg@10", "recall@100"], holm)
    assert p_values_of(both) == p_values_of(found)


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
