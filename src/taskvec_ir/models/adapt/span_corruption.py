"""T5's span corruption (T5, mT5): spans of tokens replaced by sentinels in the input, restored in the target.
transformers ships it only inside its Flax pre-training example script, not in the library, so the noise mask
and the input/target construction are written here."""

from __future__ import annotations

import logging

import numpy as np
import torch

from taskvec_ir.errors import UserError
from taskvec_ir.models.adapt.language_models import LanguageModelTrainee

log = logging.getLogger(__name__)

MAX_SENTINELS = 100  # T5 and mT5 tokenizers carry <extra_id_0> ... <extra_id_99>


def random_spans_noise_mask(
    length: int, noise_density: float, mean_span_length: float, max_spans: int, rng: np.random.Generator
) -> np.ndarray:
    """Which of ``length`` tokens are dropped, as T5's ``random_spans_noise_mask``: about
    ``noise_density`` of them, in spans of mean length ``mean_span_length`` between kept runs, the
    sequence starting with a kept run. Lengths of spans and runs are random compositions."""
    if length < 2:
        return np.ones(length, dtype=bool)  # nothing to keep around a single token: it is the span
    noise = min(max(round(length * noise_density), 1), length - 1)
    spans = min(max(round(noise / mean_span_length), 1), max_spans, noise, length - noise)

    def composition(total: int) -> np.ndarray:  # ``total`` split into ``spans`` positive parts
        cuts = np.sort(rng.choice(np.arange(1, total), size=spans - 1, replace=False))
        return np.diff(np.concatenate([[0], cuts, [total]]))

    kept, dropped = composition(length - noise), composition(noise)
    return np.concatenate([np.repeat([False, True], [k, d]) for k, d in zip(kept, dropped, strict=True)])


def corrupt_spans(ids: list[int], noise_mask: np.ndarray, sentinels: list[int]) -> tuple[list[int], list[int]]:
    """T5's inputs and targets: each dropped span is replaced by the next sentinel in the input; the
    target lists each sentinel followed by the span it replaced, and a closing sentinel (T5 paper, fig. 2:
    "Thank you <X> me to your party <Y> week." -> "<X> for inviting <Y> last <Z>")."""
    inputs, targets = [], []
    spans = 0
    for position, (token, dropped) in enumerate(zip(ids, noise_mask, strict=True)):
        if not dropped:
            inputs.append(token)
            continue
        if position == 0 or not noise_mask[position - 1]:
            inputs.append(sentinels[spans])
            targets.append(sentinels[spans])
            spans += 1
        targets.append(token)
    targets.append(sentinels[spans])
    return inputs, targets


def sentinel_ids(tokenizer) -> tuple[list[int], str]:
    """The sentinel token ids, and where they come from.

    T5 and mT5 tokenizers carry ``<extra_id_0>``, ``<extra_id_1>``, ... at the top of the vocabulary
    (``<extra_id_0>`` last). A tokenizer without them (a custom one, as in tests) gets the same
    convention applied to the ids it has: the highest non-special ids, in descending order, at most a
    quarter of the vocabulary. Those tokens become ambiguous (word and sentinel), which costs little
    on a base whose pre-training never saw them as sentinels; adding new tokens instead would resize
    the embeddings, and a ΘD whose shapes differ from Θ0's cannot make a task vector.
    """
    vocab = tokenizer.get_vocab()
    named = [vocab[f"<extra_id_{i}>"] for i in range(MAX_SENTINELS) if f"<extra_id_{i}>" in vocab]
    if named:
        return named, "<extra_id_N> tokens"
    special = set(tokenizer.all_special_ids)
    regular = sorted((i for i in vocab.values() if i not in special), reverse=True)
    count = min(MAX_SENTINELS, len(regular) // 4)
    log.warning("The tokenizer has no <extra_id_N> sentinel tokens: using its %d highest ids as sentinels", count)
    return regular[:count], f"the {count} highest non-special ids (no <extra_id_N> tokens)"


class SpanCorruptionTrainee(LanguageModelTrainee):
    """span_corruption: a sequence-to-sequence model restores the spans its input lost."""

    def __init__(self, folder, settings, device):
        from transformers import AutoModelForSeq2SeqLM

        super().__init__(folder, settings, device, AutoModelForSeq2SeqLM)
        self.settings = settings
        self.sentinels, source = sentinel_ids(self.tokenizer)
        if len(self.sentinels) < 2:
            raise UserError(
                f"adapt.objective: span_corruption needs sentinel tokens, and {folder}'s tokenizer "
                "has too few ids to lend"
            )
        self.details = {**self.details, "sentinels": source}

    def loss(self, texts, rng):
        eos = self.tokenizer.eos_token_id
        encoded = self.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=self.max_length - 1)[
            "input_ids"
        ]
        pairs = []
        for ids in encoded:
            mask = random_spans_noise_mask(
                len(ids), self.settings.noise_density, self.settings.mean_span_length, len(self.sentinels) - 1, rng
            )
            inputs, targets = corrupt_spans(ids, mask, self.sentinels)
            pairs.append((inputs + [eos], targets + [eos]))
        inputs = [row for row, _ in pairs]
        return self.module(
            input_ids=self._pad(inputs, self.tokenizer.pad_token_id),
            attention_mask=self._pad([[1] * len(row) for row in inputs], 0),
            labels=self._pad([targets for _, targets in pairs], -100),
        ).loss  # -100: not scored

    def _pad(self, rows: list[list[int]], value: int) -> torch.Tensor:
        width = max(len(row) for row in rows)
        return torch.tensor([row + [value] * (width - len(row)) for row in rows], device=self.device)
