"""The objectives a checkpoint can be adapted with: the one chosen for a start checkpoint (``auto``: the one it
was pre-trained with), checked to fit it, and the registry of the trainee that implements each."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from taskvec_ir.config.model import SUPERVISED, AdaptConfig
from taskvec_ir.errors import UserError
from taskvec_ir.models.adapt.bi_encoders import InverseClozeTrainee, SimCSETrainee, SupervisedTrainee, TSDAETrainee
from taskvec_ir.models.adapt.language_models import causal_lm, masked_lm
from taskvec_ir.models.adapt.span_corruption import SpanCorruptionTrainee
from taskvec_ir.models.adapt.trainee import Trainee
from taskvec_ir.models.checkpoints import read_config

TRAINEES: dict[str, Callable[[Path, AdaptConfig, torch.device], Trainee]] = {
    "mlm": masked_lm,
    "span_corruption": SpanCorruptionTrainee,
    "next_token": causal_lm,
    "simcse": SimCSETrainee,
    "tsdae": TSDAETrainee,
    "inverse_cloze": InverseClozeTrainee,
    SUPERVISED: SupervisedTrainee,
}
SENTENCE_TRANSFORMERS_OBJECTIVES = ("simcse", "tsdae", "inverse_cloze", SUPERVISED)
T5_MODEL_TYPES = ("t5", "mt5")
CAUSAL_LM_ARCHITECTURES = ("ForCausalLM", "LMHeadModel")  # LlamaForCausalLM, GPT2LMHeadModel


def resolve_objective(folder: Path, objective: str) -> str:
    """``objective`` if given, else the one the checkpoint in ``folder`` was pre-trained with; checks fit."""
    config = read_config(folder)
    is_sentence_transformer = (folder / "modules.json").is_file()
    is_seq2seq = bool(config.get("is_encoder_decoder")) or config.get("model_type") in T5_MODEL_TYPES
    if objective == "auto":
        if is_sentence_transformer:
            objective = "simcse"
        elif is_seq2seq:
            objective = "span_corruption"
        elif config.get("is_decoder") or any(
            a.endswith(CAUSAL_LM_ARCHITECTURES) for a in config.get("architectures") or []
        ):
            objective = "next_token"
        else:
            objective = "mlm"
    if objective in SENTENCE_TRANSFORMERS_OBJECTIVES and not is_sentence_transformer:
        raise UserError(
            f"adapt.objective: {objective} trains a sentence-transformers model, and {folder} is "
            "not one (no modules.json); use mlm, span_corruption or next_token"
        )
    if objective == "tsdae":
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        model_type = read_config(_transformer_folder(folder)).get("model_type")
        if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            raise UserError(
                f"adapt.objective: tsdae decodes with the encoder's own architecture, and "
                f"transformers has no decoder (causal LM) for {folder}'s model_type {model_type!r}; "
                "use simcse"
            )
    if objective not in SENTENCE_TRANSFORMERS_OBJECTIVES:
        if not config:
            raise UserError(
                f"adapt.objective: {objective} needs a Hugging Face checkpoint, and {folder} has no config.json"
            )
        if (objective == "span_corruption") != is_seq2seq:
            kind = "an encoder-decoder" if is_seq2seq else "not an encoder-decoder"
            raise UserError(
                f"adapt.objective: {objective} does not fit {folder}, which is {kind} model "
                f"(model_type {config.get('model_type')!r}); use objective auto"
            )
    return objective


def _transformer_folder(folder: Path) -> Path:
    """Where a sentence-transformers model keeps its transformer (its first module): the folder itself in
    most layouts, a subfolder such as ``0_Transformer`` in older ones."""
    modules = json.loads((folder / "modules.json").read_text())
    return folder / modules[0].get("path", "")
