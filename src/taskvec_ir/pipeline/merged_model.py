"""Θ' = ΘT + α·τ for a pipeline: ΘT loaded once, each task vector τ = ΘD − Θ0 computed once per triple into
the cache, then set to any merge setting in place (``taskvec_ir.models.merging.TaskArithmetic``)."""

from __future__ import annotations

from pathlib import Path

from taskvec_ir.config.merge_settings import MergeSetting
from taskvec_ir.config.model import PRIMARY, ModelConfig
from taskvec_ir.config.sources import BASE, DOMAIN, IR, vector_roles
from taskvec_ir.models.checkpoints import CheckpointReader
from taskvec_ir.models.model_pool import ModelPool
from taskvec_ir.pipeline.triple import Triple
from taskvec_ir.reporting.lineage import Artifact
from taskvec_ir.storage.cache import CACHE_VERSION, Cache, cache_key, checkpoint_fingerprint


class MergedModel:
    """ΘT with every task vector of ``model`` ready to add; ``streamed``: τ stays on disk and is read at each
    setting (peak memory ≈ one model) instead of being held in memory."""

    def __init__(self, model: ModelConfig, triple: Triple, cache: Cache, pool: ModelPool, streamed: bool = False):
        self.model, self.triple, self.cache, self.pool, self.streamed = model, triple, cache, pool, streamed

    def merge(self):
        """ΘT loaded, with every task vector τ = ΘD − Θ0 ready to add: each computed tensor by tensor into the
        cache (per triple), then held in memory or, when streamed, read from there at each setting."""
        from taskvec_ir.models import merging

        module = self.triple.scorer(IR).module
        folders = self.triple.folders()
        keys = {vector: self.task_vector_key(vector) for vector in self.model.vectors()}

        def task_vector(vector: str):
            base, domain = (folders[role] for role in vector_roles(vector))
            folder = self.cache.folder(
                "task_vector",
                keys[vector],
                lambda out: merging.save_tensors(
                    merging.task_vector_tensors(module, CheckpointReader(base), CheckpointReader(domain)), out
                ),
            )
            return CheckpointReader(folder) if self.streamed else dict(CheckpointReader(folder).items())

        def build():
            merging.release_freed_memory()
            return merging.TaskArithmetic(
                module, CheckpointReader(folders[IR]), {vector: task_vector(vector) for vector in keys}
            )

        # Keyed by the cache folder a streamed τ is read from too.
        return self.pool.merge(f"{sorted(keys.items())}/{self.streamed}/{self.cache.root}", build)

    def task_vector_key(self, vector: str) -> str:
        """τ is stored in ΘT's dtype (the scorer's, which ΘT is loaded in)."""
        base, domain = self.triple.fingerprints(vector_roles(vector))
        return cache_key(
            version=CACHE_VERSION,
            ir=checkpoint_fingerprint(self.triple.folders()[IR]),
            base=base,
            domain=domain,
            dtype=f"torch.{self.model.scorer.dtype}",
        )

    def diagnostics(self, setting: MergeSetting) -> dict:
        """What the merge at ``setting`` does to ΘT (see ``merging.task_vector_diagnostics``), with the share of
        ΘT's parameters it changes. Both parts are cached: a trial whose scores are cached loads no model for
        them."""
        folders = self.triple.folders()
        ir_fingerprint = checkpoint_fingerprint(folders[IR])
        vectors = {vector: self.triple.fingerprints(vector_roles(vector)) for vector in self.model.vectors()}
        identity = dict(version=CACHE_VERSION, ir=ir_fingerprint, vectors=vectors, dtype=self.model.scorer.dtype)

        def vector_stats():
            from taskvec_ir.models import merging

            merge = self.merge()
            merge.set(MergeSetting())
            bases = {
                vector: CheckpointReader(folders[vector_roles(vector)[0]])
                if fingerprints[0] != ir_fingerprint
                else None
                for vector, fingerprints in vectors.items()
            }
            return merging.task_vector_diagnostics(
                merge.module, merge.task_vectors, bases, CheckpointReader(folders[IR])
            )

        def changed_fraction():
            merge = self.merge()
            merge.set(setting)
            return merge.changed_fraction()

        stats = self.cache.json("merge_stats", cache_key(**identity), vector_stats)
        changed = self.cache.json("merge_changed", cache_key(**identity, setting=setting.identity()), changed_fraction)
        return {**stats, "setting": setting.identity(), "changed_fraction": changed}

    def save(self, setting: MergeSetting, folder: Path) -> None:
        """Write Θ' at ``setting`` as a checkpoint that loads like ΘT (``from_pretrained``)."""
        self.merge().set(setting)
        self.triple.scorer(IR).save(folder)

    def artifacts(self) -> list[Artifact]:
        """The task vectors in the cache, as W&B artifacts: only those computed (a job that scored nothing new may
        never have computed its τ)."""
        found, folders = [], self.triple.folders()
        for vector in self.model.vectors():
            key = self.task_vector_key(vector)
            if path := self.cache.entry("task_vector", key):
                roles = dict(zip((BASE, DOMAIN), vector_roles(vector), strict=True))
                metadata = {IR: str(folders[IR]), **{k: str(folders[r]) for k, r in roles.items()}, "cache_key": key}
                name = f"task-vector-{self.model.name}" + ("" if vector == PRIMARY else f"-{vector}")
                found.append(Artifact(name, "task_vector", path, metadata, checksum=False, aliases=(key,)))
        return found
