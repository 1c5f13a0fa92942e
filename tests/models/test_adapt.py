"""The adapt stage: continued pre-training of a start checkpoint on a corpus, cached and resumable."""

import json
import logging
import os
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from sentence_transformers import SentenceTransformer

from taskvec_ir.config.checks import parse
from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.config.model import AdaptConfig, ScorerConfig
from taskvec_ir.models.adapt import (
    PARTIAL_KIND,
    adapted_checkpoint,
    batch_indices,
    corrupt_spans,
    distinct_batch_indices,
    document_pairs,
    document_sample,
    random_spans_noise_mask,
    resolve_objective,
    sentinel_ids,
)
from taskvec_ir.models.checkpoints import CheckpointError, CheckpointReader
from taskvec_ir.models.merging import task_vector
from taskvec_ir.models.scoring import load_scorer
from taskvec_ir.storage.cache import Cache

from tiny_models import MINILM, tiny_bert, tiny_llama, tiny_t5

# Short documents in the tiny word-level vocabulary (T5 and Llama), which BERT's tokenizer also reads, as
# the adapt stage receives a corpus: doc_id -> {field: text}.
DOCS = {
    doc_id: {"text": text}
    for doc_id, text in {
        "d1": "the protein gene in cancer cells",
        "d2": "flow on the wing boundary layer with heat",
        "d3": "pressure and heat flow in the boundary layer",
        "d4": "a gene is relevant to the cancer query",
        "d5": "cells with protein and gene and cancer",
        "d6": "wing pressure is the answer to the query",
        "empty": "  ",
    }.items()
}
# Documents with titles and sentences, for inverse_cloze: every title has 3 words or more, every sentence 6.
TITLED_DOCS = {
    f"t{i}": {
        "title": f"{topic} in the boundary layer",
        "text": f"the {topic} is the answer to the query. a gene is relevant to the {topic} here. "
        f"cells with protein and {topic} and heat flow.",
    }
    for i, topic in enumerate(["protein", "gene", "cancer", "wing", "pressure", "heat"])
}
CORPUS = {"docs": "toy", "doc_fields": ["text"]}
FAST = {"steps": 3, "batch_size": 3, "max_length": 32, "learning_rate": 1e-3, "save_every": 2}


def spec(**values) -> AdaptConfig:
    """An adapt config as a model config's ``model.domain`` gives it (typed as the schema types it)."""
    return parse(AdaptConfig, values, "adapt")


EXPECTED_OBJECTIVE = {"bert_mlm": "mlm", "t5": "span_corruption", "llama": "next_token", "bi_encoder": "simcse"}
# (start, objective) for each objective: "auto" wherever it picks the objective, so that is checked too.
RUNS = {
    "mlm": ("bert_mlm", "auto"),
    "span_corruption": ("t5", "auto"),
    "next_token": ("llama", "auto"),
    "simcse": ("bi_encoder", "auto"),
    "tsdae": ("bi_encoder", "tsdae"),
    "inverse_cloze": ("bi_encoder", "inverse_cloze"),
}
LOADERS = {
    "mlm": transformers.AutoModelForMaskedLM.from_pretrained,
    "span_corruption": transformers.AutoModelForSeq2SeqLM.from_pretrained,
    "next_token": transformers.AutoModelForCausalLM.from_pretrained,
    "simcse": SentenceTransformer,
    "tsdae": SentenceTransformer,
    "inverse_cloze": SentenceTransformer,
}
CORPORA = {objective: TITLED_DOCS if objective == "inverse_cloze" else DOCS for objective in RUNS}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from a second thread, and on shared cores its waits cost seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def no_docs():
    raise AssertionError("docs were read")


@pytest.fixture(scope="module")
def starts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("starts")
    return {
        "bert_mlm": tiny_bert(root / "bert_mlm", 0, "mlm"),
        "t5": tiny_t5(root / "t5", 0),
        "llama": tiny_llama(root / "llama", 0),
        "bi_encoder": tiny_bert(root / "bi_encoder", 0, "bi_encoder"),
    }


