"""(query, relevant text) pairs to train or choose on: mined from documents alone (a title, a sentence or a span
of words taken out of its document, the rest of the document its one relevant text: inverse cloze, pseudo-queries),
or taken from one split's judgements (the supervised control, which reads relevance labels)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.errors import UserError
from taskvec_ir.ir import splits
from taskvec_ir.ir.documents import doc_texts
from taskvec_ir.ir.irds import SHOWN_IDS

log = logging.getLogger(__name__)

TITLE_FIELD = "title"  # the document field whose text is a title query
MIN_TITLE_WORDS = 3  # shorter titles ("Introduction") say nothing of their document
MIN_SENTENCE_WORDS = 6  # shorter sentences (headings, "Results.") make no query
SPAN_WORDS = 10  # span: a query of this many consecutive words (where text has no sentence ends)
# Sentence ends: ., ! or ? and a space. Any case follows, for lower-cased collections (Cranfield); a split
# after an abbreviation ("et al. 3") only makes a short piece, which MIN_SENTENCE_WORDS leaves out as a query.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\w+")  # a word of a claim compared for near-duplicates
TITLE_QUERY = -1  # in DocumentPairs.queries: the title is the query (else the index of the sentence that is)


@dataclass(frozen=True)
class DocumentPairs:
    """One document's (query, positive) pairs, as the indices of their queries."""

    title: str
    sentences: tuple[str, ...]  # the rest of the document (its fields other than the title), in sentences
    queries: tuple[int, ...]  # TITLE_QUERY, or the index of a sentence taken out as the query
    document: int  # its index in the documents the pairs were made from

    def pair(self, query: int) -> tuple[str, str]:
        """(query, positive): the title and the text, or a sentence and the title with the other sentences."""
        if query == TITLE_QUERY:
            return self.title, " ".join(self.sentences)
        rest = self.sentences[:query] + self.sentences[query + 1 :]
        return self.sentences[query], " ".join((self.title, *rest)).strip()


