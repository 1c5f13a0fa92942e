"""A sweep survives what happens overnight: a trial running out of memory or scoring NaN, a trial killed
mid-scoring, the sweeper itself killed and started again. Nothing completed is lost or rerun, and nothing
cut short looks complete.

Faults are injected into the real ``taskvec-ir -m`` processes by ``faults/sitecustomize.py`` (test code on
PYTHONPATH, never imported by the package), by Optuna trial number.
"""

import json
import shutil
import signal
import subprocess
import time

import optuna
import pytest

import scenarios
from procs import CRANFIELD_DEV, model_overrides, process_env, taskvec_ir_command
from wandb_records import run_contents

COMPLETE, FAIL, RUNNING = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.FAIL,
    optuna.trial.TrialState.RUNNING,
)


def trial_dirs(sweep_dir):
    return sorted(sweep_dir.glob("trial_*"), key=lambda p: int(p.name.split("_")[1]))


@pytest.fixture(scope="module")
def resumed(overnight):
    """The second run of the overnight sweep (same command) finished."""
    assert overnight["resumed"]["returncode"] == 0, overnight["resumed"]["output"][-4000:]


def test_the_injected_kill_killed_the_sweeper_mid_scoring(overnight):
    killed = overnight["killed"]
    assert killed["returncode"] == -signal.SIGKILL, killed["output"][-3000:]
    assert "fault injection: SIGKILL" in killed["output"]
    assert killed["states"] == {0: COMPLETE, 1: FAIL, 2: FAIL, 3: RUNNING}


def test_out_of_memory_and_nan_trials_are_recorded_as_failed_and_the_sweep_goes_on(overnight):
    output, sweep_dir = overnight["killed"]["output"], overnight["dir"]
    assert "Trial 1 failed" in output and "CUDA out of memory" in output
    assert "Trial 2 failed" in output and "non-finite scores" in output
    for number in (1, 2):
        trial = sweep_dir / f"trial_{number}"
        assert not (trial / "metrics.json").exists() and not (trial / "objective.json").exists()
        assert run_contents(trial)["exit_code"] == 1  # the W&B run is marked failed
    assert (sweep_dir / "trial_3").is_dir()  # the sweep went on after two failures


def test_a_trial_killed_mid_scoring_is_failed_on_resume_and_never_looks_complete(overnight, resumed):
    sweep_dir, before = overnight["dir"], overnight["killed"]["files"]
    assert overnight["states"][3] == FAIL
    killed = sweep_dir / "trial_3"
    partial = {name for name in before if name.startswith("trial_3/")}
    assert "trial_3/runs/dev.bm25.trec" in partial  # written before the model was killed mid-scoring
    assert not {"trial_3/metrics.json", "trial_3/objective.json"} & partial
    assert not (killed / "metrics.json").exists()
    assert run_contents(killed)["exit_code"] is None  # no exit record: W&B shows it crashed
    # Resuming left the killed trial's outputs as they were, for a post-mortem (W&B's own files aside: its
    # service process may still flush them after the kill).
    kept = {name for name in partial if not name.startswith("trial_3/wandb/")}
    assert kept and {name: value for name, value in scenarios.snapshot(sweep_dir).items() if name in kept} == {
        name: before[name] for name in kept
    }


def test_resume_runs_only_the_missing_trials_and_reruns_nothing_complete(overnight, resumed):
    sweep_dir, before = overnight["dir"], overnight["killed"]["files"]
    assert "1 of 4 trials complete" in overnight["resumed"]["output"]
    assert overnight["states"] == {0: COMPLETE, 1: FAIL, 2: FAIL, 3: FAIL, 4: COMPLETE, 5: COMPLETE, 6: COMPLETE}
    assert overnight["results"]["n_complete"] == 4 and overnight["results"]["n_failed"] == 3
    after = scenarios.snapshot(sweep_dir)
    assert {n: v for n, v in after.items() if n.startswith("trial_0/")} == {
        n: v for n, v in before.items() if n.startswith("trial_0/")
    }  # trial 0 untouched, not rerun
    for trial in trial_dirs(sweep_dir):
        complete = overnight["states"][int(trial.name.split("_")[1])] == COMPLETE
        assert (trial / "metrics.json").exists() == complete, trial.name
    best = overnight["results"]["best_value"]
    values = [
        json.loads((t / "objective.json").read_text())["objective"]
        for t in trial_dirs(sweep_dir)
        if (t / "metrics.json").exists()
    ]
    assert best == pytest.approx(max(values))


def test_a_killed_process_leaves_no_half_written_cache_entry(overnight):
    paths = overnight["killed"]["cache_files"]  # relative to the cache: <kind>/<key>.json, task_vector/<key>/...
    assert {path.split("/")[0] for path in paths} >= {"bm25", "scores", "task_vector"}
    # No staging left; the lock files of folder entries (.locks/) stay by design.
    staging = [p for p in paths if p.endswith(".tmp") or ("/." in f"/{p}" and not p.startswith(".locks/"))]
    assert not staging, paths


