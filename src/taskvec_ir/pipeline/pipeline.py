"""One pipeline's stages, wired together: data → BM25 candidates → model scores at any α → fusion → evaluation.

``Pipeline`` takes a ``PipelineSpec`` (the collection, the first stage, the triple and Θ') and computes
each stage's result only when it is asked for, through the content-addressed cache: a sweep trial that
changes only λ reads the candidates and scores from the cache and loads no model at all; one that changes
α reuses the loaded ΘT, τ and candidates (``model_pool``) and pays only its forward passes.

Each concern is its own part: ``first_stage`` (query sets, candidates, texts), ``triple`` (the checkpoints by
role and their scorers), ``merged`` (Θ' from ΘT and the task vectors) and ``model_scores`` (scores of
candidates by a set of weights). This class fuses and evaluates the systems of ``taskvec_ir.config.systems``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from taskvec_ir.config.composed import Config
from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.config.measures import MEASURES
from taskvec_ir.config.merge_settings import MergeSetting
from taskvec_ir.config.model import ModelConfig
from taskvec_ir.config.retriever import RetrieverConfig
from taskvec_ir.config.systems import BM25
from taskvec_ir.ir import evaluation, fusion
from taskvec_ir.models.model_pool import POOL, ModelPool
from taskvec_ir.pipeline.dense import DenseRetrieval
from taskvec_ir.pipeline.first_stage import FirstStage, Run
from taskvec_ir.pipeline.merged_model import MergedModel
from taskvec_ir.pipeline.model_scores import ModelScores, Weights, system_weights
from taskvec_ir.pipeline.selection import tie_rule
from taskvec_ir.pipeline.triple import Triple
from taskvec_ir.reporting.lineage import Artifact
from taskvec_ir.storage.cache import Cache

log = logging.getLogger(__name__)


@dataclass
class PipelineSpec:
    """What a pipeline computes from: the collection, the first stage, the triple and Θ'."""

    dataset: DatasetConfig
    model: ModelConfig
    merge: MergeSetting = MergeSetting()
    retriever: RetrieverConfig = field(default_factory=RetrieverConfig)
    stream_task_vector: bool = False  # keep τ on disk and stream it at each α (peak memory ≈ one model)
    mirror_dir: str | None = None  # offline copies of the files ir_datasets downloads (an adapted ΘD's corpus)

    @classmethod
    def from_config(cls, cfg: Config) -> PipelineSpec:
        return cls(
            cfg.dataset,
            cfg.model,
            cfg.merge_setting(),
            cfg.retriever,
            cfg.merge.stream_task_vector,
            cfg.data.mirror_dir,
        )


