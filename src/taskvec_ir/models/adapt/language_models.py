"""The language-modelling objectives of Hugging Face checkpoints with their pre-training head: ``mlm`` (BERT,
RoBERTa, DistilBERT bases) and ``next_token`` (decoder-only LMs), masked or shifted by transformers' collator."""

from __future__ import annotations

from pathlib import Path

import torch

from taskvec_ir.config.model import AdaptConfig
from taskvec_ir.models.adapt.trainee import Trainee
from taskvec_ir.models.scoring import fit_max_length


class LanguageModelTrainee(Trainee):
    """A Hugging Face model with its pre-training head, saved with ``save_pretrained``."""

    def __init__(self, folder: Path, settings: AdaptConfig, device: torch.device, model_class):
        from transformers import AutoTokenizer

        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.module = model_class.from_pretrained(str(folder), dtype=torch.float32).to(device)
        self.max_length = fit_max_length(settings.max_length, self.tokenizer, self.module.config, "adapt.max_length")
        self.details = {"max_length": self.max_length}

    def save(self, folder: Path) -> None:
        self.module.save_pretrained(str(folder))
        self.tokenizer.save_pretrained(str(folder))


class CollatorTrainee(LanguageModelTrainee):
    """mlm and next_token: transformers' ``DataCollatorForLanguageModeling`` masks or shifts the tokens."""

    def __init__(self, folder, settings, device, model_class, mlm: bool):
        from transformers import DataCollatorForLanguageModeling

        super().__init__(folder, settings, device, model_class)
        if not mlm and self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token  # padding is masked out of the labels anyway
        # No seed: the collator then draws from torch's global generator, which the loop seeds per step.
        self.collator = DataCollatorForLanguageModeling(
            self.tokenizer, mlm=mlm, mlm_probability=settings.mlm_probability
        )

    def loss(self, texts, rng):
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        batch = self.collator([{name: encoded[name][i] for name in encoded} for i in range(len(texts))])
        return self.module(**batch.to(self.device)).loss


def masked_lm(folder: Path, settings: AdaptConfig, device: torch.device) -> CollatorTrainee:
    from transformers import AutoModelForMaskedLM

    return CollatorTrainee(folder, settings, device, AutoModelForMaskedLM, mlm=True)


def causal_lm(folder: Path, settings: AdaptConfig, device: torch.device) -> CollatorTrainee:
    from transformers import AutoModelForCausalLM

    return CollatorTrainee(folder, settings, device, AutoModelForCausalLM, mlm=False)
