"""Sweeps whose trials are SLURM jobs and whose study lives in PostgreSQL, with the faults a cluster brings:
a trial cancelled or stopped at its time limit, a sweeper killed outright, the database restarted.

Each test checks against the study itself that no trial was lost or counted twice. Trials are tiny models on
Cranfield; each runs as a real SLURM job on the test partition (one CPU each, two at a time).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import optuna

from servers import (
    assert_no_trial_lost_or_counted_twice,
    finish,
    job_name,
    process_env,
    slurm_jobs,
    start,
    sweep_command,
    wait_for,
)

FAIL, RUNNING = optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING


def slurm_job_of(job_dir: Path) -> dict | None:
    """What a trial's job wrote on starting in SLURM (job id and node), once it has."""
    try:
        return json.loads((job_dir / "slurm.json").read_text())
    except (OSError, ValueError):
        return None


def assert_ran_on_slurm(job_dir: Path) -> None:
    job = slurm_job_of(job_dir)
    assert job and job["job_id"] and job["node"], f"{job_dir} did not run as a SLURM job"
    assert f"SLURM job {job.get('array', job['job_id'])} on {job['node']}" in (job_dir / "app.log").read_text()


def one_hanging_trial(cluster, triple, mirror_dir, work: Path, timeout_min: int):
    """A sweep of 2 trials, one at a time, whose trial 0 hangs: started in the background, with its log."""
    study = f"faults-{uuid.uuid4().hex[:12]}"  # new in the shared database
    command = sweep_command(
        cluster, study, work, triple, 2, timeout_min, "hydra.sweeper.n_jobs=1", "hydra.sweeper.max_failure_rate=0.5"
    )
    log = work / "sweeper.log"
    return study, start(command, process_env(mirror_dir, faults="0:hang"), log), log


def sacct_state(job: dict) -> str:
    """The job's state in SLURM's accounting (what submitit reads)."""
    result = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "State", "-j", job.get("array", job["job_id"])],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_a_cancelled_trial_job_is_failed_and_replaced(cluster, triple, mirror_dir, tmp_path):
    study, sweeper, log = one_hanging_trial(cluster, triple, mirror_dir, tmp_path, timeout_min=10)
    job = wait_for(lambda: slurm_job_of(tmp_path / "sweep" / "trial_0"), 300, "trial 0's SLURM job to start")
    subprocess.run(["scancel", job.get("array", job["job_id"])], check=True)
    output = finish(sweeper, log)
    assert "Trial 0 failed" in output
    assert sacct_state(job).startswith("CANCELLED")
    complete = assert_no_trial_lost_or_counted_twice(cluster, study, 2)
    assert [t.number for t in cluster.trials(study, FAIL)] == [0] and 0 not in {t.number for t in complete}
    for trial in complete:
        assert_ran_on_slurm(Path(trial.user_attrs["job_dir"]))


def test_a_trial_job_past_its_time_limit_is_failed_and_replaced(cluster, triple, mirror_dir, tmp_path):
    study, sweeper, log = one_hanging_trial(cluster, triple, mirror_dir, tmp_path, timeout_min=1)
    output = finish(sweeper, log)
    # SLURM warns the job signal_delay_s before its limit (USR2); submitit, which does not requeue a trial,
    # ends it there, as timed out.
    (failure,) = [line for line in output.splitlines() if "Trial 0 failed" in line]
    assert "timed-out" in failure
    assert_no_trial_lost_or_counted_twice(cluster, study, 2)
    assert [t.number for t in cluster.trials(study, FAIL)] == [0]
    assert not (tmp_path / "sweep" / "trial_0" / "metrics.json").exists()


