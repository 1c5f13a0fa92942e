"""The sweeper's bookkeeping on a real (in-memory) Optuna study: which trials count, which are settled and how,
and the overrides it hands its jobs. The sweeps themselves run in tests/runs/test_sweeping.py."""

import json
import socket
import subprocess
import sys
import time

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus

from taskvec_ir.errors import UserError
from taskvec_ir.runs import sweeping

STATES = optuna.trial.TrialState
NO_HEARTBEATS = sweeping.Heartbeats(None, 1, 2)  # an in-memory study: one process, nobody else to watch


@pytest.fixture
def study():
    return optuna.create_study(direction="maximize")


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_claimed_or_complete_trials_count_and_surplus_ones_are_pruned(study, tmp_path):
    done = sweeping._ask(study, tmp_path, NO_HEARTBEATS)
    study.tell(done, 0.5)
    claimed = sweeping._ask(study, tmp_path, NO_HEARTBEATS)
    study.ask()  # asked by a sweeper killed before it claimed it: it will never run
    extra = sweeping._ask(study, tmp_path, NO_HEARTBEATS)
    assert [t.number for t in sweeping._taken(study)] == [done.number, claimed.number, extra.number]
    kept = sweeping._within_target(study, [claimed, extra], target=2)
    assert kept == [claimed]
    assert study.trials[extra.number].state == STATES.PRUNED
    assert study.trials[claimed.number].user_attrs["job_dir"] == str((tmp_path / f"trial_{claimed.number}").resolve())


def test_a_gone_sweepers_trials_are_settled_complete_if_their_job_finished(study, tmp_path):
    finished, lost, alive = (sweeping._ask(study, tmp_path, NO_HEARTBEATS) for _ in range(3))
    for trial in (finished, lost):  # both claimed by a process of this host that is gone
        trial.set_user_attr("worker", f"{socket.gethostname()}:{dead_pid()}")
    job_dir = tmp_path / f"trial_{finished.number}"
    job_dir.mkdir()
    (job_dir / "objective.json").write_text(json.dumps({"objective": 0.7, "lam": 0.2}))
    (job_dir / "metrics.json").write_text("{}")  # written last: the job is complete
    sweeping._settle_abandoned_trials(study)
    states = {t.number: (t.state, t.value) for t in study.trials}
    assert states[finished.number] == (STATES.COMPLETE, 0.7)
    assert states[lost.number] == (STATES.FAIL, None)
    assert states[alive.number][0] == STATES.RUNNING  # this process is alive: its trial is left alone
    assert sweeping.trial_lam(study.trials[finished.number]) == 0.2


def test_trials_without_heartbeats_are_failed_and_run_again_unless_their_job_finished(tmp_path):
    heartbeats = sweeping.Heartbeats(f"sqlite:///{tmp_path / 'study.db'}", interval=1, grace_period=4)
    study = optuna.create_study(storage=heartbeats.storage, direction="maximize")
    finished, lost, alive = (sweeping._ask(study, tmp_path, heartbeats) for _ in range(3))
    for trial in (finished, lost, alive):
        trial.suggest_float("alpha.value", 0.0, 1.0)
    job_dir = tmp_path / f"trial_{finished.number}"
    job_dir.mkdir()
    (job_dir / "objective.json").write_text(json.dumps({"objective": 0.7, "lam": 0.2}))
    (job_dir / "metrics.json").write_text("{}")
    with heartbeats.running(study, [alive]):
        heartbeats.beat(study, [alive])  # within the grace period since this sweeper first reached the storage
        assert all(t.state == STATES.RUNNING for t in study.trials)
        time.sleep(5.5)  # past the grace period: the two trials without heartbeats are stale
        heartbeats.beat(study, [alive])
    trials = study.get_trials()
    assert [t.state for t in trials[:3]] == [STATES.FAIL, STATES.FAIL, STATES.RUNNING]
    (counted,) = study.get_trials(states=(STATES.COMPLETE,))
    assert counted.value == 0.7 and counted.params == finished.params and sweeping.trial_lam(counted) == 0.2
    (again,) = study.get_trials(states=(STATES.WAITING,))
    assert again.params == trials[lost.number].params
    assert sweeping._ask(study, tmp_path, heartbeats).number == again.number  # the next trial asked for


