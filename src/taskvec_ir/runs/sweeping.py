"""Optuna sweeps of α and λ on a tuning split, then one evaluation of the best setting on test.

``OptunaSweep`` is our Hydra sweeper, written on Hydra's public ``Sweeper`` interface and Optuna's public
API (its config schema: ``schema.SweeperConfig``). What it adds to a plain loop of trials, for long sweeps
on one machine or several:
- ``n_trials`` is the study's target: trials already completed in the storage count toward it, so running
  the same command against the same storage resumes and runs only the missing trials; several sweeper
  processes sharing one storage (a PostgreSQL database for several nodes) finish the target together;
- each trial's job dir is ``trial_<number>`` (Optuna's trial number), so a resumed or parallel sweep never
  overwrites an earlier trial's outputs;
- a failed trial (an exception, a non-finite objective, a killed worker, a SLURM job cancelled or past its
  time limit) is recorded as failed and replaced; the sweep stops only when more than ``max_failure_rate``
  of ``n_trials`` have failed;
- a sweeper that dies on any node does not hold the others up: each sweeper records Optuna heartbeats for the
  trials it runs, and any live sweeper of the study fails a trial whose heartbeats stopped for ``grace_period``
  and runs it again (``Heartbeats``);
- the storage may go away for a while (a database restart): every call to it is retried;
- before any trial: the config, the checkpoints and the tuning split are checked once (test qrels are never
  read by a trial); after the last: the best setting is evaluated once on the test split beside the
  baselines (``final/`` in the sweep dir), as one more job through the same launcher as the trials, by
  exactly one of the study's sweepers (claimed through the storage).
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import logging
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import optuna
import sqlalchemy.exc
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus, configure_log
from hydra.plugins.sweeper import Sweeper
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from taskvec_ir.config.composed import Config
from taskvec_ir.config.model import SUPERVISED_LABEL
from taskvec_ir.config.systems import DOMAIN_MODEL, IR_MODEL, PAPER_ORDER, TASK_ARITHMETIC
from taskvec_ir.errors import UserError
from taskvec_ir.runs.compose import typed_config
from taskvec_ir.runs.job import JobOutcome, open_experiment, report_bootstrap
from taskvec_ir.runs.search_space import Dimension, search_space
from taskvec_ir.storage.outputs import atomic_path, redact_url, refuse_password

log = logging.getLogger(__name__)
_STATES = optuna.trial.TrialState
_WORKER = f"{socket.gethostname()}:{os.getpid()}"  # who runs a trial: see _settle_abandoned_trials
GRID_SAMPLER = "optuna.samplers.GridSampler"
# A database that stops answering (a restart, a lost connection): Optuna and SQLAlchemy raise these.
_STORAGE_DOWN = (optuna.exceptions.StorageInternalError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
STORAGE_PATIENCE_S = 300  # how long the storage may stay away before the sweep stops (rerun to resume)
WAIT_S = 5  # between looks at trials that other sweepers of the study are running
T = TypeVar("T")
# Heartbeats are experimental in Optuna 5 and meant for study.optimize; we record them around ask/tell ourselves.
warnings.filterwarnings(
    "ignore",
    r"Argument ``heartbeat_interval``|.*fail_stale_trials is|RetryHeartbeatStaleTrialCallback is",
    optuna.exceptions.ExperimentalWarning,
)
warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")


class LauncherConfigError(UserError):
    """The launcher could not submit a job (sbatch refused it): a setting of hydra.launcher to fix."""


class AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler for a study driven by ask and tell, as this sweeper drives it: GridSampler stops the
    study once its grid is covered, with ``Study.stop``, which raises outside ``Study.optimize`` (after the
    trial's result is stored). The sweeper stops at the grid's size itself (``_sampler``'s target)."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


class OptunaSweep(Sweeper):
    """The sweep itself; ``hydra_plugins.taskvec_ir_sweeper`` hands Hydra's calls to it."""

    def __init__(
        self,
        sampler: DictConfig,
        direction: str,
        storage: str | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        worker_jobs: int,
        max_failure_rate: float,
        heartbeat_interval: int,
        grace_period: int,
        params: DictConfig | None,
    ):
        self.sampler_config = sampler
        self.direction, self.storage, self.study_name = direction, storage, study_name
        self.n_trials, self.n_jobs, self.max_failure_rate = n_trials, n_jobs, max_failure_rate
        self.worker_jobs = worker_jobs
        self.heartbeat_interval, self.grace_period = heartbeat_interval, grace_period
        self.params = dict(params or {})

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.hydra_context, self.config, self.task_function = hydra_context, config, task_function
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        try:  # a wrong id, value or checkpoint fails here once, not in every trial
            self._check_settings()
            job_cfg = _job_config(self.config)
            _check_tuning_split(job_cfg)
            open_experiment(job_cfg)
            dimensions, fixed = search_space([f"{key}={value}" for key, value in self.params.items()] + list(arguments))
            _check_bootstrap(job_cfg, dimensions)
            if job_cfg.retriever.dense and "lam.value" in dimensions:
                raise UserError(
                    "retriever=dense fuses nothing, so searching lam.value would waste trials: use sweep=alpha "
                    "(or drop lam.value from the searched keys)"
                )
            sampler, target = self._sampler(dimensions)
        except UserError as error:
            _exit(error)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        storage = _absolute_storage(self.storage)
        self.heartbeats = Heartbeats(storage, self.heartbeat_interval, self.grace_period)
        study = _retry(_open_study, self.study_name, self.heartbeats.storage, sampler, self.direction)
        _retry(_settle_abandoned_trials, study)
        described = self._study_override(study, storage, dimensions)
        log.info(
            "Study %s in %s: %d of %d trials complete; searching %s",
            study.study_name,
            redact_url(storage),
            _retry(_count, study, _STATES.COMPLETE),
            target,
            {name: dimension.describe() for name, dimension in dimensions.items()},
        )
        try:
            if self.worker_jobs:
                plan = SweepPlan(study.study_name, storage, sweep_dir, dimensions, fixed, target, described)
                job_idx = self._run_workers(study, plan)
            else:
                job_idx = self._run_trials(study, sweep_dir, dimensions, fixed, target, described)
            best = _retry(_write_results, study, sweep_dir, storage)
            if job_cfg.sweep.final_evaluation:
                overrides = [
                    *_as_overrides(best["best_params"]),
                    *_as_overrides(fixed),
                    *final_overrides(job_cfg, best),
                    described,
                ]
                self._final_evaluation(study, storage, sweep_dir, overrides, job_idx)
        except LauncherConfigError as error:
            _exit(error)

    def _run_trials(
        self,
        study: optuna.Study,
        sweep_dir: Path,
        dimensions: dict[str, Dimension],
        fixed: dict[str, str],
        target: int,
        described: str,
    ) -> int:
        """Trials until the study has ``target`` of them complete; returns the next job index. When the missing
        ones are running in other sweepers of the study, this one waits for them (a failed one is replaced
        by whoever is free), so that the best trial is the study's once every trial is in."""
        failed, job_idx, waiting = 0, 0, False
        while True:
            taken = _retry(_taken, study)
            complete = sum(t.state == _STATES.COMPLETE for t in taken)
            if complete >= target:
                break
            missing = target - len(taken)
            if missing <= 0:
                waiting = self._wait(study, waiting, f"{target - complete} trials running in other sweepers")
                continue
            waiting = False
            asked = [_retry(_ask, study, sweep_dir, self.heartbeats) for _ in range(min(self.n_jobs, missing))]
            trials = _retry(_within_target, study, asked, target)
            if not trials:  # other sweepers took the missing trials first
                continue
            overrides = [(*self._trial_overrides(study, trial, dimensions, fixed), described) for trial in trials]
            try:
                with self.heartbeats.running(study, trials):
                    returns = self._launch(overrides, job_idx)
                for trial, result in zip(trials, returns, strict=True):
                    failed += not _retry(_record, study, trial, result)
            except LauncherConfigError:
                _retry(_fail, study, trials)
                raise
            except _job_lost_errors() as error:  # a job of the batch died (killed, cancelled, past its time limit)
                # The launcher raises at the first job that failed, so the batch's other trials are settled
                # from their job dirs: a finished job counts, any other is failed (and its SLURM job cancelled).
                log.warning("Trials %s: a job failed in the launcher: %s", [t.number for t in trials], error)
                failed += sum(not _retry(_settle, study, trial, "the launcher lost its job") for trial in trials)
            except BaseException:  # interrupted (Ctrl-C): these trials will not finish
                _retry(_fail, study, trials)
                raise
            job_idx += len(trials)
            if failed > self.max_failure_rate * target:
                raise RuntimeError(
                    f"{failed} trials failed, more than hydra.sweeper.max_failure_rate="
                    f"{self.max_failure_rate} of {target}: see the failed trials' logs in {sweep_dir}"
                )
        return job_idx

    def _run_workers(self, study: optuna.Study, plan: SweepPlan) -> int:
        """Worker jobs (``TrialWorker``), up to ``worker_jobs`` at once through the launcher, until the study has its
        target of trials complete; returns the next job index. A worker job lost (killed, cancelled, past its time
        limit) is replaced by the next round, and its trial is failed by the live workers' heartbeats (or here, when
        none is left) and run again. Each lost worker counts as a failed trial toward ``max_failure_rate``."""
        launcher = Plugins.instance().instantiate_launcher(
            hydra_context=self.hydra_context, task_function=TrialWorker(self, plan), config=self.config
        )
        lost, job_idx, waiting = 0, 0, False
        while True:
            taken = _retry(_taken, study)
            if sum(t.state == _STATES.COMPLETE for t in taken) >= plan.target:
                return job_idx
            missing = plan.target - len(taken)
            if missing <= 0:  # the trials left run in workers of this study's other sweepers, or in a lost one
                waiting = self._wait(study, waiting, f"{plan.target - len(taken)} trials running in workers")
                continue
            waiting = False
            count = min(missing, self.worker_jobs)
            # The sweep's config (the command line's overrides, as every trial has them), in a dir of the worker's own,
            # whoever launched it and whenever (job numbers restart on resume).
            workers = [
                (*_as_overrides(plan.fixed), f"hydra.sweep.subdir=workers/{_WORKER.replace(':', '-')}-{job_idx + i}")
                for i in range(count)
            ]
            try:
                returns = self._launch(workers, job_idx, launcher)
                for result in returns:
                    result.return_value  # noqa: B018 - raises a worker's error (a bug, too many failed trials)
            except _job_lost_errors() as error:
                lost += 1
                log.warning("A worker job was lost: %s; its trial will be failed and run again", error)
                if lost > self.max_failure_rate * plan.target:
                    raise RuntimeError(
                        f"{lost} worker jobs were lost, more than hydra.sweeper.max_failure_rate="
                        f"{self.max_failure_rate} of {plan.target}: see their logs in {plan.sweep_dir / 'workers'}"
                    ) from None
            job_idx += count

    def _wait(self, study: optuna.Study, waiting: bool, what: str) -> bool:
        """One pause while the study's missing trials run elsewhere, settling those whose sweeper or worker is
        gone (this host's dead processes, other hosts' missed heartbeats); says what it waits for once."""
        if not waiting:
            log.info("Waiting for %s of the study", what)
        time.sleep(WAIT_S)
        _retry(_settle_abandoned_trials, study)
        _retry(self.heartbeats.beat, study, [])
        return True

    def _launch(self, overrides: list, job_idx: int, launcher=None) -> list:
        """The launcher's results for ``overrides`` (by default the sweep's launcher, which runs the trials'
        task); a job that the scheduler refused to take is a config error."""
        try:
            return (launcher or self.launcher).launch(overrides, initial_job_idx=job_idx)
        except Exception as error:
            message = str(error)
            if "sbatch: error" not in message:
                raise
            detail = next(line for line in message.splitlines() if "sbatch: error" in line).strip()
            hint = (
                "this partition has no GPUs to give: set hydra.launcher.gpus_per_node=0 (or null)"
                if "generic resource" in detail
                else "fix hydra.launcher (partition, timeout_min, cpus, memory)"
            )
            raise LauncherConfigError(f"SLURM refused the job ({detail}): {hint}") from None

    def _final_evaluation(
        self, study: optuna.Study, storage: str | None, sweep_dir: Path, overrides: list[str], job_idx: int
    ) -> None:
        """The best setting evaluated once on test, as one more job through the launcher (on SLURM: a job with
        the trials' resources), by whichever of the study's sweepers claims it first."""
        claim = _retry(_claim_final, study, self.heartbeats, sweep_dir, _retry(lambda: best_trial(study).number))
        if claim is None:
            return
        claims, trial = claim
        with self.heartbeats.running(claims, [trial]):
            (result,) = self._launch([(*overrides, "sweep.final=true", "hydra.sweep.subdir=final")], job_idx)
        if not _retry(_record, claims, trial, result):
            raise RuntimeError(
                f"the final evaluation failed: see {sweep_dir / 'final' / 'app.log'}; rerun the same "
                "command to run it again"
            )

    def _study_override(self, study: optuna.Study, storage: str | None, dimensions: dict[str, Dimension]) -> str:
        """``sweep.study=...`` for every job of the sweep: the study's name, storage (without its password), W&B
        group (one per study: its name and storage), sampler, target and search space."""
        where = redact_url(storage)
        described = {
            "name": study.study_name,
            "storage": where,
            "n_trials": self.n_trials,
            "group": f"sweep/{study.study_name}@{hashlib.sha1(str(where).encode()).hexdigest()[:8]}",
            "sampler": OmegaConf.to_container(self.sampler_config, resolve=True),
            "search_space": {name: dimension.describe() for name, dimension in dimensions.items()},
        }
        return f"sweep.study={_hydra_value(described)}"

    def _check_settings(self) -> None:
        refuse_password(self.storage, "hydra.sweeper.storage")
        if self.direction not in ("maximize", "minimize"):
            raise UserError(f"hydra.sweeper.direction: '{self.direction}' is not maximize or minimize")
        for key in ("n_trials", "n_jobs"):
            if getattr(self, key) <= 0:
                raise UserError(f"hydra.sweeper.{key}: {getattr(self, key)} must be positive")
        if self.worker_jobs < 0:
            raise UserError(f"hydra.sweeper.worker_jobs: {self.worker_jobs} must be 0 (a job per trial) or positive")
        if self.worker_jobs and self.storage is None:
            raise UserError(
                "hydra.sweeper.worker_jobs: worker jobs share the study through a storage: set hydra.sweeper.storage"
            )
        if not 0 <= self.max_failure_rate <= 1:
            raise UserError(f"hydra.sweeper.max_failure_rate: {self.max_failure_rate} must be in [0, 1]")
        if not 0 < self.heartbeat_interval < self.grace_period:
            raise UserError(
                f"hydra.sweeper.heartbeat_interval={self.heartbeat_interval} and grace_period={self.grace_period}: "
                "the interval must be positive and shorter than the grace period"
            )

    def _sampler(self, dimensions: dict[str, Dimension]) -> tuple[optuna.samplers.BaseSampler, int]:
        """The study's sampler and the number of trials to reach (a grid has no more points than its size)."""
        if self.sampler_config.get("_target_") != GRID_SAMPLER:
            return instantiate(self.sampler_config), self.n_trials
        grid = {name: dimension.grid() for name, dimension in dimensions.items()}
        target = f"{__name__}.{AskTellGridSampler.__qualname__}"
        return instantiate(self.sampler_config, search_space=grid, _target_=target), min(
            self.n_trials, math.prod(map(len, grid.values()))
        )

    def _trial_overrides(
        self, study: optuna.Study, trial: optuna.Trial, dimensions: dict[str, Dimension], fixed: dict[str, str]
    ) -> tuple[str, ...]:
        seed = self.sampler_config.get("seed")
        if seed is not None and self.sampler_config.get("_target_") != GRID_SAMPLER:
            # One seed per trial number: a resumed sweep or a parallel worker continues the sequence
            # instead of replaying the first trials' parameters.
            study.sampler = instantiate(self.sampler_config, seed=seed + trial.number)
        values = {name: _retry(dimension.suggest, trial, name) for name, dimension in dimensions.items()}
        return (*_as_overrides(values), *_as_overrides(fixed), f"trial={trial.number}")


