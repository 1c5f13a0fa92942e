"""A table's folder and its steps, without running a model: what each cell's and general-domain entry's steps are,
what a step inherits from the command, what a rerun finds done or refuses, and why a step failed. The table run end
to end is tests/runs/test_table.py."""

import json
import re
import subprocess
import time
from types import SimpleNamespace

import pytest
import yaml

from taskvec_ir.errors import UserError
from taskvec_ir.runs import table_folder
from taskvec_ir.runs.compose import typed_config
from taskvec_ir.runs.progress import Pace, trial_line
from taskvec_ir.runs.table_folder import TableFolder, error_line
from taskvec_ir.runs.table_grid import Cell, cells, command_overrides, general_domains
from taskvec_ir.storage.outputs import record_failure


@pytest.fixture(scope="module")
def general_demo(hydra_compose, tmp_path_factory):
    """The general-domain demo's config, cells and general domains (SciFact cells, Cranfield as the general)."""
    overrides = ["experiment=general_domain_demo"]
    cfg = typed_config(hydra_compose(overrides))
    compose_cell = lambda extra: hydra_compose([*overrides, *extra])  # noqa: E731
    found = cells(cfg, compose_cell)
    return cfg, found, general_domains(cfg, compose_cell, found, tmp_path_factory.mktemp("pins"))


def test_each_step_runs_only_what_is_missing_and_inherits_the_commands_overrides(table_demo, tmp_path):
    cfg, found = table_demo
    shared = command_overrides(["experiment=table_demo", "table.name=x", "retriever.top_k=5"], [])
    folder = TableFolder(cfg, tmp_path, shared, found, [])
    scifact = found[0]
    (dev, pareto, rest) = folder.steps(scifact)
    assert dev[0] == "dev" and "sweep=paper_grid" in dev[1] and "retriever.top_k=5" in dev[1]
    assert "alpha.value=choice(0.0,0.25,0.5,0.75,1.0)" in dev[1] and "hydra.sweeper.n_trials=5" in dev[1]
    assert f"hydra.sweeper.study_name=table_demo/{scifact.name}" in dev[1]
    # The Pareto row: the dev sweep's grid, each α once, with the retention on the general collection.
    assert pareto[0] == "pareto" and "retriever.top_k=5" in pareto[1]
    assert {"sweep=pareto", "dataset@sweep.retention.dataset=cranfield", "hydra/sweeper/sampler=grid",
            "alpha.value=choice(0.0,0.25,0.5,0.75,1.0)", "hydra.sweeper.n_trials=5",
            f"hydra.sweep.dir={tmp_path / 'cells' / 'scifact' / 'minilm_demo' / 'task_arithmetic' / 'pareto'}",
            f"hydra.sweeper.study_name=table_demo/{scifact.name}/pareto"} <= set(pareto[1])  # fmt: skip
    assert rest == ("selection", rest[1]) and "selection=pseudo_queries,stability,nqc,entropy" in rest[1]
    done = folder.result_dir(scifact, "stability")
    done.mkdir(parents=True)
    (done / "metrics.json").write_text("{}")
    assert folder.missing(scifact) == ["dev", "pareto", "pseudo_queries", "nqc", "entropy"]
    assert "selection=pseudo_queries,nqc,entropy" in folder.steps(scifact)[2][1]


def test_a_tables_steps_pass_the_analyses_to_every_job_that_evaluates_test(cranfield_cfg, tmp_path):
    cfg = cranfield_cfg("dataset=cranfield_split")
    cell = Cell("cranfield_split", model="tiny", merge="task_arithmetic", overrides=(), config=cfg)
    shared = command_overrides(["experiment=table_demo", "analyses=[alpha_response,depth]"], [])
    (dev, selections) = TableFolder(cfg, tmp_path, shared, [cell], []).steps(cell)
    # The dev sweep's trials skip them (pipeline.analyses); its final evaluation and each selection job run them.
    assert "analyses=[alpha_response,depth]" in dev[1] and "analyses=[alpha_response,depth]" in selections[1]


