"""Tables as users run them (``taskvec-ir experiment=<a table>``), on a tiny triple and real Cranfield: a cell with
a dev split (``cranfield_split``) and one without (``cranfield``: cross-validation); a general domain on a BEIR
folder's cell; and the table compiled from jobs' files written here (rows, p-values, failures, analyses)."""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import yaml
from omegaconf import OmegaConf

from taskvec_ir.config.systems import PAPER_ORDER
from taskvec_ir.errors import UserError
from taskvec_ir.reporting import compiled_table
from taskvec_ir.reporting.compiled_table import general_sections
from taskvec_ir.reporting.rendering import csv_text, markdown
from taskvec_ir.reporting.results_tables import BASELINES, GENERAL_BASELINES, cells_table
from taskvec_ir.reporting.significance import compare
from taskvec_ir.runs import table, table_folder
from taskvec_ir.runs.compose import typed_config
from taskvec_ir.runs.sweeping import pareto
from taskvec_ir.runs.table_folder import TableFolder
from taskvec_ir.runs.table_grid import Cell, cells, general_domains
from taskvec_ir.storage.outputs import record_failure

from beir_folders import write_beir_folder
from tiny_models import tiny_triple
from wandb_records import curve, logged_table, run_contents

TASKVEC_IR = Path(sys.executable).parent / "taskvec-ir"
TABLE = """# @package _global_
task: table
table:
  name: tiny
  datasets:
    cranfield_split: []
  models:
    tiny: [model=minilm_demo, model.ir={ir}, model.base={base}, model.domain={domain}]
  selections: [pseudo_queries, stability, nqc, entropy]
selection:
  alphas: [0.0, 0.5, 1.0]
  pseudo_queries:
    count: 20
lam:
  grid: [0.0, 0.3, 0.6, 1.0]
retriever:
  top_k: 5
model:
  scorer:
    show_progress: false
"""


@pytest.fixture(scope="module")
def run_table(tmp_path_factory, mirror_dir):
    """``taskvec-ir experiment=tiny_table`` from a user's config folder, into one table folder."""
    root = tmp_path_factory.mktemp("table")
    triple = tiny_triple(root / "triple", "bi_encoder")
    (root / "conf" / "experiment").mkdir(parents=True)
    (root / "conf" / "experiment" / "tiny_table.yaml").write_text(TABLE.format(**triple))

    def run(*overrides: str, expect: int = 0):
        command = [
            str(TASKVEC_IR),
            f"--config-dir={root / 'conf'}",
            "experiment=tiny_table",
            f"table.dir={root / 'tables' / 'tiny'}",
            f"cache.dir={root / 'cache'}",
            *overrides,
        ]
        env = {**os.environ, "TASKVEC_IR_MIRROR": str(mirror_dir)}
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, cwd=root, stdin=subprocess.DEVNULL, timeout=900
        )
        assert done.returncode == expect, done.stdout[-3000:] + done.stderr[-3000:]
        return done

    run.folder = root / "tables" / "tiny"
    return run


LABEL_FREE = ("pseudo_queries", "stability", "nqc", "entropy")  # the tiny table's selections


def rows(folder: Path) -> list[dict]:
    with open(folder / "table.csv") as lines:
        return list(csv.DictReader(lines))


@pytest.fixture(scope="module")
def one_cell(run_table):
    return run_table()


