"""Another sweep's dev vs test read from its dir, refused where it ran another model, collection, objective or
split; the table puts each sweep's tuning score beside its test score and their difference."""

import json

import pytest
import yaml

from taskvec_ir.config.composed import parse_config
from taskvec_ir.errors import UserError
from taskvec_ir.reporting.rendering import markdown
from taskvec_ir.runs.sweeping.dev_vs_test import DevVsTest, compared_sweep, dev_vs_test_table


@pytest.fixture(scope="module")
def cranfield_split_cfg(hydra_compose):
    """The genome sweep's config on Cranfield's dev/test split."""
    return parse_config(hydra_compose(["sweep=genome", "dataset=cranfield_split"]))


def write_sweep(folder, dataset="cranfield_split", objective="ndcg@10", final=True):
    """A finished sweep's files, as the sweeper and its final job write them."""
    (folder / "final" / ".hydra").mkdir(parents=True)
    results = {"best_value": 0.41, "n_complete": 11, "best_params": {"alpha.value": 0.3}}
    (folder / "optimization_results.yaml").write_text(yaml.safe_dump(results))
    config = {
        "model": {"name": "minilm_demo"},
        "dataset": {"name": dataset, "test_split": "test"},
        "objective": objective,
        "split": "${dataset.test_split}",  # as Hydra saves it: unresolved
        "sweep": {"name": "paper_grid", "tune_split": "dev"},
    }
    (folder / "final" / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    if final:
        metrics = {"test": {"task_arithmetic": {"ndcg@10": 0.37, "map": 0.2}, "bm25": {"ndcg@10": 0.35}}}
        (folder / "final" / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_a_finished_sweep_of_the_same_cell_is_read_as_its_dev_and_test(cranfield_split_cfg, tmp_path):
    assert compared_sweep(str(write_sweep(tmp_path)), cranfield_split_cfg) == DevVsTest("paper_grid", 11, 0.41, 0.37)


@pytest.mark.parametrize(
    "written, message",
    [
        ({"dataset": "scifact"}, r"ran dataset\.name=scifact \(here cranfield_split\)"),
        ({"objective": "map"}, r"ran objective=map \(here ndcg@10\)"),
        ({"final": False}, r"final/metrics\.json is missing"),
    ],
)
def test_a_sweep_of_another_cell_or_unfinished_is_refused(cranfield_split_cfg, tmp_path, written, message):
    with pytest.raises(UserError, match=message):
        compared_sweep(str(write_sweep(tmp_path, **written)), cranfield_split_cfg)


def test_the_table_shows_test_minus_dev():
    table = dev_vs_test_table(
        [DevVsTest("genome", 40, 0.5, 0.375), DevVsTest("alpha", 20, 0.45, 0.4)], "ndcg@10", "dev", "test"
    )
    assert markdown(table).splitlines() == [
        "| sweep | trials | ndcg@10 dev | ndcg@10 test | test − dev |",
        "|---|---|---:|---:|---:|",
        "| genome | 40 | 0.5000 | 0.3750 | -0.1250 |",
        "| alpha | 20 | 0.4500 | 0.4000 | -0.0500 |",
    ]
