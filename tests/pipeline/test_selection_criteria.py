"""The label-free criteria on hand-built runs, where the right answer is known: NQC, the ranking entropy, rank
agreement, and the stability of the ranking as α moves, alone and against the random-direction null."""

import math
import random
import statistics

import pytest

from taskvec_ir.pipeline.selection.choice import best_setting
from taskvec_ir.pipeline.selection.criteria import (
    QueryMean,
    nqc,
    query_agreement,
    query_entropy,
    query_nqc,
    query_stability,
    ranking_entropy,
    stability_against_chance,
)

from hand_runs import ranked_first


def test_nqc_is_the_spread_of_the_top_scores_in_units_of_the_corpus_samples_spread():
    """σ of the top k scores over σ of the corpus sample's scores (both population σ)."""
    assert nqc([3.0, 1.0, 2.0], [0.0, 2.0], k=2) == pytest.approx(0.5 / 1.0)  # top 3, 2: σ 0.5; sample σ 1
    # sample 1, 1, 1, 5: mean 2, variance (1 + 1 + 1 + 9) / 4 = 3
    assert nqc([3.0, 1.0, 2.0], [1.0, 1.0, 1.0, 5.0], k=3) == pytest.approx(statistics.pstdev([3, 1, 2]) / math.sqrt(3))
    scores = {"q1": {"a": 3.0, "b": 1.0, "c": 2.0}, "q2": {"a": 1.0, "b": 5.0}, "q3": {"a": 4.0}}
    corpus = {"q1": {"x": -1.0, "y": -3.0}, "q2": {"x": 1.0, "y": 1.0}, "q3": {"x": 2.0, "y": 0.0}}
    found = QueryMean.of(query_nqc(scores, corpus, k=2), len(scores))
    # q1: 0.5 / 1; q2: its sample does not spread, q3: one top score: both undefined (counted, not 0)
    assert found.value == pytest.approx(0.5) and (found.defined, found.undefined) == (1, 2)
    assert math.isnan(QueryMean.of(query_nqc({"q2": scores["q2"]}, corpus, k=2), 1).value)


@pytest.mark.parametrize(
    "top, sample",
    [
        ([2.0], [0.0, 1.0]),  # one top score: no spread to measure
        ([], [0.0, 1.0]),  # none
        ([2.0, 1.0], [0.5, 0.5, 0.5]),  # the sample's scores are all equal: no unit to measure in
        ([2.0, 1.0], [0.5]),  # one sample score
        ([2.0, 1.0], []),  # no sample (a query the sample lacks)
    ],
)
def test_nqc_is_undefined_without_two_top_scores_or_a_spread_of_the_sample(top, sample):
    assert math.isnan(nqc(top, sample, k=10))


def test_nqc_is_unchanged_by_a_positive_scale_and_an_offset_of_each_querys_scores():
    """a·s + b with a > 0 and b drawn per query moves no ranking, so it must not move NQC either."""
    rng = random.Random(0)
    scores = {f"q{i}": {f"d{j}": rng.gauss(0, 1) for j in range(15)} for i in range(6)}
    corpus = {q: {f"c{j}": rng.gauss(-1, 2) for j in range(20)} for q in scores}
    before = query_nqc(scores, corpus, k=5)
    moves = {q: (rng.uniform(0.01, 100), rng.uniform(-50, 50)) for q in scores}

    def moved(run):
        return {q: {d: moves[q][0] * s + moves[q][1] for d, s in docs.items()} for q, docs in run.items()}

    after = query_nqc(moved(scores), moved(corpus), k=5)
    assert after == pytest.approx(before, rel=1e-9) and len(before) == 6
    assert len(set(moves.values())) == 6  # the queries moved differently


