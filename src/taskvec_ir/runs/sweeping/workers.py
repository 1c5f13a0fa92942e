"""Worker jobs (``hydra.sweeper.worker_jobs``): each runs trials of the study one after another in its one process,
its models loaded once, as a sweeper of its own whose trials run in-process (docs/sweeps.md)."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from taskvec_ir.runs.search_space import Dimension
from taskvec_ir.runs.sweeping.launchers import InProcessLauncher
from taskvec_ir.runs.sweeping.recovery import Heartbeats, settle_abandoned_trials
from taskvec_ir.runs.sweeping.samplers import study_sampler
from taskvec_ir.runs.sweeping.study_storage import open_study, retry
from taskvec_ir.runs.sweeping.trials import WORKER

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepPlan:
    """What the trials of a sweep need, as its sweeper worked it out: the study, the search space, the target."""

    study_name: str
    storage: str | None
    sweep_dir: Path
    dimensions: dict[str, Dimension]
    fixed: dict[str, str]
    target: int
    described: str  # the sweep.study=... override of every trial
    lists: tuple[str, ...] = ()  # swept keys searched element by element (search_space.list_elements)


class TrialWorker:
    """The task of a worker job: trials of the study until it has its target complete, through the sweeper's own
    loop (``OptunaSweep.run_trials``), each trial through Hydra's basic launcher in this process, so that what the
    first trial loads stays loaded for the next (``models.model_pool``, ``pipeline.pipeline``) and its
    ``trial_<n>`` dir is what it would be as a job of its own."""

    def __init__(self, sweep, plan: SweepPlan):
        # The sweeper (an OptunaSweep) without its launcher and storage connections: this object travels to the job.
        self.sweep = copy.copy(sweep)
        self.sweep.launcher = self.sweep.heartbeats = None
        self.sweep.n_jobs = 1  # one trial at a time: they share this process's models
        self.plan = plan

    def __call__(self, worker_cfg: DictConfig) -> dict:
        sweep, plan = self.sweep, self.plan
        sweep.launcher = InProcessLauncher(sweep.hydra_context, sweep.task_function, sweep.config)
        sweep.heartbeats = Heartbeats(plan.storage, sweep.heartbeat_interval, sweep.grace_period)
        sampler, _ = study_sampler(sweep.sampler_config, plan.dimensions, sweep.n_trials)
        study = retry(open_study, plan.study_name, sweep.heartbeats.storage, sampler, sweep.direction)
        retry(settle_abandoned_trials, study)
        log.info("Worker %s: trials of study %s until %d are complete", WORKER, plan.study_name, plan.target)
        ran = sweep.run_trials(study, plan)
        log.info("Worker %s: ran %d trials; the study has its %d", WORKER, ran, plan.target)
        return {"worker": WORKER, "trials": ran}
