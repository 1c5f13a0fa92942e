"""Where a tensor of a checkpoint sits, read from its name: its transformer block, and its kind (attention, MLP or
other), for BERT/MiniLM, RoBERTa, DistilBERT, T5/mT5 (encoder and decoder) and Llama; and the groups of blocks a
layer-group genome gives one α each (docs/sweeps.md, "Layer-group genome")."""

from __future__ import annotations

import re
from collections.abc import Iterable

from taskvec_ir.errors import UserError

ATTENTION, MLP, OTHER = "attention", "mlp", "other"
KINDS = (ATTENTION, MLP, OTHER)

# Transformer blocks are numbered under these names in Hugging Face models: BERT, RoBERTa and DistilBERT
# ``layer.N``, T5 ``block.N``, Llama ``layers.N``, GPT-2 ``h.N``.
_LAYER = re.compile(r"(?:^|\.)(?:layer|layers|block|blocks|h)\.(\d+)\.")
# Inside a block, after its number: norms (LayerNorm, layer_norm, input_layernorm, sa_layer_norm) are "other";
# attention is BERT's and DistilBERT's ``attention.``, T5's ``SelfAttention``/``EncDecAttention`` (and its relative
# position bias), Llama's ``self_attn``; the MLP is BERT's ``intermediate`` and ``output.dense`` (the attention's
# own ``attention.output.dense`` is matched as attention first), DistilBERT's ``ffn``, T5's ``DenseReluDense``,
# Llama's ``mlp``.
_NORM = re.compile(r"norm", re.IGNORECASE)
_ATTENTION = re.compile(r"attention|attn", re.IGNORECASE)
_MLP = re.compile(r"intermediate|output\.dense|ffn|DenseReluDense|mlp")


def layer_index(name: str) -> int | None:
    """The transformer block a parameter belongs to; None for embeddings, heads and final norms.

    The index is read as a whole number, so layer 1 never matches layer 10 or 11 (the substring
    matching of the paper's reference scripts did)."""
    match = _LAYER.search(name)
    return int(match.group(1)) if match else None


def tensor_kind(name: str) -> str:
    """``attention``, ``mlp`` or ``other`` (embeddings, norms, poolers, heads) of a parameter; a tensor inside a block
    that is none of these (an architecture this module does not know) is refused."""
    match = _LAYER.search(name)
    if match is None:
        return OTHER
    inside = name[match.end() :]
    if _NORM.search(inside):
        return OTHER
    if _ATTENTION.search(inside):
        return ATTENTION
    if _MLP.search(inside):
        return MLP
    raise UserError(
        f"alpha.genome: {name} is in block {match.group(1)} but is neither attention, MLP nor a norm: the genome "
        "knows the blocks of BERT, RoBERTa, DistilBERT, T5 and Llama"
    )


def block_groups(names: Iterable[str], groups: int) -> dict[str, tuple[str, int | None]]:
    """Each name's (kind, group): the blocks of each stack (T5's encoder and decoder each; one stack elsewhere) cut
    into ``groups`` consecutive groups of near-equal size, block i of n in group ⌊i·groups/n⌋; group None for
    tensors of kind ``other``. Refuses more groups than a stack has blocks (a group would be empty)."""
    names = list(names)
    stacks: dict[str, set[int]] = {}
    for name in names:
        if (match := _LAYER.search(name)) is not None:
            stacks.setdefault(name[: match.start()], set()).add(int(match.group(1)))
    if not stacks:
        raise UserError("alpha.genome: the IR model has no numbered blocks to group")
    for stack, blocks in stacks.items():
        if groups > len(blocks):
            raise UserError(
                f"alpha.genome.groups: {groups} groups, but {stack or 'the model'} has {len(blocks)} blocks: "
                f"give at most {len(blocks)}"
            )
    order = {stack: sorted(blocks) for stack, blocks in stacks.items()}
    placed = {}
    for name in names:
        kind = tensor_kind(name)
        if kind == OTHER:
            placed[name] = (kind, None)
            continue
        match = _LAYER.search(name)
        blocks = order[name[: match.start()]]
        placed[name] = (kind, blocks.index(int(match.group(1))) * groups // len(blocks))
    return placed
