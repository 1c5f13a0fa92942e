"""The final evaluation's claim, on a real sqlite study: one sweeper makes it, a gone claimer's is taken over, and a
study whose best trial changed is evaluated again; and the overrides of its job."""

import socket

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from taskvec_ir.runs.compose import compose
from taskvec_ir.runs.sweeping.final_evaluation import claim_final_evaluation, final_overrides
from taskvec_ir.runs.sweeping.recovery import Heartbeats
from taskvec_ir.runs.sweeping.trials import WORKER

STATES = optuna.trial.TrialState


@pytest.fixture
def sweep(tmp_path):
    heartbeats = Heartbeats(f"sqlite:///{tmp_path / 'study.db'}", interval=1, grace_period=60)
    return optuna.create_study(storage=heartbeats.storage, study_name="s", direction="maximize"), heartbeats


def test_the_final_evaluation_is_claimed_by_one_sweeper(sweep, dead_pid, tmp_path):
    study, heartbeats = sweep
    claims, trial = claim_final_evaluation(study, heartbeats, tmp_path, best=3)
    assert claims.study_name == "s:final:3" and trial.number == 0
    assert claims.trials[0].user_attrs == {"worker": WORKER, "job_dir": str((tmp_path / "final").resolve())}
    # Another sweeper comes while it is being made: its own claim is withdrawn.
    assert claim_final_evaluation(study, heartbeats, tmp_path, best=3) is None
    assert [t.state for t in claims.get_trials()] == [STATES.RUNNING, STATES.PRUNED]
    # Its sweeper gone (a process of this host that died, before final/ was written): the next one takes it over.
    trial.set_user_attr("worker", f"{socket.gethostname()}:{dead_pid}")
    claims, again = claim_final_evaluation(study, heartbeats, tmp_path, best=3)
    assert again.number == 2 and claims.trials[0].state == STATES.FAIL
    claims.tell(again, 0.7)  # made
    assert claim_final_evaluation(study, heartbeats, tmp_path, best=3) is None
    assert len(claims.get_trials()) == 3  # no claim asked once it was made
    # Resumed with more trials, the study has another best trial: evaluated again.
    assert claim_final_evaluation(study, heartbeats, tmp_path, best=5) is not None


def test_a_claim_asked_first_wins_though_not_yet_named(sweep, tmp_path):
    """Two sweepers claiming at once: the storage numbers their claims, and the lower one wins even before its
    sweeper has written its name into it."""
    study, heartbeats = sweep
    claims = optuna.create_study(storage=heartbeats.storage, study_name="s:final:1", direction="maximize")
    rival = claims.ask()
    assert claim_final_evaluation(study, heartbeats, tmp_path, best=1) is None
    assert [t.state for t in claims.get_trials()] == [STATES.RUNNING, STATES.PRUNED]
    assert claims.trials[rival.number].state == STATES.RUNNING


def test_the_final_job_evaluates_the_best_setting_on_test_beside_every_baseline():
    bi_encoder = compose(["sweep=alpha", "model=minilm_demo"])
    overrides = final_overrides(bi_encoder, {"best_lam": 0.35})
    assert overrides == [
        f"split={bi_encoder.dataset.test_split}",
        "systems=[bm25,ir_model,alpha_one,domain_model,task_arithmetic]",
        "lam.value=0.35",
        "trial=null",  # the job's kind, final, from sweep.final (run_identity.run_kind)
    ]
    monot5 = final_overrides(compose(["sweep=alpha", "model=monot5_base"]), {"best_lam": None})
    assert "systems=[bm25,ir_model,alpha_one,task_arithmetic]" in monot5  # ΘD alone: bi-encoders only
    assert "lam.value=null" in monot5  # retriever=dense: no λ ran
    assert OverridesParser.create().parse_overrides(overrides + monot5)
