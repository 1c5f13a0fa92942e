"""The typed schema of every config group, and every check a config can fail before anything runs.

Each group of ``conf/`` (dataset, model, retriever, alpha, lam, merge, ...) has a dataclass here; ``Config``
composes them and is registered in Hydra's ConfigStore as the schema behind ``conf/config.yaml``. Hydra
therefore refuses a wrong type or an unknown key when it composes the config, naming the key
(``retriever.top_k=many``). Ranges and cross-key rules (λ in [0, 1], density, layer rules, objective among
the measures, a run that would do nothing, ...) are checked in ``__post_init__``, which runs when
``OmegaConf.to_object`` builds the dataclasses, or when a user builds them in Python: either way, before
any data is read or any model is loaded, with one message naming the key to fix.

Stages take their own part of a ``Config`` (``DatasetConfig``, ``RetrieverConfig``, ``ScorerConfig``, ...),
so they can be called from Python without Hydra. This module imports no model library.
"""

from __future__ import annotations

import importlib.resources
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from taskvec_ir.config.measures import check_measures
from taskvec_ir.config.merge_settings import MERGE_METHODS, AlphaScale, LayerRule, MergeMethod, MergeSetting
from taskvec_ir.config.systems import BM25, DOMAIN_MODEL, IR_MODEL, TASK_ARITHMETIC, System
from taskvec_ir.errors import MissingFileError, UserError
from taskvec_ir.storage.cache import file_digest
from taskvec_ir.storage.outputs import refuse_password

