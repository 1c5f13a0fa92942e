"""Optuna sweeps of α and λ on a tuning split, then one evaluation of the best setting on test.

``ResumableOptunaSweeper`` is hydra-optuna-sweeper's sweeper (same config: sampler, direction, storage,
study_name, n_trials, n_jobs, params) with the loop our users need for long sweeps:
- ``n_trials`` is the study's target: trials already completed in the storage count toward it, so
  running the same command against the same storage resumes and runs only the missing trials; several
  sweeper processes sharing one storage finish the target together;
- each trial's job dir is ``trial_<number>`` (Optuna's trial number), so a resumed or parallel sweep never
  overwrites an earlier trial's outputs;
- a failed trial (an exception, a non-finite objective) is recorded as failed and replaced; the sweep
  stops only when more than ``max_failure_rate`` of ``n_trials`` have failed;
- before any trial: the tuning split must exist (test qrels are never read by a trial); after the last:
  the best setting is evaluated once on the test split beside the baselines (``final/`` in the sweep dir).
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import optuna
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobStatus
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from taskvec_ir.job import USER_ERRORS, JobOutcome, open_experiment, run_job
from taskvec_ir.outputs import redact_url
from taskvec_ir.schema import Config, to_config

log = logging.getLogger(__name__)
_STATES = optuna.trial.TrialState
_WORKER = f"{socket.gethostname()}:{os.getpid()}"  # who runs a trial: see _settle_abandoned_trials


class ResumableOptunaSweeper(OptunaSweeper):
    def setup(self, *, hydra_context, task_function, config) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.hydra_context, self.config = hydra_context, config

    def sweep(self, arguments: list[str]) -> None:
        impl = self.sweeper
        try:  # a wrong id, value or checkpoint fails here once, not in every trial
            _check_tuning_split(self.config)
            job_cfg = _job_config(self.config)
            open_experiment(job_cfg)
        except USER_ERRORS as error:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            log.error("%s", error)
            sys.exit(f"taskvec-ir: {error}")
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)

        impl._process_searchspace_config()
        distributions, fixed = create_params_from_overrides(impl._parse_sweeper_params_config() + list(arguments))
        for name in fixed:
            distributions.pop(name, None)
        target, sampler = impl.n_trials, impl.sampler
        seed = self.config.hydra.sweeper.sampler.get("seed")
        is_grid = getattr(sampler, "func", None) is optuna.samplers.GridSampler
        if is_grid:
            grid = {name: impl._to_grid_sampler_choices(d) for name, d in distributions.items()}
            sampler = sampler(grid)
            target = min(target, math.prod(len(choices) for choices in grid.values()))
        study = _open_study(impl.study_name, _absolute_storage(impl.storage), sampler, impl._get_directions())
        _settle_abandoned_trials(study)
        log.info(
            "Study %s in %s: %d of %d trials complete",
            study.study_name,
            redact_url(impl.storage),
            _count(study, _STATES.COMPLETE),
            target,
        )

        failed, job_idx = 0, 0
        while (missing := target - len(_taken(study))) > 0:
            trials = _within_target(study, [_ask(study, sweep_dir) for _ in range(min(impl.n_jobs, missing))], target)
            if not trials:
                break
            overrides = []
            for trial in trials:
                if seed is not None and not is_grid:
                    # One seed per trial number: a resumed sweep or a parallel worker continues the
                    # sequence instead of replaying the first trials' parameters.
                    study.sampler = instantiate(self.config.hydra.sweeper.sampler, seed=seed + trial.number)
                (trial_overrides,) = impl._configure_trials([trial], distributions, fixed)
                overrides.append((*trial_overrides, f"trial={trial.number}"))
            try:
                returns = impl.launcher.launch(overrides, initial_job_idx=job_idx)
            except Exception as error:  # e.g. a killed worker process: its batch failed, the sweep goes on
                log.warning("Trials %s failed in the launcher: %s", [t.number for t in trials], error)
                for trial in trials:
                    study.tell(trial, state=_STATES.FAIL)
                returns, failed, job_idx = [], failed + len(trials), job_idx + len(trials)
            except BaseException:  # interrupted (Ctrl-C): these trials will not finish
                for trial in trials:
                    study.tell(trial, state=_STATES.FAIL)
                raise
            job_idx += len(returns)
            for trial, result in zip(trials, returns, strict=True):
                failed += not _record(study, trial, result)
            if failed > impl.max_failure_rate * target:
                raise RuntimeError(
                    f"{failed} trials failed, more than hydra.sweeper.max_failure_rate="
                    f"{impl.max_failure_rate} of {target}: see the failed trials' logs in {sweep_dir}"
                )

        best = _write_results(study, sweep_dir, impl.storage)
        if job_cfg.sweep.final_evaluation:
            final_evaluation(
                self.hydra_context.config_loader.load_sweep_config(
                    self.config,
                    [*_as_overrides(best["best_params"]), *_as_overrides(fixed), *final_overrides(job_cfg, best)],
                ),
                study,
                sweep_dir,
            )


def _job_config(config) -> Config:
    """The job's part of a Hydra config, typed (the hydra node holds per-job values not yet set)."""
    HydraConfig.instance().set_config(config)  # for ${hydra:...} interpolations in the job's keys
    return to_config(config)


