"""Each system's λ in a job (``run_job``'s ``system_lambdas``): tuned as task arithmetic's was, or as given; a λ
chosen from the grid is chosen on a dev split, never on the test labels evaluated."""

import json

import pytest

from taskvec_ir.errors import UserError
from taskvec_ir.runs.compose import compose
from taskvec_ir.runs.job import run_job, system_lambdas

from wandb_records import run_contents

SYSTEMS = "systems=[bm25,ir_model,alpha_one,task_arithmetic]"


class Pipeline:
    """What ``system_lambdas`` asks of an experiment: each system's best λ of the grid on a split."""

    def __init__(self):
        self.asked = []

    def tune_lambdas(self, split, systems, grid, measure):
        self.asked.append((split, list(systems), list(grid), measure))
        return {s: None if s == "bm25" else {"ir_model": 0.6, "alpha_one": 0.2}[s] for s in systems}


def test_a_given_lambda_is_every_fused_systems(cranfield_cfg):
    pipeline = Pipeline()
    lambdas = system_lambdas(cranfield_cfg(SYSTEMS, "lam.value=0.4"), pipeline, 0.4)
    assert lambdas == {"bm25": None, "ir_model": 0.4, "alpha_one": 0.4, "task_arithmetic": 0.4}
    assert pipeline.asked == []


def test_a_lambda_chosen_on_a_dev_split_is_chosen_for_each_baseline_on_it(cranfield_cfg):
    pipeline = Pipeline()
    cfg = cranfield_cfg(SYSTEMS, "lam=dev_grid", "lam.grid=[0.2,0.6]", "dataset=cranfield_split")
    assert system_lambdas(cfg, pipeline, 0.2) == {
        "bm25": None, "ir_model": 0.6, "alpha_one": 0.2, "task_arithmetic": 0.2}  # fmt: skip
    assert pipeline.asked == [("dev", ["bm25", "ir_model", "alpha_one"], [0.2, 0.6], "ndcg@10")]
    trial = cranfield_cfg(SYSTEMS, "lam=dev_grid", "lam.grid=[0.2,0.6]", "dataset=cranfield_split", "split=dev")
    system_lambdas(trial, pipeline, 0.2)  # a split that is not test (a sweep's trial): λ is tuned on it
    assert pipeline.asked[-1][0] == "dev"


def test_a_lambda_to_tune_on_a_dataset_without_a_dev_split_is_refused_naming_the_fixes(cranfield_cfg):
    """Cranfield has one query set: λ would be tuned on the labels it is evaluated on."""
    with pytest.raises(UserError, match="no dev split") as refused:
        cranfield_cfg("lam=dev_grid")
    for fix in ("give lam.value", "dataset=cranfield_split", "selection=cross_validation"):
        assert fix in str(refused.value)
    cranfield_cfg("lam.value=0.3")  # each fix is accepted
    cranfield_cfg("lam=dev_grid", "selection=cross_validation")
    cranfield_cfg("lam=dev_grid", "retriever=dense", "model.kind=bi_encoder")  # no fusion: no λ to tune


def test_scifacts_dev_split_a_sample_of_train_is_where_its_lambda_is_tuned():
    cfg = compose(["dataset=scifact", "lam=dev_grid"])
    assert cfg.split == "test" and cfg.dataset.splits["dev"].sample_of == "train"
    assert cfg.lam_tuning_split() == "dev"
    assert compose(["dataset=cranfield_split", "lam=dev_grid"]).lam_tuning_split() == "dev"
    assert compose(["dataset=cranfield", "lam.value=0.3"]).lam_tuning_split() is None


@pytest.mark.slow  # Cranfield's dev and test splits scored, then a whole job with W&B read back
def test_a_job_that_tunes_lambda_on_dev_says_so_everywhere(cranfield_cfg, tmp_path, capsys):
    """On cranfield_split's test queries, λ is the best of the grid on its dev queries (a test-tuned λ would be
    another one here), and the header, metrics.json and W&B say where it was tuned."""
    from taskvec_ir.runs.job import open_pipeline

    overrides = ("dataset=cranfield_split", "lam=dev_grid", "lam.grid=[0.6,0.7,0.8,0.9,1.0]", "alpha.value=1.0")
    cfg = cranfield_cfg(*overrides, "wandb.mode=offline")
    pipeline = open_pipeline(cfg)
    on_dev, _ = pipeline.tune_lambda("dev", "task_arithmetic", cfg.lam.grid, cfg.objective)
    on_test, _ = pipeline.tune_lambda("test", "task_arithmetic", cfg.lam.grid, cfg.objective)
    assert on_dev != on_test  # so that the test tells them apart
    result = run_job(cfg, tmp_path / "job")
    label = "λ tuned on dev (lam.grid, by ndcg@10)"
    metrics = json.loads((tmp_path / "job" / "metrics.json").read_text())
    assert result["lam"] == on_dev == metrics["lam"]["task_arithmetic"] and metrics["lam_chosen_by"] == label
    assert f"λ={on_dev:g} (BM25 weight; {label})" in capsys.readouterr().out
    assert run_contents(tmp_path / "job")["config"]["lam"]["chosen_by"] == label


@pytest.mark.parametrize("grid, tuned", [("lam.grid=[0.2,0.6]", True), ("lam.grid=null", False)])
def test_a_sweeps_final_evaluation_tunes_each_baseline_on_the_tuning_split(cranfield_cfg, grid, tuned):
    pipeline = Pipeline()
    overrides = ["sweep=paper_grid", "sweep.final=true", "split=test", "lam.value=0.8", grid]
    lambdas = system_lambdas(cranfield_cfg(SYSTEMS, *overrides, "sweep.tune_split=dev"), pipeline, 0.8)
    if tuned:  # the trials chose λ from the grid on dev: so do the baselines
        assert lambdas == {"bm25": None, "ir_model": 0.6, "alpha_one": 0.2, "task_arithmetic": 0.8}
        assert [asked[0] for asked in pipeline.asked] == ["dev"]
    else:  # the sweep searched λ itself: the baselines at its choice
        assert lambdas == {"bm25": None, "ir_model": 0.8, "alpha_one": 0.8, "task_arithmetic": 0.8}
