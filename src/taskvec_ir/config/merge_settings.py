"""What Θ' is, as plain data: the α of each task vector, per-tensor factors on α, and the merge method.

These values name a set of weights (cache keys, logs, W&B) without touching a tensor, so this module
imports no model library; ``taskvec_ir.models.merging`` applies them to weights.

A merge method is a row of ``MERGE_METHODS``: a *sparsifier* applied to each task vector τᵢ, then a
*consensus rule* combining the α-weighted results wᵢ·sparse(τᵢ) into one update of ΘT:

- sparsifiers: ``none``; ``magnitude`` (keep the ``density`` share of entries largest in magnitude);
  ``random`` (keep each entry with probability ``density``, divide the kept ones by it: DARE's drop and
  rescale, Yu et al., 2024); ``breadcrumbs`` (drop the ``gamma`` share largest in magnitude, then the
  smallest, keeping ``density``: Model Breadcrumbs, Davari and Belilovsky, 2024);
- consensus rules: ``sum`` (Σ wᵢ·sparse(τᵢ)); ``sign_mean`` (elect each entry's sign by that sum, then average
  the weighted entries that agree with it: TIES' disjoint mean, Yadav et al., 2023).

The task vectors merged are τ itself (direction ``task_vector``) or the random-direction null (``random``): each
τ replaced by Gaussian noise with τ's per-tensor norms, drawn from the seed, a vector that moves ΘT as far as τ,
tensor by tensor, in no direction the domain chose (docs/selection.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from taskvec_ir.config.tensor_groups import ATTENTION, block_groups, layer_index
from taskvec_ir.errors import UserError

# name -> (sparsifier, consensus rule)
MERGE_METHODS: dict[str, tuple[str, str]] = {
    "task_arithmetic": ("none", "sum"),  # the paper: ΘT + Σ αᵢ·τᵢ
    "magnitude": ("magnitude", "sum"),
    "dare": ("random", "sum"),
    "ties": ("magnitude", "sign_mean"),
    "dare_ties": ("random", "sign_mean"),
    "breadcrumbs": ("breadcrumbs", "sum"),
}

TASK_VECTOR, RANDOM = "task_vector", "random"
DIRECTIONS = (TASK_VECTOR, RANDOM)  # merge.direction: τ itself, or the random-direction null


@dataclass(frozen=True)
class LayerRule:
    """Tensors in ``layers`` (exact block indices) and/or whose name contains ``pattern`` (a regex) get ``factor``."""

    factor: float
    layers: tuple[int, ...] | None = None
    pattern: str | None = None

    def matches(self, name: str) -> bool:
        if self.layers is not None and layer_index(name) not in self.layers:
            return False
        return self.pattern is None or re.search(self.pattern, name) is not None


@dataclass(frozen=True)
class Genome:
    """A layer-group genome (mergekit-evolve's): the blocks cut into ``len(attention)`` groups
    (``tensor_groups.block_groups``), each group's attention tensors with factor ``attention[g]`` and its MLP
    tensors with ``mlp[g]``; the other tensors (embeddings, norms, heads) are left to ``AlphaScale.otherwise``."""

    attention: tuple[float, ...]
    mlp: tuple[float, ...]

    def factors(self, names: Iterable[str]) -> dict[str, float]:
        """The factor of each attention and MLP tensor of ``names`` (the others are not in the mapping)."""
        placed = block_groups(names, len(self.attention))
        return {
            name: (self.attention if kind == ATTENTION else self.mlp)[group]
            for name, (kind, group) in placed.items()
            if group is not None
        }


@dataclass(frozen=True)
class AlphaScale:
    """A per-tensor factor on every α: the first rule matching a tensor gives it; else, for tensors inside a
    block, the ``genome``'s factor of its group and kind, or the linear ``schedule`` (factor at the first and at
    the last block); else ``otherwise``."""

    rules: tuple[LayerRule, ...] = ()
    schedule: tuple[float, float] | None = None
    otherwise: float = 1.0
    genome: Genome | None = None

    @property
    def uniform(self) -> bool:
        return not self.rules and self.schedule is None and self.genome is None and self.otherwise == 1.0

    def check(self, names: Iterable[str], patterns: bool = True) -> None:
        """Refuse a rule naming a layer the model (``names``: its parameter names) does not have, or, with
        ``patterns``, matching none of its parameters (a misspelt pattern)."""
        names = list(names)
        layers = sorted({i for name in names if (i := layer_index(name)) is not None})
        for k, rule in enumerate(self.rules):
            missing = sorted(set(rule.layers or ()) - set(layers))
            if missing:
                have = f"layers {layers[0]}–{layers[-1]}" if layers else "no numbered layers"
                raise UserError(f"alpha.rules[{k}].layers: {missing} not in the IR model (it has {have})")
            if patterns and not any(rule.matches(name) for name in names):
                raise UserError(f"alpha.rules[{k}]: {rule} matches no parameter of the IR model")
        if self.genome is not None:
            self.genome.factors(names)  # a model without blocks, or with fewer blocks than groups, is refused

    def factors(self, names: Iterable[str]) -> dict[str, float]:
        """The factor of each of the IR model's tensors (``check``-ed first, before any weight changes)."""
        names = list(names)
        self.check(names)
        layers = sorted({i for name in names if (i := layer_index(name)) is not None})
        genes = self.genome.factors(names) if self.genome is not None else {}

        def factor(name: str) -> float:
            for rule in self.rules:
                if rule.matches(name):
                    return rule.factor
            if name in genes:
                return genes[name]
            index = layer_index(name)
            if self.schedule is not None and index is not None:
                first, last = self.schedule
                return first + (last - first) * layers.index(index) / max(1, len(layers) - 1)
            return self.otherwise

        return {name: factor(name) for name in names}


