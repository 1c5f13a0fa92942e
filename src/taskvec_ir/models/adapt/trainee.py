"""What an objective provides the training loop (a ``Trainee``), and how a step's batch is drawn: a function of
(seed, step) alone, so that a resumed run sees the very batches an uninterrupted one would."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from taskvec_ir.config.model import AdaptConfig
from taskvec_ir.ir.documents import join_fields


def batch_indices(step: int, documents: int, batch_size: int, seed: int) -> list[int]:
    """Which documents make up the batch of ``step``: epochs of seeded permutations, read in order.

    A pure function of its arguments, so a resumed run sees the very batches an uninterrupted one would.
    """
    positions = range(step * batch_size, (step + 1) * batch_size)
    permutations: dict[int, np.ndarray] = {}
    chosen = []
    for position in positions:
        epoch = position // documents
        if epoch not in permutations:
            permutations[epoch] = np.random.default_rng([seed, epoch]).permutation(documents)
        chosen.append(int(permutations[epoch][position % documents]))
    return chosen


def distinct_batch_indices(step: int, examples: int, batch_size: int, seed: int) -> list[int]:
    """As ``batch_indices``, but a batch never repeats an example: each epoch is a seeded permutation cut
    into whole batches, its last ``examples % batch_size`` left out (a batch spanning two epochs could hold
    one example twice). Needs ``batch_size <= examples``."""
    per_epoch = examples // batch_size
    epoch, index = divmod(step, per_epoch)
    permutation = np.random.default_rng([seed, epoch]).permutation(examples)
    return [int(i) for i in permutation[index * batch_size : (index + 1) * batch_size]]


class Trainee(ABC):
    """A start checkpoint set up for one objective: what is trained, how a batch's loss is computed."""

    module: torch.nn.Module  # every trained parameter (the optimiser's, and the saved state's)
    details: dict  # objective facts worth recording in provenance.json

    def examples(self, documents: list[Mapping[str, str]], settings: AdaptConfig) -> list:
        """What a batch is drawn from (``documents``: the corpus sample; for supervised, the judged pairs): by
        default each document's text, its fields joined as BM25 reads them."""
        return [join_fields(parts) for parts in documents]

    def batch(self, examples: list, step: int, settings: AdaptConfig) -> list:
        """The examples of ``step``: a function of (seed, step) alone, so that a resumed run sees the same."""
        return [examples[i] for i in batch_indices(step, len(examples), settings.batch_size, settings.seed)]

    @abstractmethod
    def loss(self, texts: list, rng: np.random.Generator) -> torch.Tensor:
        """The objective's loss on a batch; random draws come from ``rng`` or torch's seeded generator."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the trained model in the start checkpoint's layout."""
