"""One experiment's stages, wired together: data → BM25 candidates → model scores at any α → fusion → evaluation.

``Experiment`` takes a plain config mapping (what ``conf/config.yaml`` composes, resolved) and computes
each stage's result only when it is asked for, through the content-addressed cache: a sweep trial that
changes only λ reads the candidates and scores from the cache and loads no model at all; one that changes
α reuses the loaded ΘT, τ and candidates and pays only its forward passes.

A *system* is what one row of a results table evaluates:
- ``bm25``: the first stage alone;
- ``ir_model``: ΘT alone (α = 0), fused with BM25 by λ like every model system;
- ``task_arithmetic``: Θ' = ΘT + α·τ at the configured merge setting (α of every task vector, method, factors);
- ``alpha_one``: the untuned α = 1 (for every task vector, same method and factors);
- ``domain_model``: ΘD alone (only bi-encoders: any encoder checkpoint can embed text).

Task vectors: ``model.domain`` − ``model.base`` is the one named ``domain`` (α: ``alpha.value``); each entry
of ``model.extra_domains`` adds another, ``name: {domain: ..., base: ...}`` (base defaults to
``model.base``), with its α in ``alpha.extra.<name>``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from taskvec_ir import data, evaluation, fusion, retrieval, scoring
from taskvec_ir.merging import AlphaScale, MergeMethod, MergeSetting
from taskvec_ir.cache import Cache, cache_key, checkpoint_fingerprint, text_digest
from taskvec_ir.checkpoints import CheckpointReader, check_checkpoints, resolve_model_source

log = logging.getLogger(__name__)

Run = dict[str, dict[str, float]]
# Bump when a change of code changes cached results, so old entries are not served.
CACHE_VERSION = 1
MODEL_SYSTEMS = ("ir_model", "task_arithmetic", "alpha_one", "domain_model")


# What a process has loaded stays loaded for its next job (Hydra's basic launcher runs every trial of a
# sweep in one process): a new trial re-reads no checkpoint and pays only its forward passes. One entry
# per kind (the latest), so a process that moves on to another model does not keep the old one.
_LOADED: dict[str, tuple[str, object]] = {}


def _process_cached(kind: str, key: str, build):
    if kind not in _LOADED or _LOADED[kind][0] != key:
        _LOADED.pop(kind, None)
        _LOADED[kind] = (key, build())
    return _LOADED[kind][1]


@dataclass(frozen=True)
class Weights:
    """Which weights score: ΘT merged as ``merge`` says (``source="ir"``) or the domain checkpoint alone."""

    source: str
    merge: MergeSetting = MergeSetting()

    def __post_init__(self):  # one name for one set of weights, so scores are cached once
        object.__setattr__(self, "merge", self.merge.normalized())


PRIMARY = "domain"  # the name of the task vector model.domain − model.base


def check_alpha(alpha, key: str = "alpha.value") -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise ValueError(f"{key}: {alpha!r} must be a finite number (the weight of the task vector)")
    return float(alpha)


def task_vector_sources(model: Mapping) -> dict[str, dict]:
    """Each task vector's ``domain`` and ``base`` model sources, by name (``domain`` first)."""
    extra = model.get("extra_domains") or {}
    if not isinstance(extra, Mapping):
        raise ValueError("model.extra_domains: must map names to {domain: <checkpoint>, base: <checkpoint>}")
    sources = {PRIMARY: {"domain": model["domain"], "base": model["base"]}}
    for name, spec in extra.items():
        if name == PRIMARY or not str(name).isidentifier():
            raise ValueError(f"model.extra_domains.{name}: name each extra vector with a word other than '{PRIMARY}'")
        if not isinstance(spec, Mapping) or not spec.get("domain"):
            raise ValueError(f"model.extra_domains.{name}: give its checkpoint as domain: <checkpoint> (base optional)")
        sources[name] = {"domain": spec["domain"], "base": spec.get("base") or model["base"]}
    return sources


