"""The objectives of a start that is itself a sentence-transformers bi-encoder, through sentence-transformers'
loss objects: ``simcse`` and ``tsdae`` (unsupervised), ``inverse_cloze`` (pairs mined from the documents) and
``supervised`` (a split's judged pairs: a control, never a zero-shot result)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from taskvec_ir.config.model import AdaptConfig
from taskvec_ir.errors import UserError
from taskvec_ir.ir.pairs import TITLE_QUERY, JudgedPairs, document_pairs
from taskvec_ir.models.adapt.trainee import Trainee, distinct_batch_indices
from taskvec_ir.models.scoring import fit_max_length

log = logging.getLogger(__name__)

TSDAE_DELETION_RATIO = 0.6  # the TSDAE paper's best noise: delete 60% of the words


class SentenceTransformerTrainee(Trainee):
    """A sentence-transformers model trained through a sentence-transformers loss.

    The loss objects are used in the loop of ``training`` rather than through the SentenceTransformerTrainer,
    which could resume too (from its own checkpoint folders of trainer state, RNG states and optimiser):
    one loop then serves every objective, with one resumable state and one exact-resume rule.
    """

    def __init__(self, folder: Path, settings: AdaptConfig, device: torch.device):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(folder), device=str(device), model_kwargs={"dtype": torch.float32})
        self.model.max_seq_length = fit_max_length(
            settings.max_length, self.model.tokenizer, self.model.transformers_model.config, "adapt.max_length"
        )
        self.details = {"max_length": self.model.max_seq_length}

    def features(self, texts: list[str]) -> dict:
        """``texts`` as the model's inputs (tensors on its device, and the inputs' modality, "text")."""
        features = self.model.preprocess(texts)
        return {
            name: value.to(self.model.device) if isinstance(value, torch.Tensor) else value
            for name, value in features.items()
        }

    def save(self, folder: Path) -> None:
        self.model.save(str(folder), create_model_card=False)


class SimCSETrainee(SentenceTransformerTrainee):
    """Unsupervised SimCSE: (text, text) pairs; dropout makes the two embeddings of a text differ, and the
    other texts of the batch are the negatives of MultipleNegativesRankingLoss (scale 20 = SimCSE's τ 0.05)."""

    def __init__(self, folder, settings, device):
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        super().__init__(folder, settings, device)
        self.module = MultipleNegativesRankingLoss(self.model)

    def loss(self, texts, rng):
        return self.module([self.features(texts), self.features(texts)], None)


def delete_words(text: str, ratio: float, rng: np.random.Generator) -> str:
    """TSDAE's noise: each whitespace-separated word deleted with probability ``ratio``, one always kept."""
    words = text.split()
    kept = rng.random(len(words)) >= ratio
    if not kept.any():
        kept[rng.integers(len(words))] = True
    return " ".join(word for word, keep in zip(words, kept, strict=True) if keep)


class TSDAETrainee(SentenceTransformerTrainee):
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
        return self.module([self.features(damaged), self.features(texts)], None)


class InverseClozeTrainee(SentenceTransformerTrainee):
    """inverse_cloze: pairs made from the documents (``pairs.document_pairs``), MultipleNegativesRankingLoss with
    the other documents of the batch as negatives. A batch holds distinct documents, one pair each (drawn per step
    among the document's pairs), so no negative is a piece of the query's own document."""

    def __init__(self, folder, settings, device):
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        super().__init__(folder, settings, device)
        self.module = MultipleNegativesRankingLoss(self.model)

    def examples(self, documents, settings):
        pairs = document_pairs(documents, settings.pair_source, settings.pair_count, settings.seed, "adapt.pair_source")
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
        return self.module([self.features([q for q, _ in pairs]), self.features([p for _, p in pairs])], None)


class SupervisedTrainee(SentenceTransformerTrainee):
    """supervised: judged (query, relevant document) pairs (``pairs.judged_pairs``), MultipleNegativesRankingLoss
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
        return self.module([self.features([q for q, _ in pairs]), self.features([d for _, d in pairs])], None)
