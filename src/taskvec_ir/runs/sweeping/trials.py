"""A study's trials as the sweepers share them: which hold a place in its target, the claim of new ones, how a job's
result is told, and the best trial (by the tie rule of a selection)."""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import socket
from collections.abc import Callable
from pathlib import Path

import optuna
from hydra.core.utils import JobStatus
from omegaconf import OmegaConf

from taskvec_ir.errors import UserError
from taskvec_ir.pipeline.selection import tie_rule
from taskvec_ir.runs.sweeping import pareto
from taskvec_ir.runs.sweeping.study_storage import retry
from taskvec_ir.storage.outputs import atomic_path, redact_url

log = logging.getLogger(__name__)
STATES = optuna.trial.TrialState
WORKER = f"{socket.gethostname()}:{os.getpid()}"  # who runs a trial: see recovery.settle_abandoned_trials
# A sweeper claims a trial milliseconds after asking for it: one still unclaimed a minute later never will be.
CLAIM_WINDOW_S = 60


def unclaimed_too_long(trial: optuna.trial.FrozenTrial, now: datetime.datetime) -> bool:
    """Whether ``trial`` runs unclaimed a minute after it was asked: its sweeper died before it could claim it."""
    return (
        trial.state == STATES.RUNNING
        and "worker" not in trial.user_attrs
        and (now - trial.datetime_start).total_seconds() > CLAIM_WINDOW_S
    )


