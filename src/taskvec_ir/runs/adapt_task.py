"""``task=adapt``: the adapted checkpoints a model config names, built alone, their training logged to W&B."""

from __future__ import annotations

from pathlib import Path

from taskvec_ir.config.composed import Config
from taskvec_ir.config.sources import config_key
from taskvec_ir.pipeline.pipeline import Pipeline, PipelineSpec
from taskvec_ir.reporting import tracking
from taskvec_ir.runs.job import adapted_provenance, prepare_environment, random_seeds, run_config
from taskvec_ir.runs.run_identity import run_settings
from taskvec_ir.storage.cache import Cache


def run_adapt(cfg: Config, out_dir: Path, sampler_seed: int | None = None) -> dict:
    """``task=adapt``: build the adapted checkpoints the model config names (``conf/adapt/``), with the
    training loss logged to W&B. Evaluation runs build them too, on first use; this does only that."""
    tracking.tracking_mode(cfg.wandb.mode)
    prepare_environment(cfg)
    pipeline = Pipeline(PipelineSpec.from_config(cfg), Cache(cfg.cache.dir))
    with tracking.wandb_run(run_config(cfg), out_dir, run_settings(cfg), random_seeds(cfg, sampler_seed)) as run:
        pipeline.triple.on_adapt_step = tracking.step_logger(run, "adapt/loss")
        provenance = adapted_provenance(pipeline)
        for role, record in provenance.items():
            tracking.log_adapted(run, role, record)
        tracking.log_artifacts(run, pipeline.triple.adapted())
    for role, record in provenance.items():
        print(
            f"{config_key(role)}: {record['objective']} on {record['documents']} {record['corpus']['name']} "
            f"documents, {record['steps']} steps, {record['wall_seconds']:.0f} s, "
            f"final loss {record['final_loss']:.3g}\n"
            f"  {pipeline.folders()[role]}"
        )
    return {"adapted": {role: str(pipeline.folders()[role]) for role in provenance}}
