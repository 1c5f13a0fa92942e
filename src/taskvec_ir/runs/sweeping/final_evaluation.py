"""The final evaluation of a sweep: its best setting once on the test split beside the baselines, as one more job,
run by exactly one of the study's sweepers (claimed through the storage, docs/sweeps.md)."""

from __future__ import annotations

import logging
from pathlib import Path

import optuna

from taskvec_ir.config.composed import Config
from taskvec_ir.config.systems import DOMAIN_MODEL, PAPER_ORDER
from taskvec_ir.runs.sweeping.launchers import launch
from taskvec_ir.runs.sweeping.overrides import hydra_value
from taskvec_ir.runs.sweeping.recovery import Heartbeats, settle_abandoned_trials
from taskvec_ir.runs.sweeping.study_storage import open_study, retry
from taskvec_ir.runs.sweeping.trials import STATES, claim, record, taken

log = logging.getLogger(__name__)


def final_overrides(cfg: Config, best: dict) -> list[str]:
    """The best trial's setting on the test split, beside every baseline the family allows."""
    systems = list(PAPER_ORDER)
    if cfg.model.kind == "bi_encoder":
        systems.insert(3, DOMAIN_MODEL)
    return [
        f"split={cfg.dataset.test_split}",
        f"systems=[{','.join(systems)}]",
        f"lam.value={hydra_value(best['best_lam'])}",  # null where no λ ran (retriever=dense)
        "trial=null",
    ]


def run_final_evaluation(
    study: optuna.Study,
    heartbeats: Heartbeats,
    launcher,
    sweep_dir: Path,
    overrides: list[str],
    job_idx: int,
    best: int,
) -> int | None:
    """The best setting (of trial number ``best``) evaluated once on test, as one more job through ``launcher``
    (the trials': on SLURM, a job with their resources), if this sweeper claims it first; the number of the trial it
    evaluated (None: it did not claim it)."""
    claimed = claim_final_evaluation(study, heartbeats, sweep_dir, best)
    if claimed is None:
        return None
    claims, trial = claimed
    with heartbeats.running(claims, [trial]):
        (result,) = launch(launcher, [(*overrides, "sweep.final=true", "hydra.sweep.subdir=final")], job_idx)
    if not retry(record, claims, trial, result):
        raise RuntimeError(
            f"the final evaluation failed: see {sweep_dir / 'final' / 'app.log'}; rerun the same "
            "command to run it again"
        )
    return best


def claim_final_evaluation(study: optuna.Study, heartbeats: Heartbeats, sweep_dir: Path, best: int):
    """This sweeper's claim on the final evaluation of ``study``'s best trial (number ``best``), as ``(claims,
    trial)``, or None when another sweeper made it or is making it (or this one did, in an earlier run).

    Claims are the trials of a second study, ``<study>:final:<best trial>``, in the same storage, with one place
    (``trials.claim``). A claim whose sweeper is gone is settled first (complete if its ``final/`` was written,
    failed otherwise), so that a rerun takes it over; a study whose best trial changed (it was resumed with more
    trials) is evaluated again."""
    claims = retry(open_study, f"{study.study_name}:final:{best}", heartbeats.storage, None, "maximize")
    retry(settle_abandoned_trials, claims)
    retry(heartbeats.beat, claims, [])
    done = retry(claims.get_trials, deepcopy=False, states=(STATES.COMPLETE,))
    if done:
        log.info(
            "The final evaluation of study %s (best trial %d) was made by %s into %s",
            study.study_name,
            best,
            done[0].user_attrs.get("worker"),
            done[0].user_attrs.get("job_dir"),
        )
        return None
    mine = claim(claims, heartbeats, lambda _: sweep_dir / "final", count=1, target=1)
    if not mine:
        holders = retry(taken, claims)
        log.info(
            "The final evaluation of study %s is being made by another sweeper (%s)",
            study.study_name,
            holders[0].user_attrs.get("worker", "just starting") if holders else "just finished",
        )
        return None
    return claims, mine[0]
