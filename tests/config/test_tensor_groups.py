"""A checkpoint's tensors grouped by block and kind on a tiny checkpoint of each supported architecture (built from
configs): known names in known groups, and each kind's parameter count against the one the architecture's config
gives (an independent count, not the grouping's own regexes)."""

from collections import Counter

import pytest

from taskvec_ir.config.tensor_groups import ATTENTION, MLP, OTHER, block_groups, tensor_kind
from taskvec_ir.errors import UserError
from taskvec_ir.models.checkpoints import CheckpointReader

from tiny_models import tiny_bert, tiny_llama, tiny_t5

H, FF = 16, 32  # the tiny configs' hidden and feed-forward sizes (tiny_models)


def attention_mlp_sizes(arch: str, layers: int, decoder_layers: int = 0) -> tuple[int, int]:
    """The parameters of all attention and all MLP tensors, from the architecture (per block: q, k, v, o and the
    feed-forward's matrices, with or without biases)."""
    if arch in ("bert", "roberta", "distilbert"):
        return layers * (4 * H * H + 4 * H), layers * (2 * H * FF + FF + H)
    if arch == "llama":
        return layers * 4 * H * H, layers * 3 * H * FF
    heads, inner = 2, 2 * 8  # T5: n_heads · d_kv; each stack's block 0 has a relative position bias (32 buckets)
    attention = (layers + 2 * decoder_layers) * 4 * H * inner + 2 * 32 * heads
    wi = 2 if arch == "mt5" else 1  # mT5's gated MLP: wi_0 and wi_1
    return attention, (layers + decoder_layers) * (wi + 1) * H * FF


CASES = {
    # arch: (builder, names -> (kind, group) with 4 blocks in 2 groups)
    "bert": (
        lambda folder: tiny_bert(folder, 0, "mlm", num_hidden_layers=4),
        {
            "bert.encoder.layer.3.attention.self.query.weight": (ATTENTION, 1),
            "bert.encoder.layer.1.attention.output.dense.bias": (ATTENTION, 0),
            "bert.encoder.layer.2.intermediate.dense.weight": (MLP, 1),
            "bert.encoder.layer.1.output.dense.weight": (MLP, 0),
            "bert.encoder.layer.0.attention.output.LayerNorm.weight": (OTHER, None),
            "bert.encoder.layer.3.output.LayerNorm.bias": (OTHER, None),
            "bert.embeddings.word_embeddings.weight": (OTHER, None),
        },
    ),
    "roberta": (
        lambda folder: tiny_bert(folder, 0, "cross_encoder", arch="roberta", num_hidden_layers=4),
        {
            "roberta.encoder.layer.2.attention.self.value.weight": (ATTENTION, 1),
            "roberta.encoder.layer.1.output.dense.weight": (MLP, 0),
            "classifier.dense.weight": (OTHER, None),
        },
    ),
    "distilbert": (
        lambda folder: tiny_bert(folder, 0, "mlm", arch="distilbert", n_layers=4),
        {
            "distilbert.transformer.layer.1.attention.out_lin.weight": (ATTENTION, 0),
            "distilbert.transformer.layer.3.ffn.lin2.weight": (MLP, 1),
            "distilbert.transformer.layer.2.sa_layer_norm.weight": (OTHER, None),
            "distilbert.transformer.layer.2.output_layer_norm.weight": (OTHER, None),
        },
    ),
    "t5": (
        lambda folder: tiny_t5(folder, 0, num_layers=4),
        {
            "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight": (ATTENTION, 0),
            "encoder.block.2.layer.1.DenseReluDense.wi.weight": (MLP, 1),
            "decoder.block.3.layer.1.EncDecAttention.q.weight": (ATTENTION, 1),
            "decoder.block.1.layer.2.DenseReluDense.wo.weight": (MLP, 0),
            "decoder.block.1.layer.0.layer_norm.weight": (OTHER, None),
            "decoder.final_layer_norm.weight": (OTHER, None),
        },
    ),
    "mt5": (
        lambda folder: tiny_t5(folder, 0, mt5=True, num_layers=4),
        {
            "encoder.block.3.layer.1.DenseReluDense.wi_1.weight": (MLP, 1),
            "decoder.block.0.layer.0.SelfAttention.k.weight": (ATTENTION, 0),
        },
    ),
    "llama": (
        lambda folder: tiny_llama(folder, 0, num_hidden_layers=4),
        {
            "model.layers.2.self_attn.o_proj.weight": (ATTENTION, 1),
            "model.layers.1.mlp.gate_proj.weight": (MLP, 0),
            "model.layers.1.input_layernorm.weight": (OTHER, None),
            "model.layers.3.post_attention_layernorm.weight": (OTHER, None),
            "model.norm.weight": (OTHER, None),
        },
    ),
}


@pytest.mark.parametrize("arch", list(CASES))
def test_each_tensor_of_a_checkpoint_is_in_one_group_named_by_its_block_and_kind(arch, tmp_path):
    build, known = CASES[arch]
    reader = CheckpointReader(build(tmp_path / arch))
    names = list(reader.keys())
    placed = block_groups(names, 2)
    assert set(placed) == set(names)  # every tensor placed, once (a mapping)
    assert {name: placed[name] for name in known} == known
    sizes = Counter()
    blocks = Counter()
    for name, (kind, group) in placed.items():
        sizes[kind] += reader[name].numel()
        if group is not None:
            blocks[group] += 1
    decoder = 4 if arch in ("t5", "mt5") else 0
    assert (sizes[ATTENTION], sizes[MLP]) == attention_mlp_sizes(arch, 4, decoder)
    assert blocks[0] > 0 and blocks[0] in (blocks[1], blocks[1] + 2)  # T5: block 0's position biases


def test_an_encoder_and_a_decoder_of_different_depths_are_each_cut_into_the_groups(tmp_path):
    names = CheckpointReader(tiny_t5(tmp_path / "t5", 0, num_layers=4, num_decoder_layers=2)).keys()
    placed = block_groups(names, 2)
    assert placed["encoder.block.1.layer.0.SelfAttention.q.weight"] == (ATTENTION, 0)
    assert placed["decoder.block.1.layer.0.SelfAttention.q.weight"] == (ATTENTION, 1)
    with pytest.raises(UserError, match=r"3 groups, but decoder has 2 blocks"):
        block_groups(names, 3)


def test_uneven_groups_differ_by_at_most_one_block_and_stay_in_order():
    names = [f"encoder.layer.{i}.intermediate.dense.weight" for i in range(6)]
    assert [block_groups(names, 4)[name][1] for name in names] == [0, 0, 1, 2, 2, 3]


def test_a_block_tensor_of_an_unknown_kind_is_refused_by_name():
    assert tensor_kind("pooler.dense.weight") == OTHER
    with pytest.raises(UserError, match=r"encoder\.layer\.0\.adapter\.weight is in block 0"):
        tensor_kind("encoder.layer.0.adapter.weight")
