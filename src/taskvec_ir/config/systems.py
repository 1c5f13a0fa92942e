"""The systems a results table compares, defined once: their names in configs, files and W&B, their headings,
and the mark a significant difference to each carries.

A *system* is what one row of a results table evaluates (``taskvec_ir.pipeline.model_scores.system_weights``):
- ``bm25``: the first stage alone;
- ``ir_model``: ΘT alone (α = 0), fused with BM25 by λ like every model system;
- ``task_arithmetic``: Θ' = ΘT + α·τ at the configured merge setting;
- ``alpha_one``: the untuned α = 1 (same method and factors);
- ``domain_model``: ΘD alone (bi-encoders only: any encoder checkpoint can embed text).
They are ``str`` values, so configs, JSON files and dict keys hold the plain names.
"""

from __future__ import annotations

from taskvec_ir.config.checks import Choice


class System(Choice):
    """An entry of ``systems``."""

    bm25 = "bm25"
    ir_model = "ir_model"
    task_arithmetic = "task_arithmetic"
    alpha_one = "alpha_one"
    domain_model = "domain_model"

    @property
    def heading(self) -> str:
        return HEADINGS[self]


BM25, IR_MODEL, TASK_ARITHMETIC, ALPHA_ONE, DOMAIN_MODEL = System
HEADINGS = {BM25: "BM25", IR_MODEL: "ΘT", TASK_ARITHMETIC: "TA", ALPHA_ONE: "α=1", DOMAIN_MODEL: "ΘD"}
# A value of task arithmetic significantly different from a baseline's carries that baseline's mark.
MARKS = {IR_MODEL: "†", BM25: "‡", ALPHA_ONE: "§", DOMAIN_MODEL: "¶"}
# The paper's order of a results table's systems.
PAPER_ORDER = (BM25, IR_MODEL, ALPHA_ONE, TASK_ARITHMETIC)
MERGED = frozenset({TASK_ARITHMETIC, ALPHA_ONE})  # the systems that score with a merged ΘT
