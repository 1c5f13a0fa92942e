"""Bad input is refused early, with one clear message naming what to fix, and leaves nothing that looks complete.

A representative set runs the ``taskvec-ir`` command as a user would (one process per case, two at a time);
the rest is checked on the functions that refuse it. Elsewhere already: an unknown split, an unknown
ir_datasets id and a missing BEIR path (tests/ir/test_splits.py, test_documents.py, test_beir.py); a wrong scorer
setting (tests/models/test_scoring.py); shape and architecture mismatches found by the merge itself
(tests/models/test_merging.py).
"""

import json
import logging
import os
import re
from dataclasses import replace

import pytest
from hydra.errors import ConfigCompositionException
from safetensors.torch import load_file, save_file

from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.config.model import ScorerConfig
from taskvec_ir.ir import documents, splits
from taskvec_ir.ir.irds import use_ir_datasets_home
from taskvec_ir.models.checkpoints import (
    CheckpointError,
    check_checkpoints,
    check_kind,
    checkpoint_family,
    resolve_model_source,
)
from taskvec_ir.models.scoring import load_scorer
from taskvec_ir.runs.compose import compose

from procs import run_taskvec_ir
from scenarios import HYDRA_TYPE_ERRORS, REFUSED
from tiny_models import tiny_bert, tiny_llama, tiny_t5


@pytest.mark.parametrize("case", list(REFUSED))
def test_bad_input_exits_early_with_one_clear_message(refused, case):
    result, out = refused[case]
    assert result.returncode == 1, result.stdout[-2000:]
    for message in REFUSED[case][2]:
        assert message in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    if case in HYDRA_TYPE_ERRORS:  # Hydra's own message, naming the key, before our code runs
        assert "taskvec-ir:" not in result.stderr and lines[-1].startswith(
            "Set the environment variable HYDRA_FULL_ERROR"
        )
    else:  # one message, last: its first line names the problem (a message may go on to list the fixes)
        ours = [i for i, line in enumerate(lines) if line.startswith("taskvec-ir: ")]
        assert len(ours) == 1 and REFUSED[case][2][0] in lines[ours[0]], lines[-5:]
        assert not any(re.match(r"\[\d{4}-\d\d-\d\d ", line) for line in lines[ours[0] :]), lines[ours[0] :]
    # Nothing that looks complete, or even started: no metrics, runs, W&B run or trial.
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*")) if out.exists() else []
    assert not [p for p in left if p.endswith(("metrics.json", "objective.json", "optimization_results.yaml"))], left
    assert not [p for p in left if p.startswith(("runs", "wandb", "trial_"))], left


@pytest.mark.slow
def test_a_bug_keeps_its_traceback_and_is_not_reported_as_a_user_error(triple, mirror_dir, tmp_path):
    """Only UserError ends with the one-line message: a ValueError from our code is a bug, and its traceback is
    what a report of it needs."""
    overrides = ["dataset=cranfield", "retriever.top_k=5", *(f"model.{role}={path}" for role, path in triple.items())]
    result = run_taskvec_ir(tmp_path / "out", overrides, mirror_dir, faults="*:bug")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "ValueError: an injected bug" in result.stderr, result.stderr[-3000:]
    assert "taskvec-ir: an injected bug" not in result.stderr


def test_hydra_config_errors_stay_hydras(triple, mirror_dir, tmp_path):
    result = run_taskvec_ir(tmp_path / "out", ["alpha.valeu=1"], mirror_dir)
    assert result.returncode != 0
    assert "Could not override 'alpha.valeu'" in result.stderr and "taskvec-ir:" not in result.stderr
    assert not (tmp_path / "out").exists()


