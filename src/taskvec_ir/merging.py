"""Task arithmetic on model weights: τ = ΘD − Θ0 and Θ' = ΘT + α·τ.

One merge path for every architecture. The IR model ΘT is a loaded ``torch.nn.Module`` (whatever
wraps it: a sentence-transformers model, a seq2seq or causal LM); the base Θ0 and domain ΘD are
checkpoint folders read tensor by tensor, so a merge never holds three models in memory.

Checkpoint keys rarely match ΘT's parameter names one to one: a base saved with its pre-training head
has a ``bert.`` or ``roberta.`` prefix, a sentence-transformers wrapper adds ``0.model.``.
``align_keys`` finds the pair of prefixes (one stripped from ΘT's names, one from the checkpoint's)
under which the most names agree; ΘT parameters left without a counterpart (task heads such as a
classifier) are not merged and are reported.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from taskvec_ir.checkpoints import CheckpointError, CheckpointReader

log = logging.getLogger(__name__)

# A checkpoint that covers less than this share of ΘT's parameters is not the same architecture.
MIN_SHARED_FRACTION = 0.5
_SHOWN_KEYS = 5


@dataclass
class KeyAlignment:
    """How ΘT's parameters map onto one checkpoint's keys."""

    source_for: dict[str, str]  # ΘT parameter name -> checkpoint key
    ir_only: list[str]  # ΘT parameters the checkpoint lacks (heads): left untouched
    source_only: list[str] = field(default_factory=list)  # checkpoint keys ΘT lacks: ignored


def parameter_aliases(module: torch.nn.Module) -> dict[str, list[str]]:
    """ΘT's parameters, each under its first name, with every name it is known by.

    Tied weights (T5's ``shared``/``embed_tokens``/``lm_head``) are one tensor under several names:
    merging them once per name would add α·τ several times.
    """
    names_by_tensor: dict[int, list[str]] = {}
    for name, parameter in module.named_parameters(remove_duplicate=False):
        names_by_tensor.setdefault(id(parameter), []).append(name)
    return {names[0]: names for names in names_by_tensor.values()}


def _prefixes(keys: Iterable[str], depth: int = 2) -> set[str]:
    found = {""}
    for key in keys:
        parts = key.split(".")
        found.update(".".join(parts[:i]) + "." for i in range(1, min(depth, len(parts) - 1) + 1))
    return found


def _strip(keys: Iterable[str], prefix: str) -> dict[str, str]:
    return {key[len(prefix):]: key for key in keys if key.startswith(prefix)}


def align_keys(aliases: Mapping[str, list[str]], source_keys: Iterable[str]) -> KeyAlignment:
    """Map ΘT's parameters (``parameter_aliases``) onto a checkpoint's keys."""
    source_keys = list(source_keys)
    target_keys = [alias for names in aliases.values() for alias in names]
    best: tuple[int, int, str, str] | None = None
    for target_prefix in _prefixes(target_keys):
        targets = _strip(target_keys, target_prefix)
        for source_prefix in _prefixes(source_keys):
            shared = len(targets.keys() & _strip(source_keys, source_prefix).keys())
            # Most shared names first; on a tie, the shortest prefixes.
            candidate = (shared, -len(target_prefix) - len(source_prefix), target_prefix, source_prefix)
            if best is None or candidate[:2] > best[:2]:
                best = candidate
    _, _, target_prefix, source_prefix = best
    sources = _strip(source_keys, source_prefix)
    source_for: dict[str, str] = {}
    for name, names in aliases.items():
        for alias in names:
            core = alias[len(target_prefix):] if alias.startswith(target_prefix) else None
            if core in sources:
                source_for[name] = sources[core]
                break
    used = set(source_for.values())
    return KeyAlignment(
        source_for=source_for,
        ir_only=[name for name in aliases if name not in source_for],
        source_only=[key for key in source_keys if key not in used],
    )


def _check_alignment(role: str, alignment: KeyAlignment, parameters: Mapping[str, torch.Tensor],
                     reader: CheckpointReader) -> None:
    if len(alignment.source_for) < MIN_SHARED_FRACTION * len(parameters):
        missing = ", ".join(alignment.ir_only[:_SHOWN_KEYS])
        raise CheckpointError(
            f"model.{role} ({reader.folder}) does not share the IR model's architecture: only "
            f"{len(alignment.source_for)} of {len(parameters)} parameters have a counterpart; "
            f"first without one: {missing}"
        )
    mismatched = [
        f"{name} {tuple(parameters[name].shape)} vs {key} {reader.shape(key)}"
        for name, key in alignment.source_for.items()
        if tuple(parameters[name].shape) != reader.shape(key)
    ]
    if mismatched:
        raise CheckpointError(
            f"model.{role} ({reader.folder}) has {len(mismatched)} tensors whose shape differs from the IR "
            f"model's (a different size or vocabulary); first: {'; '.join(mismatched[:_SHOWN_KEYS])}"
        )


def task_vector_tensors(ir_model: torch.nn.Module, base: CheckpointReader,
                        domain: CheckpointReader) -> Iterator[tuple[str, torch.Tensor]]:
    """τ = ΘD − Θ0 one tensor at a time, named by ΘT's parameters, in ΘT's dtypes, on the CPU.

    Checks every key and shape before reading any tensor (so a mismatch fails at once), then streams Θ0
    and ΘD tensor by tensor. Differences are taken in float32, whatever the checkpoints store.
    """
    aliases = parameter_aliases(ir_model)
    parameters = dict(ir_model.named_parameters())
    alignments = {}
    for role, reader in (("base", base), ("domain", domain)):
        alignments[role] = align_keys(aliases, reader.keys())
        _check_alignment(role, alignments[role], parameters, reader)
    merged = [name for name in parameters
              if name in alignments["base"].source_for and name in alignments["domain"].source_for]
    left_out = [name for name in parameters if name not in merged]
    if left_out:
        log.info("Parameters of the IR model left untouched (no counterpart in base or domain): %s",
                 ", ".join(left_out))

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


def release_freed_memory() -> None:
    """Hand freed heap memory back to the OS (glibc only).

    Reading Θ0 tensor by tensor leaves freed buffers between the kept τ tensors; glibc keeps such holes
    in the process (measured: +0.24× of the model's bytes at 0.5B parameters) until asked to trim.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def save_tensors(tensors: Iterable[tuple[str, torch.Tensor]], folder: Path, shard_bytes: int = 256 << 20) -> None:
    """Write (name, tensor) pairs as safetensors shards of about ``shard_bytes``, holding one shard at a time.

    Small shards bound the memory a streamed τ costs while it is written (measured at 0.5B parameters:
    peak 1.29× the model with 256 MiB shards, 1.63× with 1 GiB)."""
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


@torch.no_grad()
def apply_task_vector(ir_model: torch.nn.Module, tau: Mapping[str, torch.Tensor], alpha: float) -> None:
    """Θ' = ΘT + α·τ, in place on ΘT's parameters. α = 0 leaves ΘT untouched, bit for bit."""
    if alpha == 0:
        return
    parameters = dict(ir_model.named_parameters())
    for name in tau:  # by name: a streamed τ tensor is freed before the next one is read
        parameter = parameters[name]
        parameter.add_(tau[name].to(parameter.device, parameter.dtype), alpha=alpha)


@torch.no_grad()
def task_vector_stats(ir_model: torch.nn.Module, tau: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Size of τ relative to ΘT: how far the domain fine-tune moved the weights."""
    parameters = dict(ir_model.named_parameters())
    tau_sq = sum(float(t.float().pow(2).sum()) for t in tau.values())
    ir_sq = sum(float(parameters[name].float().pow(2).sum()) for name in tau)
    return {
        "merged_tensors": len(tau),
        "merged_parameters": sum(parameters[name].numel() for name in tau),
        "untouched_tensors": len(parameters) - len(tau),
        "tau_norm": tau_sq ** 0.5,
        "tau_norm_ratio": (tau_sq / ir_sq) ** 0.5 if ir_sq else float("nan"),
    }


class TaskArithmetic:
    """ΘT in place at any α: each ``set_alpha`` makes the weights exactly ΘT + α·τ.

    Going from one α to the next restores ΘT's tensors from its checkpoint (read lazily) before adding
    α·τ, so a sequence of α values gives bit for bit the weights of a fresh merge, with no rounding
    accumulated and no second copy of the model in memory. ``tau`` may be a dict in memory (peak ≈ ΘT + τ)
    or a ``CheckpointReader`` over τ saved on disk, streamed tensor by tensor (peak ≈ ΘT).
    """

    def __init__(self, ir_model: torch.nn.Module, ir: CheckpointReader, tau: Mapping[str, torch.Tensor]):
        self.module = ir_model
        self.tau = tau
        self.alpha = 0.0
        self._parameters = dict(ir_model.named_parameters())
        self._ir = ir
        self._ir_keys = align_keys(parameter_aliases(ir_model), ir.keys()).source_for
        # Parameters whose initial value is not in ΘT's checkpoint (initialised at load) are kept in memory.
        self._kept = {name: self._parameters[name].detach().clone() for name in tau if name not in self._ir_keys}

    @torch.no_grad()
    def set_alpha(self, alpha: float) -> None:
        if alpha == self.alpha:
            return
        if self.alpha != 0:
            for name in self.tau:
                self._parameters[name].copy_(self._kept[name] if name in self._kept else self._ir[self._ir_keys[name]])
        apply_task_vector(self.module, self.tau, alpha)
        self.alpha = alpha
