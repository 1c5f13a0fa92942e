"""First-stage retrieval: the candidates the re-ranker scores.

An ``Analyzer`` turns text into tokens: ``lucene`` (default) as Lucene's language analyzers do
(``taskvec_ir.ir.lucene_analysis``), ``snowball`` as this project did before (lowercase ``\\w+`` words, bm25s's
stopword lists, Snowball stemming). Two BM25 variants score them (``retriever.bm25``): ``lucene`` (default),
Lucene's BM25Similarity as Anserini runs it, and ``robertson``, this project's former one. Three first
stages sit behind ``retriever.backend``:

- ``inverted_index`` (default): BM25 over an inverted index built by streaming the corpus in chunks and
  memory-mapped for search (``build_bm25_index``, ``BM25Index``), for corpora of millions of passages; one
  index for the joined document fields (``flat``), or one per field, scores summed (``multifield``,
  ``FieldsBM25``);
- ``rank_bm25``: the Robertson variant's tokens and BM25 Okapi formula over an in-memory corpus (the legacy
  reference the index's ``robertson`` scoring is tested against; small corpora only);
- ``run_file``: the candidates of an existing TREC run (``read_run_file``): Elasticsearch, Anserini,
  Pyserini or PISA output.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import re
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from taskvec_ir.config.dataset import LANGUAGES
from taskvec_ir.config.retriever import ANALYZERS, SCORINGS
from taskvec_ir.errors import MissingFileError, UserError
from taskvec_ir.ir import lucene_analysis

if TYPE_CHECKING:
    from taskvec_ir.config.retriever import AnalyzerConfig

log = logging.getLogger(__name__)

# dataset.language (config.schema.LANGUAGES) -> (bm25s stopword list name, Snowball stemmer, the lucene analyzer's
# stemmer), stemmers by their PyStemmer names, but "lucene_porter": Lucene's Porter stemmer
# (lucene_analysis.LucenePorterStemmer).
ANALYSIS = {
    "en": ("STOPWORDS_EN", "english", "lucene_porter"),
    "de": ("STOPWORDS_GERMAN", "german", "german"),
    "fr": ("STOPWORDS_FRENCH", "french", "french"),
    "es": ("STOPWORDS_SPANISH", "spanish", "spanish"),
}
_LUCENE_STOPWORDS = {"en": lucene_analysis.ENGLISH_STOPWORDS} | {
    language: lucene_analysis.SNOWBALL_STOPWORDS[stemmer]
    for language, (_, stemmer, _) in ANALYSIS.items()
    if language != "en"
}
_WORD = re.compile(r"\w+")
_SHOWN = 5


class Analyzer:
    """Callable text -> tokens. ``name`` says how words are found and which stopwords and stemmer apply:
    ``lucene``, Lucene's analyzer for the language (``taskvec_ir.ir.lucene_analysis``); ``snowball``, ``\\w+``
    words, bm25s's stopword lists and Snowball stemming. Either can leave out lowercasing, stopwords or stemming."""

    def __init__(
        self,
        language: str = "en",
        lowercase: bool = True,
        stopwords: bool = True,
        stemmer: bool = True,
        name: str = "lucene",
    ):
        if language not in LANGUAGES:
            raise UserError(f"unknown language {language!r} (dataset.language); known: {', '.join(LANGUAGES)}")
        if name not in ANALYZERS:
            raise UserError(f"unknown analyzer {name!r} (retriever.analyzer.name); known: {', '.join(ANALYZERS)}")
        stopword_list, snowball_stemmer, lucene_stemmer = ANALYSIS[language]
        self.language, self.name, self.lowercase = language, name, lowercase
        if name == "lucene":
            self._stopwords = _LUCENE_STOPWORDS[language] if stopwords else frozenset()
            self._stemmer = _stemmer(lucene_stemmer) if stemmer else None
        else:
            self._stopwords = _stopwords(stopword_list) if stopwords else frozenset()
            self._stemmer = _stemmer(snowball_stemmer) if stemmer else None

    @classmethod
    def of(cls, language: str, settings: AnalyzerConfig) -> Analyzer:
        return cls(language, settings.lowercase, settings.stopwords, settings.stemmer, settings.name)

    def __call__(self, text: str) -> list[str]:
        words = self.words(text)
        return self._stemmer.stemWords(words) if self._stemmer else words

    def words(self, text: str) -> list[str]:
        """The words of ``text`` that become tokens, before stemming (their count is the document's length)."""
        if self.name == "snowball":
            if self.lowercase:
                text = text.lower()
            return [word for word in _WORD.findall(text) if word not in self._stopwords]
        tokens = lucene_analysis.standard_tokens(text)
        if self.language == "en":
            tokens = [lucene_analysis.without_possessive(token) for token in tokens]
        elif self.language == "fr":
            tokens = [lucene_analysis.without_elision(token) for token in tokens]
        if self.lowercase:
            tokens = [token.lower() for token in tokens]
        return [token for token in tokens if token not in self._stopwords]

    def stem(self, word: str) -> str:
        return self._stemmer.stemWord(word) if self._stemmer else word


