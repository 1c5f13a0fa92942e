"""One job: a config evaluated into a job dir. Single runs, sweep trials and a sweep's final evaluation all
run through ``run_job``; the final evaluation only adds its baselines (config) and its report (``Report``).

A job writes, into its dir: ``runs/<split>.<system>.trec``, ``per_query.json``, ``objective.json`` (what a
sweeper reads), the report's files, ``results.md`` (``taskvec_ir.runs.results_page``), and ``metrics.json`` last,
so that a job dir with ``metrics.json`` is complete; and one W&B run (``taskvec_ir.reporting.tracking``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from taskvec_ir.config.composed import Config
from taskvec_ir.config.merge_settings import RANDOM
from taskvec_ir.config.model import PRIMARY, SUPERVISED_LABEL, AdaptConfig
from taskvec_ir.config.sources import IR, config_key, model_sources
from taskvec_ir.config.systems import BM25, MERGED, TASK_ARITHMETIC
from taskvec_ir.pipeline import analyses
from taskvec_ir.pipeline.pipeline import Pipeline, PipelineSpec
from taskvec_ir.pipeline.selection.choice import Choice, Fold
from taskvec_ir.reporting import tracking
from taskvec_ir.reporting.lineage import Artifact, code_provenance
from taskvec_ir.reporting.plots import heading
from taskvec_ir.reporting.rendering import Table
from taskvec_ir.reporting.results_tables import depth_note
from taskvec_ir.runs.results_page import RESULTS_PAGE, results_page, show
from taskvec_ir.runs.retention import is_retained, measure_retention
from taskvec_ir.runs.run_identity import run_settings
from taskvec_ir.storage.cache import Cache, cache_key, checkpoint_fingerprint
from taskvec_ir.storage.outputs import write_json

log = logging.getLogger("taskvec_ir")
NO_FUSION = "retriever=dense: each model system ranks the whole corpus itself, no fusion with BM25"


def prepare_environment(cfg: Config) -> None:
    """Set what libraries read at import time, before they are imported, and place offline files."""
    from taskvec_ir.ir.irds import place_offline_files, use_ir_datasets_home

    use_ir_datasets_home(cfg.data.home)
    place_offline_files(cfg.dataset, cfg.data.mirror_dir)


def open_pipeline(cfg: Config) -> Pipeline:
    """Set up ``cfg``'s pipeline; fails fast, before any model is loaded or scored."""
    tracking.tracking_mode(cfg.wandb.mode)
    prepare_environment(cfg)
    cache = Cache(cfg.cache.dir)
    if cfg.cache.clear:
        cache.clear()
    pipeline = Pipeline(PipelineSpec.from_config(cfg), cache)
    pipeline.split(cfg.split)  # a wrong id or split fails here, cheaply
    pipeline.candidates(cfg.split)  # a bad run file (retriever=run_file) here, before any checkpoint is fetched
    pipeline.folders()  # a missing or mismatched checkpoint here, before scoring
    pipeline.check_layers()  # and a per-layer α for a layer the model does not have
    return pipeline


def random_seeds(cfg: Config, sampler_seed: int | None = None) -> dict[str, int]:
    """The seed of every random step behind a job's numbers, by the config key that sets it.

    - ``dataset.splits.<split>.seed``: the sample that makes the evaluated split (e.g. SciFact's dev);
    - ``hydra.sweeper.sampler.seed``: the Optuna sampler's seed in a sweep, and ``sampler_trial``, the seed
      the sweeper gave the sampler that drew this trial's parameters (seed + trial number);
    - ``merge.seed``: the random drop of dare and dare_ties, the noise of merge.direction=random, and that of the
      null stability reads its criterion against;
    - ``model.domain.seed`` (or ``model.extra_domains.<name>.domain.seed``): training of an adapted checkpoint.
    Scoring itself is deterministic (inference only, no dropout)."""
    seeds: dict[str, int] = {}
    spec = cfg.dataset.splits.get(cfg.split)
    if not isinstance(spec, str):
        seeds[f"dataset.splits.{cfg.split}.seed"] = spec.seed
    method = cfg.merge_setting().method
    if method.sparsifier == "random" or method.direction == RANDOM or cfg.selection.method == "stability":
        seeds["merge.seed"] = cfg.merge.seed
    for role, source in model_sources(cfg.model).items():
        if isinstance(source, AdaptConfig):
            seeds[f"{config_key(role)}.seed"] = source.seed
    if cfg.selection.method in ("cross_validation", "nqc"):  # the folds; NQC's corpus sample
        seeds["selection.seed"] = cfg.selection.seed
    if cfg.selection.method == "pseudo_queries":
        seeds["selection.pseudo_queries.seed"] = cfg.selection.pseudo_queries.seed
    if cfg.selection.bootstrap.resamples and (cfg.selection.method or (cfg.sweep is not None and cfg.sweep.final)):
        seeds["selection.bootstrap.seed"] = cfg.selection.bootstrap.seed
    if sampler_seed is not None:
        seeds["hydra.sweeper.sampler.seed"] = sampler_seed
        if cfg.trial is not None:
            seeds["sampler_trial"] = sampler_seed + cfg.trial
    return seeds


