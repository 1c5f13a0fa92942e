"""First-stage retrieval: BM25 candidates for the re-ranker.

An ``Analyzer`` turns text into tokens (lowercase, unicode word tokens, language stopwords, Snowball
stemming); a retriever indexes a corpus once and returns each query's top-k documents with scores.
Backends sit behind ``build_retriever`` (``retriever.backend``): ``bm25s`` and ``rank_bm25`` score the
same Analyzer tokens with the same BM25 Okapi formula; bm25s searches much faster (bench/RESULTS.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from taskvec_ir.schema import RetrieverConfig

# language -> (bm25s stopword list name, PyStemmer algorithm)
LANGUAGES = {
    "en": ("STOPWORDS_EN", "english"),
    "de": ("STOPWORDS_GERMAN", "german"),
    "fr": ("STOPWORDS_FRENCH", "french"),
    "es": ("STOPWORDS_SPANISH", "spanish"),
}
_WORD = re.compile(r"\w+")


class Analyzer:
    """Callable text -> tokens: ``\\w+`` words, optionally lowercased, stopword-free and stemmed."""

    def __init__(self, language: str = "en", lowercase: bool = True, stopwords: bool = True, stemmer: bool = True):
        if language not in LANGUAGES:
            raise ValueError(f"unknown language {language!r} (dataset.language); known: {', '.join(LANGUAGES)}")
        stopword_list, algorithm = LANGUAGES[language]
        self.language = language
        self.lowercase = lowercase
        self._stopwords = _stopwords(stopword_list) if stopwords else frozenset()
        self._stem = _stemmer(algorithm) if stemmer else None

    def __call__(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        tokens = [token for token in _WORD.findall(text) if token not in self._stopwords]
        return self._stem(tokens) if self._stem else tokens


class Retriever(Protocol):
    def search(self, queries: Mapping[str, str], top_k: int) -> dict[str, dict[str, float]]:
        """query_id -> doc_id -> score for each query's ``top_k`` best documents."""
        ...


class _InMemoryBM25:
    """What both BM25 backends share: the corpus's ids, the analyzer and top-k search over score arrays."""

    def __init__(self, docs: Mapping[str, str], analyzer: Analyzer):
        if not docs:
            raise ValueError("cannot build a BM25 index over an empty corpus")
        self.analyzer = analyzer
        self.doc_ids = list(docs)

    def search(self, queries: Mapping[str, str], top_k: int) -> dict[str, dict[str, float]]:
        if top_k <= 0:
            raise ValueError(f"top_k must be positive, got {top_k}")
        return {query_id: self._search_one(text, top_k) for query_id, text in queries.items()}

    def _search_one(self, text: str, top_k: int) -> dict[str, float]:
        scores = self._scores(self.analyzer(text))
        return {} if scores is None else _ranked(self.doc_ids, scores, top_k)

    def _scores(self, tokens: list[str]) -> np.ndarray | None:
        """One score per document, or None when no query term can match."""
        raise NotImplementedError


class BM25Retriever(_InMemoryBM25):
    """BM25 (Okapi) over an in-memory corpus, scored by rank_bm25."""

    def __init__(self, docs: Mapping[str, str], analyzer: Analyzer, k1: float = 1.2, b: float = 0.75):
        from rank_bm25 import BM25Okapi

        super().__init__(docs, analyzer)
        self._bm25 = BM25Okapi([analyzer(text) for text in docs.values()], k1=k1, b=b)

    def _scores(self, tokens: list[str]) -> np.ndarray | None:
        return self._bm25.get_scores(tokens) if tokens else None


class BM25SRetriever(_InMemoryBM25):
    """BM25 (Okapi) over an in-memory corpus, scored by bm25s on the same Analyzer tokens as rank_bm25.

    bm25s precomputes every (document, term) score into a sparse matrix at indexing, so a query costs
    one sparse column sum instead of rank_bm25's pass over every document.
    """

    def __init__(self, docs: Mapping[str, str], analyzer: Analyzer, k1: float = 1.2, b: float = 0.75):
        import bm25s

        super().__init__(docs, analyzer)
        # method="robertson" is BM25Okapi's formula (idf log((N - n + 0.5) / (n + 0.5)), Robertson's tf
        # saturation) up to two details: its tf part omits the constant factor k1 + 1, restored by
        # _okapi_scale so that scores equal rank_bm25's; and a term in more than half of the documents
        # gets idf 0 where rank_bm25 gives it 0.25 x the mean idf (agreement figures: bench/RESULTS.md).
        # float64 like rank_bm25, so that equal scores stay equal and ties break the same way.
        # The numpy backend: numba's JIT costs seconds per process, more than a whole job's search.
        self._bm25 = bm25s.BM25(k1=k1, b=b, method="robertson", dtype="float64", backend="numpy")
        self._bm25.index([analyzer(text) for text in docs.values()], create_empty_token=False, show_progress=False)
        self._okapi_scale = k1 + 1

    def _scores(self, tokens: list[str]) -> np.ndarray | None:
        # Terms the corpus lacks add nothing to any score (as in rank_bm25); bm25s wants them left out.
        token_ids = self._bm25.get_tokens_ids(tokens)
        return self._bm25.get_scores_from_ids(token_ids) * self._okapi_scale if token_ids else None


BACKENDS: dict[str, Callable[..., Retriever]] = {"bm25s": BM25SRetriever, "rank_bm25": BM25Retriever}


def build_retriever(docs: Mapping[str, str], backend: str, analyzer: Analyzer, **params) -> Retriever:
    """Index ``docs`` with the named backend; ``params`` go to it (k1, b)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown retriever.backend {backend!r}; known: {', '.join(BACKENDS)}")
    return BACKENDS[backend](docs, analyzer, **params)


def bm25_candidates(
    docs: Mapping[str, str], queries: Mapping[str, str], settings: RetrieverConfig, language: str = "en"
) -> dict[str, dict[str, float]]:
    """Each query's BM25 top-k: query_id -> doc_id -> score."""
    analyzer = Analyzer(language, settings.analyzer.lowercase, settings.analyzer.stopwords, settings.analyzer.stemmer)
    return build_retriever(docs, settings.backend, analyzer, k1=settings.k1, b=settings.b).search(
        queries, settings.top_k
    )


def top_k_indices(scores: np.ndarray, top_k: int) -> list[int]:
    """Indices of the ``top_k`` highest scores, best first; ties go to the lower index (corpus order)."""
    if top_k < len(scores):
        # The k-th best score decides membership; take every index scoring at least that, so that ties
        # at the boundary are settled by index below rather than by argpartition's arbitrary choice.
        threshold = np.partition(scores, len(scores) - top_k)[len(scores) - top_k]
        candidates = np.flatnonzero(scores >= threshold)
    else:
        candidates = np.arange(len(scores))
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order][:top_k].tolist()


def _ranked(doc_ids: list[str], scores: np.ndarray, top_k: int) -> dict[str, float]:
    """doc_id -> score of the ``top_k`` best documents, best first."""
    # A document sharing no term with the query scores 0: like an inverted index, never return it.
    return {doc_ids[i]: float(scores[i]) for i in top_k_indices(scores, top_k) if scores[i] > 0}


def _stopwords(list_name: str) -> frozenset[str]:
    import bm25s.stopwords

    return frozenset(getattr(bm25s.stopwords, list_name))


def _stemmer(algorithm: str) -> Callable[[list[str]], list[str]]:
    import Stemmer

    return Stemmer.Stemmer(algorithm).stemWords
