"""The ``sweep`` key (``conf/sweep/``): what a job of a sweep knows of its study, set by the sweeper for each job
it launches, so that every W&B run records it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING


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
class SweepConfig:
    name: str = MISSING
    tune_split: str = "dev"  # trials evaluate this split only: test qrels are never read by a trial
    final_evaluation: bool = True  # after the last trial: the best setting once on dataset.test_split
    study: StudyConfig = field(default_factory=StudyConfig)
    final: bool = False  # set by the sweeper: this job is the final evaluation, which adds the sweep's report
    # refuse the final evaluation of a search space set after test results of the same cell under another were seen
    # (false: it runs, marked as tuned after test results; docs/sweeps.md)
    strict_test_guard: bool = False
