"""A study's sampler: a grid is driven by ask and tell to its size, without Optuna stopping the study."""

import optuna
from omegaconf import OmegaConf

from taskvec_ir.runs.search_space import search_space
from taskvec_ir.runs.sweeping.samplers import AskTellGridSampler, study_sampler

STATES = optuna.trial.TrialState


def test_a_grid_is_told_to_its_end_without_optuna_stopping_the_study():
    """GridSampler stops a study through Study.stop once its grid is covered, which raises under ask and tell."""
    study = optuna.create_study(sampler=AskTellGridSampler({"a": [0.0, 0.5, 1.0]}), direction="maximize")
    for _ in range(3):
        trial = study.ask()
        study.tell(trial, trial.suggest_float("a", 0.0, 1.0))
    assert sorted(t.params["a"] for t in study.trials) == [0.0, 0.5, 1.0]
    assert {t.state for t in study.trials} == {STATES.COMPLETE}


def test_a_grid_sweep_reaches_at_most_its_grid_and_other_samplers_n_trials():
    dimensions, _ = search_space(["alpha.value=choice(0.0,0.5,1.0)", "alpha.layer=range(0,2)"])
    grid = OmegaConf.create({"_target_": "optuna.samplers.GridSampler", "seed": None})
    sampler, target = study_sampler(grid, dimensions, n_trials=20)
    assert isinstance(sampler, AskTellGridSampler) and target == 6
    assert study_sampler(grid, dimensions, n_trials=4)[1] == 4
    tpe = OmegaConf.create({"_target_": "optuna.samplers.TPESampler", "seed": 42})
    sampler, target = study_sampler(tpe, dimensions, n_trials=20)
    assert type(sampler) is optuna.samplers.TPESampler and target == 20