@dataclass(frozen=True)
class MergeMethod:
    """A row of ``MERGE_METHODS`` with its settings: ``density`` (share of each τ a sparsifier keeps),
    ``gamma`` (breadcrumbs: share of largest entries dropped), ``direction`` (what is merged: τ, or the
    random-direction null) and ``seed`` (the random drop mask, and the null's noise, each drawn per tensor from it
    and the vector's and the tensor's names, whatever order tensors are read in)."""

    name: str = "task_arithmetic"
    density: float = 1.0
    seed: int = 0
    gamma: float = 0.0
    direction: str = TASK_VECTOR

    @property
    def null(self) -> MergeMethod:
        """This method merging the random-direction null instead of τ: drawn from ``seed``, or, where this method
        merges a null already, from ``seed + 1`` (another draw: a null read against itself would show nothing)."""
        seed = self.seed + 1 if self.direction == RANDOM else self.seed
        return replace(self, direction=RANDOM, seed=seed)

    @property
    def sparsifier(self) -> str:
        return MERGE_METHODS[self.name][0]

    @property
    def consensus(self) -> str:
        return MERGE_METHODS[self.name][1]

    def identity(self) -> dict:
        """The settings that change the merge (part of a cache key, and what is logged)."""
        described: dict = {"method": self.name}
        if self.sparsifier != "none":
            described["density"] = self.density
        if self.sparsifier == "random" or self.direction == RANDOM:
            described["seed"] = self.seed
        if self.sparsifier == "breadcrumbs":
            described["gamma"] = self.gamma
        if self.direction == RANDOM:  # τ's own setting names no direction: its cache keys stay what they were
            described["direction"] = RANDOM
        return described


@dataclass(frozen=True)
class MergeSetting:
    """What Θ' is: the α of each named task vector, the merge method and the per-tensor factors."""

    alphas: tuple[tuple[str, float], ...] = ()
    method: MergeMethod = MergeMethod()
    scale: AlphaScale = AlphaScale()

    def normalized(self) -> MergeSetting:
        """The same weights under one name: vectors at α = 0 dropped, and ΘT alone (no vector left) plain."""
        active = tuple((vector, alpha) for vector, alpha in self.alphas if alpha != 0)
        return replace(self, alphas=active) if active else MergeSetting()

    def at(self, alpha: float) -> MergeSetting:
        """This setting with every vector at ``alpha`` (the untuned α = 1 of a sweep's report)."""
        return replace(self, alphas=tuple((vector, alpha) for vector, _ in self.alphas))

    def identity(self) -> dict:
        """What Θ' is (part of a cache key, and what is logged): one name for the same weights."""
        setting = self.normalized()
        described = {"alphas": dict(setting.alphas), **setting.method.identity()}
        if not setting.scale.uniform:
            scale = asdict(setting.scale)
            if scale["genome"] is None:  # the settings before genomes keep their names (and cache keys)
                del scale["genome"]
            described["scale"] = scale
        return described
