"""BEIR-layout collections (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``, in a folder or a zip): their
splits, their identity, and their registration in ir_datasets under a dataset's name, so that collections
ir_datasets does not know (GermanQuAD, a user's own) are read as any other."""

from __future__ import annotations

import hashlib
from pathlib import Path

from taskvec_ir.errors import MissingFileError, UserError

# name -> identity of the BEIR source registered under it in this process (see register_beir_collection)
_REGISTERED_BEIR: dict[str, str] = {}


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


def source_identity(source: Path) -> str:
    """Path, sizes and modification times of a file or of every file in a folder: changes with any of them."""
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    stamps = ";".join(f"{p.relative_to(source.parent)}|{p.stat().st_size}|{p.stat().st_mtime_ns}" for p in files)
    return hashlib.sha1(f"{source}|{stamps}".encode()).hexdigest()


def beir_splits(path: str | Path) -> list[str]:
    """The splits of a BEIR folder or zip: one per ``qrels/<split>.tsv``."""
    return list(_beir_layout(Path(path).expanduser().resolve())[1])


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