@dataclass
class JobOutcome:
    """What a job evaluated, for a report to build on, and what it writes and logs."""

    cfg: Config
    pipeline: Pipeline
    out_dir: Path
    lam: float
    means: dict
    per_query: dict
    header: str  # the line above the printed table
    result: dict  # what the job returns (a sweeper reads its objective and λ)
    summary: dict = field(default_factory=dict)  # W&B summary values
    merged: bool = True  # whether a merge was made (its task vectors are the job's inputs)
    merge: dict | None = None  # the merge diagnostics, when the job computed them
    extra: dict = field(default_factory=dict)  # what metrics.json holds beside the split's means
    outputs: list[Artifact] = field(default_factory=list)  # logged to W&B once metrics.json is written
    folds: list = field(default_factory=list)  # the settings task arithmetic ran at (selection.Fold), for analyses
    table: Table | None = None  # the results table of a report (with significance); None: the job's own


class Report(Protocol):
    """What a job adds before its ``metrics.json``: files, W&B entries, and the header of its printed table."""

    def __call__(self, outcome: JobOutcome, run) -> str: ...


def slurm_job() -> dict | None:
    """The SLURM job this process runs in (its id, its array task as scancel takes it, and its node), or None."""
    if "SLURM_JOB_ID" not in os.environ:
        return None
    job = {"job_id": os.environ["SLURM_JOB_ID"], "node": os.environ.get("SLURMD_NODENAME", socket.gethostname())}
    if "SLURM_ARRAY_JOB_ID" in os.environ:
        job["array"] = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID')}"
    return job


