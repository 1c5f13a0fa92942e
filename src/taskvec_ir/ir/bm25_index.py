"""BM25 over an inverted index on disk: built by streaming the corpus in chunks (``build_bm25_index``) and
memory-mapped for search (``BM25Index``), for corpora of millions of passages; one index per field, scores
summed, for Anserini's multifield search (``FieldsBM25``). docs/first-stage.md says why it is our own.
"""

from __future__ import annotations

import bisect
import json
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import islice
from pathlib import Path

import numpy as np

from taskvec_ir.errors import UserError
from taskvec_ir.ir.analyzers import Analyzer
from taskvec_ir.ir.bm25 import ScoredCorpus, bm25_idf, lucene_idf, lucene_term_scores, lucene_weight, sum_by_document

# The index's files. Every array is a .npy file, memory-mapped for search.
_META = "meta.json"
_DOC_IDS, _DOC_ID_OFFSETS, _DOC_LENGTHS = "doc_ids.bin", "doc_id_offsets.npy", "doc_lengths.npy"
_TERMS, _TERM_OFFSETS = "terms.bin", "term_offsets.npy"  # the vocabulary, sorted, cut at the offsets
_POSTINGS_OFFSETS, _POSTINGS_DOCS, _POSTINGS_TF = "postings_offsets.npy", "postings_docs.npy", "postings_tf.npy"
INDEX_FORMAT = 2  # 2: meta.json counts the documents with a term (Lucene's N)
_STEMMED_WORDS = 200_000  # words whose term the index build remembers (refilled by the frequent ones)


def build_bm25_index(docs: Iterable[tuple[str, str]], analyzer: Analyzer, folder: Path, chunk_docs: int = 20_000):
    """Write an inverted index of ``docs`` ((doc_id, text) pairs, read once, in order) into ``folder``: the corpus
    analysed chunk by chunk into (document, term, tf) postings on disk, then ordered by term (docs/first-stage.md
    says why by hand). It stores term frequencies, not scores: k1 and b are search settings."""
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


class BM25Index(ScoredCorpus):
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
        if self.scoring == "lucene":  # one clause per distinct term, its count in the query a boost
            for term_id, count in Counter(term_ids).items():
                start, end = int(self._offsets[term_id]), int(self._offsets[term_id + 1])
                docs.append(np.asarray(self._docs[start:end]))
                weight = lucene_weight(count, lucene_idf(end - start, self.documents))
                lengths = self._doc_lengths[docs[-1]]
                contributions.append(lucene_term_scores(weight, self._tf[start:end], lengths, k1, b, average))
            return sum_by_document(np.concatenate(docs), np.concatenate(contributions))
        for term_id in term_ids:
            start, end = int(self._offsets[term_id]), int(self._offsets[term_id + 1])
            term_docs = np.asarray(self._docs[start:end])
            tf = self._tf[start:end].astype(np.float64)
            saturation = tf / (k1 * ((1 - b) + b * self._doc_lengths[term_docs] / average) + tf)
            docs.append(term_docs)
            contributions.append(bm25_idf(end - start, self.documents) * saturation)
        positions, scores = sum_by_document(np.concatenate(docs), np.concatenate(contributions))
        matched = scores > 0  # a term in more than half of the documents contributes 0
        return positions[matched], scores[matched] * (k1 + 1)

    def _doc_id(self, position):
        start, end = self._doc_id_offsets[position], self._doc_id_offsets[position + 1]
        return self._doc_ids[start:end].tobytes().decode()


class FieldsBM25(ScoredCorpus):
    """Lucene BM25 over several fields of one corpus (``retriever.fields: multifield``), as Anserini searches
    BEIR's ``multifield`` indexes (``-fields contents=1.0 title=1.0``): a query's tokens are looked up in each
    field's index, each field scored with its own statistics (N, df, average length), and a document's score is
    the sum of all its fields' term scores, rounded to float32 once (Lucene flattens the fields' clauses into one
    disjunction, all weights 1).

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
        return sum_by_document(*(np.concatenate(parts) for parts in zip(*matches, strict=True)))

    def _doc_id(self, position):
        return self._body._doc_id(position)


class _SortedStrings:
    """A read-only sequence of the strings in a bytes blob cut at ``offsets``, decoded on access (for bisect)."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        self._blob, self._offsets = blob, offsets

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> str:
        return self._blob[self._offsets[i] : self._offsets[i + 1]].tobytes().decode()