LANGUAGES = ("en", "de", "fr", "es")  # dataset.language: each has its analyzers in taskvec_ir.ir.retrieval
BACKENDS = ("inverted_index", "rank_bm25", "run_file")  # the first stages (taskvec_ir.ir.retrieval)
ANALYZERS = ("lucene", "snowball")  # retriever.analyzer.name
SCORINGS = ("lucene", "robertson")  # retriever.bm25: Lucene's BM25, or the Robertson idf floored at 0
FIELD_MODELS = ("flat", "multifield")  # retriever.fields: title and text as one field, or one index each
DENSE_INDEXES = ("auto", "exact", "faiss")  # retriever.index: how retriever=dense searches the corpus's embeddings
KINDS = ("bi_encoder", "cross_encoder", "monot5", "causal_lm")  # model families: one scorer each
SYSTEMS = tuple(System)  # what one row of a results table evaluates (taskvec_ir.config.systems)
TASKS = ("evaluate", "adapt", "table")
WANDB_MODES = ("offline", "online", "disabled")
WANDB_CONSOLES = ("off", "auto", "wrap", "redirect")
DTYPES = ("float32", "bfloat16", "float16")
SUPERVISED = "supervised"  # the adapt objective that trains on relevance labels (a control, never zero-shot)
ADAPT_OBJECTIVES = ("mlm", "span_corruption", "next_token", "simcse", "tsdae", "inverse_cloze", SUPERVISED)
SUPERVISED_LABEL = "supervised control (not zero-shot)"  # on every output of a model whose ΘD used labels
SUPERVISED_TAG = "control:supervised"  # the W&B tag of its runs
PAIR_SOURCES = ("title", "sentence", "both", "span")  # inverse_cloze: what a document's query is
PSEUDO_QUERY_SOURCES = ("auto", *PAIR_SOURCES)  # auto: the source the corpus's documents give pairs of
PAIR_SETTINGS = ("pair_source", "pair_count")  # settings only inverse_cloze reads
# How a job chooses α and λ itself (``conf/selection/``; see taskvec_ir.pipeline.selection); a table's cells
# also have "dev".
SELECTIONS = ("cross_validation", "pseudo_queries", "stability", "nqc")
# What a job may analyse after its evaluation, on its evaluated split (``analyses``; taskvec_ir.pipeline.analyses).
ANALYSES = ("alpha_response", "depth")
DEFAULT_DEPTHS = (10, 20, 50, 100)  # analysis.depths: those at most retriever.top_k, and top_k itself
PRIMARY = "domain"  # the name of the task vector model.domain − model.base
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def parse(schema: type, values: Mapping, key: str):
    """``values`` as an instance of the dataclass ``schema``, type-checked as Hydra checks a config; an unknown
    key, a wrong type or a missing value is a ``ValueError`` naming ``key.<field>``. For config nodes that may
    hold either a string or a mapping (``model.domain``), which a schema cannot type."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))
    except OmegaConfBaseException as error:
        where = f"{key}.{error.full_key}" if error.full_key else key
        raise UserError(f"{where}: {str(error.msg).splitlines()[0]}") from None


def _finite(value: float, key: str) -> float:
    if not math.isfinite(value):
        raise UserError(f"{key}: {value!r} must be a finite number")
    return value


def _positive(value: int, key: str) -> int:
    if value <= 0:
        raise UserError(f"{key}: {value} must be positive")
    return value


def check_lambda(lam: float) -> float:
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or math.isnan(lam) or not 0 <= lam <= 1:
        raise UserError(f"lam.value: {lam!r} must be a number in [0, 1] (the weight of BM25 in the fusion)")
    return float(lam)


def _one_of(value: str, allowed, key: str) -> str:
    if value not in allowed:
        raise UserError(f"{key}: '{value}' is not one of {', '.join(allowed)}")
    return value


# -- data ------------------------------------------------------------------------------------------------------
@dataclass
class SampleSplit:
    """A seeded random ``fraction`` of another split's queries (with their qrels), e.g. SciFact's dev; with
    ``rest``, the queries that sample leaves out (a dev/test split of a collection that has one query set)."""

    sample_of: str = MISSING
    fraction: float = MISSING
    seed: int = 42
    rest: bool = False


@dataclass
class DatasetConfig:
    """A collection read through ir_datasets (``conf/dataset/``)."""

    name: str = MISSING  # short name used in outputs and W&B
    docs: str = MISSING  # ir_datasets id whose docs_iter() is the corpus
    doc_fields: list[str] = field(default_factory=lambda: ["title", "text"])  # joined by a space
    query_field: str = "text"
    language: str = "en"  # picks the BM25 analyzer (stopwords, stemmer)
    test_split: str = "test"
    # split name -> an ir_datasets id, or {sample_of: <split>, fraction, seed, rest}; with beir_path and no splits
    # given, one per qrels/<split>.tsv of the collection, read from the folder by taskvec_ir.ir.data.resolve_splits
    splits: dict[str, Any] = field(default_factory=dict)
    relevance_map: dict[Any, Any] | None = None  # grade -> new grade, or null to drop the row
    offline_files: dict[str, str] = field(default_factory=dict)  # path under IR_DATASETS_HOME -> mirror file
    beir_path: str | None = None  # a BEIR-layout folder or zip registered in ir_datasets as `name`

    def __post_init__(self):
        _one_of(self.language, LANGUAGES, "dataset.language")
        if not self.doc_fields:
            raise UserError("dataset.doc_fields: name at least one document field")
        self.check_splits()

    @property
    def splits_in_folder(self) -> bool:
        """A BEIR folder given without splits: its splits are its qrels files, read with the folder (building a
        config reads no file)."""
        return bool(self.beir_path) and not self.splits

    def check_splits(self) -> None:
        for split, spec in list(self.splits.items()):
            key = f"dataset.splits.{split}"
            if isinstance(spec, Mapping):
                spec = self.splits[split] = parse(SampleSplit, spec, key)
            if isinstance(spec, SampleSplit):
                if not 0 < spec.fraction <= 1:
                    raise UserError(f"{key}.fraction: {spec.fraction} must lie in (0, 1]")
                if not isinstance(self.splits.get(spec.sample_of), str):
                    raise UserError(f"{key}.sample_of: '{spec.sample_of}' must name a split given by an ir_datasets id")
            elif not isinstance(spec, str) or not spec:
                raise UserError(f"{key}: {spec!r} must be an ir_datasets id or {{sample_of, fraction, seed}}")
        if self.splits and self.test_split not in self.splits:  # no splits: a corpus alone (e.g. to adapt on)
            raise UserError(
                f"dataset.test_split: '{self.test_split}' is not in dataset.splits ({', '.join(self.splits) or 'none'})"
            )

    def split(self, name: str) -> str | SampleSplit:
        """How ``splits`` defines ``name``; a clear error if it does not."""
        if self.splits_in_folder:
            raise RuntimeError("the splits of a BEIR folder are read first: taskvec_ir.ir.data.resolve_splits")
        if name not in self.splits:
            raise UserError(
                f"dataset {self.name!r} has no split {name!r} in dataset.splits "
                f"(available: {', '.join(self.splits) or 'none'})"
            )
        return self.splits[name]


@dataclass
class DataConfig:
    home: str = "~/.ir_datasets"  # where ir_datasets keeps downloads and doc stores
    mirror_dir: str | None = None  # offline copies of the files ir_datasets downloads


# -- first stage -----------------------------------------------------------------------------------------------
@dataclass
class AnalyzerConfig:
    name: str = "lucene"  # lucene: Lucene's analyzer for the language; snowball: the former \w+ words + Snowball
    lowercase: bool = True
    stopwords: bool = True
    stemmer: bool = True


@dataclass
class RetrieverConfig:
    """The first stage (``conf/retriever/``): BM25 over the corpus, or an existing run file (``backend:
    run_file``, ``path``). The analyzer's language comes from the dataset."""

    backend: str = "inverted_index"
    top_k: int = 100
    bm25: str = "lucene"  # lucene: Lucene's BM25 (Anserini's); robertson: the former variant (retrieval.py)
    fields: str = "flat"  # flat: dataset.doc_fields joined; multifield: one index per field, scores summed
    k1: float = 0.9
    b: float = 0.4
    analyzer: AnalyzerConfig = field(default_factory=AnalyzerConfig)
    path: str | None = None  # run_file: the TREC run whose candidates are re-ranked
    # retriever=dense: every model system ranks the whole corpus by its own embeddings (bi-encoders), no candidates
    # and no fusion; the settings above still make the bm25 row. index: exact, faiss (HNSW) or auto (by corpus size).
    dense: bool = False
    index: str = "auto"

    # Keys that do not change BM25's candidates (kept out of their cache key: dense runs share them).
    NOT_IN_CANDIDATES: ClassVar[tuple[str, ...]] = ("dense", "index")

    def __post_init__(self):
        if self.backend == "bm25s":
            raise UserError(
                "retriever.backend: 'bm25s' was replaced by 'inverted_index', which gives the same runs from an "
                "index on disk: use retriever.backend=inverted_index (or leave it out)"
            )
        _one_of(self.backend, BACKENDS, "retriever.backend")
        _one_of(self.bm25, SCORINGS, "retriever.bm25")
        _one_of(self.fields, FIELD_MODELS, "retriever.fields")
        _one_of(self.analyzer.name, ANALYZERS, "retriever.analyzer.name")
        _one_of(self.index, DENSE_INDEXES, "retriever.index")
        if self.backend == "rank_bm25" and self.bm25 != "robertson":
            raise UserError(
                "retriever.backend=rank_bm25 scores with rank_bm25's BM25Okapi, the robertson variant's legacy "
                "reference: add retriever.bm25=robertson, or use retriever.backend=inverted_index for Lucene's BM25"
            )
        if self.fields == "multifield" and (self.backend != "inverted_index" or self.bm25 != "lucene"):
            raise UserError(
                "retriever.fields=multifield sums Lucene BM25 scores of per-field indexes: it needs "
                "retriever.backend=inverted_index and retriever.bm25=lucene"
            )
        _positive(self.top_k, "retriever.top_k")
        if not self.k1 >= 0 or not 0 <= self.b <= 1:
            raise UserError(f"retriever.k1 and retriever.b: {self.k1}, {self.b} must be k1 ≥ 0 and b in [0, 1]")
        if self.backend == "run_file" and self.path is None:
            raise UserError("retriever=run_file needs the run to re-rank: add retriever.path=<TREC run file>")
        if self.backend != "run_file" and self.path is not None:
            raise UserError(
                f"retriever.path is read only by retriever=run_file, and the retriever is {self.backend}: "
                "use retriever=run_file retriever.path=<TREC run file>"
            )

    def identity(self) -> dict:
        """What determines the candidates (a cache key): for a run file, its content, not its path."""
        if self.backend != "run_file":
            return {k: v for k, v in asdict(self).items() if k not in self.NOT_IN_CANDIDATES}
        path = Path(self.path).expanduser()
        if not path.is_file():
            raise MissingFileError(f"no run file at {path}: fix retriever.path")
        return {"backend": self.backend, "top_k": self.top_k, "run": file_digest(path)}


