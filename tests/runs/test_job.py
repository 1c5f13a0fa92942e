"""Each system's λ in a job (``run_job``'s ``system_lambdas``): tuned as task arithmetic's was, or as given."""

import pytest

from taskvec_ir.config.composed import Task
from taskvec_ir.runs.job import TASKS, system_lambdas

SYSTEMS = "systems=[bm25,ir_model,alpha_one,task_arithmetic]"


class Experiment:
    """What ``system_lambdas`` asks of an experiment: each system's best λ of the grid on a split."""

    def __init__(self):
        self.asked = []

    def own_lambdas(self, split, systems, grid, measure):
        self.asked.append((split, list(systems), list(grid), measure))
        return {s: None if s == "bm25" else {"ir_model": 0.6, "alpha_one": 0.2}[s] for s in systems}


def test_a_given_lambda_is_every_fused_systems(cranfield_cfg):
    experiment = Experiment()
    lams = system_lambdas(cranfield_cfg(SYSTEMS, "lam.value=0.4"), experiment, 0.4)
    assert lams == {"bm25": None, "ir_model": 0.4, "alpha_one": 0.4, "task_arithmetic": 0.4}
    assert experiment.asked == []


def test_a_lambda_chosen_on_the_split_is_chosen_for_each_baseline_on_it(cranfield_cfg):
    experiment = Experiment()
    cfg = cranfield_cfg(SYSTEMS, "lam=dev_grid", "lam.grid=[0.2,0.6]")
    assert system_lambdas(cfg, experiment, 0.2) == {
        "bm25": None, "ir_model": 0.6, "alpha_one": 0.2, "task_arithmetic": 0.2}  # fmt: skip
    assert experiment.asked == [("test", ["bm25", "ir_model", "alpha_one"], [0.2, 0.6], "ndcg@10")]


@pytest.mark.parametrize("grid, tuned", [("lam.grid=[0.2,0.6]", True), ("lam.grid=null", False)])
def test_a_sweeps_final_evaluation_tunes_each_baseline_on_the_tuning_split(cranfield_cfg, grid, tuned):
    experiment = Experiment()
    overrides = ["sweep=paper_grid", "sweep.final=true", "split=test", "lam.value=0.8", grid]
    lams = system_lambdas(cranfield_cfg(SYSTEMS, *overrides, "sweep.tune_split=dev"), experiment, 0.8)
    if tuned:  # the trials chose λ from the grid on dev: so do the baselines
        assert lams == {"bm25": None, "ir_model": 0.6, "alpha_one": 0.2, "task_arithmetic": 0.8}
        assert [asked[0] for asked in experiment.asked] == ["dev"]
    else:  # the sweep searched λ itself: the baselines at its choice
        assert lams == {"bm25": None, "ir_model": 0.8, "alpha_one": 0.8, "task_arithmetic": 0.8}


def test_every_task_a_config_accepts_has_its_runner():
    assert list(TASKS) == list(Task)