@pytest.mark.slow
def test_a_cell_with_dev_tunes_on_dev_and_every_selection_is_evaluated_on_test(run_table, one_cell):
    folder = run_table.folder
    cell = folder / "cells" / "cranfield_split" / "tiny" / "task_arithmetic"
    found = rows(folder)
    assert {"dataset", "model", "selection", "system", "alpha", "lam", "ndcg@10", "precision@10"} <= set(found[0])
    assert [(r["selection"], r["system"]) for r in found] == [
        (selection, system)
        for selection in ("dev", *LABEL_FREE)
        for system in ("bm25", "ir_model", "alpha_one", "task_arithmetic")
    ]
    # dev: the cell's sweep (its own study in the table's storage) and its final evaluation on test.
    best = yaml.safe_load((cell / "dev" / "optimization_results.yaml").read_text())
    assert best["study_name"] == "tiny/cranfield_split/tiny/task_arithmetic" and best["n_complete"] == 3
    dev = {r["system"]: r for r in found if r["selection"] == "dev"}
    final = json.loads((cell / "dev" / "final" / "metrics.json").read_text())["test"]
    assert float(dev["task_arithmetic"]["alpha"]) == best["best_params"]["alpha.value"]
    assert float(dev["task_arithmetic"]["lam"]) == best["best_lam"]
    own = json.loads((cell / "dev" / "final" / "metrics.json").read_text())["lam"]  # each baseline's own λ
    assert all(float(dev[s]["lam"]) == own[s] for s in ("ir_model", "alpha_one")) and dev["bm25"]["lam"] == ""
    assert dev["task_arithmetic"]["queries"] == str(len(json.loads((cell / "dev" / "final" / "per_query.json")
        .read_text())["test"]["bm25"]["ndcg@10"]))  # fmt: skip
    for system in PAPER_ORDER:
        assert float(dev[system]["ndcg@10"]) == pytest.approx(final[system]["ndcg@10"])
    # Each label-free selection: its job's choice and test numbers, p-values against ΘT and BM25.
    for method in LABEL_FREE:
        job = json.loads((cell / "selection" / method / "metrics.json").read_text())
        chosen = {r["system"]: r for r in found if r["selection"] == method}
        assert float(chosen["task_arithmetic"]["alpha"]) == job["selection"]["alpha"] in (0.0, 0.5, 1.0)
        assert float(chosen["task_arithmetic"]["lam"]) == job["selection"]["lam"]
        assert float(chosen["alpha_one"]["ndcg@10"]) == pytest.approx(job["test"]["alpha_one"]["ndcg@10"])
        assert 0 <= float(chosen["task_arithmetic"]["p_vs_ir_model[ndcg@10]"]) <= 1
        assert (cell / "selection" / method / "selection_curve.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (folder / "table.md").read_text()
    # P@10 of the 5 candidates re-ranked cannot move: table.csv has it, the table does not show it, and says why
    assert "| cranfield_split | 113 | dev |" in markdown and "### precision@10" not in markdown
    assert "precision@10, recall@100: a measure of the top k as a set with k ≥ 5" in markdown  # retriever.top_k
    assert "paired t-test, two-sided" in markdown and "p_vs_alpha_one[ndcg@10]" in found[0]
    assert "Label-free α against the labelled choice" in markdown
    latex = (folder / "table.tex").read_text()
    assert latex.startswith("% ndcg@10\n\\begin{tabular}") and "% precision@10" not in latex
    assert "| cranfield_split | 113 | dev |" in one_cell.stdout  # printed
    record = run_contents(folder)
    assert record["job_type"] == "table" and record["group"] == "table/tiny" and record["exit_code"] == 0
    assert record["summary"]["table"]["_type"] == "table-file" and record["summary"]["table"]["nrows"] == len(found)
    # The table's own summary: what it holds, and its best task arithmetic per dataset.
    best = max((r for r in found if r["system"] == "task_arithmetic"), key=lambda r: float(r["ndcg@10"]))
    assert {k: record["summary"][k] for k in ("cells", "selection_jobs", "failed_jobs", "objective_measure")} == {
        "cells": 1,
        "selection_jobs": 5,  # the tiny table's dev sweep's final evaluation and its four selections
        "failed_jobs": 0,
        "objective_measure": "ndcg@10",
    }
    assert record["summary"]["best/cranfield_split/task_arithmetic"] == pytest.approx(float(best["ndcg@10"]))
    assert record["summary"]["best/cranfield_split/by"] == f"tiny/task_arithmetic/{best['selection']}"
    assert record["config"]["provenance"]["packages"]["taskvec-ir"]  # the code that compiled it


@pytest.mark.slow
def test_one_tag_finds_every_run_of_a_table_each_with_a_unique_name_and_the_values_it_used(run_table, one_cell):
    folder = run_table.folder
    cell = folder / "cells" / "cranfield_split" / "tiny" / "task_arithmetic"
    trials = sorted((cell / "dev").glob("trial_*"))
    jobs = [*trials, cell / "dev" / "final", *(cell / "selection" / m for m in LABEL_FREE)]
    runs = {job: run_contents(job) for job in [*jobs, folder]}
    assert all("table:tiny" in run["tags"] for run in runs.values())  # the sweep's trials and final included
    names = [run["name"] for run in runs.values()]
    assert len(set(names)) == len(names)
    nqc = runs[cell / "selection" / "nqc"]["name"]
    assert re.fullmatch(r"selection/cranfield_split/minilm_demo/nqc-[0-9a-f]{6}", nqc)
    assert re.fullmatch(r"table/tiny-[0-9a-f]{6}", runs[folder]["name"])
    # One group per cell: its dev sweep's trials and final evaluation, and its selections.
    assert {runs[job]["group"] for job in jobs} == {"table/tiny/cranfield_split/tiny/task_arithmetic"}
    # paper_grid: λ chosen inside each trial from lam.grid; the config says which, and the curve is logged.
    for trial in trials:
        run = runs[trial]
        assert run["config"]["lam"]["value"] is None and run["config"]["lam"]["used"] == run["summary"]["lam"]
        assert run["config"]["lam"]["used"] in (0.0, 0.3, 0.6, 1.0) and "selection:sweep" in run["tags"]
        points = curve(run, "lambda_curve")
        assert [point["lam"] for point in points] == [0.0, 0.3, 0.6, 1.0]
        assert {point["alpha"] for point in points} == {run["config"]["alpha"]["used"]}
        assert max(point["value"] for point in points) == pytest.approx(run["summary"]["objective"])
    # A selection's α and λ are its choice, not the config's default value, which is marked overridden.
    for method in LABEL_FREE:
        run = runs[cell / "selection" / method]
        chosen = json.loads((cell / "selection" / method / "metrics.json").read_text())["selection"]
        assert run["config"]["alpha"]["used"] == chosen["alpha"] and run["config"]["lam"]["used"] == chosen["lam"]
        assert run["config"]["alpha"]["value_overridden_by"] == f"selection={method}"
        assert f"selection:{method}" in run["tags"] and run["job_type"] == "selection"


@pytest.mark.slow
def test_adding_a_dataset_runs_only_its_cell_and_cross_validates_without_dev(run_table, one_cell):
    folder = run_table.folder
    first = folder / "cells" / "cranfield_split" / "tiny" / "task_arithmetic"
    before = {path: path.stat().st_mtime_ns for path in first.rglob("metrics.json")}
    added = run_table("+table.datasets.cranfield=[]")
    output = added.stdout + added.stderr
    assert "Table tiny: 2 cells, 1 done, 1 to run" in output
    assert {path: path.stat().st_mtime_ns for path in before} == before  # nothing of the first cell ran again
    found = rows(folder)
    assert {r["dataset"] for r in found} == {"cranfield_split", "cranfield"}
    cv = {r["system"]: r for r in found if r["dataset"] == "cranfield" and r["selection"] == "cross_validation"}
    assert len(cv["task_arithmetic"]["folds"].split()) == 5  # α/λ of each fold
    job = json.loads((folder / "cells" / "cranfield" / "tiny" / "task_arithmetic" / "selection" /
                      "cross_validation" / "metrics.json").read_text())  # fmt: skip
    assert float(cv["task_arithmetic"]["ndcg@10"]) == pytest.approx(job["test"]["task_arithmetic"]["ndcg@10"])
    # W&B: each fold's α and λ, and "used" the one every fold chose (null when they differ).
    run = run_contents(folder / "cells" / "cranfield" / "tiny" / "task_arithmetic" / "selection" / "cross_validation")
    for key in ("alpha", "lam"):
        assert run["config"][key]["used_per_fold"] == [fold[key] for fold in job["selection"]["folds"]]
        assert run["config"][key]["used"] == job["selection"][key]
    # Each fold's criterion against α (at its λ) and λ (at its α): a line per fold, against its own axis.
    for name, axis in (("alpha_curve", "alpha"), ("lambda_curve", "lam")):
        points = curve(run, name)
        assert {key for point in points for key in point} == {"alpha", "lam", *(f"fold_{k}" for k in range(5))}
        assert run["step_metrics"][f"{name}/*"] == f"{name}/{axis}"
    assert "5-fold CV (no dev)" in (folder / "table.md").read_text()
    # Only cells with a dev split have a study; every cell a record of its test evaluations (test_guard).
    storage = f"sqlite:///{folder / 'optuna.db'}"
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == [
        "tiny/cranfield_split/tiny/task_arithmetic",
        "tiny/cranfield_split/tiny/task_arithmetic:final:" + str(yaml.safe_load(
            (first / "dev" / "optimization_results.yaml").read_text())["best_trial"]),
        "tiny/cranfield_split/tiny/task_arithmetic:tests",
        "tiny/cranfield/tiny/task_arithmetic:tests",
    ]  # fmt: skip
    recorded = json.loads((folder / "test_guard.json").read_text())
    assert [t["what"] for t in recorded["cranfield/tiny/task_arithmetic"]["tests"]] == [
        f"table tiny: {s}" for s in ("cross_validation", *LABEL_FREE)]  # fmt: skip
    assert all(not r["tuned_after_test"] for r in found)
    # Run again: every cell is done, the table is compiled again, nothing is scored.
    again = run_table("+table.datasets.cranfield=[]")
    assert "Table tiny: 2 cells, 2 done, 0 to run" in again.stdout + again.stderr


@pytest.mark.slow
def test_a_table_folder_refuses_results_of_other_settings(run_table, one_cell):
    done = run_table("retriever.top_k=7", expect=1)
    assert "cell cranfield_split/tiny/task_arithmetic was run with other settings (retriever.top_k differ)" in (
        done.stderr
    )


@pytest.mark.slow
def test_a_selection_that_fails_leaves_the_cells_other_selections_compiled(run_table, tmp_path):
    """Two α values: stability (which needs three) fails in the cell's multirun; nqc and entropy, after it, still
    run, and the table is compiled with stability's rows marked failed, naming why; the command exits non-zero."""
    done = run_table("table.name=failing", f"table.dir={tmp_path}", "selection.alphas=[0.0,1.0]", expect=1)
    stability = tmp_path / "cells" / "cranfield_split" / "tiny" / "task_arithmetic" / "selection" / "stability"
    assert "selection.alphas" in (stability / "error.txt").read_text() and not (stability / "metrics.json").exists()
    assert "1 of 5 selections failed" in done.stderr and "stability failed (selection.alphas: stability" in done.stderr
    found = rows(tmp_path)
    assert {r["selection"] for r in found if not r["failed"]} == {"dev", "pseudo_queries", "nqc", "entropy"}
    assert all(r["failed"].startswith("selection.alphas: stability") for r in found if r["selection"] == "stability")
    assert (
        "| cranfield_split | – | stability | failed | failed | failed | failed |" in (tmp_path / "table.md").read_text()
    )


@pytest.mark.slow
def test_a_wrong_cell_fails_before_anything_runs(run_table, tmp_path):
    done = run_table("+table.datasets.nosuch=[]", "table.name=other", f"table.dir={tmp_path}", expect=1)
    assert "table cell nosuch/tiny/task_arithmetic" in done.stderr and "nosuch" in done.stderr
    assert not (tmp_path / "cells").exists()


def write_job(folder: Path, per_query: dict, metrics: dict) -> None:
    """What a done job leaves that the table reads: its per-query values and its metrics.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "per_query.json").write_text(json.dumps({"test": per_query}))
    (folder / "metrics.json").write_text(json.dumps(metrics))


def fake_subprocess(multirun):
    """Only the folder module's subprocess: patching the module object itself would reach every other test's runs."""
    return SimpleNamespace(run=multirun, STDOUT=subprocess.STDOUT, DEVNULL=None)


def test_a_failed_selection_job_is_recorded_and_the_cells_others_are_compiled(cranfield_cfg, tmp_path, monkeypatch):
    """The cell's selections run as one multirun; one job fails (its error.txt, as the app writes it): the
    others' results make their rows, the failed one's rows say why, and the step reports that one alone."""
    cfg = cranfield_cfg()
    cell = Cell("cranfield", model="tiny", merge="task_arithmetic", overrides=(), config=cfg)
    folder = TableFolder(cfg, tmp_path / "tiny", [], [cell], [])
    assert cell.selections(cfg.table.selections) == ["cross_validation", "pseudo_queries", "stability", "nqc"]
    per_query = {s: {m: {"1": 0.5, "2": 0.25} for m in cfg.measures} for s in PAPER_ORDER}

    def multirun(command, **kwargs):  # what the multirun leaves: three jobs done, one failed
        for selection in ("cross_validation", "pseudo_queries", "nqc"):
            folds = [{"queries": 1, "alpha": 0.5, "lam": 0.3}, {"queries": 1, "alpha": 1.0, "lam": 0.3}]
            chosen = {"alpha": None, "lam": 0.3, "folds": folds} if selection == "cross_validation" else {
                "alpha": 0.5, "lam": 0.3, "folds": folds[:1]}  # fmt: skip
            lambdas = {"bm25": None, "ir_model": 0.1, "alpha_one": 0.6, "task_arithmetic": 0.3}  # each system's own
            warnings = {"no_candidates": ["7", "9"]} if selection == "nqc" else {}
            metrics = {"selection": chosen, "lam": lambdas, "warnings": warnings}
            write_job(folder.result_dir(cell, selection), per_query, metrics)
        record_failure(folder.result_dir(cell, "stability"), ValueError("selection.alphas: give three or more"))
        return subprocess.CompletedProcess(command, 1)

    monkeypatch.setattr(table_folder, "subprocess", fake_subprocess(multirun))
    failures = folder.run(folder.cells)
    assert failures == [
        "cranfield/tiny/task_arithmetic: stability failed (ValueError: selection.alphas: give three or more)"
    ]
    found = table.rows(folder)
    assert [r["selection"] for r in found] == [s for s in cell.selections(cfg.table.selections) for _ in range(4)]
    stability = [r for r in found if r["selection"] == "stability"]
    assert all(r["failed"].startswith("ValueError") and r["ndcg@10"] is None for r in stability)
    cv = next(r for r in found if r["selection"] == "cross_validation" and r["system"] == "task_arithmetic")
    assert cv["alpha"] is None and cv["folds"] == "0.5/0.3 1/0.3" and cv["ndcg@10"] == pytest.approx(0.375)
    assert list(found[0]) == list(stability[0])  # one csv header for both
    nqc = {r["system"]: r for r in found if r["selection"] == "nqc"}
    assert {s: r["lam"] for s, r in nqc.items()} == {
        "bm25": None, "ir_model": 0.1, "alpha_one": 0.6, "task_arithmetic": 0.3}  # fmt: skip
    assert nqc["bm25"]["queries"] == 2 and nqc["task_arithmetic"]["warnings"] == "no_candidates: 7 9"
    assert nqc["task_arithmetic"]["p_vs_alpha_one[ndcg@10]"] == 1.0  # identical values: no evidence
    assert "| cranfield | – | stability | failed | failed | failed | failed |" in markdown(
        cells_table(found, "ndcg@10", cfg.significance)
    )


# A job's metrics.json "analyses" (the keys the table reads; pipeline.analyses.run_analyses writes more).
KEYS = ("ir_model", "chosen", "oracle", "helped", "hurt", "unchanged")
RESPONSE = dict(zip(KEYS, (0.4, 0.42, 0.47, 0.25, 0.125, 0.625), strict=True))
DEPTHS = [{"depth": k, "ndcg@10": v, "gain_kept": kept, "seconds_per_query": s}
          for k, v, kept, s in ((5, 0.39, 0.75, 0.02), (10, 0.42, 1.0, 0.04))]  # fmt: skip
ANALYSES = {"alpha_response": RESPONSE, "depth": {"measure": "ndcg@10", "depths": DEPTHS}}


def test_analysis_columns_are_on_task_arithmetics_rows_of_the_jobs_that_ran_them(cranfield_cfg, tmp_path, monkeypatch):
    cfg = cranfield_cfg("analyses=[alpha_response,depth]")
    cell = Cell("cranfield", model="tiny", merge="task_arithmetic", overrides=(), config=cfg)
    folder = TableFolder(cfg, tmp_path / "tiny", [], [cell], [])
    per_query = {s: {m: {"1": 0.5, "2": 0.25} for m in cfg.measures} for s in PAPER_ORDER}

    def multirun(command, **kwargs):  # each selection job's files; NQC's ran without the analyses
        for selection in cell.selections(cfg.table.selections):
            metrics = {"selection": {"alpha": 0.5, "lam": 0.3, "folds": [{"queries": None, "alpha": 0.5, "lam": 0.3}]}}
            metrics.update({} if selection == "nqc" else {"analyses": ANALYSES})
            write_job(folder.result_dir(cell, selection), per_query, metrics)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(table_folder, "subprocess", fake_subprocess(multirun))
    assert folder.run(folder.cells) == []
    found = table.rows(folder)
    assert len({tuple(row) for row in found}) == 1  # one csv header for every row
    ta = {r["selection"]: r for r in found if r["system"] == "task_arithmetic"}
    assert ta["stability"]["alpha_response/oracle"] == 0.47 and ta["stability"]["alpha_response/hurt"] == 0.125
    assert ta["stability"]["depth/5/ndcg@10"] == 0.39 and ta["stability"]["depth/10/seconds_per_query"] == 0.04
    assert ta["nqc"]["alpha_response/oracle"] is None and ta["nqc"]["depth/5/ndcg@10"] is None
    assert all(r["alpha_response/oracle"] is None for r in found if r["system"] != "task_arithmetic")
    written = list(csv.DictReader(csv_text(found).splitlines()))
    assert written[3]["alpha_response/chosen"] == "0.42" and written[3]["depth/5/gain_kept"] == "0.75"


def test_a_pareto_row_and_its_dev_row_read_their_retention_from_the_cells_pareto_study(table_demo, tmp_path):
    """The SciFact cell's dev sweep chose α 0.75 and its Pareto study, on the same grid, α 0.25 (α 0.75 loses 0.02 on
    Cranfield, more than the bound): each row's retention is the study's trial at its α, and the section sets them
    side by side; until the Pareto study is done, the dev row has none."""
    cfg, found = table_demo
    scifact = found[0]
    folder = TableFolder(cfg, tmp_path, [], [scifact], [])
    per_query = {s: {m: {"1": 0.5, "2": 0.25} for m in cfg.measures} for s in PAPER_ORDER}
    lambdas = {"bm25": None, "ir_model": 0.3, "alpha_one": 0.3, "task_arithmetic": 0.3}
    for sweep, alpha in (("dev", 0.75), ("pareto", 0.25)):
        write_job(folder.cell_dir(scifact) / sweep / "final", per_query, {"lam": lambdas})
        (folder.cell_dir(scifact) / sweep / "optimization_results.yaml").write_text(
            yaml.safe_dump({"best_params": {"alpha.value": alpha}, "best_lam": 0.3}))  # fmt: skip
    ta = {r["selection"]: r for r in table.rows(folder) if r["system"] == "task_arithmetic"}
    assert ta["dev"]["retention"] is None and ta["pareto"]["retention"] is None  # no study's trials yet
    trials = [
        {"number": n, "value": 0.6 + a / 10, "retention": r, "lam": 0.3, "params": {"alpha.value": a}}
        for n, (a, r) in enumerate([(0.0, 0.0), (0.25, -0.005), (0.5, -0.015), (0.75, -0.02), (1.0, -0.03)])
    ]
    rows = pareto.trial_rows(trials, {0, 1, 2, 3, 4}, 0.01, chosen=1)  # fmt: skip
    pareto.write_front(rows, folder.cell_dir(scifact) / "pareto", "ndcg@10", "cranfield", 0.01)
    found_rows = table.rows(folder)
    ta = {r["selection"]: r for r in found_rows if r["system"] == "task_arithmetic"}
    assert (ta["dev"]["alpha"], ta["dev"]["retention"]) == (0.75, -0.02)
    assert (ta["pareto"]["alpha"], ta["pareto"]["retention"]) == (0.25, -0.005)
    assert ta["pareto"]["retention_on"] == "cranfield test" and ta["pareto"]["retention_bound"] == 0.01
    assert all(r.get("retention") is None for r in found_rows if r["system"] != "task_arithmetic")
    assert folder.chosen_settings(scifact, "pareto") == {(0.25, 0.3): 1}  # what a general domain evaluates
    text = compiled_table.texts(cfg, found_rows, [], False)["table.md"]
    assert "| scifact | 2 | Pareto (dev) |" in text and "is at most 0.01 (table.pareto;" in text
    # the section: the dev row's α and retention, the Pareto row's, their test nDCG@10 and the difference
    section = (
        "| scifact | minilm_demo | task_arithmetic | 0.75 | -0.0200 | 0.25 | -0.0050 | 0.3750 | 0.3750 | +0.0000 |"
    )
    assert section in text


def random_values(seed: int, measures) -> dict:
    """A job's per-query values on 12 queries: the systems of ``PAPER_ORDER`` each a little (0.05) above the one
    before, per query with noise of their own, so that their tests' p-values lie between 0 and 1."""
    import numpy as np

    rng = np.random.default_rng(seed)
    base = {m: rng.random(12) for m in measures}
    return {s: {m: {f"q{i}": float(v) for i, v in enumerate(base[m] + 0.05 * k + 0.05 * rng.random(12))}
                for m in measures} for k, s in enumerate(PAPER_ORDER)}  # fmt: skip