def run_job(cfg: Config, out_dir: Path, report: Report | None = None, sampler_seed: int | None = None) -> dict:
    """Evaluate ``cfg.systems`` on ``cfg.split`` into ``out_dir``, at the configured α and λ or at those
    ``cfg.selection`` chooses; returns the objective and the setting used.

    Every job has one outline: set up (failing fast), choose the setting and evaluate, write the runs,
    ``per_query.json``, the report's files and ``metrics.json`` last (so a job dir with ``metrics.json`` is
    complete), then log the results to W&B."""
    from taskvec_ir.ir import evaluation

    pipeline = open_pipeline(cfg)
    slurm = record_slurm_job(out_dir)
    config = {**run_config(cfg), **({"slurm": slurm} if slurm else {})}
    with tracking.wandb_run(config, out_dir, run_settings(cfg), random_seeds(cfg, sampler_seed)) as run:
        evaluate = _evaluate_selected if cfg.selection.method is not None else _evaluate_as_configured
        outcome = evaluate(cfg, pipeline, out_dir, run)
        tracking.use_artifacts(run, pipeline.inputs(cfg.split, merged=outcome.merged))
        if pipeline.dense is not None:  # which search ran, and an approximate one's recall against exact
            outcome.extra["dense"] = pipeline.dense.searches
            recalls = {k: v["recall"] for k, v in pipeline.dense.searches.items() if v.get("recall") is not None}
            outcome.summary.update({f"dense/recall/{k}": v for k, v in recalls.items()})
        outcome.extra["warnings"] = warnings = pipeline.first_stage.warnings(cfg.split, cfg.measures)
        outcome.summary.update({f"warnings/{kind}": len(ids) for kind, ids in warnings.items()})
        write_json({cfg.split: outcome.per_query}, out_dir / "per_query.json")
        analysed = analyses.run_analyses(cfg, pipeline, outcome.folds, out_dir, run)
        if analysed.metrics:
            outcome.extra["analyses"] = analysed.metrics
        outcome.summary.update(analysed.summary)
        header = report(outcome, run) if report is not None else outcome.header
        results_page(outcome, header, analysed.lines).write(out_dir)
        write_json({cfg.split: outcome.means, **outcome.extra}, out_dir / "metrics.json")  # last: the job is complete
        tracking.log_artifacts(run, [*trec_runs(cfg, out_dir, outcome), *outcome.outputs])
        queries = pipeline.split(cfg.split).queries
        tracking.log_results(run, cfg.split, outcome.means, outcome.per_query, queries, cfg.objective)
        cache = {f"cache/{k}": v for k, v in pipeline.cache.stats.items()}
        tracking.log_summary(run, {**outcome.summary, **cache})
        for role, provenance in adapted_provenance(pipeline).items():
            tracking.log_adapted(run, role, provenance)
    log.info("Cache: %s", dict(pipeline.cache.stats))
    title, *more = header.splitlines()  # as results.md: the title, the table, then what the header says more
    printed = [f"\n{title}"]
    if outcome.means:
        printed.append(evaluation.format_table(outcome.means, cfg.measures))
    depth = depth_note(cfg.measures, cfg.retriever, table=False)
    if outcome.means and depth:
        printed.append(f"Note:{depth}")
    if "".join(more).strip():
        printed.append("\n" + "\n".join(more).strip("\n"))
    printed += analysed.lines
    if cfg.save_merged:
        printed.append(f"Merged model (loads with from_pretrained): {out_dir / 'merged_model'}")
    printed.append(f"Outputs: {out_dir} ({RESULTS_PAGE} says what ran and how α and λ were chosen)")
    show(printed, console=cfg.trial is None)  # a trial's sweeper prints a line for it
    return outcome.result


def _evaluate_as_configured(cfg: Config, pipeline: Pipeline, out_dir: Path, run) -> JobOutcome:
    """α as configured; λ as configured, or chosen from ``lam.grid`` on the split ``Config.lam_tuning_split``
    names (never the test split evaluated; from cached scores: no model time). Writes ``objective.json``, what a
    sweeper needs to count the job as done."""
    lam, used_lam = cfg.lam.value, {}
    if cfg.retriever.dense:  # no fusion: λ neither runs nor is chosen
        lam, used_lam = None, {"not_applied": NO_FUSION}
    elif lam is None:
        tune_split = cfg.lam_tuning_split()
        lam, curve = pipeline.tune_lambda(tune_split, TASK_ARITHMETIC, cfg.lam.grid, cfg.objective)
        used_lam["chosen_by"] = f"λ tuned on {tune_split} (lam.grid, by {cfg.objective})"
        points = [{"lam": x, "alpha": cfg.alpha.value, "value": y} for x, y in curve.items()]
        tracking.log_curve(run, "lambda_curve", "lam", points)
    chosen = sweep_choice(cfg)
    tracking.update_config(
        run,
        {
            "alpha": {**asdict(cfg.alpha), "used": cfg.alpha.value, **chosen},
            "lam": {**asdict(cfg.lam), "used": lam, **(chosen if lam is not None else {}), **used_lam},
        },
    )
    lambdas = system_lambdas(cfg, pipeline, lam)
    means, per_query = pipeline.evaluate(cfg.split, cfg.systems, lambdas, out_dir / "runs", cfg.measures)
    result = {"lam": lam}
    summary = {"alpha": cfg.alpha.value, **({"lam": lam} if lam is not None else {})}
    summary.update({f"lam/{s}": v for s, v in lambdas.items() if v is not None})
    retained = None
    if TASK_ARITHMETIC in means:
        result["objective"] = means[TASK_ARITHMETIC][cfg.objective]
        tracking.log_objective(run, cfg.split, cfg.objective, result["objective"])
        if is_retained(cfg):  # a Pareto sweep's trial: its second objective, on the general collection
            result["retention"], retained = measure_retention(cfg, pipeline.cache, lam)
            tracking.log_summary(run, {f"retention/{retained['dataset']}/{cfg.objective}": result["retention"]})
        write_json(result, out_dir / "objective.json")
    header = job_header(cfg, lam, used_lam.get("chosen_by"))
    outcome = JobOutcome(cfg, pipeline, out_dir, lam, means, per_query, header, result, summary)
    outcome.extra["lam"] = lambdas
    if retained is not None:
        outcome.extra["retention"] = retained
    if "chosen_by" in used_lam:
        outcome.extra["lam_chosen_by"] = used_lam["chosen_by"]
    outcome.folds = [Fold(None, cfg.alpha.value, lam)]
    outcome.merged = bool(MERGED & set(cfg.systems)) or cfg.save_merged
    if outcome.merged:
        outcome.merge = outcome.extra["merge"] = pipeline.merge_diagnostics()
        tracking.log_merge_diagnostics(run, outcome.merge)
    if cfg.save_merged:
        outcome.outputs.append(merged_model_artifact(pipeline, out_dir / "merged_model", lam))
    return outcome


