"""A table's grid, composed without running anything: which cells and general-domain entries it has, each entry's
overrides, and the errors that name a wrong entry before anything runs."""

from dataclasses import asdict

import pytest

from taskvec_ir.config.model import PRIMARY
from taskvec_ir.errors import UserError
from taskvec_ir.pipeline.pipeline import Pipeline, PipelineSpec
from taskvec_ir.runs.compose import typed_config
from taskvec_ir.runs.table_grid import Cell, cells, command_overrides, general_domains
from taskvec_ir.storage.cache import Cache

from beir_folders import write_beir_folder


def test_the_grid_is_datasets_by_models_by_merges_with_each_entrys_overrides(table_demo):
    _, found = table_demo
    assert [c.name for c in found] == [
        f"{dataset}/{model}/{merge}"
        for dataset in ("scifact", "cranfield")
        for model in ("minilm_demo", "minilm_scifact_adapted")
        for merge in ("task_arithmetic", "random")  # every cell beside its random-direction null
    ]
    scifact, cranfield, null = found[0], found[4], found[1]
    assert null.config.merge_setting().method.direction == "random" and "merge=random" in null.overrides
    assert scifact.config.merge_setting().method.direction == "task_vector"
    assert scifact.overrides[:2] == ("dataset=scifact", "dataset.splits.dev.fraction=0.05")
    assert "dataset=cranfield" in cranfield.overrides and "model=minilm_demo" in cranfield.overrides
    assert scifact.config.dataset.splits["dev"].fraction == 0.05
    assert scifact.selections(["nqc"]) == ["dev", "pareto", "nqc"]  # tuned on dev where there is one, and Pareto
    assert cranfield.selections(["nqc"]) == ["cross_validation", "nqc"]  # cross-validated where there is none


def test_a_pareto_row_is_for_each_cell_with_a_dev_split_on_another_corpus_than_the_general_collection(table_demo):
    _, found = table_demo
    by_dataset = {cell.dataset: cell for cell in found}
    retention = by_dataset["scifact"].retention  # its step's settings, composed as it will run them
    assert (retention.dataset.name, retention.split, retention.bound) == ("cranfield", "test", 0.01)
    assert by_dataset["cranfield"].retention is None  # no dev split (and the general collection's own corpus)


def test_a_pareto_row_trades_against_the_collection_it_names_and_not_on_its_own_corpus(hydra_compose):
    overrides = ["experiment=table_demo", "table.datasets.cranfield=null", "+table.datasets.cranfield_split=[]",
                 "table.pareto.retention=scifact", "table.models.minilm_scifact_adapted=null"]  # fmt: skip
    cfg = typed_config(hydra_compose(overrides))
    found = {cell.name: cell.retention for cell in cells(cfg, lambda more: hydra_compose([*overrides, *more]))}
    assert found["scifact/minilm_demo/task_arithmetic"] is None  # tuned on the general collection's own corpus
    retention = found["cranfield_split/minilm_demo/task_arithmetic"]  # Cranfield's dev half, against SciFact
    assert (retention.dataset.name, retention.dataset.docs, retention.split) == ("scifact", "beir/scifact", "test")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["table.pareto.retention=cranfeld"], r"table.pareto.retention \(dataset=cranfeld\)"),
        (["table.pareto.overrides=['sweep.retention.bound=-1']"], r"table cell scifact/minilm_demo/task_arithmetic, "
         r"its Pareto row \(table.pareto\).*sweep.retention.bound: -1.0 must be 0 or more"),
    ],
)  # fmt: skip
def test_a_pareto_row_that_cannot_run_is_refused_before_anything_runs(hydra_compose, extra, message):
    overrides = ["experiment=table_demo", *extra]
    cfg = typed_config(hydra_compose(overrides))
    with pytest.raises(UserError, match=message):
        cells(cfg, lambda more: hydra_compose([*overrides, *more]))


def test_a_table_whose_cells_cannot_have_a_pareto_row_runs_without_one_and_says_so(hydra_compose, caplog):
    overrides = ["experiment=table_demo", "table.pareto.retention=scifact"]  # SciFact's cells: its own corpus
    cfg = typed_config(hydra_compose(overrides))
    found = cells(cfg, lambda more: hydra_compose([*overrides, *more]))
    assert len(found) == 8 and not any(cell.retention for cell in found)
    assert "table.pareto.retention=scifact: no cell of the table has a dev split and another corpus" in caplog.text


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
    hydra_compose, tmp_path
):
    overrides = ["experiment=general_domain_demo"]
    cfg = typed_config(hydra_compose(overrides))
    found = cells(cfg, lambda extra: hydra_compose([*overrides, *extra]))
    general = general_domains(cfg, lambda extra: hydra_compose([*overrides, *extra]), found, tmp_path / "pins")
    assert [c.name for c in found] == [
        "scifact/minilm_demo/task_arithmetic",
        "scifact/minilm_demo/random",
        "scifact/minilm_scifact_adapted/task_arithmetic",
        "scifact/minilm_scifact_adapted/random",
    ]
    assert [g.name for g in general] == [f"general/cranfield/{c.name.removeprefix('scifact/')}" for c in found]
    demo = general[0]
    assert demo.overrides == (
        "dataset=cranfield",
        "model=minilm_demo",
        "merge=task_arithmetic",
        "systems=[bm25,ir_model,alpha_one,task_arithmetic]",
    )
    assert not (tmp_path / "pins").exists()  # the demo's models read nothing of their cell: nothing to pin
    assert demo.covers(found[0]) and not any(demo.covers(cell) for cell in found[1:])  # its model and merge only
    carve_out = typed_config(hydra_compose(["dataset=cranfield_split"]))  # a part of the general collection:
    own = Cell("cranfield_split", model="minilm_demo", merge="task_arithmetic", overrides=(), config=carve_out)
    assert not demo.covers(own)  # no other domain
    misspelt = typed_config(hydra_compose([*overrides, "+table.general_domain.cranfeld=[]"]))
    with pytest.raises(UserError, match=r"table.general_domain.cranfeld \(dataset=cranfeld model=minilm_demo"):
        general_domains(misspelt, lambda extra: hydra_compose([*overrides, *extra]), found, tmp_path / "pins")