def test_nqc_of_scores_shifted_by_a_constant_is_one_value():
    """The issue's example: the same scores shifted by +0, +1, +2.5 and +5 (an offset α moves, no ranking sees).
    NQC over |the sample's mean score| gave four values, one of them huge where the mean came near 0."""
    top = [1.9, 1.4, 1.1, 0.8, 0.6, 0.5, 0.45, 0.4, 0.3, 0.2]
    sample = [-2.9, -2.7, -2.6, -2.55, -2.5, -2.45, -2.4, -2.35, -2.3, -2.2]  # mean −2.495
    values = [nqc([s + shift for s in top], [s + shift for s in sample], k=10) for shift in (0.0, 1.0, 2.5, 5.0)]
    assert values == pytest.approx([statistics.pstdev(top) / statistics.pstdev(sample)] * 4, rel=1e-12)
    shifted_means = [abs(statistics.fmean(sample) + shift) for shift in (0.0, 1.0, 2.5, 5.0)]
    assert max(shifted_means) / min(shifted_means) > 400  # what the old normalisation divided by


def test_ranking_entropy_is_the_entropy_of_the_softmax_of_the_scores_standardised_by_their_own_spread():
    """Worked by hand. Two candidates 5 and 2: mean 3.5, σ 1.5, standardised ±1; at T = 1 the softmax gives
    1 / (1 + e^−2) = 0.8808 to the first, a binary entropy of 0.365334 nats; at T = 2 (±0.5): 1 / (1 + e^−1),
    0.582203 nats. Three candidates 3, 1, 2: σ √(2/3), standardised ±√1.5 and 0: softmax 0.724548, 0.062556,
    0.212896, entropy 0.736180 nats."""
    assert ranking_entropy([5.0, 2.0], temperature=1.0) == pytest.approx(0.3653338551, rel=1e-9)
    assert ranking_entropy([5.0, 2.0], temperature=2.0) == pytest.approx(0.5822031089, rel=1e-9)
    assert ranking_entropy([3.0, 1.0, 2.0], temperature=1.0) == pytest.approx(0.7361798456, rel=1e-9)
    # one candidate far above the rest commits more (lower entropy) than the same spread shared evenly
    assert ranking_entropy([10.0, 0.0, 0.0, 0.0], 1.0) < ranking_entropy([10.0, 10.0, 0.0, 0.0], 1.0)
    # a hotter softmax spreads its mass towards the uniform (log n); a colder one towards the top candidate
    scores = [3.0, 1.0, 2.0, 0.5]
    assert ranking_entropy(scores, 0.1) < ranking_entropy(scores, 1.0) < ranking_entropy(scores, 100.0) < math.log(4)
    assert ranking_entropy(scores, 100.0) == pytest.approx(math.log(4), abs=1e-4)


@pytest.mark.parametrize("scores", [[2.0], [], [0.5, 0.5, 0.5]])
def test_ranking_entropy_is_undefined_without_two_candidates_whose_scores_spread(scores):
    assert math.isnan(ranking_entropy(scores, 1.0))
    assert query_entropy({"q": dict(enumerate(scores))}, 1.0) == {}  # left out of the mean, not 0


@pytest.mark.parametrize("temperature", [0.3, 1.0, 5.0])
def test_ranking_entropy_is_unchanged_by_a_positive_scale_and_an_offset_of_each_querys_scores(temperature):
    """a·s + b with a > 0 and b drawn per query moves no ranking, so it must not move the entropy either (a
    softmax of the raw scores would: it sharpens as a grows)."""
    rng = random.Random(1)
    scores = {f"q{i}": {f"d{j}": rng.gauss(0, 1) for j in range(12)} for i in range(8)}
    moves = {q: (rng.uniform(0.01, 100), rng.uniform(-50, 50)) for q in scores}
    moved = {q: {d: moves[q][0] * s + moves[q][1] for d, s in docs.items()} for q, docs in scores.items()}
    before = query_entropy(scores, temperature)
    assert query_entropy(moved, temperature) == pytest.approx(before, rel=1e-9) and len(before) == 8
    assert len({round(h, 6) for h in before.values()}) == 8  # the queries differ: the check is not of constants


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


def rank_agreement(first, second) -> QueryMean:
    return QueryMean.of(query_agreement(first, second), len(first.keys() | second.keys()))


def stability(runs) -> dict:
    """Each α's stability averaged over the queries where it is defined (of each run's queries)."""
    return {alpha: QueryMean.of(per_query, len(runs[alpha])) for alpha, per_query in query_stability(runs).items()}


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