def sweep_choice(cfg: Config) -> dict:
    """How a sweep's final evaluation got its α and λ (``chosen_by``, beside ``used`` in the config): its study's
    best trial on the tuning split. Empty for any other job."""
    if cfg.sweep is None or not cfg.sweep.final:
        return {}
    study = cfg.sweep.study.name
    return {"chosen_by": f"the best trial of study {study} on {cfg.sweep.tune_split} by {cfg.objective}"}


def system_lambdas(cfg: Config, pipeline: Pipeline, lam: float | None) -> dict[str, float | None]:
    """Each system's λ (None for BM25, and for every system under retriever=dense): task arithmetic's ``lam``; each
    fused baseline's its own, chosen as task arithmetic's was, from ``lam.grid`` by the objective (where
    ``lam.value`` is null, on ``Config.lam_tuning_split``; on the tuning split in a sweep's final evaluation), so
    every system has the same tuning budget; ``lam`` where it was given."""
    if cfg.retriever.dense:
        return dict.fromkeys(cfg.systems)
    final = cfg.sweep is not None and cfg.sweep.final and cfg.lam.grid  # a sweep whose trials chose λ from the grid
    tune_split = cfg.lam_tuning_split() if cfg.lam.value is None else cfg.sweep.tune_split if final else None
    baselines = [s for s in cfg.systems if s != TASK_ARITHMETIC]
    if tune_split is None:
        own = {s: None if s == BM25 else lam for s in baselines}
    else:
        own = pipeline.tune_lambdas(tune_split, baselines, cfg.lam.grid, cfg.objective)
    return {s: lam if s == TASK_ARITHMETIC else own[s] for s in cfg.systems}


def _evaluate_selected(cfg: Config, pipeline: Pipeline, out_dir: Path, run) -> JobOutcome:
    """α and λ chosen by ``cfg.selection`` (``taskvec_ir.pipeline.selection``) before the one evaluation of
    ``cfg.split``. Writes ``selection.json`` (the choice and its criterion at every setting considered) and
    ``selection_curve.png``; with ``selection.bootstrap.resamples``, the bootstrap's files too."""
    from taskvec_ir.pipeline import bootstrap
    from taskvec_ir.pipeline.selection.choice import curve_plot, evaluate_choice
    from taskvec_ir.pipeline.selection.methods import choose, tune_baseline_lambdas

    choice = choose(pipeline, cfg)
    tracking.update_config(run, used_by_selection(cfg, choice))
    tune_baseline_lambdas(pipeline, cfg, choice, cfg.systems)
    means, per_query = evaluate_choice(pipeline, cfg.split, cfg.systems, choice, cfg.measures, out_dir / "runs")
    chosen = choice.describe()
    write_json(chosen, out_dir / "selection.json")
    judged = sum(1 for docs in pipeline.split(cfg.split).qrels.values() if docs)
    curve_plot(choice, out_dir / "selection_curve.png", heading(cfg.dataset.name, cfg.model.name, cfg.split, judged))
    chosen.pop("curve")
    columns = list(choice.curve[0])  # fold, α, λ, value, undefined (and stability's raw and null curves)
    tracking.log_report(
        run,
        {"selection_curve": out_dir / "selection_curve.png"},
        {"selection_curve": (columns, [[row[c] for c in columns] for row in choice.curve])},
    )
    for name, (axis, points) in selection_curves(choice).items():
        tracking.log_curve(run, name, axis, points)
    if TASK_ARITHMETIC in means:
        tracking.log_objective(run, cfg.split, cfg.objective, means[TASK_ARITHMETIC][cfg.objective])
    folds = f" ({len(choice.folds)} folds)" if len(choice.folds) > 1 else ""
    header = (
        f"{cfg.dataset.name} {cfg.split} · {cfg.model.name} · {choice.settings_text()}{folds} "
        f"chosen by selection={choice.method} ({choice.criterion})"
    )
    summary = {
        "selection/method": choice.method,
        "selection/criterion": choice.criterion,
        "alpha": choice.alpha,  # None where folds chose differently: the config's alpha.used_per_fold holds theirs
        "lam": choice.lam,
        "selection/folds": len(choice.folds),
    }
    result = {"alpha": choice.alpha, "lam": choice.lam, "folds": chosen["folds"]}
    if cfg.selection.bootstrap.resamples:
        line, sure = report_bootstrap(bootstrap.selection_problem(pipeline, cfg, choice), cfg, out_dir, run)
        header, summary = f"{header}\n{line}", {**summary, **sure}
    outcome = JobOutcome(cfg, pipeline, out_dir, choice.lam, means, per_query, header, result, summary)
    outcome.extra["selection"] = chosen
    outcome.extra["lam"] = choice.system_lambdas(cfg.systems)
    outcome.folds = choice.folds
    return outcome