def test_a_trials_result_is_recorded_with_its_objective_and_lambda(study, tmp_path):
    trial = study.ask()

    class Result:
        def __init__(self, value=None, error=None):
            self.status = JobStatus.FAILED if error else JobStatus.COMPLETED
            self.hydra_cfg, self._value, self._error = None, value, error

        @property
        def return_value(self):
            if self._error:
                raise self._error
            return self._value

    assert sweeping._record(study, trial, Result({"objective": 0.61, "lam": 0.3}))
    assert study.trials[trial.number].value == 0.61 and study.trials[trial.number].user_attrs["lam"] == 0.3
    for bad in (Result({"objective": float("nan"), "lam": 0.3}), Result(error=UserError("dataset.name: wrong"))):
        other = study.ask()
        assert not sweeping._record(study, other, bad)
        assert study.trials[other.number].state == STATES.FAIL


@pytest.mark.parametrize(
    "value", [{"a": [1, "x'y", None]}, [0.5, True, "plain"], "back\\slash", r"\.layer\.1\.", "end\\", 3, None, 0.25]
)
def test_values_are_written_in_hydras_grammar_and_read_back_equal(value):
    (override,) = OverridesParser.create().parse_overrides([f"key={sweeping._hydra_value(value)}"])
    assert override.value() == value


def test_a_relative_sqlite_storage_is_made_absolute_and_others_are_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sweeping._absolute_storage("sqlite:///studies/a.db") == f"sqlite:///{tmp_path}/studies/a.db"
    assert (tmp_path / "studies").is_dir()
    for kept in ("sqlite:////abs/a.db", "postgresql://u@localhost/db", None):
        assert sweeping._absolute_storage(kept) == kept


def test_only_a_launchers_lost_job_counts_as_lost():
    from joblib.externals.loky.process_executor import TerminatedWorkerError
    from submitit.core.utils import FailedJobError

    lost = sweeping._job_lost_errors()
    assert issubclass(FailedJobError, lost) and issubclass(TerminatedWorkerError, lost)
    assert not issubclass(ValueError, lost) and not issubclass(KeyError, lost)  # a bug keeps its traceback


def test_a_grid_is_told_to_its_end_without_optuna_stopping_the_study():
    """GridSampler stops a study through Study.stop once its grid is covered, which raises under ask and tell."""
    study = optuna.create_study(sampler=sweeping.AskTellGridSampler({"a": [0.0, 0.5, 1.0]}), direction="maximize")
    for _ in range(3):
        trial = study.ask()
        study.tell(trial, trial.suggest_float("a", 0.0, 1.0))
    assert sorted(t.params["a"] for t in study.trials) == [0.0, 0.5, 1.0]
    assert {t.state for t in study.trials} == {STATES.COMPLETE}


def test_tied_trials_go_to_the_smallest_change_to_theta_t_then_the_smallest_lambda(study):
    alpha = optuna.distributions.FloatDistribution(0.0, 1.0)

    def add(value, alpha_value, lam):
        trial = optuna.trial.create_trial(
            params={"alpha.value": alpha_value},
            distributions={"alpha.value": alpha},
            value=value,
            user_attrs={"lam": lam},
        )
        study.add_trial(trial)

    add(0.70, 0.37, 0.75)  # first of the tied trials: Optuna's own best_trial
    add(0.70, 0.11, 0.75)
    add(0.69, 0.00, 0.75)  # smaller α, lower value: not a tie
    add(0.70, 0.11, 0.60)  # same α, smaller λ
    assert study.best_trial.number == 0
    assert sweeping.best_trial(study).number == 3
    with pytest.raises(ValueError, match="no trial completed"):
        sweeping.best_trial(optuna.create_study())
