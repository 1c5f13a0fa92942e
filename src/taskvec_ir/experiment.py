"""One experiment's stages, wired together: data → BM25 candidates → model scores at any α → fusion → evaluation.

``Experiment`` takes an ``ExperimentSpec`` (the collection, the first stage, the triple and Θ') and computes
each stage's result only when it is asked for, through the content-addressed cache: a sweep trial that
changes only λ reads the candidates and scores from the cache and loads no model at all; one that changes
α reuses the loaded ΘT, τ and candidates (``model_pool``) and pays only its forward passes.

A *system* is what one row of a results table evaluates:
- ``bm25``: the first stage alone;
- ``ir_model``: ΘT alone (α = 0), fused with BM25 by λ like every model system;
- ``task_arithmetic``: Θ' = ΘT + α·τ at the spec's merge setting (α of every task vector, method, factors);
- ``alpha_one``: the untuned α = 1 (for every task vector, same method and factors);
- ``domain_model``: ΘD alone (only bi-encoders: any encoder checkpoint can embed text).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from taskvec_ir import data, evaluation, fusion, retrieval
from taskvec_ir.cache import Cache, cache_key, checkpoint_fingerprint, text_digest
from taskvec_ir.checkpoints import CheckpointReader, check_checkpoints, resolve_model_source
from taskvec_ir.lineage import Artifact
from taskvec_ir.merge_settings import MergeSetting
from taskvec_ir.model_pool import POOL, ModelPool
from taskvec_ir.schema import PRIMARY, AdaptConfig, Config, DatasetConfig, ModelConfig, RetrieverConfig
from taskvec_ir.sources import config_key, model_sources, vector_roles

log = logging.getLogger(__name__)

Run = dict[str, dict[str, float]]
# Bump when a change of code changes cached results, so old entries are not served.
CACHE_VERSION = 1


@dataclass(frozen=True)
class Weights:
    """Which weights score: ΘT merged as ``merge`` says (``source="ir"``) or the domain checkpoint alone."""

    source: str
    merge: MergeSetting = MergeSetting()

    def __post_init__(self):  # one name for one set of weights, so scores are cached once
        object.__setattr__(self, "merge", self.merge.normalized())


def system_weights(system: str, setting: MergeSetting) -> Weights | None:
    """The weights a system scores with (None for BM25 alone)."""
    return {
        "bm25": None,
        "ir_model": Weights("ir"),
        "task_arithmetic": Weights("ir", setting),
        "alpha_one": Weights("ir", setting.at(1.0)),
        "domain_model": Weights("domain"),
    }[system]


def dataset_identity(dataset: DatasetConfig) -> dict:
    """What identifies a dataset's documents and queries in cache keys."""
    identity = {
        "name": dataset.name,
        "docs": dataset.docs,
        "doc_fields": list(dataset.doc_fields),
        "query_field": dataset.query_field,
    }
    if dataset.beir_path:  # a user's own files may change under the same path
        identity["beir_path"] = data.source_identity(Path(dataset.beir_path).expanduser().resolve())
    return identity


@dataclass
class ExperimentSpec:
    """What an experiment computes from: the collection, the first stage, the triple and Θ'."""

    dataset: DatasetConfig
    model: ModelConfig
    merge: MergeSetting = MergeSetting()
    retriever: RetrieverConfig = field(default_factory=RetrieverConfig)
    stream_task_vector: bool = False  # keep τ on disk and stream it at each α (peak memory ≈ one model)
    mirror_dir: str | None = None  # offline copies of the files ir_datasets downloads (an adapted ΘD's corpus)

    @classmethod
    def from_config(cls, cfg: Config) -> ExperimentSpec:
        return cls(
            cfg.dataset,
            cfg.model,
            cfg.merge_setting(),
            cfg.retriever,
            cfg.merge.stream_task_vector,
            cfg.data.mirror_dir,
        )


