"""The paper's fusion recomputed in numpy, independently of taskvec_ir.ir.fusion: what the analyses' tests check
their fused runs against."""

import numpy as np


def minmax_fused(candidates, scores, lam):
    """λ·minmax(BM25) + (1 − λ)·minmax(model) per query."""
    found = {}
    for q, docs in candidates.items():
        ids = list(docs)
        parts = []
        for values in (np.array([docs[d] for d in ids]), np.array([scores[q][d] for d in ids])):
            parts.append((values - values.min()) / max(values.max() - values.min(), 1e-9))
        found[q] = dict(zip(ids, lam * parts[0] + (1 - lam) * parts[1], strict=True))
    return found