def taken(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The trials that hold a place in the study's target, by number: complete ones and running ones, but those
    left unclaimed too long (``unclaimed_too_long``): they will never run. One just asked holds its place, as its
    sweeper is about to claim it."""
    now = datetime.datetime.now()
    trials = study.get_trials(deepcopy=False, states=(STATES.COMPLETE, STATES.RUNNING))
    return sorted((t for t in trials if not unclaimed_too_long(t, now)), key=lambda t: t.number)


def claim(study: optuna.Study, heartbeats, job_dir: Callable[[int], Path], count: int, target: int) -> list:
    """Up to ``count`` new trials of ``study`` for this sweeper, of those within its first ``target`` places
    (``taken``). Each is asked (a new trial, or one to run again) and claimed at once: its first heartbeat
    (``recovery.Heartbeats``), this sweeper's name and its job dir (``job_dir(number)``). The storage numbers trials
    atomically, so of sweepers claiming at once the lowest numbers win; a trial that others' claims left beyond the
    target is pruned before it runs. Used for the trials (``target``: ``n_trials``) and for the final evaluation
    (one place: ``final_evaluation.claim_final_evaluation``)."""
    asked = [retry(_ask, study, heartbeats, job_dir) for _ in range(count)]
    return retry(_within_target, study, asked, target)


def _ask(study: optuna.Study, heartbeats, job_dir: Callable[[int], Path]) -> optuna.Trial:
    trial = study.ask()
    heartbeats.beat(study, [trial], settle=False)  # Optuna never finds a trial stale before its first heartbeat
    trial.set_user_attr("worker", WORKER)
    trial.set_user_attr("job_dir", str(job_dir(trial.number).resolve()))
    return trial


def _within_target(study: optuna.Study, trials: list, target: int) -> list:
    keep = {t.number for t in taken(study)[:target]}
    for trial in trials:
        if trial.number not in keep:
            study.tell(trial, state=STATES.PRUNED, skip_if_finished=True)
    return [trial for trial in trials if trial.number in keep]


def count(study: optuna.Study, *states) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def fail(study: optuna.Study, trials: list) -> None:
    """Record ``trials`` as failed, those not told already."""
    for trial in trials:
        study.tell(trial, state=STATES.FAIL, skip_if_finished=True)


def trial_values(study: optuna.Study, result) -> list[float] | None:
    """The values a job's result (its return value, or its ``objective.json``) gives ``study``: its objective, and
    in a Pareto study (``pareto.is_pareto``) its retention too; None unless each is there and finite."""
    keys = ("objective", "retention")[: len(study.directions)]
    values = [result.get(key) if isinstance(result, dict) else None for key in keys]
    return values if all(isinstance(v, int | float) and math.isfinite(v) for v in values) else None


def record(study: optuna.Study, trial: optuna.Trial, result) -> bool:
    """Tell the study how a trial ended (``result``: the launcher's ``JobReturn``); True when it completed with a
    finite objective (and retention, in a Pareto study)."""
    try:
        value = result.return_value  # raises the job's exception when it failed
        values = trial_values(study, value)
        problem = f"objective {value!r}"
    except Exception as error:  # noqa: BLE001 - any failure of the job fails the trial
        values, problem = None, f"{type(error).__name__}: {error}"
        bug = error if not isinstance(error, UserError) else None  # a bug's traceback stays in the log
    else:
        bug = None
    if result.status != JobStatus.COMPLETED or values is None:
        log.warning("Trial %d failed: %s", trial.number, problem, exc_info=bug)
        study.tell(trial, state=STATES.FAIL, skip_if_finished=True)
        return False
    trial.set_user_attr("lam", value["lam"])
    if result.hydra_cfg is not None:  # where the job wrote (the working dir is the sweeper's: jobs do not chdir)
        trial.set_user_attr("job_dir", str(result.hydra_cfg.hydra.runtime.output_dir))
    study.tell(trial, values=values, skip_if_finished=True)
    return True


def finished_job(trial: optuna.trial.FrozenTrial) -> dict | None:
    """A trial's ``objective.json`` (objective, λ) once its job is complete (``metrics.json`` is written last)."""
    job_dir = Path(trial.user_attrs.get("job_dir", "/nonexistent"))
    try:
        if (job_dir / "metrics.json").is_file():
            return json.loads((job_dir / "objective.json").read_text())
    except (OSError, ValueError):
        pass
    return None


def trial_lam(trial: optuna.trial.FrozenTrial) -> float | None:
    """The λ a completed trial used: recorded by its sweeper, or, for a trial settled after its sweeper was
    killed, read from its job's ``objective.json``."""
    if "lam" in trial.user_attrs:
        return trial.user_attrs["lam"]
    finished = finished_job(trial)
    return finished["lam"] if finished else None


def best_trial(study: optuna.Study, retention_bound: float | None = None) -> optuna.trial.FrozenTrial:
    """The completed trial of best objective by a selection's tie rule (``pipeline.selection.tie_rule.best``): of
    equal objectives, the smallest change to ΘT (the least Σ|α| over the searched α keys), then the smallest λ,
    then the α values in ascending order, then the first trial. Optuna's own ``best_trial`` takes the first of the
    tied trials, so which α a sweep reported depended on the order the sampler drew them in.

    In a Pareto study, the same rule over the trials whose retention loss is at most ``retention_bound``
    (``pareto.within_bound``, which refuses where none is)."""
    trials = study.get_trials(deepcopy=False, states=(STATES.COMPLETE,))
    if not trials:
        raise ValueError(f"study {study.study_name}: no trial completed")
    ordered = sorted(trials, key=lambda t: t.number)
    if pareto.is_pareto(study):
        if retention_bound is None:
            raise ValueError(f"study {study.study_name} is a Pareto study: give the retention bound")
        ordered = pareto.within_bound(ordered, retention_bound, study.study_name)
        sign = 1  # the target's measure, maximised (the sweeper checks the directions)
    else:
        sign = 1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1

    def alphas(trial: optuna.trial.FrozenTrial) -> list[float]:
        return [v for k, v in sorted(trial.params.items()) if k.startswith("alpha.") and isinstance(v, int | float)]

    return tie_rule.best((t, sign * t.values[0], alphas(t), trial_lam(t)) for t in ordered)


def completed_trials(study: optuna.Study) -> list[dict]:
    """Each completed trial's number, objective (``value``), λ, parameters and, in a Pareto study, retention."""
    pareto_study = pareto.is_pareto(study)
    return [
        {
            "number": t.number,
            "value": t.values[0],
            "lam": trial_lam(t),
            "params": dict(t.params),
            **({"retention": t.values[1]} if pareto_study else {}),
        }
        for t in study.get_trials(deepcopy=False, states=(STATES.COMPLETE,))
    ]


def write_results(study: optuna.Study, sweep_dir: Path, storage: str | None, retention=None, objective="") -> dict:
    """The study's best setting and trial counts, written to ``optimization_results.yaml`` (its storage without
    a password). A Pareto study (``retention``: the sweep's ``RetentionConfig``) writes its front first
    (``pareto.write_front``), and where no trial stays within the bound, says so there and refuses."""
    results = {
        "name": "optuna",
        "study_name": study.study_name,
        "storage": redact_url(storage),
        "n_complete": count(study, STATES.COMPLETE),
        "n_failed": count(study, STATES.FAIL),
    }
    refused = None
    if pareto.is_pareto(study):
        try:
            best = best_trial(study, retention.bound)
        except UserError as error:
            best, refused = None, error
        front = [t.number for t in pareto.front(study)]
        chosen = None if best is None else best.number
        rows = pareto.trial_rows(completed_trials(study), set(front), retention.bound, chosen)
        pareto.write_front(rows, sweep_dir, objective, retention.dataset.name, retention.bound)
        results.update(pareto_front=front, retention_bound=retention.bound)
        results["refused"] = None if refused is None else str(refused)
        results["best_retention"] = None if best is None else best.values[1]
    else:
        best = best_trial(study)
    keys = ("best_params", "best_value", "best_lam", "best_trial")
    found = (None,) * len(keys) if best is None else (dict(best.params), best.values[0], trial_lam(best), best.number)
    results.update(zip(keys, found, strict=True))
    with atomic_path(sweep_dir / "optimization_results.yaml") as tmp:
        OmegaConf.save(OmegaConf.create(results), tmp)
    if refused is not None:
        raise refused
    log.info("Best: %s = %.4f (trial %d, λ = %s)", best.params, best.values[0], best.number, results["best_lam"])
    return results
