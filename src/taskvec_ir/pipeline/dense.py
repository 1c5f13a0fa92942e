"""End-to-end dense retrieval (``retriever=dense``): each set of weights (ΘT, Θ' at an α, ΘD) ranks the whole
corpus by its own embeddings, with no BM25 candidates and no fusion.

The corpus is encoded once per set of weights, streamed in chunks (``taskvec_ir.ir.dense_search``) into the cache,
kind ``corpus_embeddings``, keyed by what ``model_scores`` keys scores by (the checkpoints' fingerprints, the merge
setting, the scorer's settings) and the corpus. The chunks are written into a folder beside the entry that survives
a crash, so an encoding cut short resumes at its first missing chunk; the entry itself appears, complete, only at
the end (``Cache.folder``). A query set's run is a search of those embeddings, cached too (kind ``dense_run``): a
second job at the same α neither encodes the corpus nor searches it again.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from pathlib import Path

from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.config.retriever import RetrieverConfig
from taskvec_ir.ir import dense_search, documents
from taskvec_ir.pipeline.first_stage import FirstStage, Run, dataset_identity
from taskvec_ir.pipeline.model_scores import ModelScores, Weights, check_finite
from taskvec_ir.storage.cache import CACHE_VERSION, Cache, cache_key, text_digest

log = logging.getLogger(__name__)
ENCODING_RECORD = "encoding.json"  # in each embeddings entry: documents, seconds, chunks


class DenseRetrieval:
    """Runs of a query set by a set of weights over the whole corpus, through the cache."""

    def __init__(
        self,
        dataset: DatasetConfig,
        retriever: RetrieverConfig,
        first_stage: FirstStage,
        model_scores: ModelScores,
        cache: Cache,
    ):
        self.dataset, self.retriever, self.cache = dataset, retriever, cache
        self.first_stage, self.model_scores = first_stage, model_scores
        self._runs: dict[tuple[str, Weights], Run] = {}
        self.searches: dict[str, dict] = {}  # "<split> · <weights>" -> the index used and its recall, for reports

    def run(self, split: str, weights: Weights) -> Run:
        """``weights``'s top ``retriever.top_k`` documents of the corpus for each query of ``split``, by the model's
        own similarity (its raw scores)."""
        weights = self.model_scores.resolved(weights)
        if (split, weights) not in self._runs:
            key = cache_key(
                version=CACHE_VERSION,
                embeddings=self.embeddings_key(weights),
                queries=text_digest(self.first_stage.split(split).queries),
                top_k=self.retriever.top_k,
                index=self.retriever.index,
            )
            found = self.cache.json("dense_run", key, lambda: self._search(split, weights))
            self.searches[f"{split} · {weights.describe()}"] = {k: v for k, v in found.items() if k != "run"}
            self._runs[split, weights] = found["run"]
        return self._runs[split, weights]

    def embeddings_key(self, weights: Weights) -> str:
        return cache_key(
            version=CACHE_VERSION,
            model=self.model_scores.weights_identity(weights),
            scorer=self.model_scores.scorer_identity(),
            corpus=dataset_identity(self.dataset),
        )

    def embeddings(self, weights: Weights) -> Path:
        """The folder of the corpus's embeddings by ``weights`` (encoded once into the cache)."""
        key = self.embeddings_key(weights)

        def build(folder: Path) -> None:
            partial = folder.parent / f".partial-{key}"  # outlives a crash: the next build resumes from its chunks
            scorer = self.model_scores.scorer(weights)
            log.info("Encoding the corpus of %s with %s (once; cache kind corpus_embeddings)", self.dataset.name,
                     weights.describe())  # fmt: skip
            start = time.perf_counter()
            count = dense_search.write_embeddings(
                documents.iter_docs(self.dataset), lambda texts: scorer.encode(texts).cpu().numpy(), partial
            )
            seconds = time.perf_counter() - start
            log.info("Encoded %d documents in %.1f s (%.0f documents/s)", count, seconds, count / max(seconds, 1e-9))
            for path in partial.iterdir():
                os.replace(path, folder / path.name)
            partial.rmdir()
            record = {"documents": count, "seconds": round(seconds, 2), "chunk_documents": dense_search.CHUNK_DOCS}
            (folder / ENCODING_RECORD).write_text(json.dumps(record))

        return self.cache.folder("corpus_embeddings", key, build)

    def _search(self, split: str, weights: Weights) -> dict:
        queries = self.first_stage.split(split).queries
        ids = list(queries)
        folder = self.embeddings(weights)
        if not ids:
            return {"run": {}, "index": None, "recall": None}
        vectors = self.model_scores.scorer(weights).encode([queries[q] for q in ids]).cpu().numpy()
        documents, k, index = dense_search.document_count(folder), self.retriever.top_k, self.retriever.index
        if index == "auto":
            index = "exact" if documents <= dense_search.EXACT_MAX_DOCS else "faiss"
        log.info("Dense retrieval (%s) of %d %s queries over %d documents", index, len(ids), split, documents)
        recall = None
        if index == "exact":
            rankings = dense_search.exact_search(folder, vectors, k)
        else:
            index_folder = self.cache.folder(
                "dense_index",
                cache_key(
                    embeddings=self.embeddings_key(weights),
                    m=dense_search.HNSW_NEIGHBOURS,
                    ef_construction=dense_search.HNSW_EF_CONSTRUCTION,
                ),  # fmt: skip
                lambda out: dense_search.FaissIndex.build(folder, out),
            )
            rankings = dense_search.FaissIndex(index_folder).search(vectors, k)
            # HNSW is approximate: what it misses of exact search's top k, on a seeded sample of the queries
            sample = sorted(random.Random(0).sample(range(len(ids)), min(dense_search.RECALL_SAMPLE, len(ids))))
            exact = dense_search.exact_search(folder, vectors[sample], k)
            recall = dense_search.recall([rankings[i] for i in sample], exact)
            log.info("FAISS HNSW recall@%d against exact search on %d queries: %.4f", k, len(sample), recall)
        run = check_finite(dict(zip(ids, rankings, strict=True)))
        return {"run": run, "index": index, "recall": recall, "documents": documents}