@dataclass(frozen=True)
class SweepPlan:
    """What a worker job needs of its sweep, as the sweeper worked it out: the study, the search space, the target."""

    study_name: str
    storage: str
    sweep_dir: Path
    dimensions: dict[str, Dimension]
    fixed: dict[str, str]
    target: int
    described: str  # the sweep.study=... override of every trial


class TrialWorker:
    """The task of a worker job (``hydra.sweeper.worker_jobs``): trials of the study, one after another in this one
    process, until the study has its target complete. What the first trial loads stays loaded for the next: the
    scorers and the merge (``models.model_pool``), the experiment's candidates and texts (``pipeline.experiment``).

    The worker is a sweeper of the study whose trials run in its own process (``OptunaSweep._run_trials``): it
    claims each trial under its own name (host and process id) with heartbeats, settles stale trials of others,
    and waits for the trials of other workers, replacing those whose worker is lost. Each trial runs through
    Hydra's basic launcher, ``run_job``, from the sweep's own config: its ``trial_<n>`` dir (``.hydra/``,
    ``app.log``, ``metrics.json``, W&B run) is what it would be as a job of its own."""

    def __init__(self, sweep: OptunaSweep, plan: SweepPlan):
        # The sweeper's settings, without its launcher and storage connections (this object travels to the job).
        self.sweep = copy.copy(sweep)
        self.sweep.launcher = self.sweep.heartbeats = None
        self.sweep.n_jobs = 1  # one trial at a time: they share this process's models
        self.plan = plan

    def __call__(self, worker_cfg: DictConfig) -> dict:
        sweep, plan = self.sweep, self.plan
        sweep.launcher = _InProcessLauncher(sweep.hydra_context, sweep.task_function, sweep.config)
        sweep.heartbeats = Heartbeats(plan.storage, sweep.heartbeat_interval, sweep.grace_period)
        sampler, _ = sweep._sampler(plan.dimensions)
        study = _retry(_open_study, plan.study_name, sweep.heartbeats.storage, sampler, sweep.direction)
        _retry(_settle_abandoned_trials, study)
        log.info("Worker %s: trials of study %s until %d are complete", _WORKER, plan.study_name, plan.target)
        ran = sweep._run_trials(study, plan.sweep_dir, plan.dimensions, plan.fixed, plan.target, plan.described)
        log.info("Worker %s: ran %d trials; the study has its %d", _WORKER, ran, plan.target)
        return {"worker": _WORKER, "trials": ran}


