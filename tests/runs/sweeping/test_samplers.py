"""A study's sampler: a grid is driven by ask and tell to its size, without Optuna stopping the study; the genome
sweep's CMA-ES finds a planted optimum."""

import optuna
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from taskvec_ir.config.composed import CONFIG_DIR, parse_config, register
from taskvec_ir.runs.search_space import list_elements, search_space
from taskvec_ir.runs.sweeping.overrides import as_overrides
from taskvec_ir.runs.sweeping.samplers import AskTellGridSampler, reseed, study_sampler

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


PLANTED = {"alpha.genome.attention": [0.2, 0.7], "alpha.genome.mlp": [0.85, 0.35], "alpha.otherwise": 0.6}


def test_the_genome_sweeps_cma_es_recovers_a_planted_genome():
    """sweep=genome's sampler and search space, driven as the sweeper drives them (ask, reseed for the trial, suggest,
    tell), on a cheap objective whose optimum is a planted genome: the best trial's genes are the planted ones (to
    0.02; 240 random trials come within 0.13), and its overrides compose to a config holding them."""
    register()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=["sweep=genome"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    dimensions, fixed = search_space([f"{key}={value}" for key, value in sweeper.params.items()])
    dimensions, lists = list_elements(dimensions, parse_config(cfg))
    planted = {f"{key}.{i}": gene for key, genes in PLANTED.items() if key in lists for i, gene in enumerate(genes)}
    planted["alpha.otherwise"] = PLANTED["alpha.otherwise"]
    assert set(dimensions) == set(planted) and lists == ("alpha.genome.attention", "alpha.genome.mlp")
    sampler, target = study_sampler(sweeper.sampler, dimensions, n_trials=240)
    assert type(sampler) is optuna.samplers.CmaEsSampler
    study = optuna.create_study(sampler=sampler, direction=sweeper.direction)
    for _ in range(target):
        trial = study.ask()
        reseed(study, sweeper.sampler, trial.number)
        values = {name: dimension.suggest(trial, name) for name, dimension in dimensions.items()}
        study.tell(trial, -sum((values[name] - gene) ** 2 for name, gene in planted.items()))
    best = study.best_trial.params
    assert max(abs(best[name] - gene) for name, gene in planted.items()) < 0.02, best
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        chosen = parse_config(compose("config", overrides=["sweep=genome", *as_overrides(best, lists)]))
    assert chosen.alpha.genome.attention == [best["alpha.genome.attention.0"], best["alpha.genome.attention.1"]]
    assert chosen.alpha.genome.mlp == [best["alpha.genome.mlp.0"], best["alpha.genome.mlp.1"]]
    assert chosen.alpha.otherwise == best["alpha.otherwise"] and chosen.alpha.value == 1.0
