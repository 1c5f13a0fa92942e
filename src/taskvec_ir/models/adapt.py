"""Deriving a domain model ΘD when none is published: continued pre-training on a corpus's documents.

The paper's domain models are checkpoints fine-tuned from the base Θ0 on in-domain text with the
objective Θ0 was pre-trained with. Where no such checkpoint exists, ``adapted_checkpoint`` makes one:
it continues training a start checkpoint (usually Θ0) on the documents of a dataset, without labels,
and caches the result as an ordinary checkpoint folder that the merge reads like any other ΘD.

Objectives (``objective: auto`` picks the start checkpoint's own):
- ``mlm``: masked language modelling (BERT, RoBERTa, DistilBERT bases), transformers' collator;
- ``span_corruption``: T5's denoising objective (T5, mT5), written here (see ``corrupt_spans``);
- ``next_token``: causal language modelling (decoder-only LMs), transformers' collator;
- ``simcse`` and ``tsdae``: for a start that is itself a sentence-transformers bi-encoder, unsupervised
  SimCSE (each text is its own positive, dropout makes the two views) and TSDAE (reconstruct a text from
  the embedding of a copy with words deleted), with sentence-transformers' loss objects;
- ``inverse_cloze``: for a bi-encoder too, contrastive (query, document) pairs made from the documents alone
  (the inverse cloze task, as in GPL-style domain adaptation): a document's title, or one sentence taken out
  of it, is the query and the rest of the document the positive; the other documents of the batch are the
  negatives (MultipleNegativesRankingLoss).
- ``supervised``: a bi-encoder trained on a split's judged (query, relevant document) pairs, with in-batch
  negatives as inverse_cloze. It reads relevance labels, so a model made with it is a supervised control, never
  a zero-shot result (``ModelConfig.supervised``); the queries of the dataset's other splits are left out.

Training is a plain PyTorch loop (AdamW, linear warmup and decay) rather than a Trainer, because
resuming must be exact: every step's batch and random draws are a function of (seed, step) alone, so a
run resumed from saved weights, optimiser and scheduler state continues bit for bit as an uninterrupted
one would (on a CPU) — no iterator or RNG state has to be captured. The saved state lives in
``<cache.dir>/adapt-partial/<key>/`` while training and is removed once the checkpoint is complete.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import pickle
import re
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from taskvec_ir.config.model import SUPERVISED, AdaptConfig
from taskvec_ir.errors import UserError
from taskvec_ir.ir.data import JudgedPairs, join_fields
from taskvec_ir.models.checkpoints import read_config, resolve_model_source
from taskvec_ir.models.scoring import fit_max_length, torch_device
from taskvec_ir.storage.cache import Cache, cache_key, checkpoint_fingerprint
from taskvec_ir.storage.outputs import atomic_path, write_json

log = logging.getLogger(__name__)

SENTENCE_TRANSFORMERS_OBJECTIVES = ("simcse", "tsdae", "inverse_cloze", SUPERVISED)
T5_MODEL_TYPES = ("t5", "mt5")
CAUSAL_LM_ARCHITECTURES = ("ForCausalLM", "LMHeadModel")  # LlamaForCausalLM, GPT2LMHeadModel
WARMUP_FRACTION = 0.1
MAX_GRAD_NORM = 1.0  # the transformers Trainer's default clipping
TSDAE_DELETION_RATIO = 0.6  # the TSDAE paper's best noise: delete 60% of the words
FINAL_LOSS_STEPS = 10
MAX_SENTINELS = 100  # T5 and mT5 tokenizers carry <extra_id_0> ... <extra_id_99>
PARTIAL_KIND = "adapt-partial"
TITLE_FIELD = "title"  # inverse_cloze: the document field whose text is a title query
MIN_TITLE_WORDS = 3  # inverse_cloze: shorter titles ("Introduction") say nothing of their document
MIN_SENTENCE_WORDS = 6  # inverse_cloze: shorter sentences (headings, "Results.") make no query
SPAN_WORDS = 10  # inverse_cloze, span: a query of this many consecutive words (where text has no sentence ends)
_STATE_FILE = "state.pt"


def _transformer_folder(folder: Path) -> Path:
    """Where a sentence-transformers model keeps its transformer (its first module): the folder itself in
    most layouts, a subfolder such as ``0_Transformer`` in older ones."""
    modules = json.loads((folder / "modules.json").read_text())
    return folder / modules[0].get("path", "")


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


def adapted_checkpoint(
    spec: AdaptConfig,
    cache: Cache,
    docs: Callable[[], Mapping[str, Mapping[str, str]]],
    corpus_identity: Mapping,
    log_step: Callable[[int, float], None] | None = None,
    judged: Callable[[], JudgedPairs] | None = None,
) -> Path:
    """The folder of ``spec.start`` (a model source, see ``checkpoints.resolve_model_source``) adapted to a
    corpus's documents as ``spec`` says, trained once and cached.

    ``docs()`` returns the corpus (doc_id -> {field: text}, as ``data.load_doc_fields``: documents only, never a
    query or a judgement) and is only called on a cache miss; ``corpus_identity`` says which corpus that is (it
    is part of the cache key). ``judged()`` gives the labelled pairs of ``objective: supervised``
    (``data.judged_pairs``), the only objective that calls it. ``log_step(step, loss)`` is called after every
    optimiser step. The folder loads like the start checkpoint and holds ``provenance.json``, which says how
    it was made.
    """
    start = resolve_model_source(spec.start, role="adapt.start")
    settings = replace(spec, objective=resolve_objective(start, spec.objective))
    fingerprint = checkpoint_fingerprint(start)
    key = cache_key(start=fingerprint, corpus=dict(corpus_identity), settings=settings.identity())
    partial = cache.root / PARTIAL_KIND / key if cache.root is not None else None

    def build(out: Path) -> None:
        device = torch_device(settings.device, "adapt.device")
        if settings.objective == SUPERVISED:
            training_data = judged()
            read = {"documents": len(training_data.documents), "supervised": training_data.record()}
        else:
            training_data = document_sample(docs(), settings.sample_size, settings.seed)
            read = {"documents": len(training_data)}
        torch.manual_seed(settings.seed)  # heads or decoder layers the start lacks are initialised from it
        trainee = _TRAINEES[settings.objective](start, settings, device)
        examples = trainee.examples(training_data, settings)
        run = _train(trainee, examples, settings, partial, log_step)
        trainee.save(out)
        write_json(
            {
                "start": {"source": spec.start, "folder": str(start), "fingerprint": fingerprint},
                "corpus": dict(corpus_identity),
                **read,
                "objective": settings.objective,
                "objective_details": trainee.details,
                "settings": {**settings.identity(), "save_every": settings.save_every},
                "steps": run.step,
                "resumed_from_step": run.resumed_from,
                "wall_seconds": round(run.seconds, 3),
                "final_loss": float(np.mean(run.losses[-FINAL_LOSS_STEPS:])),
                "losses": run.losses,
                "device": str(device),
                "libraries": {
                    name: _version(name) for name in ("torch", "transformers", "sentence-transformers", "taskvec-ir")
                },
                "cache_key": key,
            },
            out / "provenance.json",
        )
        if partial is not None:
            shutil.rmtree(partial, ignore_errors=True)

    return cache.folder("adapted", key, build)


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:  # e.g. taskvec_ir run from a source tree
        return None


def document_sample(
    docs: Mapping[str, Mapping[str, str]], sample_size: int | None, seed: int
) -> list[Mapping[str, str]]:
    """The non-empty documents (their fields) to train on: all, or ``sample_size`` of them drawn with ``seed``.

    Ids are sorted first, so the sample does not depend on the order the corpus was read in.
    """
    ids = sorted(doc_id for doc_id, parts in docs.items() if join_fields(parts).strip())
    if not ids:
        raise UserError("adapt: the corpus has no non-empty documents to train on")
    if sample_size is not None and sample_size < len(ids):
        chosen = np.random.default_rng(seed).choice(len(ids), size=sample_size, replace=False)
        ids = [ids[i] for i in sorted(chosen)]
    elif sample_size is not None:
        log.info(
            "adapt.sample_size %d is not below the corpus's %d documents: using all of them", sample_size, len(ids)
        )
    return [docs[doc_id] for doc_id in ids]


def batch_indices(step: int, documents: int, batch_size: int, seed: int) -> list[int]:
    """Which documents make up the batch of ``step``: epochs of seeded permutations, read in order.

    A pure function of its arguments, so a resumed run sees the very batches an uninterrupted one would.
    """
    positions = range(step * batch_size, (step + 1) * batch_size)
    permutations: dict[int, np.ndarray] = {}
    chosen = []
    for position in positions:
        epoch = position // documents
        if epoch not in permutations:
            permutations[epoch] = np.random.default_rng([seed, epoch]).permutation(documents)
        chosen.append(int(permutations[epoch][position % documents]))
    return chosen


def distinct_batch_indices(step: int, examples: int, batch_size: int, seed: int) -> list[int]:
    """As ``batch_indices``, but a batch never repeats an example: each epoch is a seeded permutation cut
    into whole batches, its last ``examples % batch_size`` left out (a batch spanning two epochs could hold
    one example twice). Needs ``batch_size <= examples``."""
    per_epoch = examples // batch_size
    epoch, index = divmod(step, per_epoch)
    permutation = np.random.default_rng([seed, epoch]).permutation(examples)
    return [int(i) for i in permutation[index * batch_size : (index + 1) * batch_size]]


def _step_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


class _Trainee(ABC):
    """A start checkpoint set up for one objective: what is trained, how a batch's loss is computed."""

    module: torch.nn.Module  # every trained parameter (the optimiser's, and the saved state's)
    details: dict  # objective facts worth recording in provenance.json

    def examples(self, documents: list[Mapping[str, str]], settings: AdaptConfig) -> list:
        """What a batch is drawn from (``documents``: the corpus sample; for supervised, the judged pairs): by
        default each document's text, its fields joined as BM25 reads them."""
        return [join_fields(parts) for parts in documents]

    def batch(self, examples: list, step: int, settings: AdaptConfig) -> list:
        """The examples of ``step``: a function of (seed, step) alone, so that a resumed run sees the same."""
        return [examples[i] for i in batch_indices(step, len(examples), settings.batch_size, settings.seed)]

    @abstractmethod
    def loss(self, texts: list, rng: np.random.Generator) -> torch.Tensor:
        """The objective's loss on a batch; random draws come from ``rng`` or torch's seeded generator."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the trained model in the start checkpoint's layout."""


