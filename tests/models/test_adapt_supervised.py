"""objective: supervised on real SciFact: the judged pairs it trains on, the queries it leaves out, and a ΘD that
learned from them."""

import json
import os
from dataclasses import replace

import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import cos_sim

from taskvec_ir.ir import data
from taskvec_ir.models import adapt
from taskvec_ir.models.checkpoints import CheckpointReader
from taskvec_ir.pipeline.experiment import Experiment, ExperimentSpec
from taskvec_ir.runs.compose import compose
from taskvec_ir.storage.cache import Cache

FAST = ["model.domain.steps=3", "model.domain.batch_size=8", "model.domain.max_length=32"]


@pytest.fixture(scope="module")
def scifact(mirror_dir):
    """The supervised triple's config on SciFact (its ΘD trained on the evaluated dataset), data placed."""
    data.use_ir_datasets_home(os.environ["IR_DATASETS_HOME"])
    cfg = compose(
        ["model=minilm_scifact_supervised", f"data.mirror_dir={mirror_dir}", "model.scorer.show_progress=false"]
    )
    data.place_offline_files(cfg.dataset, mirror_dir)
    return cfg


def irds_positive_pairs(irds_id: str) -> set[tuple[str, str]]:
    import ir_datasets

    return {(q.query_id, q.doc_id) for q in ir_datasets.load(irds_id).qrels_iter() if q.relevance > 0}


def held_out_texts(dataset) -> set[str]:
    """The texts of every dev and test query, as the evaluation reads them."""
    return {
        " ".join(t.lower().split()) for split in ("dev", "test") for t in data.load_queries(dataset, split).values()
    }


def test_the_pairs_are_trains_judged_pairs_without_any_dev_or_test_query(scifact):
    """Train's positive pairs (ir_datasets' own qrels) less the dev queries the evaluation reads, and less the 4
    train queries whose claim SciFact repeats, under another id, in dev (2) or test (2)."""
    import ir_datasets

    train = irds_positive_pairs("beir/scifact/train")
    texts = {
        q.query_id: " ".join(q.text.lower().split()) for q in ir_datasets.load("beir/scifact/train").queries_iter()
    }
    dev = set(data.load_queries(scifact.dataset, "dev"))  # the queries a sweep tunes on
    repeated = {q for q, _ in train if q not in dev and texts[q] in held_out_texts(scifact.dataset)}
    judged = data.judged_pairs(scifact.model.domain.dataset, "train")
    assert (len(train), len({q for q, _ in train}), len(dev), sorted(repeated)) == (
        919,
        809,
        162,
        ["1291", "85", "871", "90"],
    )
    assert set(judged.pairs) == {(q, d) for q, d in train if q not in dev | repeated}
    assert (len(judged.pairs), len(judged.queries), len(judged.documents)) == (725, 643, 491)
    assert judged.excluded == {"dev": sorted(dev | {"85", "90"}), "test": ["1291", "871"]}
    assert not {" ".join(t.lower().split()) for t in judged.queries.values()} & held_out_texts(scifact.dataset)


def test_another_dev_sample_excludes_its_own_queries_and_keys_its_own_checkpoint(scifact):
    dataset = scifact.model.domain.dataset
    smaller = replace(dataset, splits={**dataset.splits, "dev": replace(dataset.splits["dev"], fraction=0.05)})
    dev = set(data.load_queries(smaller, "dev"))
    judged = data.judged_pairs(smaller, "train")
    assert len(dev) == 40 and dev <= set(judged.excluded["dev"]) and not dev & set(judged.queries)
    assert len(judged.queries) == 809 - len(judged.excluded["dev"]) - 2  # the 2 repeated in test
    domain = scifact.model.domain
    assert domain.identity() != replace(domain, dataset=smaller).identity()


def batch_loss(model: SentenceTransformer, pairs: list[tuple[str, str]]) -> float:
    """MultipleNegativesRankingLoss of ``pairs`` as one batch (scale 20, cosine), as training computes it."""
    with torch.inference_mode():
        queries, documents = (model.encode([p[i] for p in pairs], convert_to_tensor=True) for i in (0, 1))
        return torch.nn.functional.cross_entropy(20 * cos_sim(queries, documents), torch.arange(len(pairs))).item()


@pytest.mark.slow  # about 40 s of CPU: a real MiniLM trained 3 steps
def test_training_reads_no_dev_or_test_query_and_lowers_the_loss_of_its_pairs(scifact, tmp_path, monkeypatch):
    """Through the app's own path: every text the loss encodes is recorded; none is a dev or test query, and
    ΘD fits the batches it was trained on better than ΘT did."""
    cfg = compose([*scifact_overrides(scifact), *FAST, "model.domain.learning_rate=1e-4"])
    encoded: list[list[str]] = []
    features = adapt._SupervisedTrainee._features

    def recording(self, texts):
        encoded.append(list(texts))
        return features(self, texts)

    monkeypatch.setattr(adapt._SupervisedTrainee, "_features", recording)
    folders = Experiment(ExperimentSpec.from_config(cfg), Cache(tmp_path / "cache")).folders()
    batches = list(zip(encoded[0::2], encoded[1::2], strict=True))  # (queries, documents) of each step
    assert len(batches) == 3 and all(len(set(docs)) == len(docs) == len(queries) for queries, docs in batches)

    judged = data.judged_pairs(cfg.model.domain.dataset, "train")
    trained = {query for queries, _ in batches for query in queries}
    assert trained <= set(judged.queries.values())
    assert not {" ".join(t.lower().split()) for t in trained} & held_out_texts(cfg.dataset)
    pairs = {(judged.queries[q], judged.documents[d]) for q, d in judged.pairs}
    assert all(pair in pairs for queries, docs in batches for pair in zip(queries, docs, strict=True))

    provenance = json.loads((folders["domain"] / "provenance.json").read_text())
    assert provenance["objective"] == "supervised" and provenance["supervised"]["pairs"] == 725
    assert set(data.load_queries(cfg.dataset, "dev")) <= set(provenance["supervised"]["excluded"]["dev"]["ids"])
    ir, domain = CheckpointReader(folders["ir"]), CheckpointReader(folders["domain"])
    assert sum((domain[k].float() - ir[k].float()).norm().item() for k in ir if ir[k].is_floating_point()) > 0
    before, after = (SentenceTransformer(str(folders[role]), device="cpu") for role in ("ir", "domain"))
    for model in (before, after):
        model.max_seq_length = 32
    losses = [[batch_loss(model, list(zip(*batch, strict=True))) for batch in batches] for model in (before, after)]
    assert sum(losses[1]) < sum(losses[0]), losses  # the mean loss of the batches it was trained on fell


def scifact_overrides(cfg) -> list[str]:
    return [
        "model=minilm_scifact_supervised",
        f"data.mirror_dir={cfg.data.mirror_dir}",
        "model.scorer.show_progress=false",
    ]
