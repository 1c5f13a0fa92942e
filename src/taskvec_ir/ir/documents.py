"""A dataset's documents, read through ir_datasets: streamed, in memory, by id from its doc store, or a seeded
sample; a document's text is its ``doc_fields`` joined as BM25 and the models read them."""

from __future__ import annotations

import fcntl
import hashlib
import heapq
import logging
from collections.abc import Iterable, Iterator, Mapping

from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.errors import UserError
from taskvec_ir.ir.irds import SHOWN_IDS, check_fields, ir_datasets_home, load_collection

log = logging.getLogger(__name__)


def iter_docs(dataset: DatasetConfig, fields: list[str] | None = None) -> Iterator[tuple[str, str]]:
    """The corpus as (doc_id, text) pairs, streamed in the collection's order: the ``doc_fields`` (or ``fields``,
    e.g. one of them for a per-field index) joined by a space, empty fields skipped.

    Documents without text are kept, with a warning at the end: they belong to the collection its qrels
    were made against (Cranfield has two), so dropping them would silently change the corpus. No analyzer
    gives them a term, so BM25 never retrieves them and they cannot affect a ranking; a judgement on one
    counts as a relevant document no system can find, as in the official evaluation."""
    fields = list(dataset.doc_fields if fields is None else fields)
    collection = docs_collection(dataset)
    empty, total = [], 0
    for doc in collection.docs_iter():
        text = join_fields(_field_values(doc, fields))
        total += 1
        if not text.strip():
            empty.append(doc.doc_id)
        yield doc.doc_id, text
    if empty:
        log.warning(
            "%d of %d documents of %s have no text in dataset.doc_fields %s (first: %s): kept, but no "
            "query can retrieve them",
            len(empty),
            total,
            dataset.docs,
            fields,
            ", ".join(empty[:SHOWN_IDS]),
        )


def load_docs(dataset: DatasetConfig) -> dict[str, str]:
    """The whole corpus in memory, doc_id -> text (``iter_docs``): for adapting a model to it, or small corpora."""
    return dict(iter_docs(dataset))


def doc_texts(dataset: DatasetConfig, doc_ids: Iterable[str]) -> dict[str, str]:
    """doc_id -> text of the ``doc_ids`` the corpus has, read by id from ir_datasets' doc store: re-ranking
    and evaluation never read the whole corpus. Ids the corpus lacks are left out."""
    store = docs_collection(dataset).docs_store()
    fields = list(dataset.doc_fields)
    return {doc_id: join_fields(_field_values(doc, fields)) for doc_id, doc in store.get_many(set(doc_ids)).items()}


def load_doc_fields(dataset: DatasetConfig) -> dict[str, dict[str, str]]:
    """The corpus as doc_id -> {field: text} for the ``doc_fields`` in their order (missing values as ""): the
    documents and nothing else of the dataset (no query, no qrels)."""
    collection = docs_collection(dataset)
    fields = list(dataset.doc_fields)
    return {doc.doc_id: _field_values(doc, fields) for doc in collection.docs_iter()}


def sample_doc_fields(dataset: DatasetConfig, count: int, seed: int) -> dict[str, dict[str, str]]:
    """``count`` documents of the corpus (doc_id -> {field: text}), drawn with ``seed`` in one streamed pass:
    the ids of smallest seeded hash. The sample depends on the ids and the seed alone, not on the corpus's
    order, and memory on ``count``, not on the corpus (MIRACL's millions of passages)."""
    collection = docs_collection(dataset)
    fields = list(dataset.doc_fields)
    kept: list[tuple[int, str, dict[str, str]]] = []  # a max-heap on the hash (negated) of the `count` smallest
    for doc in collection.docs_iter():
        digest = hashlib.blake2b(f"{seed}:{doc.doc_id}".encode(), digest_size=8).digest()
        rank = -int.from_bytes(digest, "big")
        if len(kept) < count:
            heapq.heappush(kept, (rank, doc.doc_id, _field_values(doc, fields)))
        elif rank > kept[0][0]:
            heapq.heapreplace(kept, (rank, doc.doc_id, _field_values(doc, fields)))
    return {doc_id: parts for _, doc_id, parts in sorted(kept, key=lambda entry: entry[1])}


def join_fields(parts: Mapping[str, str]) -> str:
    """A document's text as BM25 and the models see it: its non-empty fields joined by a space."""
    return " ".join(value for value in parts.values() if value)


def docs_collection(dataset: DatasetConfig):
    """The ir_datasets collection of ``dataset.docs``, its ``doc_fields`` checked and its doc store built."""
    collection = load_collection(dataset, dataset.docs, "dataset.docs")
    if not collection.has_docs():
        raise UserError(f"ir_datasets id {dataset.docs!r} has no documents: fix dataset.docs")
    check_fields(collection.docs_cls(), list(dataset.doc_fields), "dataset.doc_fields")
    _build_docstore(collection)
    return collection


def _field_values(doc, fields: list[str]) -> dict[str, str]:
    return {field: getattr(doc, field) or "" for field in fields}


def _build_docstore(collection) -> None:
    """Build the collection's docstore (where ir_datasets has one to build) under a lock shared by every
    process using this ir_datasets home. ir_datasets builds it in place and takes a partly written store for a
    built one, so a job reading while another builds (a sweep's first parallel trials) would read a corrupt
    corpus; with the lock, the first builds and the others wait, then read."""
    build = getattr(collection.docs_store(), "build", None)
    if build is None:
        return
    with open(ir_datasets_home() / ".taskvec-ir-docstore.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        build()