def test_a_rerun_with_other_settings_is_refused_naming_the_keys(table_demo, tmp_path, hydra_compose):
    cfg, found = table_demo
    TableFolder(cfg, tmp_path, [], found, []).check_settings()
    recorded = json.loads((tmp_path / "settings.json").read_text())
    assert set(recorded) == {c.name for c in found} | {f"{c.name}/pareto" for c in found if c.dataset == "scifact"}
    bound = ["experiment=table_demo", "table.pareto.overrides=['sweep.retention.bound=0.02']"]
    looser = cells(typed_config(hydra_compose(bound)), lambda extra: hydra_compose([*bound, *extra]))
    with pytest.raises(UserError, match=r"Pareto row scifact/minilm_demo/task_arithmetic/pareto was run with other "
                       r"settings \(bound differ\)"):  # fmt: skip
        TableFolder(cfg, tmp_path, [], looser, []).check_settings()
    other_depth = "retriever.top_k=30"  # table_demo re-ranks 20
    other = cells(cfg, lambda extra: hydra_compose(["experiment=table_demo", other_depth, *extra]))
    with pytest.raises(UserError, match=r"cell scifact/minilm_demo/task_arithmetic was run with other settings "):
        TableFolder(cfg, tmp_path, [], other, []).check_settings()


def test_a_general_domain_with_other_settings_is_refused(tmp_path, hydra_compose):
    overrides = ["experiment=general_domain_demo"]
    cfg = typed_config(hydra_compose(overrides))

    def folder(*extra):
        compose_cell = lambda more: hydra_compose([*overrides, *extra, *more])  # noqa: E731
        found = cells(cfg, compose_cell)
        return TableFolder(cfg, tmp_path, [], found, [], general_domains(cfg, compose_cell, found, tmp_path / "pins"))

    folder().check_settings()
    assert "general/cranfield/minilm_demo/task_arithmetic" in json.loads((tmp_path / "settings.json").read_text())
    with pytest.raises(UserError, match=r"general-domain evaluation general/cranfield/minilm_demo/task_arithmetic "
                       r"was run with other settings \(dataset.relevance_map"):  # fmt: skip
        folder("dataset.relevance_map=null").check_settings()


def test_a_failed_steps_reason_is_its_error_line(tmp_path):
    log = tmp_path / "step.log"
    log.write_text("starting\nTraceback (most recent call last):\nValueError: boom\nSet HYDRA_FULL_ERROR=1 for more\n")
    assert error_line(log) == "ValueError: boom"
    log.write_text("only a line\n")
    assert error_line(log) == "only a line"


def done_selection(folder, cell, selection, folds):
    """What a done selection job leaves that the plan reads: its metrics.json, each fold's α and λ."""
    job = folder.result_dir(cell, selection)
    job.mkdir(parents=True)
    chosen = [{"queries": 1, "alpha": alpha, "lam": lam} for alpha, lam in folds]
    (job / "metrics.json").write_text(json.dumps({"selection": {"folds": chosen}}))


def scifact_chose(folder, scifact):
    """dev chose (0.25, 0.8); stability and nqc (0.5, 0.3) and (0.25, 0.3); pseudo-queries is not done yet."""
    dev = folder.cell_dir(scifact) / "dev"
    (dev / "final").mkdir(parents=True)
    (dev / "final" / "metrics.json").write_text("{}")
    (dev / "optimization_results.yaml").write_text(
        yaml.safe_dump({"best_params": {"alpha.value": 0.25}, "best_lam": 0.8})
    )
    done_selection(folder, scifact, "stability", [(0.5, 0.3)])
    done_selection(folder, scifact, "nqc", [(0.25, 0.3)])


def test_each_choice_of_a_cell_is_one_general_domain_job_run_per_lambda_and_resumed(general_demo, tmp_path):
    cfg, found, general = general_demo
    folder = TableFolder(cfg, tmp_path, ["experiment=general_domain_demo"], found, [], general)
    demo = general[0]
    scifact_chose(folder, found[0])
    assert folder.missing(demo) == [(0.25, 0.8), (0.5, 0.3), (0.25, 0.3)]
    steps = folder.steps(demo)
    assert [name for name, _ in steps] == ["lam_0.8", "lam_0.3"]  # one multirun per λ, a job per α
    overrides = steps[1][1]
    assert overrides[:2] == ["-m", "experiment=general_domain_demo"] and "dataset=cranfield" in overrides
    assert "alpha.value=0.5,0.25" in overrides and "lam.value=0.3" in overrides and "task=evaluate" in overrides
    assert f"hydra.sweep.dir={tmp_path / demo.name}" in overrides
    assert "hydra.sweep.subdir=alpha_${alpha.value}-lam_0.3" in overrides
    assert folder.general_dir(demo, (0.5, 0.3)) == tmp_path / demo.name / "alpha_0.5-lam_0.3"
    assert folder.steps(general[1]) == []  # the adapted model's cell has chosen nothing yet
    # Resume: a setting whose job wrote metrics.json is done.
    (folder.general_dir(demo, (0.25, 0.8))).mkdir(parents=True)
    (folder.general_dir(demo, (0.25, 0.8)) / "metrics.json").write_text("{}")
    assert [name for name, _ in folder.steps(demo)] == ["lam_0.3"]
    assert folder.failure(demo, (0.5, 0.3)) == "not run"


