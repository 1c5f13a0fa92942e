"""Every W&B run a user makes, read back from its offline ``.wandb`` records with wandb's own protobuf: a single job,
a sweep of three trials with its final evaluation, and a small table (a dev sweep and a label-free selection) with
its recompile, all launched from a folder that is not a git checkout, on real Cranfield with the tiny triple.
docs/wandb.md says what each check stands for."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from taskvec_ir.reporting.lineage import content_key
from taskvec_ir.reporting.workspace import workspace

from wandb_records import curve, panel_keys, run_contents, run_files

pytestmark = pytest.mark.slow  # four taskvec-ir commands end to end

TASKVEC_IR = Path(sys.executable).parent / "taskvec-ir"
SOURCE = Path(__file__).resolve().parents[2]
TABLE = """# @package _global_
task: table
table:
  name: tiny
  datasets:
    cranfield_split: []
  models:
    tiny: [model=minilm_demo, model.ir={ir}, model.base={base}, model.domain={domain}]
  selections: [pseudo_queries]
selection:
  alphas: [0.0, 0.5, 1.0]
  pseudo_queries:
    count: 20
lam:
  grid: [0.0, 0.5, 1.0]
retriever:
  top_k: 10
model:
  scorer:
    show_progress: false
"""
KINDS = ("run", "trial", "final", "selection", "general", "table", "adapt")
CELL_GROUP = "table/tiny/cranfield_split/tiny/task_arithmetic"


@pytest.fixture(scope="module")
def runs(triple, mirror_dir, tmp_path_factory) -> dict[str, list[dict]]:
    """Every run's records, by what made it: ``single``, ``sweep`` (trials and final), ``table`` (the cell's jobs
    and the table's two runs: compiled, then recompiled)."""
    root = tmp_path_factory.mktemp("outside_git")  # the commands run here: no git work tree holds it
    assert subprocess.run(["git", "-C", str(root), "rev-parse"], capture_output=True).returncode != 0
    (root / "conf" / "experiment").mkdir(parents=True)
    (root / "conf" / "experiment" / "tiny_table.yaml").write_text(TABLE.format(**triple))
    model = [*(f"model.{role}={path}" for role, path in triple.items()), "model.scorer.show_progress=false"]
    common = [f"cache.dir={root / 'cache'}", "retriever.top_k=10", *model]
    table = [f"--config-dir={root / 'conf'}", "experiment=tiny_table", f"table.dir={root / 'table'}",
             f"cache.dir={root / 'cache'}"]  # fmt: skip
    commands = {
        "single": [*common, "dataset=cranfield_split", "alpha.value=0.5", "lam=dev_grid",  # λ tuned on dev
                   "lam.grid=[0.0,0.5,1.0]", f"hydra.run.dir={root / 'single'}"],
        "sweep": ["-m", *common, "dataset=cranfield", "sweep=alpha",
                  "+dataset.splits.dev={sample_of:test,fraction:0.3,seed:1}", "lam.grid=[0.0,0.5,1.0]",
                  "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={root / 'sweep'}"],
        "table": table,
        "recompile": [*table, "significance.test=randomization"],
    }  # fmt: skip
    env = {**os.environ, "TASKVEC_IR_MIRROR": str(mirror_dir)}
    for name, overrides in commands.items():
        done = subprocess.run([str(TASKVEC_IR), *overrides], capture_output=True, text=True, env=env, cwd=root,
                              stdin=subprocess.DEVNULL, timeout=900)  # fmt: skip
        assert done.returncode == 0, name + done.stdout[-3000:] + done.stderr[-3000:]
    return {
        folder: [{**run_contents(path), "file": path} for path in run_files(root / folder)]
        for folder in ("single", "sweep", "table")
    }


def every(runs: dict) -> list[dict]:
    return [run for found in runs.values() for run in found]


def test_the_runs_are_every_job_and_the_table_twice(runs):
    kinds = {folder: sorted(run["job_type"] for run in found) for folder, found in runs.items()}
    assert kinds == {
        "single": ["run"],
        "sweep": ["final", "trial", "trial", "trial"],
        "table": ["final", "selection", "table", "table", "trial", "trial", "trial"],
    }
    assert all(run["exit_code"] == 0 for run in every(runs))


