"""Θ' = ΘT + α·τ for a pipeline: ΘT loaded once, each task vector τ = ΘD − Θ0 computed once per triple into
the cache (and, for ``merge.direction=random``, its random-direction null once per seed), then set to any merge
setting in place (``taskvec_ir.models.merging.TaskArithmetic``)."""

from __future__ import annotations

from pathlib import Path

from taskvec_ir.config.merge_settings import RANDOM, MergeMethod, MergeSetting
from taskvec_ir.config.model import PRIMARY, ModelConfig
from taskvec_ir.config.sources import BASE, DOMAIN, IR, vector_roles
from taskvec_ir.models.checkpoints import CheckpointReader
from taskvec_ir.models.model_pool import ModelPool
from taskvec_ir.pipeline.triple import Triple
from taskvec_ir.reporting.lineage import Artifact
from taskvec_ir.storage.cache import CACHE_VERSION, Cache, cache_key, checkpoint_fingerprint

TAU = MergeMethod()  # τ itself (each vector's own direction), as the paper merges it


class MergedModel:
    """ΘT with every task vector of ``model`` ready to add; ``streamed``: τ stays on disk and is read at each
    setting (peak memory ≈ one model) instead of being held in memory."""

    def __init__(self, model: ModelConfig, triple: Triple, cache: Cache, pool: ModelPool, streamed: bool = False):
        self.model, self.triple, self.cache, self.pool, self.streamed = model, triple, cache, pool, streamed

    def merge(self, method: MergeMethod = TAU):
        """ΘT loaded, with every task vector ready to add: τ = ΘD − Θ0 computed tensor by tensor into the cache (per
        triple), or, where ``method`` merges the random-direction null, the null drawn from τ into the cache (per
        triple and seed); then held in memory or, when streamed, read from there at each setting."""
        from taskvec_ir.models import merging

        module = self.triple.scorer(IR).module
        folders = self.triple.folders()
        keys = {vector: self.task_vector_key(vector, method) for vector in self.model.vectors()}

        def tau_folder(vector: str) -> Path:
            base, domain = (folders[role] for role in vector_roles(vector))
            return self.cache.folder(
                "task_vector",
                self.task_vector_key(vector),
                lambda out: merging.save_tensors(
                    merging.task_vector_tensors(module, CheckpointReader(base), CheckpointReader(domain)), out
                ),
            )

        def null_folder(vector: str) -> Path:
            return self.cache.folder(
                "task_vector",
                keys[vector],
                lambda out: merging.save_tensors(
                    merging.random_direction(CheckpointReader(tau_folder(vector)).items(), method.seed, vector), out
                ),
            )

        def task_vector(vector: str):
            folder = null_folder(vector) if method.direction == RANDOM else tau_folder(vector)
            return CheckpointReader(folder) if self.streamed else dict(CheckpointReader(folder).items())

        def build():
            merging.release_freed_memory()
            return merging.TaskArithmetic(
                module, CheckpointReader(folders[IR]), {vector: task_vector(vector) for vector in keys}
            )

        # Keyed by the cache folder a streamed τ is read from too.
        return self.pool.merge(f"{sorted(keys.items())}/{self.streamed}/{self.cache.root}", build)

    def set(self, setting: MergeSetting):
        """ΘT merged in place at ``setting`` (with τ, or the null its method names), and returned."""
        merge = self.merge(setting.method)
        merge.set(setting)
        return merge

    def task_vector_key(self, vector: str, method: MergeMethod = TAU) -> str:
        """τ is stored in ΘT's dtype (the scorer's, which ΘT is loaded in); its random-direction null is keyed by τ's
        key, the seed and the vector's name (what its noise is drawn from)."""
        base, domain = self.triple.fingerprints(vector_roles(vector))
        identity = dict(
            version=CACHE_VERSION,
            ir=checkpoint_fingerprint(self.triple.folders()[IR]),
            base=base,
            domain=domain,
            dtype=f"torch.{self.model.scorer.dtype}",
        )
        if method.direction == RANDOM:
            identity.update(direction=RANDOM, seed=method.seed, vector=vector)
        return cache_key(**identity)

    def diagnostics(self, setting: MergeSetting) -> dict:
        """What the merge at ``setting`` does to ΘT (see ``merging.task_vector_diagnostics``: of the null's vectors
        where the setting merges the null), with the share of ΘT's parameters it changes. Both parts are cached: a
        trial whose scores are cached loads no model for them."""
        folders = self.triple.folders()
        ir_fingerprint = checkpoint_fingerprint(folders[IR])
        vectors = {vector: self.triple.fingerprints(vector_roles(vector)) for vector in self.model.vectors()}
        identity = dict(version=CACHE_VERSION, ir=ir_fingerprint, vectors=vectors, dtype=self.model.scorer.dtype)
        method = setting.method
        if method.direction == RANDOM:  # τ's own identity unchanged: its cached entries keep their keys
            identity.update(direction=RANDOM, seed=method.seed)

        def vector_stats():
            from taskvec_ir.models import merging

            merge = self.merge(method)
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
            return self.set(setting).changed_fraction()

        stats = self.cache.json("merge_stats", cache_key(**identity), vector_stats)
        changed = self.cache.json("merge_changed", cache_key(**identity, setting=setting.identity()), changed_fraction)
        return {**stats, "setting": setting.identity(), "changed_fraction": changed}

    def save(self, setting: MergeSetting, folder: Path) -> None:
        """Write Θ' at ``setting`` as a checkpoint that loads like ΘT (``from_pretrained``)."""
        self.set(setting)
        self.triple.scorer(IR).save(folder)

    def artifacts(self, method: MergeMethod = TAU) -> list[Artifact]:
        """The task vectors in the cache (and their nulls, where ``method`` merges the null), as W&B artifacts: only
        those computed (a job that scored nothing new may never have computed its τ)."""
        found, folders = [], self.triple.folders()
        for vector in self.model.vectors():
            suffix = "" if vector == PRIMARY else f"-{vector}"
            kinds = [("task-vector", TAU)]
            kinds += [("random-direction", method)] if method.direction == RANDOM else []
            for kind, keyed in kinds:
                key = self.task_vector_key(vector, keyed)
                if path := self.cache.entry("task_vector", key):
                    roles = dict(zip((BASE, DOMAIN), vector_roles(vector), strict=True))
                    metadata = {IR: str(folders[IR]), **{k: str(folders[r]) for k, r in roles.items()}}
                    metadata.update({"cache_key": key}, **({"seed": keyed.seed} if keyed.direction == RANDOM else {}))
                    name = f"{kind}-{self.model.name}{suffix}"
                    found.append(Artifact(name, "task_vector", path, metadata, checksum=False, aliases=(key,)))
        return found