def _check_tuning_split(config) -> None:
    """Before the config is typed (which would refuse a missing split with a less helpful message)."""
    split, dataset = config.split, config.dataset
    if split not in dataset.splits:
        raise ValueError(
            f"dataset {dataset.name!r} has no {split!r} split to tune on (splits: {', '.join(dataset.splits)}); "
            f"add one to dataset.splits (e.g. dataset.splits.dev={{sample_of:train,fraction:0.2,seed:42}}) "
            f"or name a split to tune on with sweep.tune_split=<split>"
        )
    if split == dataset.test_split:
        log.warning("Tuning on %r, the split the final evaluation reports: its figures are not held-out", split)


def _absolute_storage(storage: str | None) -> str | None:
    """sqlite URLs relative to the working directory made absolute (workers may run elsewhere)."""
    prefix = "sqlite:///"
    if storage and storage.startswith(prefix) and not storage[len(prefix) :].startswith("/"):
        path = Path(storage[len(prefix) :]).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return prefix + str(path)
    return storage


def _open_study(name, storage, sampler, directions) -> optuna.Study:
    # Workers starting together may race to create the same new study: retry what the loser sees.
    for attempt in range(5):
        try:
            return optuna.create_study(
                study_name=name, storage=storage, sampler=sampler, directions=directions, load_if_exists=True
            )
        except Exception:  # noqa: BLE001 - e.g. sqlite "UNIQUE constraint failed" during creation
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))


def _count(study: optuna.Study, *states) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def _ask(study: optuna.Study, sweep_dir: Path):
    """A new trial, marked at once with the sweeper that runs it and its job dir (``trial_<number>``, as
    sweep_base sets ``hydra.sweep.subdir``); see ``_settle_abandoned_trials``."""
    trial = study.ask()
    trial.set_user_attr("worker", _WORKER)
    trial.set_user_attr("job_dir", str((sweep_dir / f"trial_{trial.number}").resolve()))
    return trial


def _taken(study: optuna.Study) -> list:
    """Trials that count toward n_trials: completed ones, and running ones that a sweeper has claimed.

    A running trial without a worker was asked by a sweeper killed before it could claim it: it will never
    run, so it does not count."""
    trials = study.get_trials(deepcopy=False, states=(_STATES.COMPLETE, _STATES.RUNNING))
    return sorted(
        (t for t in trials if t.state == _STATES.COMPLETE or "worker" in t.user_attrs), key=lambda t: t.number
    )


