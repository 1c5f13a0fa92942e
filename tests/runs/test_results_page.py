"""A job folder explains itself: results.md holds the settings behind the numbers, how α and λ were chosen, the
table (the numbers of metrics.json) and the warnings; the printed summary is in the job's log file too."""

import json
import logging
import os

import pytest

from taskvec_ir.runs.job import run_job
from taskvec_ir.runs.results_page import how_chosen, warnings

MEASURES = ["ndcg@10", "precision@10", "ndcg@3", "map@100", "recall@100"]


@pytest.fixture
def app_log(tmp_path):
    """A log file on the root logger, as Hydra's job logging gives every job one (its app.log)."""
    handler = logging.FileHandler(tmp_path / "app.log")
    logging.getLogger().addHandler(handler)
    yield tmp_path / "app.log"
    logging.getLogger().removeHandler(handler)
    handler.close()


def table_rows(page: str) -> dict[str, list[str]]:
    rows = [line.strip("|").split("|") for line in page.splitlines() if line.startswith("| ") and "---" not in line]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


def test_a_job_writes_results_md_and_logs_what_it_prints(cranfield_cfg, tmp_path, app_log, capsys):
    cfg = cranfield_cfg("alpha.value=0.7", "lam.value=0.4", "wandb.mode=disabled")
    run_job(cfg, tmp_path / "job")
    page = (tmp_path / "job" / "results.md").read_text()
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "job" / "results.md").stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it
    means = json.loads((tmp_path / "job" / "metrics.json").read_text())["test"]
    assert page.startswith("# cranfield test · minilm_demo · α=0.7 · λ=0.4 (BM25 weight)\n")
    assert "- **dataset**: cranfield (cranfield), split test: 225 judged queries" in page
    assert "- **first stage**: BM25 (lucene, k1=0.9, b=0.4), top 10 re-ranked" in page
    assert "- **α**: 0.7, as given (alpha.value)" in page and "- **λ (BM25 weight)**: 0.4, as given (lam.value)" in page
    # the table: metrics.json's numbers, each system with its λ
    assert table_rows(page) == {
        heading: [lam, *(f"{means[system][m]:.4f}" for m in MEASURES)]
        for heading, system, lam in (("BM25", "bm25", "–"), ("ΘT", "ir_model", "0.4"), ("TA", "task_arithmetic", "0.4"))
    }
    # under the table, and under the printed one, the measures 10 candidates limit (metrics.json's warnings)
    unmoved = "precision@10, recall@100: a measure of the top k as a set with k ≥ 10, the candidates re-ranked"
    beyond = "map@100, recall@100: cut deeper than the 10 documents retrieved (retriever.top_k)."
    footnote = page[page.index("λ: the BM25 weight") :].split("\n")[0]
    assert unmoved in footnote and footnote.endswith(beyond)
    warned = json.loads((tmp_path / "job" / "metrics.json").read_text())["warnings"]
    assert warned["beyond_top_k"] == ["map@100", "recall@100"]
    printed = capsys.readouterr().out
    assert unmoved in printed and beyond in printed and "task_arithmetic" in printed
    logged = app_log.read_text()
    assert printed[printed.index("cranfield test · ") :].strip() in logged  # what the console shows, the log holds


def test_a_trials_table_goes_to_its_log_not_the_console(cranfield_cfg, tmp_path, app_log, capsys):
    """A sweep prints one line per trial (its sweeper's); the trial's own table is in its folder and log."""
    cfg = cranfield_cfg(
        "dataset=cranfield_split", "split=dev", "alpha.value=0.7", "lam=dev_grid", "lam.grid=[0.2,0.6]", "trial=3",
        "wandb.mode=disabled",
    )  # fmt: skip
    run_job(cfg, tmp_path / "job")
    assert "task_arithmetic" not in capsys.readouterr().out
    assert "task_arithmetic" in app_log.read_text()
    page = (tmp_path / "job" / "results.md").read_text()
    lam = json.loads((tmp_path / "job" / "objective.json").read_text())["lam"]
    assert "- **α**: 0.7, drawn by the sweeper (trial 3)" in page
    assert f"- **λ (BM25 weight)**: {lam:g}, chosen from lam.grid by ndcg@10 on dev" in page


def test_how_alpha_and_lambda_were_chosen_is_said_for_every_way_of_choosing(cranfield_cfg):
    grid = cranfield_cfg("lam=dev_grid", "dataset=cranfield_split")
    assert how_chosen(grid, 0.5, 0.2, None) == (
        "0.5, as given (alpha.value)",
        "0.2, chosen from lam.grid by ndcg@10 on dev",
    )
    folds = [{"alpha": 0.25, "lam": 0.2}, {"alpha": 0.5, "lam": 0.2}]
    selection = {"method": "cross_validation", "criterion": "ndcg@10 on the other folds", "folds": folds}
    assert how_chosen(grid, None, 0.2, selection) == (
        "chosen by selection=cross_validation (ndcg@10 on the other folds), per fold: 0.25/0.2 0.5/0.2",
        "0.2, chosen by selection=cross_validation (ndcg@10 on the other folds)",
    )
    final = cranfield_cfg(
        "sweep=alpha",
        "sweep.final=true",
        "split=test",
        "lam.value=0.3",
        "+dataset.splits.dev={sample_of:test,fraction:0.3}",
    )
    final.sweep.study.name = "s"
    assert how_chosen(final, 0.4, 0.3, None) == (
        "0.4, the best of study s's trials on dev by ndcg@10",
        "0.3, the best trial's (chosen from lam.grid by ndcg@10 on dev)",
    )
    final.retriever.dense = True
    assert how_chosen(final, 0.4, None, None)[1] == "not applied: retriever=dense fuses nothing"


def test_the_warnings_name_the_queries_that_score_zero_and_leave_the_depths_to_the_tables_footnote():
    found = {
        "no_text": ["3"],
        "no_relevant": [str(q) for q in range(12)],
        "unmoved_by_reranking": ["recall@100"],
        "beyond_top_k": ["map@100", "recall@100"],
    }
    assert warnings(found) == [
        "1 judged queries score 0 on every system (in the qrels, not among the split's queries): 3",
        "12 judged queries score 0 on every system (every judgement is grade 0: nothing to find): 0, 1, 2, 3, 4, 5, "
        "6, 7, 8, 9, …",
    ]
