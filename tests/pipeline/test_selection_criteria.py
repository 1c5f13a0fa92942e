"""The label-free criteria on hand-built runs, where the right answer is known: NQC, rank agreement, and the
stability of the ranking as α moves."""

import math
import statistics

import pytest

from taskvec_ir.pipeline.selection.choice import best_setting
from taskvec_ir.pipeline.selection.criteria import mean_nqc, nqc, rank_agreement, stability

from hand_runs import ranked_first


def test_nqc_is_the_spread_of_the_top_scores_over_the_corpus_score():
    """Shtok et al.: std of the top k scores over |the corpus's score| (here the mean score of a corpus sample)."""
    assert nqc([3.0, 1.0, 2.0], corpus_score=-2.0, k=2) == pytest.approx(0.5 / 2)  # top 3, 2
    assert nqc([3.0, 1.0, 2.0], corpus_score=0.5, k=3) == pytest.approx(statistics.pstdev([3, 1, 2]) / 0.5)
    assert math.isnan(nqc([1.0, 2.0], corpus_score=0.0, k=2))  # no corpus score to normalise by
    scores = {"q1": {"a": 3.0, "b": 1.0, "c": 2.0}, "q2": {"a": 1.0, "b": 5.0}, "q3": {"a": 4.0}}
    corpus = {"q1": {"x": -1.0, "y": -3.0}, "q2": {"x": 1.0, "y": -1.0}, "q3": {"x": 2.0}}
    found = mean_nqc(scores, corpus, k=2)
    # q1: 0.5 / |−2|; q2: its corpus score is 0, undefined (counted, not 0); q3: one score, spread 0, over 2.
    assert found.value == pytest.approx((0.25 + 0.0) / 2) and (found.defined, found.undefined) == (2, 1)
    assert math.isnan(mean_nqc({"q2": scores["q2"]}, corpus, k=2).value)


def flipping_runs(alphas, flips, queries=4):
    """Runs at ``alphas`` whose step from ``alphas[j]`` to ``alphas[j + 1]`` reverses the ranking of ``flips[j]``
    of the ``queries`` queries (τ = −1 for them, 1 for the others): a rank change (1 − τ) of 2·flips[j]/queries."""
    forward = {f"q{i}": ranked_first("r") for i in range(queries)}
    runs = {alphas[0]: forward}
    for j, flipped in enumerate(flips):
        previous = runs[alphas[j]]
        runs[alphas[j + 1]] = {
            q: {d: -s for d, s in scores.items()} if i < flipped else scores
            for i, (q, scores) in enumerate(previous.items())
        }
    return runs


def test_rank_agreement_is_weighted_tau_and_undefined_queries_are_counted_not_agreeing():
    docs = ("r", "a", "b", "c")
    forward = {"q1": ranked_first("r", docs), "q2": ranked_first("a", docs)}
    backward = {q: {d: -s for d, s in scores.items()} for q, scores in forward.items()}
    assert rank_agreement(forward, forward).value == pytest.approx(1.0)
    assert rank_agreement(forward, backward).value == pytest.approx(-1.0)
    single = {"q3": {"r": 1.0}, "q4": {"r": 1.0, "a": 1.0}}  # one document; constant scores: no τ
    mixed = rank_agreement({**forward, **single}, {**backward, **single})
    assert mixed.value == pytest.approx(-1.0) and (mixed.defined, mixed.undefined) == (2, 2)
    assert math.isnan(rank_agreement(single, single).value)  # not 1.0: nothing agreed


@pytest.mark.parametrize(
    "alphas, flips, expected, chosen",
    [
        # Rank change falls steadily with α (3, 2, 1, 0 of 4 queries flip per 0.25 step): per unit α, 6, 4, 2, 0.
        # The old mean of raw agreements gave the end α = 1 (one pair, τ = 1) a score no interior value could
        # reach; each interior value now averages its two sides: −(6+4)/2, −(4+2)/2, −(2+0)/2.
        ([0.0, 0.25, 0.5, 0.75, 1.0], [3, 2, 1, 0], {0.25: -5.0, 0.5: -3.0, 0.75: -1.0}, 0.75),
        # Rising: the mirror image, α = 0.25 (the old method chose the end α = 0).
        ([0.0, 0.25, 0.5, 0.75, 1.0], [0, 1, 2, 3], {0.25: -1.0, 0.5: -3.0, 0.75: -5.0}, 0.25),
        # An interior plateau between changes at both ends: α = 0.5 changes on neither side.
        ([0.0, 0.25, 0.5, 0.75, 1.0], [2, 0, 0, 2], {0.25: -2.0, 0.5: 0.0, 0.75: -2.0}, 0.5),
        # Uneven grid (gaps 0.1, 0.4, 0.5), 1, 2, 2 of 4 queries flip: changes 0.5, 1 and 1, per unit α 5, 2.5,
        # 2. Per unit α, α = 0.5 is the steadier (−2.25 against −3.75); raw change per step would have preferred
        # 0.1 (−0.75 against −1), only because its gap to 0 is narrow.
        ([0.0, 0.1, 0.5, 1.0], [1, 2, 2], {0.1: -3.75, 0.5: -2.25}, 0.5),
    ],
    ids=["falling", "rising", "interior_plateau", "uneven_grid"],
)
def test_stability_compares_alphas_with_two_neighbours_per_unit_alpha(alphas, flips, expected, chosen):
    values = stability(flipping_runs(alphas, flips))
    assert {alpha: value.value for alpha, value in values.items()} == pytest.approx(expected)
    assert all(value.undefined == 0 for value in values.values())
    assert best_setting({(a, 0.3): v.value for a, v in values.items()}) == (chosen, 0.3)


def test_stability_needs_three_alphas():
    with pytest.raises(ValueError, match="three or more"):
        stability(flipping_runs([0.0, 1.0], [1]))