@pytest.fixture
def two_general_domains(tmp_path, hydra_compose):
    """The general-domain demo's SciFact cells with two general collections (Cranfield and its carve-out), corrected
    by Holm; the demo model's cell done (dev chose (0.25, 0.8), stability (0.5, 0.3), NQC (0.25, 0.3)), and each
    collection's jobs at those settings done, but one: per-query values of their own."""
    overrides = ["experiment=general_domain_demo", "+table.general_domain.cranfield_split=[]",
                 "significance.correction=holm", "table.selections=[pseudo_queries,stability,nqc]"]  # fmt: skip
    cfg = typed_config(hydra_compose(overrides))
    compose_entry = lambda extra: hydra_compose([*overrides, *extra])  # noqa: E731
    first = cells(cfg, compose_entry)[:1]
    folder = TableFolder(cfg, tmp_path, [], first, [], general_domains(cfg, compose_entry, first, tmp_path / "pins"))
    (scifact,) = folder.cells
    dev = folder.cell_dir(scifact) / "dev"
    write_job(
        dev / "final",
        random_values(0, cfg.measures),
        {"lam": {"bm25": None, "ir_model": 0.8, "alpha_one": 0.6, "task_arithmetic": 0.8}},
    )
    (dev / "optimization_results.yaml").write_text(yaml.safe_dump({"best_params": {"alpha.value": 0.25},
                                                                   "best_lam": 0.8}))  # fmt: skip
    for seed, (selection, alpha) in enumerate([("pseudo_queries", 0.0), ("stability", 0.5), ("nqc", 0.25)], 1):
        chosen = {"alpha": alpha, "lam": 0.3, "folds": [{"queries": None, "alpha": alpha, "lam": 0.3}]}
        write_job(folder.result_dir(scifact, selection), random_values(seed, cfg.measures), {"selection": chosen})
    for seed, general in enumerate([g for g in folder.general if g.covers(scifact)], 10):
        for k, setting in enumerate([(0.25, 0.8), (0.5, 0.3), (0.0, 0.3), (0.25, 0.3)]):
            if (general.label, setting) == ("cranfield", (0.5, 0.3)):
                record_failure(folder.general_dir(general, setting), ValueError("boom"))
            else:
                write_job(folder.general_dir(general, setting), random_values(seed + k, cfg.measures), {})
    return folder


