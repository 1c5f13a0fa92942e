"""The keys that make Θ' and fuse it: ``alpha`` (α of each task vector, per-tensor factors on α: ``conf/alpha/``),
``merge`` (the merge method: ``conf/merge/``) and ``lam`` (λ, BM25's weight in the fusion: ``conf/lam/``).
``merge_settings`` holds what they make, as plain values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from omegaconf import MISSING

from taskvec_ir.config.checks import Choice, check_lambda, choice, finite
from taskvec_ir.config.merge_settings import DIRECTIONS, MERGE_METHODS, AlphaScale, Genome, LayerRule, MergeMethod
from taskvec_ir.errors import UserError

# merge.method: a row of MERGE_METHODS.
MergeMethodName = Choice("MergeMethodName", list(MERGE_METHODS))

# merge.direction: the task vectors themselves, or the random-direction null (τ's per-tensor norms, no direction).
Direction = Choice("Direction", list(DIRECTIONS))


@dataclass
class LayerRuleConfig:
    """The factor on α of the tensors in ``layers`` and/or whose name matches ``pattern``."""

    factor: float = MISSING
    layers: list[int] | None = None  # exact block numbers (layer 1 is not layer 10)
    pattern: str | None = None  # a regex on the IR model's parameter names


@dataclass
class ScheduleConfig:
    first: float = MISSING
    last: float = MISSING


@dataclass
class GenomeConfig:
    """α per group of blocks, separately for attention and MLP (mergekit-evolve's genome): the blocks cut into
    ``groups`` consecutive groups (the genome's granularity), a factor on α for each group's attention tensors
    (``attention``) and MLP tensors (``mlp``); embeddings, norms and heads get ``alpha.otherwise``."""

    groups: int = 2
    attention: list[float] | None = None  # one factor per group, first blocks first; null: 1.0 for every group
    mlp: list[float] | None = None

    def __post_init__(self):
        if self.groups < 1:
            raise UserError(f"alpha.genome.groups: {self.groups} must be a positive number of groups of blocks")
        for kind in ("attention", "mlp"):
            genes = getattr(self, kind)
            if genes is None:
                setattr(self, kind, [1.0] * self.groups)
            elif len(genes) != self.groups:
                raise UserError(
                    f"alpha.genome.{kind}: {len(genes)} factors for {self.groups} groups (alpha.genome.groups): "
                    "give one per group"
                )
            for k, gene in enumerate(getattr(self, kind)):
                finite(gene, f"alpha.genome.{kind}[{k}]")

    def genome(self) -> Genome:
        return Genome(tuple(self.attention), tuple(self.mlp))


@dataclass
class AlphaConfig:
    """Θ' = ΘT + value·(ΘD − Θ0): α of the domain vector (``value``; 0 is ΘT alone, 1 the whole vector, negative
    values subtract it) and of each extra one (``extra``), and per-tensor factors on every α."""

    value: float = 0.5
    extra: dict[str, float] = field(default_factory=dict)  # by name of model.extra_domains, e.g. {sre: 0.3}
    # The first rule matching a tensor gives its factor, e.g. [{layers: [0, 1], factor: 0.0}, {pattern: 'attention',
    # factor: 0.5}].
    rules: list[LayerRuleConfig] = field(default_factory=list)
    schedule: ScheduleConfig | None = None  # a factor linear over the blocks, for tensors no rule matches
    genome: GenomeConfig | None = None  # factors per group of blocks and kind, for tensors no rule matches
    otherwise: float = 1.0  # the factor of tensors no rule, schedule or genome covers: embeddings, norms, heads
    layer: int | None = None  # the block of the layer ablation configs (alpha=layer_add|layer_remove)

    def __post_init__(self):
        finite(self.value, "alpha.value")
        for name, value in self.extra.items():
            finite(value, f"alpha.extra.{name}")
        for k, rule in enumerate(self.rules):
            finite(rule.factor, f"alpha.rules[{k}].factor")
            if rule.layers is not None and any(i < 0 for i in rule.layers):
                raise UserError(f"alpha.rules[{k}].layers: {rule.layers} must be layer numbers (0, 1, ...)")
            if rule.pattern is not None:
                try:
                    re.compile(rule.pattern)
                except re.error as error:
                    raise UserError(
                        f"alpha.rules[{k}].pattern: {rule.pattern!r} is not a regular expression ({error})"
                    ) from None
        if self.schedule is not None:
            finite(self.schedule.first, "alpha.schedule.first")
            finite(self.schedule.last, "alpha.schedule.last")
            if self.genome is not None:
                raise UserError("alpha.schedule and alpha.genome both give the blocks' factors: set one of them")
        finite(self.otherwise, "alpha.otherwise")

    def scale(self) -> AlphaScale:
        rules = tuple(
            LayerRule(r.factor, tuple(r.layers) if r.layers is not None else None, r.pattern) for r in self.rules
        )
        schedule = (self.schedule.first, self.schedule.last) if self.schedule is not None else None
        genome = self.genome.genome() if self.genome is not None else None
        return AlphaScale(rules, schedule, self.otherwise, genome)


@dataclass
class LamConfig:
    """fused = value·minmax(BM25) + (1 − value)·minmax(model): **λ weights BM25**. ``value: null`` chooses λ
    from ``grid`` on the split being evaluated, from scores already computed."""

    value: float | None = 0.3
    grid: list[float] | None = None

    def __post_init__(self):
        if self.value is None and not self.grid:
            raise UserError("lam.value is null: give a value in [0, 1], or a lam.grid to choose it on the split")
        for lam in ([self.value] if self.value is not None else []) + list(self.grid or []):
            check_lambda(lam)


@dataclass
class MergeConfig:
    """How the α-weighted task vectors update ΘT: a sparsifier, then a consensus rule (a row of
    ``merge_settings.MERGE_METHODS``); task_arithmetic, ΘT + Σ αᵢ·τᵢ, is the paper's."""

    method: MergeMethodName = MergeMethodName.task_arithmetic
    density: float = 1.0  # share of each τ a sparsifier keeps (ties, dare, dare_ties, magnitude, breadcrumbs)
    gamma: float = 0.0  # breadcrumbs: share of each τ's largest entries dropped as outliers
    seed: int = 0  # the random drop of dare and dare_ties, and the noise of direction=random
    # random: each τ replaced by Gaussian noise scaled to τ's norm tensor by tensor (the random-direction null)
    direction: Direction = Direction.task_vector
    stream_task_vector: bool = False  # keep τ on disk and stream it at each α (peak memory ≈ one model)

    def __post_init__(self):
        self.method = choice(MergeMethodName, self.method, "merge.method")
        self.direction = choice(Direction, self.direction, "merge.direction")
        if not 0 < self.density <= 1:
            raise UserError(f"merge.density: {self.density} must be in (0, 1] (the share of each task vector kept)")
        if not 0 <= self.gamma < 1 or self.gamma + self.density > 1:
            raise UserError(
                f"merge.gamma: {self.gamma} must be in [0, 1) with gamma + density ≤ 1 "
                "(the share of largest entries dropped)"
            )

    def method_row(self) -> MergeMethod:
        return MergeMethod(self.method, self.density, self.seed, self.gamma, self.direction)
