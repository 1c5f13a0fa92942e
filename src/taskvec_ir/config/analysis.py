"""The ``analyses`` a job runs after its evaluation, on its evaluated split, and their settings (``analysis``;
``taskvec_ir.pipeline.analyses``).
"""

from __future__ import annotations

from dataclasses import dataclass

from taskvec_ir.config.checks import Choice, check_lambda, finite, positive
from taskvec_ir.config.merge import LamConfig
from taskvec_ir.config.selection import SelectionConfig
from taskvec_ir.errors import UserError

DEFAULT_DEPTHS = (10, 20, 50, 100)  # analysis.depths: those at most retriever.top_k, and top_k itself


# An entry of analyses: the per-query α response (and oracle α), the metric over re-ranking depth × α × λ with its
# cost, or (retriever=dense) τ's effect dense, re-ranking BM25's top k with the model alone, and fused.
Analysis = Choice("Analysis", ["alpha_response", "depth", "effect_split"])


@dataclass
class AnalysisConfig:
    """Settings of the analyses a job runs after its evaluation (``analyses``)."""

    alphas: list[float] | None = None  # the α grid both analyses read (None: selection.alphas); α = 0 always added
    depths: list[int] | None = None  # depth: re-ranking depths k (None: DEFAULT_DEPTHS up to top_k); top_k added
    # depth: λ values of the surface (None: lam.grid), the job's λ always added; effect_split: the λ values fused at
    # (None: lam.value, or lam.grid where it is null)
    lams: list[float] | None = None
    top_queries: int = 10  # alpha_response: the queries with the largest positive (and negative) Δ listed
    unchanged_within: float = 1e-9  # alpha_response: |Δ| at most this is "unchanged" (floating-point noise)
    timing_queries: int = 2  # depth: queries whose candidates are scored once more to time each depth (0: none)

    def __post_init__(self):
        for alpha in self.alphas or []:
            finite(alpha, "analysis.alphas")
        for lam in self.lams or []:
            check_lambda(lam)
        for depth in self.depths or []:
            positive(depth, "analysis.depths")
        positive(self.top_queries, "analysis.top_queries")
        if not 0 <= self.unchanged_within < 1:
            raise UserError(f"analysis.unchanged_within: {self.unchanged_within!r} must be in [0, 1)")
        if self.timing_queries < 0:
            raise UserError(f"analysis.timing_queries: {self.timing_queries} must be 0 (no timing) or more")

    def grid(self, selection: SelectionConfig) -> list[float]:
        """The α values the analyses read, α = 0 (ΘT) among them."""
        return sorted({0.0, *map(float, self.alphas if self.alphas is not None else selection.alphas)})

    def fused_lambdas(self, lam: LamConfig) -> list[float]:
        """effect_split's λ values: ``lams``, else ``lam.value``, else ``lam.grid``."""
        if self.lams is not None:
            return list(self.lams)
        return [lam.value] if lam.value is not None else list(lam.grid or [])

    def depth_values(self, top_k: int) -> list[int]:
        """The depths of the surface: the configured ones (or the defaults up to ``top_k``), and ``top_k``."""
        depths = self.depths if self.depths is not None else [d for d in DEFAULT_DEPTHS if d <= top_k]
        return sorted({*depths, top_k})