def model_sources(model: Mapping) -> dict[str, object]:
    """Every checkpoint of the model config by role: ``ir``, ``base``, ``domain``, then ``<name>.base`` and
    ``<name>.domain`` per extra vector. A source is a model source string or an adapt mapping."""
    sources = {"ir": model["ir"]}
    for name, vector in task_vector_sources(model).items():
        for role, source in vector.items():
            sources[role if name == PRIMARY else f"{name}.{role}"] = source
    return sources


def config_key(role: str) -> str:
    """The config key of a role of ``model_sources``: ``model.domain``, ``model.extra_domains.<name>.domain``."""
    return f"model.{role}" if "." not in role else f"model.extra_domains.{role}"


def merge_setting(cfg: Mapping) -> MergeSetting:
    """Θ' as configured: α of each task vector (``alpha.value``, ``alpha.extra``), ``merge`` method, factors."""
    names = list(task_vector_sources(cfg["model"]))
    extra = dict(cfg["alpha"].get("extra") or {})
    if set(extra) != set(names[1:]):
        missing, unknown = sorted(set(names[1:]) - set(extra)), sorted(set(extra) - set(names[1:]))
        raise ValueError(f"alpha.extra: give one α per model.extra_domains entry (missing: {missing}, unknown: {unknown})")
    alphas = ((PRIMARY, check_alpha(cfg["alpha"]["value"])),
              *((name, check_alpha(extra[name], f"alpha.extra.{name}")) for name in names[1:]))
    return MergeSetting(alphas, MergeMethod.from_mapping(cfg["merge"]), AlphaScale.from_mapping(cfg["alpha"]))


def system_weights(system: str, setting: MergeSetting) -> Weights | None:
    """The weights a system scores with (None for BM25 alone)."""
    return {
        "bm25": None,
        "ir_model": Weights("ir"),
        "task_arithmetic": Weights("ir", setting),
        "alpha_one": Weights("ir", replace(setting, alphas=tuple((name, 1.0) for name, _ in setting.alphas))),
        "domain_model": Weights("domain"),
    }[system]


def validate(cfg: Mapping) -> None:
    """Every check that needs no data and no model: run it before anything expensive."""
    merge_setting(cfg)
    for role, source in model_sources(cfg["model"]).items():
        if isinstance(source, Mapping):  # a checkpoint to adapt: its settings are checked before any training
            from taskvec_ir.adapt import AdaptSettings

            try:
                AdaptSettings.from_mapping(source)
            except ValueError as error:
                raise ValueError(f"{config_key(role)} (an adapt config): {error}") from None
    if cfg["lam"]["value"] is not None:
        fusion.check_lambda(cfg["lam"]["value"])
    elif not cfg["lam"].get("grid"):
        raise ValueError("lam.value is null: give a value in [0, 1], or a lam.grid to choose it on the split")
    for lam in cfg["lam"].get("grid") or []:
        fusion.check_lambda(lam)
    if cfg["retriever"]["top_k"] <= 0:
        raise ValueError(f"retriever.top_k: {cfg['retriever']['top_k']} must be positive")
    if cfg["model"]["kind"] not in scoring.KINDS:
        raise ValueError(f"model.kind: '{cfg['model']['kind']}' is not one of {', '.join(scoring.KINDS)}")
    scoring.ScorerSettings.from_mapping(cfg["model"]["scorer"])
    unknown = set(cfg["systems"]) - {"bm25", *MODEL_SYSTEMS}
    if unknown:
        raise ValueError(f"systems: unknown {sorted(unknown)}; known: bm25, {', '.join(MODEL_SYSTEMS)}")
    if "domain_model" in cfg["systems"] and cfg["model"]["kind"] != "bi_encoder":
        raise ValueError("systems: domain_model (ΘD alone) can only be scored for bi_encoder models")
    data.split_spec(cfg["dataset"], cfg["split"])


def dataset_identity(dataset: Mapping) -> dict:
    """What identifies a dataset's documents and queries in cache keys."""
    identity = {key: dataset.get(key) for key in ("name", "docs", "doc_fields", "query_field")}
    if dataset.get("beir_path"):  # a user's own files may change under the same path
        identity["beir_path"] = data.source_identity(Path(dataset["beir_path"]).expanduser().resolve())
    return identity