def test_the_tables_p_values_are_one_comparison_of_its_jobs_corrected_over_the_whole_table(two_general_domains):
    folder = two_general_domains
    cfg, (scifact,) = folder.cfg, folder.cells
    found = table.rows(folder)
    selections = scifact.selections(cfg.table.selections)
    assert [(r["selection"], r["system"]) for r in found] == [(s, system) for s in selections for system in PAPER_ORDER]
    per_query = [json.loads((folder.result_dir(scifact, s) / "per_query.json").read_text())["test"]
                 for s in selections]  # fmt: skip
    shown = ["ndcg@10", "precision@10"]
    expected = compare(per_query, BASELINES, cfg.measures, cfg.significance, shown)
    alone = compare(per_query[:1], BASELINES, cfg.measures, cfg.significance, shown)  # one job: another family
    for k, run in enumerate(expected):
        for row in found[4 * k : 4 * k + 4]:
            compared = run[row["system"]]
            assert row["queries"] == 12 and all(row[m] == compared.means[m] for m in cfg.measures)
            for baseline in ("ir_model", "bm25", "alpha_one"):
                for m in shown:
                    assert row[f"p_vs_{baseline}[{m}]"] == compared.p_values.get(baseline, {}).get(m)
            for m in shown:  # the family its tests were corrected in: the cell's distinct tests (Holm)
                family = compared.families.get(m)
                assert row[f"tests[{m}]"] == (family.tests if family else None)
                assert row[f"markable[{m}]"] == (family.markable if family else None)
    ta = found[3]
    # 4 selections × (TA's 3 tests and α=1's 2) + ΘT's test of each job against BM25 (their own values: 4)
    assert ta["tests[ndcg@10]"] == 24 and found[0]["tests[ndcg@10]"] is None  # BM25: no baseline
    assert ta["p_vs_bm25[ndcg@10]"] != alone[0]["task_arithmetic"].p_values["bm25"]["ndcg@10"]
    assert "p_vs_ir_model[ndcg@3]" not in ta  # only the shown measures are tested
    assert ta["alpha"] == 0.25 and ta["lam"] == 0.8 and found[1]["lam"] == 0.8 and found[0]["alpha"] is None