def test_every_job_has_the_objective_with_its_goal_split_and_measure(runs):
    """1. One key, ``objective``, in every kind of job: one history step, declared max, a scalar summary."""
    for run in every(runs):
        if run["job_type"] == "table":  # a table is no job: it has its best task arithmetic per dataset instead
            assert "objective" not in run["summary"] and "best/cranfield_split/task_arithmetic" in run["summary"]
            continue
        split = "dev" if run["job_type"] == "trial" else "test"
        summary, config = run["summary"], run["config"]
        assert isinstance(summary["objective"], float) and run["history"]["objective"] == summary["objective"]
        assert summary["objective"] == pytest.approx(summary[f"{split}/task_arithmetic/ndcg@10"])
        assert run["metrics"]["objective"] == ["max"]
        described = {"objective_split": split, "objective_measure": "ndcg@10", "objective_goal": "maximize"}
        assert {k: summary[k] for k in described} == described == {k: config[k] for k in described}


def test_run_names_say_what_each_run_is_and_never_repeat_across_a_table_and_its_recompile(runs):
    """2."""
    names = [run["name"] for run in every(runs)]
    assert len(set(names)) == len(names)
    for run in every(runs):
        assert re.fullmatch(rf"{run['job_type']}/.+-[0-9a-f]{{6}}", run["name"]) and run["job_type"] in KINDS
    (single,) = runs["single"]
    assert re.fullmatch(r"run/cranfield_split/minilm_demo/alpha=0\.5,lam=grid-[0-9a-f]{6}", single["name"])
    trials = sorted(run["name"].rsplit("-", 1)[0] for run in runs["sweep"] if run["job_type"] == "trial")
    assert trials == [f"trial/cranfield/minilm_demo/{n}" for n in range(3)]
    tables = [run["name"] for run in runs["table"] if run["job_type"] == "table"]
    assert all(re.fullmatch(r"table/tiny-[0-9a-f]{6}", name) for name in tables) and len(set(tables)) == 2
    (selection,) = [run for run in runs["table"] if run["job_type"] == "selection"]
    assert re.fullmatch(r"selection/cranfield_split/minilm_demo/pseudo_queries-[0-9a-f]{6}", selection["name"])


def test_groups_gather_one_study_or_one_table_cell_and_a_single_job_stands_alone(runs):
    """3."""
    (single,) = runs["single"]
    assert single["group"] == ""
    (study,) = {run["group"] for run in runs["sweep"]}
    final = next(run for run in runs["sweep"] if run["job_type"] == "final")
    assert study == final["config"]["sweep"]["study"]["group"] and re.fullmatch(r"sweep/.+@[0-9a-f]{8}", study)
    assert f"study:{study.removeprefix('sweep/')}" in final["tags"]  # the tag names the storage too
    groups = {run["job_type"]: run["group"] for run in runs["table"]}
    assert groups == {"trial": CELL_GROUP, "final": CELL_GROUP, "selection": CELL_GROUP, "table": "table/tiny"}
    assert all("table:tiny" in run["tags"] for run in runs["table"])
    for run in every(runs):  # what a group leaves apart, the tags and config still say
        if run["job_type"] != "table":
            assert {"model:minilm_demo", "merge:task_arithmetic"} <= set(run["tags"])
            assert run["config"]["model"]["name"] == "minilm_demo" and run["config"]["merge"]["method"]


def test_lambda_and_alpha_curves_are_history_against_their_own_axis(runs):
    """4."""
    chose_lambda = [*runs["single"], *(run for run in every(runs) if run["job_type"] == "trial")]
    assert len(chose_lambda) == 7
    for run in chose_lambda:
        points = curve(run, "lambda_curve")
        assert [point["lam"] for point in points] == [0.0, 0.5, 1.0]
        assert {point["alpha"] for point in points} == {run["config"]["alpha"]["used"]}
        best = max(points, key=lambda point: point["value"])
        assert best["lam"] == run["config"]["lam"]["used"]  # the λ the curve chose is the one the run used
        if run["job_type"] == "trial":  # on the split it evaluates; a single run tunes λ on dev, evaluates test
            assert best["value"] == pytest.approx(run["summary"]["objective"])
        assert run["step_metrics"]["lambda_curve/*"] == "lambda_curve/lam"
    (selection,) = [run for run in runs["table"] if run["job_type"] == "selection"]
    chosen = json.loads((selection["file"].parents[2] / "selection.json").read_text())  # the job's own record
    (fold,) = chosen["folds"]
    for name, axis, held in (("alpha_curve", "alpha", "lam"), ("lambda_curve", "lam", "alpha")):
        points = curve(selection, name)
        line = sorted((row for row in chosen["curve"] if row[held] == fold[held]), key=lambda row: row[axis])
        assert points == [{"alpha": row["alpha"], "lam": row["lam"], "value": row["value"]} for row in line]
        assert [point[axis] for point in points] == [0.0, 0.5, 1.0]
        assert selection["step_metrics"][f"{name}/*"] == f"{name}/{axis}"
    for run in every(runs):  # a curve's last point is no result
        assert not any(key.startswith(("lambda_curve", "alpha_curve")) for key in run["summary"])


