"""The ``selection`` key (``conf/selection/``): how a job chooses α and λ itself before its one evaluation, the
pseudo-queries a label-free selection may choose on, and the bootstrap that says how sure a choice is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from taskvec_ir.config.checks import Choice, check_lambda, choice, finite, positive
from taskvec_ir.config.merge import LamConfig
from taskvec_ir.config.model import PairSource
from taskvec_ir.errors import UserError

# selection.method (taskvec_ir.pipeline.selection); a table's cells also choose on dev.
SelectionMethod = Choice("SelectionMethod", ["cross_validation", "pseudo_queries", "stability", "nqc", "entropy"])

# selection.pseudo_queries.source: a pair source of inverse_cloze, or auto (the source the corpus's documents give).
PseudoQuerySource = Choice("PseudoQuerySource", ["auto", *PairSource])


@dataclass
class PseudoQueriesConfig:
    source: PseudoQuerySource = PseudoQuerySource.auto  # what of a document is its query
    count: int = 200  # pseudo-queries drawn from the corpus
    seed: int = 42

    def __post_init__(self):
        self.source = choice(PseudoQuerySource, self.source, "selection.pseudo_queries.source")
        positive(self.count, "selection.pseudo_queries.count")


@dataclass
class BootstrapConfig:
    """How sure a selection is: its choice rerun on ``resamples`` bootstrap resamples of the queries it chose on,
    each evaluated on the test split (``taskvec_ir.pipeline.bootstrap``); 0: off."""

    resamples: int = 0  # resamples drawn with replacement (0: no bootstrap)
    seed: int = 0  # the resamples' draws
    confidence: float = 0.95  # the regret's percentile interval

    def __post_init__(self):
        if self.resamples < 0:
            raise UserError(f"selection.bootstrap.resamples: {self.resamples} must be 0 (off) or positive")
        if not 0 < self.confidence < 1:
            raise UserError(f"selection.bootstrap.confidence: {self.confidence!r} must be in (0, 1), e.g. 0.95")


@dataclass
class SelectionConfig:
    """α and λ chosen by the job itself, from ``alphas`` × ``lam.grid``, before its one evaluation of ``split``;
    ``method: null`` (the default): α and λ as given. A table's cells all choose from ``alphas``."""

    method: SelectionMethod | None = None
    alphas: list[float] = field(default_factory=lambda: [round(0.1 * i, 1) for i in range(11)])
    queries: str = "dev"  # label-free: this split's queries, unlabeled (the evaluated split's where there is none)
    folds: int = 5  # cross_validation: folds of the evaluated split's queries
    seed: int = 42  # cross_validation: the queries' assignment to folds; nqc: its corpus sample
    pseudo_queries: PseudoQueriesConfig = field(default_factory=PseudoQueriesConfig)
    # stability, nqc and entropy: the λ they fuse with (they cannot choose it): lam.value's default
    lam: float = LamConfig.value
    nqc_k: int = 10  # nqc: the top scores whose spread predicts a query's performance
    nqc_corpus_sample: int = 20  # nqc: corpus documents whose scores' spread a query's top scores are measured in
    # entropy: the softmax's temperature, in units of each query's own score σ (1: the standardised scores as they are)
    entropy_temperature: float = 1.0
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)  # selections and a sweep's final evaluation

    def __post_init__(self):
        if self.method is not None:
            self.method = choice(SelectionMethod, self.method, "selection.method")
        if not self.alphas:
            raise UserError("selection.alphas: give the α values to choose from (e.g. [0.0, 0.1, ..., 1.0])")
        for alpha in self.alphas:
            finite(alpha, "selection.alphas")
        if self.method == SelectionMethod.cross_validation and self.folds < 2:
            raise UserError(f"selection.folds: {self.folds} must be at least 2")
        check_lambda(self.lam)
        positive(self.nqc_k, "selection.nqc_k")
        positive(self.nqc_corpus_sample, "selection.nqc_corpus_sample")
        positive(finite(self.entropy_temperature, "selection.entropy_temperature"), "selection.entropy_temperature")
