"""Who a job's W&B run is: its kind (the job type), a name unique in the project, and the tags that find it; its
group is the config's (a sweep's study, a table's cell, none for a single job). docs/wandb.md says which to filter on.
"""

from __future__ import annotations

from dataclasses import replace

from taskvec_ir.config.composed import Config
from taskvec_ir.config.merge_settings import RANDOM
from taskvec_ir.config.model import SUPERVISED_TAG, AdaptConfig
from taskvec_ir.config.runtime import WandbConfig
from taskvec_ir.config.sources import model_sources
from taskvec_ir.reporting import tracking


def run_kind(cfg: Config) -> str:
    """What a job's W&B run is, its job type and the first part of its name: ``wandb.job_type`` where set (a table's
    general-domain jobs: ``general``), else ``adapt``, a sweep's ``trial`` or ``final``, ``selection`` or ``run``."""
    if cfg.wandb.job_type:
        return cfg.wandb.job_type
    if cfg.task == "adapt":
        return "adapt"
    if cfg.sweep is not None:
        return "final" if cfg.sweep.final else "trial"
    return "selection" if cfg.selection.method else "run"


def run_name(cfg: Config, kind: str) -> str:
    """``wandb.name`` as the user gave it, else ``<kind>/<dataset>/<model>/<setting>-<suffix>``, unique
    (``tracking.unique_name``): the setting is a trial's number, a selection's method, the checkpoints an
    adaptation builds, or the α and λ the job runs at (``lam=grid``: chosen from lam.grid), after the merge method
    where it is not task arithmetic and ``direction=random`` for the random-direction null."""
    if cfg.wandb.name:
        return cfg.wandb.name
    if kind == "trial":
        setting = str(cfg.trial)
    elif kind == "selection":
        setting = cfg.selection.method
    elif kind == "adapt":
        setting = "+".join(r for r, source in model_sources(cfg.model).items() if isinstance(source, AdaptConfig))
    else:
        lam = "" if cfg.retriever.dense else f",lam={'grid' if cfg.lam.value is None else f'{cfg.lam.value:g}'}"
        setting = f"alpha={cfg.alpha.value:g}{lam}"
    if cfg.merge.direction == RANDOM:  # the random-direction null, apart from the real vector's runs
        setting = f"direction={RANDOM},{setting}"
    if cfg.merge.method != "task_arithmetic":
        setting = f"{cfg.merge.method},{setting}"
    return tracking.unique_name(f"{kind}/{cfg.dataset.name}/{cfg.model.name}/{setting}")


def run_settings(cfg: Config) -> WandbConfig:
    """``cfg.wandb`` with the run's kind as job type (``run_kind``), a unique name (``run_name``) and tags that find
    the job: ``merge:`` (and ``direction:random`` for the random-direction null), ``selection:`` (``sweep`` for a
    sweep's jobs, ``none`` for α and λ as given), ``study:<name>@<storage hash>`` (two studies of one name in two
    storages apart), ``table:`` (every job of a table carries ``table:<name>``: one filter shows the whole table),
    and ``control:supervised`` for a model whose ΘD was trained on relevance labels (never a zero-shot result).
    The group is the config's: a sweep's study, a table's cell, none for a single job (docs/wandb.md)."""
    study = cfg.sweep.study if cfg.sweep is not None and cfg.sweep.study.name else None
    kind = run_kind(cfg)
    selected = cfg.selection.method or ("sweep" if cfg.sweep is not None else "none")
    tags = [*cfg.wandb.tags, f"merge:{cfg.merge.method}", f"selection:{selected}"]
    tags += [f"direction:{RANDOM}"] if cfg.merge.direction == RANDOM else []  # the random-direction null
    tags += [f"study:{(study.group or study.name).removeprefix('sweep/')}"] if study else []
    tags += [f"table:{cfg.table.name}"] if cfg.table.name else []
    tags += [SUPERVISED_TAG] if cfg.model.supervised else []
    return replace(cfg.wandb, job_type=kind, name=run_name(cfg, kind), tags=list(dict.fromkeys(tags)))
