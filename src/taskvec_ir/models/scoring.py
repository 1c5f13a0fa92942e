"""Re-scoring first-stage candidates with a neural model: one interface for every model family.

A ``Scorer`` owns the loaded model (``scorer.module``, the weights task arithmetic edits in place) and
turns candidates ``{query_id: {doc_id: first_stage_score}}`` into model scores of the same shape.

Families (``kind`` in the model config):
- ``bi_encoder``: a sentence-transformers model; pooling, normalisation and similarity (cosine or dot)
  come from the model's own config unless ``similarity`` overrides them. Each distinct document is
  encoded once, however many queries retrieved it.
- ``cross_encoder``: a sequence-classification head over (query, document); score = the relevant
  label's log-probability (or the single logit of a one-label head).
- ``monot5``: a seq2seq model prompted with ``template``; score = log P(positive token) against the
  negative token at the first decoding step (monoT5's "true"/"false", mT5's "yes"/"no").
- ``causal_lm``: a decoder-only LM prompted with ``template``; score = log P(positive token) against
  the negative token at the next position.
"""

from __future__ import annotations

import logging
import pickle
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from taskvec_ir.config.model import ModelKind, ScorerConfig
from taskvec_ir.errors import UserError

log = logging.getLogger(__name__)

Candidates = Mapping[str, Mapping[str, float]]
Scores = dict[str, dict[str, float]]


def torch_device(device: str, key: str = "model.scorer.device") -> torch.device:
    """``auto`` is the GPU when there is one; a CUDA device asked for where there is none is an error naming ``key``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{key}: '{device}' but no CUDA device is available (use auto or cpu)")
    return resolved


class Scorer(ABC):
    """Scores (query, candidate document) pairs with a loaded model."""

    module: torch.nn.Module

    def __init__(self, settings: ScorerConfig):
        self.settings = settings

    @abstractmethod
    def score(self, queries: Mapping[str, str], docs: Mapping[str, str], candidates: Candidates) -> Scores:
        """Model scores for every candidate of every query in ``candidates``."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the (possibly merged) model as a checkpoint that loads like the original."""

    def _fit_max_length(self, tokenizer, config) -> None:
        self.settings = replace(
            self.settings,
            max_length=fit_max_length(self.settings.max_length, tokenizer, config, "model.scorer.max_length"),
        )

    def _progress(self, total: int, what: str) -> tqdm:
        return tqdm(total=total, desc=what, unit="batch", disable=not self.settings.show_progress)


class BiEncoderScorer(Scorer):
    def __init__(self, folder: Path, settings: ScorerConfig):
        super().__init__(settings)
        from sentence_transformers import SentenceTransformer

        self.module = SentenceTransformer(
            str(folder),
            device=str(torch_device(settings.device)),
            trust_remote_code=settings.trust_remote_code,
            model_kwargs={"dtype": getattr(torch, settings.dtype)},
        )
        transformer = self.module[0]
        self._fit_max_length(transformer.tokenizer, transformer.auto_model.config)
        self.module.max_seq_length = self.settings.max_length
        self.similarity = settings.similarity or self.module.similarity_fn_name or "cosine"
        if self.similarity not in ("cosine", "dot"):
            raise UserError(
                f"{folder} uses '{self.similarity}' similarity: set model.scorer.similarity to cosine or dot"
            )

    def encode(self, texts: list[str]) -> torch.Tensor:
        """Embeddings of ``texts`` (queries or documents alike), normalised where the similarity is cosine, so that
        a dot product of two is the model's similarity (re-ranking, and dense retrieval over the corpus)."""
        return self.module.encode(
            texts,
            batch_size=self.settings.batch_size,
            convert_to_tensor=True,
            normalize_embeddings=self.similarity == "cosine",
            show_progress_bar=self.settings.show_progress,
        ).float()

    @torch.inference_mode()
    def score(self, queries, docs, candidates) -> Scores:
        doc_ids = sorted({doc_id for ranked in candidates.values() for doc_id in ranked})
        row = {doc_id: i for i, doc_id in enumerate(doc_ids)}
        query_ids = [q for q in candidates if candidates[q]]  # a query BM25 found nothing for has nothing to score
        if not query_ids:
            return {q: {} for q in candidates}
        doc_vectors = self.encode([docs[d] for d in doc_ids])
        query_vectors = self.encode([queries[q] for q in query_ids])
        scores: Scores = {}
        for query_vector, query_id in zip(query_vectors, query_ids, strict=True):
            ranked = list(candidates[query_id])
            rows = torch.tensor([row[d] for d in ranked], dtype=torch.long, device=doc_vectors.device)
            values = (doc_vectors[rows] @ query_vector).tolist()
            scores[query_id] = dict(zip(ranked, values, strict=True))
        return {q: scores.get(q, {}) for q in candidates}

    def save(self, folder: Path) -> None:
        self.module.save(str(folder))


