"""Weights & Biases: one run per job, offline unless the user says otherwise.

Metrics go to the run's summary as ``<split>/<system>/<measure>`` so the dashboard can compare runs
side by side; per-query values go to a table; group, job type and tags carry model, dataset and sweep so
runs can be grouped without setup. ``WANDB_MODE`` in the environment wins over the config (so
``WANDB_MODE=disabled`` always turns tracking off). The run is finished when the job ends, and is
marked failed (exit code 1) when the job raises.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)
MODES = ("offline", "online", "disabled")


def random_seeds(config: Mapping) -> dict[str, int]:
    """The seed of every random step behind a job's numbers, by the config key that sets it.

    - ``dataset.splits.<split>.seed``: the sample that makes the evaluated split (e.g. SciFact's dev);
    - ``hydra.sweeper.sampler.seed``: the Optuna sampler's seed in a sweep, and ``sampler_trial``, the seed
      the sweeper gave the sampler that drew this trial's parameters (seed + trial number, see
      ``taskvec_ir.sweeping``).
    - ``merge.seed``: DARE's random drop;
    - ``model.domain.seed`` (or ``model.extra_domains.<name>.domain.seed``): training of an adapted checkpoint.
    Scoring itself is deterministic (inference only, no dropout)."""
    seeds: dict[str, int] = {}
    split = config.get("split")
    spec = ((config.get("dataset") or {}).get("splits") or {}).get(split)
    if isinstance(spec, Mapping) and spec.get("seed") is not None:
        seeds[f"dataset.splits.{split}.seed"] = int(spec["seed"])
    merge = config.get("merge") or {}
    if merge.get("method") == "dare":
        seeds["merge.seed"] = int(merge["seed"])
    if "model" in config:
        from taskvec_ir.experiment import config_key, model_sources

        for role, source in model_sources(config["model"]).items():
            if isinstance(source, Mapping) and source.get("seed") is not None:  # an adapt config: trained with a seed
                seeds[f"{config_key(role)}.seed"] = int(source["seed"])
    sampler_seed = _sampler_seed()
    if sampler_seed is not None:
        seeds["hydra.sweeper.sampler.seed"] = sampler_seed
        if config.get("trial") is not None:
            seeds["sampler_trial"] = sampler_seed + int(config["trial"])
    return seeds


def _sampler_seed() -> int | None:
    try:
        from hydra.core.hydra_config import HydraConfig
        from omegaconf import OmegaConf

        if not HydraConfig.initialized():
            return None
        seed = OmegaConf.select(HydraConfig.get(), "sweeper.sampler.seed", default=None)
        return None if seed is None else int(seed)
    except Exception:  # noqa: BLE001 - no Hydra, or a sweeper without a sampler: nothing seeded
        return None


def tracking_mode(configured: str) -> str:
    mode = os.environ.get("WANDB_MODE") or configured
    if mode not in MODES:
        raise ValueError(f"wandb.mode: '{mode}' is not one of {', '.join(MODES)} (WANDB_MODE overrides it)")
    return mode


@contextmanager
def wandb_run(config: Mapping, out_dir: Path, settings: Mapping) -> Iterator:
    """A W&B run of ``config`` writing under ``out_dir/wandb``, finished on exit (exit code 1 if the block
    raised). ``settings`` is the config's ``wandb`` group: mode, project, entity, group, job_type, tags, name,
    init_timeout. An online run that cannot reach the server within init_timeout is kept offline instead,
    for ``wandb sync``: a lost connection must not cost the job."""
    import wandb

    out_dir.mkdir(parents=True, exist_ok=True)
    mode = tracking_mode(settings["mode"])
    seeds = random_seeds(config)
    log.info("Random seeds: %s", seeds or "none (no sampled split, no sweep sampler)")
    arguments = dict(
        project=settings["project"],
        entity=settings.get("entity"),
        group=settings.get("group"),
        job_type=settings.get("job_type"),
        tags=list(settings.get("tags") or []),
        name=settings.get("name"),
        config={**config, "seeds": seeds},
        dir=str(out_dir),
        reinit="finish_previous",
        # The job's own outputs are the record; W&B's system sampling, console capture and git
        # inspection only slow short jobs down.
        settings=wandb.Settings(x_disable_stats=True, console="off", disable_git=True, save_code=False,
                                x_save_requirements=False, silent=True, init_timeout=settings.get("init_timeout", 90)),
    )
    try:
        run = wandb.init(mode=mode, **arguments)
    except wandb.errors.CommError as error:
        if mode != "online":
            raise
        log.warning("W&B is unreachable (%s): logging offline under %s/wandb; upload later with `wandb sync`",
                    str(error).splitlines()[0], out_dir)
        run = wandb.init(mode="offline", **arguments)
    # Not ``with run:``: wandb would print the traceback of every error, where the app ends a user error with
    # its one-line message (and Hydra reports any other).
    try:
        yield run
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()


def log_results(run, split: str, means: Mapping[str, Mapping[str, float]],
                per_query: Mapping[str, Mapping[str, Mapping[str, float]]]) -> None:
    """Log ``means[system][measure]`` as ``split/system/measure`` and a per-query table.

    ``per_query[system][measure][query_id]`` becomes one table row per (system, query).
    """
    import wandb

    run.log({f"{split}/{system}/{measure}": value for system, values in means.items()
             for measure, value in values.items()})
    measures = sorted({m for values in per_query.values() for m in values})
    rows = []
    for system, values in per_query.items():
        query_ids = sorted(next(iter(values.values()), {}))
        rows += [[system, q, *(values[m].get(q) for m in measures)] for q in query_ids]
    run.log({f"{split}/per_query": wandb.Table(columns=["system", "query_id", *measures], data=rows)})


def log_merge_diagnostics(run, diagnostics: Mapping) -> None:
    """The merge's diagnostics (``Experiment.merge_diagnostics``) as ``merge/...`` summary values, comparable
    across runs, and ‖τ‖ per layer as a table the dashboard charts as bars."""
    import wandb

    summary = {"merge/changed_fraction": diagnostics["changed_fraction"],
               **{f"merge/{key}": value for key, value in diagnostics["setting"].items() if key not in ("alphas", "scale")},
               **{f"merge/alpha/{vector}": alpha for vector, alpha in diagnostics["setting"]["alphas"].items()},
               **{f"merge/cosine/{pair}": value for pair, value in diagnostics["cosine"].items()}}
    rows = []
    for vector, stats in diagnostics["vectors"].items():
        summary.update({f"merge/{vector}/{key}": value for key, value in stats.items() if key != "layer_norms"})
        rows += [[vector, layer, norm] for layer, norm in stats["layer_norms"].items()]
    run.summary.update(summary)
    run.log({"merge/layer_norms": wandb.Table(columns=["vector", "layer", "norm"], data=rows)})


def log_adapted(run, role: str, provenance: Mapping) -> None:
    """Where an adapted checkpoint (``taskvec_ir.adapt``) came from, as ``adapt/<role>/...`` summary values."""
    run.summary.update({f"adapt/{role}/{key}": provenance[key] for key in
                        ("objective", "documents", "steps", "wall_seconds", "final_loss") if key in provenance})
    run.summary[f"adapt/{role}/corpus"] = provenance.get("corpus", {}).get("name")