def test_a_general_domain_runs_through_the_cells_step_runner_and_names_each_setting_that_failed(
    general_demo, tmp_path, monkeypatch
):
    """λ 0.3's multirun: (0.5, 0.3) done, (0.25, 0.3) recorded its error; λ 0.8's step fails with no job at all,
    and its log's error line says why."""
    cfg, found, general = general_demo
    folder = TableFolder(cfg, tmp_path, [], found, [], general)
    demo = general[0]
    scifact_chose(folder, found[0])
    ran = []

    def multirun(command, stdout, **kwargs):
        lam = next(o for o in command if o.startswith("lam.value=")).split("=")[1]
        ran.append(lam)
        if lam == "0.3":
            done = folder.general_dir(demo, (0.5, 0.3))
            done.mkdir(parents=True)
            (done / "metrics.json").write_text("{}")
            record_failure(folder.general_dir(demo, (0.25, 0.3)), ValueError("boom"))
        else:
            stdout.write("Traceback (most recent call last):\nRuntimeError: no memory\n")
        return subprocess.CompletedProcess(command, 1)

    # Only the folder module's subprocess: patching the module object itself would reach every other test's runs.
    monkeypatch.setattr(table_folder, "subprocess", SimpleNamespace(run=multirun, STDOUT=subprocess.STDOUT,
                                                                    DEVNULL=None))  # fmt: skip
    failures = folder.run(general)
    assert ran == ["0.8", "0.3"]  # the adapted model's entry has nothing to run
    log = tmp_path / demo.name / "lam_0.8.log"
    assert failures == [
        f"{demo.name}: α 0.25 λ 0.8 failed (RuntimeError: no memory; see {log})",
        f"{demo.name}: α 0.25 λ 0.3 failed (ValueError: boom)",
    ]
    assert folder.missing(demo) == [(0.25, 0.8), (0.25, 0.3)]


def test_a_running_cell_says_its_step_its_trial_the_time_spent_and_the_time_left(table_demo, tmp_path, monkeypatch,
                                                                                  caplog):  # fmt: skip
    """The dev sweep's log gets the sweeper's line per trial; while the step runs, the table says which step of the
    cell, the trial count and an estimate; after the cell, the table's own count."""
    cfg, found = table_demo
    scifact = found[0]
    folder = TableFolder(cfg, tmp_path, [], [scifact], [])
    folder.progress_every = 0.05

    def step(command, stdout, **kwargs):
        pace = Pace()
        for number in range(3 if "sweep=paper_grid" in command else 0):
            time.sleep(0.3)
            pace.finished += 1
            stdout.write(trial_line(number, "ndcg@10 0.5 at alpha.value=0.25", pace, number + 1, 5) + "\n")
            stdout.flush()
        time.sleep(0.3)
        for selection in scifact.selections(cfg.table.selections):
            folder.result_dir(scifact, selection).mkdir(parents=True, exist_ok=True)
            (folder.result_dir(scifact, selection) / "metrics.json").write_text("{}")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(table_folder, "subprocess", SimpleNamespace(run=step, STDOUT=subprocess.STDOUT, DEVNULL=None))
    caplog.set_level("INFO", logger="taskvec_ir")
    assert folder.run([scifact]) == []
    said = [r.getMessage() for r in caplog.records]
    cell = f"Cell {scifact.name}"
    assert f"{cell}: dev (step 1 of 3; log: {folder.cell_dir(scifact) / 'dev.log'})" in said  # then pareto
    trials = [m for m in said if m.startswith(f"{cell}: dev (step 1 of 3) · ") and "trials" in m]
    counts = [int(re.search(r"· (\d)/5 trials · \d+ s elapsed", m)[1]) for m in trials]
    assert counts == sorted(counts) and {1, 2, 3} <= set(counts)  # each trial seen, in order
    assert all(re.search(r"elapsed, about \d+ s left$", m) for m in trials)  # at the pace of the trials so far
    assert any(re.fullmatch(rf"{cell}: selection \(step 3 of 3\) · \d+ s elapsed", m) for m in said)
    assert re.search(rf"{cell}: done in \d+ s", "\n".join(said))
    assert any(re.fullmatch(r"Table table_demo: 1/1 cells run · \d+ s elapsed", m) for m in said)