class _LanguageModelTrainee(_Trainee):
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


class _CollatorTrainee(_LanguageModelTrainee):
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


def _masked_lm(folder, settings, device):
    from transformers import AutoModelForMaskedLM

    return _CollatorTrainee(folder, settings, device, AutoModelForMaskedLM, mlm=True)


def _causal_lm(folder, settings, device):
    from transformers import AutoModelForCausalLM

    return _CollatorTrainee(folder, settings, device, AutoModelForCausalLM, mlm=False)


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


class _SpanCorruptionTrainee(_LanguageModelTrainee):
    """T5's span corruption. transformers ships it only inside its Flax pre-training example script,
    not in the library, so the noise mask and the input/target construction are written here."""

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


class _SentenceTransformerTrainee(_Trainee):
    """simcse and tsdae: a sentence-transformers model trained through a sentence-transformers loss.

    The loss objects are used in the loop of this module rather than through the SentenceTransformerTrainer,
    which could resume too (from its own checkpoint folders of trainer state, RNG states and optimiser):
    one loop then serves all five objectives, with one resumable state and one exact-resume rule.
    """

    def __init__(self, folder: Path, settings: AdaptConfig, device: torch.device):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(folder), device=str(device), model_kwargs={"dtype": torch.float32})
        self.model.max_seq_length = fit_max_length(
            settings.max_length, self.model.tokenizer, self.model.transformers_model.config, "adapt.max_length"
        )
        self.details = {"max_length": self.model.max_seq_length}

    def _features(self, texts: list[str]) -> dict:
        features = self.model.preprocess(texts)  # tensors, and the inputs' modality ("text")
        return {
            name: value.to(self.model.device) if isinstance(value, torch.Tensor) else value
            for name, value in features.items()
        }

    def save(self, folder: Path) -> None:
        self.model.save(str(folder), create_model_card=False)