class Retriever(Protocol):
    def search(self, queries: Mapping[str, str], top_k: int) -> dict[str, dict[str, float]]:
        """query_id -> doc_id -> score for each query's ``top_k`` best documents."""
        ...

    def score_text(self, query: str, text: str) -> float:
        """The score ``text`` would get for ``query`` as one more document of the corpus."""
        ...


# -- BM25 -------------------------------------------------------------------------------------------------
# Two variants (retriever.bm25):
# - "lucene": Lucene's BM25Similarity (Lucene 9, as Anserini 1.x searches): idf log(1 + (N − df + 0.5) / (df +
#   0.5)), with N the documents that have a term in the field; tf / (tf + k1 · (1 − b + b · dl / avgdl)), no
#   (k1 + 1) factor (it scales every score alike); dl not the document's length but Lucene's one-byte norm of it
#   (SmallFloat.intToByte4: exact to 24 tokens, then 4 significant bits: 40 and 41 tokens both count as 40). Each
#   term's score is computed in float32 with Lucene's operations in Lucene's order, a query's term scores added in
#   float64 and the sum rounded to float32, so scores equal Anserini's; equal scores rank by document id, as
#   Anserini breaks ties. A query term repeated counts each time (Anserini's bag of words: one clause a token).
# - "robertson": bm25s's BM25, this project's former one: idf log((N − df + 0.5) / (df + 0.5)) floored at 0 (a
#   term in more than half of the documents adds nothing), tf · (k1 + 1) / (tf + k1 · (1 − b + b · dl / avgdl)),
#   in float64 with the same operations in the same order as bm25s did when it was this project's backend, so
#   its runs are the same lists with the same scores (tests/ir/test_retrieval.py); ties rank in corpus order.


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


def lucene_term_scores(idf, tf: np.ndarray, lengths: np.ndarray, k1: float, b: float, average_length) -> np.ndarray:
    """One term's BM25 score in each document (float32), as Lucene's BM25Scorer computes it: weight − weight /
    (1 + tf · normInverse), normInverse = 1 / (k1 · ((1 − b) + b · dl / avgdl)) with dl the norm's length."""
    k1, b, one = np.float32(k1), np.float32(b), np.float32(1)
    norm_inverse = one / (k1 * ((one - b) + b * LUCENE_NORM_LENGTHS[lucene_norm(lengths)] / np.float32(average_length)))
    return idf - idf / (one + np.asarray(tf, dtype=np.float32) * norm_inverse)


