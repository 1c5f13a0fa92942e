"""Trials whose sweeper is gone, on real Optuna studies: settled complete when their job finished, failed (and run
again) otherwise; live sweepers' trials left alone. What resume and parallel sweepers rely on, without processes."""

import datetime
import json
import os
import socket
import time

import optuna
import pytest

from taskvec_ir.runs.sweeping.recovery import Heartbeats, settle_abandoned_trials
from taskvec_ir.runs.sweeping.trials import claim, taken, trial_lam

STATES = optuna.trial.TrialState


def finish_job(job_dir, objective: float, lam: float, complete: bool = True) -> None:
    """What a trial's job leaves: ``objective.json``, then ``metrics.json`` last, once it is complete."""
    job_dir.mkdir(exist_ok=True)
    (job_dir / "objective.json").write_text(json.dumps({"objective": objective, "lam": lam}))
    if complete:
        (job_dir / "metrics.json").write_text("{}")


@pytest.fixture
def study(tmp_path):
    return optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", direction="maximize")


def test_a_gone_sweepers_trials_are_settled_complete_if_their_job_finished(no_heartbeats, dead_pid, tmp_path):
    study = optuna.create_study(direction="maximize")
    finished, lost, alive = claim(study, no_heartbeats, lambda n: tmp_path / f"trial_{n}", count=3, target=3)
    for trial in (finished, lost):  # both claimed by a process of this host that is gone
        trial.set_user_attr("worker", f"{socket.gethostname()}:{dead_pid}")
    finish_job(tmp_path / f"trial_{finished.number}", 0.7, 0.2)
    settle_abandoned_trials(study)
    states = {t.number: (t.state, t.value) for t in study.trials}
    assert states[finished.number] == (STATES.COMPLETE, 0.7)
    assert states[lost.number] == (STATES.FAIL, None)
    assert states[alive.number][0] == STATES.RUNNING  # this process is alive: its trial is left alone
    assert trial_lam(study.trials[finished.number]) == 0.2


def test_only_trials_of_gone_sweepers_are_failed(study, dead_pid):
    host = socket.gethostname()
    workers = {"gone": f"{host}:{dead_pid}", "alive": f"{host}:{os.getpid()}", "elsewhere": "other-host:1"}
    trials = {}
    for name, worker in workers.items():
        trials[name] = study.ask()
        trials[name].set_user_attr("worker", worker)
    trials["unclaimed"] = study.ask()  # just asked: its sweeper may still claim it
    abandoned = optuna.trial.create_trial(state=STATES.RUNNING)  # asked two minutes ago, never claimed
    abandoned.datetime_start = datetime.datetime.now() - datetime.timedelta(minutes=2)
    study.add_trial(abandoned)
    trials["abandoned"] = study.trials[-1]
    holding = [trials[n].number for n in ("gone", "alive", "elsewhere", "unclaimed")]
    assert [t.number for t in taken(study)] == holding
    settle_abandoned_trials(study)
    settled = {name: study.get_trials()[trial.number].state.name for name, trial in trials.items()}
    assert settled == {
        "gone": "FAIL",
        "alive": "RUNNING",
        "elsewhere": "RUNNING",
        "unclaimed": "RUNNING",
        "abandoned": "FAIL",
    }


def test_a_finished_job_of_a_killed_sweeper_counts_as_complete(study, dead_pid, tmp_path):
    worker = f"{socket.gethostname()}:{dead_pid}"
    for number, complete in enumerate([True, False]):  # the second was cut short
        trial = study.ask()
        finish_job(tmp_path / f"trial_{number}", [0.61, 0.7][number], [0.4, 0.2][number], complete=complete)
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("job_dir", str(tmp_path / f"trial_{number}"))
    settle_abandoned_trials(study)
    finished, cut_short = study.get_trials()
    assert finished.state.name == "COMPLETE" and finished.value == 0.61 and trial_lam(finished) == 0.4
    assert cut_short.state.name == "FAIL"


def test_trials_without_heartbeats_are_failed_and_run_again_unless_their_job_finished(tmp_path):
    heartbeats = Heartbeats(f"sqlite:///{tmp_path / 'study.db'}", interval=1, grace_period=4)
    study = optuna.create_study(storage=heartbeats.storage, direction="maximize")

    def job_dir(number):
        return tmp_path / f"trial_{number}"

    finished, lost, alive = claim(study, heartbeats, job_dir, count=3, target=10)
    for trial in (finished, lost, alive):
        trial.suggest_float("alpha.value", 0.0, 1.0)
    finish_job(job_dir(finished.number), 0.7, 0.2)
    with heartbeats.running(study, [alive]):
        heartbeats.beat(study, [alive])  # within the grace period since this sweeper first reached the storage
        assert all(t.state == STATES.RUNNING for t in study.trials)
        time.sleep(5.5)  # past the grace period: the two trials without heartbeats are stale
        heartbeats.beat(study, [alive])
    trials = study.get_trials()
    assert [t.state for t in trials[:3]] == [STATES.FAIL, STATES.FAIL, STATES.RUNNING]
    (counted,) = study.get_trials(states=(STATES.COMPLETE,))
    assert counted.value == 0.7 and counted.params == finished.params and trial_lam(counted) == 0.2
    (again,) = study.get_trials(states=(STATES.WAITING,))
    assert again.params == trials[lost.number].params
    (asked,) = claim(study, heartbeats, job_dir, count=1, target=10)
    assert asked.number == again.number  # the next trial asked for
