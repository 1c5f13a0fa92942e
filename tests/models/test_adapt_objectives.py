"""The objective chosen for a start checkpoint (auto: its own pre-training objective), refused where it does not
fit, and a trainee registered for every objective the config accepts."""

import json

import pytest

from taskvec_ir.config.model import AdaptObjective
from taskvec_ir.models.adapt.objectives import SENTENCE_TRANSFORMERS_OBJECTIVES, TRAINEES, resolve_objective

pytestmark = pytest.mark.usefixtures("one_thread")

EXPECTED_OBJECTIVE = {"bert_mlm": "mlm", "t5": "span_corruption", "llama": "next_token", "bi_encoder": "simcse"}


def test_every_objective_the_config_accepts_has_a_trainee():
    assert set(TRAINEES) == set(AdaptObjective) - {"auto"}  # auto resolves to one of them
    assert set(SENTENCE_TRANSFORMERS_OBJECTIVES) <= set(TRAINEES)


def test_objective_auto_picks_the_family_objective(starts, tmp_path):
    for start, objective in EXPECTED_OBJECTIVE.items():
        assert resolve_objective(starts[start], "auto") == objective
    decoder = tmp_path / "decoder"
    decoder.mkdir()
    (decoder / "config.json").write_text(json.dumps({"model_type": "bert", "is_decoder": True}))
    assert resolve_objective(decoder, "auto") == "next_token"


@pytest.mark.parametrize(
    "start, objective",
    [
        ("bert_mlm", "simcse"),
        ("bert_mlm", "inverse_cloze"),
        ("bert_mlm", "span_corruption"),
        ("t5", "mlm"),
        ("llama", "tsdae"),
        ("t5", "next_token"),
    ],
)
def test_an_objective_that_does_not_fit_the_start_is_refused(starts, start, objective):
    with pytest.raises(ValueError, match="adapt.objective"):
        resolve_objective(starts[start], objective)


def test_tsdae_is_refused_for_an_architecture_without_a_decoder(starts, tmp_path):
    folder = tmp_path / "distilbert_bi"
    folder.mkdir()
    for name in ("modules.json", "config.json"):
        (folder / name).write_text((starts["bi_encoder"] / name).read_text())
    (folder / "config.json").write_text(json.dumps({"model_type": "distilbert", "architectures": ["DistilBertModel"]}))
    assert resolve_objective(folder, "auto") == "simcse"
    with pytest.raises(ValueError, match="adapt.objective: tsdae .* model_type 'distilbert'; use simcse"):
        resolve_objective(folder, "tsdae")
