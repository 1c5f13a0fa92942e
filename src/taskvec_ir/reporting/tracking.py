"""Weights & Biases: one run per job, offline unless the user says otherwise.

Every panel reads what the job actually did: the objective under one key, ``objective``, in every job; means
in the summary as ``<split>/<system>/<measure>``; the α and λ a job used in its config (``alpha.used``,
``lam.used``); λ and α curves as history against their own axis; per-query values as a wide table. Which key
answers which question, and why each is where it is: docs/wandb.md. ``WANDB_MODE`` in the environment wins over
the config (so ``WANDB_MODE=disabled`` always turns tracking off). The run is finished when the job ends, and is
marked failed (exit code 1) when the job raises.

Only wandb's public API is used, and of its ``x_`` settings only those W&B's docs tell users to set
(tests/reporting/test_tracking.py checks both).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import secrets
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from taskvec_ir.config.runtime import WandbConfig, WandbMode
from taskvec_ir.config.systems import IR_MODEL, TASK_ARITHMETIC
from taskvec_ir.errors import UserError
from taskvec_ir.reporting.lineage import Artifact, content_key

log = logging.getLogger(__name__)


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
    if mode not in tuple(WandbMode):  # a plain string: Python 3.11's `in` on an Enum class refuses one
        raise UserError(f"wandb.mode: '{mode}' is not one of {', '.join(WandbMode)} (WANDB_MODE overrides it)")
    return mode


MAX_TAG = 64  # W&B refuses a longer tag (and the run with it)
# Every measure taskvec-ir computes (trec_eval's, through ir_measures) is better when higher: the objective's goal.
OBJECTIVE_GOAL = "maximize"


def fitted_tag(tag: str) -> str:
    """``tag``, or where W&B would refuse its length (a study's tag names table, dataset, model and merge), its
    start and a digest of the whole: still one tag per study."""
    if len(tag) <= MAX_TAG:
        return tag
    digest = hashlib.sha1(tag.encode()).hexdigest()[:8]
    return f"{tag[: MAX_TAG - len(digest) - 1]}~{digest}"


def unique_name(base: str) -> str:
    """``base`` with a short random suffix (``-`` and 6 hex digits): a rerun or a recompile never repeats a name."""
    return f"{base}-{secrets.token_hex(3)}"


def chart_field(key: str) -> str:
    """``key`` as a field of a W&B chart: Vega reads a dot as a nested field (``alpha.value`` would chart
    nothing), so ``alpha.value`` is ``alpha`` and ``alpha.extra.sre`` is ``alpha/extra/sre``."""
    return key.removesuffix(".value").replace(".", "/")


def git_fields(provenance: Mapping) -> dict:
    """W&B's own git fields: the working directory's commit (``lineage.code_provenance``), else, launched outside a
    git work tree (the usual case of an installed command), taskvec-ir's own source tree's."""
    git = provenance.get("git") or provenance.get("taskvec_ir_source") or {}
    return {"git_commit": git.get("commit"), "git_root": git.get("root"), "git_remote_url": git.get("remote_url")}


@contextmanager
def wandb_run(config: Mapping, out_dir: Path, settings: WandbConfig, seeds: Mapping[str, int]) -> Iterator:
    """A W&B run of ``config`` (the job's resolved config) writing under ``out_dir/wandb``, finished on exit
    (exit code 1 if the block raised). ``settings`` is the config's ``wandb`` group; ``seeds`` the seed of
    every random step behind the job's numbers, by config key.
    The git state that ``config["provenance"]`` holds fills W&B's own git fields (``git_fields``).
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
        job_type=settings.job_type,
        tags=[fitted_tag(tag) for tag in settings.tags],
        name=settings.name,
        config={**config, "seeds": dict(seeds)},
        dir=str(out_dir),
        reinit="finish_previous",
        # System sampling and console capture cost a short job most of its W&B time: the user turns them on.
        # x_disable_stats is W&B's documented switch for system metrics (the one x_ setting used):
        # https://docs.wandb.ai/support/how_can_i_disable_logging_of_system_metrics_to_wb
        # W&B's git fields come from the provenance already read, so W&B need not inspect the tree again.
        settings=wandb.Settings(
            x_disable_stats=not settings.system_metrics,
            console=settings.console,
            disable_git=True,
            **git_fields(config.get("provenance") or {}),
            save_code=False,
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
    queries: Mapping[str, str],
    objective: str,
) -> None:
    """``means[system][measure]`` as summary values ``split/system/measure``, and the per-query values
    (``per_query[system][measure][query_id]``) as one wide table, ``split/per_query``: a row per query with its
    text (``queries``), every system's value of every measure and, with ΘT and task arithmetic both evaluated,
    ``Δ <measure>`` (TA − ΘT), so that sorting by Δ shows which queries τ helps or hurts; with a histogram of
    Δ ``objective`` (``split/delta_histogram``). A logged table stays in the summary as W&B's reference to it
    (``_type: table-file``): W&B's table panels read ``runs.summary[key]``."""
    import wandb

    run.summary.update(
        {f"{split}/{system}/{measure}": value for system, values in means.items() for measure, value in values.items()}
    )
    measures = sorted({m for values in per_query.values() for m in values})
    systems = list(per_query)
    query_ids = sorted({q for values in per_query.values() for by_query in values.values() for q in by_query})
    compared = IR_MODEL in per_query and TASK_ARITHMETIC in per_query
    columns = ["query_id", "query", *(f"{s}/{m}" for s in systems for m in measures)]
    columns += [f"Δ {chart_field(m)}" for m in measures] if compared else []
    rows = []
    for q in query_ids:
        row = [q, queries.get(q), *(per_query[s][m].get(q) for s in systems for m in measures)]
        if compared:
            row += [_difference(per_query[TASK_ARITHMETIC][m].get(q), per_query[IR_MODEL][m].get(q)) for m in measures]
        rows.append(row)
    table = wandb.Table(columns=columns, data=rows)
    logged = {f"{split}/per_query": table}
    if compared and objective in measures:
        logged[f"{split}/delta_histogram"] = wandb.plot.histogram(
            table, f"Δ {chart_field(objective)}", title=f"Δ {objective} per query, task arithmetic − ΘT ({split})"
        )
    run.log(logged)


def _difference(value: float | None, baseline: float | None) -> float | None:
    return None if value is None or baseline is None else value - baseline


@_when_tracked
def log_objective(run, split: str, measure: str, value: float) -> None:
    """The job's objective (``measure`` of task arithmetic on ``split``) under one key for every kind of job,
    ``objective``: one history step, declared ``summary="max"`` (W&B's direction: wandb 0.31's ``define_metric`` has
    no ``goal``), and the same value as the summary's scalar (W&B would otherwise nest it as ``objective.max``, a
    column no filter on ``objective`` finds). Its split, measure and goal go to the summary and the config as
    strings, where a runs table filters trials (dev) from final runs (test)."""
    described = {"objective_split": split, "objective_measure": measure, "objective_goal": OBJECTIVE_GOAL}
    run.define_metric("objective", summary="max")
    run.log({"objective": value})
    run.summary.update({"objective": value, **described})
    run.config.update(described, allow_val_change=True)


@_when_tracked
def update_config(run, values: Mapping) -> None:
    """Add what a job learns as it runs (the α and λ it used) to the run's config, where W&B's parallel
    coordinates and parameter importance read them; a nested mapping replaces the config's one at that key."""
    run.config.update(dict(values), allow_val_change=True)


@_when_tracked
def log_curve(run, name: str, axis: str, points: Iterable[Mapping[str, float | None]]) -> None:
    """A curve as history, a row per point: ``<name>/<key>`` for each key of a point, ``<name>/<axis>`` the x axis
    of W&B's line plots of every ``<name>/...`` key (``define_metric``'s step metric), so that the curves of many
    runs overlay in one native panel; none of them in the summary (a curve's last point is no result)."""
    run.define_metric(f"{name}/*", step_metric=f"{name}/{axis}", summary="none")
    for point in points:
        run.log({f"{name}/{key}": value for key, value in point.items() if value is not None})


@_when_tracked
def log_merge_diagnostics(run, diagnostics: Mapping) -> None:
    """The merge's diagnostics (``Pipeline.merge_diagnostics``) as ``merge/...`` summary values, comparable
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
    labels = provenance.get("supervised")  # the relevance labels a supervised control was trained on
    if labels is not None:
        keys = ("split", "queries", "pairs", "near_duplicate_overlap", "exclude_relevant_documents")
        run.summary.update({f"adapt/{role}/labels/{key}": labels[key] for key in keys})
        for what in ("queries", "near_duplicates", "documents", "document_pairs"):  # what each other split took out
            run.summary.update(
                {
                    f"adapt/{role}/labels/excluded_{what}/{split}": left_out[what]
                    for split, left_out in labels["excluded"].items()
                }
            )


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
    """``item`` as a W&B artifact: its files copied into it (``upload``), or referenced where they lie, which only
    this machine can read: the metadata says so (``reference``), and where."""
    import wandb

    if item.upload:
        artifact = wandb.Artifact(item.name, type=item.type, metadata=item.metadata)
        if item.files:
            for name in item.files:
                artifact.add_file(str(item.path / name), name=name)
        elif item.path.is_dir():
            artifact.add_dir(str(item.path))
        else:
            artifact.add_file(str(item.path))
        return artifact
    reference = {"kind": "file:// reference to a node-local path, not uploaded", "host": socket.gethostname()}
    artifact = wandb.Artifact(item.name, type=item.type, metadata={**item.metadata, "reference": reference})
    artifact.add_reference(item.path.resolve().as_uri(), checksum=item.checksum)
    return artifact


@_when_tracked
def use_artifacts(run, items: Iterable[Artifact]) -> None:
    """Declare ``items`` inputs of the run (W&B's lineage: every trial links to the candidates and τ it shares).

    Online, ``run.use_artifact`` logs each (a new version when its content is new) and links it as an input.
    Offline, wandb 0.31 has no public way to: ``Run.use_artifact`` raises "Cannot use artifact when in offline
    mode" (it resolves the artifact on the server), and the one offline path, ``Run._log_artifact(...,
    use_after_commit=True)``, is private. So an offline run records its inputs in its config as one JSON string,
    ``inputs`` (name -> type, aliases, metadata), which ``wandb sync`` carries out: one column a runs table
    searches, not a sparse column per metadata field; lineage edges need ``wandb.mode=online``."""
    items = list(items)
    if run.offline:
        inputs = {
            item.name: {"type": item.type, "aliases": list(item.aliases), "metadata": item.metadata} for item in items
        }
        run.config.update({"inputs": json.dumps(inputs, sort_keys=True, default=str)}, allow_val_change=True)
        return
    for item in items:
        run.use_artifact(_wandb_artifact(item), aliases=list(item.aliases))


@_when_tracked
def log_artifacts(run, items: Iterable[Artifact]) -> None:
    """Record ``items`` as outputs of the run, each a version of its name, with ``latest`` and its key as aliases:
    its cache key, or for an output no cache entry holds (TREC runs, a report, a study) the key of its files'
    content as they are logged (``lineage.content_key``)."""
    for item in items:
        keys = item.aliases or (content_key(item.path, item.files),)
        run.log_artifact(_wandb_artifact(item), aliases=["latest", *keys])


@_when_tracked
def log_sensitivity(run, objective: str, columns: list[str], rows: list[list]) -> None:
    """The tuning objective of every trial against each swept key, as a table with one scatter plot per key
    (``sensitivity/alpha``, ``sensitivity/lam``, ...: each key as a ``chart_field``)."""
    import wandb

    fields = [chart_field(column) for column in columns]
    table = wandb.Table(columns=fields, data=rows)
    plots = {
        f"sensitivity/{field}": wandb.plot.scatter(table, field, "objective", title=f"{objective} against {key}")
        for key, field in zip(columns[2:], fields[2:], strict=True)
    }
    run.log({"sensitivity/trials": table, **plots})
