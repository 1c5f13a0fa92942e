"""The schemas of ``hydra/sweeper=taskvec_optuna`` and of its samplers
(``hydra/sweeper/sampler=tpe|random|grid|nsga2|cmaes``), stored in Hydra's ConfigStore when Hydra imports its
plugins. The values every sweep starts from are in ``conf/sweep_base/optuna.yaml`` (the sweeper's settings have no
default here: one home for each)."""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class TPESamplerConfig:
    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = None  # each trial's sampler gets seed + trial number (taskvec_ir.runs.sweeping.samplers)
    n_startup_trials: int = 10  # random trials before TPE models the objective
    multivariate: bool = False


@dataclass
class RandomSamplerConfig:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = None


@dataclass
class NSGAIISamplerConfig:
    """NSGA-II (Optuna's default multi-objective sampler, sweep=pareto): a population of trials per generation,
    the next bred from the Pareto-best of the last."""

    _target_: str = "optuna.samplers.NSGAIISampler"
    seed: int | None = None  # each trial's sampler gets seed + trial number (taskvec_ir.runs.sweeping.samplers)
    # trials per generation (the first is drawn at random): 2 generations in a sweep's default 20 trials (Optuna's
    # 50 would leave all 20 at random)
    population_size: int = 10


@dataclass
class GridSamplerConfig:
    """Every point of the grid the swept choices and ranges make (the sweeper gives the search space)."""

    _target_: str = "optuna.samplers.GridSampler"
    seed: int | None = None  # the order the grid's points are visited in


@dataclass
class CmaEsSamplerConfig:
    """CMA-ES (Optuna's, on the ``cmaes`` package), as mergekit-evolve searches its genomes: a population of settings
    per generation, drawn around a mean (first: the centre of the ranges, step a sixth of the narrowest) that moves
    toward the better ones. Floats and ints only (other keys are drawn at random); the first trial is drawn at
    random."""

    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: int | None = None  # each trial's sampler gets seed + trial number (taskvec_ir.runs.sweeping.samplers)
    popsize: int | None = None  # settings per generation (None: 4 + ⌊3 ln(number of keys)⌋)
    n_startup_trials: int = 1  # trials complete before CMA-ES draws (the ones before are random)


@dataclass
class SweeperConfig:
    """Optuna through our sweeper (``taskvec_ir.runs.sweeping``); each setting is explained, and set, in
    ``conf/sweep_base/optuna.yaml``."""

    _target_: str = "hydra_plugins.taskvec_ir_sweeper.ResumableOptunaSweeper"
    _recursive_: bool = False  # the sampler stays a config: the sweeper instantiates it, seeded, per trial
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])
    sampler: Any = MISSING  # hydra/sweeper/sampler: tpe, random, grid, nsga2 or cmaes
    direction: Any = MISSING  # maximize or minimize; a multi-objective study (sweep=pareto): a list of two
    storage: str | None = MISSING
    study_name: str | None = MISSING
    n_trials: int = MISSING
    n_jobs: int = MISSING
    worker_jobs: int = MISSING
    max_failure_rate: float = MISSING
    heartbeat_interval: int = MISSING
    grace_period: int = MISSING
    params: dict[str, str] = field(default_factory=dict)  # key -> interval(...), range(...), choice(...)


ConfigStore.instance().store(group="hydra/sweeper", name="taskvec_optuna", node=SweeperConfig, provider="taskvec_ir")
ConfigStore.instance().store(group="hydra/sweeper/sampler", name="tpe", node=TPESamplerConfig, provider="taskvec_ir")
ConfigStore.instance().store(
    group="hydra/sweeper/sampler", name="random", node=RandomSamplerConfig, provider="taskvec_ir"
)
ConfigStore.instance().store(
    group="hydra/sweeper/sampler", name="nsga2", node=NSGAIISamplerConfig, provider="taskvec_ir"
)
ConfigStore.instance().store(group="hydra/sweeper/sampler", name="grid", node=GridSamplerConfig, provider="taskvec_ir")
ConfigStore.instance().store(
    group="hydra/sweeper/sampler", name="cmaes", node=CmaEsSamplerConfig, provider="taskvec_ir"
)