class _InProcessLauncher:
    """A worker's launcher: its trials in its own process through Hydra's basic launcher (``hydra/launcher=basic``),
    composed from the sweep's config as every launcher's jobs. The worker's own log is back after each batch
    (``run_job`` leaves logging set to the last trial's ``app.log``)."""

    def __init__(self, hydra_context, task_function, sweep_config: DictConfig):
        config = copy.deepcopy(sweep_config)
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.launcher = ConfigStore.instance().load("hydra/launcher/basic.yaml").node
        self.basic = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def launch(self, job_overrides: list, initial_job_idx: int) -> list:
        try:
            return self.basic.launch(job_overrides, initial_job_idx=initial_job_idx)
        finally:
            worker = HydraConfig.get()  # the worker job's (run_job restores it after each trial)
            configure_log(worker.job_logging, worker.verbose)


def _exit(error: Exception):
    """A user error before any trial ran: one line, no traceback (HYDRA_FULL_ERROR=1 shows it)."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise error
    log.error("%s", error)
    sys.exit(f"taskvec-ir: {error}")


def _retry(call: Callable[..., T], *args, **kwargs) -> T:
    """``call(*args, **kwargs)``, retried while the study's storage does not answer, for up to
    STORAGE_PATIENCE_S seconds.

    Each call to the storage is safe to repeat: a tell of a trial already told is skipped, a suggestion
    already made is returned again, and a trial asked twice leaves an unclaimed one that does not count."""
    delay, deadline = 1.0, time.monotonic() + STORAGE_PATIENCE_S
    while True:
        try:
            return call(*args, **kwargs)
        except _STORAGE_DOWN as error:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the study's storage has not answered for {STORAGE_PATIENCE_S} s "
                    f"({str(error).splitlines()[0]}): rerun the same command to resume"
                ) from None
            log.warning(
                "The study's storage did not answer (%s): retrying in %.0f s", str(error).splitlines()[0], delay
            )
            time.sleep(delay)
            delay = min(2 * delay, 30.0)


def _job_config(config) -> Config:
    """The job's part of a Hydra config, typed (the hydra node holds per-job values not yet set)."""
    HydraConfig.instance().set_config(config)  # for ${hydra:...} interpolations in the job's keys
    return typed_config(config)