def selection_curves(choice: Choice) -> dict[str, tuple[str, list[dict]]]:
    """A choice's criterion as W&B curves, by name: (axis, points). ``alpha_curve`` against α at each fold's chosen
    λ and, where λ was chosen too, ``lambda_curve`` against λ at each fold's chosen α; each point holds α, λ and the
    criterion, as ``value``, or ``fold_<k>`` (one line per fold) where cross-validation's folds chose apart."""
    curves: dict[str, tuple[str, list[dict]]] = {"alpha_curve": ("alpha", []), "lambda_curve": ("lam", [])}
    several = choice.method == "cross_validation"  # the curve's rows name their fold only there
    for index, fold in enumerate(choice.folds):
        rows = [row for row in choice.curve if row["fold"] == (index if several else None)]
        key = f"fold_{index}" if several else "value"
        for axis, points in curves.values():
            held = "lam" if axis == "alpha" else "alpha"
            line = sorted((row for row in rows if row[held] == getattr(fold, held)), key=lambda row: row[axis])
            points += [{"alpha": r["alpha"], "lam": r["lam"], key: _defined(r["value"])} for r in line]
    if len({row["lam"] for row in choice.curve}) < 2:  # λ was given, not chosen: no λ curve
        del curves["lambda_curve"]
    return curves


def _defined(value: float) -> float | None:
    return None if math.isnan(value) else value


def report_bootstrap(problem, cfg: Config, out_dir: Path, run) -> tuple[str, dict]:
    """Rerun a choice on ``selection.bootstrap.resamples`` resamples of its queries (``pipeline.bootstrap``):
    ``selection_bootstrap.json`` and ``.png`` into ``out_dir``, the plot and each resample's row to W&B. Returns
    a line that says how sure the choice is, and the W&B summary values."""
    from taskvec_ir.pipeline import bootstrap

    result = bootstrap.resample(problem, cfg.selection.bootstrap)
    write_json(result, out_dir / "selection_bootstrap.json")
    bootstrap.plot(result, cfg.objective, out_dir / "selection_bootstrap.png")
    tracking.log_report(
        run,
        {"selection_bootstrap": out_dir / "selection_bootstrap.png"},
        {"selection_bootstrap": bootstrap.draws_table(result)},
    )
    if result["matches_selection"] is False:  # a near-tie the resamples' rounding breaks otherwise
        log.warning("The bootstrap's rerun on the queries as they are chose %s, not the job's choice", result["choice"])
    return bootstrap.describe(result, cfg.objective), bootstrap.summary(result)


