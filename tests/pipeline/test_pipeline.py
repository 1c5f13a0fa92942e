import json
from dataclasses import replace

import pytest
import torch
import transformers
from hydra.errors import ConfigCompositionException

from taskvec_ir.config.merge_settings import MergeSetting
from taskvec_ir.config.model import ScorerConfig
from taskvec_ir.ir import documents, evaluation, fusion
from taskvec_ir.models import scoring
from taskvec_ir.models.checkpoints import CheckpointReader
from taskvec_ir.models.merging import TaskArithmetic, apply_task_vectors, save_tensors, task_vector
from taskvec_ir.models.model_pool import ModelPool
from taskvec_ir.pipeline.pipeline import Pipeline, Weights
from taskvec_ir.runs.compose import compose
from taskvec_ir.runs.job import open_pipeline

from tiny_models import tiny_triple

SETTINGS = ScorerConfig(show_progress=False, max_length=64, max_query_length=16)


def config(*overrides: str):
    return compose(overrides)


@pytest.mark.parametrize("family", ["bi_encoder", "monot5"])
@pytest.mark.parametrize("streamed", [False, True])
def test_in_place_alphas_equal_fresh_merges_bit_for_bit(tmp_path, family, streamed):
    folders = tiny_triple(tmp_path, family)
    scorer = scoring.load_scorer(family, folders["ir"], SETTINGS)
    tau = task_vector(scorer.module, CheckpointReader(folders["base"]), CheckpointReader(folders["domain"]))
    if streamed:  # τ on disk in small shards, read tensor by tensor at every α
        (tmp_path / "tau").mkdir()
        save_tensors(tau.items(), tmp_path / "tau", shard_bytes=4096)
        assert len(list((tmp_path / "tau").glob("*.safetensors"))) > 1
    merge = TaskArithmetic(
        scorer.module,
        CheckpointReader(folders["ir"]),
        {"domain": CheckpointReader(tmp_path / "tau") if streamed else tau},
    )
    for alpha in [0.3, 1.0, -0.5, 0.7, 0.0, 0.3]:
        merge.set(MergeSetting((("domain", alpha),)))
        fresh = scoring.load_scorer(family, folders["ir"], SETTINGS).module
        apply_task_vectors(fresh, {"domain": tau}, MergeSetting((("domain", alpha),)))
        for (name, merged), (_, expected) in zip(
            scorer.module.named_parameters(), fresh.named_parameters(), strict=True
        ):
            assert torch.equal(merged, expected), (alpha, name)


def test_lambda_only_change_runs_no_model(cranfield_cfg, monkeypatch):
    first = open_pipeline(cranfield_cfg("lam.value=0.3"))
    means_03, _ = first.evaluate("test", ["task_arithmetic"], 0.3)
    assert first.cache.stats["scores.miss"] == 1

    def no_model(*args, **kwargs):
        raise AssertionError("a λ-only change loaded a model")

    monkeypatch.setattr(scoring, "load_scorer", no_model)
    second = open_pipeline(cranfield_cfg("lam.value=0.7"))
    means_07, _ = second.evaluate("test", ["bm25", "task_arithmetic"], 0.7)
    assert second.cache.stats == {"bm25.hit": 1, "scores.hit": 1}
    assert means_07["task_arithmetic"] != means_03["task_arithmetic"]


def test_alpha_change_reuses_candidates_and_model(cranfield_cfg):
    first = open_pipeline(cranfield_cfg())
    pool = ModelPool()
    for alpha in (0.2, 0.9):  # as sweep trials in one process: a new spec, the same cache and loaded models
        pipeline = Pipeline(replace(first.spec, merge=MergeSetting((("domain", alpha),))), first.cache, pool)
        pipeline.evaluate("test", ["task_arithmetic"], 0.5)
    assert first.cache.stats["bm25.miss"] == 1 and first.cache.stats["scores.miss"] == 2
    assert list(pool.scorers) == ["ir"]
    assert first.cache.stats["task_vector.miss"] + first.cache.stats["task_vector.hit"] <= 1