# -- models ----------------------------------------------------------------------------------------------------
@dataclass
class ScorerConfig:
    """Settings of the re-ranker's forward passes (``model.scorer``)."""

    batch_size: int = 32
    max_length: int = 256  # tokens per model input (a pair, or a document for a bi-encoder)
    max_query_length: int = 64  # prompt families: the query's share of max_length
    device: str = "auto"  # auto, cpu, cuda, cuda:1, mps
    dtype: str = "float32"  # float32, bfloat16, float16
    similarity: str | None = None  # bi_encoder: None (the model's own), "cosine" or "dot"
    template: str | None = None  # monot5 / causal_lm: with {query} and {document}
    positive_token: str = "true"
    negative_token: str = "false"
    trust_remote_code: bool = False
    show_progress: bool = True

    # Settings that change how fast scores come, not what they are.
    NOT_IN_SCORES: ClassVar[tuple[str, ...]] = ("batch_size", "show_progress", "trust_remote_code")

    def __post_init__(self):
        _positive(self.batch_size, "model.scorer.batch_size")
        _positive(self.max_length, "model.scorer.max_length")
        _positive(self.max_query_length, "model.scorer.max_query_length")
        if not _DEVICE.match(self.device):
            raise UserError(
                f"model.scorer.device: '{self.device}' is not auto or a torch device (cpu, cuda, cuda:1, mps)"
            )
        _one_of(self.dtype, DTYPES, "model.scorer.dtype")
        if self.similarity not in (None, "cosine", "dot"):
            raise UserError(f"model.scorer.similarity: '{self.similarity}' is not null, 'cosine' or 'dot'")
        if self.template is not None and ("{query}" not in self.template or "{document}" not in self.template):
            raise UserError("model.scorer.template must contain {query} and {document}")

    def scores_identity(self) -> dict:
        """The settings that determine the scores (a cache key). The device is the configured one (``auto``
        is not resolved): resolving it would import torch where no model is needed."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self.NOT_IN_SCORES}


@dataclass
class AdaptConfig:
    """A domain checkpoint made by continued training of ``start`` on ``dataset``'s documents (``conf/adapt/``);
    every field but ``save_every`` determines the result."""

    start: str = MISSING  # the checkpoint adapted (a model source)
    dataset: DatasetConfig | None = None  # whose documents it is trained on (queries and qrels: supervised only)
    objective: str = "auto"  # auto, mlm, span_corruption, next_token, simcse, tsdae, inverse_cloze, supervised
    steps: int = 1000  # optimiser steps
    batch_size: int = 16  # documents per step
    max_length: int = 256  # tokens per document (longer ones are truncated)
    learning_rate: float = 5e-5  # peak of the linear warmup/decay schedule
    seed: int = 0  # document sample, data order, masking and dropout
    device: str = "auto"  # auto (a GPU when there is one), cpu, cuda, cuda:1, mps
    sample_size: int | None = None  # documents drawn from the corpus (seeded); None: all of them
    mlm_probability: float = 0.15  # mlm: share of tokens masked
    noise_density: float = 0.15  # span_corruption: share of tokens dropped into spans
    mean_span_length: float = 3.0  # span_corruption: mean length of a dropped span
    pair_source: str = "both"  # inverse_cloze: a document's title, one of its sentences, or both; span: words
    pair_count: int | None = None  # inverse_cloze: (query, document) pairs drawn (seeded); None: all of them
    pairs_split: str = "train"  # supervised: the split whose judged (query, relevant document) pairs it trains on
    # supervised: a training query whose words overlap another split's query by this much is left out too (SciFact's
    # altered twins; pairs.word_overlap, docs/supervised-control.md); None: only by id or exact text
    near_duplicate_overlap: float | None = 0.7
    exclude_relevant_documents: bool = False  # supervised, strict: also pairs whose document another split's query has
    save_every: int = 100  # steps between resumable states (only with a cache dir)

    def __post_init__(self):
        _one_of(self.objective, ("auto", *ADAPT_OBJECTIVES), "adapt.objective")
        for name in ("steps", "batch_size", "max_length", "save_every"):
            _positive(getattr(self, name), f"adapt.{name}")
        if self.sample_size is not None:
            _positive(self.sample_size, "adapt.sample_size")
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
        _one_of(self.pair_source, PAIR_SOURCES, "adapt.pair_source")
        if self.pair_count is not None:
            _positive(self.pair_count, "adapt.pair_count")
        if self.near_duplicate_overlap is not None and not 0 < self.near_duplicate_overlap <= 1:
            raise UserError(
                f"adapt.near_duplicate_overlap: {self.near_duplicate_overlap!r} must lie in (0, 1] (a share of words), "
                "or be null (leave out other splits' queries by id and exact text only)"
            )
        if self.objective in ("simcse", "inverse_cloze", SUPERVISED) and self.batch_size < 2:
            raise UserError(
                f"adapt.batch_size: {self.objective} needs at least 2 documents per batch (the other documents "
                "of a batch are its negatives)"
            )

    def training_settings(self) -> dict:
        """What determines the adapted weights besides the start and the corpus. ``save_every`` only says how
        often progress is saved (a resumed run equals an uninterrupted one), so it is not among them; the pair
        settings count only for inverse_cloze, and ``pairs_split`` and what it leaves out only for supervised, so
        the checkpoints other objectives cached keep their keys. Supervised training leaves out the queries of every
        other split of the dataset (SciFact's dev is a seeded fraction of train): their definitions are part of its
        settings, so a run whose dev split differs trains a ΘD of its own."""
        left_out = {"start", "dataset", "save_every", *(PAIR_SETTINGS if self.objective != "inverse_cloze" else ())}
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
    kind: str = MISSING  # bi_encoder, cross_encoder, monot5, causal_lm
    ir: str = MISSING  # ΘT
    base: str = MISSING  # Θ0
    domain: Any = MISSING  # ΘD: a checkpoint, or an adapt config (conf/adapt/)
    # More task vectors, name -> ExtraDomainConfig (typed in __post_init__: Hydra's `+model.extra_domains.x.domain=`
    # creates the entry as an empty mapping first, which a typed dict would refuse); their α in alpha.extra.
    extra_domains: dict[str, Any] = field(default_factory=dict)
    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    language: str | None = None  # the language a multilingual config picks its domain model by

    def __post_init__(self):
        _one_of(self.kind, KINDS, "model.kind")
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


# -- merge -----------------------------------------------------------------------------------------------------
@dataclass
class LayerRuleConfig:
    factor: float = MISSING
    layers: list[int] | None = None  # exact block numbers (layer 1 is not layer 10)
    pattern: str | None = None  # a regex on the IR model's parameter names


@dataclass
class ScheduleConfig:
    first: float = MISSING
    last: float = MISSING


@dataclass
class AlphaConfig:
    """α of the domain vector (``value``) and of each extra one (``extra``), and per-tensor factors on α."""

    value: float = 0.5
    extra: dict[str, float] = field(default_factory=dict)
    rules: list[LayerRuleConfig] = field(default_factory=list)  # first match wins
    schedule: ScheduleConfig | None = None  # a factor linear over the blocks, for tensors no rule matches
    otherwise: float = 1.0  # the factor of tensors no rule (and no schedule) covers
    layer: int | None = None  # the block of the layer ablation configs (alpha=layer_add|layer_remove)

    def __post_init__(self):
        _finite(self.value, "alpha.value")
        for name, value in self.extra.items():
            _finite(value, f"alpha.extra.{name}")
        for k, rule in enumerate(self.rules):
            _finite(rule.factor, f"alpha.rules[{k}].factor")
            if rule.layers is not None and any(i < 0 for i in rule.layers):
                raise UserError(f"alpha.rules[{k}].layers: {rule.layers} must be layer numbers (0, 1, ...)")
            if rule.pattern is not None:
                try:
                    re.compile(rule.pattern)
                except re.error as error:
                    raise UserError(
                        f"alpha.rules[{k}].pattern: {rule.pattern!r} is not a regular expression ({error})"
                    ) from None
        if self.schedule is not None:
            _finite(self.schedule.first, "alpha.schedule.first")
            _finite(self.schedule.last, "alpha.schedule.last")
        _finite(self.otherwise, "alpha.otherwise")

    def scale(self) -> AlphaScale:
        rules = tuple(
            LayerRule(r.factor, tuple(r.layers) if r.layers is not None else None, r.pattern) for r in self.rules
        )
        schedule = (self.schedule.first, self.schedule.last) if self.schedule is not None else None
        return AlphaScale(rules, schedule, self.otherwise)


@dataclass
class LamConfig:
    """fused = value·minmax(BM25) + (1 − value)·minmax(model): **λ weights BM25**. ``value: null`` chooses λ
    from ``grid`` on the split being evaluated, from scores already computed."""

    value: float | None = 0.3
    grid: list[float] | None = None

    def __post_init__(self):
        if self.value is None and not self.grid:
            raise UserError("lam.value is null: give a value in [0, 1], or a lam.grid to choose it on the split")
        for lam in ([self.value] if self.value is not None else []) + list(self.grid or []):
            check_lambda(lam)


@dataclass
class MergeConfig:
    """How the α-weighted task vectors update ΘT (``conf/merge/``, rows of ``merge_settings.MERGE_METHODS``)."""

    method: str = "task_arithmetic"
    density: float = 1.0  # share of each τ a sparsifier keeps
    gamma: float = 0.0  # breadcrumbs: share of each τ's largest entries dropped
    seed: int = 0  # random drop (dare, dare_ties)
    stream_task_vector: bool = False  # keep τ on disk and stream it at each α (peak memory ≈ one model)

    def __post_init__(self):
        _one_of(self.method, MERGE_METHODS, "merge.method")
        if not 0 < self.density <= 1:
            raise UserError(f"merge.density: {self.density} must be in (0, 1] (the share of each task vector kept)")
        if not 0 <= self.gamma < 1 or self.gamma + self.density > 1:
            raise UserError(
                f"merge.gamma: {self.gamma} must be in [0, 1) with gamma + density ≤ 1 "
                "(the share of largest entries dropped)"
            )

    def method_row(self) -> MergeMethod:
        return MergeMethod(self.method, self.density, self.seed, self.gamma)


# -- running ---------------------------------------------------------------------------------------------------
@dataclass
class CacheConfig:
    dir: str | None = "~/.cache/taskvec-ir"  # null disables caching
    clear: bool = False  # empty the cache before this run


@dataclass
class WandbConfig:
    mode: str = "offline"  # offline | online | disabled; WANDB_MODE in the environment wins
    project: str = "taskvec-ir"
    entity: str | None = None
    group: str | None = None
    job_type: str | None = "run"
    name: str | None = None
    init_timeout: float = 60  # seconds to reach the W&B server online; then the run is kept offline
    tags: list[str] = field(default_factory=list)
    console: str = "off"  # W&B's console capture: off | auto | wrap | redirect (the job's app.log has it all)
    system_metrics: bool = False  # W&B's CPU/GPU/memory sampling (worth it for a 7B run; slows short jobs)

    def __post_init__(self):
        _one_of(self.mode, WANDB_MODES, "wandb.mode")
        _one_of(self.console, WANDB_CONSOLES, "wandb.console")


@dataclass
class StudyConfig:
    """Which Optuna study a sweep's jobs belong to and how it searches: set by the sweeper for each job it
    launches, so that every W&B run records it; ``group`` is the study's W&B group."""

    name: str | None = None
    storage: str | None = None  # without its password
    group: str | None = None
    n_trials: int | None = None
    # Untyped: Hydra merges the sweeper's `sweep.study={...}` into them as given.
    sampler: Any = None  # the sampler's config
    search_space: Any = None  # swept key -> what it may take


@dataclass
class SweepConfig:
    name: str = MISSING
    tune_split: str = "dev"  # trials evaluate this split only: test qrels are never read by a trial
    final_evaluation: bool = True  # after the last trial: the best setting once on dataset.test_split
    study: StudyConfig = field(default_factory=StudyConfig)
    final: bool = False  # set by the sweeper: this job is the final evaluation, which adds the sweep's report


@dataclass
class PseudoQueriesConfig:
    source: str = "auto"  # auto | title | sentence | both | span: what of a document is its query (auto: per corpus)
    count: int = 200  # pseudo-queries drawn from the corpus
    seed: int = 42

    def __post_init__(self):
        _one_of(self.source, PSEUDO_QUERY_SOURCES, "selection.pseudo_queries.source")
        _positive(self.count, "selection.pseudo_queries.count")


@dataclass
class BootstrapConfig:
    """How sure a selection is: its choice rerun on ``resamples`` bootstrap resamples of the queries it chose on,
    each evaluated on the test split (``taskvec_ir.pipeline.bootstrap``); 0: off."""

    resamples: int = 0  # resamples drawn with replacement (0: no bootstrap)
    seed: int = 0  # the resamples' draws
    confidence: float = 0.95  # the regret's percentile interval

    def __post_init__(self):
        if self.resamples < 0:
            raise UserError(f"selection.bootstrap.resamples: {self.resamples} must be 0 (off) or positive")
        if not 0 < self.confidence < 1:
            raise UserError(f"selection.bootstrap.confidence: {self.confidence!r} must be in (0, 1), e.g. 0.95")


@dataclass
class SelectionConfig:
    """α and λ chosen by the job itself, from ``alphas`` × ``lam.grid``, before its one evaluation of ``split``
    (``conf/selection/``, see ``taskvec_ir.pipeline.selection``); ``method: null`` (the default): α and λ as given. A
    table's cells all choose from ``alphas``, their dev sweep included."""

    method: str | None = None  # cross_validation | pseudo_queries | stability | nqc
    alphas: list[float] = field(default_factory=lambda: [round(0.1 * i, 1) for i in range(11)])
    queries: str = "dev"  # label-free: this split's queries, unlabeled (the evaluated split's where there is none)
    folds: int = 5  # cross_validation: folds of the evaluated split's queries
    seed: int = 42  # cross_validation: the queries' assignment to folds; nqc: its corpus sample
    pseudo_queries: PseudoQueriesConfig = field(default_factory=PseudoQueriesConfig)
    lam: float = 0.3  # stability and nqc: the λ they fuse with (they cannot choose it; lam/default's value)
    nqc_k: int = 10  # nqc: the top scores whose spread predicts a query's performance
    nqc_corpus_sample: int = 20  # nqc: corpus documents whose mean score for a query is its corpus score
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)  # selections and a sweep's final evaluation

    def __post_init__(self):
        if self.method is not None:
            _one_of(self.method, SELECTIONS, "selection.method")
        if not self.alphas:
            raise UserError("selection.alphas: give the α values to choose from (e.g. [0.0, 0.1, ..., 1.0])")
        for alpha in self.alphas:
            _finite(alpha, "selection.alphas")
        if self.method == "cross_validation" and self.folds < 2:
            raise UserError(f"selection.folds: {self.folds} must be at least 2")
        check_lambda(self.lam)
        _positive(self.nqc_k, "selection.nqc_k")
        _positive(self.nqc_corpus_sample, "selection.nqc_corpus_sample")


