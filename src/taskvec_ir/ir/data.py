"""Loading a dataset's documents, queries and qrels through ir_datasets.

Every collection is read with ``ir_datasets.load(...)``: the paper's BEIR, MIRACL and Cranfield ids
directly, and collections ir_datasets does not know (GermanQuAD) after registering their BEIR-layout
folder or zip under the dataset's name. Offline, the files ir_datasets would download are symlinked
from a mirror folder to where it looks for them, so the same loading code runs with or without internet.

A dataset is a ``schema.DatasetConfig`` (``conf/dataset/<name>.yaml``); a split is either an ir_datasets
id or a seeded random sample of another split's queries (SciFact's dev split).

``ir_datasets`` is imported inside the functions: several of its modules compute their folders from
``IR_DATASETS_HOME`` at import time, so the caller sets that variable first (``use_ir_datasets_home``).
"""

from __future__ import annotations

import fcntl
import hashlib
import heapq
import logging
import os
import random
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from taskvec_ir.config.dataset import DatasetConfig, SampleSplit
from taskvec_ir.errors import MissingFileError, UserError

log = logging.getLogger(__name__)
_SHOWN_IDS = 5


@dataclass(frozen=True)
class Split:
    """The queries of one split and their judgements."""

    queries: dict[str, str]  # query_id -> text
    qrels: dict[str, dict[str, int]]  # query_id -> doc_id -> relevance (after the dataset's relevance_map)


# name -> identity of the BEIR source registered under it in this process (see register_beir_collection)
_REGISTERED_BEIR: dict[str, str] = {}


def use_ir_datasets_home(home: str | Path) -> Path:
    """Make ``home`` the folder ir_datasets reads and writes; return it (expanded, created)."""
    path = Path(home).expanduser().resolve()
    # ir_datasets fixes its dataset folders when imported: changing the variable afterwards would split
    # one run's files between two homes.
    if "ir_datasets" in sys.modules and _ir_datasets_home().resolve() != path:
        raise RuntimeError(
            f"ir_datasets was already imported with IR_DATASETS_HOME={_ir_datasets_home()}; "
            f"set the home ({path}) before anything imports ir_datasets"
        )
    path.mkdir(parents=True, exist_ok=True)
    os.environ["IR_DATASETS_HOME"] = str(path)
    return path


def place_offline_files(dataset: DatasetConfig, mirror_dir: str | Path | None) -> list[Path]:
    """Symlink the dataset's ``offline_files`` from ``mirror_dir`` to where ir_datasets looks for them.

    Targets that already exist are left alone; returns the paths placed by this call. Without a mirror
    folder (None or empty) nothing is placed and ir_datasets downloads as usual.
    """
    if not mirror_dir:
        return []
    mirror = Path(mirror_dir).expanduser().resolve()
    sources = {target: mirror / name for target, name in dataset.offline_files.items()}
    missing = sorted(str(source) for source in sources.values() if not source.is_file())
    if missing:
        raise MissingFileError(
            f"dataset.offline_files names files missing from the mirror folder {mirror}: {', '.join(missing)}"
        )
    home = _ir_datasets_home()
    placed = []
    for target, source in sources.items():
        path = home / target
        if path.exists() or path.is_symlink():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.symlink_to(source)
        except FileExistsError:  # a parallel worker placed it first
            continue
        placed.append(path)
    return placed


