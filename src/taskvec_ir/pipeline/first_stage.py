"""The first stage of a pipeline: its query sets, their BM25 candidates and the candidates' texts.

Candidates are cached per dataset, query set, language and first-stage settings; the BM25 index is built once
per corpus and analyzer into the cache. Texts are read by id from the doc store, never the whole corpus.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.config.measures import BEYOND, UNMOVED, depth_warnings
from taskvec_ir.config.retriever import Backend, RetrieverConfig
from taskvec_ir.errors import MissingFileError, UserError
from taskvec_ir.ir import documents, splits
from taskvec_ir.ir.analyzers import Analyzer
from taskvec_ir.ir.beir import source_identity
from taskvec_ir.ir.bm25 import SEARCH_REVISION, BM25Retriever, Retriever
from taskvec_ir.ir.bm25_index import INDEX_FORMAT, BM25Index, FieldsBM25, build_bm25_index
from taskvec_ir.ir.run_files import read_run_file
from taskvec_ir.reporting.lineage import Artifact
from taskvec_ir.storage.cache import CACHE_VERSION, Cache, cache_key, file_digest, text_digest

log = logging.getLogger(__name__)

Run = dict[str, dict[str, float]]


def dataset_identity(dataset: DatasetConfig) -> dict:
    """What identifies a dataset's documents and queries in cache keys."""
    identity = {
        "name": dataset.name,
        "docs": dataset.docs,
        "doc_fields": list(dataset.doc_fields),
        "query_field": dataset.query_field,
    }
    if dataset.beir_path:  # a user's own files may change under the same path
        identity["beir_path"] = source_identity(Path(dataset.beir_path).expanduser().resolve())
    return identity


def retriever_identity(retriever: RetrieverConfig) -> dict:
    """What determines the candidates in cache keys: the retriever's settings; for a run file, its content, not its
    path."""
    identity = retriever.identity()
    if retriever.backend == Backend.run_file:
        path = Path(identity.pop("path")).expanduser()
        if not path.is_file():
            raise MissingFileError(f"no run file at {path}: fix retriever.path")
        identity["run"] = file_digest(path)
    return identity


