"""Dense retrieval over a corpus's stored embeddings (``retriever=dense``): the embeddings, written chunk by chunk,
and their search, exact or through a FAISS index.

A folder of embeddings holds ``chunk-<n>.npy`` (float32 rows) and ``ids-<n>.json`` (their document ids), chunk by
chunk in the corpus's order: it is written while the corpus streams past (``write_embeddings``) and read one chunk at
a time, memory-mapped, so that neither step holds the corpus or all its embeddings in memory. A chunk already
present with the same ids is kept, so an encoding cut short resumes at its first missing chunk.

Search:
- ``exact_search``: the inner product of every query with every document, chunk by chunk, keeping each query's best
  ``k`` (the reference; memory: one chunk's scores for a block of queries).
- ``FaissIndex``: FAISS's HNSW graph over the same vectors (inner product). Approximate: an HNSW search visits a
  small part of the corpus, so it answers a query in milliseconds where exact search reads every embedding, and its
  index serves every query set of the same weights; ``recall`` measures what it misses against exact search. An
  exact FAISS flat index would hold every vector in memory and gain nothing over ``exact_search``, which streams them.
Scores are the bi-encoder's own (cosine when its vectors are normalised, else the dot product).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from taskvec_ir.storage.outputs import atomic_path

log = logging.getLogger(__name__)

CHUNK_DOCS = 8192  # documents per stored chunk: the unit of encoding, of resuming and of exact search
QUERY_BLOCK = 1024  # queries scored against a chunk at once (their scores: QUERY_BLOCK × CHUNK_DOCS floats)
# retriever.index=auto: exact search up to this many documents. Below it one exact pass of a few hundred queries costs
# seconds (1M × 384 floats: ~1.5 GB read, ~0.1 TFLOP); above it the pass grows with the corpus and HNSW does not.
EXACT_MAX_DOCS = 1_000_000
HNSW_NEIGHBOURS = 32  # FAISS's M: links per vector (memory ≈ (4·d + 8·M) bytes per document)
HNSW_EF_CONSTRUCTION = 200  # candidates kept while linking: a better graph for a slower build
HNSW_EF_SEARCH = 256  # candidates kept while searching (at least k): recall against speed
RECALL_SAMPLE = 50  # queries on which an approximate index's recall against exact search is measured

Ranking = dict[str, float]


def write_embeddings(docs: Iterable[tuple[str, str]], encode: Callable[[list[str]], np.ndarray], folder: Path) -> int:
    """Encode ``docs`` ((id, text) pairs, streamed) chunk by chunk into ``folder``; a chunk already there with the
    same ids is not encoded again (resuming). Returns the number of documents."""
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for number, batch in enumerate(_batches(docs, CHUNK_DOCS)):
        ids = [doc_id for doc_id, _ in batch]
        total += len(ids)
        ids_path, vectors_path = folder / f"ids-{number:06d}.json", folder / f"chunk-{number:06d}.npy"
        if vectors_path.is_file() and ids_path.is_file() and json.loads(ids_path.read_text()) == ids:
            continue
        vectors = np.ascontiguousarray(encode([text for _, text in batch]), dtype=np.float32)
        with atomic_path(vectors_path) as tmp, open(tmp, "wb") as stream:
            np.save(stream, vectors)
        with atomic_path(ids_path) as tmp:  # last: ids beside a chunk say the chunk is complete
            tmp.write_text(json.dumps(ids))
        log.info("Encoded %d documents (chunk %d)", total, number)
    return total


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def chunks(folder: Path) -> Iterator[tuple[list[str], np.ndarray]]:
    """(ids, vectors) of each chunk in order, the vectors memory-mapped."""
    for vectors_path in sorted(folder.glob("chunk-*.npy")):
        ids_path = vectors_path.with_name(vectors_path.name.replace("chunk-", "ids-").replace(".npy", ".json"))
        yield json.loads(ids_path.read_text()), np.load(vectors_path, mmap_mode="r")


def document_count(folder: Path) -> int:
    return sum(len(ids) for ids, _ in chunks(folder))


def _top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Per row, the column indices of its ``k`` highest values, best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def exact_search(folder: Path, queries: np.ndarray, k: int) -> list[Ranking]:
    """Each query's ``k`` best documents by inner product with every stored embedding, read chunk by chunk."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)  # rows of the corpus; their ids are looked up at the end
    chunk_ids: list[list[str]] = []
    offset = 0
    for doc_ids, vectors in chunks(folder):
        chunk = np.asarray(vectors)
        chunk_scores = np.concatenate(
            [queries[i : i + QUERY_BLOCK] @ chunk.T for i in range(0, len(queries), QUERY_BLOCK)]
        )
        chunk_rows = np.broadcast_to(np.arange(offset, offset + len(doc_ids)), chunk_scores.shape)
        scores = np.concatenate([best_scores, chunk_scores], axis=1)
        rows = np.concatenate([best_rows, chunk_rows], axis=1)
        top = _top_rows(scores, k)
        best_scores, best_rows = np.take_along_axis(scores, top, axis=1), np.take_along_axis(rows, top, axis=1)
        chunk_ids.append(doc_ids)
        offset += len(doc_ids)
    ids = [doc_id for doc_ids in chunk_ids for doc_id in doc_ids]
    return [
        {ids[row]: float(score) for row, score in zip(rows, scores, strict=True)}
        for rows, scores in zip(best_rows, best_scores, strict=True)
    ]


class FaissIndex:
    """An HNSW index (FAISS, inner product) over the embeddings of a folder, stored as ``index.faiss`` with the
    documents' ids in row order (``ids.json``)."""

    FILE, IDS = "index.faiss", "ids.json"

    @classmethod
    def build(cls, embeddings: Path, folder: Path) -> None:
        import faiss

        index, ids = None, []
        for doc_ids, vectors in chunks(embeddings):
            if index is None:
                index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            ids += doc_ids
        faiss.write_index(index, str(folder / cls.FILE))
        (folder / cls.IDS).write_text(json.dumps(ids))

    def __init__(self, folder: Path):
        import faiss

        self.index = faiss.read_index(str(folder / self.FILE))
        self.ids = json.loads((folder / self.IDS).read_text())

    def search(self, queries: np.ndarray, k: int) -> list[Ranking]:
        self.index.hnsw.efSearch = max(HNSW_EF_SEARCH, k)
        scores, rows = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return [
            {self.ids[row]: float(score) for row, score in zip(found, values, strict=True) if row >= 0}
            for found, values in zip(rows, scores, strict=True)
        ]


def recall(approximate: Sequence[Ranking], exact: Sequence[Ranking]) -> float:
    """The mean share of each query's exact top k that the approximate search found."""
    shares = [len(a.keys() & e.keys()) / len(e) for a, e in zip(approximate, exact, strict=True) if e]
    return float(np.mean(shares)) if shares else 1.0
