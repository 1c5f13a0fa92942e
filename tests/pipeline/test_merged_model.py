"""Θ' of a pipeline with τ or with its random-direction null (``merge.direction=random``): each cached under its own
key, τ's key as it always was, and ΘT restored exactly between them."""

import pytest
import torch

from taskvec_ir.config.merge_settings import RANDOM, MergeMethod, MergeSetting
from taskvec_ir.config.model import PRIMARY
from taskvec_ir.models.checkpoints import CheckpointReader
from taskvec_ir.models.merging import apply_task_vectors, task_vector
from taskvec_ir.models.model_pool import ModelPool
from taskvec_ir.models.scoring import load_scorer
from taskvec_ir.pipeline.merged_model import MergedModel
from taskvec_ir.pipeline.triple import Triple
from taskvec_ir.runs.compose import compose
from taskvec_ir.storage.cache import CACHE_VERSION, Cache, cache_key, checkpoint_fingerprint

NULL = MergeMethod(direction=RANDOM, seed=3)


@pytest.fixture
def merged(triple, tmp_path):
    """``merged(cache_dir)``: the tiny bi-encoder triple's merged model, cached in ``cache_dir``, its own pool."""

    def made(cache_dir=tmp_path / "cache"):
        overrides = [*(f"model.{role}={path}" for role, path in triple.items()), "model.scorer.show_progress=false"]
        model = compose(overrides).model
        cache, pool = Cache(cache_dir), ModelPool()
        return MergedModel(model, Triple(model, cache, pool), cache, pool)

    return made


def test_the_null_is_cached_apart_from_tau_whose_key_is_unchanged(merged, triple):
    model = merged()
    fingerprint = {role: checkpoint_fingerprint(path) for role, path in triple.items()}
    tau_key = cache_key(version=CACHE_VERSION, **fingerprint, dtype="torch.float32")  # as before the null existed
    assert model.task_vector_key(PRIMARY) == tau_key == model.task_vector_key(PRIMARY, MergeMethod("dare", seed=3))
    null_key = model.task_vector_key(PRIMARY, NULL)
    assert null_key not in (tau_key, model.task_vector_key(PRIMARY, MergeMethod(direction=RANDOM, seed=4)))
    tau, null = (model.merge(method).task_vectors[PRIMARY] for method in (MergeMethod(), NULL))
    assert model.cache.entry("task_vector", tau_key) and model.cache.entry("task_vector", null_key)
    for name, tensor in tau.items():
        torch.testing.assert_close(null[name].norm(), tensor.norm(), rtol=1e-5, atol=1e-8)
    again = merged(model.cache.root.parent / "other").merge(NULL).task_vectors[PRIMARY]  # drawn again, elsewhere
    assert all(torch.equal(again[name], null[name]) for name in tau)


def test_the_null_and_tau_each_merge_as_fresh_and_alpha_zero_is_the_ir_model_bit_for_bit(merged, triple):
    model = merged()
    fresh = load_scorer("bi_encoder", triple["ir"], model.model.scorer).module
    before = {name: p.detach().clone() for name, p in fresh.named_parameters()}
    tau = task_vector(fresh, CheckpointReader(triple["base"]), CheckpointReader(triple["domain"]))
    null = model.merge(NULL).task_vectors
    for method, vectors in ((NULL, null), (MergeMethod(), {PRIMARY: tau}), (NULL, null)):
        setting = MergeSetting(((PRIMARY, 0.5),), method)
        module = model.set(setting).module
        with torch.no_grad():
            for name, parameter in fresh.named_parameters():
                parameter.copy_(before[name])
        apply_task_vectors(fresh, vectors, setting)
        for (name, parameter), (_, expected) in zip(module.named_parameters(), fresh.named_parameters(), strict=True):
            assert torch.equal(parameter, expected), (method, name)
    module = model.set(MergeSetting(((PRIMARY, 0.0),), NULL)).module  # after the null at 0.5: ΘT exactly
    assert all(torch.equal(parameter, before[name]) for name, parameter in module.named_parameters())