class _SimCSETrainee(_SentenceTransformerTrainee):
    """Unsupervised SimCSE: (text, text) pairs; dropout makes the two embeddings of a text differ, and the
    other texts of the batch are the negatives of MultipleNegativesRankingLoss (scale 20 = SimCSE's τ 0.05)."""

    def __init__(self, folder, settings, device):
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        super().__init__(folder, settings, device)
        self.module = MultipleNegativesRankingLoss(self.model)

    def loss(self, texts, rng):
        return self.module([self._features(texts), self._features(texts)], None)


def delete_words(text: str, ratio: float, rng: np.random.Generator) -> str:
    """TSDAE's noise: each whitespace-separated word deleted with probability ``ratio``, one always kept."""
    words = text.split()
    kept = rng.random(len(words)) >= ratio
    if not kept.any():
        kept[rng.integers(len(words))] = True
    return " ".join(word for word, keep in zip(words, kept, strict=True) if keep)


class _TSDAETrainee(_SentenceTransformerTrainee):
    """TSDAE: a decoder (the encoder's own architecture, weights tied, cross-attending to the sentence
    embedding) reconstructs each text from the embedding of a copy with 60% of its words deleted."""

    def __init__(self, folder, settings, device):
        from sentence_transformers.sentence_transformer.losses import DenoisingAutoEncoderLoss

        super().__init__(folder, settings, device)
        try:
            # The decoder is built from the encoder's own folder (tie_encoder_decoder), so nothing is downloaded.
            self.module = DenoisingAutoEncoderLoss(self.model, tie_encoder_decoder=True).to(device)
        except (ValueError, OSError, KeyError, AssertionError) as error:
            model_type = self.model.transformers_model.config.model_type
            raise UserError(
                f"adapt.objective: tsdae needs a decoder of {folder}'s architecture ({model_type}), "
                f"which transformers cannot build from it: use simcse ({type(error).__name__}: "
                f"{error})".splitlines()[0]
            ) from None

    def loss(self, texts, rng):
        damaged = [delete_words(text, TSDAE_DELETION_RATIO, rng) for text in texts]
        return self.module([self._features(damaged), self._features(texts)], None)