@dataclass
class AnalysisConfig:
    """Settings of the analyses a job runs after its evaluation (``analyses``, ``taskvec_ir.pipeline.analyses``)."""

    alphas: list[float] | None = None  # the α grid both analyses read (None: selection.alphas); α = 0 always added
    depths: list[int] | None = None  # depth: re-ranking depths k (None: 10, 20, 50, 100 up to top_k); top_k added
    lams: list[float] | None = None  # depth: λ values of the surface (None: lam.grid); the job's λ always added
    top_queries: int = 10  # alpha_response: the queries with the largest positive (and negative) Δ listed
    unchanged_within: float = 1e-9  # alpha_response: |Δ| at most this is "unchanged" (floating-point noise)
    timing_queries: int = 2  # depth: queries whose candidates are scored once more to time each depth (0: none)

    def __post_init__(self):
        for alpha in self.alphas or []:
            _finite(alpha, "analysis.alphas")
        for lam in self.lams or []:
            check_lambda(lam)
        for depth in self.depths or []:
            _positive(depth, "analysis.depths")
        _positive(self.top_queries, "analysis.top_queries")
        if not 0 <= self.unchanged_within < 1:
            raise UserError(f"analysis.unchanged_within: {self.unchanged_within!r} must be in [0, 1)")
        if self.timing_queries < 0:
            raise UserError(f"analysis.timing_queries: {self.timing_queries} must be 0 (no timing) or more")

    def grid(self, selection: SelectionConfig) -> list[float]:
        """The α values the analyses read, α = 0 (ΘT) among them."""
        return sorted({0.0, *map(float, self.alphas if self.alphas is not None else selection.alphas)})

    def depth_values(self, top_k: int) -> list[int]:
        """The depths of the surface: the configured ones (or the defaults up to ``top_k``), and ``top_k``."""
        depths = self.depths if self.depths is not None else [d for d in DEFAULT_DEPTHS if d <= top_k]
        return sorted({*depths, top_k})


