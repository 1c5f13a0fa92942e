"""The checkpoints of a pipeline's model config, by role: found (downloaded from the Hub once, or adapted
to a corpus once), checked to share one architecture, and loaded into scorers.

Roles (``taskvec_ir.config.sources``): ``ir`` (ΘT), ``base`` (Θ0) and ``domain`` (ΘD), then ``<name>.base`` and
``<name>.domain`` for each extra task vector.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from taskvec_ir.config.merge_settings import MergeSetting
from taskvec_ir.config.model import AdaptConfig, ModelConfig
from taskvec_ir.config.sources import IR, config_key, model_sources
from taskvec_ir.ir.documents import load_doc_fields
from taskvec_ir.ir.irds import place_offline_files
from taskvec_ir.ir.pairs import judged_pairs
from taskvec_ir.models.checkpoints import CheckpointReader, check_checkpoints, resolve_model_source
from taskvec_ir.models.model_pool import ModelPool
from taskvec_ir.pipeline.first_stage import dataset_identity
from taskvec_ir.reporting.lineage import Artifact
from taskvec_ir.storage.cache import Cache, cache_key, checkpoint_fingerprint

log = logging.getLogger(__name__)


class Triple:
    """Local folders of every checkpoint of ``model`` by role, their fingerprints, and their scorers."""

    def __init__(self, model: ModelConfig, cache: Cache, pool: ModelPool, mirror_dir: str | None = None):
        self.model, self.cache, self.pool, self.mirror_dir = model, cache, pool, mirror_dir
        self._folders: dict[str, Path] | None = None
        self.on_adapt_step: Callable[[int, float], None] | None = None  # (step, loss) while a ΘD is adapted

    def folders(self) -> dict[str, Path]:
        """Local folders of every checkpoint (downloading Hub checkpoints once), by role. Checks they share an
        architecture, from their configs and tensor headers."""
        if self._folders is None:
            folders = {
                role: self._resolve(source, config_key(role)) for role, source in model_sources(self.model).items()
            }
            check_checkpoints(folders, self.model.kind, config_key)
            self._folders = folders
        return self._folders

    def _resolve(self, source, key: str) -> Path:
        """A checkpoint's folder; an ``AdaptConfig`` is a checkpoint adapted to a corpus, built once."""
        if not isinstance(source, AdaptConfig):
            return resolve_model_source(source, key)
        from taskvec_ir.models.adapt.cache_entry import adapted_checkpoint

        corpus = source.dataset
        place_offline_files(corpus, self.mirror_dir)
        log.info(
            "%s: %s adapted on %s (%s); trained once, then read from the cache",
            key,
            source.start,
            corpus.name,
            source.objective,
        )
        return adapted_checkpoint(
            source,
            self.cache,
            docs=lambda: load_doc_fields(corpus),  # the documents alone: no query, no qrels
            corpus_identity=dataset_identity(corpus),
            log_step=self.on_adapt_step,
            judged=lambda: judged_pairs(  # read by objective: supervised alone
                corpus,
                source.pairs_split,
                near_duplicate_overlap=source.near_duplicate_overlap,
                exclude_relevant_documents=source.exclude_relevant_documents,
            ),
        )

    def fingerprints(self, roles: Sequence[str]) -> list[str]:
        return [checkpoint_fingerprint(self.folders()[role]) for role in roles]

    def check_layers(self, setting: MergeSetting) -> None:
        """Per-layer α rules name layers the IR model has (read from its checkpoint's keys: no model loaded)."""
        setting.scale.check(CheckpointReader(self.folders()[IR]).keys(), patterns=False)

    def scorer(self, role: str = IR):
        """The scorer of a role's checkpoint (for ``ir``, ΘT: merged in place as the last merge left it)."""
        from taskvec_ir.models import scoring

        folder, kind, settings = self.folders()[role], self.model.kind, self.model.scorer
        identity = cache_key(folder=checkpoint_fingerprint(folder), kind=kind, settings=vars(settings))
        return self.pool.scorer(role, identity, lambda: scoring.load_scorer(kind, folder, settings, config_key(role)))

    def adapted(self) -> list[Artifact]:
        """The checkpoints adapted to a corpus (``adapt``), as model artifacts."""
        found = []
        for role, source in model_sources(self.model).items():
            if isinstance(source, AdaptConfig):
                folder = self.folders()[role]
                metadata = {"start": source.start, "corpus": source.dataset.name, **source.identity()}
                name = f"adapted-{self.model.name}-{role}"  # a version per training setting (alias: its cache key)
                found.append(Artifact(name, "model", folder, metadata, checksum=False, aliases=(folder.name,)))
        return found
