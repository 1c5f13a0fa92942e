"""The general-domain retention of a Pareto sweep's trial (``sweep.retention``, docs/sweeps.md): the trial's Θ' and
ΘT evaluated on a general collection, each fused with its BM25 candidates at the trial's λ (nothing is tuned there);
the retention is task arithmetic's objective measure minus ΘT's."""

from __future__ import annotations

from dataclasses import replace

from taskvec_ir.config.composed import Config
from taskvec_ir.config.systems import IR_MODEL, TASK_ARITHMETIC
from taskvec_ir.ir.irds import place_offline_files
from taskvec_ir.pipeline.pipeline import Pipeline, PipelineSpec
from taskvec_ir.storage.cache import Cache


def is_retained(cfg: Config) -> bool:
    """Whether ``cfg`` is a Pareto sweep's trial, which measures its retention (its final evaluation does not)."""
    return cfg.sweep is not None and cfg.sweep.retention is not None and not cfg.sweep.final


def general_pipeline(cfg: Config, cache: Cache) -> Pipeline:
    """``cfg``'s pipeline on the general collection: its model config, merge setting and retriever exactly (the
    trial's Θ'), another dataset. Reads the general split and its candidates: a wrong collection fails here."""
    retention = cfg.sweep.retention
    place_offline_files(retention.dataset, cfg.data.mirror_dir)
    pipeline = Pipeline(replace(PipelineSpec.from_config(cfg), dataset=retention.dataset), cache)
    pipeline.split(retention.split)
    pipeline.candidates(retention.split)
    return pipeline


def measure_retention(cfg: Config, cache: Cache, lam: float | None) -> tuple[float, dict]:
    """The retention of ``cfg``'s Θ' (TA's ``cfg.objective`` minus ΘT's on the general collection, both at ``lam``),
    and what ``metrics.json`` records of it."""
    retention = cfg.sweep.retention
    pipeline = general_pipeline(cfg, cache)
    means, _ = pipeline.evaluate(retention.split, [IR_MODEL, TASK_ARITHMETIC], lam, measures=[cfg.objective])
    value = means[TASK_ARITHMETIC][cfg.objective] - means[IR_MODEL][cfg.objective]
    queries = len(pipeline.split(retention.split).queries)
    recorded = {
        "dataset": retention.dataset.name,
        "split": retention.split,
        "measure": cfg.objective,
        "queries": queries,
        "lam": lam,
        "means": {system: values[cfg.objective] for system, values in means.items()},
        "retention": value,
    }
    return value, recorded
