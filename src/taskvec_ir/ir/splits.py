"""A dataset's splits: the queries of each and their judgements, read through ir_datasets.

A dataset is a ``config.dataset.DatasetConfig`` (``conf/dataset/<name>.yaml``); a split is either an ir_datasets id or a
seeded random sample of another split's queries (SciFact's dev split); a BEIR folder has one per
``qrels/<split>.tsv`` besides those configured.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from taskvec_ir.config.dataset import DatasetConfig, SampleSplit
from taskvec_ir.errors import UserError
from taskvec_ir.ir.beir import beir_splits
from taskvec_ir.ir.documents import doc_texts, docs_collection
from taskvec_ir.ir.irds import SHOWN_IDS, check_fields, load_collection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """The queries of one split and their judgements."""

    queries: dict[str, str]  # query_id -> text
    qrels: dict[str, dict[str, int]]  # query_id -> doc_id -> relevance (after the dataset's relevance_map)


def resolve_splits(dataset: DatasetConfig) -> DatasetConfig:
    """``dataset`` with its splits known: a BEIR folder's configured splits (where they need the folder's:
    ``DatasetConfig.splits_in_folder``) merged over one per ``qrels/<split>.tsv``, so that a configured split may be
    a sample of a folder's (``+dataset.splits.dev={sample_of: train, fraction: 0.2}``), checked against them.

    The one place a folder's splits are read: every path (a run, a sweep and its trials, a table's cells, a
    selection) types its config through ``taskvec_ir.runs.compose.typed_config``, which calls this."""
    if dataset.splits_in_folder:
        folder = {split: f"{dataset.name}/{split}" for split in beir_splits(dataset.beir_path)}
        dataset.splits = {**folder, **dataset.splits}
        dataset.check_splits(list(folder))
    return dataset


def load_split(dataset: DatasetConfig, split: str) -> Split:
    """The queries and mapped qrels of the split named ``split`` in ``dataset.splits``.

    The corpus id and fields are checked too (without reading the corpus), so that a wrong
    ``dataset.docs`` fails here, before any model is loaded. A query without text is an error naming
    its id: BM25 retrieves nothing for it, so it would score 0 on every system and silently pull every
    mean down; an IR researcher wants the official query set, so the fix belongs in the data (or
    ``dataset.query_field``), not in a silent drop."""
    queries = load_queries(dataset, split)  # resolves the splits
    spec = dataset.split(split)
    if not isinstance(spec, SampleSplit):
        return Split(queries=queries, qrels=_irds_qrels(dataset, spec))
    qrels = _irds_qrels(dataset, dataset.split(spec.sample_of))
    return Split(queries=queries, qrels={qid: judged for qid, judged in qrels.items() if qid in queries})


def load_queries(dataset: DatasetConfig, split: str) -> dict[str, str]:
    """The queries of ``split`` alone, query_id -> text: its qrels are never read (label-free selection of α
    sees only these). Checked as ``load_split`` checks them."""
    spec = resolve_splits(dataset).split(split)
    docs_collection(dataset)
    if isinstance(spec, SampleSplit):
        parent = _irds_queries(dataset, dataset.split(spec.sample_of))
        chosen = _sampled_ids(sorted(parent), spec, split)
        queries = {qid: text for qid, text in sorted(parent.items()) if qid in chosen}
    else:
        queries = _irds_queries(dataset, spec)
    empty = sorted(qid for qid, text in queries.items() if not (text or "").strip())
    if empty:
        raise UserError(
            f"dataset {dataset.name!r} split {split!r}: {len(empty)} of {len(queries)} queries have "
            f"empty text (first: {', '.join(empty[:SHOWN_IDS])}); fix the queries or dataset.query_field "
            f"({dataset.query_field!r})"
        )
    return queries


def check_judged_documents(dataset: DatasetConfig, qrels: Mapping[str, Mapping[str, int]], split: str) -> int:
    """Warn about judgements naming documents the corpus lacks (looked up in the doc store); return how many.

    They are kept, as trec_eval keeps them: they count toward recall and NDCG's ideal ranking, as
    relevant documents no system can retrieve. Usually a sign of qrels from another version of the
    corpus (or a wrong ``dataset.docs``), hence the warning with counts and the first ids."""
    judged = {doc_id for docs in qrels.values() for doc_id in docs}
    known = doc_texts(dataset, judged)
    unknown = [(qid, doc_id) for qid, docs in qrels.items() for doc_id in docs if doc_id not in known]
    if unknown:
        doc_ids = sorted({doc_id for _, doc_id in unknown})
        relevant = sum(1 for qid, doc_id in unknown if qrels[qid][doc_id] > 0)
        log.warning(
            "Split %r: %d judgements (%d relevant, %d queries) name %d documents not in the corpus "
            "(first: %s); kept: they count as relevant documents no system can retrieve",
            split,
            len(unknown),
            relevant,
            len({qid for qid, _ in unknown}),
            len(doc_ids),
            ", ".join(doc_ids[:SHOWN_IDS]),
        )
    return len(unknown)


def _sampled_ids(query_ids: list[str], spec: SampleSplit, split: str) -> set[str]:
    """The ids a sample split takes from its parent's ``query_ids`` (sorted first: the sample depends only on
    the seed, not on the file's order)."""
    chosen = set(random.Random(spec.seed).sample(query_ids, round(spec.fraction * len(query_ids))))
    if spec.rest:
        chosen = set(query_ids) - chosen
    log.info(
        "Split %r: %d of the %d queries of %r, %s with seed %d (dataset.splits.%s.seed)",
        split,
        len(chosen),
        len(query_ids),
        spec.sample_of,
        "those left out of the sample" if spec.rest else "sampled",
        spec.seed,
        split,
    )
    return chosen


def _irds_queries(dataset: DatasetConfig, irds_id: str) -> dict[str, str]:
    collection = load_collection(dataset, irds_id, "dataset.splits")
    if not collection.has_queries():
        raise UserError(f"ir_datasets id {irds_id!r} has no queries: fix dataset.splits")
    field = dataset.query_field
    check_fields(collection.queries_cls(), [field], "dataset.query_field")
    return {query.query_id: getattr(query, field) for query in collection.queries_iter()}


def _irds_qrels(dataset: DatasetConfig, irds_id: str) -> dict[str, dict[str, int]]:
    collection = load_collection(dataset, irds_id, "dataset.splits")
    if not collection.has_qrels():
        raise UserError(f"ir_datasets id {irds_id!r} has no qrels: fix dataset.splits")
    return _map_qrels(collection.qrels_iter(), dataset.relevance_map)


def _map_qrels(rows: Iterable, relevance_map: Mapping | None) -> dict[str, dict[str, int]]:
    # Config keys may arrive as ints (unquoted YAML) or strings: compare as strings.
    mapping = {str(grade): new for grade, new in (relevance_map or {}).items()}
    qrels: dict[str, dict[str, int]] = {}
    for row in rows:
        grade = mapping.get(str(row.relevance), row.relevance)
        if grade is not None:
            qrels.setdefault(row.query_id, {})[row.doc_id] = int(grade)
    return qrels
