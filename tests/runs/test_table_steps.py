"""A table's plan, without running it: which cells the grid has, what each cell's steps are, what a step inherits
from the command, and what a rerun finds done. The table run end to end is tests/runs/test_table.py."""

import json

import pytest
from hydra import compose, initialize_config_dir

from taskvec_ir.config.composed import CONFIG_DIR, register
from taskvec_ir.errors import UserError
from taskvec_ir.runs import table
from taskvec_ir.runs.compose import typed_config

from beir_folders import write_beir_folder

register()


def hydra_compose(overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("config", overrides=overrides)


@pytest.fixture(scope="module")
def demo():
    """The demo table's config and its cells (SciFact has a dev split, Cranfield has none)."""
    cfg = typed_config(hydra_compose(["experiment=table_demo"]))
    return cfg, table.cells(cfg, lambda extra: hydra_compose(["experiment=table_demo", *extra]))


def test_the_grid_is_datasets_by_models_by_merges_with_each_entrys_overrides(demo):
    _, found = demo
    assert [c.name for c in found] == [
        "scifact/minilm_demo/task_arithmetic",
        "scifact/minilm_scifact_adapted/task_arithmetic",
        "cranfield/minilm_demo/task_arithmetic",
        "cranfield/minilm_scifact_adapted/task_arithmetic",
    ]
    scifact, cranfield = found[0], found[2]
    assert scifact.overrides[:2] == ("dataset=scifact", "dataset.splits.dev.fraction=0.05")
    assert "dataset=cranfield" in cranfield.overrides and "model=minilm_demo" in cranfield.overrides
    assert scifact.config.dataset.splits["dev"].fraction == 0.05
    assert scifact.selections(["nqc"]) == ["dev", "nqc"]  # tuned on dev where there is one
    assert cranfield.selections(["nqc"]) == ["cross_validation", "nqc"]  # cross-validated where there is none


def test_each_step_runs_only_what_is_missing_and_inherits_the_commands_overrides(demo, tmp_path):
    cfg, found = demo
    shared = table.command_overrides(
        ["experiment=table_demo", "table.name=x", "+table.datasets.y=[]", "retriever.top_k=5", "task=table"],
        ["hydra.sweeper.storage=sqlite:///s.db", "hydra.launcher.n_jobs=2", "hydra.run.dir=out"],
    )
    assert shared == ["experiment=table_demo", "retriever.top_k=5", "hydra.launcher.n_jobs=2"]  # the table's own out
    grid = table.Grid(cfg, tmp_path, shared, found, [])
    scifact = found[0]
    (dev, rest) = grid.steps(scifact)
    assert dev[0] == "dev" and "sweep=paper_grid" in dev[1] and "retriever.top_k=5" in dev[1]
    assert "alpha.value=choice(0.0,0.25,0.5,0.75,1.0)" in dev[1] and "hydra.sweeper.n_trials=5" in dev[1]
    assert f"hydra.sweeper.study_name=table_demo/{scifact.name}" in dev[1]
    assert rest == ("selection", rest[1]) and "selection=pseudo_queries,stability,nqc" in rest[1]
    done = grid.result_dir(scifact, "stability")
    done.mkdir(parents=True)
    (done / "metrics.json").write_text("{}")
    assert grid.missing(scifact) == ["dev", "pseudo_queries", "nqc"]
    assert "selection=pseudo_queries,nqc" in grid.steps(scifact)[1][1]


def test_a_rerun_with_other_settings_is_refused_naming_the_keys(demo, tmp_path):
    cfg, found = demo
    table.Grid(cfg, tmp_path, [], found, []).check_settings()
    recorded = json.loads((tmp_path / "settings.json").read_text())
    assert set(recorded) == {c.name for c in found}
    other = table.cells(cfg, lambda extra: hydra_compose(["experiment=table_demo", "retriever.top_k=20", *extra]))
    with pytest.raises(UserError, match=r"cell scifact/minilm_demo/task_arithmetic was run with other settings "):
        table.Grid(cfg, tmp_path, [], other, []).check_settings()


def test_a_wrong_entry_fails_before_anything_runs_naming_its_cell():
    cfg = typed_config(hydra_compose(["experiment=table_demo", "+table.datasets.nosuch=[]"]))
    with pytest.raises(UserError, match=r"table cell nosuch/minilm_demo/task_arithmetic \(dataset=nosuch"):
        table.cells(cfg, lambda extra: hydra_compose(["experiment=table_demo", *extra]))


def test_a_failed_steps_reason_is_its_error_line(tmp_path):
    log = tmp_path / "step.log"
    log.write_text("starting\nTraceback (most recent call last):\nValueError: boom\nSet HYDRA_FULL_ERROR=1 for more\n")
    assert table._error_line(log) == "ValueError: boom"
    log.write_text("only a line\n")
    assert table._error_line(log) == "only a line"


def test_a_tables_beir_folders_have_the_splits_their_qrels_files_name(tmp_path):
    """A BEIR folder with qrels/dev.tsv is tuned on dev, one without is cross-validated: the table reads each
    folder's splits as a single run does (#26)."""
    with_dev = write_beir_folder(tmp_path / "with_dev", {"dev": 6, "test": 6})
    test_only = write_beir_folder(tmp_path / "test_only", {"test": 6})
    overrides = [
        "task=table",
        "table.name=mine",
        f"+table.datasets.with_dev=['dataset=beir','dataset.name=with_dev','dataset.beir_path={with_dev}']",
        f"+table.datasets.test_only=['dataset=beir','dataset.name=test_only','dataset.beir_path={test_only}']",
        "+table.models.minilm_demo=[]",
    ]
    cfg = typed_config(hydra_compose(overrides))
    by_dataset = {c.dataset: c for c in table.cells(cfg, lambda extra: hydra_compose([*overrides, *extra]))}
    assert by_dataset["with_dev"].config.dataset.splits == {"dev": "with_dev/dev", "test": "with_dev/test"}
    assert by_dataset["with_dev"].selections([]) == ["dev"]
    assert by_dataset["test_only"].config.dataset.splits == {"test": "test_only/test"}
    assert by_dataset["test_only"].selections([]) == ["cross_validation"]


def test_an_experiments_entries_are_left_out_by_null_so_one_command_tables_a_users_own_collection(tmp_path):
    """Hydra merges a mapping given on the command line into the experiment's (table.datasets={mine: []} is
    refused as 'not in struct'): null leaves the experiment's entries out, + adds the user's (#26)."""
    mine = write_beir_folder(tmp_path / "mine", {"test": 6})
    overrides = [
        "experiment=table_demo",
        "table.datasets.scifact=null",
        "table.datasets.cranfield=null",
        f"+table.datasets.mine=['dataset=beir','dataset.name=mine','dataset.beir_path={mine}']",
        "table.models.minilm_scifact_adapted=null",
    ]
    cfg = typed_config(hydra_compose(overrides))
    assert [c.name for c in table.cells(cfg, lambda extra: hydra_compose([*overrides, *extra]))] == [
        "mine/minilm_demo/task_arithmetic"
    ]
    everything_out = [*overrides, "table.datasets.mine=null"]
    with pytest.raises(UserError, match=r"table.datasets: name at least one .*null leaves an entry out"):
        typed_config(hydra_compose(everything_out))