def test_each_general_domain_collections_tests_are_corrected_on_their_own(two_general_domains):
    folder = two_general_domains
    cfg = folder.cfg
    found = table.general_rows(folder)
    shown = ["ndcg@10", "precision@10"]
    by_label: dict[str, list[dict]] = {}
    for r in found:
        by_label.setdefault(r["general_domain"], []).append(r)
    assert list(by_label) == ["cranfield", "cranfield_split"]
    jobs = {}  # label -> the per-query values of its done jobs, in order
    for label, rows in by_label.items():
        settings = [(r["alpha"], r["lam"]) for r in rows if r["system"] == "task_arithmetic"]
        assert settings == [(0.25, 0.8), (0.0, 0.3), (0.5, 0.3), (0.25, 0.3)]  # dev, pseudo-queries, stability, NQC
        general = next(g for g in folder.general if g.label == label)
        done = [s for s in settings if (folder.general_dir(general, s) / "metrics.json").is_file()]
        jobs[label] = [json.loads((folder.general_dir(general, s) / "per_query.json").read_text())["test"]
                       for s in done]  # fmt: skip
        expected = iter(compare(jobs[label], GENERAL_BASELINES, cfg.measures, cfg.significance, shown))
        for k, setting in enumerate(settings):
            job = rows[4 * k : 4 * k + 4]
            if setting not in done:
                assert all(r["failed"] == "ValueError: boom" and r["ndcg@10"] is None for r in job)
                assert [r["alpha"] for r in job] == [None, 0.0, 1.0, 0.5] and job[0]["lam"] is None
                continue
            run = next(expected)
            for r in job:
                assert r["failed"] is None and r["lam"] == (None if r["system"] == "bm25" else setting[1])
                assert all(r[m] == run[r["system"]].means[m] for m in cfg.measures)
                assert r["p_vs_ir_model[ndcg@10]"] == run[r["system"]].p_values.get("ir_model", {}).get("ndcg@10")
                assert r["p_vs_bm25[ndcg@10]"] is None  # on the general domain, tested against ΘT alone
    assert (len(jobs["cranfield"]), len(jobs["cranfield_split"])) == (3, 4)
    # Holm over both collections at once would give other p-values: each collection's section is its own family
    joint = compare([*jobs["cranfield"], *jobs["cranfield_split"]], GENERAL_BASELINES, cfg.measures,
                    cfg.significance, shown)  # fmt: skip
    first = by_label["cranfield"][3]["p_vs_ir_model[ndcg@10]"]
    assert first != joint[0]["task_arithmetic"].p_values["ir_model"]["ndcg@10"]