class PairScorer(Scorer):
    """Families that read query and document together: one forward pass per pair."""

    def __init__(self, folder: Path, settings: ScorerConfig, model_class):
        super().__init__(settings)
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=settings.trust_remote_code)
        self.module = (
            model_class.from_pretrained(
                str(folder), dtype=getattr(torch, settings.dtype), trust_remote_code=settings.trust_remote_code
            )
            .to(torch_device(settings.device))
            .eval()
        )
        self._fit_max_length(self.tokenizer, self.module.config)

    @abstractmethod
    def _batch_scores(self, queries: list[str], docs: list[str]) -> torch.Tensor:
        """One score per (query, document) pair of the batch."""

    def _prepare(self, queries: Mapping[str, str], docs: Mapping[str, str]):
        """Texts as the model will read them, per distinct query and document (hook for truncation)."""
        return dict(queries), dict(docs)

    @torch.inference_mode()
    def score(self, queries, docs, candidates) -> Scores:
        pairs = [(q, d) for q, ranked in candidates.items() for d in ranked]
        if not pairs:  # BM25 found nothing for any query
            return {q: {} for q in candidates}
        query_texts, doc_texts = self._prepare({q: queries[q] for q in candidates}, {d: docs[d] for _, d in pairs})
        # Longest documents first: batches of similar length waste little on padding.
        pairs.sort(key=lambda pair: len(doc_texts[pair[1]]), reverse=True)
        size = self.settings.batch_size
        batch_values = []
        with self._progress((len(pairs) + size - 1) // size, "re-ranking") as bar:
            for start in range(0, len(pairs), size):
                batch = pairs[start : start + size]
                # Scores stay on the device until the end: no sync per batch, so on a GPU the next
                # batch is tokenised while this one runs.
                batch_values.append(
                    self._batch_scores([query_texts[q] for q, _ in batch], [doc_texts[d] for _, d in batch]).float()
                )
                bar.update()
        values = torch.cat(batch_values).tolist() if batch_values else []
        scores: Scores = {q: {} for q in candidates}
        for (q, d), value in zip(pairs, values, strict=True):
            scores[q][d] = value
        return scores

    def _tokens(self, texts: list[str]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.settings.max_length, return_tensors="pt"
        )
        return encoded.to(self.module.device)

    def save(self, folder: Path) -> None:
        self.module.save_pretrained(str(folder))
        self.tokenizer.save_pretrained(str(folder))


class CrossEncoderScorer(PairScorer):
    def __init__(self, folder: Path, settings: ScorerConfig):
        from transformers import AutoModelForSequenceClassification

        super().__init__(folder, settings, AutoModelForSequenceClassification)

    def _batch_scores(self, queries, docs):
        encoded = self.tokenizer(
            queries,
            docs,
            padding=True,
            truncation="only_second",
            max_length=self.settings.max_length,
            return_tensors="pt",
        ).to(self.module.device)
        logits = self.module(**encoded).logits
        if logits.shape[-1] == 1:
            return logits[:, 0]
        return torch.log_softmax(logits.float(), dim=-1)[:, -1]


class PromptScorer(PairScorer):
    """monoT5 and causal LMs: a prompt, then log P(positive) vs P(negative) for the next token."""

    default_template: str

    def __init__(self, folder: Path, settings: ScorerConfig, model_class):
        super().__init__(folder, settings, model_class)
        self.template = settings.template or self.default_template
        self.label_ids = [self._single_token(settings.negative_token), self._single_token(settings.positive_token)]

    def _single_token(self, text: str) -> int:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise UserError(
                f"model.scorer: '{text}' is {len(ids)} tokens for this tokenizer; "
                "positive_token and negative_token must be single tokens"
            )
        return ids[0]

    def _truncate(self, texts: Mapping[str, str], max_tokens: int) -> dict[str, str]:
        """Cut texts to ``max_tokens`` tokens, so that truncation never cuts the prompt's tail."""
        keys = list(texts)
        ids = self.tokenizer(
            [texts[k] for k in keys], add_special_tokens=False, truncation=True, max_length=max_tokens
        )["input_ids"]
        return dict(zip(keys, self.tokenizer.batch_decode(ids, skip_special_tokens=True), strict=True))

    def _prepare(self, queries, docs):
        s = self.settings
        empty_prompt = len(self.tokenizer(self.template.format(query="", document=""))["input_ids"])
        doc_budget = s.max_length - s.max_query_length - empty_prompt
        if doc_budget <= 0:
            raise UserError(
                "model.scorer.max_length leaves no room for the document: raise it or lower max_query_length"
            )
        return self._truncate(queries, s.max_query_length), self._truncate(docs, doc_budget)

    def _prompts(self, queries, docs) -> list[str]:
        return [self.template.format(query=q, document=d) for q, d in zip(queries, docs, strict=True)]

    def _label_log_prob(self, next_token_logits: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(next_token_logits[:, self.label_ids].float(), dim=-1)[:, 1]


class MonoT5Scorer(PromptScorer):
    default_template = "Query: {query} Document: {document} Relevant:"

    def __init__(self, folder: Path, settings: ScorerConfig):
        from transformers import AutoModelForSeq2SeqLM

        super().__init__(folder, settings, AutoModelForSeq2SeqLM)

    def _batch_scores(self, queries, docs):
        encoded = self._tokens(self._prompts(queries, docs))
        start = self.module.config.decoder_start_token_id
        decoder_input_ids = torch.full((encoded["input_ids"].shape[0], 1), start, device=self.module.device)
        logits = self.module(**encoded, decoder_input_ids=decoder_input_ids).logits
        return self._label_log_prob(logits[:, 0])


class CausalLMScorer(PromptScorer):
    default_template = (
        "Document: {document}\nQuery: {query}\nIs the document relevant to the query? Answer yes or no.\nAnswer:"
    )

    def __init__(self, folder: Path, settings: ScorerConfig):
        from transformers import AutoModelForCausalLM

        super().__init__(folder, settings, AutoModelForCausalLM)
        # Left padding puts every prompt's last token at position -1.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def _batch_scores(self, queries, docs):
        logits = self.module(**self._tokens(self._prompts(queries, docs))).logits
        return self._label_log_prob(logits[:, -1])


def fit_max_length(max_length: int, tokenizer, config, key: str) -> int:
    """``max_length`` capped at what the model can read (a longer input would fail or wrap positions);
    ``key`` names the setting in the log line."""
    limits = [getattr(config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    limit = min((n for n in limits if n and n < 1_000_000), default=None)
    if limit and max_length > limit:
        log.info("%s %d exceeds the model's %d positions: using %d", key, max_length, limit, limit)
        return limit
    return max_length


_SCORERS = {
    "bi_encoder": BiEncoderScorer,
    "cross_encoder": CrossEncoderScorer,
    "monot5": MonoT5Scorer,
    "causal_lm": CausalLMScorer,
}


def load_scorer(kind: str, folder: Path, settings: ScorerConfig | None = None, role: str = "model.ir") -> Scorer:
    """Load the IR model in ``folder`` as a scorer of family ``kind``.

    A checkpoint made for another family is refused first (``checkpoints.check_kind``): loaded anyway, some
    would score noise (a cross-encoder gets a random head). Code shipped with a checkpoint runs only when
    ``settings.trust_remote_code`` is set; weights load from safetensors where the folder has them, and
    PyTorch ``.bin`` files only as plain tensors (transformers' ``weights_only`` loading)."""
    from taskvec_ir.models.checkpoints import CheckpointError, check_kind

    if kind not in _SCORERS:
        raise UserError(f"model.kind: '{kind}' is not one of {', '.join(ModelKind)}")
    settings = settings or ScorerConfig()
    check_kind(kind, Path(folder), role)
    try:
        return _SCORERS[kind](Path(folder), settings)
    except pickle.UnpicklingError as error:  # a .bin holding more than tensors: refused, never run
        raise CheckpointError(
            f"{role} ({folder}) has PyTorch weights that hold more than tensors and are not "
            f"unpickled (they could run code): convert them to safetensors where you trust them "
            f"({str(error).splitlines()[0]})"
        ) from None
    except ValueError as error:
        if settings.trust_remote_code or "trust_remote_code" not in str(error):
            raise
        raise CheckpointError(
            f"{role} ({folder}) ships its own model code (auto_map in its config), which is not "
            "run unless you trust it: set model.scorer.trust_remote_code=true for this "
            "checkpoint, or use one that transformers supports natively"
        ) from None