def used_by_selection(cfg: Config, choice) -> dict:
    """The ``alpha`` and ``lam`` config groups as a selection ran them: ``used`` is the α (λ) the evaluation ran
    at, and ``value_overridden_by`` says the configured ``value`` did not run. Under cross-validation each fold's
    queries ran at their fold's choice (``used_per_fold``): ``used`` is that value when every fold chose it, and
    null when they differ (no single α ran)."""
    overridden = {"value_overridden_by": f"selection={choice.method}"}
    groups = {"alpha": {**asdict(cfg.alpha), "used": choice.alpha}, "lam": {**asdict(cfg.lam), "used": choice.lam}}
    if cfg.retriever.dense:
        groups["lam"]["not_applied"] = NO_FUSION
    for key, group in groups.items():
        group.update(overridden)
        if len(choice.folds) > 1:
            group["used_per_fold"] = [getattr(fold, key) for fold in choice.folds]
            group["used_means"] = "the value every fold chose; null: folds differ (used_per_fold)"
    return groups


def trec_runs(cfg: Config, out_dir: Path, outcome: JobOutcome) -> list[Artifact]:
    """The TREC runs the job evaluated (none without systems), one version of ``runs-<model>-<dataset>-<split>`` per
    job; a sweep's final evaluation uploads them (another machine needs them for its own tests), other jobs
    reference them."""
    if not outcome.means:
        return []
    final = cfg.sweep is not None and cfg.sweep.final
    metadata = {"systems": list(cfg.systems), "alpha": outcome.result.get("alpha", cfg.alpha.value), "lam": outcome.lam}
    name = f"runs-{cfg.model.name}-{cfg.dataset.name}-{cfg.split}"
    return [Artifact(name, "trec_runs", out_dir / "runs", metadata, upload=final)]


def record_slurm_job(out_dir: Path) -> dict | None:
    """The SLURM job this job runs in (``slurm_job``), if any, written to the log and to ``slurm.json`` in
    ``out_dir`` (where a resumed sweeper finds a lost trial's job to cancel it); the W&B config records it too."""
    slurm = slurm_job()
    if slurm is not None:
        log.info("SLURM job %s on %s", slurm.get("array", slurm["job_id"]), slurm["node"])
        write_json(slurm, out_dir / "slurm.json")
    return slurm


def run_config(cfg: Config) -> dict:
    """What a W&B run records as its config: the resolved config, and the code that ran it (package versions,
    git commits: ``lineage.code_provenance``)."""
    return {**asdict(cfg), "provenance": code_provenance(os.getcwd())}


def merged_model_artifact(pipeline: Pipeline, folder: Path, lam: float) -> Artifact:
    """Θ' at the spec's setting written into ``folder`` (loads with ``from_pretrained``), as a model artifact."""
    pipeline.write_merged_checkpoint(folder)
    setting = pipeline.spec.merge.identity()
    name = cache_key(ir=checkpoint_fingerprint(pipeline.folders()[IR]), setting=setting)
    metadata = {**setting, "lam": lam, "cache_key": name}
    return Artifact(f"merged-{pipeline.spec.model.name}", "model", folder, metadata, checksum=False, aliases=(name,))


def job_header(cfg: Config, lam: float | None, chosen_by: str | None = None) -> str:
    """``scifact test · minilm_demo · α=0.5 · λ=0.3 (BM25 weight)``, with the merge method when not the paper's;
    how λ was chosen where it was (``λ tuned on dev (lam.grid, by ndcg@10)``); ``· dense retrieval (no fusion)``
    in place of λ under retriever=dense; and the label of a supervised control."""
    setting = cfg.merge_setting().identity()
    alphas = ", ".join(f"α={a:g}" if v == PRIMARY else f"α[{v}]={a:g}" for v, a in setting.pop("alphas").items())
    merge = "" if setting == {"method": "task_arithmetic"} else f" · {setting}"
    weight = f"BM25 weight; {chosen_by}" if chosen_by else "BM25 weight"
    fusion = "dense retrieval (no fusion)" if lam is None else f"λ={lam:g} ({weight})"
    control = f" · {SUPERVISED_LABEL}" if cfg.model.supervised else ""
    return f"{cfg.dataset.name} {cfg.split} · {cfg.model.name} · {alphas or 'α=0'}{merge} · {fusion}{control}"


def adapted_provenance(pipeline: Pipeline) -> dict[str, dict]:
    """provenance.json of each checkpoint of the pipeline that ``adapt`` made, by role."""
    folders = pipeline.folders()
    return {
        role: json.loads((folders[role] / "provenance.json").read_text())
        for role, source in model_sources(pipeline.spec.model).items()
        if isinstance(source, AdaptConfig)
    }
