"""Weights & Biases: one run per job, offline unless the user says otherwise.

Metrics go to the run's summary as ``<split>/<system>/<measure>`` so the dashboard can compare runs
side by side; per-query values go to a table; group, job type and tags carry model, dataset and sweep so
runs can be grouped without setup. ``WANDB_MODE`` in the environment wins over the config (so
``WANDB_MODE=disabled`` always turns tracking off). The run is finished when the job ends, and is
marked failed (exit code 1) when the job raises.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from taskvec_ir.errors import UserError

if TYPE_CHECKING:
    from taskvec_ir.config.schema import WandbConfig
    from taskvec_ir.reporting.lineage import Artifact

log = logging.getLogger(__name__)
MODES = ("offline", "online", "disabled")


class UntrackedRun:
    """The run of a job with W&B disabled: nothing is recorded, and wandb is not even imported (~2 s with its
    tables, which every trial job of a sweep would pay)."""

    disabled, offline = True, False


def _when_tracked(log_function):
    """``log_function(run, ...)`` does nothing for an untracked run."""

    @functools.wraps(log_function)
    def logged(run, *args, **kwargs) -> None:
        if not run.disabled:
            log_function(run, *args, **kwargs)

    return logged


def tracking_mode(configured: str) -> str:
    mode = os.environ.get("WANDB_MODE") or configured
    if mode not in MODES:
        raise UserError(f"wandb.mode: '{mode}' is not one of {', '.join(MODES)} (WANDB_MODE overrides it)")
    return mode


@contextmanager
def wandb_run(
    config: Mapping, out_dir: Path, settings: WandbConfig, seeds: Mapping[str, int], job_type: str | None = None
) -> Iterator:
    """A W&B run of ``config`` (the job's resolved config) writing under ``out_dir/wandb``, finished on exit
    (exit code 1 if the block raised). ``settings`` is the config's ``wandb`` group; ``seeds`` the seed of
    every random step behind the job's numbers, by config key; ``job_type`` overrides ``settings.job_type``.
    An online run that cannot reach the server within init_timeout is kept offline instead, for
    ``wandb sync``: a lost connection must not cost the job."""
    out_dir.mkdir(parents=True, exist_ok=True)
    mode = tracking_mode(settings.mode)
    log.info("Random seeds: %s", dict(seeds) or "none (no sampled split, no sweep sampler)")
    if mode == "disabled":
        yield UntrackedRun()
        return
    import wandb

    arguments = dict(
        project=settings.project,
        entity=settings.entity,
        group=settings.group,
        job_type=job_type or settings.job_type,
        tags=list(settings.tags),
        name=settings.name,
        config={**config, "seeds": dict(seeds)},
        dir=str(out_dir),
        reinit="finish_previous",
        # The job's own outputs are the record; W&B's system sampling, console capture and git
        # inspection only slow short jobs down.
        settings=wandb.Settings(
            x_disable_stats=True,
            console="off",
            disable_git=True,
            save_code=False,
            x_save_requirements=False,
            silent=True,
            init_timeout=settings.init_timeout,
        ),
    )
    try:
        run = wandb.init(mode=mode, **arguments)
    except wandb.errors.CommError as error:
        if mode != "online":
            raise
        log.warning(
            "W&B is unreachable (%s): logging offline under %s/wandb; upload later with `wandb sync`",
            str(error).splitlines()[0],
            out_dir,
        )
        run = wandb.init(mode="offline", **arguments)
    # Not ``with run:``: wandb would print the traceback of every error, where the app ends a user error with
    # its one-line message (and Hydra reports any other).
    try:
        yield run
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()


@_when_tracked
def log_results(
    run,
    split: str,
    means: Mapping[str, Mapping[str, float]],
    per_query: Mapping[str, Mapping[str, Mapping[str, float]]],
) -> None:
    """Log ``means[system][measure]`` as ``split/system/measure`` and a per-query table.

    ``per_query[system][measure][query_id]`` becomes one table row per (system, query).
    """
    import wandb

    run.log(
        {f"{split}/{system}/{measure}": value for system, values in means.items() for measure, value in values.items()}
    )
    measures = sorted({m for values in per_query.values() for m in values})
    rows = []
    for system, values in per_query.items():
        query_ids = sorted(next(iter(values.values()), {}))
        rows += [[system, q, *(values[m].get(q) for m in measures)] for q in query_ids]
    run.log({f"{split}/per_query": wandb.Table(columns=["system", "query_id", *measures], data=rows)})


@_when_tracked
def log_merge_diagnostics(run, diagnostics: Mapping) -> None:
    """The merge's diagnostics (``Experiment.merge_diagnostics``) as ``merge/...`` summary values, comparable
    across runs, and ‖τ‖ per layer as a table the dashboard charts as bars."""
    import wandb

    summary = {
        "merge/changed_fraction": diagnostics["changed_fraction"],
        **{f"merge/{key}": value for key, value in diagnostics["setting"].items() if key not in ("alphas", "scale")},
        **{f"merge/alpha/{vector}": alpha for vector, alpha in diagnostics["setting"]["alphas"].items()},
        **{f"merge/cosine/{pair}": value for pair, value in diagnostics["cosine"].items()},
    }
    rows = []
    for vector, stats in diagnostics["vectors"].items():
        summary.update({f"merge/{vector}/{key}": value for key, value in stats.items() if key != "layer_norms"})
        rows += [[vector, layer, norm] for layer, norm in stats["layer_norms"].items()]
    run.summary.update(summary)
    run.log({"merge/layer_norms": wandb.Table(columns=["vector", "layer", "norm"], data=rows)})


@_when_tracked
def log_adapted(run, role: str, provenance: Mapping) -> None:
    """Where an adapted checkpoint (``taskvec_ir.models.adapt``) came from, as ``adapt/<role>/...`` summary values."""
    run.summary.update(
        {
            f"adapt/{role}/{key}": provenance[key]
            for key in ("objective", "documents", "steps", "wall_seconds", "final_loss")
            if key in provenance
        }
    )
    run.summary[f"adapt/{role}/corpus"] = provenance.get("corpus", {}).get("name")


@_when_tracked
def log_summary(run, values: Mapping) -> None:
    """Values comparable across runs (the dashboard's columns)."""
    run.summary.update(dict(values))


def step_logger(run, key: str) -> Callable[[int, float], None]:
    """A function logging ``(step, value)`` as ``key``'s curve."""
    return lambda step, value: None if run.disabled else run.log({key: value}, step=step)


@_when_tracked
def log_report(run, images: Mapping[str, Path], tables: Mapping[str, tuple[list[str], list[list]]]) -> None:
    """A report's plots (PNG files) and tables (columns, rows) by name."""
    import wandb

    run.log(
        {
            **{name: wandb.Image(str(path)) for name, path in images.items()},
            **{name: wandb.Table(columns=columns, data=rows) for name, (columns, rows) in tables.items()},
        }
    )


def _wandb_artifact(item: Artifact):
    import wandb

    artifact = wandb.Artifact(item.name, type=item.type, metadata=item.metadata)
    artifact.add_reference(item.path.resolve().as_uri(), checksum=item.checksum)  # recorded where it lies, not copied
    return artifact


@_when_tracked
def use_artifacts(run, items: Iterable[Artifact]) -> None:
    """Declare ``items`` inputs of the run (W&B's lineage: every trial links to the candidates and τ it shares)."""
    for item in items:
        artifact = _wandb_artifact(item)
        if run.offline:
            # wandb refuses use_artifact offline. For an artifact not logged yet, use_artifact online logs it and
            # marks it used once committed; recorded offline the same way, `wandb sync` carries it out.
            run._log_artifact(artifact, is_user_created=True, use_after_commit=True)
        else:
            run.use_artifact(artifact)


@_when_tracked
def log_artifacts(run, items: Iterable[Artifact]) -> None:
    """Record ``items`` as outputs of the run."""
    import wandb

    for item in items:
        if not item.upload:
            run.log_artifact(_wandb_artifact(item))
            continue
        artifact = wandb.Artifact(item.name, type=item.type, metadata=item.metadata)
        if item.files:
            for name in item.files:
                artifact.add_file(str(item.path / name), name=name)
        elif item.path.is_dir():
            artifact.add_dir(str(item.path))
        else:
            artifact.add_file(str(item.path))
        run.log_artifact(artifact)


@_when_tracked
def log_sensitivity(run, objective: str, columns: list[str], rows: list[list]) -> None:
    """The tuning objective of every trial against each swept key, as a table with one scatter plot per key."""
    import wandb

    table = wandb.Table(columns=columns, data=rows)
    plots = {
        f"sensitivity/{key}": wandb.plot.scatter(table, key, "objective", title=f"{objective} against {key}")
        for key in columns[2:]
    }
    run.log({"sensitivity/trials": table, **plots})
