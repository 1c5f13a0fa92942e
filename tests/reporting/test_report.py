import numpy as np
import pytest
from scipy.stats import permutation_test, ttest_rel

from taskvec_ir.config.significance import SignificanceConfig
from taskvec_ir.reporting import tables
from taskvec_ir.reporting.report import adjust, adjust_table, p_value, report_significance, results_table

OURS = [0.9, 0.8, 0.7, 0.95, 0.85, 0.9]
BM25 = [0.5, 0.4, 0.6, 0.5, 0.45, 0.55]
CLOSE = [0.89, 0.81, 0.69, 0.96, 0.84, 0.9]
T_TEST, RANDOMIZATION = SignificanceConfig(), SignificanceConfig(test="randomization")


def per_query(*columns):
    return {name: {"ndcg@10": {f"q{i}": v for i, v in enumerate(values)}} for name, values in columns}


def test_paired_t_test_with_bonferroni():
    columns = per_query(("ta", OURS), ("bm25", BM25), ("ir", CLOSE))
    p = report_significance(columns, "ta", ["bm25", "ir"], ["ndcg@10"], T_TEST)
    assert p["bm25"]["ndcg@10"] == pytest.approx(min(1.0, 2 * ttest_rel(OURS, BM25).pvalue))
    assert p["ir"]["ndcg@10"] == pytest.approx(min(1.0, 2 * ttest_rel(OURS, CLOSE).pvalue))
    assert p["bm25"]["ndcg@10"] < 0.05 < p["ir"]["ndcg@10"]


def test_identical_runs_are_not_significant():
    for settings in (T_TEST, RANDOMIZATION):
        assert report_significance(per_query(("ta", OURS), ("same", OURS)), "ta", ["same"], ["ndcg@10"], settings) == {
            "same": {"ndcg@10": 1.0}
        }


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


def test_a_table_corrects_within_rows_or_across_the_whole_table():
    raw = {(0, "bm25", "m"): 0.01, (1, "bm25", "m"): 0.02, (1, "ir", "m"): 0.03, (1, "bm25", "n"): 0.5}
    assert adjust_table(raw, "bonferroni") == pytest.approx(
        {(0, "bm25", "m"): 0.01, (1, "bm25", "m"): 0.04, (1, "ir", "m"): 0.06, (1, "bm25", "n"): 0.5}
    )
    # Holm over the measure's three tests: 0.01·3, 0.02·2, 0.03·1 -> 0.03, 0.04, 0.04; n is its own family
    assert adjust_table(raw, "holm") == pytest.approx(
        {(0, "bm25", "m"): 0.03, (1, "bm25", "m"): 0.04, (1, "ir", "m"): 0.04, (1, "bm25", "n"): 0.5}
    )


def test_tables_mark_the_direction_of_each_significant_difference_and_name_the_test():
    means = {
        "bm25": {"ndcg@10": 0.5},
        "ir_model": {"ndcg@10": 0.84},
        "alpha_one": {"ndcg@10": 0.9},
        "task_arithmetic": {"ndcg@10": 0.85},
    }
    p = {"ir_model": {"ndcg@10": 0.6}, "bm25": {"ndcg@10": 0.001}, "alpha_one": {"ndcg@10": 0.01}}
    lams = {"bm25": None, "ir_model": 0.2, "alpha_one": 0.4, "task_arithmetic": 0.3}
    table = results_table(means, p, "task_arithmetic", ["ndcg@10"], RANDOMIZATION, lams)
    markdown = tables.markdown(table)
    assert "| BM25 | – | 0.5000 |" in markdown and "| ΘT | 0.2 | 0.8400 |" in markdown
    assert "| TA | 0.3 | 0.8500▲‡▼§ |" in markdown  # better than BM25, worse than α=1
    assert "▲x / ▼x: significantly better / worse than the baseline marked x († ΘT, ‡ BM25, § α=1)" in markdown
    assert "Fisher's paired randomization test" in markdown and "p < 0.05" in markdown
    latex = tables.latex(table)
    assert r"TA & 0.3 & 0.8500$^{\blacktriangle\ddagger\blacktriangledown\S}$ \\" in latex