# -- values -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "override, message",
    [
        ("lam.value=1.5", r"lam.value: 1.5 must be a number in \[0, 1\]"),
        ("retriever.top_k=0", "retriever.top_k: 0 must be positive"),
        ("alpha.value=nan", "alpha.value: nan must be a finite number"),
        ("alpha.value=inf", "alpha.value: inf must be a finite number"),
        ("lam.value=-0.1", r"lam.value: -0.1 must be a number in \[0, 1\]"),
        ("lam.value=nan", r"lam.value: nan must be a number in \[0, 1\]"),
        ("lam.grid=[0.0,1.2]", r"lam.value: 1.2 must be a number in \[0, 1\]"),
        ("retriever.top_k=-5", "retriever.top_k: -5 must be positive"),
        ("merge.density=0", r"merge.density: 0.0 must be in \(0, 1\]"),
        ("merge.gamma=0.5", r"merge.gamma: 0.5 must be in \[0, 1\) with gamma \+ density ≤ 1"),
        ("model.scorer.device=gpu0", "model.scorer.device: 'gpu0' is not auto or a torch device"),
        ("model.scorer.template='no placeholders'", "model.scorer.template must contain {query} and {document}"),
        ("split=valid", r"dataset 'cranfield' has no split 'valid' in dataset.splits \(available: test\)"),
        (
            "+alpha.rules=[{layers: [0], factor: 1, pattern: '('}]",
            r"alpha.rules\[0\].pattern: '\(' is not a regular expression",
        ),
        ("task=adapt", "task=adapt: model 'minilm_demo' names no checkpoint to adapt"),
        ("+retriever.k3=1", "retriever.k3: Key 'k3' not in 'RetrieverConfig'"),  # added, but not a key of the schema
    ],
)
def test_values_out_of_range_or_unknown_are_refused(override, message):
    compose(["dataset=cranfield"])  # the unchanged config is fine
    with pytest.raises(ValueError, match=message):
        compose(["dataset=cranfield", override])


@pytest.mark.parametrize(
    "override, key",
    [
        ("alpha.value=true", "alpha.value"),
        ("lam.value=high", "lam.value"),
        ("retriever.top_k=many", "retriever.top_k"),
        ("retriever.top_k=2.5", "retriever.top_k"),
        ("merge.seed=x", "merge.seed"),
        ("model.scorer.batch_size=[1]", "model.scorer.batch_size"),
        ("dataset.doc_fields=title", "dataset.doc_fields"),
        ("retriever.k3=1", "retriever.k3"),
        ("model.kind=colbert", "model.kind"),  # a value that is not a choice (every one: tests/config)
        ("systems=[bm25,colbert]", "systems[1]"),
    ],
)
def test_values_of_the_wrong_type_are_refused_when_the_config_is_composed(override, key):
    with pytest.raises(ConfigCompositionException, match=re.escape(override)) as error:
        compose(["dataset=cranfield", override])
    assert f"full_key: {key}" in str(error.value.__cause__)


# -- checkpoints ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("families")
    return {
        "bi_encoder": tiny_bert(root / "bi", 0, "bi_encoder"),
        "cross_encoder": tiny_bert(root / "ce", 1, "cross_encoder"),
        "mlm": tiny_bert(root / "mlm", 2, "mlm"),
        "t5": tiny_t5(root / "t5", 3),
        "llama": tiny_llama(root / "llama", 4),
        "bert_base": tiny_bert(root / "base", 5, "mlm"),
        "bert_domain": tiny_bert(root / "domain", 6, "mlm"),
        "wider": tiny_bert(root / "wider", 7, "mlm", intermediate_size=48),
        "vocab_1000": tiny_bert(root / "vocab", 8, "mlm", vocab_size=1000),
    }


@pytest.mark.parametrize(
    "checkpoint, family",
    [
        ("bi_encoder", "bi_encoder"),
        ("cross_encoder", "cross_encoder"),
        ("mlm", None),
        ("t5", "monot5"),
        ("llama", "causal_lm"),
    ],
)
def test_checkpoint_family_is_read_from_its_config(checkpoints, checkpoint, family):
    assert checkpoint_family(checkpoints[checkpoint]) == family


@pytest.mark.parametrize(
    "kind, checkpoint, what",
    [
        (
            "monot5",
            "bi_encoder",
            "a bert checkpoint (BertModel; sentence-transformers layout); it looks like model.kind=bi_encoder",
        ),
        (
            "causal_lm",
            "t5",
            "a t5 checkpoint (T5ForConditionalGeneration; encoder-decoder); it looks like model.kind=monot5",
        ),
        ("cross_encoder", "bi_encoder", "a bert checkpoint (BertModel; sentence-transformers layout)"),
        ("cross_encoder", "mlm", "a bert checkpoint (BertForMaskedLM)"),
        ("bi_encoder", "llama", "a llama checkpoint (LlamaForCausalLM); it looks like model.kind=causal_lm"),
        ("monot5", "llama", "a llama checkpoint (LlamaForCausalLM)"),
    ],
)
def test_kind_that_does_not_match_the_checkpoint_is_refused(checkpoints, kind, checkpoint, what):
    with pytest.raises(CheckpointError, match=rf"model.kind={kind} needs .* but model.ir \(.*\) is ") as error:
        check_kind(kind, checkpoints[checkpoint])
    assert what in str(error.value)