class Pipeline:
    """Lazily computed, cached stages of one spec (see the module docstring)."""

    def __init__(self, spec: PipelineSpec, cache: Cache, pool: ModelPool = POOL):
        self.spec, self.cache = spec, cache
        self.first_stage = FirstStage(spec.dataset, spec.retriever, cache)
        self.triple = Triple(spec.model, cache, pool, spec.mirror_dir)
        self.merged = MergedModel(spec.model, self.triple, cache, pool, spec.stream_task_vector)
        self.model_scores = ModelScores(spec.model, self.first_stage, self.triple, self.merged, cache)
        # retriever=dense: model systems rank the whole corpus themselves (no candidates, no fusion)
        self.dense = (
            DenseRetrieval(spec.dataset, spec.retriever, self.first_stage, self.model_scores, cache)
            if spec.retriever.dense
            else None
        )
        # What the stages' users call most, by name.
        self.split = self.first_stage.split
        self.candidates = self.first_stage.candidates
        self.texts = self.first_stage.texts
        self.folders = self.triple.folders
        self.scores = self.model_scores.scores

    def check_layers(self) -> None:
        """Per-layer α rules of the spec name layers the IR model has."""
        self.triple.check_layers(self.spec.merge)

    def merge_diagnostics(self, setting: MergeSetting | None = None) -> dict:
        """What the merge at ``setting`` (default: the spec's) does to ΘT."""
        return self.merged.diagnostics(setting or self.spec.merge)

    def write_merged_checkpoint(self, folder: Path) -> None:
        """Write Θ' at the spec's setting as a checkpoint that loads like ΘT (``from_pretrained``)."""
        self.merged.save(self.spec.merge, folder)

    def inputs(self, split: str, merged: bool) -> list[Artifact]:
        """What a job evaluating ``split`` read, as W&B artifacts (``lineage``): its BM25 candidates, the task
        vectors when a merge was made (``merged``), and the checkpoints adapted to a corpus. Only entries that
        exist in the cache."""
        candidates = self.first_stage.artifact(split)
        return [
            *([candidates] if candidates else []),
            *(self.merged.artifacts(self.spec.merge.method) if merged else []),
            *self.triple.adapted(),
        ]

    def system_run(self, split: str, system: str, lam: float | None, setting: MergeSetting | None = None) -> Run:
        """``system``'s run of ``split``, Θ' at ``setting`` (default: the spec's): fused with BM25 at ``lam``, or
        under retriever=dense its own ranking of the corpus (``lam`` does not apply)."""
        weights = system_weights(system, setting or self.spec.merge)
        if weights is None:
            return self.candidates(split)
        if self.dense is not None:
            return self.dense.run(split, weights)
        return fusion.fuse(self.candidates(split), self.scores(split, weights), lam)

    def model_run(self, split: str, weights: Weights) -> Run:
        """The raw scores of ``weights`` on ``split``: its top documents of the corpus (retriever=dense), or its
        scores of the first stage's candidates."""
        return self.dense.run(split, weights) if self.dense is not None else self.scores(split, weights)

    def tune_lambda(
        self, split: str, system: str, grid: Sequence[float], measure: str
    ) -> tuple[float, dict[float, float]]:
        """The λ of ``grid`` that maximises ``measure`` on ``split`` (ties: the smallest λ, by ``tie_rule.best``),
        and ``measure`` at every λ of the grid (the curve a sweep's α × λ heatmap is made of)."""
        qrels = self.split(split).qrels
        values = {
            lam: evaluation.evaluate_run(qrels, self.system_run(split, system, lam), [measure])[0][measure]
            for lam in grid
        }
        best = tie_rule.best((lam, value, (), lam) for lam, value in values.items())
        # the whole curve is W&B's (tracking.log_lambda_curve) and the debug log's (hydra.verbose=taskvec_ir)
        log.debug("λ on %s by %s: %s -> %g", split, measure, {k: round(v, 4) for k, v in values.items()}, best)
        return best, values

    def tune_lambdas(
        self, split: str, systems: Sequence[str], grid: Sequence[float], measure: str
    ) -> dict[str, float | None]:
        """Each fused system's best λ of ``grid`` on ``split`` (``tune_lambda``; BM25's: None): every system tuned
        with the same budget, from scores computed once (cached)."""
        return {s: None if s == BM25 else self.tune_lambda(split, s, grid, measure)[0] for s in systems}

    def evaluate(
        self,
        split: str,
        systems: Sequence[str],
        lam: float | Mapping[str, float | None],
        runs_dir: Path | None = None,
        measures: Sequence[str] = MEASURES,
    ):
        """means[system][measure] and per_query[system][measure][query_id], each system fused at ``lam`` (or at
        its own λ, ``lam[system]``); TREC runs into ``runs_dir``."""
        qrels = self.split(split).qrels
        means, per_query = {}, {}
        for system in systems:
            run = self.system_run(split, system, lam[system] if isinstance(lam, Mapping) else lam)
            if runs_dir is not None:
                evaluation.save_trec_run(run, runs_dir / f"{split}.{system}.trec", system)
            means[system], per_query[system] = evaluation.evaluate_run(qrels, run, measures)
        return means, per_query


__all__ = ["Pipeline", "PipelineSpec", "Run", "Weights", "system_weights"]
