"""The ``taskvec-ir`` command: a Hydra app that wires the config to the stages of one experiment.

data ─> BM25 candidates ─> ΘT scores (α = 0) ─> Θ' = ΘT + α·τ scores ─> fusion with λ ─> evaluation ─> files, W&B
"""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("taskvec_ir")
# The configs live at the top of the repository (the package is installed in editable mode). Hydra
# resolves a relative config_path against the calling module's package, which "../.." cannot leave.
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")

SYSTEMS = ("bm25", "ir_model", "task_arithmetic")  # BM25; ΘT alone (α = 0); Θ' at the configured α
_USER_ERRORS = (ValueError, FileNotFoundError)


def check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise ValueError(f"alpha.value: {alpha!r} must be a finite number (the weight of the task vector)")
    return float(alpha)


def _prepare_environment(cfg: DictConfig) -> None:
    """Set what libraries read at import time, before they are imported."""
    from taskvec_ir.data import use_ir_datasets_home

    use_ir_datasets_home(cfg.data.home)
    # ranx is compiled by numba on first use (~50 s): a persistent cache pays that once per machine.
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path("~/.cache/taskvec-ir/numba").expanduser()))


def run_experiment(cfg: DictConfig, out_dir: Path) -> dict[str, dict[str, dict[str, float]]]:
    """Run one experiment into ``out_dir``; return ``metrics[split][system][measure]``."""
    from taskvec_ir import data, evaluation, fusion, merging, retrieval, scoring, tracking
    from taskvec_ir.checkpoints import CheckpointError, CheckpointReader, model_type, resolve_model_source
    from taskvec_ir.outputs import write_json

    # Cheap checks first: a wrong value must not cost a model load.
    alpha = check_alpha(cfg.alpha.value)
    lam = fusion.check_lambda(cfg.lam.value)
    if cfg.retriever.top_k <= 0:
        raise ValueError(f"retriever.top_k: {cfg.retriever.top_k} must be positive")
    if cfg.model.kind not in scoring.KINDS:
        raise ValueError(f"model.kind: '{cfg.model.kind}' is not one of {', '.join(scoring.KINDS)}")
    settings = scoring.ScorerSettings.from_mapping(cfg.model.scorer)
    mode = tracking.tracking_mode(cfg.wandb.mode)
    _prepare_environment(cfg)
    dataset = OmegaConf.to_container(cfg.dataset, resolve=True)
    data.place_offline_files(dataset, cfg.data.mirror_dir or None)
    split = data.load_split(dataset, cfg.split)

    folders = {role: resolve_model_source(cfg.model[role], f"model.{role}") for role in ("ir", "base", "domain")}
    types = {role: model_type(folder) for role, folder in folders.items()}
    if len({t for t in types.values() if t}) > 1:
        raise CheckpointError(f"model: the triple mixes architectures {types}; base, domain and ir must share one")

    config = OmegaConf.to_container(cfg, resolve=True)
    with tracking.wandb_run(config, out_dir, mode=mode, project=cfg.wandb.project, entity=cfg.wandb.entity,
                            group=cfg.wandb.group, job_type=cfg.wandb.job_type, tags=cfg.wandb.tags) as run:
        scorer = scoring.load_scorer(cfg.model.kind, folders["ir"], settings)
        tau = merging.task_vector(scorer.module, CheckpointReader(folders["base"]), CheckpointReader(folders["domain"]))
        merge_stats = merging.task_vector_stats(scorer.module, tau)
        log.info("Task vector: %s", merge_stats)
        run.summary.update({f"merge/{key}": value for key, value in merge_stats.items()})

        docs = data.load_docs(dataset)
        log.info("BM25 over %d documents for %d %s queries", len(docs), len(split.queries), cfg.split)
        candidates = retrieval.bm25_candidates(docs, split.queries, language=dataset["language"],
                                               **OmegaConf.to_container(cfg.retriever, resolve=True))

        ir_scores = scorer.score(split.queries, docs, candidates)
        merging.apply_task_vector(scorer.module, tau, alpha)
        merged_scores = ir_scores if alpha == 0 else scorer.score(split.queries, docs, candidates)
        if cfg.save_merged:
            scorer.save(out_dir / "merged_model")

        runs = {
            "bm25": candidates,
            "ir_model": fusion.fuse(candidates, ir_scores, lam),
            "task_arithmetic": fusion.fuse(candidates, merged_scores, lam),
        }
        means, per_query = {}, {}
        for system, system_run in runs.items():
            evaluation.save_trec_run(system_run, out_dir / "runs" / f"{cfg.split}.{system}.trec", system)
            means[system], per_query[system] = evaluation.evaluate_run(split.qrels, system_run, cfg.measures)
        metrics = {cfg.split: means}
        write_json({cfg.split: per_query}, out_dir / "per_query.json")
        write_json(metrics, out_dir / "metrics.json")
        tracking.log_results(run, cfg.split, means, per_query)

    print(f"\n{cfg.dataset.name} {cfg.split} · {cfg.model.name} · α={alpha:g} · λ={lam:g} (BM25 weight)")
    print(evaluation.format_table(means, cfg.measures))
    print(f"Outputs: {out_dir}")
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        metrics = run_experiment(cfg, out_dir)
    except _USER_ERRORS as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        log.error("%s", error)
        sys.exit(f"taskvec-ir: {error}")
    return metrics[cfg.split]["task_arithmetic"][cfg.measures[0]]