# Sentence ends: ., ! or ? and a space. Any case follows, for lower-cased collections (Cranfield); a split
# after an abbreviation ("et al. 3") only makes a short piece, which MIN_SENTENCE_WORDS leaves out as a query.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
TITLE_QUERY = -1  # in DocumentPairs.queries: the title is the query (else the index of the sentence that is)


@dataclass(frozen=True)
class DocumentPairs:
    """One document's (query, positive) pairs for inverse_cloze, as the indices of their queries."""

    title: str
    sentences: tuple[str, ...]  # the rest of the document (its fields other than the title), in sentences
    queries: tuple[int, ...]  # TITLE_QUERY, or the index of a sentence taken out as the query
    document: int  # its index in the documents the pairs were made from

    def pair(self, query: int) -> tuple[str, str]:
        """(query, positive): the title and the text, or a sentence and the title with the other sentences."""
        if query == TITLE_QUERY:
            return self.title, " ".join(self.sentences)
        rest = self.sentences[:query] + self.sentences[query + 1 :]
        return self.sentences[query], " ".join((self.title, *rest)).strip()


def split_document(parts: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """A document's title (its ``title`` field, "" if none) and the sentences of the rest of it."""
    title = " ".join(parts.get(TITLE_FIELD, "").split())
    body = " ".join(" ".join(value.split()) for name, value in parts.items() if name != TITLE_FIELD and value)
    if title and body.startswith(title):  # Cranfield's text opens with its title (and " ."): the pair would be a copy
        body = body[len(title) :].lstrip(" .!?")
    return title, tuple(sentence for sentence in _SENTENCE_END.split(body) if sentence)


def word_spans(sentences: Sequence[str]) -> tuple[str, ...]:
    """The words of ``sentences`` in consecutive pieces of SPAN_WORDS (the last one shorter)."""
    words = " ".join(sentences).split()
    return tuple(" ".join(words[i : i + SPAN_WORDS]) for i in range(0, len(words), SPAN_WORDS))


def document_pairs(
    documents: Sequence[Mapping[str, str]], source: str, count: int | None, seed: int
) -> list[DocumentPairs]:
    """The documents that give a pair, each with its pairs: every pair ``source`` allows (a title of at least
    MIN_TITLE_WORDS words over a non-empty text; a sentence, or with ``span`` a piece of SPAN_WORDS words, of at
    least MIN_SENTENCE_WORDS words, when other pieces remain to be its positive), or ``count`` of them drawn
    with ``seed``. Reads the documents alone."""
    split = [split_document(parts) for parts in documents]
    if source == "span":  # a text without sentence punctuation (a preprocessed corpus) is one "sentence"
        split = [(title, word_spans(sentences)) for title, sentences in split]
    candidates = []  # (document, query)
    for index, (title, sentences) in enumerate(split):
        if source in ("title", "both") and len(title.split()) >= MIN_TITLE_WORDS and sentences:
            candidates.append((index, TITLE_QUERY))
        if source in ("sentence", "both", "span") and len(sentences) >= 2:
            candidates += [(index, i) for i, text in enumerate(sentences) if len(text.split()) >= MIN_SENTENCE_WORDS]
    if not candidates:
        fields_hint = f" (no '{TITLE_FIELD}' field in dataset.doc_fields?)" if source == "title" else ""
        raise UserError(f"adapt.pair_source: the documents give no {source} pairs{fields_hint}")
    if count is not None and count < len(candidates):
        chosen = np.random.default_rng(seed).choice(len(candidates), size=count, replace=False)
        candidates = [candidates[i] for i in sorted(chosen)]
    queries: dict[int, list[int]] = {}
    for index, query in candidates:
        queries.setdefault(index, []).append(query)
    return [DocumentPairs(*split[index], tuple(chosen), index) for index, chosen in queries.items()]


class _InverseClozeTrainee(_SentenceTransformerTrainee):
    """inverse_cloze: pairs made from the documents (``document_pairs``), MultipleNegativesRankingLoss with the
    other documents of the batch as negatives. A batch holds distinct documents, one pair each (drawn per step
    among the document's pairs), so no negative is a piece of the query's own document."""

    def __init__(self, folder, settings, device):
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        super().__init__(folder, settings, device)
        self.module = MultipleNegativesRankingLoss(self.model)

    def examples(self, documents, settings):
        pairs = document_pairs(documents, settings.pair_source, settings.pair_count, settings.seed)
        if len(pairs) < settings.batch_size:
            raise UserError(
                f"adapt.batch_size: {settings.batch_size} exceeds the {len(pairs)} documents that give pairs, "
                "and a batch holds each document once: lower it"
            )
        queries = [query for document in pairs for query in document.queries]
        self.details = {
            **self.details,
            "pairs": len(queries),
            "title_pairs": queries.count(TITLE_QUERY),
            "sentence_pairs": len(queries) - queries.count(TITLE_QUERY),
            "documents_with_pairs": len(pairs),
        }
        log.info("adapt: inverse_cloze pairs %s", self.details)
        return pairs

    def batch(self, examples, step, settings):
        return [examples[i] for i in distinct_batch_indices(step, len(examples), settings.batch_size, settings.seed)]

    def loss(self, documents, rng):
        pairs = [document.pair(int(rng.choice(document.queries))) for document in documents]
        return self.module([self._features([q for q, _ in pairs]), self._features([p for _, p in pairs])], None)


class _SupervisedTrainee(_SentenceTransformerTrainee):
    """supervised: judged (query, relevant document) pairs (``data.judged_pairs``), MultipleNegativesRankingLoss
    with the other documents of the batch as negatives. A batch holds distinct documents (as inverse_cloze), each
    with one of its queries drawn per step; a query judged relevant to another document of the batch would make
    that document a false negative, so such a query is not drawn, and a document left with none sits the step
    out. sentence-transformers' no-duplicates batch sampler keeps texts distinct, not relevant documents apart."""

    def __init__(self, folder, settings, device):
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        super().__init__(folder, settings, device)
        self.module = MultipleNegativesRankingLoss(self.model)

    def examples(self, judged: JudgedPairs, settings):
        by_document: dict[str, list[str]] = {}
        self.positives: dict[str, set[str]] = {}
        for qid, doc_id in judged.pairs:
            by_document.setdefault(doc_id, []).append(qid)
            self.positives.setdefault(qid, set()).add(doc_id)
        if len(by_document) < settings.batch_size:
            raise UserError(
                f"adapt.batch_size: {settings.batch_size} exceeds the {len(by_document)} judged documents, and a "
                "batch holds each document once: lower it"
            )
        self.queries, self.documents = judged.queries, judged.documents
        self.details = {**self.details, "pairs": len(judged.pairs), "queries": len(judged.queries)}
        log.info("adapt: supervised pairs %s", self.details)
        return sorted(by_document.items())  # (doc_id, its queries)

    def batch(self, examples, step, settings):
        return [examples[i] for i in distinct_batch_indices(step, len(examples), settings.batch_size, settings.seed)]

    def loss(self, batch, rng):
        in_batch = {doc_id for doc_id, _ in batch}
        pairs = []
        for doc_id, queries in batch:
            allowed = [qid for qid in queries if not (self.positives[qid] & in_batch) - {doc_id}]
            if allowed:
                pairs.append((self.queries[str(rng.choice(allowed))], self.documents[doc_id]))
        return self.module([self._features([q for q, _ in pairs]), self._features([d for _, d in pairs])], None)


_TRAINEES: dict[str, Callable[[Path, AdaptConfig, torch.device], _Trainee]] = {
    "mlm": _masked_lm,
    "span_corruption": _SpanCorruptionTrainee,
    "next_token": _causal_lm,
    "simcse": _SimCSETrainee,
    "tsdae": _TSDAETrainee,
    "inverse_cloze": _InverseClozeTrainee,
    SUPERVISED: _SupervisedTrainee,
}


@dataclass
class _Run:
    step: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0  # training time over every session of the run
    resumed_from: int | None = None


def _train(
    trainee: _Trainee,
    examples: list,
    settings: AdaptConfig,
    partial: Path | None,
    log_step: Callable[[int, float], None] | None,
) -> _Run:
    """Train for ``settings.steps`` steps, resuming from and saving to ``partial`` when it is given."""
    from transformers import get_linear_schedule_with_warmup

    parameters = [p for p in trainee.module.parameters() if p.requires_grad]
    # No weight decay (the transformers and sentence-transformers trainers' default): a decay would shrink
    # every weight, and τ = ΘD − Θ0 would carry that shrinkage as if it were domain knowledge.
    optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=0.0)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(WARMUP_FRACTION * settings.steps), settings.steps)
    run = _Run()
    if partial is not None:
        state = _load_state(partial / _STATE_FILE)
        if state is not None:
            trainee.module.load_state_dict(state["weights"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            run = _Run(
                step=state["step"], losses=list(state["losses"]), seconds=state["seconds"], resumed_from=state["step"]
            )
            log.info("adapt: resuming at step %d of %d from %s", run.step, settings.steps, partial)
    if len(examples) < settings.batch_size:
        log.warning(
            "adapt: %d documents for batches of %d: a batch repeats documents", len(examples), settings.batch_size
        )
    log.info(
        "adapt: %s on %d documents, steps %d to %d", settings.objective, len(examples), run.step + 1, settings.steps
    )
    trainee.module.train()
    started = time.perf_counter()
    with tqdm(total=settings.steps, initial=run.step, desc=f"adapting ({settings.objective})", unit="step") as bar:
        while run.step < settings.steps:
            # Every random draw of a step (masking, noise, dropout) comes from (seed, step): see the module doc.
            step_seed = _step_seed(settings.seed, run.step)
            torch.manual_seed(step_seed)
            batch = trainee.batch(examples, run.step, settings)
            loss = trainee.loss(batch, np.random.default_rng(step_seed))
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"adapt: the loss is {loss.item()} at step {run.step + 1} (training "
                    "diverged, or a batch had nothing to predict): lower "
                    "adapt.learning_rate or check the documents"
                )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, MAX_GRAD_NORM)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            run.step += 1
            run.losses.append(loss.item())
            bar.set_postfix(loss=f"{run.losses[-1]:.4f}")
            bar.update()
            if partial is not None and run.step % settings.save_every == 0 and run.step < settings.steps:
                elapsed = run.seconds + time.perf_counter() - started
                _save_state(partial / _STATE_FILE, trainee.module, optimizer, scheduler, run, elapsed)
                log.info("adapt: step %d of %d, loss %.4f (state saved)", run.step, settings.steps, run.losses[-1])
            if log_step is not None:
                log_step(run.step, run.losses[-1])
    run.seconds += time.perf_counter() - started
    log.info("adapt: %d steps done, final loss %.4f", run.step, float(np.mean(run.losses[-FINAL_LOSS_STEPS:])))
    return run


def _save_state(path: Path, module: torch.nn.Module, optimizer, scheduler, run: _Run, seconds: float) -> None:
    """Everything a resumed run needs (no RNG state: every step reseeds from (seed, step)), written atomically."""
    with atomic_path(path) as tmp:
        torch.save(
            {
                "weights": module.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": run.step,
                "losses": run.losses,
                "seconds": seconds,
            },
            tmp,
        )


def _load_state(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:  # truncated or damaged
        log.warning("adapt: the saved state %s cannot be read (%s): starting over", path, error)
        os.remove(path)
        return None