@dataclass
class TableConfig:
    """A grid of cells, datasets × models × merges, each tuned on dev (or by cross-validation) and by every
    label-free selection, compiled into one table (``task=table``, ``conf/experiment/*table*``, see
    ``taskvec_ir.runs.table``). Each entry is a label and the overrides of its cell (``[]``: ``dataset=<label>``,
    ``model=<label>``, ``merge=<label>``); ``null`` leaves an entry of the experiment out (Hydra merges a mapping
    given on the command line into the experiment's: it cannot replace it)."""

    name: str | None = None  # the prefix of its studies, and of its folder
    dir: str = "tables/${table.name}"  # the cells and the compiled table (a rerun resumes what it finds there)
    datasets: dict[str, list[str] | None] = field(default_factory=dict)
    models: dict[str, list[str] | None] = field(default_factory=dict)
    merges: dict[str, list[str] | None] = field(default_factory=lambda: {"task_arithmetic": []})
    selections: list[str] = field(default_factory=lambda: ["pseudo_queries", "stability", "nqc"])
    storage: str | None = None  # every cell's Optuna study (null: sqlite in the table's folder)
    cells_at_once: int = 1  # cells run side by side (each through hydra.launcher)
    # label -> overrides of a general-domain collection ([]: dataset=<label>) on whose test split every cell's
    # merged model is evaluated too, at each α/λ its selections chose (runs.table.GeneralDomain)
    general_domain: dict[str, list[str] | None] = field(default_factory=dict)

    def entries(self, key: str) -> dict[str, list[str]]:
        """The entries of ``datasets``, ``models``, ``merges`` or ``general_domain`` that are in the grid (not left
        out by null)."""
        return {label: overrides for label, overrides in getattr(self, key).items() if overrides is not None}

    def check(self) -> None:
        """What ``task=table`` needs (other tasks ignore the table)."""
        if not self.name:
            raise UserError("table.name: name the table (its folder is tables/<name>), e.g. experiment=table_demo")
        for key in ("datasets", "models", "merges"):
            if not self.entries(key):
                raise UserError(
                    f"table.{key}: name at least one (label: [overrides], e.g. '+table.{key}.mine=[]'; "
                    "null leaves an entry out)"
                )
        for selection in self.selections:
            _one_of(selection, tuple(s for s in SELECTIONS if s != "cross_validation"), "table.selections")
        _positive(self.cells_at_once, "table.cells_at_once")
        refuse_password(self.storage, "table.storage")


