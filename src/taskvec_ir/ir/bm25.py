"""BM25 scoring: its two variants (``retriever.bm25``: ``lucene``, Lucene's BM25Similarity as Anserini searches
with it; ``robertson``, this project's former one), top-k search with each variant's tie order, and BM25 over a
corpus held in memory (rank_bm25, the robertson variant's reference). The on-disk index: ``bm25_index``.
docs/first-stage.md gives the formulas.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Protocol

import numpy as np

from taskvec_ir.config.retriever import SCORINGS
from taskvec_ir.errors import UserError
from taskvec_ir.ir.analyzers import Analyzer

# Part of the candidates' cache key: raise it when a change of this code changes what search returns (2: Lucene's
# repeated query terms, multifield sums and order of equal scores, #31; 3: the lucene analyzer's German, French and
# Spanish stemmers, #34).
SEARCH_REVISION = 3


class Retriever(Protocol):
    def search(self, queries: Mapping[str, str], top_k: int) -> dict[str, dict[str, float]]:
        """query_id -> doc_id -> score for each query's ``top_k`` best documents."""
        ...

    def score_text(self, query: str, text: str) -> float:
        """The score ``text`` would get for ``query`` as one more document of the corpus."""
        ...


def bm25_idf(document_frequency: int, documents: int) -> float:
    return math.log(max((documents - document_frequency + 0.5) / (document_frequency + 0.5), 1.0))


def lucene_idf(document_frequency: int, documents: int) -> np.float32:
    return np.float32(math.log(1 + (documents - document_frequency + 0.5) / (document_frequency + 0.5)))


def _lucene_norm_lengths() -> np.ndarray:
    """The length each of the 256 norm bytes stands for (SmallFloat.byte4ToInt), as float32."""

    def int4_to_long(code: int) -> int:
        bits, shift = code & 0x07, (code >> 3) - 1
        return bits if shift == -1 else (bits | 0x08) << shift

    return np.array([code if code < 24 else 24 + int4_to_long(code - 24) for code in range(256)], dtype=np.float32)


LUCENE_NORM_LENGTHS = _lucene_norm_lengths()


def lucene_norm(lengths: np.ndarray) -> np.ndarray:
    """Lucene's one-byte norm of each document length (SmallFloat.intToByte4), as an index into
    ``LUCENE_NORM_LENGTHS``: lengths below 24 as they are, longer ones by their 4 most significant bits."""
    lengths = np.asarray(lengths, dtype=np.int64)
    rest = np.maximum(lengths - 24, 0)
    shift = np.maximum(np.floor(np.log2(np.maximum(rest, 1))).astype(np.int64) - 3, 0)  # bit length − 4, ≥ 0
    normal = ((rest >> shift) & 0x07) | ((shift + 1) << 3)
    encoded = np.where(rest < 8, rest, normal) + 24  # rest < 8: SmallFloat's "subnormal" codes
    return np.where(lengths < 24, lengths, encoded)


def lucene_weight(query_count: int, idf: np.float32) -> np.float32:
    """A query term's weight in Lucene: its clause's boost (Anserini's bag of words: one clause per distinct term,
    boosted by its count in the query) times its idf, in float32."""
    return np.float32(query_count) * idf


def lucene_term_scores(weight, tf: np.ndarray, lengths: np.ndarray, k1: float, b: float, average_length) -> np.ndarray:
    """One term's BM25 score in each document (float32), as Lucene's BM25Scorer computes it: weight − weight /
    (1 + tf · normInverse), normInverse = 1 / (k1 · ((1 − b) + b · dl / avgdl)) with dl the norm's length."""
    k1, b, one = np.float32(k1), np.float32(b), np.float32(1)
    norm_inverse = one / (k1 * ((one - b) + b * LUCENE_NORM_LENGTHS[lucene_norm(lengths)] / np.float32(average_length)))
    return weight - weight / (one + np.asarray(tf, dtype=np.float32) * norm_inverse)


def ordered_ties(ranked: list[tuple[str, np.float32]]) -> dict[str, float]:
    """A run of Lucene's hits (``ranked``: (doc_id, float32 score), best first, equal scores by document id) whose
    scores keep that order where they are read as float32 (trec_eval reads them so, and ranks equal scores by
    descending id): a score not below the one before becomes the float32 just below it. Untied hits keep Lucene's
    score; a tied one moves by as many float32 steps as hits tied before it (Anserini does the same at coarser
    grain: scores rounded to 1e-4, a tied one lowered by 1e-6 more than the one before)."""
    run, previous = {}, np.float32(np.inf)
    for doc_id, score in ranked:
        previous = score if score < previous else np.nextafter(previous, np.float32(0))
        run[doc_id] = float(previous)
    return run