class Experiment:
    """Lazily computed, cached stages of one configuration (see the module docstring)."""

    def __init__(self, cfg: Mapping, cache: Cache):
        self.cfg = cfg
        self.dataset = cfg["dataset"]
        self.cache = cache
        self.settings = scoring.ScorerSettings.from_mapping(cfg["model"]["scorer"])
        self._splits: dict[str, data.Split] = {}
        self._candidates: dict[str, Run] = {}
        self._scores: dict[tuple[str, Weights], Run] = {}
        self._docs: dict[str, str] | None = None
        self._folders: dict[str, Path] | None = None
        self._scorers: dict[str, scoring.Scorer] = {}
        self._merge = None
        self.on_adapt_step = None  # called with (step, loss) while a domain checkpoint is being adapted

    # -- data and first stage ---------------------------------------------------------------------
    def split(self, name: str) -> data.Split:
        if name not in self._splits:
            self._splits[name] = data.load_split(self.dataset, name)
        return self._splits[name]

    def docs(self) -> dict[str, str]:
        if self._docs is None:
            key = cache_key(dataset=dataset_identity(self.dataset))
            self._docs = _process_cached("docs", key, lambda: data.load_docs(self.dataset))
        return self._docs

    def candidates(self, split: str) -> Run:
        if split not in self._candidates:
            self._candidates[split] = self._cached_candidates(split)
        return self._candidates[split]

    def _cached_candidates(self, split: str) -> Run:
        queries = self.split(split).queries
        retriever = dict(self.cfg["retriever"])
        key = cache_key(version=CACHE_VERSION, dataset=dataset_identity(self.dataset), queries=text_digest(queries),
                        language=self.dataset["language"], retriever=retriever)

        def compute() -> Run:
            docs = self.docs()
            data.check_judged_documents(self.split(split).qrels, docs, split)  # warns, once per computed split
            log.info("BM25 over %d documents for %d %s queries", len(docs), len(queries), split)
            return retrieval.bm25_candidates(docs, queries, language=self.dataset["language"], **retriever)

        return self.cache.json("bm25", key, compute)

    # -- models -------------------------------------------------------------------------------------
    def folders(self) -> dict[str, Path]:
        """Local folders of every checkpoint (downloading Hub checkpoints once), by role: ``ir``, ``base`` and
        ``domain``, then ``<name>.base`` and ``<name>.domain`` per extra vector. Checks they share an architecture."""
        if self._folders is None:
            sources = model_sources(self.cfg["model"])
            folders = {role: self._resolve(source, config_key(role)) for role, source in sources.items()}
            # model.kind fits ΘT; architectures, names, vocabularies and shapes agree (headers only, no weights)
            check_checkpoints(folders, self.cfg["model"]["kind"], config_key)
            self._folders = folders
        return self._folders

    def _resolve(self, source, key: str) -> Path:
        """A checkpoint's folder; a mapping (``conf/adapt/``) is a checkpoint adapted to a corpus, built once."""
        if not isinstance(source, Mapping):
            return resolve_model_source(source, key)
        from taskvec_ir import adapt

        corpus = source.get("dataset")
        if not isinstance(corpus, Mapping) or "name" not in corpus:
            raise ValueError(f"{key}.dataset: name the corpus to adapt on (a dataset config, e.g. scifact)")
        data.place_offline_files(corpus, self.cfg["data"]["mirror_dir"] or None)
        log.info("%s: %s adapted on %s (%s); trained once, then read from the cache", key, source.get("start"),
                 corpus["name"], source.get("objective"))
        return adapt.adapted_checkpoint(source, self.cache, docs=lambda: data.load_docs(corpus),
                                        corpus_identity=dataset_identity(corpus), log_step=self.on_adapt_step)

    def check_layers(self) -> None:
        """Per-layer α rules name layers the IR model has (read from its checkpoint's keys: no model loaded)."""
        merge_setting(self.cfg).scale.check(CheckpointReader(self.folders()["ir"]).keys(), patterns=False)

    def _vector_folders(self, vector: str) -> tuple[Path, Path]:
        """(base, domain) folders of a task vector."""
        prefix = "" if vector == PRIMARY else f"{vector}."
        return self.folders()[f"{prefix}base"], self.folders()[f"{prefix}domain"]

    def _scorer(self, source: str) -> scoring.Scorer:
        if source not in self._scorers:
            folder, kind = self.folders()[source], self.cfg["model"]["kind"]
            key = cache_key(folder=checkpoint_fingerprint(folder), kind=kind, settings=vars(self.settings))
            self._scorers[source] = _process_cached(f"scorer.{source}", key,
                                                    lambda: scoring.load_scorer(kind, folder, self.settings,
                                                                                config_key(source)))
        return self._scorers[source]

    def merge(self):
        """ΘT loaded, with every task vector τ = ΘD − Θ0 ready to add: each computed tensor by tensor into the
        cache (per triple), then held in memory or, with ``merge.stream_task_vector``, read from there at each
        setting."""
        if self._merge is None:
            from taskvec_ir import merging

            module = self._scorer("ir").module
            dtype = str(next(module.parameters()).dtype)
            keys = {vector: self._task_vector_key(vector, dtype) for vector in task_vector_sources(self.cfg["model"])}
            streamed = self.cfg["merge"]["stream_task_vector"]

            def task_vector(vector: str):
                base, domain = self._vector_folders(vector)
                folder = self.cache.folder("task_vector", keys[vector], lambda out: merging.save_tensors(
                    merging.task_vector_tensors(module, CheckpointReader(base), CheckpointReader(domain)), out))
                return CheckpointReader(folder) if streamed else dict(CheckpointReader(folder).items())

            def build():
                merging.release_freed_memory()
                return merging.TaskArithmetic(module, CheckpointReader(self.folders()["ir"]),
                                              {vector: task_vector(vector) for vector in keys})

            # Keyed by the loaded ΘT object too (a reloaded ΘT needs its own in-place merge), and by the
            # cache folder a streamed τ is read from.
            merge_key = f"{sorted(keys.items())}/{id(module)}/{streamed}/{self.cache.root}"
            previous = _LOADED.get("merge")
            if previous and previous[0] != merge_key and previous[1].module is module:
                previous[1].set(MergeSetting())  # hand the shared ΘT back unmerged before a new merge takes it
            self._merge = _process_cached("merge", merge_key, build)
        return self._merge

    def _task_vector_key(self, vector: str, dtype: str) -> str:
        base, domain = self._vector_folders(vector)
        return cache_key(version=CACHE_VERSION, ir=checkpoint_fingerprint(self.folders()["ir"]),
                         base=checkpoint_fingerprint(base), domain=checkpoint_fingerprint(domain), dtype=dtype)

    def merge_diagnostics(self, setting: MergeSetting) -> dict:
        """What the merge does to ΘT (see ``merging.task_vector_diagnostics``), with the share of ΘT's parameters
        ``setting`` changes. Both parts are cached: a trial whose scores are cached loads no model for them."""
        from taskvec_ir import merging

        folders = self.folders()
        vectors = {vector: [checkpoint_fingerprint(f) for f in self._vector_folders(vector)]
                   for vector in task_vector_sources(self.cfg["model"])}
        identity = dict(version=CACHE_VERSION, ir=checkpoint_fingerprint(folders["ir"]), vectors=vectors,
                        dtype=self.settings.dtype)

        def vector_stats():
            merge = self.merge()
            merge.set(MergeSetting())
            ir_fingerprint = checkpoint_fingerprint(folders["ir"])
            bases = {vector: CheckpointReader(self._vector_folders(vector)[0])
                     if fingerprints[0] != ir_fingerprint else None for vector, fingerprints in vectors.items()}
            return merging.task_vector_diagnostics(merge.module, merge.task_vectors, bases, CheckpointReader(folders["ir"]))

        def changed_fraction():
            merge = self.merge()
            merge.set(setting)
            return merge.changed_fraction()

        stats = self.cache.json("merge_stats", cache_key(**identity), vector_stats)
        changed = self.cache.json("merge_changed", cache_key(**identity, setting=setting.describe()), changed_fraction)
        return {**stats, "setting": setting.describe(), "changed_fraction": changed}

    def save_merged(self, folder: Path) -> None:
        """Write Θ' at the configured setting as a checkpoint that loads like ΘT (``from_pretrained``)."""
        self.merge().set(merge_setting(self.cfg))
        self._scorer("ir").save(folder)

    def scores(self, split: str, weights: Weights) -> Run:
        """Model scores of ``split``'s BM25 candidates with ``weights`` (cached)."""
        folders = self.folders()
        if weights.source == "domain" and checkpoint_fingerprint(folders["base"]) == checkpoint_fingerprint(folders["ir"]):
            # Θ0 = ΘT: ΘT + 1·(ΘD − ΘT) is ΘD (up to rounding): no second model
            weights = Weights("ir", MergeSetting(((PRIMARY, 1.0),)))
        if (split, weights) not in self._scores:
            self._scores[split, weights] = self._cached_scores(split, weights)
        return self._scores[split, weights]

    def _cached_scores(self, split: str, weights: Weights) -> Run:
        candidates = self.candidates(split)
        queries = self.split(split).queries
        folders = self.folders()
        if weights.source == "domain":
            model = {"domain": checkpoint_fingerprint(folders["domain"])}
        else:  # each vector by its checkpoints, not its name: renaming one keeps its scores
            model = {"ir": checkpoint_fingerprint(folders["ir"]), "vectors": [
                [*map(checkpoint_fingerprint, self._vector_folders(vector)), alpha] for vector, alpha in weights.merge.alphas]}
            merge = weights.merge.describe()
            merge.pop("alphas")
            model["merge"] = merge
        s = self.settings
        scorer_key = dict(kind=self.cfg["model"]["kind"], max_length=s.max_length, max_query_length=s.max_query_length,
                          dtype=s.dtype, device=s.torch_device().type, similarity=s.similarity, template=s.template,
                          positive=s.positive_token, negative=s.negative_token)
        key = cache_key(version=CACHE_VERSION, model=model, scorer=scorer_key,
                        queries=text_digest(queries), candidates=text_digest(candidates))

        def compute() -> Run:
            if weights.source == "ir":
                self.merge().set(weights.merge)
            weights_name = ("ΘD" if weights.source == "domain" else
                            f"ΘT merged {weights.merge.describe()}" if weights.merge.alphas else "ΘT alone")
            log.info("Scoring %d %s queries with %s", len(candidates), split, weights_name)
            run = self._scorer(weights.source).score(queries, self.docs(), candidates)
            bad = [q for q, docs in run.items() if any(not math.isfinite(v) for v in docs.values())]
            if bad:  # raised before the cache stores anything
                raise FloatingPointError(f"the model produced non-finite scores for {len(bad)} queries (first: {bad[0]})")
            return run

        return self.cache.json("scores", key, compute)

    # -- systems ---------------------------------------------------------------------------------------
    def system_run(self, split: str, system: str, lam: float) -> Run:
        candidates = self.candidates(split)
        weights = system_weights(system, merge_setting(self.cfg))
        if weights is None:
            return candidates
        return fusion.fuse(candidates, self.scores(split, weights), lam)

    def best_lambda(self, split: str, system: str, grid: Sequence[float], measure: str) -> tuple[float, float]:
        """The λ of ``grid`` that maximises ``measure`` on ``split`` (ties: the smallest λ)."""
        qrels = self.split(split).qrels
        values = {lam: evaluation.evaluate_run(qrels, self.system_run(split, system, lam), [measure])[0][measure]
                  for lam in grid}
        best = max(values, key=lambda lam: (values[lam], -lam))
        log.info("λ on %s by %s: %s -> %g", split, measure, {k: round(v, 4) for k, v in values.items()}, best)
        return best, values[best]

    def evaluate(self, split: str, systems: Sequence[str], lam: float, runs_dir: Path | None = None,
                 measures: Sequence[str] = evaluation.MEASURES):
        """means[system][measure] and per_query[system][measure][query_id]; TREC runs into ``runs_dir``."""
        qrels = self.split(split).qrels
        means, per_query = {}, {}
        for system in systems:
            run = self.system_run(split, system, lam)
            if runs_dir is not None:
                evaluation.save_trec_run(run, runs_dir / f"{split}.{system}.trec", system)
            means[system], per_query[system] = evaluation.evaluate_run(qrels, run, measures)
        return means, per_query