class FirstStage:
    """Query sets by name (the dataset's splits, or sets added with ``add_split``), with their candidates and
    texts, each computed once and cached."""

    def __init__(self, dataset: DatasetConfig, retriever: RetrieverConfig, cache: Cache):
        self.dataset, self.retriever, self.cache = dataset, retriever, cache
        self._splits: dict[str, splits.Split] = {}
        self._candidates: dict[str, Run] = {}
        self._texts: dict[str, dict[str, str]] = {}

    def split(self, name: str) -> splits.Split:
        if name not in self._splits:
            self._splits[name] = splits.load_split(self.dataset, name)
        return self._splits[name]

    def add_split(
        self, name: str, split: splits.Split, candidates: Run | None = None, texts: dict[str, str] | None = None
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
            self._texts[split] = documents.doc_texts(
                self.dataset, {d for run in self.candidates(split).values() for d in run}
            )
        return self._texts[split]

    def candidates(self, split: str) -> Run:
        if split not in self._candidates:
            self._candidates[split] = self.cache.json("bm25", self.candidates_key(split), lambda: self._search(split))
        return self._candidates[split]

    def candidates_key(self, split: str) -> str:
        return cache_key(
            version=CACHE_VERSION,
            dataset=dataset_identity(self.dataset),
            queries=text_digest(self.split(split).queries),
            language=self.dataset.language,
            retriever=retriever_identity(self.retriever),
            search=SEARCH_REVISION,
        )

    def _search(self, split: str) -> Run:
        queries = self.split(split).queries
        splits.check_judged_documents(self.dataset, self.split(split).qrels, split)  # warns, once per split
        if self.retriever.backend == "run_file":
            run = read_run_file(self.retriever.path, queries, self.retriever.top_k)
            self._check_run_documents(run)
            return run
        log.info("BM25 (%s) for %d %s queries", self.retriever.backend, len(queries), split)
        return self.bm25().search(queries, self.retriever.top_k)

    def warnings(self, split: str, measures: Sequence[str] = ()) -> dict[str, list[str]]:
        """What a reader of the split's means must know, by kind (each only where it has an entry), each logged:

        - the judged queries that score 0 on every system: for want of input, ``no_text`` (in the qrels, not among
          the split's queries), ``missing_from_run_file`` (``retriever=run_file``: the run file lists no document
          for it) or ``no_candidates`` (the first stage retrieved nothing, e.g. a query of stopwords only); or
          ``no_relevant`` (every judgement grade 0 after ``relevance_map``: nothing to find). A mean over the qrels'
          queries counts them as 0, as trec_eval does;
        - the ``measures`` the first stage's depth limits (``config.measures.depth_warnings``): ``UNMOVED``, which
          re-ranking its top k cannot change, and ``BEYOND``, cut deeper than the k documents retrieved."""
        queries, qrels = self.split(split).queries, self.split(split).qrels
        judged = sorted(q for q, docs in qrels.items() if docs)
        candidates = self.candidates(split)
        empty = "missing_from_run_file" if self.retriever.backend == "run_file" else "no_candidates"
        found = {
            "no_text": [q for q in judged if q not in queries],
            empty: [q for q in judged if q in queries and not candidates.get(q)],
            "no_relevant": [q for q in judged if max(qrels[q].values()) <= 0],
        }
        for kind, ids in found.items():
            if ids:
                log.warning(
                    "Split %r: %d of its %d judged queries score 0 on every system (%s): %s",
                    split, len(ids), len(judged), kind.replace("_", " "), ", ".join(ids),
                )  # fmt: skip
        top_k = self.retriever.top_k
        depth = depth_warnings(measures, top_k, reranked=not self.retriever.dense)
        if UNMOVED in depth:
            log.warning(
                "%s cannot change under re-ranking: each is a measure of the top k as a set, k at least the %d "
                "candidates re-ranked (raise retriever.top_k for them to move)", ", ".join(depth[UNMOVED]), top_k
            )  # fmt: skip
        if BEYOND in depth:
            log.warning(
                "%s cut deeper than the %d documents retrieved (retriever.top_k)", ", ".join(depth[BEYOND]), top_k
            )
        return {kind: ids for kind, ids in {**found, **depth}.items() if ids}

    def bm25(self) -> Retriever:
        """BM25 over the corpus (its index built once into the cache), whatever the first stage is."""
        dataset, retriever = self.dataset, self.retriever
        analyzer = Analyzer.of(dataset.language, retriever.analyzer)
        if retriever.backend == "rank_bm25":
            return BM25Retriever(documents.load_docs(dataset), analyzer, retriever.k1, retriever.b)
        if retriever.fields == "flat":
            return self._bm25_index(list(dataset.doc_fields), analyzer)
        return FieldsBM25({field: self._bm25_index([field], analyzer) for field in dataset.doc_fields})

    def _bm25_index(self, fields: list[str], analyzer: Analyzer) -> BM25Index:
        """The index of ``fields`` joined (built once into the cache), searched with the retriever's BM25."""
        dataset, retriever = self.dataset, self.retriever
        key = cache_key(
            version=INDEX_FORMAT,
            dataset=dataset_identity(dataset),
            language=dataset.language,
            analyzer=analyzer.identity(),
            fields=fields,
        )

        def build(folder: Path) -> None:
            log.info("Indexing %s of %s for BM25 (once; cache kind bm25_index)", "+".join(fields), dataset.name)
            build_bm25_index(documents.iter_docs(dataset, fields), analyzer, folder)

        folder = self.cache.folder("bm25_index", key, build)
        return BM25Index(folder, analyzer, retriever.k1, retriever.b, retriever.bm25)

    def _check_run_documents(self, run: Run) -> None:
        """A run file's documents must be in the corpus: one that is not means the run was made on another
        corpus (or version), and its texts could not be scored."""
        listed = {doc_id for ranking in run.values() for doc_id in ranking}
        missing = sorted(listed - set(documents.doc_texts(self.dataset, listed)))
        if missing:
            raise UserError(
                f"retriever.path {self.retriever.path}: {len(missing)} of the run's {len(listed)} documents "
                f"are not in the corpus {self.dataset.docs} (first: {', '.join(missing[:5])}): "
                "was the run made on another corpus or version?"
            )

    def artifact(self, split: str) -> Artifact | None:
        """The split's cached candidates as a W&B artifact (``lineage``), if they are in the cache."""
        key = self.candidates_key(split)
        path = self.cache.entry("bm25", key)
        metadata = {"dataset": self.dataset.name, "split": split, "retriever": retriever_identity(self.retriever)}
        metadata["cache_key"] = key
        name = f"bm25-{self.dataset.name}-{split}"  # one name, a version per retriever setting (alias: its key)
        return Artifact(name, "candidates", path, metadata, aliases=(key,)) if path else None