def test_a_sweeper_killed_outright_is_resumed_by_the_same_command(cluster, triple, mirror_dir, tmp_path, study_name):
    name = job_name(study_name)
    command = sweep_command(cluster, study_name, tmp_path, triple, 2)
    env = process_env(mirror_dir, faults="0:hang")
    sweeper = start(command, env, tmp_path / "killed.log")
    orphan = wait_for(lambda: slurm_job_of(tmp_path / "sweep" / "trial_0"), 300, "trial 0's SLURM job to start")
    sweeper.send_signal(signal.SIGKILL)
    sweeper.wait()
    assert orphan["job_id"] in slurm_jobs(name)  # the killed sweeper's trial job runs on

    output = finish(start(command, env, tmp_path / "resumed.log"), tmp_path / "resumed.log")
    assert "left running by a sweeper that is gone" in output
    assert f"Cancelling SLURM job {orphan['array']} of trial 0" in output
    assert_no_trial_lost_or_counted_twice(cluster, study_name, 2)
    assert 0 in {t.number for t in cluster.trials(study_name, FAIL)}
    assert orphan["job_id"] not in slurm_jobs(name), "the killed sweeper's trial job still runs"


def on_another_node(command: list, hostname: str) -> list:
    """``command`` in a UTS namespace of its own named ``hostname``: to the sweeper, another node of the cluster."""
    return ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', hostname, *command]


def test_a_sweeper_lost_on_another_node_is_replaced_within_the_grace_period(
    cluster, triple, mirror_dir, tmp_path, study_name
):
    interval, grace = 2, 10
    settings = ["hydra.sweeper.n_jobs=1", f"hydra.sweeper.heartbeat_interval={interval}"]
    settings.append(f"hydra.sweeper.grace_period={grace}")
    lost_work, live_work, live_log = tmp_path / "lost", tmp_path / "live", tmp_path / "live.log"
    lost = start(
        on_another_node(sweep_command(cluster, study_name, lost_work, triple, 2, 10, *settings), "node-lost"),
        process_env(mirror_dir, faults="0:hang"),
        tmp_path / "lost.log",
    )
    orphan = wait_for(lambda: slurm_job_of(lost_work / "sweep" / "trial_0"), 300, "trial 0's SLURM job to start")
    live = start(
        sweep_command(cluster, study_name, live_work, triple, 2, 10, *settings), process_env(mirror_dir), live_log
    )
    wait_for(lambda: "Waiting for 1 trials running in other sweepers" in live_log.read_text(), 300, "trial 1 to end")
    time.sleep(grace + 2 * interval)  # the lost sweeper's heartbeats keep its trial while it lives
    assert cluster.trials(study_name)[0].state == RUNNING
    lost.send_signal(signal.SIGKILL)
    lost.wait()
    # The live sweeper looks every WAIT_S (5 s) while it waits.
    wait_for(lambda: cluster.trials(study_name)[0].state == FAIL, grace + interval + 5 + 5, "trial 0 to be failed")
    output = finish(live, live_log)
    assert "Trial 0 failed: its sweeper (node-lost:" in output
    assert f"Cancelling SLURM job {orphan.get('array', orphan['job_id'])} of trial 0" in output
    complete = assert_no_trial_lost_or_counted_twice(cluster, study_name, 2)
    (again,) = [t for t in complete if t.system_attrs.get("failed_trial") == 0]  # trial 0, run again
    assert again.params == cluster.trials(study_name)[0].params
    assert orphan["job_id"] not in slurm_jobs(job_name(study_name)), "the lost sweeper's trial job still runs"


def test_a_database_restart_mid_sweep_is_waited_out(cluster, triple, mirror_dir, tmp_path, study_name):
    version = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True).stdout.split()[0]
    command = sweep_command(cluster, study_name, tmp_path, triple, 3)
    log = tmp_path / "sweeper.log"
    sweeper = start(command, process_env(mirror_dir), log)
    try:
        wait_for(lambda: slurm_job_of(tmp_path / "sweep" / "trial_0"), 300, "the first trial's SLURM job to start")
        subprocess.run(["pg_ctlcluster", version, "main", "stop", "-m", "fast"], check=True)
        wait_for(lambda: "storage did not answer" in log.read_text(), 300, "the sweeper to find the database gone")
    finally:
        subprocess.run(["pg_ctlcluster", version, "main", "start"], check=True)
    output = finish(sweeper, log)
    assert "retrying" in output
    assert_no_trial_lost_or_counted_twice(cluster, study_name, 3)