def register_beir_collection(name: str, path: str | Path) -> None:
    """Register a BEIR-layout folder or zip in ir_datasets as ``name`` and ``name/<split>``.

    The layout is ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` (in a zip, optionally
    under one top folder, as BEIR ships them). Registering the same source again is a no-op.
    """
    import ir_datasets
    from ir_datasets.datasets.base import Dataset, FilteredQueries
    from ir_datasets.datasets.beir import BeirDocs, BeirQrels, BeirQueries, BeirTitleDoc, qid_filter
    from ir_datasets.formats import GenericQuery

    source = Path(path).expanduser().resolve()
    if not source.exists():
        raise MissingFileError(f"no BEIR collection at {source}: fix dataset.beir_path")
    identity = source_identity(source)
    if _REGISTERED_BEIR.get(name) == identity:
        return
    if name in _REGISTERED_BEIR or name in ir_datasets.registry:
        raise UserError(f"{name!r} is already an ir_datasets id: choose another dataset.name")

    files = _beir_files(source)
    # The doc store is keyed by the source's identity so that a changed file is never read from a
    # store built from the old one.
    store_name = f"{name}/{identity[:12]}"
    docs = BeirDocs(store_name, files["corpus"], BeirTitleDoc)
    queries = BeirQueries(store_name, files["queries"], GenericQuery)
    ir_datasets.registry.register(name, Dataset(docs, queries))
    for split, qrels_file in files["qrels"].items():
        qrels = BeirQrels(qrels_file, qrels_defs={})
        split_queries = FilteredQueries(queries, qid_filter(qrels), mode="include")
        ir_datasets.registry.register(f"{name}/{split}", Dataset(docs, split_queries, qrels))
    _REGISTERED_BEIR[name] = identity


def iter_docs(dataset: DatasetConfig, fields: list[str] | None = None) -> Iterator[tuple[str, str]]:
    """The corpus as (doc_id, text) pairs, streamed in the collection's order: the ``doc_fields`` (or ``fields``,
    e.g. one of them for a per-field index) joined by a space, empty fields skipped.

    Documents without text are kept, with a warning at the end: they belong to the collection its qrels
    were made against (Cranfield has two), so dropping them would silently change the corpus. No analyzer
    gives them a term, so BM25 never retrieves them and they cannot affect a ranking; a judgement on one
    counts as a relevant document no system can find, as in the official evaluation."""
    fields = list(dataset.doc_fields if fields is None else fields)
    collection = _docs_collection(dataset)
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
            ", ".join(empty[:_SHOWN_IDS]),
        )


def load_docs(dataset: DatasetConfig) -> dict[str, str]:
    """The whole corpus in memory, doc_id -> text (``iter_docs``): for adapting a model to it, or small corpora."""
    return dict(iter_docs(dataset))


def doc_texts(dataset: DatasetConfig, doc_ids: Iterable[str]) -> dict[str, str]:
    """doc_id -> text of the ``doc_ids`` the corpus has, read by id from ir_datasets' doc store: re-ranking
    and evaluation never read the whole corpus. Ids the corpus lacks are left out."""
    store = _docs_collection(dataset).docs_store()
    fields = list(dataset.doc_fields)
    return {doc_id: join_fields(_field_values(doc, fields)) for doc_id, doc in store.get_many(set(doc_ids)).items()}


def load_doc_fields(dataset: DatasetConfig) -> dict[str, dict[str, str]]:
    """The corpus as doc_id -> {field: text} for the ``doc_fields`` in their order (missing values as ""): the
    documents and nothing else of the dataset (no query, no qrels)."""
    collection = _docs_collection(dataset)
    fields = list(dataset.doc_fields)
    return {doc.doc_id: _field_values(doc, fields) for doc in collection.docs_iter()}


def join_fields(parts: Mapping[str, str]) -> str:
    """A document's text as BM25 and the models see it: its non-empty fields joined by a space."""
    return " ".join(value for value in parts.values() if value)


def _field_values(doc, fields: list[str]) -> dict[str, str]:
    return {field: getattr(doc, field) or "" for field in fields}


def _docs_collection(dataset: DatasetConfig):
    collection = _load(dataset, dataset.docs, "dataset.docs")
    if not collection.has_docs():
        raise UserError(f"ir_datasets id {dataset.docs!r} has no documents: fix dataset.docs")
    _check_fields(collection.docs_cls(), list(dataset.doc_fields), "dataset.doc_fields")
    _build_docstore(collection)
    return collection


