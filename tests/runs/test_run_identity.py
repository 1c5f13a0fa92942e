"""Who a job's W&B run is, from its config alone: its kind, a name that says what it is and never repeats, its group
(none for a single job) and the tags that find it."""

import re

import pytest

from taskvec_ir.config.model import SUPERVISED_TAG
from taskvec_ir.runs.compose import compose
from taskvec_ir.runs.run_identity import run_settings

SUFFIX = "-[0-9a-f]{6}"


@pytest.mark.parametrize(
    "overrides, kind, name",
    [
        (["alpha.value=0.5", "lam.value=0.3"], "run", r"run/scifact/minilm_demo/alpha=0\.5,lam=0\.3"),
        (["dataset=cranfield_split", "lam=dev_grid"], "run", r"run/cranfield_split/minilm_demo/alpha=[0-9.]+,lam=grid"),
        (["merge=ties", "alpha.value=1", "lam.value=0"], "run", r"run/scifact/minilm_demo/ties,alpha=1,lam=0"),
        (["merge=random", "lam.value=0.3"], "run", r"run/scifact/minilm_demo/direction=random,alpha=[0-9.]+,lam=0\.3"),
        (["retriever=dense"], "run", r"run/scifact/minilm_demo/alpha=[0-9.]+"),  # no fusion, no λ in the name
        (["selection=nqc"], "selection", r"selection/scifact/minilm_demo/nqc"),
        (["wandb.job_type=general", "lam.value=0.3"], "general", r"general/scifact/minilm_demo/alpha=[0-9.]+,lam=0\.3"),
    ],
)
def test_a_run_is_named_by_its_kind_dataset_model_and_setting_with_a_suffix_of_its_own(overrides, kind, name):
    cfg = compose(overrides)
    first, second = run_settings(cfg), run_settings(cfg)
    assert first.job_type == second.job_type == kind
    assert re.fullmatch(name + SUFFIX, first.name) and re.fullmatch(name + SUFFIX, second.name), first.name
    assert first.name != second.name  # a rerun is a run of its own name


def test_a_single_job_stands_alone_and_its_tags_say_what_it_is():
    settings = run_settings(compose(["merge=random", "lam.value=0.3"]))
    assert settings.group is None  # grouping unlike runs would average them
    assert {
        "model:minilm_demo",
        "dataset:scifact",
        "merge:task_arithmetic",
        "selection:none",
        "direction:random",
    } <= set(settings.tags)
    assert "direction:random" not in run_settings(compose(["lam.value=0.3"])).tags
    assert SUPERVISED_TAG in run_settings(compose(["model=minilm_scifact_supervised", "lam.value=0.3"])).tags


def test_the_users_name_group_and_job_type_are_kept_as_given():
    cfg = compose(["wandb.name=mine", "wandb.group=ours", "wandb.job_type=probe", "lam.value=0.3"])
    settings = run_settings(cfg)
    assert (settings.name, settings.group, settings.job_type) == ("mine", "ours", "probe")


def test_a_table_jobs_tag_finds_the_table():
    settings = run_settings(compose(["table.name=tiny", "selection=nqc"]))
    assert {"table:tiny", "selection:nqc"} <= set(settings.tags)
