"""Trials whose sweeper is gone: settled from what their job left (complete if it finished, failed and run again
otherwise), found by the sweeper's process on this machine or by its missing heartbeats on any (docs/sweeps.md)."""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna

from taskvec_ir.runs.sweeping.study_storage import STORAGE_DOWN, racing, retry
from taskvec_ir.runs.sweeping.trials import STATES, finished_job, trial_values, unclaimed_too_long

log = logging.getLogger(__name__)
# Heartbeats are experimental in Optuna 5 and meant for study.optimize; we record them around ask/tell ourselves.
warnings.filterwarnings(
    "ignore",
    r"Argument ``heartbeat_interval``|.*fail_stale_trials is|RetryHeartbeatStaleTrialCallback is",
    optuna.exceptions.ExperimentalWarning,
)
warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")


class Heartbeats:
    """Optuna's heartbeats (``RDBStorage(heartbeat_interval=..., grace_period=...)``) for trials run through ask and
    tell, which Optuna records by itself only inside ``study.optimize``: a sweeper beats for its trials every
    ``interval`` seconds, and fails others' trials without a beat for ``grace_period`` (then ``settle_stale``).
    It fails others' trials only once its own calls have reached the storage for ``grace_period``: after the storage
    was away (a database restart), the live sweepers have had time to beat again."""

    def __init__(self, url: str | None, interval: int, grace_period: int):
        self.interval, self.grace_period = interval, grace_period
        self.answering_since: float | None = None
        # No URL: the study is in this process's memory, and no other sweeper can share it.
        self.storage = (
            None
            if url is None
            else retry(
                racing,
                optuna.storages.RDBStorage,
                url=url,
                heartbeat_interval=interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=settle_stale,
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
        except STORAGE_DOWN:
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
                except STORAGE_DOWN as error:  # the next beat tries again; retry in the sweep waits it out
                    log.warning("No heartbeat: the study's storage did not answer (%s)", str(error).splitlines()[0])

        thread = threading.Thread(target=keep_beating, name="heartbeats", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def settle_abandoned_trials(study: optuna.Study) -> None:
    """Settle (``settle``) the trials left running by a sweeper that no longer exists, which could not tell the
    study (SIGKILL, a lost node): those claimed by a process of this machine that is gone, and those left unclaimed
    too long (``trials.unclaimed_too_long``). Live sweepers' trials are left alone; those of a sweeper gone on
    another machine are failed by their missing heartbeats (``Heartbeats``)."""
    host, now = socket.gethostname(), datetime.datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(STATES.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        dead = worker_host == host and pid.isdigit() and not _process_alive(int(pid))
        if dead or unclaimed_too_long(trial, now):
            settle(study, trial, "it was left running by a sweeper that is gone")


def settle(study: optuna.Study, trial, reason: str) -> bool:
    """Record a trial whose sweeper did not get its job's result: complete if the job finished (its
    ``metrics.json``, written last, and ``objective.json`` exist, with each value the study needs: a Pareto
    study's retention too), since nothing of it was lost (its λ stays in its ``objective.json``); failed
    otherwise, its SLURM job cancelled if it still runs (nobody would record what it finds). True if complete."""
    values = trial_values(study, finished_job(trial))
    if values is not None:
        log.warning("Trial %d: its job finished, though %s: recording it as complete", trial.number, reason)
        study.tell(trial.number, values=values, skip_if_finished=True)
        return True
    _cancel_slurm_job(trial)
    log.warning("Trial %d failed: %s", trial.number, reason)
    study.tell(trial.number, state=STATES.FAIL, skip_if_finished=True)
    return False


def settle_stale(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Optuna's ``heartbeat_stale_trial_callback``: ``trial``, now failed, had no heartbeat for the grace period, so
    its sweeper is gone. If its job finished, its result still counts: a failed trial cannot be completed, so a
    complete copy of it is added (same parameters, job dir and objective). Otherwise its SLURM job is cancelled
    and Optuna's ``RetryHeartbeatStaleTrialCallback`` queues it to run again with the same parameters (the next
    trial a sweeper asks for)."""
    finished = finished_job(trial)
    values = trial_values(study, finished)
    if values is not None:
        complete = optuna.trial.create_trial(
            params=trial.params,
            distributions=trial.distributions,
            values=values,
            user_attrs={**trial.user_attrs, "lam": finished["lam"]},
            system_attrs={"failed_trial": trial.number},
        )
        study.add_trial(complete)
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


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True
