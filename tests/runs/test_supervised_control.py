"""A supervised control (ΘD trained on relevance labels) is labelled everywhere, never tunes or evaluates on what it
trained on, and never shares a table with zero-shot models. Configs are composed only: nothing is read or trained."""

from dataclasses import replace

import pytest
from hydra import compose as hydra_compose
from hydra import initialize_config_dir

from taskvec_ir.config.composed import CONFIG_DIR, register
from taskvec_ir.config.model import SUPERVISED_LABEL, SUPERVISED_TAG
from taskvec_ir.errors import UserError
from taskvec_ir.runs import table_grid
from taskvec_ir.runs.compose import compose, typed_config
from taskvec_ir.runs.job import job_header
from taskvec_ir.runs.run_identity import run_settings

SUPERVISED = "model=minilm_scifact_supervised"


def table_cells(*overrides: str) -> list[table_grid.Cell]:
    """The cells of a table command with ``overrides``, composed and checked as ``task=table`` does."""
    register()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = typed_config(hydra_compose("config", overrides=list(overrides)))
        return table_grid.cells(cfg, lambda extra: hydra_compose("config", overrides=[*overrides, *extra]))


def test_a_table_that_mixes_a_supervised_model_with_zero_shot_ones_is_refused_naming_it():
    mixed = ["experiment=table_demo", "table.datasets.cranfield=null", f'+table.models.sup=["{SUPERVISED}"]']
    with pytest.raises(
        UserError, match=r"table.models: sup trained ΘD on relevance labels .*table.models.<label>=null"
    ):
        table_cells(*mixed)
    cells = table_cells("experiment=supervised_control_demo")  # the control alone is a table of its own
    assert [cell.name for cell in cells] == ["scifact/minilm_scifact_supervised/task_arithmetic"]
    assert table_grid.supervised(cells) and not table_grid.supervised(table_cells("experiment=table_demo"))


def test_its_runs_are_tagged_and_headed_as_a_supervised_control_and_zero_shot_runs_are_not():
    supervised, zero_shot = compose([SUPERVISED]), compose([])
    assert supervised.model.supervised and not zero_shot.model.supervised
    assert SUPERVISED_TAG in run_settings(supervised).tags and SUPERVISED_TAG not in run_settings(zero_shot).tags
    assert job_header(supervised, 0.3).endswith(f"· {SUPERVISED_LABEL}") and SUPERVISED_LABEL == (
        "supervised control (not zero-shot)"
    )
    assert SUPERVISED_LABEL not in job_header(zero_shot, 0.3)


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["split=train"], "model.domain.pairs_split: 'train' is a split this run tunes or evaluates on"),
        (["model.domain.pairs_split=test"], "model.domain.pairs_split: 'test' is a split this run tunes"),
        (["sweep=paper_grid", "sweep.tune_split=train"], "model.domain.pairs_split: 'train' is a split this run"),
        (["model.domain.pairs_split=validation"], "model.domain.pairs_split: 'validation' is not a split of scifact"),
    ],
)
def test_a_pairs_split_the_run_tunes_or_evaluates_on_is_refused(overrides, key):
    with pytest.raises(UserError, match=key):
        compose([SUPERVISED, *overrides])


def test_a_domain_trained_with_another_dev_sample_than_the_runs_is_refused():
    """Its training could hold a query the run tunes on (another seeded fraction of train)."""
    cfg = compose([SUPERVISED])
    dataset = cfg.model.domain.dataset
    other = replace(dataset, splits={**dataset.splits, "dev": replace(dataset.splits["dev"], fraction=0.05)})
    cfg.model.domain = replace(cfg.model.domain, dataset=other)
    with pytest.raises(UserError, match=r"model.domain.dataset: its splits differ from dataset.splits"):
        cfg.check_supervised()


def test_what_training_leaves_out_is_set_on_the_command_line_and_keys_a_checkpoint_of_its_own():
    """Near-duplicates of dev and test claims are left out by default; the strict variant and another threshold are
    each a ΘD of their own (their settings are in its cache key)."""
    default = compose([SUPERVISED]).model.domain
    assert (default.near_duplicate_overlap, default.exclude_relevant_documents) == (0.7, False)
    variants = [
        compose([SUPERVISED, *overrides]).model.domain
        for overrides in (
            ["model.domain.exclude_relevant_documents=true"],
            ["model.domain.near_duplicate_overlap=0.8"],
            ["model.domain.near_duplicate_overlap=null"],
        )
    ]
    assert variants[0].exclude_relevant_documents and variants[2].near_duplicate_overlap is None
    keys = [domain.identity() for domain in (default, *variants)]
    assert all(keys[i] != keys[j] for i in range(len(keys)) for j in range(i))
    with pytest.raises(
        UserError, match=r"^model.domain \(an adapt config\): adapt.near_duplicate_overlap: 0.0 must lie"
    ):
        compose([SUPERVISED, "model.domain.near_duplicate_overlap=0"])