def test_trials_log_the_seeds_of_their_random_steps(overnight, resumed):
    trial = overnight["dir"] / "trial_4"
    seeds = {"dataset.splits.dev.seed": 1, "hydra.sweeper.sampler.seed": 42, "sampler_trial": 46}
    assert run_contents(trial)["config"]["seeds"] == seeds
    log = (trial / "app.log").read_text()
    assert f"Random seeds: {seeds}" in log and "sampled with seed 1 (dataset.splits.dev.seed)" in log


# -- parallel trials: a worker process killed ------------------------------------------------------------------------
def test_a_trial_worker_killed_mid_scoring_fails_that_trial_and_the_sweep_goes_on(worker_killed):
    # needs wiring: ResumableOptunaSweeper.sweep must record the trials of a launch that raised (joblib's
    # TerminatedWorkerError, submitit's UncompletedJobError) as failed and go on, instead of ending the sweep.
    assert "fault injection: SIGKILL" in worker_killed["output"]
    assert worker_killed["states"][0] == FAIL and not (worker_killed["dir"] / "trial_0" / "metrics.json").exists()
    assert worker_killed["returncode"] == 0, worker_killed["output"][-3000:]
    assert worker_killed["states"] == {0: FAIL, 1: COMPLETE}
    assert (worker_killed["dir"] / "trial_1" / "metrics.json").is_file()


# -- a sweeper lost on another machine ---------------------------------------------------------------------------------
def can_rename_host() -> bool:
    """Whether this process may give a child a host name of its own (a UTS namespace: root on Linux)."""
    return shutil.which("unshare") is not None and subprocess.run(["unshare", "--uts", "true"]).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not can_rename_host(), reason="a sweeper on another host name needs unshare --uts (root)")
def test_a_sweeper_lost_on_another_host_is_replaced_by_the_live_one(triple, mirror_dir, tmp_path):
    """Two sweepers share a sqlite study; the one on another host (its own host name) hangs in trial 0 and is
    SIGKILLed: the live one fails trial 0 once its heartbeats stop and runs it again."""
    interval, grace = 1, 5
    overrides = [
        "sweep=alpha",
        *CRANFIELD_DEV,
        "retriever.top_k=10",
        f"cache.dir={tmp_path / 'cache'}",
        *model_overrides(triple),
        "hydra.sweeper.n_trials=2",
        f"hydra.sweeper.storage=sqlite:///{tmp_path / 'study.db'}",
        "hydra.sweeper.study_name=shared",
        f"hydra.sweeper.heartbeat_interval={interval}",
        f"hydra.sweeper.grace_period={grace}",
        "sweep.final_evaluation=false",
    ]
    lost_log, live_log = tmp_path / "lost.log", tmp_path / "live.log"
    with open(lost_log, "w") as out:
        lost = subprocess.Popen(
            ["unshare", "--uts", "sh", "-c", 'hostname node-lost && exec "$@"', "sh"]
            + taskvec_ir_command(tmp_path / "lost", overrides, multirun=True),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=process_env(mirror_dir, faults="0:hang"),
        )
    try:
        wait_for(lambda: "hangs" in lost_log.read_text(), 300, "trial 0 to hang")
        with open(live_log, "w") as out:
            live = subprocess.Popen(
                taskvec_ir_command(tmp_path / "live", overrides, multirun=True),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=process_env(mirror_dir),
            )
        wait_for(lambda: "Waiting for 1 trials running" in live_log.read_text(), 300, "trial 1 to end")
        time.sleep(grace + 2 * interval)  # the lost sweeper's heartbeats keep its trial while it lives
        study = optuna.load_study(study_name="shared", storage=f"sqlite:///{tmp_path / 'study.db'}")
        assert study.trials[0].state == RUNNING
    finally:
        lost.kill()
        lost.wait()
    # The live sweeper looks every 5 s (WAIT_S) while it waits.
    wait_for(lambda: study.get_trials()[0].state == FAIL, grace + interval + 5 + 5, "trial 0 to be failed")
    live.wait(timeout=300)
    output = live_log.read_text()
    assert live.returncode == 0, output[-3000:]
    assert "Trial 0 failed: its sweeper (node-lost:" in output
    complete = study.get_trials(states=(COMPLETE,))
    assert len(complete) == 2 and not study.get_trials(states=(RUNNING,))
    (again,) = [t for t in complete if t.system_attrs.get("failed_trial") == 0]
    assert (
        again.params == study.trials[0].params
        and (tmp_path / "live" / f"trial_{again.number}" / "metrics.json").is_file()
    )


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.5)