def _build_docstore(collection) -> None:
    """Build the collection's docstore (where ir_datasets has one to build) under a lock shared by every
    process using this ir_datasets home. ir_datasets builds it in place and takes a partly written store for a
    built one, so a job reading while another builds (a sweep's first parallel trials) would read a corrupt
    corpus; with the lock, the first builds and the others wait, then read."""
    build = getattr(collection.docs_store(), "build", None)
    if build is None:
        return
    with open(_ir_datasets_home() / ".taskvec-ir-docstore.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        build()


def resolve_splits(dataset: DatasetConfig) -> DatasetConfig:
    """``dataset`` with its splits known: a BEIR folder given without splits gets one per ``qrels/<split>.tsv``.

    The one place a folder's splits are read: every path (a run, a sweep and its trials, a table's cells, a
    selection) types its config through ``taskvec_ir.runs.compose.typed_config``, which calls this."""
    if dataset.splits_in_folder:
        dataset.splits = {split: f"{dataset.name}/{split}" for split in beir_splits(dataset.beir_path)}
        dataset.check_splits()
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
    _docs_collection(dataset)
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
            f"empty text (first: {', '.join(empty[:_SHOWN_IDS])}); fix the queries or dataset.query_field "
            f"({dataset.query_field!r})"
        )
    return queries


@dataclass(frozen=True)
class JudgedPairs:
    """The (query, relevant document) pairs of one split's qrels that supervised training may use: every judged
    pair with relevance > 0 whose query is not one of another split's queries, by id or by text."""

    split: str
    queries: dict[str, str]  # query_id -> text, of the queries kept
    documents: dict[str, str]  # doc_id -> text (as the scorer reads it), of the documents paired
    pairs: list[tuple[str, str]]  # (query_id, doc_id), sorted
    excluded: dict[str, list[str]]  # other split -> the ids of this split's judged queries left out for it

    def record(self) -> dict:
        """What provenance says of the labels used."""
        return {
            "split": self.split,
            "queries": len(self.queries),
            "pairs": len(self.pairs),
            "documents": len(self.documents),
            "excluded": {split: {"queries": len(ids), "ids": ids} for split, ids in self.excluded.items()},
        }


def judged_pairs(dataset: DatasetConfig, split: str) -> JudgedPairs:
    """The positive (query, document) pairs of ``split``'s qrels, without the queries of the dataset's other
    splits: SciFact's dev is a seeded sample of train (its queries are judged in train too), and SciFact repeats
    a few claims under other ids across splits (4 of train's with dev's and test's), so a query is left out when
    its id or its text is another split's. Reads the other splits' queries, never their qrels."""
    labelled = load_split(dataset, split)
    excluded = {}
    for other in resolve_splits(dataset).splits:
        if other == split:
            continue
        queries = load_queries(dataset, other)
        texts = {_normalised(text) for text in queries.values()}
        excluded[other] = sorted(
            qid for qid in labelled.qrels if qid in queries or _normalised(labelled.queries.get(qid, "")) in texts
        )
    left_out = {qid for ids in excluded.values() for qid in ids}
    pairs = sorted(
        (qid, doc_id)
        for qid, judged in labelled.qrels.items()
        if qid not in left_out and qid in labelled.queries
        for doc_id, relevance in judged.items()
        if relevance > 0
    )
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
            ", ".join(missing[:_SHOWN_IDS]),
        )
        pairs = [(qid, doc_id) for qid, doc_id in pairs if doc_id in documents]
    queries = {qid: labelled.queries[qid] for qid, _ in pairs}
    return JudgedPairs(split, queries, documents, pairs, excluded)


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


def sample_doc_fields(dataset: DatasetConfig, count: int, seed: int) -> dict[str, dict[str, str]]:
    """``count`` documents of the corpus (doc_id -> {field: text}), drawn with ``seed`` in one streamed pass:
    the ids of smallest seeded hash. The sample depends on the ids and the seed alone, not on the corpus's
    order, and memory on ``count``, not on the corpus (MIRACL's millions of passages)."""
    collection = _docs_collection(dataset)
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
            ", ".join(doc_ids[:_SHOWN_IDS]),
        )
    return len(unknown)


def _ir_datasets_home() -> Path:
    # The same rule as ir_datasets.util.home_path, without importing ir_datasets.
    return Path(os.environ.get("IR_DATASETS_HOME", Path.home() / ".ir_datasets"))


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
    collection = _load(dataset, irds_id, "dataset.splits")
    if not collection.has_queries():
        raise UserError(f"ir_datasets id {irds_id!r} has no queries: fix dataset.splits")
    field = dataset.query_field
    _check_fields(collection.queries_cls(), [field], "dataset.query_field")
    return {query.query_id: getattr(query, field) for query in collection.queries_iter()}