def test_every_logged_artifact_carries_its_key_as_alias(runs):
    """5."""
    logged = [(run, artifact) for run in every(runs) for artifact in run["artifacts"] if not artifact["used"]]
    logged = [(run, artifact) for run, artifact in logged if artifact["type"] != "run_table"]  # W&B's, per table
    assert {artifact["type"] for _, artifact in logged} == {"trec_runs", "report", "optuna_study"}
    for _, artifact in logged:
        (key,) = set(artifact["aliases"]) - {"latest"}
        assert "latest" in artifact["aliases"] and re.fullmatch(r"[0-9a-f]{32}", key)
    (single,) = runs["single"]
    (trec,) = [a for a in single["artifacts"] if a["type"] == "trec_runs"]
    assert set(trec["aliases"]) == {"latest", content_key(Path(next(iter(trec["files"].values()))[7:]).parent)}
    for run in every(runs):  # offline, the inputs are in the config, with their cache keys as aliases
        if run["job_type"] != "table":
            for used in json.loads(run["config"]["inputs"]).values():
                assert used["aliases"] == [used["metadata"]["cache_key"]]


def test_outside_a_git_folder_the_git_fields_are_taskvec_irs_own_commit(runs):
    """6."""
    head = subprocess.run(["git", "-C", str(SOURCE), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    for run in every(runs):
        assert run["config"]["provenance"]["git"] is None  # the folder the command ran in is no checkout
        assert run["git"]["commit"] == head.strip() == run["config"]["provenance"]["taskvec_ir_source"]["commit"]
    final = next(run for run in runs["sweep"] if run["job_type"] == "final")
    for key in ("alpha", "lam"):  # the final evaluation says where its α and λ came from
        assert final["config"][key]["chosen_by"].startswith("the best trial of study ")


def test_only_documented_settings_act(runs):
    """7. x_disable_stats (documented) samples no system metrics; the undocumented x_save_requirements is not set,
    so W&B saves the environment's requirements with every run (tests/reporting/test_tracking.py refuses any other
    x_ setting in the source)."""
    for run in every(runs):
        assert run["kinds"]["stats"] == 0
        assert "wandb==" in (run["file"].parent / "files" / "requirements.txt").read_text()


def test_config_and_summary_hold_only_chartable_values(runs):
    """8. No list of mappings, no path of ours in the summary, no dotted field in a chart, no sparse ``inputs.*``."""
    for run in every(runs):
        for section in ("config", "summary"):
            ours = {key: value for key, value in run[section].items() if key != "_wandb"}  # W&B's own record
            assert not _lists_of_mappings(ours), (run["name"], section, _lists_of_mappings(ours))
        for key, value in run["summary"].items():
            if key.startswith("_"):  # W&B's own: _wandb, _runtime, _step, _timestamp
                continue
            if isinstance(value, dict):  # only W&B's own media references (its table panels read them there)
                assert value.get("_type") in ("table-file", "image-file"), (run["name"], key, value)
            else:
                assert value is None or isinstance(value, int | float | str) and len(str(value)) < 300, (key, value)
                assert "wandb-client-artifact://" not in str(value)
        assert not isinstance(run["config"].get("inputs"), dict)
        charts = run["config"].get("_wandb", {}).get("visualize", {})
        for key, chart in charts.items():
            assert not any("." in field for field in chart["panel_config"]["fieldSettings"].values()), key
    final = next(run for run in runs["sweep"] if run["job_type"] == "final")
    assert "sensitivity/alpha" in final["config"]["_wandb"]["visualize"]


def test_every_key_a_workspace_panel_reads_is_logged_by_some_run(runs):
    """9, against real runs: no panel of the workspace is empty for want of its key."""
    for question, keys in panel_keys(workspace("someone", "taskvec-ir")).items():
        for where, key in keys:
            found = [run for run in every(runs) if _has(run, where, key)]
            assert found, f"{question}: no run has {where} {key}"


def _has(run: dict, where: str, key: str) -> bool:
    if where == "config":
        value = run["config"]
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                return False
            value = value[part]
        return True
    if where == "history":
        return any(key in row for row in run["rows"])
    return key in run["summary"]


def _lists_of_mappings(values, path: str = "") -> list[str]:
    if isinstance(values, dict):
        return [found for key, value in values.items() for found in _lists_of_mappings(value, f"{path}.{key}")]
    if isinstance(values, list) and any(isinstance(value, dict) for value in values):
        return [path]
    return []
