"""A study's trials as sweepers share them, on a real (in-memory) Optuna study: which hold a place, which a claim
keeps, how a job's result is told, and the best trial."""

import datetime

import optuna
import pytest
from hydra.core.utils import JobStatus

from taskvec_ir.errors import UserError
from taskvec_ir.runs.sweeping.trials import WORKER, best_trial, claim, record, taken, trial_lam

STATES = optuna.trial.TrialState


@pytest.fixture
def study():
    return optuna.create_study(direction="maximize")


def asked_minutes_ago(study: optuna.Study, minutes: float) -> optuna.trial.FrozenTrial:
    """A running trial nobody claimed, asked ``minutes`` ago."""
    trial = optuna.trial.create_trial(state=STATES.RUNNING)
    trial.datetime_start = datetime.datetime.now() - datetime.timedelta(minutes=minutes)
    study.add_trial(trial)
    return study.trials[-1]


def test_a_claim_keeps_the_trials_within_the_target_and_prunes_the_surplus(study, no_heartbeats, tmp_path):
    def job_dir(number):
        return tmp_path / f"trial_{number}"

    (done,) = claim(study, no_heartbeats, job_dir, count=1, target=3)
    study.tell(done, 0.5)
    abandoned = asked_minutes_ago(study, 2)  # its sweeper was killed before it claimed it: it will never run
    asked = study.ask()  # another sweeper's, about to be claimed: it holds its place
    kept = claim(study, no_heartbeats, job_dir, count=2, target=3)
    assert [t.number for t in kept] == [asked.number + 1]
    surplus = asked.number + 2
    assert study.trials[surplus].state == STATES.PRUNED
    assert [t.number for t in taken(study)] == [done.number, asked.number, kept[0].number]
    assert abandoned.number not in {t.number for t in taken(study)}
    assert study.trials[kept[0].number].user_attrs == {
        "worker": WORKER,
        "job_dir": str((tmp_path / f"trial_{kept[0].number}").resolve()),
    }
    assert claim(study, no_heartbeats, job_dir, count=1, target=3) == []  # the target is taken
    assert study.trials[-1].state == STATES.PRUNED


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

    assert record(study, trial, Result({"objective": 0.61, "lam": 0.3}))
    assert study.trials[trial.number].value == 0.61 and study.trials[trial.number].user_attrs["lam"] == 0.3
    assert trial_lam(study.trials[trial.number]) == 0.3
    for bad in (Result({"objective": float("nan"), "lam": 0.3}), Result(error=UserError("dataset.name: wrong"))):
        other = study.ask()
        assert not record(study, other, bad)
        assert study.trials[other.number].state == STATES.FAIL


def add_trial(study, value, alphas, lam):
    """A completed trial of ``value`` at ``alphas`` (key -> α) that chose ``lam``."""
    alpha = optuna.distributions.FloatDistribution(-1.0, 1.0)
    study.add_trial(
        optuna.trial.create_trial(
            params=alphas, distributions=dict.fromkeys(alphas, alpha), value=value, user_attrs={"lam": lam}
        )
    )


def test_tied_trials_go_to_the_smallest_change_to_theta_t_then_the_smallest_lambda(study):
    add_trial(study, 0.70, {"alpha.value": 0.37}, 0.75)  # first of the tied trials: Optuna's own best_trial
    add_trial(study, 0.70, {"alpha.value": 0.11}, 0.75)
    add_trial(study, 0.69, {"alpha.value": 0.00}, 0.75)  # smaller α, lower value: not a tie
    add_trial(study, 0.70, {"alpha.value": 0.11}, 0.60)  # same α, smaller λ
    assert study.best_trial.number == 0
    assert best_trial(study).number == 3
    with pytest.raises(ValueError, match="no trial completed"):
        best_trial(optuna.create_study())


def test_a_sweep_breaks_ties_as_a_selection_does(study):
    """Tied at α −0.5, 0 and 0.5: α = 0, as a selection chooses (``test_selection_choice``); between −0.5 and 0.5
    alone, −0.5; values within 1e-12 tie; Σ|α| over every α key counts; a trial of the same setting drawn again
    (grid samplers may) loses to the first."""
    for alpha in (-0.5, 0.5, 0.0):
        add_trial(study, 0.7, {"alpha.value": alpha}, 0.3)
    assert study.trials[best_trial(study).number].params == {"alpha.value": 0.0}
    others = optuna.create_study(direction="maximize")
    add_trial(others, 0.7, {"alpha.value": 0.5}, 0.3)
    add_trial(others, 0.7 - 5e-13, {"alpha.value": -0.5}, 0.3)  # a tie, in the last bits
    assert best_trial(others).number == 1
    add_trial(others, 0.7 + 5e-12, {"alpha.value": 0.9}, 0.3)  # better beyond 1e-12
    assert best_trial(others).number == 2
    joint = optuna.create_study(direction="maximize")
    add_trial(joint, 0.7, {"alpha.value": 0.1, "alpha.extra.x": 0.5}, 0.3)  # Σ|α| 0.6
    add_trial(joint, 0.7, {"alpha.value": 0.5, "alpha.extra.x": 0.0}, 0.3)  # Σ|α| 0.5
    add_trial(joint, 0.7, {"alpha.value": 0.5, "alpha.extra.x": 0.0}, 0.3)  # the same again
    assert best_trial(joint).number == 1
