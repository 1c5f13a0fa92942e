"""Model scores of a query set's candidates with a set of weights (ΘT merged at a setting, or ΘD alone), cached
per checkpoints, setting, scorer settings, queries and candidates: a setting scored once is never scored again,
whichever job asks."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from taskvec_ir.config.merge_settings import RANDOM, MergeSetting
from taskvec_ir.config.model import PRIMARY, ModelConfig
from taskvec_ir.config.sources import BASE, DOMAIN, IR, vector_roles
from taskvec_ir.config.systems import ALPHA_ONE, BM25, DOMAIN_MODEL, IR_MODEL, TASK_ARITHMETIC
from taskvec_ir.pipeline.first_stage import FirstStage, Run
from taskvec_ir.pipeline.merged_model import MergedModel
from taskvec_ir.pipeline.triple import Triple
from taskvec_ir.storage.cache import CACHE_VERSION, Cache, cache_key, checkpoint_fingerprint, text_digest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Weights:
    """Which weights score: ΘT merged as ``merge`` says (``source="ir"``) or the domain checkpoint alone."""

    source: str
    merge: MergeSetting = MergeSetting()

    def __post_init__(self):  # one name for one set of weights, so scores are cached once
        object.__setattr__(self, "merge", self.merge.normalized())

    def describe(self) -> str:
        if self.source == DOMAIN:
            return "ΘD"
        return f"ΘT merged {self.merge.identity()}" if self.merge.alphas else "ΘT alone"


def system_weights(system: str, setting: MergeSetting) -> Weights | None:
    """The weights a system (``taskvec_ir.config.systems``) scores with (None for BM25 alone)."""
    return {
        BM25: None,
        IR_MODEL: Weights(IR),
        TASK_ARITHMETIC: Weights(IR, setting),
        ALPHA_ONE: Weights(IR, setting.at(1.0)),
        DOMAIN_MODEL: Weights(DOMAIN),
    }[system]


class ModelScores:
    """Scores of ``first_stage``'s candidates by the weights asked for, computed with ``triple``'s scorers and
    ``merged``'s Θ', through the cache."""

    def __init__(self, model: ModelConfig, first_stage: FirstStage, triple: Triple, merged: MergedModel, cache: Cache):
        self.model, self.first_stage, self.triple, self.merged, self.cache = model, first_stage, triple, merged, cache
        self._scores: dict[tuple[str, Weights], Run] = {}

    def resolved(self, weights: Weights) -> Weights:
        """``weights``, with ΘD alone as ΘT merged at α = 1 where Θ0 = ΘT (ΘT + 1·(ΘD − ΘT) is ΘD up to rounding):
        no second model."""
        if weights.source == DOMAIN and len(set(self.triple.fingerprints([BASE, IR]))) == 1:
            return Weights(IR, MergeSetting(((PRIMARY, 1.0),)))
        return weights

    def scorer(self, weights: Weights):
        """The scorer of ``weights`` (ΘT merged in place at their setting, or ΘD's own)."""
        if weights.source == IR:
            self.merged.set(weights.merge)
        return self.triple.scorer(weights.source)

    def scores(self, split: str, weights: Weights) -> Run:
        weights = self.resolved(weights)
        if (split, weights) not in self._scores:
            self._scores[split, weights] = self.cache.json(
                "scores", self._key(split, weights), lambda: self._score(split, weights)
            )
        return self._scores[split, weights]

    def _key(self, split: str, weights: Weights) -> str:
        return cache_key(
            version=CACHE_VERSION,
            model=self.weights_identity(weights),
            scorer=self.scorer_identity(),
            queries=text_digest(self.first_stage.split(split).queries),
            candidates=text_digest(self.first_stage.candidates(split)),
        )

    def scorer_identity(self) -> dict:
        """The scorer settings that determine scores and embeddings (a cache key part)."""
        return {"kind": self.model.kind, **self.model.scorer.identity()}

    def weights_identity(self, weights: Weights) -> dict:
        """What determines a set of weights (a cache key part): checkpoints by fingerprint and the merge setting."""
        if weights.source == DOMAIN:
            return {"domain": checkpoint_fingerprint(self.triple.folders()[DOMAIN])}
        merge = weights.merge.identity()  # each vector by its checkpoints, not its name: renaming one keeps its scores
        names = list(merge.pop("alphas"))
        if weights.merge.method.direction == RANDOM:  # except the null's, whose noise is drawn by vector name
            merge["vectors"] = names
        return {
            "ir": checkpoint_fingerprint(self.triple.folders()[IR]),
            "vectors": [
                [*self.triple.fingerprints(vector_roles(vector)), alpha] for vector, alpha in weights.merge.alphas
            ],
            "merge": merge,
        }

    def _score(self, split: str, weights: Weights) -> Run:
        candidates = self.first_stage.candidates(split)
        scorer = self.scorer(weights)
        log.info("Scoring %d %s queries with %s", len(candidates), split, weights.describe())
        queries = self.first_stage.split(split).queries
        return check_finite(scorer.score(queries, self.first_stage.texts(split), candidates))


def check_finite(run: Run) -> Run:
    """``run``, unless a score is not finite (raised before the cache stores anything)."""
    bad = [q for q, docs in run.items() if any(not math.isfinite(v) for v in docs.values())]
    if bad:
        raise FloatingPointError(f"the model produced non-finite scores for {len(bad)} queries (first: {bad[0]})")
    return run
