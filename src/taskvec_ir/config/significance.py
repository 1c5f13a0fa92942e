"""The ``significance`` key: how a sweep's report and a table of cells test a system against its baselines, per
query of the test split (``taskvec_ir.reporting.significance``).
"""

from __future__ import annotations

from dataclasses import dataclass

from taskvec_ir.config.checks import Choice, choice, positive

# significance.test: the paired t-test (the paper's), or Fisher's paired randomization test.
SignificanceTest = Choice("SignificanceTest", ["t_test", "randomization"])

# significance.correction: Bonferroni over a value's baselines (the paper's), or Holm over each table cell's tests
# of a measure (docs/tables.md).
Correction = Choice("Correction", ["bonferroni", "holm"])


@dataclass
class SignificanceConfig:
    test: SignificanceTest = SignificanceTest.t_test
    correction: Correction = Correction.bonferroni
    permutations: int = 10000  # randomization: sign flips per test, at least (raised for larger families)
    seed: int = 0  # randomization: the sign flips' seed

    def __post_init__(self):
        self.test = choice(SignificanceTest, self.test, "significance.test")
        self.correction = choice(Correction, self.correction, "significance.correction")
        positive(self.permutations, "significance.permutations")
