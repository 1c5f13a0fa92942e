"""A table's analyses (``analyses=[alpha_response,depth]`` on the table's command): every cell's test-evaluating jobs
run them, table.csv gains their columns on task arithmetic's rows, and table.md a section for each."""

import csv
import json
import subprocess
from types import SimpleNamespace

import pytest

from taskvec_ir.config.systems import PAPER_ORDER
from taskvec_ir.reporting import tables
from taskvec_ir.runs import table

# A job's metrics.json "analyses", as pipeline.analyses.run_analyses writes them.
ANALYSES = {
    "alpha_response": {"measure": "ndcg@10", "ir_model": 0.40, "chosen": 0.42, "oracle": 0.47,
                       "helped": 0.25, "hurt": 0.125, "unchanged": 0.625},
    "depth": {"measure": "ndcg@10", "bm25": 0.30, "device": "cpu, 2 threads", "depths": [
        {"depth": 5, "ndcg@10": 0.39, "gain_kept": 0.75, "pairs_per_query": 5, "cost_share": 0.5,
         "seconds_per_query": 0.02},
        {"depth": 10, "ndcg@10": 0.42, "gain_kept": 1.0, "pairs_per_query": 10, "cost_share": 1.0,
         "seconds_per_query": 0.04},
    ]},
}  # fmt: skip


def test_a_tables_steps_pass_the_analyses_to_every_job_that_evaluates_test(cranfield_cfg, tmp_path):
    cfg = cranfield_cfg("dataset=cranfield_split")
    cell = table.Cell("cranfield_split", "tiny", "task_arithmetic", (), cfg)
    shared = table.command_overrides(["experiment=table_demo", "analyses=[alpha_response,depth]"], [])
    (dev, selections) = table.Grid(cfg, tmp_path, shared, [cell], []).steps(cell)
    # The dev sweep's trials skip them (pipeline.analyses); its final evaluation and each selection job run them.
    assert "analyses=[alpha_response,depth]" in dev[1] and "analyses=[alpha_response,depth]" in selections[1]


def test_analysis_columns_are_on_task_arithmetics_rows_and_sections_in_the_table(cranfield_cfg, tmp_path, monkeypatch):
    cfg = cranfield_cfg("analyses=[alpha_response,depth]")
    cell = table.Cell("cranfield", "tiny", "task_arithmetic", (), cfg)
    grid = table.Grid(cfg, tmp_path / "tiny", [], [cell], [])
    per_query = {s: {m: {"1": 0.5, "2": 0.25} for m in cfg.measures} for s in PAPER_ORDER}

    def multirun(command, **kwargs):  # each selection job's files; NQC's ran without the analyses
        for selection in cell.selections(cfg.table.selections):
            folder = grid.result_dir(cell, selection)
            folder.mkdir(parents=True)
            (folder / "per_query.json").write_text(json.dumps({"test": per_query}))
            metrics = {"selection": {"alpha": 0.5, "lam": 0.3, "folds": [{"queries": None, "alpha": 0.5, "lam": 0.3}]}}
            metrics.update({} if selection == "nqc" else {"analyses": ANALYSES})
            (folder / "metrics.json").write_text(json.dumps(metrics))
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(table, "subprocess", SimpleNamespace(run=multirun, STDOUT=subprocess.STDOUT, DEVNULL=None))
    assert grid.run() == []
    found = grid.rows()
    assert len({tuple(row) for row in found}) == 1  # one csv header for every row
    ta = {r["selection"]: r for r in found if r["system"] == "task_arithmetic"}
    assert ta["stability"]["alpha_response/oracle"] == 0.47 and ta["stability"]["alpha_response/hurt"] == 0.125
    assert ta["stability"]["depth/5/ndcg@10"] == 0.39 and ta["stability"]["depth/10/seconds_per_query"] == 0.04
    assert ta["nqc"]["alpha_response/oracle"] is None and ta["nqc"]["depth/5/ndcg@10"] is None
    assert all(r["alpha_response/oracle"] is None for r in found if r["system"] != "task_arithmetic")
    written = list(csv.DictReader(tables.csv_text(found).splitlines()))
    assert written[3]["alpha_response/chosen"] == "0.42" and written[3]["depth/5/gain_kept"] == "0.75"
    sections = tables.analysis_sections(found, "ndcg@10")
    lines = sections.splitlines()
    assert "### Where does τ help: per-query α response" in lines
    assert "| cranfield | tiny | task_arithmetic | stability | 0.4000 | 0.4200 | 0.4700 | 25% | 12% | 62% |" in lines
    assert "### Re-ranking depth: ndcg@10 and its cost" in lines
    depth_row = (
        "| cranfield | tiny | task_arithmetic | stability | 0.3900 (75% of gain, 0.02 s/q) | 0.4200 (100% of gain, "
    )
    assert any(line.startswith(depth_row) for line in lines)
    assert not any("| nqc |" in line for line in lines)  # a job without the analyses has no row in their sections


@pytest.mark.parametrize("analysed", [{}, None])
def test_a_table_without_analyses_has_no_section_and_no_column(analysed):
    assert tables.analysis_columns(analysed) == {}
    row = {"system": "task_arithmetic", "failed": None, "dataset": "d", "model": "m", "merge": "t", "selection": "nqc"}
    assert tables.analysis_sections([row], "ndcg@10") == ""