@pytest.mark.slow  # Cranfield's test queries scored three times by a real model
def test_the_random_direction_null_is_scored_apart_from_tau_and_is_the_ir_model_at_alpha_zero(cranfield_cfg):
    tau = open_pipeline(cranfield_cfg("alpha.value=0.5"))
    null = open_pipeline(cranfield_cfg("alpha.value=0.5", "merge.direction=random", "merge.seed=2"))
    assert null.spec.merge.identity() == {"alphas": {"domain": 0.5}, "method": "task_arithmetic", "seed": 2,
                                          "direction": "random"}  # fmt: skip
    tau_scores = tau.scores("test", Weights("ir", tau.spec.merge))
    null_scores = null.scores("test", Weights("ir", null.spec.merge))
    assert null.cache.stats["scores.miss"] == 1 and null_scores != tau_scores  # the null's own entry
    at_zero = null.scores("test", Weights("ir", null.spec.merge.at(0.0)))
    assert at_zero == tau.scores("test", Weights("ir")) and tau.cache.stats["scores.hit"] == 1  # α = 0 is ΘT
    inputs = {artifact.name for artifact in null.inputs("test", merged=True)}
    assert {"task-vector-minilm_demo", "random-direction-minilm_demo"} <= inputs


@pytest.mark.slow  # indexes Cranfield, then scores its test queries with a real model
def test_once_indexed_no_stage_reads_the_whole_corpus(cranfield_cfg, monkeypatch):
    open_pipeline(cranfield_cfg())  # indexes the corpus (once, in the cache)

    def whole_corpus(*args, **kwargs):
        raise AssertionError("the whole corpus was read")

    monkeypatch.setattr(documents, "iter_docs", whole_corpus)
    monkeypatch.setattr(documents, "load_docs", whole_corpus)
    pipeline = open_pipeline(cranfield_cfg("retriever.top_k=15", "alpha.value=0.8"))  # new candidates, α
    means, _ = pipeline.evaluate("test", ["bm25", "task_arithmetic"], 0.3)
    assert pipeline.cache.stats["bm25_index.hit"] == 1 and pipeline.cache.stats["scores.miss"] == 1
    assert means["task_arithmetic"]["ndcg@10"] > 0 and len(pipeline.texts("test")) > 15


def test_a_run_file_of_our_bm25_run_gives_the_same_first_stage_and_fused_results(cranfield_cfg, tmp_path):
    ours = open_pipeline(cranfield_cfg())
    evaluation.save_trec_run(ours.candidates("test"), tmp_path / "bm25.trec", "bm25")
    theirs = open_pipeline(cranfield_cfg("retriever=run_file", f"retriever.path={tmp_path / 'bm25.trec'}"))

    assert theirs.candidates("test") == ours.candidates("test")  # the same documents with the same scores
    systems = ["bm25", "ir_model", "task_arithmetic"]
    expected = ours.evaluate("test", systems, 0.3)
    assert theirs.evaluate("test", systems, 0.3) == expected
    for system in systems:
        assert theirs.system_run("test", system, 0.3) == ours.system_run("test", system, 0.3)
    assert theirs.cache.stats["bm25.miss"] == 1  # its own candidates, keyed by the run file's content,
    assert theirs.cache.stats["scores.miss"] == 0  # whose model scores are those already computed


def test_a_run_file_naming_documents_outside_the_corpus_fails_before_any_checkpoint(cranfield_cfg, tmp_path):
    (tmp_path / "run.trec").write_text("1 Q0 184 1 9.0 es\n1 Q0 MED-10 2 8.0 es\n2 Q0 12 1 5.0 es\n2 Q0 x9 2 1 es\n")
    cfg = cranfield_cfg("retriever=run_file", f"retriever.path={tmp_path / 'run.trec'}", "model.ir=/nowhere")
    with pytest.raises(
        ValueError, match=r"2 of the run's 4 documents are not in the corpus cranfield \(first: MED-10, x9\)"
    ):
        open_pipeline(cfg)


