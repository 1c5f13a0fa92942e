import pytest
import torch
from safetensors.torch import load_file

from taskvec_ir.checkpoints import CheckpointError, CheckpointReader
from taskvec_ir.merging import align_keys, apply_task_vector, parameter_aliases, task_vector
from taskvec_ir.scoring import load_scorer
from tiny_models import tiny_bert, tiny_t5, tiny_triple

# How a checkpoint key of the base/domain names each IR-model parameter, per family, written out by hand.
CHECKPOINT_KEY = {
    "bi_encoder": lambda name: "bert." + name.removeprefix("0.model."),
    "cross_encoder": lambda name: name,
    "monot5": lambda name: name,
    "causal_lm": lambda name: name,
}
SETTINGS = {"show_progress": False, "max_length": 64, "max_query_length": 16}


@pytest.fixture(scope="module", params=list(CHECKPOINT_KEY))
def triple(request, tmp_path_factory):
    family = request.param
    return family, tiny_triple(tmp_path_factory.mktemp(family), family)


def _load(family, folders):
    scorer = load_scorer(family, folders["ir"], SETTINGS)
    return scorer, task_vector(scorer.module, CheckpointReader(folders["base"]), CheckpointReader(folders["domain"]))


@pytest.mark.parametrize("alpha", [0.5, -0.3, 1.0])
def test_merge_matches_hand_computed_tensors(triple, alpha):
    family, folders = triple
    scorer, tau = _load(family, folders)
    base, domain = load_file(folders["base"] / "model.safetensors"), load_file(folders["domain"] / "model.safetensors")
    before = {n: p.detach().clone() for n, p in scorer.module.named_parameters()}
    apply_task_vector(scorer.module, tau, alpha)
    after = dict(scorer.module.named_parameters())
    heads = set(before) - set(tau)
    for name in tau:
        key = CHECKPOINT_KEY[family](name)
        expected = before[name] + alpha * (domain[key] - base[key])
        torch.testing.assert_close(after[name].detach(), expected, rtol=1e-6, atol=1e-7)
        assert not torch.equal(after[name], before[name])
    for name in heads:  # parameters the base lacks (heads) are left as ΘT has them
        assert torch.equal(after[name], before[name])
    # Only task heads are left out: every shared tensor is merged.
    expected_heads = {"bi_encoder": {"0.model.pooler.dense.weight", "0.model.pooler.dense.bias"},
                      "cross_encoder": {"classifier.weight", "classifier.bias", "bert.pooler.dense.weight",
                                        "bert.pooler.dense.bias"}}
    assert heads == expected_heads.get(family, set())


def test_alpha_zero_reproduces_ir_model_bit_for_bit(triple):
    family, folders = triple
    scorer, tau = _load(family, folders)
    before = {n: p.detach().clone() for n, p in scorer.module.named_parameters()}
    apply_task_vector(scorer.module, tau, 0.0)
    for name, parameter in scorer.module.named_parameters():
        assert torch.equal(parameter, before[name]) and parameter.dtype == before[name].dtype


def test_tied_weights_are_merged_once(tmp_path):
    folders = tiny_triple(tmp_path, "monot5")
    scorer, tau = _load("monot5", folders)
    model = scorer.module
    assert model.lm_head.weight is model.shared.weight  # T5 ties them: one tensor, several names
    shared = model.shared.weight.detach().clone()
    apply_task_vector(model, tau, 1.0)
    base = load_file(folders["base"] / "model.safetensors")["shared.weight"]
    domain = load_file(folders["domain"] / "model.safetensors")["shared.weight"]
    torch.testing.assert_close(model.lm_head.weight.detach(), shared + (domain - base))


def test_align_keys_strips_wrapper_and_head_prefixes():
    aliases = {"0.model.embeddings.w": ["0.model.embeddings.w"], "0.model.encoder.layer.0.w": ["0.model.encoder.layer.0.w"]}
    alignment = align_keys(aliases, ["bert.embeddings.w", "bert.encoder.layer.0.w", "cls.predictions.bias"])
    assert alignment.source_for == {"0.model.embeddings.w": "bert.embeddings.w",
                                    "0.model.encoder.layer.0.w": "bert.encoder.layer.0.w"}
    assert alignment.ir_only == [] and alignment.source_only == ["cls.predictions.bias"]


def test_align_keys_does_not_pair_encoder_with_decoder():
    names = ["encoder.block.0.w", "decoder.block.0.w", "shared.weight"]
    alignment = align_keys({n: [n] for n in names}, names)
    assert alignment.source_for == {n: n for n in names}


def test_shape_mismatch_names_the_offending_keys(tmp_path):
    ir = tiny_bert(tmp_path / "ir", 0, "cross_encoder")
    base = tiny_bert(tmp_path / "base", 1, "mlm")
    wider = tiny_bert(tmp_path / "domain", 2, "mlm", intermediate_size=48)
    scorer = load_scorer("cross_encoder", ir, SETTINGS)
    with pytest.raises(CheckpointError, match=r"model\.domain .*shape differs.*intermediate\.dense\.weight \(32, 16\) vs"):
        task_vector(scorer.module, CheckpointReader(base), CheckpointReader(wider))


def test_other_architecture_is_refused_with_first_keys(tmp_path):
    ir = tiny_bert(tmp_path / "ir", 0, "cross_encoder")
    t5 = tiny_t5(tmp_path / "t5", 1)
    scorer = load_scorer("cross_encoder", ir, SETTINGS)
    with pytest.raises(CheckpointError, match=r"model\.base .*does not share the IR model's architecture.*bert\.embeddings"):
        task_vector(scorer.module, CheckpointReader(t5), CheckpointReader(t5))