SIGNIFICANCE_TESTS = ("t_test", "randomization")
CORRECTIONS = ("bonferroni", "holm")


@dataclass
class SignificanceConfig:
    """How a sweep's report and a table of cells test a system against its baselines, per query of the test split
    (``taskvec_ir.reporting.report``)."""

    test: str = "t_test"  # t_test (paired, as the paper) | randomization (Fisher's paired randomization test)
    correction: str = "bonferroni"  # bonferroni: over a row's baselines (the paper) | holm: over a table's tests
    permutations: int = 10000  # the randomization test's random sign flips (exact below 2^n ≤ this many)
    seed: int = 0  # of the randomization test's sign flips

    def __post_init__(self):
        _one_of(self.test, SIGNIFICANCE_TESTS, "significance.test")
        _one_of(self.correction, CORRECTIONS, "significance.correction")
        _positive(self.permutations, "significance.permutations")


@dataclass
class Config:
    """One experiment, as ``conf/config.yaml`` composes it."""

    dataset: DatasetConfig = MISSING
    model: ModelConfig = MISSING
    retriever: RetrieverConfig = field(default_factory=RetrieverConfig)
    alpha: AlphaConfig = field(default_factory=AlphaConfig)
    lam: LamConfig = field(default_factory=LamConfig)
    merge: MergeConfig = field(default_factory=MergeConfig)
    task: str = "evaluate"  # evaluate | adapt (only build the adapted checkpoints of model)
    split: str | None = None  # the split evaluated (None: dataset.test_split)
    systems: list[str] = field(default_factory=lambda: [BM25, IR_MODEL, TASK_ARITHMETIC])
    measures: list[str] = field(default_factory=lambda: ["ndcg@10", "precision@10", "ndcg@3", "map@100", "recall@100"])
    objective: str = "ndcg@10"  # the measure of task_arithmetic a sweep maximises (and lam.grid chooses by)
    save_merged: bool = False  # also write Θ' as a checkpoint into <job dir>/merged_model
    trial: int | None = None  # set by the sweeper: the Optuna trial number
    cache: CacheConfig = field(default_factory=CacheConfig)
    data: DataConfig = field(default_factory=DataConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    sweep: SweepConfig | None = None
    selection: SelectionConfig = field(default_factory=SelectionConfig)  # α and λ chosen by the job (conf/selection/)
    table: TableConfig = field(default_factory=TableConfig)  # task=table: the grid (conf/experiment/*table*)
    significance: SignificanceConfig = field(default_factory=SignificanceConfig)  # a report's and a table's tests
    analyses: list[str] = field(default_factory=list)  # run after the evaluation, on its split: alpha_response, depth
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)  # their settings

    def __post_init__(self):
        _one_of(self.task, TASKS, "task")
        self.check_analyses()
        if self.task == "table":
            self.table.check()
        if self.selection.method is not None:
            if self.sweep is not None:
                raise UserError("selection: a sweep chooses α itself; drop selection=... or sweep=...")
            if not self.lam.grid:
                raise UserError("selection: λ is chosen from lam.grid: add lam=dev_grid or a lam.grid")
            if TASK_ARITHMETIC not in self.systems:
                raise UserError("selection: chooses α for task_arithmetic: add it to systems")
            if self.save_merged:
                raise UserError(
                    "save_merged writes Θ' at alpha.value, and selection chooses α in the job: drop save_merged, or "
                    "rerun with the chosen alpha.value (in the job's selection.json) and save_merged=true"
                )
            if self.selection.method == "pseudo_queries" and self.retriever.backend == "run_file":
                raise UserError(PSEUDO_QUERIES_NEED_BM25)
            if self.selection.method == "pseudo_queries" and self.retriever.dense:
                raise UserError(PSEUDO_QUERIES_NEED_CANDIDATES)
            if self.selection.bootstrap.resamples and self.retriever.dense:
                raise UserError(
                    "selection.bootstrap re-chooses λ on each resample, and retriever=dense fuses nothing: set "
                    "selection.bootstrap.resamples=0, or use a BM25 retriever"
                )
        if self.retriever.dense and self.model.kind != "bi_encoder":
            raise UserError(
                f"retriever=dense ranks the corpus by embeddings, which only a bi_encoder gives; model.kind is "
                f"'{self.model.kind}' (model {self.model.name}): use a bi-encoder model, or retriever=bm25 to re-rank"
            )
        self.split = self.split or self.dataset.test_split
        unknown = sorted(set(self.systems) - set(SYSTEMS))
        if unknown:
            raise UserError(f"systems: unknown {unknown}; known: {', '.join(SYSTEMS)}")
        if DOMAIN_MODEL in self.systems and self.model.kind != "bi_encoder":
            raise UserError("systems: domain_model (ΘD alone) can only be scored for bi_encoder models")
        if self.task == "evaluate" and not self.systems and not self.save_merged:
            raise UserError(
                "systems: [] with save_merged=false would do nothing: name the systems to evaluate "
                f"({', '.join(SYSTEMS)}) or set save_merged=true"
            )
        check_measures(self.measures)
        if self.objective not in self.measures:
            raise UserError(
                f"objective: '{self.objective}' is not among measures ({', '.join(self.measures)}): "
                "add it there or choose one of them"
            )
        extra = set(self.model.extra_domains)
        if set(self.alpha.extra) != extra:
            raise UserError(
                f"alpha.extra: give one α per model.extra_domains entry (missing: "
                f"{sorted(extra - set(self.alpha.extra))}, unknown: {sorted(set(self.alpha.extra) - extra)})"
            )
        if not self.dataset.splits_in_folder:  # else checked once the folder's splits are read
            self.check_split()
        self.check_supervised()
        vectors = self.model.vectors().values()
        if self.task == "adapt" and not any(isinstance(domain, AdaptConfig) for _, domain in vectors):
            raise UserError(
                f"task=adapt: model '{self.model.name}' names no checkpoint to adapt (an adapt config "
                "at model.domain); e.g. model=minilm_scifact_adapted"
            )

    def check_analyses(self) -> None:
        """Analyses that exist, that this job can run (they read task arithmetic's settings), and depths its first
        stage retrieved."""
        for name in self.analyses:
            _one_of(name, ANALYSES, "analyses")
        if not self.analyses:
            return
        if TASK_ARITHMETIC not in self.systems and self.task == "evaluate":
            raise UserError("analyses: they compare task arithmetic's α with ΘT's: add task_arithmetic to systems")
        if "depth" not in self.analyses:
            return
        if self.retriever.dense:
            raise UserError(
                "analyses: depth re-ranks a first stage's top k, and retriever=dense ranks the whole corpus: "
                "drop depth from analyses, or use a BM25 retriever"
            )
        deeper = [d for d in self.analysis.depths or [] if d > self.retriever.top_k]
        if deeper:
            raise UserError(
                f"analysis.depths: {deeper} exceed retriever.top_k ({self.retriever.top_k}), the candidates "
                "retrieved: give depths up to it, or raise retriever.top_k"
            )

    def check_split(self) -> None:
        """The evaluated split is one of the dataset's; a sweep's message says how to give it one to tune on."""
        if self.sweep is not None and not self.sweep.final and self.split not in self.dataset.splits:
            raise UserError(
                f"dataset {self.dataset.name!r} has no {self.split!r} split to tune on (splits: "
                f"{', '.join(self.dataset.splits) or 'none'}); add one to dataset.splits (e.g. "
                "dataset.splits.dev={sample_of:train,fraction:0.2,seed:42}) or name a split to tune on with "
                "sweep.tune_split=<split>"
            )
        self.dataset.split(self.split)

    def check_supervised(self) -> None:
        """A supervised ΘD trained on the evaluated collection never saw a query this run tunes or evaluates on:
        its pairs split is not one of them, and it left out the splits this run has (not another dev sample)."""
        tuned = {self.split, self.dataset.test_split}
        tuned |= {self.sweep.tune_split} if self.sweep is not None else set()
        tuned |= {self.selection.queries} if self.selection.method is not None else set()
        for name, adapt in self.model.supervised_domains().items():
            key = "model.domain" if name == PRIMARY else f"model.extra_domains.{name}.domain"
            if adapt.dataset.docs != self.dataset.docs:
                continue  # trained on another collection's labels: none of this run's queries
            if adapt.pairs_split in tuned:
                raise UserError(
                    f"{key}.pairs_split: '{adapt.pairs_split}' is a split this run tunes or evaluates on "
                    f"({', '.join(sorted(tuned))}): train the supervised control on a split this run neither tunes "
                    "nor evaluates on"
                )
            if adapt.dataset.splits != self.dataset.splits:
                raise UserError(
                    f"{key}.dataset: its splits differ from dataset.splits, so its training could include a query "
                    "this run tunes or evaluates on: use model.domain.dataset=${dataset}"
                )

    def merge_setting(self) -> MergeSetting:
        """Θ' as configured: α of each task vector, the merge method and the per-tensor factors."""
        alphas = ((PRIMARY, self.alpha.value), *((name, self.alpha.extra[name]) for name in self.model.extra_domains))
        return MergeSetting(alphas, self.merge.method_row(), self.alpha.scale())


