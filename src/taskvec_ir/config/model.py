"""The ``model`` key (``conf/model/``): a triple of checkpoints of one architecture, the settings of its forward
passes (``model.scorer``), a domain checkpoint adapted on a corpus (``conf/adapt/``) and extra task vectors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from omegaconf import MISSING

from taskvec_ir.config.checks import Choice, choice, parse, positive
from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.errors import UserError

PRIMARY = "domain"  # the name of the task vector model.domain − model.base
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


# model.kind: the model family, one scorer each (taskvec_ir.models.scoring).
ModelKind = Choice("ModelKind", ["bi_encoder", "cross_encoder", "monot5", "causal_lm"])

# model.scorer.dtype: half precision (bfloat16, float16) on GPUs.
Dtype = Choice("Dtype", ["float32", "bfloat16", "float16"])

# model.scorer.similarity of a bi-encoder; null: the model's own.
Similarity = Choice("Similarity", ["cosine", "dot"])

# adapt.objective (taskvec_ir.models.adapt): auto, the start's own pre-training objective; the pre-training
# objectives; simcse, tsdae; inverse_cloze, (title or sentence, rest of its document) pairs of a bi-encoder start;
# supervised, judged (query, relevant document) pairs (a control, never zero-shot).
AdaptObjective = Choice(
    "AdaptObjective", ["auto", "mlm", "span_corruption", "next_token", "simcse", "tsdae", "inverse_cloze", "supervised"]
)

SUPERVISED = AdaptObjective.supervised.value  # the objective that trains on relevance labels
SUPERVISED_LABEL = "supervised control (not zero-shot)"  # on every output of a model whose ΘD used labels
SUPERVISED_TAG = "control:supervised"  # the W&B tag of its runs


# adapt.pair_source (inverse_cloze): a pair's query is a document's title, one of its sentences, either kind, or
# a span of its words.
PairSource = Choice("PairSource", ["title", "sentence", "both", "span"])

PAIR_SETTINGS = ("pair_source", "pair_count")  # settings only inverse_cloze reads


@dataclass
class ScorerConfig:
    """Settings of the re-ranker's forward passes (``model.scorer``)."""

    batch_size: int = 32
    max_length: int = 512  # tokens per model input: a (query, document) pair, or a document for a bi-encoder
    max_query_length: int = 64  # prompt families: the query's share of max_length (the document gets the rest)
    device: str = "auto"  # auto (cuda when available), cpu, cuda, cuda:1, mps
    dtype: Dtype = Dtype.float32
    similarity: Similarity | None = None
    template: str | None = None  # monot5 / causal_lm prompt with {query} and {document}; null: the family's own
    # monot5 / causal_lm: score = log P(positive) against P(negative) at the next token
    positive_token: str = "true"
    negative_token: str = "false"
    trust_remote_code: bool = False  # run code shipped with a checkpoint: only for checkpoints you trust
    show_progress: bool = True

    # Settings that change how fast scores come, not what they are.
    NOT_IN_SCORES: ClassVar[tuple[str, ...]] = ("batch_size", "show_progress", "trust_remote_code")

    def __post_init__(self):
        positive(self.batch_size, "model.scorer.batch_size")
        positive(self.max_length, "model.scorer.max_length")
        positive(self.max_query_length, "model.scorer.max_query_length")
        if not _DEVICE.match(self.device):
            raise UserError(
                f"model.scorer.device: '{self.device}' is not auto or a torch device (cpu, cuda, cuda:1, mps)"
            )
        self.dtype = choice(Dtype, self.dtype, "model.scorer.dtype")
        if self.similarity is not None:
            self.similarity = choice(Similarity, self.similarity, "model.scorer.similarity")
        if self.template is not None and ("{query}" not in self.template or "{document}" not in self.template):
            raise UserError("model.scorer.template must contain {query} and {document}")

    def identity(self) -> dict:
        """The settings that determine the scores (part of their cache key). The device is the configured one
        (``auto`` is not resolved): resolving it would import torch where no model is needed."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self.NOT_IN_SCORES}


@dataclass
class AdaptConfig:
    """A domain checkpoint made by continued training of ``start`` on ``dataset``'s documents (``conf/adapt/``),
    placed at ``model.domain``; cached by every field but ``save_every``."""

    start: str = MISSING  # the checkpoint adapted (a model source)
    dataset: DatasetConfig | None = None  # whose documents it is trained on (queries and qrels: supervised only)
    objective: AdaptObjective = AdaptObjective.auto
    steps: int = 1000  # optimiser steps
    batch_size: int = 16  # documents per step (simcse, inverse_cloze, supervised: the others are the negatives)
    max_length: int = 256  # tokens per document (longer ones are truncated)
    learning_rate: float = 5e-5  # peak of AdamW's schedule: linear warmup over the first 10% of steps, linear decay
    seed: int = 0  # document sample, data order, masking and noise, and dropout
    device: str = "auto"  # auto (a GPU when there is one), cpu, cuda, cuda:1, mps
    sample_size: int | None = None  # documents drawn from the corpus (seeded); None: all of them
    mlm_probability: float = 0.15  # mlm: share of tokens masked (BERT: 0.15)
    noise_density: float = 0.15  # span_corruption: share of tokens dropped into spans (T5: 0.15)
    mean_span_length: float = 3.0  # span_corruption: mean length of a dropped span (T5: 3)
    pair_source: PairSource = PairSource.both  # inverse_cloze
    pair_count: int | None = None  # inverse_cloze: (query, document) pairs drawn (seeded); None: all of them
    pairs_split: str = "train"  # supervised: the split whose qrels it trains on; other splits' queries left out
    # supervised: a training query whose words overlap another split's query this much is left out too (SciFact's
    # altered twins; docs/supervised-control.md); None: only by id or exact text
    near_duplicate_overlap: float | None = 0.7
    exclude_relevant_documents: bool = False  # supervised, strict: also pairs whose document another split's query has
    save_every: int = 100  # steps between resumable states under <cache.dir>/adapt-partial/ (with a cache dir)

    def __post_init__(self):
        self.objective = choice(AdaptObjective, self.objective, "adapt.objective")
        for name in ("steps", "batch_size", "max_length", "save_every"):
            positive(getattr(self, name), f"adapt.{name}")
        if self.sample_size is not None:
            positive(self.sample_size, "adapt.sample_size")
        if not self.learning_rate > 0 or not math.isfinite(self.learning_rate):
            raise UserError(f"adapt.learning_rate: {self.learning_rate!r} must be a positive number")
        if self.seed < 0:
            raise UserError(f"adapt.seed: {self.seed} must be a non-negative integer")
        if not _DEVICE.match(self.device):
            raise UserError(f"adapt.device: '{self.device}' is not auto or a torch device (cpu, cuda, cuda:1, mps)")
        for name in ("mlm_probability", "noise_density"):
            if not 0 < getattr(self, name) < 1:
                raise UserError(f"adapt.{name}: {getattr(self, name)!r} must lie strictly between 0 and 1")
        if not self.mean_span_length >= 1:
            raise UserError(f"adapt.mean_span_length: {self.mean_span_length!r} must be a number of at least 1")
        self.pair_source = choice(PairSource, self.pair_source, "adapt.pair_source")
        if self.pair_count is not None:
            positive(self.pair_count, "adapt.pair_count")
        if self.near_duplicate_overlap is not None and not 0 < self.near_duplicate_overlap <= 1:
            raise UserError(
                f"adapt.near_duplicate_overlap: {self.near_duplicate_overlap!r} must lie in (0, 1] (a share of words), "
                "or be null (leave out other splits' queries by id and exact text only)"
            )
        contrastive = (AdaptObjective.simcse, AdaptObjective.inverse_cloze, SUPERVISED)
        if self.objective in contrastive and self.batch_size < 2:
            raise UserError(
                f"adapt.batch_size: {self.objective} needs at least 2 documents per batch (the other documents "
                "of a batch are its negatives)"
            )

    def identity(self) -> dict:
        """The settings that determine the adapted weights besides the start and the corpus (part of their cache
        key); which count for which objective: docs/configuration.md."""
        left_out = {"start", "dataset", "save_every"}
        if self.objective != AdaptObjective.inverse_cloze:
            left_out |= set(PAIR_SETTINGS)
        if self.objective != SUPERVISED:
            left_out |= {"pairs_split", "near_duplicate_overlap", "exclude_relevant_documents"}
        settings = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in left_out}
        if self.objective == SUPERVISED and self.dataset is not None:
            settings["excluded_splits"] = {
                name: spec if isinstance(spec, str) else asdict(spec)
                for name, spec in sorted(self.dataset.splits.items())
                if name != self.pairs_split
            }
        return settings


def _source(value, key: str):
    """A checkpoint source: a model source string, or an adapt config (a mapping at that key)."""
    if isinstance(value, AdaptConfig | str) and value:
        return value
    if isinstance(value, Mapping):
        try:
            adapt = parse(AdaptConfig, value, key)
        except ValueError as error:
            raise UserError(f"{key} (an adapt config): {error}") from None
        if adapt.dataset is None:
            raise UserError(f"{key}.dataset: name the corpus to adapt on (a dataset config, e.g. scifact)")
        splits = adapt.dataset.splits
        if adapt.objective == SUPERVISED and not adapt.dataset.splits_in_folder and adapt.pairs_split not in splits:
            raise UserError(
                f"{key}.pairs_split: '{adapt.pairs_split}' is not a split of {adapt.dataset.name} "
                f"({', '.join(splits) or 'none'}): name the split whose qrels train the supervised control"
            )
        return adapt
    raise UserError(f"{key}: give a checkpoint (a Hub id, a folder or package:<module>/<folder>) or an adapt config")


@dataclass
class ExtraDomainConfig:
    """One more task vector: ``domain`` − ``base`` (the base defaults to ``model.base``)."""

    domain: Any = MISSING
    base: str | None = None


@dataclass
class ModelConfig:
    """A triple of checkpoints of one architecture (``conf/model/``). A checkpoint is a Hub id (``org/name``,
    optionally ``@revision``), a local folder, ``package:<module>/<folder>``, or for ``domain`` an adapt config."""

    name: str = MISSING
    kind: ModelKind = MISSING
    ir: str = MISSING  # ΘT
    base: str = MISSING  # Θ0
    domain: Any = MISSING  # ΘD: a checkpoint, or an adapt config (conf/adapt/)
    # More task vectors, name -> ExtraDomainConfig (typed in __post_init__: Hydra's `+model.extra_domains.x.domain=`
    # creates the entry as an empty mapping first, which a typed dict would refuse); their α in alpha.extra.
    extra_domains: dict[str, Any] = field(default_factory=dict)
    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    language: str | None = None  # the language a multilingual config picks its domain model by

    def __post_init__(self):
        self.kind = choice(ModelKind, self.kind, "model.kind")
        self.domain = _source(self.domain, "model.domain")
        for name, extra in self.extra_domains.items():
            key = f"model.extra_domains.{name}"
            if name == PRIMARY or not str(name).isidentifier():
                raise UserError(f"{key}: name each extra vector with a word other than '{PRIMARY}'")
            if not isinstance(extra, ExtraDomainConfig):
                extra = self.extra_domains[name] = parse(ExtraDomainConfig, extra, key)
            extra.domain = _source(extra.domain, f"{key}.domain")

    def vectors(self) -> dict[str, tuple[str, str | AdaptConfig]]:
        """Each task vector's (base, domain) sources by name, ``domain`` first."""
        return {
            PRIMARY: (self.base, self.domain),
            **{name: (extra.base or self.base, extra.domain) for name, extra in self.extra_domains.items()},
        }

    def supervised_domains(self) -> dict[str, AdaptConfig]:
        """The domain checkpoints trained on relevance labels (``objective: supervised``), by vector name: a model
        with any is a supervised control, never a zero-shot result."""
        return {
            name: domain
            for name, (_, domain) in self.vectors().items()
            if isinstance(domain, AdaptConfig) and domain.objective == SUPERVISED
        }

    @property
    def supervised(self) -> bool:
        return bool(self.supervised_domains())