@pytest.fixture(scope="module")
def adapted(starts, tmp_path_factory) -> dict[str, Path]:
    """Each objective run once, for the tests that inspect the results."""
    cache = Cache(tmp_path_factory.mktemp("cache"))
    return {
        objective: adapted_checkpoint(
            spec(start=str(starts[start]), objective=choice, **FAST), cache, lambda o=objective: CORPORA[o], CORPUS
        )
        for objective, (start, choice) in RUNS.items()
    }


@pytest.mark.parametrize("objective", list(RUNS))
def test_each_objective_trains_and_saves_a_checkpoint_of_the_start_layout(objective, starts, adapted):
    start, out = CheckpointReader(starts[RUNS[objective][0]]), CheckpointReader(adapted[objective])
    # Same tensor names and shapes as the start (what a task vector needs), and trained values.
    assert set(out) == set(start) and all(out.shape(name) == start.shape(name) for name in start)
    unchanged = {name for name in start if start[name].is_floating_point() and torch.equal(start[name], out[name])}
    # Every tensor moves but a bi-encoder's BERT pooler, which mean pooling leaves out of the forward pass.
    assert unchanged <= {"pooler.dense.weight", "pooler.dense.bias"}
    assert LOADERS[objective](str(adapted[objective])) is not None
    provenance = json.loads((adapted[objective] / "provenance.json").read_text())
    assert provenance["objective"] == objective
    assert provenance["steps"] == FAST["steps"] and len(provenance["losses"]) == FAST["steps"]
    assert provenance["documents"] == 6  # the blank one is left out (inverse_cloze: 6 titled documents)
    assert provenance["corpus"] == CORPUS
    assert provenance["device"] == ("cuda" if torch.cuda.is_available() else "cpu")  # device: auto
    assert np.isfinite(provenance["final_loss"]) and provenance["wall_seconds"] > 0
    assert provenance["settings"]["save_every"] == FAST["save_every"]
    assert {"torch", "transformers", "sentence-transformers"} <= set(provenance["libraries"])


def test_objective_auto_picks_the_family_objective(starts, tmp_path):
    for start, objective in EXPECTED_OBJECTIVE.items():
        assert resolve_objective(starts[start], "auto") == objective
    decoder = tmp_path / "decoder"
    decoder.mkdir()
    (decoder / "config.json").write_text(json.dumps({"model_type": "bert", "is_decoder": True}))
    assert resolve_objective(decoder, "auto") == "next_token"


@pytest.mark.parametrize(
    "start, objective",
    [
        ("bert_mlm", "simcse"),
        ("bert_mlm", "inverse_cloze"),
        ("bert_mlm", "span_corruption"),
        ("t5", "mlm"),
        ("llama", "tsdae"),
        ("t5", "next_token"),
    ],
)
def test_an_objective_that_does_not_fit_the_start_is_refused(starts, start, objective):
    with pytest.raises(ValueError, match="adapt.objective"):
        resolve_objective(starts[start], objective)


def test_tsdae_is_refused_for_an_architecture_without_a_decoder(starts, tmp_path):
    folder = tmp_path / "distilbert_bi"
    folder.mkdir()
    for name in ("modules.json", "config.json"):
        (folder / name).write_text((starts["bi_encoder"] / name).read_text())
    (folder / "config.json").write_text(json.dumps({"model_type": "distilbert", "architectures": ["DistilBertModel"]}))
    assert resolve_objective(folder, "auto") == "simcse"
    with pytest.raises(ValueError, match="adapt.objective: tsdae .* model_type 'distilbert'; use simcse"):
        resolve_objective(folder, "tsdae")


class KeyRecorder(Cache):
    """A cache that records the key it is asked for and builds nothing."""

    def folder(self, kind, key, build):
        self.key = key
        return Path(key)


# A second value for every setting (with the bi-encoder start).
OTHER_VALUES = {
    "objective": "tsdae",
    "steps": 4,
    "batch_size": 2,
    "max_length": 16,
    "learning_rate": 2e-3,
    "seed": 1,
    "device": "cpu",
    "sample_size": 4,
    "mlm_probability": 0.2,
    "noise_density": 0.3,
    "mean_span_length": 2.0,
    "pair_source": "title",
    "pair_count": 3,
    "pairs_split": "dev",
    "save_every": 5,
}
PAIR_SETTINGS = ("pair_source", "pair_count")