class ScoredCorpus:
    """What every BM25 retriever shares: the analyzer, and top-k search over each query's matching documents."""

    average_length: float

    def __init__(self, analyzer: Analyzer, k1: float, b: float, scoring: str):
        if scoring not in SCORINGS:
            raise UserError(f"unknown BM25 variant {scoring!r} (retriever.bm25); known: {', '.join(SCORINGS)}")
        self.analyzer, self.k1, self.b, self.scoring = analyzer, k1, b, scoring

    def search(self, queries: Mapping[str, str], top_k: int) -> dict[str, dict[str, float]]:
        if top_k <= 0:
            raise UserError(f"top_k must be positive, got {top_k}")
        run = {}
        for query_id, text in queries.items():
            matches = self._matches(self.analyzer(text))
            run[query_id] = {} if matches is None else self._ranked(*matches, top_k)
        return run

    def score_text(self, query: str, text: str) -> float:
        """The BM25 score ``text`` would get for ``query`` as a document of this corpus (its idf and average
        length): how a pseudo-query's source document scores once the query is taken out of it."""
        terms = Counter(self.analyzer(text))
        length = sum(terms.values())
        if self.scoring == "lucene":
            scores = [
                lucene_term_scores(lucene_weight(count, self._idf(term)), [terms[term]], [length], self.k1, self.b,
                                   self.average_length)[0]
                for term, count in Counter(self.analyzer(query)).items()
                if terms[term]
            ]  # fmt: skip
            return float(np.float32(math.fsum(map(float, scores))))
        matched = [term for term in self.analyzer(query) if terms[term]]
        norm = self.k1 * ((1 - self.b) + self.b * length / self.average_length)
        return sum(self._idf(term) * terms[term] * (self.k1 + 1) / (terms[term] + norm) for term in matched)

    def _idf(self, term: str) -> float:
        """The term's idf in this corpus under ``scoring`` (0 for a term it lacks)."""
        raise NotImplementedError

    def _matches(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """The positions (ascending) of the documents with a positive score, and their scores (lucene: the float64
        sums of float32 term scores, which search rounds to float32); None when no query term can match. A
        document sharing no term with the query is never returned, as from an inverted index."""
        raise NotImplementedError

    def _ranked(self, positions: np.ndarray, scores: np.ndarray, top_k: int) -> dict[str, float]:
        if self.scoring == "robertson":
            best = top_k_indices(scores, top_k)  # ties: the lower position, i.e. corpus order
            return {self._doc_id(int(positions[i])): float(scores[i]) for i in best}
        # Lucene adds a document's term scores in double and rounds the sum to float once (a multifield query's
        # per-field clauses included), then sorts equal scores by document id, over every document tied with the
        # k-th (Anserini's order).
        scores = scores.astype(np.float32)
        best = top_k_indices(scores, top_k)
        if not len(best):
            return {}
        tied = np.flatnonzero(scores >= scores[best[-1]])
        ranked = sorted((-scores[i], self._doc_id(int(positions[i]))) for i in tied)[:top_k]
        return ordered_ties([(doc_id, -negated) for negated, doc_id in ranked])

    def _doc_id(self, position: int) -> str:
        raise NotImplementedError


class BM25Retriever(ScoredCorpus):
    """BM25 (Okapi) over an in-memory corpus, scored by rank_bm25: the legacy reference of the ``robertson``
    variant (rank_bm25 has no Lucene BM25)."""

    def __init__(self, docs: Mapping[str, str], analyzer: Analyzer, k1: float = 1.2, b: float = 0.75):
        from rank_bm25 import BM25Okapi

        if not docs:
            raise UserError("cannot build a BM25 index over an empty corpus")
        super().__init__(analyzer, k1, b, "robertson")
        self.doc_ids = list(docs)
        self._bm25 = BM25Okapi([analyzer(text) for text in docs.values()], k1=k1, b=b)
        self.average_length = self._bm25.avgdl

    def _idf(self, term):
        return self._bm25.idf.get(term, 0.0)

    def _matches(self, tokens):
        if not tokens:
            return None
        scores = self._bm25.get_scores(tokens)
        positions = np.flatnonzero(scores > 0)
        return positions, scores[positions]

    def _doc_id(self, position):
        return self.doc_ids[position]


def sum_by_document(docs: np.ndarray, contributions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``docs`` (ascending) and the sum of each one's ``contributions``, added in their order.

    Work in proportion to the postings read, never to the corpus: a score array per document costs more at
    millions of documents than all of a query's postings. Each term's postings ascend, so a stable sort of
    their concatenation merges a few sorted runs; bincount then adds each document's contributions in
    query-term order, as one pass per term over a dense array would (the same float64 sums).
    """
    order = np.argsort(docs, kind="stable")
    ordered = docs[order]
    first = np.empty(len(docs), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    group = np.empty(len(docs), dtype=np.intp)
    group[order] = np.cumsum(first) - 1
    positions = ordered[first]
    return positions, np.bincount(group, weights=contributions, minlength=len(positions))


def top_k_indices(scores: np.ndarray, top_k: int) -> np.ndarray:
    """Indices of the ``top_k`` highest scores, best first; ties go to the lower index (corpus order)."""
    if top_k < len(scores):
        # The k-th best score decides membership; take every index scoring at least that, so that ties
        # at the boundary are settled by index below rather than by argpartition's arbitrary choice.
        threshold = np.partition(scores, len(scores) - top_k)[len(scores) - top_k]
        candidates = np.flatnonzero(scores >= threshold)
    else:
        candidates = np.arange(len(scores))
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order][:top_k]
