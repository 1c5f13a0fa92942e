"""Benchmark 2: what the second and later trials of a sweep cost, against the naive way.

    TASKVEC_IR_MIRROR=../shared/datasets .venv/bin/python bench/trial_cost.py [--dev-fraction 0.05] [--top-k 10]

Workload: the demo triple (all-MiniLM-L6-v2 + sre-embedding-model) on a SciFact dev sample.
- naive, as the paper's scripts: every trial loads the three checkpoints, computes τ, builds BM25 over the
  corpus, scores, fuses and evaluates;
- ours, a trial as our sweeper runs it (``run_job`` in one process, W&B disabled to time the pipeline,
  then offline for its overhead): a new α reuses the loaded ΘT, τ and the cached candidates and pays its
  forward passes; a new λ alone is served from the score cache.
Prints seconds per trial and the ratios measured in this run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from taskvec_ir.config.composed import Config
from taskvec_ir.config.merge_settings import MergeSetting
from taskvec_ir.ir import documents, evaluation, fusion, splits
from taskvec_ir.ir.analyzers import Analyzer
from taskvec_ir.ir.bm25_index import BM25Index, build_bm25_index
from taskvec_ir.models import merging, scoring
from taskvec_ir.models.checkpoints import CheckpointReader, resolve_model_source
from taskvec_ir.runs.compose import compose
from taskvec_ir.runs.job import prepare_environment, run_job


def config(*overrides: str) -> Config:
    return compose(overrides)


def naive_trial(cfg: Config, alpha: float, lam: float) -> float:
    """Everything from scratch, as a script run once per (α, λ) would."""
    model, dataset = cfg.model, cfg.dataset
    folders = {role: resolve_model_source(getattr(model, role)) for role in ("ir", "base", "domain")}
    scorer = scoring.load_scorer(model.kind, folders["ir"], model.scorer)
    tau = merging.task_vector(scorer.module, CheckpointReader(folders["base"]), CheckpointReader(folders["domain"]))
    merging.apply_task_vectors(scorer.module, {"domain": tau}, MergeSetting((("domain", alpha),)))
    split, docs = splits.load_split(dataset, "dev"), documents.load_docs(dataset)
    analyzer = Analyzer.of(dataset.language, cfg.retriever.analyzer)
    with tempfile.TemporaryDirectory() as index:
        build_bm25_index(docs.items(), analyzer, Path(index) / "bm25")
        bm25 = BM25Index(Path(index) / "bm25", analyzer, cfg.retriever.k1, cfg.retriever.b)
        candidates = bm25.search(split.queries, cfg.retriever.top_k)
    scores = scorer.score(split.queries, docs, candidates)
    means, _ = evaluation.evaluate_run(split.qrels, fusion.fuse(candidates, scores, lam), ["ndcg@10"])
    return means["ndcg@10"]


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev-fraction", type=float, default=0.05)
    parser.add_argument("--top-k", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trial-cost-"))
    base = [
        f"dataset.splits.dev.fraction={args.dev_fraction}",
        f"retriever.top_k={args.top_k}",
        "split=dev",
        "systems=[bm25,task_arithmetic]",
        "model.scorer.show_progress=false",
        f"cache.dir={work / 'cache'}",
    ]
    prepare_environment(config(*base))

    naive_trial(config(*base), 0.3, 0.5)  # warm-up: imports, ranx compilation, page cache
    naive = timed(lambda: naive_trial(config(*base), 0.6, 0.5))

    os.environ["WANDB_MODE"] = "disabled"
    run_job(config(*base, "alpha.value=0.3", "lam.value=0.5"), work / "t0")  # the sweep's first trial
    new_alpha = timed(lambda: run_job(config(*base, "alpha.value=0.6", "lam.value=0.5"), work / "t1"))
    new_lambda = timed(lambda: run_job(config(*base, "alpha.value=0.6", "lam.value=0.2"), work / "t2"))
    os.environ["WANDB_MODE"] = "offline"
    run_job(config(*base, "alpha.value=0.6", "lam.value=0.3"), work / "t3")  # W&B's own first-run start-up
    new_lambda_wandb = timed(lambda: run_job(config(*base, "alpha.value=0.6", "lam.value=0.4"), work / "t4"))

    print(f"\nSciFact dev sample ({args.dev_fraction:.0%} of train), BM25 top-{args.top_k}, demo triple, CPU")
    print(f"{'trial':<52} {'seconds':>8} {'naive / this':>13}")
    for name, seconds in [
        ("naive (reload 3 checkpoints, τ, BM25, score)", naive),
        ("ours, new α (forward passes only)", new_alpha),
        ("ours, new λ only (scores from the cache)", new_lambda),
        ("ours, new λ only, with an offline W&B run", new_lambda_wandb),
    ]:
        print(f"{name:<52} {seconds:8.3f} {naive / seconds:12.1f}×")
    print(
        f"new-α trial / λ-only trial: {new_alpha / new_lambda:.0f}× (goal ≥ 50×); "
        f"with W&B offline: {new_alpha / new_lambda_wandb:.0f}×"
    )


if __name__ == "__main__":
    main()
