"""A study's Optuna sampler, from ``hydra/sweeper/sampler``: seeded per trial number, and a grid driven by ask and
tell to its size."""

from __future__ import annotations

import math

import optuna
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from taskvec_ir.runs.search_space import Dimension


class AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler for a study driven by ask and tell, as this sweeper drives it: GridSampler stops the
    study once its grid is covered, with ``Study.stop``, which raises outside ``Study.optimize`` (after the
    trial's result is stored). The sweeper stops at the grid's size itself (``study_sampler``'s target)."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


def is_grid(sampler: DictConfig) -> bool:
    return issubclass(get_class(sampler["_target_"]), optuna.samplers.GridSampler)


def study_sampler(
    sampler: DictConfig, dimensions: dict[str, Dimension], n_trials: int
) -> tuple[optuna.samplers.BaseSampler, int]:
    """The study's sampler and the number of trials to reach (a grid has no more points than its size)."""
    if not is_grid(sampler):
        return instantiate(sampler), n_trials
    grid = {name: dimension.grid() for name, dimension in dimensions.items()}
    target = f"{AskTellGridSampler.__module__}.{AskTellGridSampler.__qualname__}"
    return instantiate(sampler, search_space=grid, _target_=target), min(n_trials, math.prod(map(len, grid.values())))


def reseed(study: optuna.Study, sampler: DictConfig, number: int) -> None:
    """Give ``study`` the sampler seeded for trial ``number`` (the sweep's seed + the number): a resumed sweep or a
    parallel worker continues the sequence instead of replaying the first trials' parameters."""
    seed = sampler.get("seed")
    if seed is not None and not is_grid(sampler):
        study.sampler = instantiate(sampler, seed=seed + number)
