"""The sentence-transformers objectives: TSDAE's noise, inverse_cloze's batches of distinct documents and its
determinism, and the supervised control on real SciFact (it reads no dev or test query nor a near-duplicate of
one, and fits its pairs)."""

import json
import os
from dataclasses import replace

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import cos_sim

from taskvec_ir.ir import irds, splits
from taskvec_ir.ir.pairs import distinct_words, judged_pairs, word_overlap
from taskvec_ir.models.adapt.bi_encoders import SupervisedTrainee, delete_words
from taskvec_ir.models.adapt.cache_entry import adapted_checkpoint
from taskvec_ir.models.checkpoints import CheckpointReader
from taskvec_ir.pipeline.pipeline import Pipeline, PipelineSpec
from taskvec_ir.runs.compose import compose
from taskvec_ir.storage.cache import Cache

from adapt_cases import CORPUS, FAST, TITLED_DOCS, spec
from tiny_models import MINILM

pytestmark = pytest.mark.usefixtures("one_thread")


def test_tsdae_deletes_words_at_its_ratio_and_always_keeps_one():
    text = " ".join(f"w{i}" for i in range(1000))
    damaged = delete_words(text, 0.6, np.random.default_rng(0))
    kept = damaged.split()
    assert 350 < len(kept) < 450 and kept == [word for word in text.split() if word in set(kept)]  # order kept
    assert damaged == delete_words(text, 0.6, np.random.default_rng(0))
    assert len(delete_words("one two three", 1.0, np.random.default_rng(0)).split()) == 1


def test_an_inverse_cloze_batch_cannot_hold_more_documents_than_give_pairs():
    too_few = spec(start=str(MINILM), objective="inverse_cloze", **{**FAST, "batch_size": 7})
    with pytest.raises(ValueError, match=r"^adapt\.batch_size: 7 exceeds the 6 documents"):
        adapted_checkpoint(too_few, Cache(None), lambda: TITLED_DOCS, CORPUS)


def test_inverse_cloze_training_is_deterministic_under_its_seed(starts, tmp_path):
    settings = spec(start=str(starts["bi_encoder"]), objective="inverse_cloze", **FAST)
    first = adapted_checkpoint(settings, Cache(tmp_path / "first"), lambda: TITLED_DOCS, CORPUS)
    again = adapted_checkpoint(settings, Cache(tmp_path / "again"), lambda: TITLED_DOCS, CORPUS)
    other_seed = adapted_checkpoint(replace(settings, seed=1), Cache(tmp_path / "seed"), lambda: TITLED_DOCS, CORPUS)
    first, second, third = (CheckpointReader(f) for f in (first, again, other_seed))
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not all(torch.equal(first[name], third[name]) for name in first)
    details = json.loads((again / "provenance.json").read_text())["objective_details"]
    assert details["pairs"] == 6 + 6 * 3 and details["title_pairs"] == 6 and details["documents_with_pairs"] == 6


# -- supervised: the control on real SciFact ------------------------------------------------------------------------
SUPERVISED_FAST = ["model.domain.steps=3", "model.domain.batch_size=8", "model.domain.max_length=32"]


def held_out_texts(dataset) -> set[str]:
    """The texts of every dev and test query, as the evaluation reads them."""
    return {
        " ".join(t.lower().split()) for split in ("dev", "test") for t in splits.load_queries(dataset, split).values()
    }


def batch_loss(model: SentenceTransformer, pairs: list[tuple[str, str]]) -> float:
    """MultipleNegativesRankingLoss of ``pairs`` as one batch (scale 20, cosine), as training computes it."""
    with torch.inference_mode():
        queries, documents = (model.encode([p[i] for p in pairs], convert_to_tensor=True) for i in (0, 1))
        return torch.nn.functional.cross_entropy(20 * cos_sim(queries, documents), torch.arange(len(pairs))).item()


@pytest.mark.slow  # about 40 s of CPU: a real MiniLM trained 3 steps
def test_training_reads_no_dev_or_test_query_and_lowers_the_loss_of_its_pairs(mirror_dir, tmp_path, monkeypatch):
    """Through the app's own path: every text the loss encodes is recorded; none is a dev or test query, and
    ΘD fits the batches it was trained on better than ΘT did."""
    irds.use_ir_datasets_home(os.environ["IR_DATASETS_HOME"])
    cfg = compose(
        [
            "model=minilm_scifact_supervised",
            f"data.mirror_dir={mirror_dir}",
            "model.scorer.show_progress=false",
            *SUPERVISED_FAST,
            "model.domain.learning_rate=1e-4",
        ]
    )
    irds.place_offline_files(cfg.dataset, mirror_dir)
    encoded: list[list[str]] = []
    features = SupervisedTrainee.features

    def recording(self, texts):
        encoded.append(list(texts))
        return features(self, texts)

    monkeypatch.setattr(SupervisedTrainee, "features", recording)
    folders = Pipeline(PipelineSpec.from_config(cfg), Cache(tmp_path / "cache")).folders()
    batches = list(zip(encoded[0::2], encoded[1::2], strict=True))  # (queries, documents) of each step
    assert len(batches) == 3 and all(len(set(docs)) == len(docs) == len(queries) for queries, docs in batches)

    domain = cfg.model.domain
    judged = judged_pairs(
        domain.dataset,
        "train",
        near_duplicate_overlap=domain.near_duplicate_overlap,
        exclude_relevant_documents=domain.exclude_relevant_documents,
    )
    trained = {query for queries, _ in batches for query in queries}
    assert trained <= set(judged.queries.values())
    held_out = held_out_texts(cfg.dataset)
    assert not {" ".join(t.lower().split()) for t in trained} & held_out
    closest = max(word_overlap(distinct_words(t), distinct_words(h)) for t in trained for h in held_out)
    assert closest < domain.near_duplicate_overlap == 0.7  # no near-duplicate of a dev or test claim either
    pairs = {(judged.queries[q], judged.documents[d]) for q, d in judged.pairs}
    assert all(pair in pairs for queries, docs in batches for pair in zip(queries, docs, strict=True))

    provenance = json.loads((folders["domain"] / "provenance.json").read_text())
    assert provenance["objective"] == "supervised" and provenance["supervised"]["pairs"] == 501
    assert set(splits.load_queries(cfg.dataset, "dev")) <= set(provenance["supervised"]["excluded"]["dev"]["ids"])
    ir, domain = CheckpointReader(folders["ir"]), CheckpointReader(folders["domain"])
    assert sum((domain[k].float() - ir[k].float()).norm().item() for k in ir if ir[k].is_floating_point()) > 0
    before, after = (SentenceTransformer(str(folders[role]), device="cpu") for role in ("ir", "domain"))
    for model in (before, after):
        model.max_seq_length = 32
    losses = [[batch_loss(model, list(zip(*batch, strict=True))) for batch in batches] for model in (before, after)]
    assert sum(losses[1]) < sum(losses[0]), losses  # the mean loss of the batches it was trained on fell