def _key(start: Path, corpus=CORPUS, **settings) -> str:
    cache = KeyRecorder(None)
    adapted_checkpoint(spec(start=str(start), **{**FAST, **settings}), cache, no_docs, corpus)
    return cache.key


def test_other_values_cover_every_setting():
    assert set(OTHER_VALUES) | {"start", "dataset"} == {field.name for field in fields(AdaptConfig)}


@pytest.mark.parametrize("name", sorted(OTHER_VALUES))
def test_the_cache_key_changes_with_every_setting_but_save_every(starts, name):
    start, other = starts["bi_encoder"], {name: OTHER_VALUES[name]}
    # How often progress is saved changes neither result nor key; the pair settings are read by inverse_cloze alone,
    # pairs_split by supervised alone.
    if name in ("save_every", "pairs_split") or name in PAIR_SETTINGS:
        assert _key(start, **other) == _key(start)
    else:
        assert _key(start, **other) != _key(start)
    if name not in ("objective", "save_every", "pairs_split"):  # inverse_cloze's key follows every setting, its own too
        assert _key(start, objective="inverse_cloze", **other) != _key(start, objective="inverse_cloze")


def test_the_cache_key_follows_start_and_corpus_and_resolves_auto(starts):
    key = _key(starts["bi_encoder"])
    assert _key(starts["bert_mlm"]) != key
    assert _key(starts["bi_encoder"], corpus={**CORPUS, "docs": "other"}) != key
    assert _key(starts["bi_encoder"], objective="simcse") == _key(starts["bi_encoder"], objective="auto")


def test_a_second_call_is_a_cache_hit_that_reads_no_documents(starts, tmp_path):
    cache = Cache(tmp_path)
    llama = spec(start=str(starts["llama"]), **{**FAST, "steps": 2})
    first = adapted_checkpoint(llama, cache, lambda: DOCS, CORPUS)
    other_config = DatasetConfig(name="ignored", docs="ignored", splits={"test": "ignored"})  # only corpus counts
    assert adapted_checkpoint(replace(llama, dataset=other_config), cache, no_docs, CORPUS) == first
    assert cache.stats == {"adapted.miss": 1, "adapted.hit": 1}


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("objective", list(RUNS))
def test_an_interrupted_build_resumes_and_ends_as_an_uninterrupted_one(objective, starts, tmp_path, caplog):
    start, choice = RUNS[objective]
    five_steps = spec(start=str(starts[start]), objective=choice, **{**FAST, "steps": 5, "save_every": 2})
    cache = Cache(tmp_path / "interrupted")

    def stop_at_step_four(step, loss):  # after the state of step 4 is saved
        if step == 4:
            raise Interrupted

    with pytest.raises(Interrupted):
        adapted_checkpoint(five_steps, cache, lambda: CORPORA[objective], CORPUS, log_step=stop_at_step_four)
    assert len(list((tmp_path / "interrupted" / PARTIAL_KIND).iterdir())) == 1
    logged = []
    with caplog.at_level(logging.INFO, logger="taskvec_ir.models.adapt"):
        resumed = adapted_checkpoint(
            five_steps, cache, lambda: CORPORA[objective], CORPUS, log_step=lambda s, _: logged.append(s)
        )
    assert "resuming at step 4 of 5" in caplog.text
    assert logged == [5]
    assert not any((tmp_path / "interrupted" / PARTIAL_KIND).iterdir())  # removed once complete
    provenance = json.loads((resumed / "provenance.json").read_text())
    assert provenance["steps"] == 5 and provenance["resumed_from_step"] == 4

    whole = adapted_checkpoint(five_steps, Cache(tmp_path / "whole"), lambda: CORPORA[objective], CORPUS)
    assert json.loads((whole / "provenance.json").read_text())["losses"] == provenance["losses"]
    resumed_weights, whole_weights = CheckpointReader(resumed), CheckpointReader(whole)
    assert all(torch.equal(resumed_weights[name], whole_weights[name]) for name in whole_weights)


