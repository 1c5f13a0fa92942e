"""Settings written in Hydra's override grammar are read back by Hydra's own parser as they were."""

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from taskvec_ir.runs.sweeping.overrides import as_overrides, hydra_value


@pytest.mark.parametrize(
    "value", [{"a": [1, "x'y", None]}, [0.5, True, "plain"], "back\\slash", r"\.layer\.1\.", "end\\", 3, None, 0.25]
)
def test_values_are_written_in_hydras_grammar_and_read_back_equal(value):
    (override,) = OverridesParser.create().parse_overrides([f"key={hydra_value(value)}"])
    assert override.value() == value


def test_settings_become_one_override_each():
    assert as_overrides({"alpha.value": 0.25, "merge": "ties"}) == ["alpha.value=0.25", "merge=ties"]


def test_the_elements_of_a_list_searched_element_by_element_become_one_list_read_back_in_order():
    params = {"alpha.genome.mlp.1": 0.75, "lam.value": 0.2, "alpha.genome.mlp.0": 0.125, "alpha.extra.0": 0.5}
    overrides = as_overrides(params, lists=["alpha.genome.mlp"])
    assert overrides == ["lam.value=0.2", "alpha.extra.0=0.5", "alpha.genome.mlp=[0.125, 0.75]"]
    assert OverridesParser.create().parse_overrides(overrides[-1:])[0].value() == [0.125, 0.75]
