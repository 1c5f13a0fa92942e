"""A choice's rule: the best setting wins; ties (values within 1e-12) go to the least |α|, then the smaller λ, then
the smaller α; an undefined value never wins."""

import math

import pytest

from taskvec_ir.pipeline.selection.choice import Choice, Fold, best_setting, combine_folds


def test_an_undefined_criterion_never_wins_and_undefined_everywhere_is_an_error():
    assert best_setting({(0.0, 0.3): math.nan, (0.5, 0.3): -2.0}) == (0.5, 0.3)
    with pytest.raises(ValueError, match="undefined at every setting"):
        best_setting({(0.0, 0.3): math.nan, (0.5, 0.3): math.nan})


def test_ties_go_to_the_least_change_to_theta_t_then_the_smaller_lambda_then_the_smaller_alpha():
    assert best_setting({(-0.5, 0.3): 1.0, (0.0, 0.3): 1.0, (0.5, 0.3): 1.0}) == (0.0, 0.3)  # not −0.5
    assert best_setting({(0.5, 0.3): 1.0, (-0.5, 0.3): 1.0}) == (-0.5, 0.3)  # equal |α|: the smaller α
    assert best_setting({(0.5, 0.2): 1.0, (0.2, 0.9): 1.0, (0.2, 0.4): 1.0, (0.9, 0.0): 0.5}) == (0.2, 0.4)
    assert best_setting({(0.5, 0.2): 1.0, (-0.2, 0.9): 1.0}) == (-0.2, 0.9)  # |α| before λ
    assert best_setting({(0.5, None): 1.0, (0.0, None): 1.0}) == (0.0, None)  # no fusion: λ plays no part


def test_values_within_1e_12_tie_and_further_apart_do_not():
    # the same mean summed in another order differs in the last bits: not a reason to prefer a larger α
    summed = sum([0.1] * 10)  # 0.9999999999999999
    assert summed != 1.0 and best_setting({(0.5, 0.3): 1.0, (0.0, 0.3): summed}) == (0.0, 0.3)
    assert best_setting({(0.5, 0.3): 1.0, (0.0, 0.3): 1.0 - 9e-13}) == (0.0, 0.3)
    assert best_setting({(0.5, 0.3): 1.0, (0.0, 0.3): 1.0 - 2e-12}) == (0.5, 0.3)


def test_folds_that_agree_make_one_setting_and_each_fold_runs_its_own_queries():
    same = Choice("nqc", "c", [Fold(("q1",), 0.5, 0.3), Fold(("q2",), 0.5, 0.3)], [])
    assert (same.alpha, same.lam, same.settings_text()) == (0.5, 0.3, "α=0.5 · λ=0.3")
    runs = [{"q1": {"d": 1.0}, "q2": {"d": 2.0}}, {"q1": {"d": 3.0}, "q2": {"d": 4.0}}]
    assert combine_folds(same.folds, runs) == {"q1": {"d": 1.0}, "q2": {"d": 4.0}}
    assert combine_folds([Fold(None, 0.5, 0.3)], runs[:1]) == runs[0]
    dense = Choice("nqc", "c", [Fold(None, 0.5, None)], [], details={"x": 1})
    assert dense.settings_text() == "α=0.5 · no fusion" and dense.describe()["x"] == 1