def test_a_dense_tables_general_domain_runs_its_choices_without_lambda_and_shows_none(tmp_path, hydra_compose):
    """retriever=dense: no selection chooses λ, so the general jobs run each α with no λ (dense too, through the
    command's overrides), in alpha_<α>-no_fusion, and the section shows "–" for λ."""
    overrides = ["experiment=general_domain_demo", "retriever=dense", "table.selections=[stability]"]
    cfg = typed_config(hydra_compose(overrides))
    compose_entry = lambda extra: hydra_compose([*overrides, *extra])  # noqa: E731
    first = cells(cfg, compose_entry)[:1]
    general = general_domains(cfg, compose_entry, first, tmp_path / "pins")
    folder = TableFolder(cfg, tmp_path, ["retriever=dense"], first, [], general)
    (scifact,), demo = folder.cells, general[0]
    dev = folder.cell_dir(scifact) / "dev"
    write_job(dev / "final", random_values(0, cfg.measures), {"lam": dict.fromkeys(PAPER_ORDER)})
    (dev / "optimization_results.yaml").write_text(yaml.safe_dump({"best_params": {"alpha.value": 0.25},
                                                                   "best_lam": None}))  # fmt: skip
    chosen = {"alpha": 0.5, "lam": None, "folds": [{"queries": None, "alpha": 0.5, "lam": None}]}
    write_job(folder.result_dir(scifact, "stability"), random_values(1, cfg.measures), {"selection": chosen})
    assert folder.missing(demo) == [(0.25, None), (0.5, None)]
    ((step, command),) = folder.steps(demo)
    assert step == "no_fusion" and "retriever=dense" in command and not any("lam.value" in o for o in command)
    assert "alpha.value=0.25,0.5" in command and "hydra.sweep.subdir=alpha_${alpha.value}-no_fusion" in command
    assert folder.general_dir(demo, (0.5, None)) == tmp_path / demo.name / "alpha_0.5-no_fusion"
    for k, setting in enumerate([(0.25, None), (0.5, None)]):
        write_job(folder.general_dir(demo, setting), random_values(10 + k, cfg.measures), {})
    rows = table.general_rows(folder)
    assert [(r["alpha"], r["lam"]) for r in rows if r["system"] == "task_arithmetic"] == [(0.25, None), (0.5, None)]
    section = general_sections(cfg, rows, ["ndcg@10"])["General domain (cranfield): Δ against ΘT, ndcg@10"]
    body = [line.split(" | ")[3:5] for line in markdown(section).splitlines() if line.startswith("| scifact")]
    assert body == [["0.25", "–"], ["0.5", "–"]]
    assert "nothing is fused (retriever=dense" in section.footnote and "fused at that row's λ" not in section.footnote


def test_a_general_domain_whose_job_would_retrieve_otherwise_than_its_cells_is_refused(tmp_path, hydra_compose):
    overrides = ["experiment=general_domain_demo", "table.selections=[stability]",
                 "table.datasets.scifact=['dataset=scifact','retriever=dense']"]  # fmt: skip
    cfg = typed_config(hydra_compose(overrides))
    compose_entry = lambda extra: hydra_compose([*overrides, *extra])  # noqa: E731
    with pytest.raises(UserError, match=r"table.general_domain.cranfield: cell scifact/minilm_demo/task_arithmetic "
                       r"has retriever.dense=True and its general job would not"):  # fmt: skip
        general_domains(cfg, compose_entry, cells(cfg, compose_entry), tmp_path / "pins")


TINY = 6  # BEIR-folder test queries of the table's one cell


def tiny_model(triple) -> list[str]:
    """The overrides that make the demo model the tiny triple's."""
    return ["model=minilm_demo", *(f"model.{role}={path}" for role, path in triple.items())]


def tiny_command(model: list[str], mirror_dir, tmp_path: Path, *shared: str):
    """``taskvec-ir`` with ``model``, small settings and ``shared``, run in ``tmp_path`` (its cache there); fails
    the test, with the command's output, where it fails."""
    settings = [*model, "retriever.top_k=10", "model.scorer.max_length=64", "model.scorer.show_progress=false",
                f"cache.dir={tmp_path / 'cache'}", *shared]  # fmt: skip
    env = {**os.environ, "TASKVEC_IR_MIRROR": str(mirror_dir)}

    def taskvec_ir(*overrides):
        done = subprocess.run([str(TASKVEC_IR), *settings, *overrides], capture_output=True, text=True, env=env,
                              cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=900)  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done

    return taskvec_ir


