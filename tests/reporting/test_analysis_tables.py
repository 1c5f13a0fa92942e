"""A table's sections beyond its results, from constructed rows: the analyses' (``analyses=[alpha_response,depth]``)
and how sure each selection is (``selection.bootstrap``), as table.csv columns and tables."""

import csv

import pytest

from taskvec_ir.config.systems import PAPER_ORDER
from taskvec_ir.reporting.analysis_tables import (
    BOOTSTRAP_COLUMNS,
    analysis_columns,
    analysis_sections,
    bootstrap_columns,
    bootstrap_table,
)
from taskvec_ir.reporting.rendering import csv_text, latex, markdown

# A job's metrics.json "analyses", as pipeline.analyses.run_analyses writes them.
ANALYSES = {
    "alpha_response": {"measure": "ndcg@10", "ir_model": 0.40, "chosen": 0.42, "oracle": 0.47,
                       "helped": 0.25, "hurt": 0.125, "unchanged": 0.625, "sign_p": 0.0034},
    "depth": {"measure": "ndcg@10", "bm25": 0.30, "device": "cpu, 2 threads", "depths": [
        {"depth": 5, "ndcg@10": 0.39, "gain_kept": 0.75, "pairs_per_query": 5, "cost_share": 0.5,
         "seconds_per_query": 0.02},
        {"depth": 10, "ndcg@10": 0.42, "gain_kept": 1.0, "pairs_per_query": 10, "cost_share": 1.0,
         "seconds_per_query": 0.04},
    ]},
}  # fmt: skip


def row(selection, system, **columns):
    """A row of ``runs.table.rows`` (the columns these sections read)."""
    labels = {"dataset": "d", "model": "m", "merge": "task_arithmetic", "selection": selection, "system": system}
    folds = "0.3/0.2 0.5/0.2" if selection == "cross_validation" else None
    return {**labels, "alpha": 0.4, "lam": 0.2, "queries": 30, "ndcg@10": 0.3, "folds": folds, "failed": None,
            **columns}  # fmt: skip


def test_a_jobs_analyses_are_flat_columns_and_a_section_each():
    columns = analysis_columns(ANALYSES)
    assert columns == {
        "alpha_response/ir_model": 0.40,
        "alpha_response/chosen": 0.42,
        "alpha_response/oracle": 0.47,
        "alpha_response/helped": 0.25,
        "alpha_response/hurt": 0.125,
        "alpha_response/unchanged": 0.625,
        "alpha_response/sign_p": 0.0034,
        "depth/5/ndcg@10": 0.39,
        "depth/5/gain_kept": 0.75,
        "depth/5/seconds_per_query": 0.02,
        "depth/10/ndcg@10": 0.42,
        "depth/10/gain_kept": 1.0,
        "depth/10/seconds_per_query": 0.04,
    }
    # NQC's job ran without them: its row has the columns empty (as runs.table.rows gives every row every column)
    found = [row("stability", s, **(columns if s == "task_arithmetic" else {})) for s in PAPER_ORDER]
    found.append(row("nqc", "task_arithmetic", **dict.fromkeys(columns)))
    written = list(csv.DictReader(csv_text(found).splitlines()))
    assert written[3]["alpha_response/chosen"] == "0.42" and written[3]["depth/5/gain_kept"] == "0.75"
    lines = analysis_sections(found, "ndcg@10").splitlines()
    assert "### Where does τ help: per-query α response" in lines
    assert "| d | m | task_arithmetic | stability | 0.4000 | 0.4200 | 0.4700 | 25% | 12% | 62% | 0.0034 |" in lines
    assert "### Re-ranking depth: ndcg@10 and its cost" in lines
    depth_row = "| d | m | task_arithmetic | stability | 0.3900 (75% of gain, 0.02 s/q) | 0.4200 (100% of gain, "
    assert any(line.startswith(depth_row) for line in lines)
    assert not any("| nqc |" in line for line in lines)  # a job without the analyses has no row in their sections


def test_a_depth_without_a_gain_over_bm25_says_no_gain():
    """TA at or below BM25 at the deepest k: ``gain_kept`` is None, and the table says so rather than nothing."""
    columns = {"depth/5/ndcg@10": 0.35, "depth/5/gain_kept": None, "depth/5/seconds_per_query": None,
               "depth/10/ndcg@10": 0.38, "depth/10/gain_kept": None, "depth/10/seconds_per_query": None}  # fmt: skip
    lines = analysis_sections([row("stability", "task_arithmetic", **columns)], "ndcg@10").splitlines()
    assert "| d | m | task_arithmetic | stability | 0.3500 (no gain) | 0.3800 (no gain) |" in lines


@pytest.mark.parametrize("analysed", [{}, None])
def test_a_table_without_analyses_has_no_section_and_no_column(analysed):
    assert analysis_columns(analysed) == {}
    found = {
        "system": "task_arithmetic",
        "failed": None,
        "dataset": "d",
        "model": "m",
        "merge": "t",
        "selection": "nqc",
    }
    assert analysis_sections([found], "ndcg@10") == ""


def test_how_sure_is_each_selection_shows_the_bootstrap_of_task_arithmetics_rows():
    """The section and table.csv's columns, from each job's selection_bootstrap.json (as the table reads it)."""
    result = {
        "modal_alpha": 0.5,
        "modal_share": 0.625,
        "regret": {"mean": 0.0123, "low": 0.0, "high": 0.04},
        "regret_reachable": {"mean": 0.002, "low": 0.0, "high": 0.01},
        "p_beats_ir_model": 0.35,
    }
    found = [row("nqc", s) for s in PAPER_ORDER] + [row("cross_validation", s) for s in PAPER_ORDER]
    for each in found:
        sure = result if each["system"] == "task_arithmetic" and each["selection"] == "nqc" else None
        each.update(bootstrap_columns(sure))
    ta = next(r for r in found if r["system"] == "task_arithmetic" and r["selection"] == "nqc")
    assert {k: ta[k] for k in BOOTSTRAP_COLUMNS} == {
        "modal_alpha": 0.5,
        "modal_alpha_share": 0.625,
        "regret_mean": 0.0123,
        "regret_low": 0.0,
        "regret_high": 0.04,
        "regret_reachable_mean": 0.002,
        "regret_reachable_low": 0.0,
        "regret_reachable_high": 0.01,
        "p_beats_ir_model": 0.35,
    }
    assert all(r["modal_alpha"] is None for r in found if r is not ta)
    table = bootstrap_table(found, "ndcg@10", 0.9, 200)
    lines = markdown(table).splitlines()
    assert lines[0] == (
        "| dataset | model | selection | modal α (share) | regret [90% CI] | regret, reachable | P(TA beats ΘT) |"
    )
    assert lines[2] == "| d | m | NQC | 0.5 (62%) | 0.0123 [0.0000, 0.0400] | 0.0020 [0.0000, 0.0100] | 0.35 |"
    assert len(table.rows) == 1 and "200 bootstrap resamples" in table.footnote
    assert "one oracle for every row, the best single (α, λ) of the shared grid" in table.footnote
    assert r"d & m & NQC & 0.5 (62\%) & 0.0123 [0.0000, 0.0400] & 0.0020 [0.0000, 0.0100] & 0.35 \\" in latex(table)
    header = csv_text(found).splitlines()[0]
    assert header.endswith(
        "modal_alpha,modal_alpha_share,regret_mean,regret_low,regret_high,regret_reachable_mean,"
        "regret_reachable_low,regret_reachable_high,p_beats_ir_model"
    )