def test_without_a_cache_dir_nothing_is_saved_to_resume_from(starts):
    out = adapted_checkpoint(
        spec(start=str(starts["bert_mlm"]), **{**FAST, "save_every": 1}), Cache(None), lambda: DOCS, CORPUS
    )
    assert json.loads((out / "provenance.json").read_text())["steps"] == FAST["steps"]


@pytest.mark.parametrize(
    "name, value",
    [
        ("objective", "bert"),
        ("steps", 0),
        ("steps", 2.5),
        ("batch_size", -1),
        ("max_length", True),
        ("learning_rate", 0),
        ("learning_rate", float("nan")),
        ("seed", -1),
        ("device", "gpu0"),
        ("sample_size", 0),
        ("mlm_probability", 1.0),
        ("noise_density", 0),
        ("mean_span_length", 0.5),
        ("pair_source", "abstract"),
        ("pair_count", 0),
        ("save_every", 0),
    ],
)
def test_bad_settings_are_refused_naming_the_key_before_documents_are_read(starts, name, value):
    with pytest.raises(ValueError, match=rf"^adapt\.{name}: "):
        adapted_checkpoint(spec(start=str(starts["bert_mlm"]), **{**FAST, name: value}), Cache(None), no_docs, CORPUS)


def test_simcse_needs_in_batch_negatives_and_a_start_must_exist(starts, tmp_path):
    for objective in ("simcse", "inverse_cloze"):
        with pytest.raises(ValueError, match=rf"^adapt\.batch_size: {objective}"):
            AdaptConfig(start="x", objective=objective, batch_size=1)
    with pytest.raises(CheckpointError, match="adapt.start"):
        adapted_checkpoint(spec(start=str(tmp_path / "missing"), **FAST), Cache(None), no_docs, CORPUS)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_a_missing_gpu_is_refused_before_documents_are_read(starts):
    with pytest.raises(ValueError, match=r"^adapt\.device: 'cuda'"):
        adapted_checkpoint(
            spec(start=str(starts["bert_mlm"]), **{**FAST, "device": "cuda"}), Cache(None), no_docs, CORPUS
        )


@pytest.mark.parametrize(
    "kind, ir, objective",
    [
        ("bi_encoder", lambda root: tiny_bert(root, 2, "bi_encoder"), "simcse"),
        ("bi_encoder", lambda root: tiny_bert(root, 2, "bi_encoder"), "inverse_cloze"),
        ("cross_encoder", lambda root: tiny_bert(root, 2, "cross_encoder"), "mlm"),
        ("monot5", lambda root: tiny_t5(root, 2), "span_corruption"),
        ("causal_lm", lambda root: tiny_llama(root, 2), "next_token"),
    ],
)
def test_an_adapted_checkpoint_serves_as_the_domain_model(kind, ir, objective, starts, adapted, tmp_path):
    scorer = load_scorer(kind, ir(tmp_path / "ir"), ScorerConfig(show_progress=False))
    tau = task_vector(scorer.module, CheckpointReader(starts[RUNS[objective][0]]), CheckpointReader(adapted[objective]))
    unchanged = {name for name, tensor in tau.items() if not torch.count_nonzero(tensor)}
    assert tau and unchanged <= {"0.model.pooler.dense.weight", "0.model.pooler.dense.bias"}  # see above


def test_span_corruption_hides_spans_behind_sentinels_as_t5_does():
    rng = np.random.default_rng(0)
    ids = list(range(100, 140))
    mask = random_spans_noise_mask(len(ids), noise_density=0.15, mean_span_length=3.0, max_spans=99, rng=rng)
    assert mask.sum() == 6 and not mask[0]  # round(40 * 0.15) tokens; a kept run comes first
    spans = int(np.sum(mask[1:] & ~mask[:-1]))
    assert spans == 2  # round(6 / 3)
    inputs, targets = corrupt_spans(ids, mask, sentinels=[1, 2, 3])
    assert inputs.count(1) == inputs.count(2) == 1 and 3 not in inputs
    assert targets[0] == 1 and targets[-1] == 3 and len(targets) == 6 + 3
    # Putting the targets' spans back where the inputs' sentinels stand gives the original sequence.
    spans_by_sentinel, current = {}, None
    for token in targets:
        if token in (1, 2, 3):
            current = spans_by_sentinel.setdefault(token, [])
        else:
            current.append(token)
    restored = [token for item in inputs for token in spans_by_sentinel.get(item, [item])]
    assert restored == ids
    assert random_spans_noise_mask(1, 0.15, 3.0, 99, rng).tolist() == [True]


