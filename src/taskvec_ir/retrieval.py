"""First-stage retrieval: BM25 candidates for the re-ranker.

An ``Analyzer`` turns text into tokens (lowercase, unicode word tokens, language stopwords, Snowball
stemming); a retriever indexes a corpus once and returns each query's top-k documents with scores.
Backends sit behind ``build_retriever`` so that a faster one (e.g. bm25s) can be added by name.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Protocol

import numpy as np

# language -> (bm25s stopword list name, PyStemmer algorithm)
_LANGUAGES = {
    "en": ("STOPWORDS_EN", "english"),
    "de": ("STOPWORDS_GERMAN", "german"),
    "fr": ("STOPWORDS_FRENCH", "french"),
    "es": ("STOPWORDS_SPANISH", "spanish"),
}
_WORD = re.compile(r"\w+")


class Analyzer:
    """Callable text -> tokens: ``\\w+`` words, optionally lowercased, stopword-free and stemmed."""

    def __init__(self, language: str = "en", lowercase: bool = True, stopwords: bool = True, stemmer: bool = True):
        if language not in _LANGUAGES:
            raise ValueError(f"unknown language {language!r} (dataset.language); known: {', '.join(_LANGUAGES)}")
        stopword_list, algorithm = _LANGUAGES[language]
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


class BM25Retriever:
    """BM25 (Okapi) over an in-memory corpus, scored by rank_bm25."""

    def __init__(self, docs: Mapping[str, str], analyzer: Analyzer, k1: float = 1.2, b: float = 0.75):
        from rank_bm25 import BM25Okapi

        if not docs:
            raise ValueError("cannot build a BM25 index over an empty corpus")
        self.analyzer = analyzer
        self.doc_ids = list(docs)
        self._bm25 = BM25Okapi([analyzer(text) for text in docs.values()], k1=k1, b=b)

    def search(self, queries: Mapping[str, str], top_k: int) -> dict[str, dict[str, float]]:
        _check_top_k(top_k)
        return {query_id: self._search_one(text, top_k) for query_id, text in queries.items()}

    def _search_one(self, text: str, top_k: int) -> dict[str, float]:
        tokens = self.analyzer(text)
        if not tokens:
            return {}
        scores = self._bm25.get_scores(tokens)
        # A document sharing no term with the query scores 0: like an inverted index, never return it.
        return {self.doc_ids[i]: float(scores[i]) for i in top_k_indices(scores, top_k) if scores[i] > 0}


_BACKENDS: dict[str, Callable[..., Retriever]] = {"rank_bm25": BM25Retriever}


def build_retriever(docs: Mapping[str, str], backend: str, analyzer: Analyzer, **params) -> Retriever:
    """Index ``docs`` with the named backend; ``params`` go to it (k1, b)."""
    if backend not in _BACKENDS:
        raise ValueError(f"unknown retriever.backend {backend!r}; known: {', '.join(_BACKENDS)}")
    return _BACKENDS[backend](docs, analyzer, **params)


def bm25_candidates(
    docs: Mapping[str, str],
    queries: Mapping[str, str],
    *,
    top_k: int = 100,
    backend: str = "rank_bm25",
    language: str = "en",
    analyzer: Mapping | None = None,
    **params,
) -> dict[str, dict[str, float]]:
    """Each query's BM25 top-k: query_id -> doc_id -> score (the retriever config's keys as arguments)."""
    _check_top_k(top_k)  # before indexing, which is the expensive part
    retriever = build_retriever(docs, backend, Analyzer(language, **(analyzer or {})), **params)
    return retriever.search(queries, top_k)


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


def _check_top_k(top_k: int) -> None:
    if top_k <= 0:
        raise ValueError(f"retriever.top_k must be positive, got {top_k}")


def _stopwords(list_name: str) -> frozenset[str]:
    import bm25s.stopwords

    return frozenset(getattr(bm25s.stopwords, list_name))


def _stemmer(algorithm: str) -> Callable[[list[str]], list[str]]:
    import Stemmer

    return Stemmer.Stemmer(algorithm).stemWords
