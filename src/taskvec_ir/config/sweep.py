"""The ``sweep`` key (``conf/sweep/``): what a job of a sweep knows of its study, set by the sweeper for each job
it launches, so that every W&B run records it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.errors import UserError


@dataclass
class StudyConfig:
    """Which Optuna study a sweep's jobs belong to and how it searches; ``group`` is the study's W&B group."""

    name: str | None = None
    storage: str | None = None  # without its password
    group: str | None = None
    n_trials: int | None = None
    # Untyped: Hydra merges the sweeper's `sweep.study={...}` into them as given.
    sampler: Any = None  # the sampler's config
    search_space: Any = None  # swept key -> what it may take


@dataclass
class RetentionConfig:
    """``sweep=pareto``'s second objective (docs/sweeps.md, "Pareto sweeps"): each trial's Θ' and ΘT also evaluated
    on a general collection, fused at the trial's λ; its value is TA's objective measure minus ΘT's there."""

    dataset: DatasetConfig = MISSING  # chosen as dataset@sweep.retention.dataset=<name> (conf/dataset/)
    split: str | None = None  # the general collection's split evaluated (None: its test_split)
    # The setting evaluated on test: the best target dev score among trials that lose at most this much
    # (absolute, of the objective measure) against ΘT on the general collection.
    bound: float = 0.01

    def __post_init__(self):
        self.split = self.split or self.dataset.test_split
        if not self.bound >= 0:
            raise UserError(f"sweep.retention.bound: {self.bound} must be 0 or more (a loss against ΘT it allows)")
        if not self.dataset.splits_in_folder:  # else checked once the folder's splits are read (runs.compose)
            self.check_split()

    def check_split(self) -> None:
        try:
            self.dataset.split(self.split)
        except UserError as error:
            raise UserError(f"sweep.retention.split: {error}") from None


@dataclass
class SweepConfig:
    name: str = MISSING
    tune_split: str = "dev"  # trials evaluate this split only: test qrels are never read by a trial
    final_evaluation: bool = True  # after the last trial: the best setting once on dataset.test_split
    # The dir of another sweep of this model, collection and splits (e.g. sweep=alpha's): the final report shows its
    # choice's dev vs test beside this one's.
    compare_with: str | None = None
    study: StudyConfig = field(default_factory=StudyConfig)
    retention: RetentionConfig | None = None  # sweep=pareto: general-domain retention, a second objective
    final: bool = False  # set by the sweeper: this job is the final evaluation, which adds the sweep's report
    # refuse the final evaluation of a search space set after test results of the same cell under another were seen
    # (false: it runs, marked as tuned after test results; docs/sweeps.md)
    strict_test_guard: bool = False