PSEUDO_QUERIES_NEED_BM25 = (
    "selection=pseudo_queries retrieves its queries' candidates with BM25, which retriever=run_file does not "
    "give: choose another selection, or use retriever=bm25"
)


PSEUDO_QUERIES_NEED_CANDIDATES = (
    "selection=pseudo_queries ranks each pseudo-query's source text against BM25's candidates, and retriever=dense "
    "ranks the whole corpus (which holds the source itself): choose another selection, or use retriever=bm25"
)


# -- the sweeper (hydra/sweeper) --------------------------------------------------------------------------------
@dataclass
class TPESamplerConfig:
    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = None  # each trial's sampler gets seed + trial number (see taskvec_ir.runs.sweeping)
    n_startup_trials: int = 10  # random trials before TPE models the objective
    multivariate: bool = False


@dataclass
class RandomSamplerConfig:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = None


@dataclass
class GridSamplerConfig:
    """Every point of the grid the swept choices and ranges make (the sweeper gives the search space)."""

    _target_: str = "optuna.samplers.GridSampler"
    seed: int | None = None  # the order the grid's points are visited in


@dataclass
class SweeperConfig:
    """``hydra/sweeper=taskvec_optuna``: Optuna through our sweeper (``taskvec_ir.runs.sweeping``)."""

    _target_: str = "hydra_plugins.taskvec_ir_sweeper.ResumableOptunaSweeper"
    _recursive_: bool = False  # the sampler stays a config: the sweeper instantiates it, seeded, per trial
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])
    sampler: Any = MISSING  # hydra/sweeper/sampler: tpe, random or grid
    direction: str = "maximize"  # of the objective (a measure: higher is better)
    storage: str | None = None  # an Optuna storage URL: sqlite:///path.db, postgresql://user@host/db (no password)
    study_name: str | None = None
    n_trials: int = 20  # the study's target: completed trials count toward it
    n_jobs: int = 1  # trials launched at once
    # 0: each trial is a job of its own. W > 0: W worker jobs, each running trials one after another in one process
    # (models, candidates and texts stay loaded) until the study has n_trials: see taskvec_ir.runs.sweeping.TrialWorker.
    worker_jobs: int = 0
    max_failure_rate: float = 0.0  # share of n_trials allowed to fail (each failed trial is replaced)
    # Seconds between a sweeper's heartbeats for its running trials; a trial without one for grace_period has lost
    # its sweeper (on any node) and is failed and run again by another: see taskvec_ir.runs.sweeping.Heartbeats.
    heartbeat_interval: int = 30
    grace_period: int = 120
    params: dict[str, str] = field(default_factory=dict)  # key -> interval(...), range(...), choice(...)


