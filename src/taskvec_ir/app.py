"""The ``taskvec-ir`` command: a Hydra app that wires the config to the stages of one experiment.

One job evaluates ``systems`` (default: BM25, ΘT alone, Θ' at α) on ``split``, writes ``metrics.json``,
``per_query.json`` and the TREC runs into its job dir, and logs a W&B run. In a sweep each trial is such a
job on the tuning split, and the sweeper (``taskvec_ir.sweeping``) reads back its objective.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from taskvec_ir.outputs import OutputError

log = logging.getLogger("taskvec_ir")
# The configs live at the top of the repository (the package is installed in editable mode). Hydra
# resolves a relative config_path against the calling module's package, which "../.." cannot leave.
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")
_USER_ERRORS = (ValueError, FileNotFoundError, OutputError)  # a message, not a traceback


def prepare_environment(cfg: Mapping) -> None:
    """Set what libraries read at import time, before they are imported, and place offline files."""
    from taskvec_ir import data

    data.use_ir_datasets_home(cfg["data"]["home"])
    # ranx is compiled by numba on first use (~50 s): a persistent cache pays that once per machine.
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path("~/.cache/taskvec-ir/numba").expanduser()))
    data.place_offline_files(cfg["dataset"], cfg["data"]["mirror_dir"] or None)


def open_experiment(cfg: Mapping):
    """Validate ``cfg`` and set up its experiment; fails fast, before any model is loaded or scored."""
    from taskvec_ir.cache import Cache
    from taskvec_ir.experiment import Experiment, validate
    from taskvec_ir.tracking import tracking_mode

    validate(cfg)
    tracking_mode(cfg["wandb"]["mode"])
    prepare_environment(cfg)
    cache = Cache(cfg["cache"]["dir"])
    if cfg["cache"]["clear"]:
        cache.clear()
    experiment = Experiment(cfg, cache)
    experiment.split(cfg["split"])  # a wrong id or split fails here, cheaply
    experiment.folders()  # a missing or mismatched checkpoint fails here, before BM25 or scoring
    experiment.check_layers()  # and a per-layer α for a layer the model does not have
    return experiment


def run_job(cfg: Mapping, out_dir: Path) -> dict:
    """One job into ``out_dir``; returns the objective (and the λ used) for a sweeper."""
    from taskvec_ir import evaluation, tracking
    from taskvec_ir.experiment import merge_setting
    from taskvec_ir.outputs import write_json

    experiment = open_experiment(cfg)
    split, systems, measures = cfg["split"], list(cfg["systems"]), list(cfg["measures"])
    with tracking.wandb_run(cfg, out_dir, cfg["wandb"]) as run:
        lam = cfg["lam"]["value"]
        if lam is None:  # chosen on this split from cached scores: costs no model time
            lam, _ = experiment.best_lambda(split, "task_arithmetic", cfg["lam"]["grid"], cfg["objective"])
        means, per_query = experiment.evaluate(split, systems, lam, out_dir / "runs", measures)
        if cfg["save_merged"]:
            experiment.save_merged(out_dir / "merged_model")
        result = {"lam": lam}
        if "task_arithmetic" in means:
            result["objective"] = means["task_arithmetic"][cfg["objective"]]
            write_json(result, out_dir / "objective.json")  # what a sweeper needs to count this job as done
        metrics = {split: means}
        if {"task_arithmetic", "alpha_one"} & set(systems) or cfg["save_merged"]:  # a merge was made
            metrics["merge"] = experiment.merge_diagnostics(merge_setting(cfg))
            tracking.log_merge_diagnostics(run, metrics["merge"])
        write_json({split: per_query}, out_dir / "per_query.json")
        write_json(metrics, out_dir / "metrics.json")  # last: the job's outputs are complete
        tracking.log_results(run, split, means, per_query)
        run.summary.update({"alpha": cfg["alpha"]["value"], "lam": lam, **{f"cache/{k}": v for k, v in experiment.cache.stats.items()}})
        if "objective" in result:
            run.summary[f"objective/{split}/{cfg['objective']}"] = result["objective"]
        for role, provenance in adapted_provenance(experiment).items():
            tracking.log_adapted(run, role, provenance)
    log.info("Cache: %s", dict(experiment.cache.stats))
    setting = merge_setting(cfg).describe()
    alphas = ", ".join(f"α={a:g}" if v == "domain" else f"α[{v}]={a:g}" for v, a in setting.pop("alphas").items())
    merge = "" if setting == {"method": "task_arithmetic"} else f" · {setting}"
    print(f"\n{cfg['dataset']['name']} {split} · {cfg['model']['name']} · {alphas or 'α=0'}{merge} · λ={lam:g} (BM25 weight)")
    if means:
        print(evaluation.format_table(means, measures))
    if cfg["save_merged"]:
        print(f"Merged model (loads with from_pretrained): {out_dir / 'merged_model'}")
    print(f"Outputs: {out_dir}")
    return result


def adapted_provenance(experiment) -> dict[str, dict]:
    """provenance.json of each checkpoint of the experiment that ``task=adapt`` made, by role."""
    from taskvec_ir.experiment import model_sources

    folders = experiment.folders()
    return {role: json.loads((folders[role] / "provenance.json").read_text())
            for role, source in model_sources(experiment.cfg["model"]).items() if isinstance(source, Mapping)}


def run_adapt(cfg: Mapping, out_dir: Path) -> dict:
    """``task=adapt``: build the adapted checkpoints the model config names (``conf/adapt/``), with the
    training loss logged to W&B. Evaluation runs build them too, on first use; this does only that."""
    from taskvec_ir import tracking
    from taskvec_ir.cache import Cache
    from taskvec_ir.experiment import Experiment, config_key, model_sources, validate

    validate(cfg)
    roles = [role for role, source in model_sources(cfg["model"]).items() if isinstance(source, Mapping)]
    if not roles:
        raise ValueError(f"task=adapt: model '{cfg['model']['name']}' names no checkpoint to adapt (an adapt "
                         "config at model.domain); e.g. model=minilm_scifact_adapted")
    tracking.tracking_mode(cfg["wandb"]["mode"])
    prepare_environment(cfg)
    experiment = Experiment(cfg, Cache(cfg["cache"]["dir"]))
    with tracking.wandb_run(cfg, out_dir, {**cfg["wandb"], "job_type": "adapt"}) as run:
        experiment.on_adapt_step = lambda step, loss: run.log({"adapt/loss": loss}, step=step)
        provenance = adapted_provenance(experiment)
        for role, record in provenance.items():
            tracking.log_adapted(run, role, record)
    for role, record in provenance.items():
        print(f"{config_key(role)}: {record['objective']} on {record['documents']} {record['corpus']['name']} "
              f"documents, {record['steps']} steps, {record['wall_seconds']:.0f} s, final loss {record['final_loss']:.3g}\n"
              f"  {experiment.folders()[role]}")
    return {"adapted": {role: str(experiment.folders()[role]) for role in provenance}}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> dict:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    try:
        task = {"evaluate": run_job, "adapt": run_adapt}.get(cfg.task)
        if task is None:
            raise ValueError(f"task: '{cfg.task}' is not one of evaluate, adapt")
        return task(OmegaConf.to_container(cfg, resolve=True), Path(hydra_cfg.runtime.output_dir))
    except _USER_ERRORS as error:
        # In a sweep the sweeper records the failed trial; a single run ends with the message alone.
        if hydra_cfg.mode == RunMode.MULTIRUN or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        log.error("%s", error)
        sys.exit(f"taskvec-ir: {error}")
