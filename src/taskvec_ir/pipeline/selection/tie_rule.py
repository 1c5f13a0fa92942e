"""The one rule that picks the best of several settings, for every choice that has ties: a selection's
(``choice.best_setting``), its bootstrap's reruns, λ on a grid (``Pipeline.tune_lambda``) and a sweep's best trial
(``runs.sweeping.trials.best_trial``). Why it is this rule: docs/selection.md ("Undefined values and ties")."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from typing import TypeVar

Key = TypeVar("Key", bound=Hashable)
# Values this close are equal: the same mean summed in another order differs in the last bits.
TIE = 1e-12


def best(candidates: Iterable[tuple[Key, float, Sequence[float], float | None]]) -> Key | None:
    """The key of the best of ``candidates`` (key, value, its α values, its λ), higher values better: of the values
    within ``TIE`` of the highest, the smallest change to ΘT (the least Σ|α|), then the smallest λ (None, no
    fusion, before every λ and equal among themselves), then the α values in ascending order, then the first
    given (a sweep gives its trials by number). A NaN value (undefined) never wins; None when every one is."""
    defined = [c for c in candidates if not math.isnan(c[1])]
    if not defined:
        return None
    top = max(value for _, value, _, _ in defined)

    def rank(candidate):
        _, _, alphas, lam = candidate
        return sum(abs(a) for a in alphas), lam is not None, lam or 0.0, tuple(alphas)

    return min((c for c in defined if top - c[1] <= TIE), key=rank)[0]