# The configs ship inside the package: an installed taskvec-ir runs in any folder.
# The top-level conf/, installed as the package taskvec_ir.conf (pyproject.toml maps it): found the same way from a
# wheel and from a source checkout.
CONFIG_DIR = str(importlib.resources.files("taskvec_ir.conf"))


def register() -> None:
    """Make ``Config`` the schema of ``conf/config.yaml`` (its defaults list names ``taskvec_ir_schema``), and
    our sweeper (``hydra/sweeper=taskvec_optuna``) and its samplers (``hydra/sweeper/sampler=tpe|random|grid``)
    configs Hydra can compose."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name="taskvec_ir_schema", node=Config, provider="taskvec_ir")
    store.store(group="hydra/sweeper", name="taskvec_optuna", node=SweeperConfig, provider="taskvec_ir")
    for name, node in {"tpe": TPESamplerConfig, "random": RandomSamplerConfig, "grid": GridSamplerConfig}.items():
        store.store(group="hydra/sweeper/sampler", name=name, node=node, provider="taskvec_ir")


def to_config(cfg) -> Config:
    """The typed ``Config`` of a config Hydra composed (its ``hydra`` node, if any, left out). Values that fail
    to resolve (a missing environment variable) or to check are one ``ValueError`` naming the key."""
    job = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"]) if "hydra" in cfg else cfg
    try:
        # Through a plain container: a key added with `+` that the schema lacks is then refused, not dropped.
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.to_container(job)))
    except OmegaConfBaseException as error:
        raise UserError(f"{error.full_key}: {str(error.msg).splitlines()[0]}") from None
