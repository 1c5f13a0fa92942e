"""Task arithmetic on model weights: τ = ΘD − Θ0 and Θ' = ΘT + α·τ.

One merge path for every architecture. The IR model ΘT is a loaded ``torch.nn.Module`` (whatever
wraps it: a sentence-transformers model, a seq2seq or causal LM); the base Θ0 and domain ΘD are
checkpoint folders read tensor by tensor, so a merge never holds three models in memory.

Θ0's and ΘD's keys are matched to ΘT's parameter names by ``checkpoints.align_keys``; ΘT parameters left
without a counterpart (task heads such as a classifier) are not merged and are reported.

Beyond the paper's one vector at one α, ``apply_task_vectors`` applies any ``merge_settings.MergeSetting``:
several task vectors, each with its α; a per-tensor factor on α (the paper's layer ablation, schedules, layer-group
genomes); and a merge method, a sparsifier (``SPARSIFIERS``) followed by a consensus rule (``CONSENSUS``). In place
of τ, ``random_direction`` makes the random-direction null: noise with τ's per-tensor norms.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import torch

from taskvec_ir.config.merge_settings import MergeMethod, MergeSetting
from taskvec_ir.config.tensor_groups import layer_index
from taskvec_ir.models.checkpoints import CheckpointReader, align_keys, check_architecture, parameter_aliases

log = logging.getLogger(__name__)


def task_vector_tensors(
    ir_model: torch.nn.Module, base: CheckpointReader, domain: CheckpointReader
) -> Iterator[tuple[str, torch.Tensor]]:
    """τ = ΘD − Θ0 one tensor at a time, named by ΘT's parameters, in ΘT's dtypes, on the CPU.

    Checks every key and shape before reading any tensor (so a mismatch fails at once), then streams Θ0
    and ΘD tensor by tensor. Differences are taken in float32, whatever the checkpoints store.
    """
    aliases = parameter_aliases(ir_model)
    parameters = dict(ir_model.named_parameters())
    shapes = {name: tuple(parameter.shape) for name, parameter in parameters.items()}
    alignments = {
        role: check_architecture(f"model.{role}", shapes, reader, aliases)
        for role, reader in (("base", base), ("domain", domain))
    }
    merged = [
        name for name in parameters if name in alignments["base"].source_for and name in alignments["domain"].source_for
    ]
    left_out = [name for name in parameters if name not in merged]
    if left_out:
        log.info(
            "Parameters of the IR model left untouched (no counterpart in base or domain): %s", ", ".join(left_out)
        )

    def differences():
        for name in merged:
            # In place into the freshly read ΘD buffer: one allocation kept per tensor, not three.
            difference = domain[alignments["domain"].source_for[name]].to(torch.float32)
            difference.sub_(base[alignments["base"].source_for[name]].to(torch.float32))
            yield name, difference.to(parameters[name].dtype)

    return differences()


def task_vector(ir_model: torch.nn.Module, base: CheckpointReader, domain: CheckpointReader) -> dict[str, torch.Tensor]:
    """τ = ΘD − Θ0 in memory (see ``task_vector_tensors``)."""
    tau = dict(task_vector_tensors(ir_model, base, domain))
    release_freed_memory()
    return tau


def random_direction(
    tensors: Iterable[tuple[str, torch.Tensor]], seed: int, vector: str
) -> Iterator[tuple[str, torch.Tensor]]:
    """The random-direction null of a task vector: each of its float tensors (``tensors``: τ's, one at a time)
    replaced by Gaussian noise of the tensor's shape scaled to the tensor's L2 norm, in its dtype. The noise of a
    tensor is drawn from ``seed`` and the vector's and the tensor's names (the same draw in any order, on any
    machine). It moves ΘT as far as τ does, tensor by tensor, in a direction that carries no domain information."""
    for name, tensor in tensors:
        if not tensor.is_floating_point():  # as the merge: only float tensors are added to ΘT
            continue
        generator = torch.Generator().manual_seed(zlib.crc32(f"{seed}/{vector}/{name}".encode()))
        noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float32)
        # Norms summed in float64: float32 sums over millions of entries drift by 1e-5
        norm, noise_norm = (float(torch.linalg.vector_norm(t, dtype=torch.float64)) for t in (tensor, noise))
        yield name, noise.mul_(norm / noise_norm if noise_norm > 0 else 0.0).to(tensor.dtype)


def release_freed_memory() -> None:
    """Hand freed heap memory back to the OS (glibc only).

    Reading Θ0 tensor by tensor leaves freed buffers between the kept τ tensors; glibc keeps such holes
    in the process until asked to trim (what that costs: docs/results/performance.md, merge memory).
    """
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def save_tensors(tensors: Iterable[tuple[str, torch.Tensor]], folder: Path, shard_bytes: int = 256 << 20) -> None:
    """Write (name, tensor) pairs as safetensors shards of about ``shard_bytes``, holding one shard at a time.

    Small shards bound the memory a streamed τ costs while it is written (docs/results/performance.md, merge memory)."""
    from safetensors.torch import save_file

    shard: dict[str, torch.Tensor] = {}
    size, index = 0, 0
    for name, tensor in tensors:
        shard[name] = tensor.contiguous()
        size += tensor.numel() * tensor.element_size()
        if size >= shard_bytes:
            save_file(shard, str(Path(folder) / f"shard-{index:05d}.safetensors"))
            shard, size, index = {}, 0, index + 1
    if shard or index == 0:
        save_file(shard, str(Path(folder) / f"shard-{index:05d}.safetensors"))
    release_freed_memory()


def keep_largest(tensor: torch.Tensor, density: float) -> torch.Tensor:
    """``tensor`` with all but its round(density·n) entries largest in magnitude set to zero."""
    return _keep_ranks(tensor, 0, round(density * tensor.numel()))


def keep_middle(tensor: torch.Tensor, density: float, gamma: float) -> torch.Tensor:
    """Model Breadcrumbs' mask: the round(gamma·n) entries largest in magnitude and the smallest ones set to zero,
    round(density·n) kept."""
    top = round(gamma * tensor.numel())
    return _keep_ranks(tensor, top, round(density * tensor.numel()))


def _keep_ranks(tensor: torch.Tensor, skip: int, keep: int) -> torch.Tensor:
    """``tensor`` with only the entries ranked skip … skip + keep − 1 by magnitude (largest first) left."""
    if skip == 0 and keep >= tensor.numel():
        return tensor
    ranked = tensor.detach().reshape(-1).float().abs().topk(min(skip + keep, tensor.numel())).indices
    mask = torch.zeros(tensor.numel(), dtype=torch.bool)
    mask[ranked[skip:]] = True
    return torch.where(mask.reshape(tensor.shape), tensor, torch.zeros((), dtype=tensor.dtype))


def drop_and_rescale(tensor: torch.Tensor, density: float, generator: torch.Generator) -> torch.Tensor:
    """Each entry kept with probability ``density`` and divided by it, so the expected tensor is unchanged."""
    if density == 1:
        return tensor
    kept = torch.rand(tensor.shape, generator=generator) < density
    return torch.where(kept, tensor.float() / density, 0.0).to(tensor.dtype)


def _random_drop(method: MergeMethod, vector: str, name: str, tensor: torch.Tensor) -> torch.Tensor:
    seed = zlib.crc32(f"{method.seed}/{vector}/{name}".encode())
    return drop_and_rescale(tensor, method.density, torch.Generator().manual_seed(seed))


# sparsifier -> f(method, vector name, tensor name, τ tensor) (see merge_settings.MERGE_METHODS)
SPARSIFIERS: dict[str, Callable[[MergeMethod, str, str, torch.Tensor], torch.Tensor]] = {
    "none": lambda method, vector, name, tensor: tensor,
    "magnitude": lambda method, vector, name, tensor: keep_largest(tensor, method.density),
    "random": _random_drop,
    "breadcrumbs": lambda method, vector, name, tensor: keep_middle(tensor, method.density, method.gamma),
}


def sparsify(method: MergeMethod, vector: str, name: str, tensor: torch.Tensor) -> torch.Tensor:
    """One tensor of a task vector as ``method``'s sparsifier leaves it."""
    return SPARSIFIERS[method.sparsifier](method, vector, name, tensor)


def elect_sign_mean(weighted: list[torch.Tensor]) -> torch.Tensor:
    """TIES' merge of already weighted, sparsified vectors: the elected sign's disjoint mean, in float32."""
    stacked = torch.stack([t.float() for t in weighted])
    elected = torch.sign(stacked.sum(dim=0))
    agree = (torch.sign(stacked) == elected) & (stacked != 0)
    return (stacked * agree).sum(dim=0) / agree.sum(dim=0).clamp(min=1)


def _add_sum(parameter: torch.Tensor, terms: list[tuple[float, torch.Tensor]]) -> int:
    """parameter += Σ wᵢ·τᵢ, one vector at a time in the parameter's dtype; returns the entries changed."""
    for weight, tensor in terms:
        parameter.add_(tensor.to(parameter.device, parameter.dtype), alpha=weight)
    return int(torch.stack([tensor != 0 for _, tensor in terms]).any(dim=0).sum())


def _add_sign_mean(parameter: torch.Tensor, terms: list[tuple[float, torch.Tensor]]) -> int:
    """parameter += the elected sign's disjoint mean of the wᵢ·τᵢ; returns the entries changed."""
    delta = elect_sign_mean([weight * tensor.float() for weight, tensor in terms])
    parameter.add_(delta.to(parameter.device, parameter.dtype))
    return int(torch.count_nonzero(delta))


# consensus rule -> f(parameter, [(wᵢ, sparsified τᵢ)]) adding the update in place (see merge_settings.MERGE_METHODS)
CONSENSUS: dict[str, Callable[[torch.Tensor, list[tuple[float, torch.Tensor]]], int]] = {
    "sum": _add_sum,
    "sign_mean": _add_sign_mean,
}


@torch.no_grad()
def apply_task_vectors(
    ir_model: torch.nn.Module, task_vectors: Mapping[str, Mapping[str, torch.Tensor]], setting: MergeSetting
) -> dict[str, int]:
    """Θ' = ΘT + the merged update of ``setting``, in place on ΘT's parameters.

    ``task_vectors`` maps each vector's name to its tensors (by ΘT's parameter names; a dict or a streamed
    ``CheckpointReader``). Vectors at α = 0 and tensors at factor 0 are skipped, so ΘT is left bit for bit
    where nothing is added, and a vector at α = 0 changes nothing about the others' merge. Returns, for
    each tensor changed, how many of its entries changed.
    """
    parameters = dict(ir_model.named_parameters())
    alphas = dict(setting.normalized().alphas)
    factors = setting.scale.factors(parameters) if alphas else {}
    names = dict.fromkeys(name for vector in alphas for name in task_vectors[vector])
    changed: dict[str, int] = {}
    for name in names:  # by name: a streamed τ tensor is freed before the next one is read
        terms = [(vector, alphas[vector] * factors[name]) for vector in alphas if name in task_vectors[vector]]
        terms = [(vector, weight) for vector, weight in terms if weight != 0]
        if not terms:
            continue
        sparse = [
            (weight, sparsify(setting.method, vector, name, task_vectors[vector][name])) for vector, weight in terms
        ]
        changed[name] = CONSENSUS[setting.method.consensus](parameters[name], sparse)
    return changed


@torch.no_grad()
def task_vector_diagnostics(
    ir_model: torch.nn.Module,
    task_vectors: Mapping[str, Mapping[str, torch.Tensor]],
    bases: Mapping[str, CheckpointReader | None],
    ir: CheckpointReader,
) -> dict:
    """How far each task vector moves ΘT, where, and how the vectors relate. One pass over the tensors.

    Per vector: ‖τ‖, ‖τ‖/‖ΘT‖ (over the tensors it covers), ‖τ‖ per layer ("other": embeddings and heads),
    and, where its base Θ0 differs from ΘT (``bases[vector]`` given), the cosine between τ and ΘT − Θ0 (the
    IR fine-tune's own vector). Between vectors: pairwise cosines. ``ir_model`` must hold ΘT unmerged.
    """
    parameters = dict(ir_model.named_parameters())
    vectors = list(task_vectors)
    aliases = parameter_aliases(ir_model)
    base_keys = {v: align_keys(aliases, reader.keys()).source_for for v, reader in bases.items() if reader is not None}
    ir_keys = align_keys(aliases, ir.keys()).source_for if base_keys else {}
    square = dict.fromkeys(vectors, 0.0)
    ir_square = dict.fromkeys(vectors, 0.0)
    layer_square: dict[str, dict[str, float]] = {v: {} for v in vectors}
    dots: dict[tuple[str, str], float] = {}
    fine_tune = {v: [0.0, 0.0] for v in base_keys}  # τ·(ΘT − Θ0), ‖ΘT − Θ0‖²
    covered = {v: 0 for v in vectors}
    for name in dict.fromkeys(n for v in vectors for n in task_vectors[v]):
        tensors = {v: task_vectors[v][name].float() for v in vectors if name in task_vectors[v]}
        layer = layer_index(name)
        ir_sq = float(parameters[name].float().pow(2).sum())
        for v, tau in tensors.items():
            sq = float(tau.pow(2).sum())
            square[v] += sq
            ir_square[v] += ir_sq
            covered[v] += tau.numel()
            key = "other" if layer is None else str(layer)
            layer_square[v][key] = layer_square[v].get(key, 0.0) + sq
            if v in fine_tune and name in base_keys[v] and name in ir_keys:
                difference = ir[ir_keys[name]].float() - bases[v][base_keys[v][name]].float()
                fine_tune[v][0] += float((tau * difference).sum())
                fine_tune[v][1] += float(difference.pow(2).sum())
        for i, a in enumerate(vectors):
            for b in vectors[i + 1 :]:
                if a in tensors and b in tensors:
                    dots[a, b] = dots.get((a, b), 0.0) + float((tensors[a] * tensors[b]).sum())

    def cosine(dot, sq_a, sq_b):
        return dot / math.sqrt(sq_a * sq_b) if sq_a and sq_b else float("nan")

    report = {
        "vectors": {},
        "cosine": {f"{a}~{b}": cosine(dot, square[a], square[b]) for (a, b), dot in dots.items()},
        "ir_parameters": sum(p.numel() for p in parameters.values()),
    }
    for v in vectors:
        report["vectors"][v] = {
            "norm": math.sqrt(square[v]),
            "norm_ratio": math.sqrt(square[v] / ir_square[v]) if ir_square[v] else float("nan"),
            "parameters": covered[v],
            "layer_norms": {
                key: math.sqrt(value)
                for key, value in sorted(
                    layer_square[v].items(),
                    key=lambda item: (item[0] == "other", int(item[0]) if item[0] != "other" else 0),
                )
            },
        }
        if v in fine_tune:
            report["vectors"][v]["cosine_with_ir_fine_tune"] = cosine(fine_tune[v][0], square[v], fine_tune[v][1])
    return report


class TaskArithmetic:
    """ΘT in place at any merge setting: each ``set`` makes the weights exactly those of a fresh merge.

    Going from one setting to the next restores the tensors the last one changed from ΘT's checkpoint (read
    lazily) before applying the new one, so a sequence of settings gives bit for bit the weights of a fresh
    merge, with no rounding accumulated and no second copy of the model in memory. Each task vector may be a
    dict in memory (peak ≈ ΘT + τ) or a ``CheckpointReader`` over τ saved on disk, streamed tensor by tensor
    (peak ≈ ΘT).
    """

    def __init__(
        self, ir_model: torch.nn.Module, ir: CheckpointReader, task_vectors: Mapping[str, Mapping[str, torch.Tensor]]
    ):
        self.module = ir_model
        self.task_vectors = task_vectors
        self.setting = MergeSetting()
        self.changed: dict[str, int] = {}  # entries changed per tensor by the current setting
        self._parameters = dict(ir_model.named_parameters())
        self._ir = ir
        self._ir_keys = align_keys(parameter_aliases(ir_model), ir.keys()).source_for
        # Parameters whose initial value is not in ΘT's checkpoint (initialised at load) are kept in memory.
        self._names = list(dict.fromkeys(name for tau in task_vectors.values() for name in tau))
        self._kept = {
            name: self._parameters[name].detach().clone() for name in self._names if name not in self._ir_keys
        }

    @torch.no_grad()
    def set(self, setting: MergeSetting) -> None:
        setting = setting.normalized()
        if setting == self.setting:
            return
        setting.scale.check(self._parameters)  # a bad rule fails before ΘT is touched
        self._restore(self.changed)
        self.changed, self.setting = {}, MergeSetting()
        try:
            self.changed = apply_task_vectors(self.module, self.task_vectors, setting)
        except BaseException:  # e.g. a streamed τ shard gone: a half-applied setting must not outlive its error
            self._restore(self._names)
            raise
        self.setting = setting

    def _restore(self, names: Iterable[str]) -> None:
        for name in names:
            self._parameters[name].copy_(self._kept[name] if name in self._kept else self._ir[self._ir_keys[name]])

    def changed_fraction(self) -> float:
        """Share of ΘT's parameters the current setting changed."""
        return sum(self.changed.values()) / sum(p.numel() for p in self._parameters.values())