@pytest.mark.slow
def test_a_table_evaluates_each_cells_choices_on_cranfield_as_a_direct_run_would(triple, mirror_dir, tmp_path):
    """A BEIR folder without dev (cross-validated) and stability, which can only choose α = 0 from [-1, 0, 1];
    Cranfield the general domain: its numbers are a direct ``taskvec-ir dataset=cranfield`` run's, and at α = 0 TA
    is ΘT exactly."""
    folder = write_beir_folder(tmp_path / "mine", {"test": TINY})
    model = tiny_model(triple)
    taskvec_ir = tiny_command(model, mirror_dir, tmp_path, "lam.grid=[0.0,0.5,1.0]")

    taskvec_ir(
        "task=table",
        "table.name=gd",
        f"table.dir={tmp_path / 'gd'}",
        f"+table.datasets.mine=['dataset=beir','dataset.name=mine','dataset.beir_path={folder}']",
        f"+table.models.tiny=[{','.join(repr(o) for o in model)}]",
        "table.selections=[stability]",
        "+table.general_domain.cranfield=[]",
        "selection.alphas=[-1.0,0.0,1.0]",
        "selection.folds=2",
    )
    with open(tmp_path / "gd" / "table.csv") as lines:
        general = [r for r in csv.DictReader(lines) if r["general_domain"] == "cranfield"]
    by_choice: dict[tuple, dict] = {}
    for r in general:
        by_choice.setdefault((r["selection"], r["general_folds"]), {})[r["system"]] = r
    stability = by_choice[("stability", "")]
    assert float(stability["task_arithmetic"]["alpha"]) == 0.0 and float(stability["task_arithmetic"]["lam"]) == 0.3
    assert stability["task_arithmetic"]["ndcg@10"] == stability["ir_model"]["ndcg@10"]  # Δ = 0, exactly
    assert float(stability["task_arithmetic"]["p_vs_ir_model[ndcg@10]"]) == 1.0
    assert all(r["queries"] == "225" for r in general)
    assert {s for s, _ in by_choice} == {"cross_validation", "stability"}
    # A direct run at each setting the cells chose gives the section's numbers.
    for rows in by_choice.values():
        alpha, lam = rows["task_arithmetic"]["alpha"], rows["task_arithmetic"]["lam"]
        out = tmp_path / f"direct-{alpha}-{lam}"
        taskvec_ir("dataset=cranfield", f"alpha.value={alpha}", f"lam.value={lam}", f"hydra.run.dir={out}",
                   "systems=[bm25,ir_model,alpha_one,task_arithmetic]")  # fmt: skip
        direct = json.loads((out / "metrics.json").read_text())["test"]
        for system in PAPER_ORDER:
            for measure in ("ndcg@10", "precision@10", "map@100"):
                assert float(rows[system][measure]) == pytest.approx(direct[system][measure], abs=1e-12)
    markdown = (tmp_path / "gd" / "table.md").read_text()
    assert "### General domain (cranfield): Δ against ΘT, ndcg@10" in markdown
    assert f"| mine | tiny | stability | 0 | 0.3 | {float(stability['bm25']['ndcg@10']):.4f} |" in markdown
    assert "% General domain (cranfield): Δ against ΘT, ndcg@10" in (tmp_path / "gd" / "table.tex").read_text()
    assert len(logged_table(tmp_path / "gd", "general_domain")) == len(general)


def test_a_cells_grid_refined_after_its_test_results_marks_its_rows_and_strict_refuses_it(
    cranfield_cfg, tmp_path, monkeypatch
):
    """Table t's Cranfield cell (no dev: cross-validation, and NQC) is evaluated on test; table u, sharing t's storage
    (table.storage), refines the α grid: its rows are marked (a note and a footnote naming t's results), and with
    table.strict_test_guard it is refused before anything runs. A third table with t's grid is not marked; a sweep's
    final evaluation marked by its study marks its dev row."""
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    lam = OmegaConf.create({"lam": {"value": None, "grid": [0.0, 0.3, 0.6, 1.0]}})  # as the cell's steps compose λ

    def table_folder_of(name: str, *overrides: str) -> TableFolder:
        cfg = cranfield_cfg(f"table.name={name}", f"table.storage={storage}", "table.selections=[nqc]", *overrides)
        cell = Cell("cranfield", model="tiny", merge="task_arithmetic", overrides=(), config=cfg)
        return TableFolder(cfg, tmp_path / name, [], [cell], [])

    def multirun(folder):
        def run(command, **kwargs):
            cell = folder.cells[0]
            per_query = {s: {m: {"1": 0.5, "2": 0.25} for m in folder.cfg.measures} for s in PAPER_ORDER}
            for selection in cell.selections(folder.cfg.table.selections):
                chosen = {"alpha": 0.5, "lam": 0.3, "folds": [{"queries": None, "alpha": 0.5, "lam": 0.3}]}
                write_job(folder.result_dir(cell, selection), per_query, {"selection": chosen})
            return subprocess.CompletedProcess(command, 0)

        return run

    first = table_folder_of("t", "selection.alphas=[0.0,0.5,1.0]")
    guard, marked = table.guard_cells(first, lambda extra: lam)
    assert marked == {}
    monkeypatch.setattr(table_folder, "subprocess", fake_subprocess(multirun(first)))
    assert first.run(first.cells) == []
    table.record_tests(first, guard)
    assert not any(r["tuned_after_test"] for r in table.rows(first, marked))

    refined = table_folder_of("u", "selection.alphas=[0.4,0.5,0.6]")
    _, marked = table.guard_cells(refined, lambda extra: lam)
    assert list(marked) == ["cranfield/tiny/task_arithmetic"]
    assert "table t: cross_validation; table t: nqc" in marked["cranfield/tiny/task_arithmetic"]
    monkeypatch.setattr(table_folder, "subprocess", fake_subprocess(multirun(refined)))
    refined.run(refined.cells)
    found = table.rows(refined, marked)
    assert all(r["tuned_after_test"] == marked["cranfield/tiny/task_arithmetic"] for r in found)
    text = markdown(cells_table(found, "ndcg@10", refined.cfg.significance))
    assert "(α 0.5, tuned after test, Δ +0.0%)" in text and "Tuned after test (the note on TA): the search" in text
    assert "- cranfield/tiny/task_arithmetic nqc: search space" in text

    strict = table_folder_of("v", "selection.alphas=[0.4,0.5,0.6]", "table.strict_test_guard=true")
    with pytest.raises(UserError, match=r"^table.strict_test_guard: cell cranfield/tiny/task_arithmetic would be"):
        table.guard_cells(strict, lambda extra: lam)
    same = table_folder_of("w", "selection.alphas=[0.0,0.5,1.0]", "table.strict_test_guard=true")
    assert table.guard_cells(same, lambda extra: lam)[1] == {}  # t's grid: its results are of this search space

    # A cell with a dev split: its dev row is marked where its final evaluation's study was.
    dev_cfg = cranfield_cfg("+dataset.splits.dev={sample_of:test,fraction:0.3,seed:1}", "table.selections=[nqc]")
    cell = Cell("cranfield", model="tiny", merge="task_arithmetic", overrides=(), config=dev_cfg)
    folder = TableFolder(dev_cfg, tmp_path / "x", [], [cell], [])
    per_query = {s: {m: {"1": 0.5, "2": 0.25} for m in dev_cfg.measures} for s in PAPER_ORDER}
    seen = [{"what": "study s: final evaluation of trial 1", "search_space": "aaa", "at": "then"}]
    guarded = {"tuned_after_test": True, "search_space": "bbb", "set_at": "now", "tests_seen": seen}
    write_job(folder.result_dir(cell, "dev"), per_query, {"test_guard": guarded})
    (folder.cell_dir(cell) / "dev" / "optimization_results.yaml").write_text(
        "best_params: {alpha.value: 0.5}\nbest_lam: 0.3\n"
    )
    write_job(folder.result_dir(cell, "nqc"), per_query, {"selection": {"alpha": 0.5, "lam": 0.3, "folds": [{}]}})
    dev = {r["selection"]: r["tuned_after_test"] for r in table.rows(folder)}
    assert dev["nqc"] is None and "study s: final evaluation of trial 1" in dev["dev"] and "bbb" in dev["dev"]


