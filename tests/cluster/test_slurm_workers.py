"""Sweeps in worker mode (``hydra.sweeper.worker_jobs``) on a real SLURM and PostgreSQL: a SLURM job runs several
trials in one process, and the study still ends with exactly ``n_trials``, each in its own job dir, through a
sweeper killed outright and a worker killed mid-trial."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import optuna
import pytest

from servers import assert_no_trial_lost_or_counted_twice, finish, process_env, start, sweep_command, wait_for

pytestmark = pytest.mark.slow
FAIL = optuna.trial.TrialState.FAIL


def worker_command(cluster, study: str, work: Path, triple: dict, n_trials: int, *overrides: str) -> list:
    return sweep_command(cluster, study, work, triple, n_trials, 10, "hydra.sweeper.worker_jobs=1", *overrides)


def slurm_job_ids(job_dirs: list[Path]) -> set[str]:
    """The SLURM jobs that ran these trials (each trial's ``slurm.json``)."""
    return {json.loads((job_dir / "slurm.json").read_text())["job_id"] for job_dir in job_dirs}


def test_one_worker_job_runs_every_trial_each_in_its_own_dir(cluster, triple, mirror_dir, tmp_path, study_name):
    log = tmp_path / "sweeper.log"
    finish(start(worker_command(cluster, study_name, tmp_path, triple, 3), process_env(mirror_dir), log), log)
    complete = assert_no_trial_lost_or_counted_twice(cluster, study_name, 3)
    job_dirs = [Path(t.user_attrs["job_dir"]) for t in complete]
    assert [d.name for d in job_dirs] == ["trial_0", "trial_1", "trial_2"]
    assert len(slurm_job_ids(job_dirs)) == 1, "the trials ran in more than one SLURM job"
    for trial, job_dir in zip(complete, job_dirs, strict=True):
        assert f"trial={trial.number}" in (job_dir / ".hydra" / "overrides.yaml").read_text()
        assert list((job_dir / "wandb").glob("offline-run-*")), f"{job_dir} has no W&B run"
        assert json.loads((job_dir / "objective.json").read_text())["objective"] == trial.value
    (worker_dir,) = (tmp_path / "sweep" / "workers").iterdir()
    assert "ran 3 trials" in (worker_dir / "app.log").read_text()


def test_a_sweeper_killed_outright_is_resumed_while_its_worker_runs_on(
    cluster, triple, mirror_dir, tmp_path, study_name
):
    command = worker_command(cluster, study_name, tmp_path, triple, 4)
    sweeper = start(command, process_env(mirror_dir), tmp_path / "killed.log")
    wait_for(lambda: (tmp_path / "sweep" / "trial_0" / "metrics.json").is_file(), 300, "trial 0 to complete")
    sweeper.send_signal(signal.SIGKILL)
    sweeper.wait()

    # The killed sweeper's worker is a worker of the study like any other: its trials count, and the resumed sweeper
    # adds a worker of its own for the trials left, until the study has its 4.
    output = finish(start(command, process_env(mirror_dir), tmp_path / "resumed.log"), tmp_path / "resumed.log")
    assert "Best:" in output
    assert_no_trial_lost_or_counted_twice(cluster, study_name, 4)
    assert len(list((tmp_path / "sweep" / "workers").iterdir())) >= 1


def test_a_worker_killed_mid_trial_has_its_trial_failed_and_replaced(cluster, triple, mirror_dir, tmp_path, study_name):
    # The fault hook SIGKILLs the process running trial 1: the worker job, with the models it had loaded.
    command = worker_command(cluster, study_name, tmp_path, triple, 3, "hydra.sweeper.max_failure_rate=0.5")
    log = tmp_path / "sweeper.log"
    output = finish(start(command, process_env(mirror_dir, faults="1:sigkill"), log), log)
    assert "A worker job was lost" in output
    complete = assert_no_trial_lost_or_counted_twice(cluster, study_name, 3)
    assert [t.number for t in cluster.trials(study_name, FAIL)] == [1] and 1 not in {t.number for t in complete}
    assert not (tmp_path / "sweep" / "trial_1" / "metrics.json").exists()
    assert len(slurm_job_ids([Path(t.user_attrs["job_dir"]) for t in complete])) == 2  # the lost worker, its successor