def test_lambda_grid_matches_brute_force(cranfield_cfg):
    pipeline = open_pipeline(cranfield_cfg("alpha.value=0.6"))
    grid = [i / 20 for i in range(21)]
    chosen, curve = pipeline.tune_lambda("test", "task_arithmetic", grid, "ndcg@10")
    split = pipeline.split("test")
    candidates = pipeline.candidates("test")
    scores = pipeline.scores("test", Weights("ir", MergeSetting((("domain", 0.6),))))
    brute = {
        lam: evaluation.evaluate_run(split.qrels, fusion.fuse(candidates, scores, lam), ["ndcg@10"])[0]["ndcg@10"]
        for lam in grid
    }
    assert curve == pytest.approx(brute)  # the whole curve, for the sweep's α × λ heatmap
    assert chosen == min(lam for lam in grid if brute[lam] == pytest.approx(max(brute.values())))


def test_saved_merged_model_reloads_to_the_merged_weights(cranfield_cfg, triple, tmp_path):
    from sentence_transformers import SentenceTransformer

    pipeline = open_pipeline(cranfield_cfg("alpha.value=0.4"))
    pipeline.write_merged_checkpoint(tmp_path / "merged")
    reloaded = SentenceTransformer(str(tmp_path / "merged"), device="cpu")
    expected = scoring.load_scorer("bi_encoder", triple["ir"], SETTINGS).module
    tau = task_vector(expected, CheckpointReader(triple["base"]), CheckpointReader(triple["domain"]))
    apply_task_vectors(expected, {"domain": tau}, MergeSetting((("domain", 0.4),)))
    for (name, saved), (_, merged) in zip(reloaded.named_parameters(), expected.named_parameters(), strict=True):
        assert torch.equal(saved, merged), name


def test_domain_model_is_alpha_one_when_the_base_is_the_ir_model(triple, mirror_dir, tmp_path):
    pipeline = open_pipeline(
        config(
            "dataset=cranfield",
            "retriever.top_k=5",
            f"data.mirror_dir={mirror_dir}",
            f"cache.dir={tmp_path}",
            "model.scorer.show_progress=false",
            f"model.ir={triple['ir']}",
            f"model.base={triple['ir']}",
            f"model.domain={triple['domain']}",
        )
    )
    assert pipeline.scores("test", Weights("domain")) is pipeline.scores(
        "test", Weights("ir", MergeSetting((("domain", 1.0),)))
    )
    assert "domain" not in pipeline.triple.pool.scorers  # ΘT + 1·(ΘD − ΘT) is ΘD: no second model loaded


@pytest.fixture(scope="module")
def second_domain(tmp_path_factory):
    from tiny_models import tiny_bert

    return tiny_bert(tmp_path_factory.mktemp("second") / "other", 3, "mlm")


def test_exported_merge_of_two_vectors_reloads_to_identical_weights_and_scores(
    cranfield_cfg, triple, second_domain, tmp_path
):
    overrides = (
        "alpha.value=0.4",
        f"+model.extra_domains.other.domain={second_domain}",
        "+alpha.extra.other=-0.3",
        "merge=ties",
        "merge.density=0.5",
    )
    pipeline = open_pipeline(cranfield_cfg(*overrides))
    setting = pipeline.spec.merge
    assert setting.alphas == (("domain", 0.4), ("other", -0.3)) and setting.method.name == "ties"
    scores = pipeline.scores("test", Weights("ir", setting))
    pipeline.write_merged_checkpoint(tmp_path / "merged")
    # A standard checkpoint: transformers alone loads it (config, tokenizer, safetensors).
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in (tmp_path / "merged").iterdir()}
    transformers.AutoModel.from_pretrained(tmp_path / "merged")
    reloaded = scoring.load_scorer("bi_encoder", tmp_path / "merged", pipeline.spec.model.scorer)  # as the run scored
    for (name, saved), (_, merged) in zip(
        reloaded.module.named_parameters(), pipeline.triple.scorer("ir").module.named_parameters(), strict=True
    ):
        assert torch.equal(saved, merged), name
    split = pipeline.split("test")
    assert reloaded.score(split.queries, pipeline.texts("test"), pipeline.candidates("test")) == scores


