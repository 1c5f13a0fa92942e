"""A table's grid, composed without running anything: which cells and general-domain entries it has, each entry's
overrides, and the errors that name a wrong entry before anything runs."""

import pytest

from taskvec_ir.errors import UserError
from taskvec_ir.runs.compose import typed_config
from taskvec_ir.runs.table_grid import Cell, cells, command_overrides, general_domains

from beir_folders import write_beir_folder


def test_the_grid_is_datasets_by_models_by_merges_with_each_entrys_overrides(table_demo):
    _, found = table_demo
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


def test_every_step_inherits_the_commands_overrides_but_the_tables_own():
    shared = command_overrides(
        ["experiment=table_demo", "table.name=x", "+table.datasets.y=[]", "retriever.top_k=5", "task=table"],
        ["hydra.sweeper.storage=sqlite:///s.db", "hydra.launcher.n_jobs=2", "hydra.run.dir=out"],
    )
    assert shared == ["experiment=table_demo", "retriever.top_k=5", "hydra.launcher.n_jobs=2"]  # the table's own out


def test_a_wrong_entry_fails_before_anything_runs_naming_its_cell(hydra_compose):
    cfg = typed_config(hydra_compose(["experiment=table_demo", "+table.datasets.nosuch=[]"]))
    with pytest.raises(UserError, match=r"table cell nosuch/minilm_demo/task_arithmetic \(dataset=nosuch"):
        cells(cfg, lambda extra: hydra_compose(["experiment=table_demo", *extra]))


def test_a_general_domain_is_each_model_on_another_collection_and_a_misspelt_one_fails_before_anything_runs(
    hydra_compose,
):
    overrides = ["experiment=general_domain_demo"]
    cfg = typed_config(hydra_compose(overrides))
    found = cells(cfg, lambda extra: hydra_compose([*overrides, *extra]))
    general = general_domains(cfg, lambda extra: hydra_compose([*overrides, *extra]))
    assert [c.name for c in found] == [
        "scifact/minilm_demo/task_arithmetic",
        "scifact/minilm_scifact_adapted/task_arithmetic",
    ]
    assert [g.name for g in general] == [
        "general/cranfield/minilm_demo/task_arithmetic",
        "general/cranfield/minilm_scifact_adapted/task_arithmetic",
    ]
    demo = general[0]
    assert demo.overrides == (
        "dataset=cranfield",
        "model=minilm_demo",
        "merge=task_arithmetic",
        "systems=[bm25,ir_model,alpha_one,task_arithmetic]",
    )
    assert demo.covers(found[0]) and not demo.covers(found[1])  # its own model's cells only
    carve_out = typed_config(hydra_compose(["dataset=cranfield_split"]))  # a part of the general collection:
    own = Cell("cranfield_split", model="minilm_demo", merge="task_arithmetic", overrides=(), config=carve_out)
    assert not demo.covers(own)  # no other domain
    misspelt = typed_config(hydra_compose([*overrides, "+table.general_domain.cranfeld=[]"]))
    with pytest.raises(UserError, match=r"table.general_domain.cranfeld \(dataset=cranfeld model=minilm_demo"):
        general_domains(misspelt, lambda extra: hydra_compose([*overrides, *extra]))


def test_a_tables_beir_folders_have_the_splits_their_qrels_files_name(tmp_path, hydra_compose):
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
    by_dataset = {c.dataset: c for c in cells(cfg, lambda extra: hydra_compose([*overrides, *extra]))}
    assert by_dataset["with_dev"].config.dataset.splits == {"dev": "with_dev/dev", "test": "with_dev/test"}
    assert by_dataset["with_dev"].selections([]) == ["dev"]
    assert by_dataset["test_only"].config.dataset.splits == {"test": "test_only/test"}
    assert by_dataset["test_only"].selections([]) == ["cross_validation"]


def test_an_experiments_entries_are_left_out_by_null_so_one_command_tables_a_users_own_collection(
    tmp_path, hydra_compose
):
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
    assert [c.name for c in cells(cfg, lambda extra: hydra_compose([*overrides, *extra]))] == [
        "mine/minilm_demo/task_arithmetic"
    ]
    everything_out = [*overrides, "table.datasets.mine=null"]
    with pytest.raises(UserError, match=r"table.datasets: name at least one .*null leaves an entry out"):
        typed_config(hydra_compose(everything_out))
