"""A Pareto sweep's front and its rule for the setting evaluated on test, on real (in-memory or sqlite) Optuna
studies of constructed trials whose answers are known: the front against a brute-force dominance check, the bound
rule's choice, its refusal, and the recovery paths of a sweeper that dies, for two objectives."""

import json
import random
import socket
import time

import optuna
import pytest
import yaml
from hydra.core.utils import JobStatus

from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.config.sweep import RetentionConfig
from taskvec_ir.errors import UserError
from taskvec_ir.runs.sweeping import pareto
from taskvec_ir.runs.sweeping.recovery import Heartbeats, settle_abandoned_trials
from taskvec_ir.runs.sweeping.trials import best_trial, claim, record, trial_lam, write_results

STATES = optuna.trial.TrialState
ALPHA = optuna.distributions.FloatDistribution(-1.0, 2.0)


def pareto_study(points, storage=None) -> optuna.Study:
    """A two-objective study (both maximised) whose trial i has α = alphas and values ``points[i]``."""
    study = optuna.create_study(directions=["maximize", "maximize"], storage=storage)
    for alpha, objective, retention in points:
        study.add_trial(
            optuna.trial.create_trial(
                params={"alpha.value": alpha},
                distributions={"alpha.value": ALPHA},
                values=[objective, retention],
                user_attrs={"lam": 0.3},
            )
        )
    return study


def brute_force_front(points) -> set[int]:
    """The indices of ``points`` (α, objective, retention) that no other point dominates (at least as good on both,
    better on one): the definition, pair by pair."""

    def dominates(a, b):
        return a[1] >= b[1] and a[2] >= b[2] and (a[1] > b[1] or a[2] > b[2])

    return {i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)}


# (α, dev objective, retention): a front known by hand.
KNOWN = [
    (0.9, 0.50, -0.030),  # 0: the best dev score, far outside a 0.01 bound: on the front
    (0.6, 0.48, -0.005),  # 1: on the front
    (0.3, 0.45, 0.002),  # 2: on the front
    (0.5, 0.44, -0.004),  # 3: dominated by 1 (and 2)
    (0.0, 0.40, 0.000),  # 4: dominated by 2
    (1.0, 0.50, -0.040),  # 5: dominated by 0 (same dev score, worse retention)
    (0.1, 0.42, 0.010),  # 6: the best retention: on the front
]


def test_the_front_of_constructed_points_is_the_known_one_and_the_brute_force_one():
    study = pareto_study(KNOWN)
    assert [t.number for t in pareto.front(study)] == [0, 1, 2, 6]
    assert brute_force_front(KNOWN) == {0, 1, 2, 6}
    rng = random.Random(7)
    for _ in range(20):  # random clouds with many ties (values on a coarse grid) and duplicates
        points = [
            (rng.random(), rng.choice([0.3, 0.35, 0.4, 0.45]), rng.choice([-0.02, -0.01, 0.0])) for _ in range(25)
        ]
        front = {t.number for t in pareto.front(pareto_study(points))}
        assert front == brute_force_front(points)
        assert front == {t.number for t in pareto_study(points).best_trials}


def test_the_rule_takes_the_best_dev_score_within_the_bound_ties_by_the_tie_rule():
    study = pareto_study(KNOWN)
    assert best_trial(study, 0.01).number == 1  # 0 and 5 lose more than 0.01
    assert best_trial(study, 0.05).number == 0  # 0 and 5 tie at 0.50: the smaller Σ|α|
    assert best_trial(study, 0.0).number == 2  # no loss at all: the best dev score of 2, 4, 6
    tied = pareto_study([(0.7, 0.48, 0.0), (0.6, 0.48, -0.005), (0.2, 0.46, 0.01)])
    # Equal dev scores: the tie rule's smallest change to ΘT, though the other retains more.
    assert best_trial(tied, 0.01).number == 1
    # A loss equal to the bound is within it, though the subtraction that made it is not exact.
    edge = pareto_study([(0.5, 0.6, 0.30 - 0.31), (0.2, 0.5, 0.0)])
    assert -edge.trials[0].values[1] > 0.01
    assert best_trial(edge, 0.01).number == 0
    with pytest.raises(ValueError, match="give the retention bound"):
        best_trial(study)


def test_no_trial_within_the_bound_is_refused_after_the_front_is_written(tmp_path):
    losing = [(0.5, 0.50, -0.030), (0.3, 0.45, -0.004), (0.9, 0.52, -0.050), (0.4, 0.44, -0.006)]
    study = pareto_study(losing)
    retention = RetentionConfig(DatasetConfig(name="cranfield", docs="cranfield", splits={"test": "cranfield"}))
    retention.bound = 0.001
    with pytest.raises(UserError, match=r"sweep.retention.bound: no completed trial .* loses at most 0.001") as error:
        write_results(study, tmp_path, None, retention, "ndcg@10")
    assert "the least loss is 0.004, trial 1" in str(error.value)
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert results["best_trial"] is None and results["refused"] == str(error.value)
    assert results["pareto_front"] == [0, 1, 2] and results["n_complete"] == 4
    rows = (tmp_path / "pareto_front.csv").read_text().splitlines()
    assert rows[0] == ",".join(pareto.COLUMNS) and len(rows) == 5
    flags = {int(r.split(",")[0]): r.split(",")[5:] for r in rows[1:]}
    assert {n for n, f in flags.items() if f[0] == "True"} == brute_force_front(losing) == {0, 1, 2}
    assert all(f[1:] == ["False", "False"] for f in flags.values())  # none within the bound, none chosen
    assert best_trial(study, 0.004).number == 1  # a bound the least loss meets