def test_extra_vectors_need_their_alpha(cranfield_cfg, second_domain):
    with pytest.raises(
        ValueError, match=r"alpha\.extra: give one α per model\.extra_domains entry \(missing: \['other'\]"
    ):
        open_pipeline(cranfield_cfg(f"+model.extra_domains.other.domain={second_domain}"))
    # A wrong type is Hydra's to refuse, when it composes the config (the schema types alpha.extra as floats).
    with pytest.raises(ConfigCompositionException, match=r"\+alpha\.extra\.other=x") as error:
        open_pipeline(cranfield_cfg(f"+model.extra_domains.other.domain={second_domain}", "+alpha.extra.other=x"))
    assert "Value 'x' of type 'str' could not be converted to Float" in str(error.value.__cause__)
    with pytest.raises(ValueError, match=r"alpha\.extra\.other: inf must be a finite number"):
        open_pipeline(cranfield_cfg(f"+model.extra_domains.other.domain={second_domain}", "+alpha.extra.other=inf"))


def test_layer_ablation_configs_score_and_refuse_missing_layers(cranfield_cfg):
    pipeline = open_pipeline(cranfield_cfg("alpha=layer_add", "alpha.layer=1"))
    setting = pipeline.spec.merge
    assert setting.scale.rules[0].layers == (1,) and setting.scale.otherwise == 0.0
    means, _ = pipeline.evaluate("test", ["ir_model", "task_arithmetic"], 0.5)
    assert means["task_arithmetic"] != means["ir_model"]
    diagnostics = pipeline.merge_diagnostics(setting)
    parameters = dict(pipeline.triple.scorer("ir").module.named_parameters())
    layer_1 = sum(p.numel() for n, p in parameters.items() if ".layer.1." in n)
    total = sum(p.numel() for p in parameters.values())
    assert diagnostics["changed_fraction"] == pytest.approx(layer_1 / total, rel=0.01)
    with pytest.raises(ValueError, match=r"alpha\.rules\[0\]\.layers: \[7\] not in the IR model \(it has layers 0–1\)"):
        open_pipeline(cranfield_cfg("alpha=layer_add", "alpha.layer=7"))  # refused before BM25 or any model


def test_an_adapt_config_as_domain_is_trained_once_and_merged(cranfield_cfg, triple, tmp_path):
    """model.domain given as an adapt config (conf/adapt/): ΘT adapted on Cranfield's documents, cached."""
    adapt = [
        "+model.domain={objective: simcse, steps: 2, batch_size: 4, max_length: 32, sample_size: 8, "
        f"start: '{triple['ir']}'}}",
        "+model.domain.dataset={name: cranfield, docs: cranfield, doc_fields: [title, text], query_field: text}",
        f"model.base={triple['ir']}",
    ]
    first = open_pipeline(cranfield_cfg(*adapt))
    assert first.cache.stats["adapted.miss"] == 1
    folder = first.folders()["domain"]
    assert json.loads((folder / "provenance.json").read_text())["corpus"]["name"] == "cranfield"
    merged = first.scores("test", Weights("ir", MergeSetting((("domain", 0.5),))))
    assert merged != first.scores("test", Weights("ir"))  # two small steps: the scores move, the ranking may not
    second = open_pipeline(cranfield_cfg(*adapt))
    assert second.cache.stats["adapted.hit"] == 1 and second.folders()["domain"] == folder
    with pytest.raises(ValueError, match=r"model\.domain\.dataset: name the corpus"):
        open_pipeline(cranfield_cfg(*adapt[:1], f"model.base={triple['ir']}"))
