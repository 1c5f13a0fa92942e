"""A sweep's search space from Hydra's override grammar: each sweep kind becomes the Optuna dimension it means."""

import optuna
import pytest

from taskvec_ir.errors import UserError
from taskvec_ir.runs.search_space import Dimension, list_elements, search_space


def test_each_sweep_kind_is_the_dimension_it_names():
    dimensions, fixed = search_space(
        [
            "alpha.value=interval(0.1, 0.9)",
            "retriever.top_k=int(interval(10, 100))",  # Hydra's interval is a float unless cast
            "model.scorer.batch_size=int(tag(log, interval(1, 64)))",
            "lam.value=choice(0.2, 0.5)",
            "merge.seed=range(1, 7, 2)",
            "alpha.extra.b=range(0, 0.3, 0.1)",
            "dataset=cranfield",
        ]
    )
    assert dimensions["alpha.value"] == Dimension("float", low=0.1, high=0.9)
    assert dimensions["retriever.top_k"] == Dimension("int", low=10, high=100)
    assert dimensions["model.scorer.batch_size"] == Dimension("int", low=1, high=64, log=True)
    assert dimensions["lam.value"] == Dimension("categorical", choices=(0.2, 0.5))
    assert dimensions["merge.seed"] == Dimension("int", low=1, high=5, step=2)  # range excludes its end
    # A float range is Hydra's accumulated steps, rounded: no 0.30000000000000004, and 0.3 excluded.
    assert dimensions["alpha.extra.b"] == Dimension("categorical", choices=(0.0, 0.1, 0.2))
    assert fixed == {"dataset": "cranfield"}


def test_a_later_override_of_a_key_replaces_an_earlier_one():
    dimensions, fixed = search_space(
        ["alpha.value=interval(0, 1)", "alpha.value=0.3", "lam.value=0.5", "lam.value=1,0"]
    )
    assert dimensions == {"lam.value": Dimension("categorical", choices=(1, 0))}
    assert fixed == {"alpha.value": "0.3"}


def test_grids_and_suggestions_stay_within_the_dimension():
    assert Dimension("int", low=1, high=5, step=2).grid() == [1, 3, 5]
    assert Dimension("float", low=0.0, high=0.3, step=0.1).grid() == [0.0, 0.1, 0.2, 0.3]
    assert Dimension("categorical", choices=("a", "b")).grid() == ["a", "b"]
    with pytest.raises(UserError, match="a grid sampler needs finite choices"):
        Dimension("float", low=0.0, high=1.0).grid()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(20):
        trial = study.ask()
        assert 0.1 <= Dimension("float", low=0.1, high=0.9).suggest(trial, "a") <= 0.9
        assert Dimension("int", low=1, high=5, step=2).suggest(trial, "k") in (1, 3, 5)
        assert Dimension("categorical", choices=(0.2, 0.5)).suggest(trial, "lam") in (0.2, 0.5)


@pytest.mark.parametrize(
    "override, message",
    [
        ("alpha.value=range(3, 1)", "the range is empty"),
        ("alpha.value=interval(1, 1)", "an interval needs start < end"),
    ],
)
def test_a_sweep_that_cannot_be_searched_is_refused_naming_it(override, message):
    with pytest.raises(UserError, match=message):
        search_space([override])


def test_a_swept_list_becomes_one_dimension_per_element_over_its_range():
    config = {"alpha": {"value": 1.0, "genome": {"attention": [1.0, 1.0, 1.0]}}}
    dimensions, _ = search_space(["alpha.genome.attention=interval(0.0, 0.5)", "alpha.value=interval(0.0, 1.0)"])
    expanded, lists = list_elements(dimensions, config)
    assert lists == ("alpha.genome.attention",)
    assert list(expanded) == [*(f"alpha.genome.attention.{i}" for i in range(3)), "alpha.value"]
    assert {expanded[f"alpha.genome.attention.{i}"] for i in range(3)} == {Dimension("float", low=0.0, high=0.5)}