@pytest.mark.parametrize(
    "model, datasets, general, differs",
    [
        # ΘD trained on ${dataset} (the supervised control), each cell's leaving out its own dev sample: composed
        # plainly, the general job's ΘD would be trained on NFCorpus's labels
        ("minilm_scifact_supervised",
         {"scifact": [], "small_dev": ["dataset=scifact", "dataset.splits.dev.fraction=0.1"]},
         "nfcorpus", lambda model: model.domain.dataset.splits),
        # the model's language set in a dataset's entry (as paper_table2 does): plainly, the default language's
        ("mt5_base", {"scifact": ["model.language=french"], "nfcorpus": ["model.language=spanish"]},
         "cranfield", lambda model: model.domain),
    ],
)  # fmt: skip
def test_a_general_job_evaluates_exactly_its_cells_model_where_the_model_reads_the_cell(
    hydra_compose, tmp_path, model, datasets, general, differs
):
    """Composed as dataset=<general> model=<m>, the general job's model would be another: each cell's model config
    is pinned instead, one entry per config, covering its own cells."""
    overrides = ["task=table", "table.name=t", f"+table.models.{model}=[]", f"+table.general_domain.{general}=[]"]
    overrides += [f"+table.datasets.{label}=[{','.join(repr(o) for o in entry)}]" for label, entry in datasets.items()]
    cfg = typed_config(hydra_compose(overrides))
    found = cells(cfg, lambda extra: hydra_compose([*overrides, *extra]))
    entries = general_domains(cfg, lambda extra: hydra_compose([*overrides, *extra]), found, tmp_path / "pins")
    assert [g.name for g in entries] == [f"general/{general}/{model}/task_arithmetic/{label}" for label in datasets]
    plain = typed_config(hydra_compose([*overrides, f"dataset={general}", f"model={model}", "task=evaluate"]))
    for cell, entry in zip(found, entries, strict=True):
        assert asdict(entry.config.model) == asdict(cell.config.model) != asdict(plain.model)
        assert differs(entry.config.model) == differs(cell.config.model) != differs(plain.model)
        assert entry.config.dataset.name == general and [c for c in found if entry.covers(c)] == [cell]
        pinned = next(o for o in entry.overrides if o.startswith("model=pinned_"))
        assert (tmp_path / "pins" / "model" / f"{pinned.removeprefix('model=')}.yaml").is_file()
        assert f"hydra.searchpath=[file://{(tmp_path / 'pins').resolve()}]" in entry.overrides


def test_a_general_job_of_a_dataset_trained_domain_has_the_cells_task_vector(hydra_compose, triple, tmp_path):
    """The task vector's cache key (the checkpoints' fingerprints: ΘD trained once per corpus and settings) is the
    cell's in its general job; composed plainly, ΘD would be trained on the general collection's labels."""
    mine, other = (write_beir_folder(tmp_path / name, {"train": 4, "test": 4}, docs=12) for name in ("mine", "other"))
    model = ["model=minilm_scifact_supervised", f"model.ir={triple['ir']}", "model.domain.steps=1",
             "model.domain.batch_size=2", "model.domain.max_length=16", "model.domain.device=cpu",
             "model.scorer.show_progress=false"]  # fmt: skip
    overrides = [
        "task=table",
        "table.name=t",
        f"cache.dir={tmp_path / 'cache'}",
        f"+table.datasets.mine=['dataset=beir','dataset.name=mine','dataset.beir_path={mine}']",
        f"+table.general_domain.other=['dataset=beir','dataset.name=other','dataset.beir_path={other}']",
        f"+table.models.tiny=[{','.join(repr(o) for o in model)}]",
    ]
    cfg = typed_config(hydra_compose(overrides))
    compose = lambda extra: hydra_compose([*overrides, *extra])  # noqa: E731
    (cell,) = cells(cfg, compose)
    (general,) = general_domains(cfg, compose, [cell], tmp_path / "pins")
    (plain,) = general_domains(cfg, compose, [], tmp_path / "pins")  # no cell to pin: composed as before

    def tau_key(config):
        return Pipeline(PipelineSpec.from_config(config), Cache(config.cache.dir)).merged.task_vector_key(PRIMARY)

    assert plain.config.model.domain.dataset.name == "other" and general.config.model.domain.dataset.name == "mine"
    assert tau_key(general.config) == tau_key(cell.config) != tau_key(plain.config)


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
        "table.merges.random=null",
    ]
    cfg = typed_config(hydra_compose(overrides))
    assert [c.name for c in cells(cfg, lambda extra: hydra_compose([*overrides, *extra]))] == [
        "mine/minilm_demo/task_arithmetic"
    ]
    everything_out = [*overrides, "table.datasets.mine=null"]
    with pytest.raises(UserError, match=r"table.datasets: name at least one .*null leaves an entry out"):
        typed_config(hydra_compose(everything_out))