def _irds_qrels(dataset: DatasetConfig, irds_id: str) -> dict[str, dict[str, int]]:
    collection = _load(dataset, irds_id, "dataset.splits")
    if not collection.has_qrels():
        raise UserError(f"ir_datasets id {irds_id!r} has no qrels: fix dataset.splits")
    return _map_qrels(collection.qrels_iter(), dataset.relevance_map)


def _load(dataset: DatasetConfig, irds_id: str, key: str):
    import ir_datasets

    if dataset.beir_path:
        register_beir_collection(dataset.name, dataset.beir_path)
    try:
        return ir_datasets.load(irds_id)
    except KeyError:
        raise UserError(f"unknown ir_datasets id {irds_id!r}: fix {key}") from None


def _map_qrels(rows: Iterable, relevance_map: Mapping | None) -> dict[str, dict[str, int]]:
    # Config keys may arrive as ints (unquoted YAML) or strings: compare as strings.
    mapping = {str(grade): new for grade, new in (relevance_map or {}).items()}
    qrels: dict[str, dict[str, int]] = {}
    for row in rows:
        grade = mapping.get(str(row.relevance), row.relevance)
        if grade is not None:
            qrels.setdefault(row.query_id, {})[row.doc_id] = int(grade)
    return qrels


def _check_fields(record_type, fields: list[str], key: str) -> None:
    unknown = [field for field in fields if field not in record_type._fields]
    if unknown:
        raise UserError(f"unknown field(s) {unknown} in {key}; available: {list(record_type._fields)}")


def source_identity(source: Path) -> str:
    """Path, sizes and modification times of a file or of every file in a folder: changes with any of them."""
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    stamps = ";".join(f"{p.relative_to(source.parent)}|{p.stat().st_size}|{p.stat().st_mtime_ns}" for p in files)
    return hashlib.sha1(f"{source}|{stamps}".encode()).hexdigest()


def _beir_layout(source: Path) -> tuple[str, dict[str, str]]:
    """The folder prefix of a BEIR folder's or zip's files, and its qrels files by split (``qrels/<split>.tsv``)."""
    from zipfile import ZipFile

    if not source.exists():
        raise MissingFileError(f"no BEIR collection at {source}: fix dataset.beir_path")
    if source.is_dir():
        names = [str(p.relative_to(source)) for p in source.rglob("*") if p.is_file()]
    else:
        with ZipFile(source) as archive:
            names = archive.namelist()
    corpus = next((name for name in names if name.rsplit("/", 1)[-1] == "corpus.jsonl"), None)
    if corpus is None:
        raise MissingFileError(f"no corpus.jsonl in {source}: fix dataset.beir_path")
    prefix = corpus[: -len("corpus.jsonl")]
    if prefix + "queries.jsonl" not in names:
        raise MissingFileError(f"no {prefix}queries.jsonl in {source}: fix dataset.beir_path")
    qrels = {
        name[len(prefix + "qrels/") : -len(".tsv")]: name
        for name in sorted(names)
        if name.startswith(prefix + "qrels/") and name.endswith(".tsv") and name.count("/") == prefix.count("/") + 1
    }
    return prefix, qrels


def beir_splits(path: str | Path) -> list[str]:
    """The splits of a BEIR folder or zip: one per ``qrels/<split>.tsv``."""
    return list(_beir_layout(Path(path).expanduser().resolve())[1])


def _beir_files(source: Path) -> dict:
    """ir_datasets streamers for corpus, queries and each qrels split of a BEIR folder or zip."""
    from ir_datasets.util import LocalDownload, ZipExtract

    prefix, qrels = _beir_layout(source)
    if source.is_dir():

        def open_file(name: str):
            return LocalDownload(source / name, mkdir=False)

    else:
        archive_file = LocalDownload(source, mkdir=False)

        def open_file(name: str):
            return ZipExtract(archive_file, name)

    return {
        "corpus": open_file(prefix + "corpus.jsonl"),
        "queries": open_file(prefix + "queries.jsonl"),
        "qrels": {split: open_file(name) for split, name in qrels.items()},
    }
