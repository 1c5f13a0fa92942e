"""An adapted checkpoint as a cache entry: keyed by its start, its corpus and its training settings, trained once
(from the documents alone, or a split's judged pairs for the supervised control), and saved with a
``provenance.json`` that says how it was made."""

from __future__ import annotations

import importlib.metadata
import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from taskvec_ir.config.model import SUPERVISED, AdaptConfig
from taskvec_ir.errors import UserError
from taskvec_ir.ir.documents import join_fields
from taskvec_ir.ir.pairs import JudgedPairs
from taskvec_ir.models.adapt.objectives import TRAINEES, resolve_objective
from taskvec_ir.models.adapt.training import train
from taskvec_ir.models.checkpoints import resolve_model_source
from taskvec_ir.models.scoring import torch_device
from taskvec_ir.storage.cache import Cache, cache_key, checkpoint_fingerprint
from taskvec_ir.storage.outputs import write_json

log = logging.getLogger(__name__)

PARTIAL_KIND = "adapt-partial"  # <cache.dir>/adapt-partial/<key>/: the resumable state while training


def adapted_checkpoint(
    spec: AdaptConfig,
    cache: Cache,
    docs: Callable[[], Mapping[str, Mapping[str, str]]],
    corpus_identity: Mapping,
    log_step: Callable[[int, float], None] | None = None,
    judged: Callable[[], JudgedPairs] | None = None,
) -> Path:
    """The folder of ``spec.start`` (a model source, see ``checkpoints.resolve_model_source``) adapted to a
    corpus's documents as ``spec`` says, trained once and cached.

    ``docs()`` returns the corpus (doc_id -> {field: text}, as ``documents.load_doc_fields``: documents only, never
    a query or a judgement) and is only called on a cache miss; ``corpus_identity`` says which corpus that is (it
    is part of the cache key). ``judged()`` gives the labelled pairs of ``objective: supervised``
    (``pairs.judged_pairs``), the only objective that calls it. ``log_step(step, loss)`` is called after every
    optimiser step. The folder loads like the start checkpoint and holds ``provenance.json``, which says how
    it was made; the state saved while training lives in ``<cache.dir>/adapt-partial/<key>/`` and is removed
    once the checkpoint is complete.
    """
    start = resolve_model_source(spec.start, role="adapt.start")
    settings = replace(spec, objective=resolve_objective(start, spec.objective))
    fingerprint = checkpoint_fingerprint(start)
    key = cache_key(start=fingerprint, corpus=dict(corpus_identity), settings=settings.identity())
    partial = cache.root / PARTIAL_KIND / key if cache.root is not None else None

    def build(out: Path) -> None:
        device = torch_device(settings.device, "adapt.device")
        if settings.objective == SUPERVISED:
            training_data = judged()
            read = {"documents": len(training_data.documents), "supervised": training_data.record()}
        else:
            training_data = document_sample(docs(), settings.sample_size, settings.seed)
            read = {"documents": len(training_data)}
        torch.manual_seed(settings.seed)  # heads or decoder layers the start lacks are initialised from it
        trainee = TRAINEES[settings.objective](start, settings, device)
        examples = trainee.examples(training_data, settings)
        run = train(trainee, examples, settings, partial, log_step)
        trainee.save(out)
        write_json(
            {
                "start": {"source": spec.start, "folder": str(start), "fingerprint": fingerprint},
                "corpus": dict(corpus_identity),
                **read,
                "objective": settings.objective,
                "objective_details": trainee.details,
                "settings": {**settings.identity(), "save_every": settings.save_every},
                "steps": run.step,
                "resumed_from_step": run.resumed_from,
                "wall_seconds": round(run.seconds, 3),
                "final_loss": run.final_loss,
                "losses": run.losses,
                "device": str(device),
                "libraries": {
                    name: _version(name) for name in ("torch", "transformers", "sentence-transformers", "taskvec-ir")
                },
                "cache_key": key,
            },
            out / "provenance.json",
        )
        if partial is not None:
            shutil.rmtree(partial, ignore_errors=True)

    return cache.folder("adapted", key, build)


def document_sample(
    docs: Mapping[str, Mapping[str, str]], sample_size: int | None, seed: int
) -> list[Mapping[str, str]]:
    """The non-empty documents (their fields) to train on: all, or ``sample_size`` of them drawn with ``seed``.

    Ids are sorted first, so the sample does not depend on the order the corpus was read in.
    """
    ids = sorted(doc_id for doc_id, parts in docs.items() if join_fields(parts).strip())
    if not ids:
        raise UserError("adapt: the corpus has no non-empty documents to train on")
    if sample_size is not None and sample_size < len(ids):
        chosen = np.random.default_rng(seed).choice(len(ids), size=sample_size, replace=False)
        ids = [ids[i] for i in sorted(chosen)]
    elif sample_size is not None:
        log.info(
            "adapt.sample_size %d is not below the corpus's %d documents: using all of them", sample_size, len(ids)
        )
    return [docs[doc_id] for doc_id in ids]


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:  # e.g. taskvec_ir run from a source tree
        return None