class Experiment:
    """Lazily computed, cached stages of one spec (see the module docstring)."""

    def __init__(self, spec: ExperimentSpec, cache: Cache, pool: ModelPool = POOL):
        self.spec = spec
        self.cache = cache
        self.pool = pool
        self._splits: dict[str, data.Split] = {}
        self._candidates: dict[str, Run] = {}
        self._texts: dict[str, dict[str, str]] = {}
        self._scores: dict[tuple[str, Weights], Run] = {}
        self._folders: dict[str, Path] | None = None
        self.on_adapt_step = None  # called with (step, loss) while a domain checkpoint is being adapted

    # -- data and first stage ---------------------------------------------------------------------
    def split(self, name: str) -> data.Split:
        if name not in self._splits:
            self._splits[name] = data.load_split(self.spec.dataset, name)
        return self._splits[name]

    def add_split(
        self, name: str, split: data.Split, candidates: Run | None = None, texts: dict[str, str] | None = None
    ) -> None:
        """A query set that is not one of the dataset's splits (label-free selection's unlabeled queries, pseudo-
        queries), under ``name``; its candidates (BM25's, cached, unless given) and texts (from the doc store,
        unless given) are then used like a split's."""
        self._splits[name] = split
        if candidates is not None:
            self._candidates[name] = candidates
        if texts is not None:
            self._texts[name] = texts

    def texts(self, split: str) -> dict[str, str]:
        """doc_id -> text of the split's candidates, read by id from the doc store (never the whole corpus)."""
        if split not in self._texts:
            self._texts[split] = data.doc_texts(
                self.spec.dataset, {d for run in self.candidates(split).values() for d in run}
            )
        return self._texts[split]

    def candidates(self, split: str) -> Run:
        if split not in self._candidates:
            self._candidates[split] = self._cached_candidates(split)
        return self._candidates[split]

    def _candidates_key(self, split: str) -> str:
        dataset = self.spec.dataset
        return cache_key(
            version=CACHE_VERSION,
            dataset=dataset_identity(dataset),
            queries=text_digest(self.split(split).queries),
            language=dataset.language,
            retriever=self.spec.retriever.identity(),
        )

    def _cached_candidates(self, split: str) -> Run:
        queries = self.split(split).queries
        retriever = self.spec.retriever

        def compute() -> Run:
            data.check_judged_documents(self.spec.dataset, self.split(split).qrels, split)  # warns, once per split
            if retriever.backend == "run_file":
                run = retrieval.read_run_file(retriever.path, queries, retriever.top_k)
                self._check_run_documents(run)
                return run
            log.info("BM25 (%s) for %d %s queries", retriever.backend, len(queries), split)
            return self.bm25().search(queries, retriever.top_k)

        return self.cache.json("bm25", self._candidates_key(split), compute)

    def bm25(self) -> retrieval.Retriever:
        """BM25 over the corpus (its index built once into the cache), whatever the first stage is."""
        dataset, retriever = self.spec.dataset, self.spec.retriever
        analyzer = retrieval.Analyzer.of(dataset.language, retriever.analyzer)
        if retriever.backend == "rank_bm25":
            return retrieval.BM25Retriever(data.load_docs(dataset), analyzer, retriever.k1, retriever.b)
        if retriever.fields == "flat":
            return self._bm25_index(list(dataset.doc_fields), analyzer)
        return retrieval.FieldsBM25({field: self._bm25_index([field], analyzer) for field in dataset.doc_fields})

    def _bm25_index(self, fields: list[str], analyzer: retrieval.Analyzer) -> retrieval.BM25Index:
        """The index of ``fields`` joined (built once into the cache), searched with the retriever's BM25."""
        dataset, retriever = self.spec.dataset, self.spec.retriever
        key = cache_key(
            version=retrieval.INDEX_FORMAT,
            dataset=dataset_identity(dataset),
            language=dataset.language,
            analyzer=vars(retriever.analyzer),
            fields=fields,
        )

        def build(folder: Path) -> None:
            log.info("Indexing %s of %s for BM25 (once; cache kind bm25_index)", "+".join(fields), dataset.name)
            retrieval.build_bm25_index(data.iter_docs(dataset, fields), analyzer, folder)

        folder = self.cache.folder("bm25_index", key, build)
        return retrieval.BM25Index(folder, analyzer, retriever.k1, retriever.b, retriever.bm25)

    def _check_run_documents(self, run: Run) -> None:
        """A run file's documents must be in the corpus: one that is not means the run was made on another
        corpus (or version), and its texts could not be scored."""
        listed = {doc_id for ranking in run.values() for doc_id in ranking}
        missing = sorted(listed - set(data.doc_texts(self.spec.dataset, listed)))
        if missing:
            raise ValueError(
                f"retriever.path {self.spec.retriever.path}: {len(missing)} of the run's {len(listed)} documents "
                f"are not in the corpus {self.spec.dataset.docs} (first: {', '.join(missing[:5])}): "
                "was the run made on another corpus or version?"
            )

    # -- models -------------------------------------------------------------------------------------
    def folders(self) -> dict[str, Path]:
        """Local folders of every checkpoint (downloading Hub checkpoints once), by role (``sources``). Checks
        they share an architecture, from their configs and tensor headers."""
        if self._folders is None:
            folders = {
                role: self._resolve(source, config_key(role)) for role, source in model_sources(self.spec.model).items()
            }
            check_checkpoints(folders, self.spec.model.kind, config_key)
            self._folders = folders
        return self._folders

    def _resolve(self, source, key: str) -> Path:
        """A checkpoint's folder; an ``AdaptConfig`` is a checkpoint adapted to a corpus, built once."""
        if not isinstance(source, AdaptConfig):
            return resolve_model_source(source, key)
        from taskvec_ir import adapt

        corpus = source.dataset
        data.place_offline_files(corpus, self.spec.mirror_dir)
        log.info(
            "%s: %s adapted on %s (%s); trained once, then read from the cache",
            key,
            source.start,
            corpus.name,
            source.objective,
        )
        return adapt.adapted_checkpoint(
            source,
            self.cache,
            docs=lambda: data.load_doc_fields(corpus),  # the documents alone: no query, no qrels
            corpus_identity=dataset_identity(corpus),
            log_step=self.on_adapt_step,
        )

    def check_layers(self) -> None:
        """Per-layer α rules name layers the IR model has (read from its checkpoint's keys: no model loaded)."""
        self.spec.merge.scale.check(CheckpointReader(self.folders()["ir"]).keys(), patterns=False)

    def _fingerprints(self, roles: Sequence[str]) -> list[str]:
        return [checkpoint_fingerprint(self.folders()[role]) for role in roles]

    def scorer(self, role: str = "ir"):
        """The scorer of ``ir`` (ΘT, merged in place as the last ``set`` left it) or ``domain`` (ΘD)."""
        from taskvec_ir import scoring

        folder, kind, settings = self.folders()[role], self.spec.model.kind, self.spec.model.scorer
        identity = cache_key(folder=checkpoint_fingerprint(folder), kind=kind, settings=vars(settings))
        return self.pool.scorer(role, identity, lambda: scoring.load_scorer(kind, folder, settings, config_key(role)))

    def merge(self):
        """ΘT loaded, with every task vector τ = ΘD − Θ0 ready to add: each computed tensor by tensor into the
        cache (per triple), then held in memory or, with ``stream_task_vector``, read from there at each
        setting."""
        from taskvec_ir import merging

        module = self.scorer("ir").module
        keys = {vector: self._task_vector_key(vector) for vector in self.spec.model.vectors()}
        streamed = self.spec.stream_task_vector

        def task_vector(vector: str):
            base, domain = (self.folders()[role] for role in vector_roles(vector))
            folder = self.cache.folder(
                "task_vector",
                keys[vector],
                lambda out: merging.save_tensors(
                    merging.task_vector_tensors(module, CheckpointReader(base), CheckpointReader(domain)), out
                ),
            )
            return CheckpointReader(folder) if streamed else dict(CheckpointReader(folder).items())

        def build():
            merging.release_freed_memory()
            return merging.TaskArithmetic(
                module, CheckpointReader(self.folders()["ir"]), {vector: task_vector(vector) for vector in keys}
            )

        # Keyed by the cache folder a streamed τ is read from too.
        return self.pool.merge(f"{sorted(keys.items())}/{streamed}/{self.cache.root}", build)

    def _task_vector_key(self, vector: str) -> str:
        """τ is stored in ΘT's dtype (the scorer's, which ΘT is loaded in)."""
        base, domain = self._fingerprints(vector_roles(vector))
        return cache_key(
            version=CACHE_VERSION,
            ir=checkpoint_fingerprint(self.folders()["ir"]),
            base=base,
            domain=domain,
            dtype=f"torch.{self.spec.model.scorer.dtype}",
        )

    def inputs(self, split: str, merged: bool) -> list[Artifact]:
        """What a job evaluating ``split`` read, as W&B artifacts (``lineage``): its BM25 candidates, the task
        vectors when a merge was made (``merged``), and the checkpoints adapted to a corpus. Only entries that
        exist: a job that scored nothing new may never have had its τ computed."""
        found = []
        key = self._candidates_key(split)
        if path := self.cache.entry("bm25", key):
            found.append(
                Artifact(
                    f"bm25-{key}",
                    "candidates",
                    path,
                    {"dataset": self.spec.dataset.name, "split": split, "retriever": self.spec.retriever.identity()},
                )
            )
        for vector in self.spec.model.vectors() if merged else ():
            key = self._task_vector_key(vector)
            if path := self.cache.entry("task_vector", key):
                roles = dict(zip(("base", "domain"), vector_roles(vector), strict=True))
                metadata = {"ir": str(self.folders()["ir"]), **{k: str(self.folders()[r]) for k, r in roles.items()}}
                found.append(Artifact(f"task-vector-{key}", "task_vector", path, metadata, checksum=False))
        return found + self.adapted()

    def adapted(self) -> list[Artifact]:
        """The checkpoints of the spec adapted to a corpus (``adapt``), as model artifacts."""
        found = []
        for role, source in model_sources(self.spec.model).items():
            if isinstance(source, AdaptConfig):
                folder = self.folders()[role]
                metadata = {"start": source.start, "corpus": source.dataset.name, **source.training_settings()}
                found.append(Artifact(f"adapted-{folder.name}", "model", folder, metadata, checksum=False))
        return found

    def merge_diagnostics(self, setting: MergeSetting | None = None) -> dict:
        """What the merge at ``setting`` (default: the spec's) does to ΘT (see ``merging.task_vector_diagnostics``),
        with the share of ΘT's parameters it changes. Both parts are cached: a trial whose scores are cached
        loads no model for them."""
        setting = setting or self.spec.merge
        ir_fingerprint = checkpoint_fingerprint(self.folders()["ir"])
        vectors = {vector: self._fingerprints(vector_roles(vector)) for vector in self.spec.model.vectors()}
        identity = dict(version=CACHE_VERSION, ir=ir_fingerprint, vectors=vectors, dtype=self.spec.model.scorer.dtype)

        def vector_stats():
            from taskvec_ir import merging

            merge = self.merge()
            merge.set(MergeSetting())
            bases = {
                vector: CheckpointReader(self.folders()[vector_roles(vector)[0]])
                if fingerprints[0] != ir_fingerprint
                else None
                for vector, fingerprints in vectors.items()
            }
            return merging.task_vector_diagnostics(
                merge.module, merge.task_vectors, bases, CheckpointReader(self.folders()["ir"])
            )

        def changed_fraction():
            merge = self.merge()
            merge.set(setting)
            return merge.changed_fraction()

        stats = self.cache.json("merge_stats", cache_key(**identity), vector_stats)
        changed = self.cache.json("merge_changed", cache_key(**identity, setting=setting.describe()), changed_fraction)
        return {**stats, "setting": setting.describe(), "changed_fraction": changed}

    def save_merged(self, folder: Path) -> None:
        """Write Θ' at the spec's setting as a checkpoint that loads like ΘT (``from_pretrained``)."""
        self.merge().set(self.spec.merge)
        self.scorer("ir").save(folder)

    def scores(self, split: str, weights: Weights) -> Run:
        """Model scores of ``split``'s BM25 candidates with ``weights`` (cached)."""
        if weights.source == "domain" and len(set(self._fingerprints(["base", "ir"]))) == 1:
            # Θ0 = ΘT: ΘT + 1·(ΘD − ΘT) is ΘD (up to rounding): no second model
            weights = Weights("ir", MergeSetting(((PRIMARY, 1.0),)))
        if (split, weights) not in self._scores:
            self._scores[split, weights] = self._cached_scores(split, weights)
        return self._scores[split, weights]

    def _cached_scores(self, split: str, weights: Weights) -> Run:
        candidates = self.candidates(split)
        queries = self.split(split).queries
        if weights.source == "domain":
            model = {"domain": checkpoint_fingerprint(self.folders()["domain"])}
        else:  # each vector by its checkpoints, not its name: renaming one keeps its scores
            model = {
                "ir": checkpoint_fingerprint(self.folders()["ir"]),
                "vectors": [
                    [*self._fingerprints(vector_roles(vector)), alpha] for vector, alpha in weights.merge.alphas
                ],
            }
            merge = weights.merge.describe()
            merge.pop("alphas")
            model["merge"] = merge
        scorer_key = {"kind": self.spec.model.kind, **self.spec.model.scorer.scores_identity()}
        key = cache_key(
            version=CACHE_VERSION,
            model=model,
            scorer=scorer_key,
            queries=text_digest(queries),
            candidates=text_digest(candidates),
        )

        def compute() -> Run:
            if weights.source == "ir":
                self.merge().set(weights.merge)
            weights_name = (
                "ΘD"
                if weights.source == "domain"
                else f"ΘT merged {weights.merge.describe()}"
                if weights.merge.alphas
                else "ΘT alone"
            )
            log.info("Scoring %d %s queries with %s", len(candidates), split, weights_name)
            run = self.scorer(weights.source).score(queries, self.texts(split), candidates)
            bad = [q for q, docs in run.items() if any(not math.isfinite(v) for v in docs.values())]
            if bad:  # raised before the cache stores anything
                raise FloatingPointError(
                    f"the model produced non-finite scores for {len(bad)} queries (first: {bad[0]})"
                )
            return run

        return self.cache.json("scores", key, compute)

    # -- systems ---------------------------------------------------------------------------------------
    def system_run(self, split: str, system: str, lam: float, setting: MergeSetting | None = None) -> Run:
        """``system``'s fused run of ``split``, Θ' at ``setting`` (default: the spec's)."""
        candidates = self.candidates(split)
        weights = system_weights(system, setting or self.spec.merge)
        if weights is None:
            return candidates
        return fusion.fuse(candidates, self.scores(split, weights), lam)

    def best_lambda(self, split: str, system: str, grid: Sequence[float], measure: str) -> tuple[float, float]:
        """The λ of ``grid`` that maximises ``measure`` on ``split`` (ties: the smallest λ)."""
        qrels = self.split(split).qrels
        values = {
            lam: evaluation.evaluate_run(qrels, self.system_run(split, system, lam), [measure])[0][measure]
            for lam in grid
        }
        best = max(values, key=lambda lam: (values[lam], -lam))
        log.info("λ on %s by %s: %s -> %g", split, measure, {k: round(v, 4) for k, v in values.items()}, best)
        return best, values[best]

    def evaluate(
        self,
        split: str,
        systems: Sequence[str],
        lam: float,
        runs_dir: Path | None = None,
        measures: Sequence[str] = evaluation.MEASURES,
    ):
        """means[system][measure] and per_query[system][measure][query_id]; TREC runs into ``runs_dir``."""
        qrels = self.split(split).qrels
        means, per_query = {}, {}
        for system in systems:
            run = self.system_run(split, system, lam)
            if runs_dir is not None:
                evaluation.save_trec_run(run, runs_dir / f"{split}.{system}.trec", system)
            means[system], per_query[system] = evaluation.evaluate_run(qrels, run, measures)
        return means, per_query