@pytest.mark.parametrize(
    "kind, checkpoint",
    [
        ("bi_encoder", "bi_encoder"),
        ("bi_encoder", "mlm"),
        ("cross_encoder", "cross_encoder"),
        ("monot5", "t5"),
        ("causal_lm", "llama"),
    ],
)
def test_kind_that_matches_is_accepted(checkpoints, kind, checkpoint):
    check_kind(kind, checkpoints[checkpoint])


def test_loading_a_scorer_of_the_wrong_kind_is_refused_before_any_weight_is_read(checkpoints):
    # Loaded anyway, a cross-encoder over a checkpoint without a head would get a random head and score noise.
    with pytest.raises(CheckpointError, match="model.kind=cross_encoder needs a sequence-classification head"):
        load_scorer("cross_encoder", checkpoints["bi_encoder"], ScorerConfig(show_progress=False))


def _triple(checkpoints, **roles):
    return {
        "ir": checkpoints["cross_encoder"],
        "base": checkpoints["bert_base"],
        "domain": checkpoints["bert_domain"],
        **{role: checkpoints[name] for role, name in roles.items()},
    }


def test_matching_triple_is_accepted(checkpoints):
    check_checkpoints(_triple(checkpoints), "cross_encoder")
    check_checkpoints(
        {"ir": checkpoints["bi_encoder"], "base": checkpoints["bert_base"], "domain": checkpoints["bert_domain"]},
        "bi_encoder",
    )


def test_other_architecture_is_refused_naming_the_first_keys(checkpoints):
    with pytest.raises(CheckpointError) as error:
        check_checkpoints(_triple(checkpoints, base="t5"), "cross_encoder")
    message = str(error.value)
    assert (
        message.startswith("model.base (")
        and "a t5 checkpoint" in message
        and "not the IR model's architecture" in message
    )
    assert "first without one: bert.embeddings" in message and "first of model.base unmatched: " in message


def test_other_parameter_names_are_refused_naming_the_first_keys(checkpoints, tmp_path):
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    (renamed / "config.json").write_text((checkpoints["bert_domain"] / "config.json").read_text())
    tensors = load_file(checkpoints["bert_domain"] / "model.safetensors")
    save_file(
        {
            key.replace("encoder.layer", "blocks").replace("embeddings", "embed"): value
            for key, value in tensors.items()
        },
        str(renamed / "model.safetensors"),
    )
    with pytest.raises(
        CheckpointError,
        match=r"model.domain \(.*\) is a bert checkpoint .* tensors have a counterpart; "
        r"first without one: bert\.embeddings\..*first of model\.domain unmatched: ",
    ):
        check_checkpoints({**_triple(checkpoints), "domain": renamed}, "cross_encoder")


def test_other_shapes_are_refused_naming_the_first_keys(checkpoints):
    with pytest.raises(
        CheckpointError,
        match=r"model.domain \(.*\) has 6 tensors whose shape differs .*first: "
        r"bert\.encoder\.layer\.0\.intermediate\.dense\.bias \(32,\) vs "
        r"bert\.encoder\.layer\.0\.intermediate\.dense\.bias \(48,\); ",
    ):
        check_checkpoints(_triple(checkpoints, domain="wider"), "cross_encoder")


def test_other_vocabulary_is_refused_naming_both_sizes(checkpoints):
    with pytest.raises(
        CheckpointError,
        match=r"model.domain \(.*\) has a vocabulary of 1000 tokens, the IR model 30522 "
        r".*first differing tensors: bert.embeddings.word_embeddings.weight \(30522, 16\)",
    ):
        check_checkpoints(_triple(checkpoints, domain="vocab_1000"), "cross_encoder")


def test_roles_are_named_by_their_config_keys(checkpoints):
    with pytest.raises(CheckpointError, match=r"^model.extra_domains.law.domain \("):
        check_checkpoints(
            {**_triple(checkpoints), "law.domain": checkpoints["vocab_1000"]},
            "cross_encoder",
            lambda role: f"model.{role}" if "." not in role else f"model.extra_domains.{role}",
        )