GRID = [0.0, 0.25, 0.5, 0.75, 1.0]


def chosen_by(curve):
    return best_setting({(alpha, 0.3): value for alpha, value in curve.items()})[0]


def test_a_monotone_trend_the_null_shares_gives_no_preference():
    """τ's rank change falls steadily with α (raw stability prefers the grid's last interior value, 0.75) and so
    does the null's, step for step: the excess is 0 at every α, and the tie rule, not the trend, picks (0.25, the
    least |α|)."""
    found = stability_against_chance(flipping_runs(GRID, [3, 2, 1, 0]), flipping_runs(GRID, [3, 2, 1, 0]))
    assert found.raw == pytest.approx({0.25: -5.0, 0.5: -3.0, 0.75: -1.0}) and found.null == found.raw
    assert chosen_by(found.raw) == 0.75
    assert all(value == 0 for per_query in found.excess.values() for value in per_query.values())
    assert chosen_by({alpha: statistics.fmean(v.values()) for alpha, v in found.excess.items()}) == 0.25
    assert len(found.queries) == len(found.asked) == 4


def test_a_stable_plateau_planted_on_the_nulls_trend_wins():
    """Of 8 queries, the null flips 2, 3, 4, 5 per step of 0.25 (its change per unit α grows: 2, 3, 4, 5); τ flips
    2, 2, 3, 5: the same trend, one flip fewer on either side of α = 0.5. Raw stability −2, −2.5, −4 follows the
    trend to 0.25; against the null's −2.5, −3.5, −4.5 the excess is 0.5, 1.0, 0.5: the plateau at 0.5 wins."""
    found = stability_against_chance(flipping_runs(GRID, [2, 2, 3, 5], 8), flipping_runs(GRID, [2, 3, 4, 5], 8))
    assert found.raw == pytest.approx({0.25: -2.0, 0.5: -2.5, 0.75: -4.0})
    assert found.null == pytest.approx({0.25: -2.5, 0.5: -3.5, 0.75: -4.5})
    excess = {alpha: statistics.fmean(v.values()) for alpha, v in found.excess.items()}
    assert excess == pytest.approx({0.25: 0.5, 0.5: 1.0, 0.75: 0.5})
    assert chosen_by(found.raw) == 0.25 and chosen_by(excess) == 0.5


def test_every_alpha_is_averaged_over_the_queries_defined_at_every_alpha_for_both():
    """q0 flips at every step (stability −8 per unit α at every α), q1–q3 never do; the null never changes. τ is
    undefined for q3 between 0.75 and 1 (its scores at 1 are constant), the null's for q2 between 0 and 0.25.
    Every query is as stable at every α, yet stability alone averages α = 0.5 over four queries (−2) and α = 0.75
    over three (−8/3), a preference made by the query set; against chance every α is averaged over q0 and q1 (−4),
    and q2, q3 are counted as asked."""
    runs, null_runs = flipping_runs(GRID, [1, 1, 1, 1]), flipping_runs(GRID, [0, 0, 0, 0])
    runs = {alpha: dict(run) for alpha, run in runs.items()}
    runs[1.0]["q3"] = dict.fromkeys(runs[1.0]["q3"], 1.0)
    null_runs = {alpha: dict(run) for alpha, run in null_runs.items()}
    null_runs[0.0]["q2"] = dict.fromkeys(null_runs[0.0]["q2"], 1.0)
    alone = stability(runs)
    assert alone[0.5].value == pytest.approx(-2.0) and alone[0.75].value == pytest.approx(-8 / 3)
    found = stability_against_chance(runs, null_runs)
    assert found.queries == ("q0", "q1") and found.asked == ("q0", "q1", "q2", "q3")
    assert all(set(per_query) == {"q0", "q1"} for per_query in found.excess.values())
    assert found.raw == pytest.approx(dict.fromkeys((0.25, 0.5, 0.75), -4.0))
    assert found.null == pytest.approx(dict.fromkeys((0.25, 0.5, 0.75), 0.0))