class _ScoredCorpus:
    """What every BM25 retriever shares: the analyzer, and top-k search over each query's matching documents."""

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
        matched = [term for term in self.analyzer(query) if terms[term]]
        if self.scoring == "lucene":
            scores = [
                lucene_term_scores(self._idf(term), [terms[term]], [length], self.k1, self.b, self.average_length)[0]
                for term in matched
            ]
            return float(np.float32(math.fsum(map(float, scores))))
        norm = self.k1 * ((1 - self.b) + self.b * length / self.average_length)
        return sum(self._idf(term) * terms[term] * (self.k1 + 1) / (terms[term] + norm) for term in matched)

    def _idf(self, term: str) -> float:
        """The term's idf in this corpus under ``scoring`` (0 for a term it lacks)."""
        raise NotImplementedError

    def _matches(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """The positions (ascending) of the documents with a positive score, and their scores; None when no
        query term can match. A document sharing no term with the query is never returned, as from an
        inverted index."""
        raise NotImplementedError

    def _ranked(self, positions: np.ndarray, scores: np.ndarray, top_k: int) -> dict[str, float]:
        best = top_k_indices(scores, top_k)  # ties: the lower position, i.e. corpus order
        if self.scoring == "robertson" or not len(best):
            return {self._doc_id(int(positions[i])): float(scores[i]) for i in best}
        # Lucene: equal scores by document id (Anserini's order), over every document tied with the k-th.
        tied = np.flatnonzero(scores >= scores[best[-1]])
        ranked = sorted((-float(scores[i]), self._doc_id(int(positions[i]))) for i in tied)[:top_k]
        return {doc_id: -negated for negated, doc_id in ranked}

    def _doc_id(self, position: int) -> str:
        raise NotImplementedError


class BM25Retriever(_ScoredCorpus):
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


# The index's files. Every array is a .npy file, memory-mapped for search.
_META = "meta.json"
_DOC_IDS, _DOC_ID_OFFSETS, _DOC_LENGTHS = "doc_ids.bin", "doc_id_offsets.npy", "doc_lengths.npy"
_TERMS, _TERM_OFFSETS = "terms.bin", "term_offsets.npy"  # the vocabulary, sorted, cut at the offsets
_POSTINGS_OFFSETS, _POSTINGS_DOCS, _POSTINGS_TF = "postings_offsets.npy", "postings_docs.npy", "postings_tf.npy"
INDEX_FORMAT = 2  # 2: meta.json counts the documents with a term (Lucene's N)
_STEMMED_WORDS = 200_000  # words whose term the index build remembers (refilled by the frequent ones)


def build_bm25_index(docs: Iterable[tuple[str, str]], analyzer: Analyzer, folder: Path, chunk_docs: int = 20_000):
    """Write an inverted index of ``docs`` ((doc_id, text) pairs, read once, in order) into ``folder``.

    Why not a library: bm25s indexes from one token list per document held in memory (4.6 GB of peak RSS at
    1M passages, bench/RESULTS.md 7), and PISA's or Lucene's analyzers and BM25 are not ours. Here the corpus is
    analysed chunk by chunk into (document, term, tf) postings written to disk; only the vocabulary and one
    int32 length per document stay in memory. Then the postings are ordered by term into the final arrays
    (5 to 8 bytes per posting, held once). The index stores term frequencies, not scores: k1 and b are
    search settings, and changing them needs no new index.
    """
    folder = Path(folder)
    chunks_dir = folder / "chunks"
    chunks_dir.mkdir(parents=True)
    vocabulary: dict[str, int] = {}  # term -> id in order of first appearance (sorted at the end)
    term_of_word: dict[str, int] = {}  # word (before stemming) -> its term's id
    document_frequency = np.zeros(0, dtype=np.int64)
    lengths: list[np.ndarray] = []
    id_lengths: list[np.ndarray] = []
    chunk_files: list[Path] = []
    max_tf = 0
    stream = iter(docs)
    with open(folder / _DOC_IDS, "wb") as doc_id_file:
        while chunk := list(islice(stream, chunk_docs)):
            token_ids = array("q")
            chunk_lengths = np.empty(len(chunk), dtype=np.int64)
            encoded_ids = []
            for i, (doc_id, text) in enumerate(chunk):
                if "\n" in doc_id:
                    raise UserError(f"document id {doc_id!r} contains a line break: fix the corpus")
                words = analyzer.words(text)
                chunk_lengths[i] = len(words)
                for word in words:
                    term = term_of_word.get(word)
                    if term is None:  # a frequent word is stemmed once: stemming is most of the analysis
                        term = term_of_word[word] = vocabulary.setdefault(analyzer.stem(word), len(vocabulary))
                    token_ids.append(term)
                if len(term_of_word) > _STEMMED_WORDS:  # the rare words it fills up with are not worth memory
                    term_of_word.clear()
                encoded_ids.append(doc_id.encode())
            doc_id_file.write(b"".join(encoded_ids))
            id_lengths.append(np.fromiter(map(len, encoded_ids), dtype=np.int64, count=len(encoded_ids)))
            # One posting per (document, term) with its count: the unique (document << 32 | term) keys.
            first_doc = sum(len(part) for part in lengths)
            doc_of_token = np.repeat(np.arange(len(chunk), dtype=np.int64), chunk_lengths)
            keys, tf = np.unique((doc_of_token << 32) | np.frombuffer(token_ids, dtype=np.int64), return_counts=True)
            terms = (keys & 0xFFFFFFFF).astype(np.int32)
            postings = np.stack([terms, ((keys >> 32) + first_doc).astype(np.int32), tf.astype(np.int32)])
            chunk_files.append(chunks_dir / f"{len(chunk_files)}.npy")
            np.save(chunk_files[-1], postings)
            document_frequency = _grown(document_frequency, len(vocabulary))
            document_frequency += np.bincount(terms, minlength=len(vocabulary))
            max_tf = max(max_tf, int(tf.max(initial=0)))
            lengths.append(chunk_lengths.astype(np.int32))
            del token_ids, doc_of_token, keys, terms, postings
    if not lengths:
        raise UserError("cannot build a BM25 index over an empty corpus")
    doc_lengths = np.concatenate(lengths)
    np.save(folder / _DOC_LENGTHS, doc_lengths)
    np.save(folder / _DOC_ID_OFFSETS, np.concatenate([[0], np.cumsum(np.concatenate(id_lengths))]))

    # Terms sorted, so that search finds a term by binary search in the memory-mapped vocabulary.
    terms_sorted = sorted(vocabulary)
    new_id = np.empty(len(vocabulary), dtype=np.int32)
    new_id[np.fromiter((vocabulary[term] for term in terms_sorted), dtype=np.int64, count=len(terms_sorted))] = (
        np.arange(len(terms_sorted), dtype=np.int32)
    )
    del vocabulary, term_of_word
    term_ends = np.empty(len(terms_sorted), dtype=np.int64)
    with open(folder / _TERMS, "wb") as out:
        for i, term in enumerate(terms_sorted):
            out.write(term.encode())
            term_ends[i] = out.tell()
    np.save(folder / _TERM_OFFSETS, np.concatenate([[0], term_ends]))
    del terms_sorted, term_ends

    frequency = np.empty_like(document_frequency)
    frequency[new_id] = document_frequency
    offsets = np.concatenate([[0], np.cumsum(frequency)])
    postings_docs = np.empty(offsets[-1], dtype=np.int32)
    postings_tf = np.empty(offsets[-1], dtype=np.min_scalar_type(max_tf))
    filled = offsets[:-1].copy()
    for chunk_file in chunk_files:  # documents ascend across chunks: each term's postings end up in document order
        terms, doc_positions, tf = np.load(chunk_file)
        terms = new_id[terms]
        order = np.argsort(terms, kind="stable")
        terms = terms[order]
        present, starts, counts = np.unique(terms, return_index=True, return_counts=True)
        slots = np.repeat(filled[present] - starts, counts) + np.arange(len(terms))
        postings_docs[slots] = doc_positions[order]
        postings_tf[slots] = tf[order]
        filled[present] += counts
        chunk_file.unlink()
    chunks_dir.rmdir()
    np.save(folder / _POSTINGS_OFFSETS, offsets)
    np.save(folder / _POSTINGS_DOCS, postings_docs)
    np.save(folder / _POSTINGS_TF, postings_tf)
    meta = {"format": INDEX_FORMAT, "documents": len(doc_lengths), "tokens": int(doc_lengths.sum(dtype=np.int64))}
    meta["documents_with_terms"] = int(np.count_nonzero(doc_lengths))
    meta |= {"terms": len(new_id), "postings": int(offsets[-1])}
    (folder / _META).write_text(json.dumps(meta))


def _grown(values: np.ndarray, size: int) -> np.ndarray:
    return values if len(values) >= size else np.concatenate([values, np.zeros(size - len(values), values.dtype)])


class BM25Index(_ScoredCorpus):
    """BM25 (Okapi) search over an index written by ``build_bm25_index``, memory-mapped: opening it reads
    nothing, and a query reads only its terms' postings and the lengths of the documents in them."""

    def __init__(self, folder: Path, analyzer: Analyzer, k1: float = 0.9, b: float = 0.4, scoring: str = "lucene"):
        super().__init__(analyzer, k1, b, scoring)
        folder = Path(folder)
        self.meta = json.loads((folder / _META).read_text())
        if self.meta.get("format") != INDEX_FORMAT:
            raise UserError(f"{folder} holds a BM25 index of another format: delete it to rebuild it")

        # Plain ndarray views of the maps: np.memmap's own indexing costs microseconds per element read.
        def mapped(name: str) -> np.ndarray:
            return np.load(folder / name, mmap_mode="r").view(np.ndarray)

        def mapped_bytes(name: str) -> np.ndarray:
            size = (folder / name).stat().st_size
            return (
                np.memmap(folder / name, dtype=np.uint8, mode="r").view(np.ndarray) if size else np.zeros(0, np.uint8)
            )

        # Lucene counts only the documents with a term in the field: in N, and in the average length.
        self.documents = self.meta["documents_with_terms" if scoring == "lucene" else "documents"]
        self.average_length = self.meta["tokens"] / max(self.documents, 1)
        self._doc_ids, self._doc_id_offsets = mapped_bytes(_DOC_IDS), mapped(_DOC_ID_OFFSETS)
        self._doc_lengths = mapped(_DOC_LENGTHS)
        self._terms = _SortedStrings(mapped_bytes(_TERMS), mapped(_TERM_OFFSETS))
        self._offsets, self._docs, self._tf = mapped(_POSTINGS_OFFSETS), mapped(_POSTINGS_DOCS), mapped(_POSTINGS_TF)

    def term_id(self, term: str) -> int | None:
        position = bisect.bisect_left(self._terms, term)
        return position if position < len(self._terms) and self._terms[position] == term else None

    def _idf(self, term):
        term_id = self.term_id(term)
        if term_id is None:
            return 0.0
        idf = lucene_idf if self.scoring == "lucene" else bm25_idf
        return idf(int(self._offsets[term_id + 1] - self._offsets[term_id]), self.documents)

    def _matches(self, tokens):
        # Terms the corpus lacks add nothing to any score; a repeated query term counts each time (as in rank_bm25).
        term_ids = [term_id for token in tokens if (term_id := self.term_id(token)) is not None]
        if not term_ids:
            return None
        k1, b, average = self.k1, self.b, self.average_length
        docs, contributions = [], []
        if self.scoring == "lucene":
            for term_id in term_ids:
                start, end = int(self._offsets[term_id]), int(self._offsets[term_id + 1])
                docs.append(np.asarray(self._docs[start:end]))
                idf = lucene_idf(end - start, self.documents)
                lengths = self._doc_lengths[docs[-1]]
                contributions.append(lucene_term_scores(idf, self._tf[start:end], lengths, k1, b, average))
            positions, scores = _sum_by_document(np.concatenate(docs), np.concatenate(contributions))
            return positions, scores.astype(np.float32)
        for term_id in term_ids:
            start, end = int(self._offsets[term_id]), int(self._offsets[term_id + 1])
            term_docs = np.asarray(self._docs[start:end])
            tf = self._tf[start:end].astype(np.float64)
            saturation = tf / (k1 * ((1 - b) + b * self._doc_lengths[term_docs] / average) + tf)
            docs.append(term_docs)
            contributions.append(bm25_idf(end - start, self.documents) * saturation)
        positions, scores = _sum_by_document(np.concatenate(docs), np.concatenate(contributions))
        matched = scores > 0  # a term in more than half of the documents contributes 0
        return positions[matched], scores[matched] * (k1 + 1)

    def _doc_id(self, position):
        start, end = self._doc_id_offsets[position], self._doc_id_offsets[position + 1]
        return self._doc_ids[start:end].tobytes().decode()


class FieldsBM25(_ScoredCorpus):
    """Lucene BM25 over several fields of one corpus (``retriever.fields: multifield``), as Anserini searches
    BEIR's ``multifield`` indexes (``-fields contents=1.0 title=1.0``): a query's tokens are looked up in each
    field's index, each field scored with its own statistics (N, df, average length), and a document's score is
    the sum of its fields' scores (a disjunction of one term query per field and token, all weights 1).

    ``indexes`` maps each field to its ``BM25Index``, built from the same documents in the same order.
    ``score_text`` scores a text as the last field's content (the body: BEIR's ``text``)."""

    def __init__(self, indexes: Mapping[str, BM25Index]):
        first, *_, body = indexes.values()
        if any(index.scoring != "lucene" for index in indexes.values()):
            raise UserError("FieldsBM25 sums Lucene BM25 scores: build its indexes with scoring='lucene'")
        super().__init__(first.analyzer, first.k1, first.b, "lucene")
        self.indexes, self._body = dict(indexes), body

    def score_text(self, query: str, text: str) -> float:
        return self._body.score_text(query, text)

    def _matches(self, tokens):
        matches = [found for index in self.indexes.values() if (found := index._matches(tokens)) is not None]
        if not matches:
            return None
        positions, scores = _sum_by_document(*(np.concatenate(parts) for parts in zip(*matches, strict=True)))
        return positions, scores.astype(np.float32)

    def _doc_id(self, position):
        return self._body._doc_id(position)


def _sum_by_document(docs: np.ndarray, contributions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


class _SortedStrings:
    """A read-only sequence of the strings in a bytes blob cut at ``offsets``, decoded on access (for bisect)."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        self._blob, self._offsets = blob, offsets

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> str:
        return self._blob[self._offsets[i] : self._offsets[i + 1]].tobytes().decode()


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


# -- existing runs ----------------------------------------------------------------------------------------
def read_run_file(path: str | Path, queries: Mapping[str, str], top_k: int) -> dict[str, dict[str, float]]:
    """The top ``top_k`` documents per query of a TREC run file (``qid Q0 docid rank score tag``), for the
    queries of ``queries``.

    Ranked as trec_eval ranks them: by score, descending (equal scores: document id descending); the rank
    column is not read. An unreadable line or a document listed twice for one query is an error naming its
    line. Queries of ``queries`` the run lacks get an empty ranking (trec_eval scores them 0) and queries
    not in ``queries`` are dropped, each with a warning giving the count.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingFileError(f"no run file at {path}: fix retriever.path")
    listed: dict[str, dict[str, float]] = {}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields:
                continue
            try:
                if len(fields) != 6:
                    raise UserError(f"{len(fields)} fields, not 6")
                query_id, doc_id, score = fields[0], fields[2], float(fields[4])
                if not math.isfinite(score):
                    raise UserError(f"score {fields[4]}")
            except ValueError as error:
                raise UserError(
                    f"{path}, line {number}: not a TREC run line ({error}; expected 'qid Q0 docid rank score tag'): "
                    f"{line.strip()[:120]!r}"
                ) from None
            ranking = listed.setdefault(query_id, {})
            if doc_id in ranking:
                raise UserError(f"{path}, line {number}: document {doc_id} is listed twice for query {query_id}")
            ranking[doc_id] = score
    unknown = sorted(set(listed) - set(queries))
    if unknown:
        log.warning(
            "Run file %s: %d of its %d queries are not in the split (first: %s): ignored",
            path, len(unknown), len(listed), ", ".join(unknown[:_SHOWN]),
        )  # fmt: skip
    missing = [query_id for query_id in queries if query_id not in listed]
    if missing:
        log.warning(
            "Run file %s lacks %d of the split's %d queries (first: %s): they get an empty ranking, which "
            "scores 0 (as in trec_eval)",
            path, len(missing), len(queries), ", ".join(missing[:_SHOWN]),
        )  # fmt: skip
    run = {}
    short = 0
    for query_id in queries:
        ranked = sorted(listed.get(query_id, {}).items(), key=lambda item: (item[1], item[0]), reverse=True)
        run[query_id] = dict(ranked[:top_k])
        short += 0 < len(ranked) < top_k
    if short:
        log.warning("Run file %s: %d queries have fewer than retriever.top_k=%d candidates", path, short, top_k)
    return run


def _stopwords(list_name: str) -> frozenset[str]:
    import bm25s.stopwords

    return frozenset(getattr(bm25s.stopwords, list_name))


def _stemmer(algorithm: str):
    if algorithm == "lucene_porter":
        return lucene_analysis.LucenePorterStemmer()
    import Stemmer

    return Stemmer.Stemmer(algorithm)
