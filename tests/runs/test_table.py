"""Tables as users run them (``taskvec-ir experiment=<a table>``), on a tiny triple and real Cranfield: a cell with
a dev split (``cranfield_split``) and one without (``cranfield``: cross-validation)."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import yaml

from taskvec_ir.config.significance import SignificanceConfig
from taskvec_ir.config.systems import PAPER_ORDER
from taskvec_ir.reporting import tables
from taskvec_ir.runs import table

from tiny_models import tiny_triple
from wandb_records import logged_table, run_contents

TASKVEC_IR = Path(sys.executable).parent / "taskvec-ir"
TABLE = """# @package _global_
task: table
table:
  name: tiny
  datasets:
    cranfield_split: []
  models:
    tiny: [model=minilm_demo, model.ir={ir}, model.base={base}, model.domain={domain}]
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
        for selection in ("dev", "pseudo_queries", "stability", "nqc")
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
    for method in ("pseudo_queries", "stability", "nqc"):
        job = json.loads((cell / "selection" / method / "metrics.json").read_text())
        chosen = {r["system"]: r for r in found if r["selection"] == method}
        assert float(chosen["task_arithmetic"]["alpha"]) == job["selection"]["alpha"] in (0.0, 0.5, 1.0)
        assert float(chosen["task_arithmetic"]["lam"]) == job["selection"]["lam"]
        assert float(chosen["alpha_one"]["ndcg@10"]) == pytest.approx(job["test"]["alpha_one"]["ndcg@10"])
        assert 0 <= float(chosen["task_arithmetic"]["p_vs_ir_model[ndcg@10]"]) <= 1
        assert (cell / "selection" / method / "selection_curve.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (folder / "table.md").read_text()
    assert "| cranfield_split | 113 | dev |" in markdown and "### precision@10" in markdown
    assert "paired t-test, two-sided" in markdown and "p_vs_alpha_one[ndcg@10]" in found[0]
    assert "Label-free α against the labelled choice" in markdown
    latex = (folder / "table.tex").read_text()
    assert latex.startswith("% ndcg@10\n\\begin{tabular}") and "% precision@10\n\\begin{tabular}" in latex
    assert "| cranfield_split | 113 | dev |" in one_cell.stdout  # printed
    record = run_contents(folder)
    assert record["job_type"] == "table" and record["group"] == "table/tiny" and record["exit_code"] == 0
    assert record["summary"]["table/_type"] == "table-file" and record["summary"]["table/nrows"] == len(found)


@pytest.mark.slow
def test_one_tag_finds_every_run_of_a_table_each_with_a_unique_name_and_the_values_it_used(run_table, one_cell):
    folder = run_table.folder
    cell = folder / "cells" / "cranfield_split" / "tiny" / "task_arithmetic"
    trials = sorted((cell / "dev").glob("trial_*"))
    jobs = [*trials, cell / "dev" / "final", *(cell / "selection" / m for m in ("pseudo_queries", "stability", "nqc"))]
    runs = {job: run_contents(job) for job in [*jobs, folder]}
    assert all("table:tiny" in run["tags"] for run in runs.values())  # the sweep's trials and final included
    names = [run["name"] for run in runs.values()]
    assert len(set(names)) == len(names)
    assert runs[cell / "selection" / "nqc"]["name"] == "tiny/cranfield_split/tiny/task_arithmetic/nqc"
    assert runs[folder]["name"] == "tiny"
    # paper_grid: λ chosen inside each trial from lam.grid; the config says which, and the curve is logged.
    for trial in trials:
        run = runs[trial]
        assert run["config"]["lam"]["value"] is None and run["config"]["lam"]["used"] == run["summary"]["lam"]
        assert run["config"]["lam"]["used"] in (0.0, 0.3, 0.6, 1.0) and "selection:sweep" in run["tags"]
        curve = logged_table(trial, "lambda_curve")
        assert [row["lam"] for row in curve] == [0.0, 0.3, 0.6, 1.0]
        assert {row["alpha"] for row in curve} == {run["config"]["alpha"]["used"]}
        assert max(curve, key=lambda row: row["ndcg@10"])["ndcg@10"] == pytest.approx(
            run["summary"]["objective/dev/ndcg@10"]
        )
    # A selection's α and λ are its choice, not the config's default value, which is marked overridden.
    for method in ("pseudo_queries", "stability", "nqc"):
        run = runs[cell / "selection" / method]
        chosen = json.loads((cell / "selection" / method / "metrics.json").read_text())["selection"]
        assert run["config"]["alpha"]["used"] == chosen["alpha"] and run["config"]["lam"]["used"] == chosen["lam"]
        assert run["config"]["alpha"]["value_overridden_by"] == f"selection={method}"
        assert f"selection:{method}" in run["tags"] and run["group"] == "table/tiny"


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
    assert "5-fold CV (no dev)" in (folder / "table.md").read_text()
    # Only cells with a dev split have a study.
    storage = f"sqlite:///{folder / 'optuna.db'}"
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == [
        "tiny/cranfield_split/tiny/task_arithmetic",
        "tiny/cranfield_split/tiny/task_arithmetic:final:" + str(yaml.safe_load(
            (first / "dev" / "optimization_results.yaml").read_text())["best_trial"]),
    ]  # fmt: skip
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
    """Two α values: stability (which needs three) fails in the cell's multirun; nqc, after it, still runs, and
    the table is compiled with stability's rows marked failed, naming why; the command exits non-zero."""
    done = run_table("table.name=failing", f"table.dir={tmp_path}", "selection.alphas=[0.0,1.0]", expect=1)
    stability = tmp_path / "cells" / "cranfield_split" / "tiny" / "task_arithmetic" / "selection" / "stability"
    assert "selection.alphas" in (stability / "error.txt").read_text() and not (stability / "metrics.json").exists()
    assert "1 of 4 selections failed" in done.stderr and "stability failed (selection.alphas: stability" in done.stderr
    found = rows(tmp_path)
    assert {r["selection"] for r in found if not r["failed"]} == {"dev", "pseudo_queries", "nqc"}
    assert all(r["failed"].startswith("selection.alphas: stability") for r in found if r["selection"] == "stability")
    assert (
        "| cranfield_split | – | stability | failed | failed | failed | failed |" in (tmp_path / "table.md").read_text()
    )


@pytest.mark.slow
def test_a_wrong_cell_fails_before_anything_runs(run_table, tmp_path):
    done = run_table("+table.datasets.nosuch=[]", "table.name=other", f"table.dir={tmp_path}", expect=1)
    assert "table cell nosuch/tiny/task_arithmetic" in done.stderr and "nosuch" in done.stderr
    assert not (tmp_path / "cells").exists()


def cell_row(selection, system, ndcg, alpha=0.4, dataset="d", model="m", failed=None, **p_values):
    """A row of ``Grid.rows``; ``p_values``: baseline -> its corrected p-value on ndcg@10."""
    return {
        "dataset": dataset,
        "model": model,
        "merge": "task_arithmetic",
        "selection": selection,
        "system": system,
        "alpha": alpha,
        "lam": 0.2,
        "queries": None if failed else 30,
        "ndcg@10": ndcg,
        **{f"p_vs_{b}[ndcg@10]": p_values.get(b) for b in ("ir_model", "bm25", "alpha_one")},
        "folds": "0.3/0.2 0.5/0.2" if selection == "cross_validation" else None,
        "warnings": None,
        "failed": failed,
    }


def test_the_compiled_table_marks_direction_bolds_the_best_of_each_model_and_shows_alpha_and_delta():
    found = [
        cell_row("cross_validation", "bm25", 0.30),
        cell_row("cross_validation", "ir_model", 0.40, bm25=0.001),
        cell_row("cross_validation", "alpha_one", 0.35, ir_model=0.2, bm25=0.04),
        cell_row("cross_validation", "task_arithmetic", 0.45, ir_model=0.01, bm25=0.0001, alpha_one=0.02),
        cell_row("nqc", "bm25", 0.30),
        cell_row("nqc", "ir_model", 0.40),
        cell_row("nqc", "alpha_one", 0.35),
        cell_row("nqc", "task_arithmetic", 0.38, ir_model=0.03, bm25=0.06, alpha=1.0),
        # a second model on the same rows: its own best is bold too
        cell_row("cross_validation", "bm25", 0.30, model="m2"),
        cell_row("cross_validation", "ir_model", 0.20, model="m2"),
        cell_row("cross_validation", "alpha_one", 0.25, model="m2"),
        cell_row("cross_validation", "task_arithmetic", 0.28, model="m2"),
    ]
    table = tables.cells_table(found, "ndcg@10", SignificanceConfig())
    lines = tables.markdown(table).splitlines()
    assert lines[0].startswith("| dataset | queries | selection | m BM25 | m ΘT | m α=1 | m TA | m2 BM25 |")
    assert lines[2] == (
        "| d | 30 | 2-fold CV (no dev) | 0.3000 | 0.4000▲‡ | 0.3500▲‡ | **0.4500▲†▲‡▲§** (α 0.4, Δ +12.5%) "
        "| **0.3000** | 0.2000 | 0.2500 | 0.2800 (α 0.4, Δ +40.0%) |"
    )
    assert lines[3].startswith("| d | 30 | NQC | 0.3000 | **0.4000** | 0.3500 | 0.3800▼† (α 1, Δ -5.0%) |")
    assert "Paired t-test, two-sided" in table.footnote.replace("paired", "Paired")
    assert "Bonferroni over each value's baselines" in table.footnote
    distance = tables.markdown(tables.label_free_distance(found, "ndcg@10")).splitlines()
    assert distance[2] == "| d | m | NQC | 1 | +0.6 | 0.3800 | -0.0700 |"
    latex = tables.latex(table)
    marks = r"$^{\blacktriangle\dagger\blacktriangle\ddagger\blacktriangle\S}$"
    assert r"\textbf{0.4500" + marks + r"} ($\alpha$ 0.4, $\Delta$ +12.5\%)" in latex
    assert (
        "Holm over all of this table's tests"
        in tables.cells_table(found, "ndcg@10", SignificanceConfig(correction="holm")).footnote
    )


def test_a_mean_row_per_selection_averages_the_datasets_that_ran():
    found = [
        *(cell_row("nqc", s, v, dataset="a") for s, v in zip(PAPER_ORDER, (0.2, 0.4, 0.3, 0.5), strict=True)),
        *(cell_row("nqc", s, v, dataset="b") for s, v in zip(PAPER_ORDER, (0.4, 0.2, 0.3, 0.3), strict=True)),
        *(cell_row("stability", s, v, dataset="a") for s, v in zip(PAPER_ORDER, (0.2, 0.4, 0.3, 0.5), strict=True)),
        *(cell_row("stability", s, None, dataset="b", failed="boom") for s in PAPER_ORDER),
    ]
    lines = tables.markdown(tables.cells_table(found, "ndcg@10", SignificanceConfig())).splitlines()
    assert [line for line in lines if line.startswith("| mean")] == [
        "| mean (2 datasets) |  | NQC | 0.3000 | 0.3000 | 0.3000 | **0.4000** (Δ +33.3%) |",
        "| mean (2 datasets) |  | stability | – | – | – | – |",  # b failed: no mean
    ]


def test_the_labelled_rows_share_one_mean_row_and_a_one_dataset_selection_has_none():
    found = [
        *(cell_row("dev", s, v, dataset="a") for s, v in zip(PAPER_ORDER, (0.2, 0.4, 0.3, 0.5), strict=True)),
        *(
            cell_row("cross_validation", s, v, dataset="b")
            for s, v in zip(PAPER_ORDER, (0.4, 0.2, 0.3, 0.3), strict=True)
        ),
        *(cell_row("nqc", s, v, dataset="a") for s, v in zip(PAPER_ORDER, (0.2, 0.4, 0.3, 0.5), strict=True)),
    ]
    lines = tables.markdown(tables.cells_table(found, "ndcg@10", SignificanceConfig())).splitlines()
    assert [line for line in lines if line.startswith("| mean")] == [
        "| mean (2 datasets) |  | labels (dev, else CV) | 0.3000 | 0.3000 | 0.3000 | **0.4000** (Δ +33.3%) |",
    ]


def test_folds_that_chose_differently_show_varies_and_a_failed_selection_shows_failed():
    found = [
        *(
            cell_row("cross_validation", s, v, alpha=None)
            for s, v in zip(PAPER_ORDER, (0.3, 0.4, 0.35, 0.45), strict=True)
        ),
        *(cell_row("stability", s, None, alpha=None, failed="ValueError: too few α") for s in PAPER_ORDER),
        *(cell_row("nqc", s, v, alpha=0.5) for s, v in zip(PAPER_ORDER, (0.3, 0.4, 0.35, 0.38), strict=True)),
    ]
    table = tables.cells_table(found, "ndcg@10", SignificanceConfig())
    lines = tables.markdown(table).splitlines()
    assert lines[2] == "| d | 30 | 2-fold CV (no dev) | 0.3000 | 0.4000 | 0.3500 | **0.4500** (α varies, Δ +12.5%) |"
    assert lines[3] == "| d | – | stability | failed | failed | failed | failed |"
    assert "- d/m/task_arithmetic stability: ValueError: too few α" in lines
    distance = tables.markdown(tables.label_free_distance(found, "ndcg@10")).splitlines()
    assert distance[2:] == ["| d | m | NQC | 0.5 | varies | 0.3800 | -0.0700 |"]  # stability: failed, left out
    assert r"failed & failed" in tables.latex(table)
    assert list(csv.DictReader(tables.csv_text(found).splitlines()))[4]["failed"] == "ValueError: too few α"


def test_a_failed_selection_job_is_recorded_and_the_cells_others_are_compiled(cranfield_cfg, tmp_path, monkeypatch):
    """The cell's selections run as one multirun; one job fails (its error.txt, as the app writes it): the
    others' results make their rows, the failed one's rows say why, and the step reports that one alone."""
    from taskvec_ir.storage.outputs import record_failure

    cfg = cranfield_cfg()
    cell = table.Cell("cranfield", "tiny", "task_arithmetic", (), cfg)
    grid = table.Grid(cfg, tmp_path / "tiny", [], [cell], [])
    assert cell.selections(cfg.table.selections) == ["cross_validation", "pseudo_queries", "stability", "nqc"]
    per_query = {s: {m: {"1": 0.5, "2": 0.25} for m in cfg.measures} for s in PAPER_ORDER}

    def multirun(command, **kwargs):  # what the multirun leaves: three jobs done, one failed
        for selection in ("cross_validation", "pseudo_queries", "nqc"):
            folder = grid.result_dir(cell, selection)
            folds = [{"queries": 1, "alpha": 0.5, "lam": 0.3}, {"queries": 1, "alpha": 1.0, "lam": 0.3}]
            chosen = {"alpha": None, "lam": 0.3, "folds": folds} if selection == "cross_validation" else {
                "alpha": 0.5, "lam": 0.3, "folds": folds[:1]}  # fmt: skip
            (folder).mkdir(parents=True)
            (folder / "per_query.json").write_text(json.dumps({"test": per_query}))
            lams = {"bm25": None, "ir_model": 0.1, "alpha_one": 0.6, "task_arithmetic": 0.3}  # each system's own
            warnings = {"no_candidates": ["7", "9"]} if selection == "nqc" else {}
            (folder / "metrics.json").write_text(json.dumps({"selection": chosen, "lam": lams, "warnings": warnings}))
        record_failure(grid.result_dir(cell, "stability"), ValueError("selection.alphas: give three or more"))
        return subprocess.CompletedProcess(command, 1)

    # Only the table module's subprocess: patching the module object itself would reach every other test's runs.
    monkeypatch.setattr(table, "subprocess", SimpleNamespace(run=multirun, STDOUT=subprocess.STDOUT, DEVNULL=None))
    failures = grid.run()
    assert failures == [
        "cranfield/tiny/task_arithmetic: stability failed (ValueError: selection.alphas: give three or more)"
    ]
    found = grid.rows()
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
    assert "| cranfield | – | stability | failed | failed | failed | failed |" in tables.markdown(
        tables.cells_table(found, "ndcg@10", cfg.significance)
    )


def test_how_sure_is_each_selection_shows_the_bootstrap_of_task_arithmetics_rows():
    """The section and table.csv's columns, from each job's selection_bootstrap.json (as the table reads it)."""
    result = {
        "modal_alpha": 0.5,
        "modal_share": 0.625,
        "regret": {"mean": 0.0123, "low": 0.0, "high": 0.04},
        "p_beats_ir_model": 0.35,
    }
    found = [cell_row("nqc", s, 0.3) for s in PAPER_ORDER] + [cell_row("cross_validation", s, 0.3) for s in PAPER_ORDER]
    for row in found:
        sure = result if row["system"] == "task_arithmetic" and row["selection"] == "nqc" else None
        row.update(tables.bootstrap_columns(sure))
    ta = next(r for r in found if r["system"] == "task_arithmetic" and r["selection"] == "nqc")
    assert {k: ta[k] for k in tables.BOOTSTRAP_COLUMNS} == {
        "modal_alpha": 0.5,
        "modal_alpha_share": 0.625,
        "regret_mean": 0.0123,
        "regret_low": 0.0,
        "regret_high": 0.04,
        "p_beats_ir_model": 0.35,
    }
    assert all(r["modal_alpha"] is None for r in found if r is not ta)
    table = tables.bootstrap_table(found, "ndcg@10", 0.9, 200)
    lines = tables.markdown(table).splitlines()
    assert lines[0] == "| dataset | model | selection | modal α (share) | regret [90% CI] | P(TA beats ΘT) |"
    assert lines[2] == "| d | m | NQC | 0.5 (62%) | 0.0123 [0.0000, 0.0400] | 0.35 |"
    assert len(table.rows) == 1 and "200 bootstrap resamples" in table.footnote
    assert r"d & m & NQC & 0.5 (62\%) & 0.0123 [0.0000, 0.0400] & 0.35 \\" in tables.latex(table)
    header = tables.csv_text(found).splitlines()[0]
    assert header.endswith("modal_alpha,modal_alpha_share,regret_mean,regret_low,regret_high,p_beats_ir_model")
