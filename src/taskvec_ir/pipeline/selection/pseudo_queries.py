"""Pseudo-queries: queries made from the corpus's documents (``pairs.document_pairs``), each with the rest of its
document as its one relevant candidate, added to a pipeline as a split whose candidates BM25 finds. Reads
documents only."""

from __future__ import annotations

import logging
from dataclasses import asdict

from taskvec_ir.config.selection import PseudoQueriesConfig
from taskvec_ir.ir.documents import doc_texts, sample_doc_fields
from taskvec_ir.ir.pairs import auto_pair_source, document_pairs
from taskvec_ir.ir.splits import Split
from taskvec_ir.pipeline.first_stage import dataset_identity
from taskvec_ir.pipeline.pipeline import Pipeline
from taskvec_ir.storage.cache import CACHE_VERSION, cache_key

log = logging.getLogger(__name__)

REST = "#rest"  # a pseudo-query's source document without the query, as a candidate id
SOURCE_KEY = "selection.pseudo_queries.source"


def pseudo_queries(pipeline: Pipeline, settings: PseudoQueriesConfig) -> tuple[str, str]:
    """Add the corpus's pseudo-queries to ``pipeline`` as a split (queries, one relevant document each, BM25
    candidates, texts), cached; returns its name and the source of its queries (``auto`` resolved). Reads
    documents only."""
    spec = pipeline.spec
    key = cache_key(
        version=CACHE_VERSION,
        dataset=dataset_identity(spec.dataset),
        language=spec.dataset.language,
        retriever=spec.retriever.identity(),
        settings=asdict(settings),
    )
    made = pipeline.cache.json("pseudo_queries", key, lambda: _make_pseudo_queries(pipeline, settings))
    name = f"pseudo-queries ({len(made['queries'])})"
    qrels = {query: {doc: 1} for query, doc in made["relevant"].items()}
    pipeline.first_stage.add_split(name, Split(made["queries"], qrels), made["candidates"], made["texts"])
    return name, made.get("source", settings.source)  # entries cached before auto existed: their explicit source


def _make_pseudo_queries(pipeline: Pipeline, settings: PseudoQueriesConfig) -> dict:
    dataset, top_k = pipeline.spec.dataset, pipeline.spec.retriever.top_k
    # Twice the documents: some give no pair (a short title, a single sentence).
    documents = sample_doc_fields(dataset, 2 * settings.count, settings.seed)
    ids = list(documents)
    kind = auto_pair_source(list(documents.values()), SOURCE_KEY) if settings.source == "auto" else settings.source
    pairs = document_pairs(list(documents.values()), kind, settings.count, settings.seed, SOURCE_KEY)
    queries, relevant, rest_texts = {}, {}, {}
    for document in pairs:
        for query in document.queries:
            text, rest = document.pair(query)
            query_id = f"pq{len(queries)}"
            queries[query_id], relevant[query_id] = text, ids[document.document] + REST + str(query)
            rest_texts[relevant[query_id]] = rest
    log.info("Pseudo-queries: %d from %d documents of %s (%s)", len(queries), len(ids), dataset.name, kind)
    bm25 = pipeline.first_stage.bm25()
    found = bm25.search(queries, top_k + 1)
    candidates = {}
    for query_id, ranking in found.items():
        source = relevant[query_id].split(REST)[0]
        ranking = {doc: score for doc, score in ranking.items() if doc != source}
        score = bm25.score_text(queries[query_id], rest_texts[relevant[query_id]])
        if score > 0:  # as BM25 would find the source with the query taken out of it
            ranking[relevant[query_id]] = score
        best = sorted(ranking.items(), key=lambda item: (item[1], item[0]), reverse=True)[:top_k]
        candidates[query_id] = dict(best)
    listed = {doc for ranking in candidates.values() for doc in ranking if REST not in doc}
    texts = {**doc_texts(dataset, listed), **rest_texts}
    return {"queries": queries, "relevant": relevant, "candidates": candidates, "texts": texts, "source": kind}
