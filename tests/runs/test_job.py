"""Each system's λ in a job (``run_job``'s ``system_lambdas``): tuned as task arithmetic's was, or as given."""

import pytest

from taskvec_ir.runs.job import system_lambdas

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


def test_a_lambda_chosen_on_the_split_is_chosen_for_each_baseline_on_it(cranfield_cfg):
    pipeline = Pipeline()
    cfg = cranfield_cfg(SYSTEMS, "lam=dev_grid", "lam.grid=[0.2,0.6]")
    assert system_lambdas(cfg, pipeline, 0.2) == {
        "bm25": None, "ir_model": 0.6, "alpha_one": 0.2, "task_arithmetic": 0.2}  # fmt: skip
    assert pipeline.asked == [("test", ["bm25", "ir_model", "alpha_one"], [0.2, 0.6], "ndcg@10")]


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