def _check_tuning_split(config: Config) -> None:
    """A split the trials tune on is held out from the final evaluation, or the user is told (``Config.check_split``
    has checked that it exists)."""
    if config.split == config.dataset.test_split:
        log.warning("Tuning on %r, the split the final evaluation reports: its figures are not held-out", config.split)


def _check_bootstrap(config: Config, dimensions: Mapping) -> None:
    """The final evaluation's bootstrap reruns the sweep's choice over the α its trials ran, each with λ chosen
    from ``lam.grid``: a sweep of ``alpha.value`` alone."""
    if not (config.selection.bootstrap.resamples and config.sweep.final_evaluation):
        return
    if set(dimensions) != {"alpha.value"} or config.lam.value is not None or not config.lam.grid:
        raise UserError(
            "selection.bootstrap.resamples: a sweep's bootstrap reruns its choice over the α values its trials "
            "ran, λ chosen from lam.grid: sweep alpha.value alone with lam.value=null (sweep=paper_grid or "
            f"sweep=alpha; this sweep searches {', '.join(dimensions)}), or set selection.bootstrap.resamples=0"
        )


def _absolute_storage(storage: str | None) -> str | None:
    """sqlite URLs relative to the working directory made absolute (workers may run elsewhere)."""
    prefix = "sqlite:///"
    if storage and storage.startswith(prefix) and not storage[len(prefix) :].startswith("/"):
        path = Path(storage[len(prefix) :]).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return prefix + str(path)
    return storage


