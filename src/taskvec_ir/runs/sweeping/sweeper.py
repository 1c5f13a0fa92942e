"""The sweeper behind ``hydra/sweeper=taskvec_optuna``: checks a sweep once, then runs trials until its study has
``n_trials`` complete (resuming it, beside any other sweeper of the study), then the final evaluation."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import optuna
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

from taskvec_ir.config.composed import Config
from taskvec_ir.errors import UserError
from taskvec_ir.runs import test_guard
from taskvec_ir.runs.compose import typed_config
from taskvec_ir.runs.job import open_pipeline
from taskvec_ir.runs.progress import Pace, trial_line
from taskvec_ir.runs.retention import general_pipeline
from taskvec_ir.runs.search_space import Dimension, list_elements, search_space
from taskvec_ir.runs.sweeping.dev_vs_test import compared_sweep
from taskvec_ir.runs.sweeping.final_evaluation import final_overrides, run_final_evaluation
from taskvec_ir.runs.sweeping.launchers import LauncherConfigError, check_scheduler, job_lost_errors, launch
from taskvec_ir.runs.sweeping.overrides import as_overrides, hydra_value
from taskvec_ir.runs.sweeping.recovery import Heartbeats, settle, settle_abandoned_trials
from taskvec_ir.runs.sweeping.samplers import reseed, study_sampler
from taskvec_ir.runs.sweeping.study_storage import absolute_storage, open_study, retry
from taskvec_ir.runs.sweeping.trials import STATES, WORKER, claim, count, fail, record, taken, write_results
from taskvec_ir.runs.sweeping.workers import SweepPlan, TrialWorker
from taskvec_ir.storage.outputs import redact_url, refuse_password

log = logging.getLogger(__name__)
WAIT_S = 5  # between looks at trials that other sweepers of the study are running


class OptunaSweep(Sweeper):
    """The sweep itself (its settings: ``conf/sweep_base/optuna.yaml``); ``hydra_plugins.taskvec_ir_sweeper`` hands
    Hydra's calls to it."""

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
        # One objective's direction, or a list: one per objective (sweep=pareto).
        self.direction = direction if isinstance(direction, str) else list(direction)
        self.storage, self.study_name = storage, study_name
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
            HydraConfig.instance().set_config(self.config)  # for ${hydra:...} interpolations in the job's keys
            job_cfg = typed_config(self.config)
            check_tuning_split(job_cfg)
            self.objective = job_cfg.objective  # named in each trial's line
            pipeline = open_pipeline(job_cfg)
            retention = job_cfg.sweep.retention
            self._check_objectives(retention)
            if retention is not None:  # a Pareto sweep: its general collection fails here, not in every trial
                general_pipeline(job_cfg, pipeline.cache)
            dimensions, fixed = search_space([f"{key}={value}" for key, value in self.params.items()] + list(arguments))
            dimensions, lists = list_elements(dimensions, job_cfg)
            check_bootstrap(job_cfg, dimensions)
            if job_cfg.retriever.dense and "lam.value" in dimensions:
                raise UserError(
                    "retriever=dense fuses nothing, so searching lam.value would waste trials: use sweep=alpha "
                    "(or drop lam.value from the searched keys)"
                )
            if job_cfg.sweep.compare_with:  # a sweep to compare with that does not fit fails now, not in the report
                compared_sweep(job_cfg.sweep.compare_with, job_cfg)
            sampler, target = study_sampler(self.sampler_config, dimensions, self.n_trials)
            sweep_dir = Path(self.config.hydra.sweep.dir)
            sweep_dir.mkdir(parents=True, exist_ok=True)
            storage = absolute_storage(self.storage)
            self.heartbeats = Heartbeats(storage, self.heartbeat_interval, self.grace_period)  # a refused login here
            study = retry(open_study, self.study_name, self.heartbeats.storage, sampler, self.direction)
            if len(study.directions) != (1 if isinstance(self.direction, str) else len(self.direction)):
                raise UserError(
                    f"hydra.sweeper.study_name: study {study.study_name} in {redact_url(storage)} has "
                    f"{len(study.directions)} objectives and this sweep has another number: name another study "
                    "(hydra.sweeper.study_name) or sweep dir"
                )
        except UserError as error:
            _exit(error)
        retry(settle_abandoned_trials, study)
        space = test_guard.search_space_of(dimensions, job_cfg.lam, job_cfg.retriever.dense)
        guarded = retry(test_guard.set_search_space, study, self.heartbeats.storage, job_cfg, space)
        if job_cfg.sweep.final_evaluation:  # refused before any trial runs
            what = f"study {study.study_name}'s best setting"
            try:
                test_guard.check(guarded, job_cfg.sweep.strict_test_guard, "sweep.strict_test_guard", what)
            except UserError as error:
                _exit(error)
        described = self._study_override(study, storage, dimensions)
        plan = SweepPlan(study.study_name, storage, sweep_dir, dimensions, fixed, target, described, lists)
        log.info(
            "Study %s in %s: %d of %d trials complete; searching %s",
            study.study_name,
            redact_url(storage),
            retry(count, study, STATES.COMPLETE),
            target,
            {name: dimension.describe() for name, dimension in dimensions.items()},
        )
        try:
            job_idx = self._run_workers(study, plan) if self.worker_jobs else self.run_trials(study, plan)
            best = retry(write_results, study, sweep_dir, storage, retention, job_cfg.objective)
            if job_cfg.sweep.final_evaluation:
                overrides = [
                    *as_overrides(best["best_params"], lists),
                    *as_overrides(fixed),
                    *final_overrides(job_cfg, best),
                    described,
                ]
                evaluated = run_final_evaluation(
                    study, self.heartbeats, self.launcher, sweep_dir, overrides, job_idx, best["best_trial"]
                )
                if evaluated is not None:  # a test result of the cell, seen from now on
                    what = f"study {study.study_name}: final evaluation of trial {evaluated}"
                    retry(test_guard.add_test, study, guarded, what)
        except UserError as error:  # a launcher's refusal; a Pareto sweep with no trial within its bound
            _exit(error)

    def run_trials(self, study: optuna.Study, plan: SweepPlan) -> int:
        """Trials until the study has ``plan.target`` of them complete; returns the next job index. When the missing
        ones are running in other sweepers of the study, this one waits for them (a failed one is replaced
        by whoever is free), so that the best trial is the study's once every trial is in."""
        failed, job_idx, waiting, pace = 0, 0, False, Pace()
        while True:
            held = retry(taken, study)
            complete = sum(t.state == STATES.COMPLETE for t in held)
            if complete >= plan.target:
                break
            missing = plan.target - len(held)
            if missing <= 0:
                waiting = self._wait(study, waiting, f"{plan.target - complete} trials running in other sweepers")
                continue
            waiting = False
            # Each trial's job dir is trial_<number>, as sweep_base sets hydra.sweep.subdir.
            trials = claim(
                study, self.heartbeats, lambda n: plan.sweep_dir / f"trial_{n}", min(self.n_jobs, missing), plan.target
            )
            if not trials:  # other sweepers took the missing trials first
                continue
            overrides = [(*self._trial_overrides(study, trial, plan), plan.described) for trial in trials]
            try:
                with self.heartbeats.running(study, trials):
                    returns = launch(self.launcher, overrides, job_idx)
                for trial, result in zip(trials, returns, strict=True):
                    told = retry(record, study, trial, result)
                    failed += not told
                    self._report_trial(study, trial, result if told else None, pace, plan.target)
            except LauncherConfigError:
                retry(fail, study, trials)
                raise
            except job_lost_errors() as error:  # a job of the batch died (killed, cancelled, past its time limit)
                # The launcher raises at the first job that failed, so the batch's other trials are settled
                # from their job dirs: a finished job counts, any other is failed (and its SLURM job cancelled).
                log.warning("Trials %s: a job failed in the launcher: %s", [t.number for t in trials], error)
                failed += sum(not retry(settle, study, trial, "the launcher lost its job") for trial in trials)
            except BaseException:  # interrupted (Ctrl-C): these trials will not finish
                retry(fail, study, trials)
                raise
            job_idx += len(trials)
            if failed > self.max_failure_rate * plan.target:
                raise RuntimeError(
                    f"{failed} trials failed, more than hydra.sweeper.max_failure_rate="
                    f"{self.max_failure_rate} of {plan.target}: see the failed trials' logs in {plan.sweep_dir}"
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
            held = retry(taken, study)
            if sum(t.state == STATES.COMPLETE for t in held) >= plan.target:
                return job_idx
            missing = plan.target - len(held)
            if missing <= 0:  # the trials left run in workers of this study's other sweepers, or in a lost one
                waiting = self._wait(study, waiting, f"{plan.target - len(held)} trials running in workers")
                continue
            waiting = False
            batch = min(missing, self.worker_jobs)
            # The sweep's config (the command line's overrides, as every trial has them), in a dir of the worker's own,
            # whoever launched it and whenever (job numbers restart on resume).
            workers = [
                (*as_overrides(plan.fixed), f"hydra.sweep.subdir=workers/{WORKER.replace(':', '-')}-{job_idx + i}")
                for i in range(batch)
            ]
            try:
                returns = launch(launcher, workers, job_idx)
                for result in returns:
                    result.return_value  # noqa: B018 - raises a worker's error (a bug, too many failed trials)
            except job_lost_errors() as error:
                lost += 1
                log.warning("A worker job was lost: %s; its trial will be failed and run again", error)
                if lost > self.max_failure_rate * plan.target:
                    raise RuntimeError(
                        f"{lost} worker jobs were lost, more than hydra.sweeper.max_failure_rate="
                        f"{self.max_failure_rate} of {plan.target}: see their logs in {plan.sweep_dir / 'workers'}"
                    ) from None
            job_idx += batch

    def _report_trial(self, study: optuna.Study, trial: optuna.Trial, result, pace: Pace, target: int) -> None:
        """One line for a trial that ended: its objective at its setting (``result`` None: it failed, and ``record``
        said why), and the study's progress toward ``target`` (its job's own log and table are in its dir)."""
        pace.finished += result is not None
        complete = retry(count, study, STATES.COMPLETE)
        if result is None:
            what = "failed"
        else:
            value = result.return_value
            setting = ", ".join(
                f"{key}={v:.4g}" if isinstance(v, float) else f"{key}={v}" for key, v in trial.params.items()
            )
            lam = "" if "lam.value" in trial.params or value["lam"] is None else f", λ={value['lam']:g}"
            what = f"{self.objective} {value['objective']:.4f} at {setting}{lam}"
        log.info("%s", trial_line(trial.number, what, pace, complete, target))

    def _wait(self, study: optuna.Study, waiting: bool, what: str) -> bool:
        """One pause while the study's missing trials run elsewhere, settling those whose sweeper or worker is
        gone (this host's dead processes, other hosts' missed heartbeats); says what it waits for once."""
        if not waiting:
            log.info("Waiting for %s of the study", what)
        time.sleep(WAIT_S)
        retry(settle_abandoned_trials, study)
        retry(self.heartbeats.beat, study, [])
        return True

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
        return f"sweep.study={hydra_value(described)}"

    def _check_settings(self) -> None:
        refuse_password(self.storage, "hydra.sweeper.storage")
        check_scheduler(self.config.hydra.launcher)
        directions = [self.direction] if isinstance(self.direction, str) else self.direction
        if not 1 <= len(directions) <= 2 or any(d not in ("maximize", "minimize") for d in directions):
            raise UserError(
                f"hydra.sweeper.direction: {self.direction} is not maximize or minimize (or, for sweep=pareto, "
                "[maximize, maximize])"
            )
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

    def _check_objectives(self, retention) -> None:
        """A study of two objectives is a Pareto sweep's (``sweep.retention`` set), both maximised."""
        if retention is not None and self.direction != ["maximize", "maximize"]:
            raise UserError(
                f"hydra.sweeper.direction: {self.direction}: a Pareto sweep (sweep.retention) maximises the "
                "target's measure and the retention: set it to [maximize, maximize] (sweep=pareto does)"
            )
        if retention is None and not isinstance(self.direction, str):
            raise UserError(
                f"hydra.sweeper.direction: {self.direction} names two objectives, and the second, the general-domain "
                "retention, needs sweep.retention: use sweep=pareto, or one direction"
            )

    def _trial_overrides(self, study: optuna.Study, trial: optuna.Trial, plan: SweepPlan) -> tuple[str, ...]:
        reseed(study, self.sampler_config, trial.number)
        values = {name: retry(dimension.suggest, trial, name) for name, dimension in plan.dimensions.items()}
        return (*as_overrides(values, plan.lists), *as_overrides(plan.fixed), f"trial={trial.number}")


def check_tuning_split(config: Config) -> None:
    """A split the trials tune on is held out from the final evaluation, or the user is told (``Config.check_split``
    has checked that it exists)."""
    if config.split == config.dataset.test_split:
        log.warning("Tuning on %r, the split the final evaluation reports: its figures are not held-out", config.split)


def check_bootstrap(config: Config, dimensions: Mapping) -> None:
    """The final evaluation's bootstrap reruns the sweep's choice over the α its trials ran, each with λ chosen
    from ``lam.grid``: a sweep of ``alpha.value`` alone."""
    if not (config.selection.bootstrap.resamples and config.sweep.final_evaluation):
        return
    if config.sweep.retention is not None:
        raise UserError(
            "selection.bootstrap.resamples: a Pareto sweep's choice reads the general collection too, which the "
            "bootstrap does not resample: set selection.bootstrap.resamples=0"
        )
    if set(dimensions) != {"alpha.value"} or config.lam.value is not None or not config.lam.grid:
        raise UserError(
            "selection.bootstrap.resamples: a sweep's bootstrap reruns its choice over the α values its trials "
            "ran, λ chosen from lam.grid: sweep alpha.value alone with lam.value=null (sweep=paper_grid or "
            f"sweep=alpha; this sweep searches {', '.join(dimensions)}), or set selection.bootstrap.resamples=0"
        )


def _exit(error: Exception):
    """A user error before any trial ran: one line, no traceback (HYDRA_FULL_ERROR=1 shows it)."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise error
    log.error("%s", error)
    sys.exit(f"taskvec-ir: {error}")