def split_document(parts: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """A document's title (its ``title`` field, "" if none) and the sentences of the rest of it."""
    title = " ".join(parts.get(TITLE_FIELD, "").split())
    body = " ".join(" ".join(value.split()) for name, value in parts.items() if name != TITLE_FIELD and value)
    if title and body.startswith(title):  # Cranfield's text opens with its title (and " ."): the pair would be a copy
        body = body[len(title) :].lstrip(" .!?")
    return title, tuple(sentence for sentence in _SENTENCE_END.split(body) if sentence)


def word_spans(sentences: Sequence[str]) -> tuple[str, ...]:
    """The words of ``sentences`` in consecutive pieces of SPAN_WORDS (the last one shorter)."""
    words = " ".join(sentences).split()
    return tuple(" ".join(words[i : i + SPAN_WORDS]) for i in range(0, len(words), SPAN_WORDS))


def document_pairs(
    documents: Sequence[Mapping[str, str]], source: str, count: int | None, seed: int, key: str
) -> list[DocumentPairs]:
    """The documents that give a pair, each with its pairs: every pair ``source`` allows (a title of at least
    MIN_TITLE_WORDS words over a non-empty text; a sentence, or with ``span`` a piece of SPAN_WORDS words, of at
    least MIN_SENTENCE_WORDS words, when other pieces remain to be its positive), or ``count`` of them drawn
    with ``seed``. Reads the documents alone. Documents that give no pair are an error naming ``key``, the
    config key that chose ``source``."""
    split = [split_document(parts) for parts in documents]
    if source == "span":  # a text without sentence punctuation (a preprocessed corpus) is one "sentence"
        split = [(title, word_spans(sentences)) for title, sentences in split]
    candidates = []  # (document, query)
    for index, (title, sentences) in enumerate(split):
        if source in ("title", "both") and len(title.split()) >= MIN_TITLE_WORDS and sentences:
            candidates.append((index, TITLE_QUERY))
        if source in ("sentence", "both", "span") and len(sentences) >= 2:
            candidates += [(index, i) for i, text in enumerate(sentences) if len(text.split()) >= MIN_SENTENCE_WORDS]
    if not candidates:
        fields_hint = f" (no '{TITLE_FIELD}' field in dataset.doc_fields?)" if source == "title" else ""
        raise UserError(f"{key}: the documents give no {source} pairs{fields_hint}")
    if count is not None and count < len(candidates):
        chosen = np.random.default_rng(seed).choice(len(candidates), size=count, replace=False)
        candidates = [candidates[i] for i in sorted(chosen)]
    queries: dict[int, list[int]] = {}
    for index, query in candidates:
        queries.setdefault(index, []).append(query)
    return [DocumentPairs(*split[index], tuple(chosen), index) for index, chosen in queries.items()]


def auto_pair_source(documents: Sequence[Mapping[str, str]], key: str) -> str:
    """What source ``auto`` means for ``documents``: the first of title, sentence and span that gives pairs for at
    least half of them (titles where the corpus has them; sentences where it has none; word spans where its text
    has no sentence punctuation, as in preprocessed corpora), else the one that gives the most. None at all is an
    error naming ``key``."""
    covered = {}
    for source in ("title", "sentence", "span"):
        try:
            covered[source] = len(document_pairs(documents, source, None, 0, key))
        except UserError:  # no pair of this source at all
            covered[source] = 0
        if covered[source] >= len(documents) / 2:
            return source
    best = max(covered, key=lambda source: covered[source])  # ties: the earlier source
    if not covered[best]:
        raise UserError(
            f"{key}: auto found no title, sentence or span pairs in {len(documents)} "
            "sampled documents: are their texts empty (dataset.doc_fields)?"
        )
    return best


@dataclass(frozen=True)
class LeftOut:
    """What one other split's queries take out of the training split's judged pairs."""

    queries: list[str]  # its own queries, judged in the training split too (by id or by text)
    near_duplicates: list[str]  # other training queries whose words overlap one of its queries enough
    documents: list[str]  # documents judged relevant to one of its queries, whose training pairs are left out
    document_pairs: int  # the training pairs of those documents

    def record(self) -> dict:
        return {
            "queries": len(self.queries),
            "ids": self.queries,
            "near_duplicates": len(self.near_duplicates),
            "near_duplicate_ids": self.near_duplicates,
            "documents": len(self.documents),
            "document_ids": self.documents,
            "document_pairs": self.document_pairs,
        }


@dataclass(frozen=True)
class JudgedPairs:
    """The (query, relevant document) pairs of one split's qrels that supervised training may use: every judged
    pair with relevance > 0 whose query is not one of another split's queries (by id or by text) nor, with a
    threshold, a near-duplicate of one, and, in the strict variant, whose document is judged relevant to none."""

    split: str
    queries: dict[str, str]  # query_id -> text, of the queries kept
    documents: dict[str, str]  # doc_id -> text (as the scorer reads it), of the documents paired
    pairs: list[tuple[str, str]]  # (query_id, doc_id), sorted
    excluded: dict[str, LeftOut]  # other split -> what its queries took out
    near_duplicate_overlap: float | None  # the word overlap that made a near-duplicate; None: exact text only
    exclude_relevant_documents: bool  # whether the pairs of the other splits' relevant documents were left out

    def record(self) -> dict:
        """What provenance says of the labels used."""
        return {
            "split": self.split,
            "queries": len(self.queries),
            "pairs": len(self.pairs),
            "documents": len(self.documents),
            "near_duplicate_overlap": self.near_duplicate_overlap,
            "exclude_relevant_documents": self.exclude_relevant_documents,
            "excluded": {split: left_out.record() for split, left_out in self.excluded.items()},
        }


def judged_pairs(
    dataset: DatasetConfig, split: str, *, near_duplicate_overlap: float | None, exclude_relevant_documents: bool
) -> JudgedPairs:
    """The positive (query, document) pairs of ``split``'s qrels, without the queries of the dataset's other
    splits: SciFact's dev is a seeded sample of train (its queries are judged in train too), and SciFact repeats
    a few claims under other ids across splits (4 of train's with dev's and test's), so a query is left out when
    its id or its text is another split's. SciFact also pairs claims with altered twins (a negation, a changed
    word) under the next id: with ``near_duplicate_overlap``, a query whose ``word_overlap`` with another split's
    query reaches it is left out too. ``exclude_relevant_documents`` (the strict variant) also leaves out every
    pair whose document is judged relevant to another split's query; only it reads the other splits' qrels."""
    labelled = splits.load_split(dataset, split)
    judged = sorted(qid for qid in labelled.qrels if qid in labelled.queries)
    others = [other for other in splits.resolve_splits(dataset).splits if other != split]
    their_queries = {other: splits.load_queries(dataset, other) for other in others}
    own = {}
    for other, queries in their_queries.items():
        texts = {_normalised(text) for text in queries.values()}
        own[other] = sorted(
            qid for qid in labelled.qrels if qid in queries or _normalised(labelled.queries.get(qid, "")) in texts
        )
    left_out = {qid for ids in own.values() for qid in ids}
    near = {other: [] for other in others}
    if near_duplicate_overlap is not None:
        words = {qid: distinct_words(labelled.queries[qid]) for qid in judged if qid not in left_out}
        for other, queries in their_queries.items():
            theirs = [distinct_words(text) for text in queries.values()]
            # Every pair compared (SciFact: 643 claims against 462), a set ratio each: well under a second.
            near[other] = [
                qid
                for qid, mine in words.items()
                if any(word_overlap(mine, w) >= near_duplicate_overlap for w in theirs)
            ]
        left_out |= {qid for ids in near.values() for qid in ids}
    pairs = sorted(
        (qid, doc_id)
        for qid in judged
        if qid not in left_out
        for doc_id, relevance in labelled.qrels[qid].items()
        if relevance > 0
    )
    relevant = {other: set() for other in others}
    if exclude_relevant_documents:
        for other in others:
            qrels = splits.load_split(dataset, other).qrels
            relevant[other] = {doc_id for judged_docs in qrels.values() for doc_id, r in judged_docs.items() if r > 0}
    excluded = {
        other: LeftOut(
            own[other],
            near[other],
            sorted({doc_id for _, doc_id in pairs} & relevant[other]),
            sum(doc_id in relevant[other] for _, doc_id in pairs),
        )
        for other in others
    }
    shared = set().union(*relevant.values())
    pairs = [(qid, doc_id) for qid, doc_id in pairs if doc_id not in shared]
    if not pairs:
        raise UserError(
            f"dataset {dataset.name!r} split {split!r}: no relevant (query, document) pair is left to train on"
        )
    documents = doc_texts(dataset, {doc_id for _, doc_id in pairs})
    missing = sorted({doc_id for _, doc_id in pairs} - set(documents))
    if missing:
        log.warning(
            "%d judged documents are not in the corpus (first: %s): their pairs left out",
            len(missing),
            ", ".join(missing[:SHOWN_IDS]),
        )
        pairs = [(qid, doc_id) for qid, doc_id in pairs if doc_id in documents]
    queries = {qid: labelled.queries[qid] for qid, _ in pairs}
    return JudgedPairs(split, queries, documents, pairs, excluded, near_duplicate_overlap, exclude_relevant_documents)


def distinct_words(text: str) -> frozenset[str]:
    """The distinct lowercase words of ``text`` (runs of letters, digits and underscores)."""
    return frozenset(_WORD.findall(text.lower()))


def word_overlap(words: frozenset[str], others: frozenset[str]) -> float:
    """The share of the smaller set's words found in the other (the overlap coefficient): 1 where one claim's
    words hold the other's (a negation by an added "not"), 0.75 for "Obesity raises life quality." against
    "Obesity decreases life quality.". 0 where either has no word."""
    if not words or not others:
        return 0.0
    return len(words & others) / min(len(words), len(others))


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())