@pytest.mark.slow
def test_a_pareto_row_is_the_best_dev_score_within_the_bound_on_the_dev_rows_grid(triple, mirror_dir, tmp_path):
    """A BEIR folder with a dev split, Cranfield the general collection of its Pareto row: the row's α and λ are
    the best dev score of the study's trials whose retention loss is within the bound (chosen here by hand from
    the study), the study ran the dev row's grid once each, and the retention the row reports is what a direct run
    of Θ' and ΘT on Cranfield at that setting gives."""
    folder = write_beir_folder(tmp_path / "mine", {"dev": 8, "test": 8})
    model = tiny_model(triple)
    taskvec_ir = tiny_command(model, mirror_dir, tmp_path, "lam.grid=[0.0,0.3]")

    bound = 0.001  # below the loss of the dev row's α (the premise is checked below)
    taskvec_ir(
        "task=table",
        "table.name=pt",
        f"table.dir={tmp_path / 'pt'}",
        f"+table.datasets.mine=['dataset=beir','dataset.name=mine','dataset.beir_path={folder}']",
        f"+table.models.tiny=[{','.join(repr(o) for o in model)}]",
        "table.selections=[nqc]",
        "table.pareto.retention=cranfield",
        f"table.pareto.overrides=['sweep.retention.bound={bound}']",
        "selection.alphas=[0.0,0.5,1.0]",
    )
    with open(tmp_path / "pt" / "table.csv") as lines:
        found = {(r["selection"], r["system"]): r for r in csv.DictReader(lines)}
    assert {selection for selection, _ in found} == {"dev", "pareto", "nqc"}
    assert not any(r["tuned_after_test"] for r in found.values())  # the Pareto study searched the dev sweep's space
    pareto, dev = found[("pareto", "task_arithmetic")], found[("dev", "task_arithmetic")]
    cell = tmp_path / "pt" / "cells" / "mine" / "tiny" / "task_arithmetic"
    study = optuna.load_study(study_name="pt/mine/tiny/task_arithmetic/pareto",
                              storage=f"sqlite:///{tmp_path / 'pt' / 'optuna.db'}")  # fmt: skip
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.params["alpha.value"] for t in trials) == [0.0, 0.5, 1.0]  # the dev row's grid, once each
    # The rule by hand: within the bound, the best dev score; ties: the smaller |α|, then λ.
    within = [t for t in trials if -t.values[1] <= bound + 1e-12]
    best = min(within, key=lambda t: (-t.values[0], abs(t.params["alpha.value"]), t.user_attrs.get("lam", 0)))
    assert float(pareto["alpha"]) == best.params["alpha.value"]
    assert float(pareto["retention"]) == pytest.approx(best.values[1], abs=1e-12)
    assert pareto["retention_on"] == "cranfield test" and float(pareto["retention_bound"]) == bound
    at_dev = next(t for t in trials if t.params["alpha.value"] == float(dev["alpha"]))
    assert float(dev["retention"]) == pytest.approx(at_dev.values[1], abs=1e-12)
    assert -float(dev["retention"]) > bound and pareto["alpha"] != dev["alpha"]  # the bound moved the choice
    final = json.loads((cell / "pareto" / "final" / "metrics.json").read_text())["test"]
    assert float(pareto["ndcg@10"]) == pytest.approx(final["task_arithmetic"]["ndcg@10"])
    # The retention is what Θ' and ΘT give on Cranfield at the row's setting, run directly.
    out = tmp_path / "direct"
    taskvec_ir("dataset=cranfield", f"alpha.value={pareto['alpha']}", f"lam.value={pareto['lam']}",
               f"hydra.run.dir={out}", "systems=[ir_model,task_arithmetic]")  # fmt: skip
    direct = json.loads((out / "metrics.json").read_text())["test"]
    retention = direct["task_arithmetic"]["ndcg@10"] - direct["ir_model"]["ndcg@10"]
    assert float(pareto["retention"]) == pytest.approx(retention, abs=1e-12)
    markdown = (tmp_path / "pt" / "table.md").read_text()
    assert "| mine | 8 | Pareto (dev) |" in markdown and "### Pareto rows against the dev rows" in markdown
    rule = f"retention loss on cranfield test (TA's ndcg@10 there minus ΘT's, at the trial's λ) is at most {bound:g}"
    assert rule in markdown