def test_sentinels_are_extra_id_tokens_or_the_top_of_the_vocabulary(starts):
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(starts["t5"]))
    ids, source = sentinel_ids(tokenizer)  # the tiny tokenizer has no <extra_id_N>
    assert ids == list(range(len(tokenizer) - 1, len(tokenizer) - 1 - len(ids), -1)) and len(ids) >= 2
    assert "no <extra_id_N>" in source and not set(ids) & set(tokenizer.all_special_ids)
    tokenizer.add_tokens([f"<extra_id_{i}>" for i in range(3)], special_tokens=True)
    ids, source = sentinel_ids(tokenizer)
    assert tokenizer.convert_ids_to_tokens(ids) == ["<extra_id_0>", "<extra_id_1>", "<extra_id_2>"]


def test_documents_and_batches_are_seeded_and_cover_the_corpus():
    docs = {f"d{i}": {"text": f"text {i}"} for i in range(10)}
    sample = document_sample(docs, 4, seed=0)
    assert len(sample) == 4 and sample == document_sample(dict(reversed(docs.items())), 4, seed=0)
    assert sample != document_sample(docs, 4, seed=1) and len(document_sample(docs, None, 0)) == 10
    epoch = [i for step in range(5) for i in batch_indices(step, 10, 2, seed=0)]
    assert sorted(epoch) == list(range(10)) and epoch != list(range(10))
    assert batch_indices(7, 10, 3, seed=0) == batch_indices(7, 10, 3, seed=0) != batch_indices(7, 10, 3, seed=1)


def test_inverse_cloze_pairs_a_title_or_a_sentence_with_the_rest_of_its_document():
    documents = [
        {
            "title": "Wing flow at high speed",
            "text": "The wing was tested in a tunnel today. Short one. The flow separated near the trailing edge.",
        },
        {"title": "Notes", "text": "A single sentence of the text of this document."},  # title too short
        {
            "title": "heat in the boundary layer",
            "text": "heat in the boundary layer . the heat flux was measured at six stations .",
        },
    ]
    title_pairs = [d.pair(q) for d in document_pairs(documents, "title", None, 0) for q in d.queries]
    assert title_pairs == [
        (
            "Wing flow at high speed",
            "The wing was tested in a tunnel today. Short one. The flow separated near the trailing edge.",
        ),
        # A text that opens with its title (Cranfield's) loses that copy, or the pair would be trivial.
        ("heat in the boundary layer", "the heat flux was measured at six stations ."),
    ]
    sentence_pairs = [d.pair(q) for d in document_pairs(documents, "sentence", None, 0) for q in d.queries]
    assert sentence_pairs == [  # short sentences are no query, but stay in the positive; a lone sentence has no rest
        (
            "The wing was tested in a tunnel today.",
            "Wing flow at high speed Short one. The flow separated near the trailing edge.",
        ),
        (
            "The flow separated near the trailing edge.",
            "Wing flow at high speed The wing was tested in a tunnel today. Short one.",
        ),
    ]
    both = document_pairs(documents, "both", None, 0)
    assert [d.pair(q) for d in both for q in d.queries] == [*title_pairs[:1], *sentence_pairs, title_pairs[1]]
    assert len(both) == 2  # grouped by document: a batch draws documents, so it never holds one twice
    drawn = document_pairs(documents, "both", 2, seed=0)
    assert sum(len(d.queries) for d in drawn) == 2 and drawn == document_pairs(documents, "both", 2, seed=0)
    assert any(document_pairs(documents, "both", 2, seed=s) != drawn for s in range(1, 5))
    with pytest.raises(ValueError, match=r"^adapt\.pair_source: .* no title pairs .*'title' field"):
        document_pairs([{"text": "One sentence of six words. And another one of six words."}], "title", None, 0)


