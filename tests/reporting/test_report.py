import pytest
from scipy.stats import ttest_rel

from taskvec_ir.reporting import tables
from taskvec_ir.reporting.report import paired_t_tests, results_table

OURS = [0.9, 0.8, 0.7, 0.95, 0.85, 0.9]
BM25 = [0.5, 0.4, 0.6, 0.5, 0.45, 0.55]
CLOSE = [0.89, 0.81, 0.69, 0.96, 0.84, 0.9]


def per_query(*columns):
    return {name: {"ndcg@10": {f"q{i}": v for i, v in enumerate(values)}} for name, values in columns}


def test_paired_t_test_with_bonferroni():
    p = paired_t_tests(per_query(("ta", OURS), ("bm25", BM25), ("ir", CLOSE)), "ta", ["bm25", "ir"], ["ndcg@10"])
    assert p["bm25"]["ndcg@10"] == pytest.approx(min(1.0, 2 * ttest_rel(OURS, BM25).pvalue))
    assert p["ir"]["ndcg@10"] == pytest.approx(min(1.0, 2 * ttest_rel(OURS, CLOSE).pvalue))
    assert p["bm25"]["ndcg@10"] < 0.05 < p["ir"]["ndcg@10"]


def test_identical_runs_are_not_significant():
    p = paired_t_tests(per_query(("ta", OURS), ("same", OURS)), "ta", ["same"], ["ndcg@10"])
    assert p == {"same": {"ndcg@10": 1.0}}


def test_tables_mark_significant_baselines():
    means = {"bm25": {"ndcg@10": 0.5}, "ir_model": {"ndcg@10": 0.84}, "task_arithmetic": {"ndcg@10": 0.85}}
    p = {"bm25": {"ndcg@10": 0.001}, "ir_model": {"ndcg@10": 0.6}}
    table = results_table(means, p, "task_arithmetic", ["ndcg@10"])
    markdown = tables.markdown(table)
    assert "| BM25 | 0.5000 |" in markdown and "| TA | 0.8500‡ |" in markdown and "| ΘT | 0.8400 |" in markdown
    assert "‡ differs from BM25" in markdown and "p < 0.05" in markdown
    latex = tables.latex(table)
    assert r"TA & 0.8500$^{\ddagger}$ \\" in latex and r"$\Theta_T$ & 0.8400 \\" in latex