def _open_study(name, storage: optuna.storages.BaseStorage | None, sampler, direction) -> optuna.Study:
    """The study, created if new (see ``_racing``)."""
    return _racing(
        optuna.create_study, study_name=name, storage=storage, sampler=sampler, direction=direction, load_if_exists=True
    )


def _racing(create: Callable[..., T], **kwargs) -> T:
    """``create(**kwargs)`` (a study, or the storage's schema) when workers starting together race to create it: the
    storage lets one win (a unique study name; sqlite may also refuse a concurrent schema creation), and the losers
    load it."""
    for attempt in range(10):
        try:
            return create(**kwargs)
        except (optuna.exceptions.DuplicatedStudyError, sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            if attempt == 9:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _count(study: optuna.Study, *states) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def _ask(study: optuna.Study, sweep_dir: Path, heartbeats: Heartbeats) -> optuna.Trial:
    """A new trial (or one to run again, see ``Heartbeats``), marked at once with its first heartbeat, the sweeper
    that runs it and its job dir (``trial_<number>``, as sweep_base sets ``hydra.sweep.subdir``); see
    ``_settle_abandoned_trials``."""
    trial = study.ask()
    heartbeats.beat(study, [trial], settle=False)  # Optuna never finds a trial stale before its first heartbeat
    trial.set_user_attr("worker", _WORKER)
    trial.set_user_attr("job_dir", str((sweep_dir / f"trial_{trial.number}").resolve()))
    return trial


def _taken(study: optuna.Study) -> list:
    """Trials that count toward n_trials: completed ones, and running ones that a sweeper has claimed.

    A running trial without a worker was asked by a sweeper killed before it could claim it: it will never
    run, so it does not count."""
    trials = study.get_trials(deepcopy=False, states=(_STATES.COMPLETE, _STATES.RUNNING))
    return sorted(
        (t for t in trials if t.state == _STATES.COMPLETE or "worker" in t.user_attrs), key=lambda t: t.number
    )


def _settle_abandoned_trials(study: optuna.Study) -> None:
    """Settle the trials left running by a sweeper that no longer exists.

    A sweeper killed outright (SIGKILL, a lost node) cannot tell the study; its trials would stay
    "running" forever. Settled here (see ``_settle``): trials claimed by a process of this machine that is
    gone, and unclaimed trials older than a minute (claiming takes milliseconds). Live workers' trials are
    left alone. Trials of a sweeper gone on another machine are failed by their missing heartbeats (``Heartbeats``).
    """
    host, now = socket.gethostname(), datetime.datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(_STATES.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        dead = worker_host == host and pid.isdigit() and not _process_alive(int(pid))
        unclaimed = "worker" not in trial.user_attrs and (now - trial.datetime_start).total_seconds() > 60
        if dead or unclaimed:
            _settle(study, trial, "it was left running by a sweeper that is gone")


def _settle(study: optuna.Study, trial, reason: str) -> bool:
    """Record a trial whose sweeper did not get its job's result: complete if the job finished (its
    ``metrics.json``, written last, and ``objective.json`` exist), since nothing of it was lost (its λ stays in
    its ``objective.json``); failed otherwise, its SLURM job cancelled if it still runs (nobody would record
    what it finds). True if complete."""
    finished = _finished_job(trial)
    if finished:
        log.warning("Trial %d: its job finished, though %s: recording it as complete", trial.number, reason)
        study.tell(trial.number, values=[finished["objective"]], skip_if_finished=True)
        return True
    _cancel_slurm_job(trial)
    log.warning("Trial %d failed: %s", trial.number, reason)
    study.tell(trial.number, state=_STATES.FAIL, skip_if_finished=True)
    return False


class Heartbeats:
    """Optuna's heartbeats (``RDBStorage(heartbeat_interval=..., grace_period=...)``) for trials run through ask and
    tell, which Optuna records by itself only inside ``study.optimize``.

    A sweeper records a heartbeat of each of its trials when it asks for it, then every ``interval`` seconds while
    the trial's job runs. Any live sweeper of the study fails a trial whose last heartbeat is older than
    ``grace_period`` (Optuna's ``fail_stale_trials``, checked every ``interval`` seconds while the sweeper runs
    trials, every WAIT_S seconds while it waits): its sweeper is gone, on whatever node it ran. Optuna then calls
    ``_settle_stale`` on it. A trial of a dead sweeper is thus failed within ``grace_period + interval`` seconds
    and run again by the first free sweeper.

    A sweeper fails others' trials only once its own calls have reached the storage for ``grace_period``: after
    the storage was away (a database restart), the live sweepers have had time to beat again."""

    def __init__(self, url: str | None, interval: int, grace_period: int):
        self.interval, self.grace_period = interval, grace_period
        self.answering_since: float | None = None
        # No URL: the study is in this process's memory, and no other sweeper can share it.
        self.storage = (
            None
            if url is None
            else _retry(
                _racing,
                optuna.storages.RDBStorage,
                url=url,
                heartbeat_interval=interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=_settle_stale,
            )
        )

    def beat(self, study: optuna.Study, trials: list, settle: bool = True) -> None:
        """Record a heartbeat of each of ``trials``; with ``settle``, fail the study's stale trials."""
        if self.storage is None:
            return
        try:
            for trial in trials:
                self.storage.record_heartbeat(trial._trial_id)  # the id Optuna's own heartbeat thread passes
            if self.answering_since is None:
                self.answering_since = time.monotonic()
            if settle and time.monotonic() - self.answering_since >= self.grace_period:
                optuna.storages.fail_stale_trials(study)
        except _STORAGE_DOWN:
            self.answering_since = None
            raise

    @contextmanager
    def running(self, study: optuna.Study, trials: list) -> Iterator[None]:
        """Heartbeats of ``trials`` every ``interval`` seconds, from a background thread, while the block runs."""
        stop = threading.Event()

        def keep_beating() -> None:
            while not stop.wait(self.interval):
                try:
                    self.beat(study, trials)
                except _STORAGE_DOWN as error:  # the next beat tries again; _retry in the sweep waits it out
                    log.warning("No heartbeat: the study's storage did not answer (%s)", str(error).splitlines()[0])

        thread = threading.Thread(target=keep_beating, name="heartbeats", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def _settle_stale(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Optuna's ``heartbeat_stale_trial_callback``: ``trial``, now failed, had no heartbeat for the grace period, so
    its sweeper is gone. If its job finished, its result still counts: a failed trial cannot be completed, so a
    complete copy of it is added (same parameters, job dir and objective). Otherwise its SLURM job is cancelled
    and Optuna's ``RetryHeartbeatStaleTrialCallback`` queues it to run again with the same parameters (the next
    trial a sweeper asks for)."""
    finished = _finished_job(trial)
    if finished:
        copy = optuna.trial.create_trial(
            params=trial.params,
            distributions=trial.distributions,
            value=finished["objective"],
            user_attrs={**trial.user_attrs, "lam": finished["lam"]},
            system_attrs={"failed_trial": trial.number},
        )
        study.add_trial(copy)
        log.warning("Trial %d: its sweeper is gone, but its job finished: its result counts", trial.number)
        return
    _cancel_slurm_job(trial)
    log.warning(
        "Trial %d failed: its sweeper (%s) sent no heartbeat for the grace period; running it again",
        trial.number,
        trial.user_attrs.get("worker"),
    )
    optuna.storages.RetryHeartbeatStaleTrialCallback()(study, trial)


def _cancel_slurm_job(trial: optuna.trial.FrozenTrial) -> None:
    """Cancel the SLURM job of a trial, if its job dir names one (``slurm.json``, see ``job.slurm_job``)."""
    try:
        job = json.loads((Path(trial.user_attrs.get("job_dir", "/nonexistent")) / "slurm.json").read_text())
    except (OSError, ValueError):
        return
    if shutil.which("scancel"):
        # An array task by <array job>_<task>: the job id of an array's last task is the whole array's.
        job_id = job.get("array", job["job_id"])
        log.warning("Cancelling SLURM job %s of trial %d", job_id, trial.number)
        done = subprocess.run(["scancel", job_id], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:  # the job may run on, holding its node: say so, with scancel's reason
            log.warning("scancel %s failed (exit %d): %s", job_id, done.returncode, done.stderr.strip())


def _finished_job(trial: optuna.trial.FrozenTrial) -> dict | None:
    """A trial's ``objective.json`` (objective, λ) once its job is complete (``metrics.json`` is written last)."""
    job_dir = Path(trial.user_attrs.get("job_dir", "/nonexistent"))
    try:
        if (job_dir / "metrics.json").is_file():
            return json.loads((job_dir / "objective.json").read_text())
    except (OSError, ValueError):
        pass
    return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _fail(study: optuna.Study, trials: list) -> None:
    """Record ``trials`` as failed, those not told already."""
    for trial in trials:
        study.tell(trial, state=_STATES.FAIL, skip_if_finished=True)


def _within_target(study: optuna.Study, trials: list, target: int) -> list:
    """Drop trials a parallel worker made surplus: the first ``target`` trials (by number) that are
    complete or running are the study's; later ones are pruned before they run."""
    keep = {t.number for t in _taken(study)[:target]}
    for trial in trials:
        if trial.number not in keep:
            study.tell(trial, state=_STATES.PRUNED, skip_if_finished=True)
    return [trial for trial in trials if trial.number in keep]


def _claim_final(study: optuna.Study, heartbeats: Heartbeats, sweep_dir: Path, best_trial: int):
    """This sweeper's claim on the final evaluation of ``study``'s best trial, or None when it was made, or is
    being made, by another sweeper (or by this one in an earlier run).

    Claims are the trials of a second study, ``<study>:final:<best trial>``, in the same storage. The storage
    numbers trials atomically, so of several sweepers asking at once, the one whose claim has the lowest number
    among those running or complete wins, and the others withdraw theirs. A claim whose sweeper is gone is
    settled first (complete if its ``final/`` was written, failed otherwise), so that a rerun takes it over; a
    study whose best trial changes (it was resumed with more trials) is evaluated again."""
    claims = _open_study(f"{study.study_name}:final:{best_trial}", heartbeats.storage, None, "maximize")
    _settle_abandoned_trials(claims)
    heartbeats.beat(claims, [])
    done = claims.get_trials(deepcopy=False, states=(_STATES.COMPLETE,))
    if done:
        log.info(
            "The final evaluation of study %s (best trial %d) was made by %s into %s",
            study.study_name,
            best_trial,
            done[0].user_attrs.get("worker"),
            done[0].user_attrs.get("job_dir"),
        )
        return None
    trial = claims.ask()
    heartbeats.beat(claims, [trial], settle=False)
    trial.set_user_attr("worker", _WORKER)
    trial.set_user_attr("job_dir", str((sweep_dir / "final").resolve()))
    contenders = claims.get_trials(deepcopy=False, states=(_STATES.RUNNING, _STATES.COMPLETE))
    winner = min(contenders, key=lambda t: t.number)
    if winner.number != trial.number:
        claims.tell(trial, state=_STATES.PRUNED)
        log.info(
            "The final evaluation of study %s is being made by another sweeper (%s)",
            study.study_name,
            winner.user_attrs.get("worker", "just starting"),
        )
        return None
    return claims, trial


def _job_lost_errors() -> tuple[type[BaseException], ...]:
    """What the launchers raise when a job's process died (killed, cancelled, past its time limit): submitit's
    for SLURM, loky's for joblib. An exception raised inside a job is not among them: Hydra returns it in the
    job's result, and any other exception of the launcher is a bug that keeps its traceback."""
    from joblib.externals.loky.process_executor import TerminatedWorkerError
    from submitit.core.utils import UncompletedJobError

    return (UncompletedJobError, TerminatedWorkerError)


def _record(study: optuna.Study, trial: optuna.Trial, result) -> bool:
    """Tell the study how a trial ended; True when it completed with a finite objective."""
    try:
        value = result.return_value  # raises the job's exception when it failed
        objective = value.get("objective") if isinstance(value, dict) else None
        problem = f"objective {objective!r}"
    except Exception as error:  # noqa: BLE001 - any failure of the job fails the trial
        objective, problem = None, f"{type(error).__name__}: {error}"
        bug = error if not isinstance(error, UserError) else None  # a bug's traceback stays in the log
    else:
        bug = None
    if result.status != JobStatus.COMPLETED or objective is None or not math.isfinite(objective):
        log.warning("Trial %d failed: %s", trial.number, problem, exc_info=bug)
        study.tell(trial, state=_STATES.FAIL, skip_if_finished=True)
        return False
    trial.set_user_attr("lam", value["lam"])
    if result.hydra_cfg is not None:  # where the job wrote (the working dir is the sweeper's: jobs do not chdir)
        trial.set_user_attr("job_dir", str(result.hydra_cfg.hydra.runtime.output_dir))
    study.tell(trial, values=[objective], skip_if_finished=True)
    return True


def trial_lam(trial: optuna.trial.FrozenTrial) -> float | None:
    """The λ a completed trial used: recorded by its sweeper, or, for a trial settled after its sweeper was
    killed, read from its job's ``objective.json``."""
    if "lam" in trial.user_attrs:
        return trial.user_attrs["lam"]
    finished = _finished_job(trial)
    return finished["lam"] if finished else None


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The completed trial of best objective; ties go to the smallest change to ΘT (the least Σ|α| over the
    searched α keys), then the smallest λ, then the first trial, as a selection's ties do
    (``pipeline.selection.best_setting``). Optuna's own ``best_trial`` takes the first of the tied trials, so
    which α a sweep reported depended on the order the sampler drew them in."""
    trials = study.get_trials(deepcopy=False, states=(_STATES.COMPLETE,))
    if not trials:
        raise ValueError(f"study {study.study_name}: no trial completed")

    def rank(trial: optuna.trial.FrozenTrial):
        change = sum(abs(v) for k, v in trial.params.items() if k.startswith("alpha.") and isinstance(v, int | float))
        lam = trial_lam(trial)
        value = trial.value if study.direction == optuna.study.StudyDirection.MAXIMIZE else -trial.value
        return (-value, change, math.inf if lam is None else lam, trial.number)

    return min(trials, key=rank)


def _write_results(study: optuna.Study, sweep_dir: Path, storage: str | None) -> dict:
    best = best_trial(study)
    results = {
        "name": "optuna",
        "best_params": dict(best.params),
        "best_value": best.value,
        "best_lam": trial_lam(best),
        "best_trial": best.number,
        "study_name": study.study_name,
        "storage": redact_url(storage),
        "n_complete": _count(study, _STATES.COMPLETE),
        "n_failed": _count(study, _STATES.FAIL),
    }
    with atomic_path(sweep_dir / "optimization_results.yaml") as tmp:
        OmegaConf.save(OmegaConf.create(results), tmp)
    log.info("Best: %s = %.4f (trial %d, λ = %s)", best.params, best.value, best.number, results["best_lam"])
    return results


def _as_overrides(params: dict) -> list[str]:
    return [f"{name}={value}" for name, value in params.items()]


def _hydra_value(value) -> str:
    """``value`` (mappings, lists, strings, numbers, booleans, None) written in Hydra's override grammar."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_hydra_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_hydra_value(item) for item in value) + "]"
    if isinstance(value, str):
        # Hydra's quoted strings: a quote is escaped, and so are the backslashes before a quote or the closing one;
        # any other backslash is literal (doubling it, as before, doubled the value's backslashes).
        return "'" + re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), value) + "'"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else repr(value)


def final_overrides(cfg: Config, best: dict) -> list[str]:
    """The best trial's setting on the test split, beside every baseline the family allows."""
    systems = list(PAPER_ORDER)
    if cfg.model.kind == "bi_encoder":
        systems.insert(3, DOMAIN_MODEL)
    return [
        f"split={cfg.dataset.test_split}",
        f"systems=[{','.join(systems)}]",
        f"lam.value={_hydra_value(best['best_lam'])}",  # null where no λ ran (retriever=dense)
        "wandb.job_type=final",  # named <study>/final (job.run_settings)
        "trial=null",
    ]


def final_report(storage: str | None, study_name: str, sweep_dir: Path) -> FinalReport:
    """The report of a study's final evaluation, from its completed trials (read in the final job itself)."""
    study = _retry(optuna.load_study, study_name=study_name, storage=_absolute_storage(storage))
    completed = _retry(study.get_trials, deepcopy=False, states=(_STATES.COMPLETE,))
    trials = [{"number": t.number, "value": t.value, "lam": trial_lam(t), "params": dict(t.params)} for t in completed]
    return FinalReport(trials, best_trial(study).number, sweep_dir, _absolute_storage(storage))


class FinalReport:
    """What the final evaluation adds to its job: tests of task arithmetic against each baseline (``significance``:
    paired t-test, Bonferroni, by default; each fused baseline at its own λ, tuned as task arithmetic's), Markdown
    and LaTeX tables, the tuning objective against every swept key (plot and W&B table),
    ‖τ‖ per layer, and the report with the study as a W&B artifact."""

    FILES = (
        "results.md",
        "results.tex",
        "significance.json",
        "per_query.json",
        "metrics.json",
        "task_vector_layers.png",
    )

    def __init__(self, trials: list[dict], best_trial: int, sweep_dir: Path, storage: str | None):
        self.trials, self.best_trial, self.sweep_dir, self.storage = trials, best_trial, sweep_dir, storage

    def __call__(self, outcome: JobOutcome, run) -> str:
        from taskvec_ir.reporting import report, tables, tracking
        from taskvec_ir.reporting.lineage import Artifact
        from taskvec_ir.storage.outputs import write_json

        cfg, out_dir, means = outcome.cfg, outcome.out_dir, outcome.means
        baselines = [s for s in cfg.systems if s != TASK_ARITHMETIC]
        p_values = report.report_significance(
            outcome.per_query, TASK_ARITHMETIC, baselines, cfg.measures, cfg.significance
        )
        results = report.results_table(
            means, p_values, TASK_ARITHMETIC, cfg.measures, cfg.significance, outcome.extra["lam"]
        )
        write_json(p_values, out_dir / "significance.json")
        (best,) = [t for t in self.trials if t["number"] == self.best_trial]
        chosen = ", ".join(
            f"{'α' if key == 'alpha.value' else key} = {value:g}" if isinstance(value, float) else f"{key} = {value}"
            for key, value in best["params"].items()
            if key != "lam.value"
        )
        header = (
            f"{cfg.model.name} on {cfg.dataset.name} {cfg.split}: {chosen}, "
            + ("dense retrieval (no fusion) " if outcome.lam is None else f"λ = {outcome.lam:g} ")
            + f"(tuned on {cfg.sweep.tune_split} by {cfg.objective}, {len(self.trials)} trials)"
            + (f" · {SUPERVISED_LABEL}" if cfg.model.supervised else "")
        )
        tables = {
            "results.md": f"{header}\n\n" + tables.markdown(results),
            "results.tex": tables.latex(results),
        }
        for name, text in tables.items():
            with atomic_path(out_dir / name) as tmp:
                tmp.write_text(text)
        plots = {
            "alpha_sensitivity": self.sweep_dir / "alpha_sensitivity.png",
            "task_vector_layers": out_dir / "task_vector_layers.png",
        }
        report.sensitivity_plot(self.trials, plots["alpha_sensitivity"], cfg.objective, self.best_trial)
        report.layer_norms_plot(outcome.merge, plots["task_vector_layers"])
        rows = [[s, *(means[s][m] for m in cfg.measures)] for s in cfg.systems]
        tracking.log_report(run, plots, {"results": (["system", *cfg.measures], rows)})
        if cfg.selection.bootstrap.resamples:  # the dev choice rerun on resamples of the tuning queries
            header = f"{header}\n{self.bootstrap(outcome, run, best)}"
        tracking.log_sensitivity(run, cfg.objective, *report.sensitivity(self.trials))
        tracking.log_summary(run, {"n_trials": len(self.trials)})
        study = cfg.sweep.study
        outcome.outputs.append(
            Artifact(
                f"report-{study.group}",
                "report",
                out_dir,
                {"study": study.name, "storage": study.storage, **best["params"]},
                upload=True,
                files=self.FILES,
            )
        )
        database = (
            self.storage.removeprefix("sqlite:///") if self.storage and self.storage.startswith("sqlite:///") else None
        )
        if database:
            outcome.outputs.append(
                Artifact(
                    f"study-{study.name}",
                    "optuna_study",
                    Path(database),
                    {"study": study.name, "n_trials": study.n_trials},
                    upload=True,
                )
            )
        return header

    def bootstrap(self, outcome: JobOutcome, run, best: dict) -> str:
        """The sweep's choice rerun on resamples of its tuning split's queries (``pipeline.bootstrap``)."""
        from taskvec_ir.pipeline import bootstrap
        from taskvec_ir.reporting import tracking

        cfg = outcome.cfg
        alphas = [t["params"]["alpha.value"] for t in self.trials]
        chosen = ([(best["params"]["alpha.value"], outcome.lam)], [outcome.extra["lam"].get(IR_MODEL)])
        problem = bootstrap.sweep_problem(outcome.experiment, cfg, alphas, chosen)
        line, summary = report_bootstrap(problem, cfg, outcome.out_dir, run)
        tracking.log_summary(run, summary)
        return line