def test_an_inverse_cloze_batch_holds_each_document_once_and_epochs_cover_them():
    for step in range(40):
        batch = distinct_batch_indices(step, 10, 3, seed=0)
        assert len(batch) == len(set(batch)) == 3  # 10 % 3 = 1 left out per epoch: no batch spans two epochs
    epoch = [i for step in range(3) for i in distinct_batch_indices(step, 10, 3, seed=0)]
    assert len(set(epoch)) == 9 and distinct_batch_indices(3, 10, 3, 0) != distinct_batch_indices(3, 10, 3, 1)
    too_few = spec(start="x", objective="inverse_cloze", **{**FAST, "batch_size": 7})
    with pytest.raises(ValueError, match=r"^adapt\.batch_size: 7 exceeds the 6 documents"):
        adapted_checkpoint(replace(too_few, start=str(MINILM)), Cache(None), lambda: TITLED_DOCS, CORPUS)


def test_inverse_cloze_training_is_deterministic_under_its_seed(starts, adapted, tmp_path):
    settings = spec(start=str(starts["bi_encoder"]), objective="inverse_cloze", **FAST)
    again = adapted_checkpoint(settings, Cache(tmp_path / "again"), lambda: TITLED_DOCS, CORPUS)
    other_seed = adapted_checkpoint(replace(settings, seed=1), Cache(tmp_path / "seed"), lambda: TITLED_DOCS, CORPUS)
    first, second, third = (CheckpointReader(f) for f in (adapted["inverse_cloze"], again, other_seed))
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not all(torch.equal(first[name], third[name]) for name in first)
    details = json.loads((again / "provenance.json").read_text())["objective_details"]
    assert details["pairs"] == 6 + 6 * 3 and details["title_pairs"] == 6 and details["documents_with_pairs"] == 6


def write_beir(folder: Path) -> Path:
    """A BEIR collection with queries and qrels beside its titled documents."""
    folder.mkdir(parents=True)
    docs = [{"_id": doc_id, **parts} for doc_id, parts in TITLED_DOCS.items()]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "protein gene"}) + "\n")
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tt0\t1\n")
    return folder


def test_adaptation_reads_no_query_and_no_qrels(starts, tmp_path, monkeypatch):
    """The app's own path (Experiment resolving an adapt config on a registered collection) trains with every
    query and qrels reader of ir_datasets and of the data module made to fail."""
    from ir_datasets.datasets.base import FilteredQueries
    from ir_datasets.datasets.beir import BeirQrels, BeirQueries

    from taskvec_ir.config.model import ModelConfig
    from taskvec_ir.ir import data
    from taskvec_ir.pipeline.experiment import Experiment, ExperimentSpec

    data.use_ir_datasets_home(os.environ["IR_DATASETS_HOME"])  # the tests' home (conftest): set before any import
    corpus = DatasetConfig(
        name="labels-guard",
        docs="labels-guard",
        doc_fields=["title", "text"],
        splits={"test": "labels-guard/test"},
        beir_path=str(write_beir(tmp_path / "beir")),
    )

    def labels_read(*args, **kwargs):
        raise AssertionError("a query or a judgement was read")

    for owner, name in [(BeirQueries, "queries_iter"), (FilteredQueries, "queries_iter"), (BeirQrels, "qrels_iter")]:
        monkeypatch.setattr(owner, name, labels_read)
    monkeypatch.setattr(data, "load_split", labels_read)
    data.register_beir_collection(corpus.name, corpus.beir_path)
    with pytest.raises(AssertionError, match="judgement was read"):  # the guard is live: the labels are out of reach
        list(__import__("ir_datasets").load("labels-guard/test").qrels_iter())

    start = str(starts["bi_encoder"])
    domain = spec(start=start, objective="inverse_cloze", **FAST)
    model = ModelConfig(name="guard", kind="bi_encoder", ir=start, base=start, domain=replace(domain, dataset=corpus))
    folder = Experiment(ExperimentSpec(corpus, model), Cache(tmp_path / "cache")).folders()["domain"]
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["objective"] == "inverse_cloze" and provenance["documents"] == len(TITLED_DOCS)