def test_unreachable_hub_is_one_clear_message(monkeypatch):
    import huggingface_hub

    class ConnectError(Exception):  # stands for the HTTP client's transport error
        pass

    class TransportError(ConnectError):
        pass

    def no_network(*args, **kwargs):
        raise TransportError("Name or service not known")

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub, "list_repo_files", no_network)
    with pytest.raises(CheckpointError, match="model.base: cannot reach the Hugging Face Hub for 'org/model'"):
        resolve_model_source("org/model", "model.base")


# -- texts and judgements ---------------------------------------------------------------------------------------
@pytest.fixture
def beir(tmp_path):
    """A tiny BEIR collection to damage: 4 documents, 3 test queries."""
    folder = tmp_path / "collection"
    (folder / "qrels").mkdir(parents=True)
    docs = {"d1": "boundary layer flow", "d2": "heat transfer", "d3": "", "d4": "pressure on a wing"}
    queries = {"q1": "boundary layer", "q2": "heat", "q3": "wing pressure"}

    def write(docs=docs, queries=queries, qrels="q1\td1\t1\nq2\td2\t1\nq3\td4\t1\n"):
        (folder / "corpus.jsonl").write_text(
            "".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in docs.items())
        )
        (folder / "queries.jsonl").write_text(
            "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
        )
        (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
        name = f"damaged-{tmp_path.name}"
        return DatasetConfig(
            name=name,
            docs=name,
            doc_fields=["title", "text"],
            query_field="text",
            language="en",
            splits={"test": f"{name}/test"},
            relevance_map=None,
            beir_path=str(folder),
        )

    use_ir_datasets_home(os.environ["IR_DATASETS_HOME"])
    return write


def test_empty_query_is_an_error_naming_its_id_and_the_count(beir):
    dataset = beir(queries={"q1": "boundary layer", "q2": "  ", "q3": ""})
    with pytest.raises(
        ValueError,
        match=r"split 'test': 2 of 3 queries have empty text \(first: q2, q3\); "
        r"fix the queries or dataset.query_field",
    ):
        splits.load_split(dataset, "test")


def test_empty_documents_are_kept_with_a_warning_and_their_count(beir, caplog):
    dataset = beir()
    with caplog.at_level(logging.WARNING, logger="taskvec_ir.ir.documents"):
        docs = documents.load_docs(dataset)
    assert docs["d3"] == "" and len(docs) == 4
    assert "1 of 4 documents" in caplog.text and "(first: d3)" in caplog.text


def test_qrels_naming_unknown_documents_are_counted_and_kept(beir, caplog):
    dataset = beir(qrels="q1\td1\t1\nq1\tgone1\t2\nq2\tgone2\t1\nq3\tgone2\t0\n")
    split = splits.load_split(dataset, "test")
    assert split.qrels["q1"] == {"d1": 1, "gone1": 2}  # kept: the official judgements
    with caplog.at_level(logging.WARNING, logger="taskvec_ir.ir.splits"):
        assert splits.check_judged_documents(dataset, split.qrels, "test") == 3
    assert (
        "3 judgements (2 relevant, 3 queries) name 2 documents not in the corpus (first: gone1, gone2)" in caplog.text
    )


def test_unknown_judged_documents_are_reported_by_a_run(beir, caplog, tmp_path):
    # needs wiring: splits.check_judged_documents called where Experiment computes BM25 candidates
    from taskvec_ir.pipeline.pipeline import Pipeline, PipelineSpec
    from taskvec_ir.storage.cache import Cache

    spec = PipelineSpec.from_config(compose(["dataset=cranfield"]))
    spec = replace(spec, dataset=beir(qrels="q1\td1\t1\nq1\tgone1\t2\nq2\td2\t1\nq3\td4\t1\n"))
    with caplog.at_level(logging.WARNING, logger="taskvec_ir.ir.splits"):
        Pipeline(spec, Cache(tmp_path / "cache")).candidates("test")
    assert "1 judgements (1 relevant, 1 queries) name 1 documents not in the corpus (first: gone1)" in caplog.text


def test_unknown_docs_id_fails_with_the_split_before_the_corpus_is_read(beir):
    dataset = replace(beir(), docs="no-such-collection")
    with pytest.raises(ValueError, match="unknown ir_datasets id 'no-such-collection': fix dataset.docs"):
        splits.load_split(dataset, "test")


def test_unknown_doc_field_fails_with_the_split(beir):
    dataset = replace(beir(), doc_fields=["body"])
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['body'\] in dataset.doc_fields"):
        splits.load_split(dataset, "test")