def _settle_abandoned_trials(study: optuna.Study) -> None:
    """Settle the trials left running by a sweeper that no longer exists.

    A sweeper killed outright (SIGKILL, a lost node) cannot tell the study; its trials would stay
    "running" forever. Settled here: trials claimed by a process of this machine that is gone, and
    unclaimed trials older than a minute (claiming takes milliseconds). A trial whose job had finished
    (its ``metrics.json``, written last, and ``objective.json`` exist) is recorded as complete, since
    nothing of it was lost; any other is recorded as failed. Live workers' trials are left alone.
    """
    host, now = socket.gethostname(), datetime.datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(_STATES.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        dead = worker_host == host and pid.isdigit() and not _process_alive(int(pid))
        unclaimed = "worker" not in trial.user_attrs and (now - trial.datetime_start).total_seconds() > 60
        if not (dead or unclaimed):
            continue
        finished = _finished_job(Path(trial.user_attrs.get("job_dir", "/nonexistent")))
        if finished:
            log.warning("Trial %d finished before its sweeper was killed: recording it as complete", trial.number)
            optuna.Trial(study, trial._trial_id).set_user_attr("lam", finished["lam"])
            study.tell(trial.number, values=[finished["objective"]])
        else:
            log.warning("Trial %d was left running by a sweeper that is gone: marking it failed", trial.number)
            study.tell(trial.number, state=_STATES.FAIL)


def _finished_job(job_dir: Path) -> dict | None:
    try:
        if (job_dir / "metrics.json").is_file():
            return json.loads((job_dir / "objective.json").read_text())
    except (OSError, ValueError):
        pass
    return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _within_target(study: optuna.Study, trials: list, target: int) -> list:
    """Drop trials a parallel worker made surplus: the first ``target`` trials (by number) that are
    complete or running are the study's; later ones are pruned before they run."""
    keep = {t.number for t in _taken(study)[:target]}
    for trial in trials:
        if trial.number not in keep:
            study.tell(trial, state=_STATES.PRUNED)
    return [trial for trial in trials if trial.number in keep]


def _record(study: optuna.Study, trial, result) -> bool:
    """Tell the study how a trial ended; True when it completed with a finite objective."""
    value = result.return_value if result.status == JobStatus.COMPLETED else None
    objective = value.get("objective") if isinstance(value, dict) else None
    if objective is None or not math.isfinite(objective):
        error = result._return_value if result.status == JobStatus.FAILED else f"objective {objective!r}"
        log.warning("Trial %d failed: %s", trial.number, error)
        study.tell(trial, state=_STATES.FAIL)
        return False
    trial.set_user_attr("lam", value["lam"])
    trial.set_user_attr("job_dir", str(result.working_dir or ""))
    study.tell(trial, values=[objective])
    return True


def _write_results(study: optuna.Study, sweep_dir: Path, storage: str | None) -> dict:
    from taskvec_ir.outputs import atomic_path

    best = study.best_trial  # raises when no trial completed
    results = {
        "name": "optuna",
        "best_params": dict(best.params),
        "best_value": best.value,
        "best_lam": best.user_attrs.get("lam"),
        "best_trial": best.number,
        "study_name": study.study_name,
        "storage": redact_url(storage),
        "n_complete": _count(study, _STATES.COMPLETE),
        "n_failed": _count(study, _STATES.FAIL),
    }
    with atomic_path(sweep_dir / "optimization_results.yaml") as tmp:
        OmegaConf.save(OmegaConf.create(results), tmp)
    log.info("Best: %s = %.4f (trial %d, λ = %s)", best.params, best.value, best.number, results["best_lam"])
    return results


def _as_overrides(params: dict[str, Any]) -> list[str]:
    return [f"{name}={value}" for name, value in params.items()]


def final_overrides(cfg: Config, best: dict) -> list[str]:
    """The best trial's setting on the test split, beside every baseline the family allows."""
    systems = ["bm25", "ir_model", "alpha_one", "task_arithmetic"]
    if cfg.model.kind == "bi_encoder":
        systems.insert(3, "domain_model")
    return [
        f"split={cfg.dataset.test_split}",
        f"systems=[{','.join(systems)}]",
        f"lam.value={best['best_lam']}",
        "wandb.job_type=final",
        "wandb.name=final",
        "trial=null",
    ]


def final_evaluation(config, study: optuna.Study, sweep_dir: Path) -> None:
    """Evaluate the chosen setting once on test, with the sweep's report, into ``<sweep_dir>/final``."""
    trials = [
        {"alpha": t.params.get("alpha.value"), "lam": t.user_attrs.get("lam"), "value": t.value}
        for t in study.get_trials(deepcopy=False, states=(_STATES.COMPLETE,))
    ]
    run_job(
        _job_config(config),
        sweep_dir / "final",
        report=FinalReport(trials, study.best_value),
        sampler_seed=OmegaConf.select(config, "hydra.sweeper.sampler.seed", default=None),
    )


class FinalReport:
    """What the final evaluation adds to its job: paired t-tests of task arithmetic against each baseline
    (Bonferroni), Markdown and LaTeX tables, the α-sensitivity plot of the trials and ‖τ‖ per layer."""

    def __init__(self, trials: list[dict], best_value: float):
        self.trials, self.best_value = trials, best_value

    def __call__(self, outcome: JobOutcome, run) -> str:
        from taskvec_ir import report, tracking
        from taskvec_ir.outputs import atomic_path, write_json

        cfg, out_dir, means = outcome.cfg, outcome.out_dir, outcome.means
        baselines = [s for s in cfg.systems if s != "task_arithmetic"]
        p_values = report.paired_t_tests(outcome.per_query, "task_arithmetic", baselines, cfg.measures)
        write_json(p_values, out_dir / "significance.json")
        header = (
            f"{cfg.model.name} on {cfg.dataset.name} {cfg.split}: α = {cfg.alpha.value:g}, λ = {outcome.lam:g} "
            f"(tuned on {cfg.sweep.tune_split} by {cfg.objective}, {len(self.trials)} trials)"
        )
        tables = {
            "results.md": f"{header}\n\n" + report.results_markdown(means, p_values, "task_arithmetic", cfg.measures),
            "results.tex": report.results_latex(means, p_values, "task_arithmetic", cfg.measures),
        }
        for name, text in tables.items():
            with atomic_path(out_dir / name) as tmp:
                tmp.write_text(text)
        trials = [{**t, "alpha": cfg.alpha.value if t["alpha"] is None else t["alpha"]} for t in self.trials]
        plots = {
            "alpha_sensitivity": out_dir.parent / "alpha_sensitivity.png",
            "task_vector_layers": out_dir / "task_vector_layers.png",
        }
        report.alpha_sensitivity_plot(
            trials, plots["alpha_sensitivity"], cfg.objective, {"alpha": cfg.alpha.value, "value": self.best_value}
        )
        report.layer_norms_plot(outcome.merge, plots["task_vector_layers"])
        rows = [[s, *(means[s][m] for m in cfg.measures)] for s in cfg.systems]
        tracking.log_report(run, plots, {"results": (["system", *cfg.measures], rows)})
        tracking.log_summary(run, {"n_trials": len(self.trials)})
        return header