def test_the_chosen_setting_and_the_front_are_written(tmp_path):
    study = pareto_study(KNOWN)
    retention = RetentionConfig(DatasetConfig(name="cranfield", docs="cranfield", splits={"test": "cranfield"}))
    results = write_results(study, tmp_path, None, retention, "ndcg@10")
    assert results["best_trial"] == 1 and results["best_params"] == {"alpha.value": 0.6}
    assert results["best_value"] == 0.48 and results["best_retention"] == -0.005 and results["best_lam"] == 0.3
    assert results["retention_bound"] == 0.01 and results["refused"] is None
    table = (tmp_path / "pareto_front.md").read_text()
    lines = table.splitlines()
    body = lines[lines.index("| ---: | ---: | ---: | ---: | ---: | :---: |") + 1 :]
    assert [line.split("|")[1].strip(" *") for line in body] == ["6", "2", "1", "0"]  # the front, by α
    assert "| **1** | **0.6** | **0.3** | **0.4800** | **-0.0050** | **yes** |" in table
    assert (tmp_path / "pareto_front.png").read_bytes()[:4] == b"\x89PNG"


class Result:
    """A launcher's JobReturn of a completed job returning ``value``."""

    def __init__(self, value):
        self.status, self.hydra_cfg, self.return_value = JobStatus.COMPLETED, None, value


def test_a_pareto_trial_is_recorded_with_both_values_and_failed_without_its_retention():
    study = optuna.create_study(directions=["maximize", "maximize"])
    complete, partial, infinite = study.ask(), study.ask(), study.ask()
    assert record(study, complete, Result({"objective": 0.5, "retention": -0.01, "lam": 0.2}))
    assert not record(study, partial, Result({"objective": 0.5, "lam": 0.2}))
    assert not record(study, infinite, Result({"objective": 0.5, "retention": float("nan"), "lam": 0.2}))
    trials = study.get_trials()
    assert trials[0].state == STATES.COMPLETE and trials[0].values == [0.5, -0.01] and trial_lam(trials[0]) == 0.2
    assert [t.state for t in trials[1:]] == [STATES.FAIL, STATES.FAIL]


def finish_job(job_dir, result: dict) -> None:
    job_dir.mkdir(exist_ok=True)
    (job_dir / "objective.json").write_text(json.dumps(result))
    (job_dir / "metrics.json").write_text("{}")


def test_a_killed_sweepers_pareto_trials_are_settled_from_their_jobs(no_heartbeats, dead_pid, tmp_path):
    study = optuna.create_study(directions=["maximize", "maximize"])
    finished, old_job = claim(study, no_heartbeats, lambda n: tmp_path / f"trial_{n}", count=2, target=2)
    for trial in (finished, old_job):
        trial.set_user_attr("worker", f"{socket.gethostname()}:{dead_pid}")
    finish_job(tmp_path / f"trial_{finished.number}", {"objective": 0.7, "retention": -0.02, "lam": 0.2})
    finish_job(tmp_path / f"trial_{old_job.number}", {"objective": 0.7, "lam": 0.2})  # no retention: not finished
    settle_abandoned_trials(study)
    first, second = study.get_trials()
    assert first.state == STATES.COMPLETE and first.values == [0.7, -0.02] and trial_lam(first) == 0.2
    assert second.state == STATES.FAIL


def test_a_pareto_trial_without_heartbeats_counts_if_its_job_finished(tmp_path):
    heartbeats = Heartbeats(f"sqlite:///{tmp_path / 'study.db'}", interval=1, grace_period=3)
    study = optuna.create_study(storage=heartbeats.storage, directions=["maximize", "maximize"])
    finished, lost = claim(study, heartbeats, lambda n: tmp_path / f"trial_{n}", count=2, target=10)
    for trial in (finished, lost):
        trial.suggest_float("alpha.value", 0.0, 1.0)
    finish_job(tmp_path / f"trial_{finished.number}", {"objective": 0.6, "retention": 0.01, "lam": 0.1})
    heartbeats.beat(study, [])
    time.sleep(4.5)  # past the grace period: both are stale
    heartbeats.beat(study, [])
    (counted,) = study.get_trials(states=(STATES.COMPLETE,))
    assert counted.values == [0.6, 0.01] and counted.params == finished.params and trial_lam(counted) == 0.1
    (again,) = study.get_trials(states=(STATES.WAITING,))
    assert again.params == study.trials[lost.number].params
    assert [t.number for t in pareto.front(study)] == [counted.number]


def test_a_claim_beyond_a_pareto_studys_target_is_pruned(no_heartbeats, tmp_path):
    study = optuna.create_study(directions=["maximize", "maximize"])
    kept = claim(study, no_heartbeats, lambda n: tmp_path / f"trial_{n}", count=3, target=2)
    assert [t.number for t in kept] == [0, 1]
    assert [t.state for t in study.get_trials()] == [STATES.RUNNING, STATES.RUNNING, STATES.PRUNED]
