"""The analyses a job runs after its evaluation (``analyses=[alpha_response,depth]``), on real Cranfield with the
tiny triple: their numbers recomputed independently from the job's own files and the cached scores."""

import contextlib
import io
import json
import math
from dataclasses import replace

import numpy as np
import pytest
from fusion_reference import minmax_fused

from taskvec_ir.config.sweep import SweepConfig
from taskvec_ir.errors import UserError
from taskvec_ir.ir import evaluation
from taskvec_ir.pipeline import analyses
from taskvec_ir.pipeline.model_scores import ModelScores, system_weights
from taskvec_ir.pipeline.selection.choice import Fold
from taskvec_ir.runs.compose import compose
from taskvec_ir.runs.job import open_pipeline, run_job

from wandb_records import logged_table, run_contents

ALPHAS = [0.0, 0.5, 1.0]


def tiny_cranfield(triple, mirror_dir, cache, *overrides):
    """The typed config of a run on real Cranfield with the tiny triple (``cranfield_cfg``, in a shared cache)."""
    return compose(
        [
            "dataset=cranfield",
            f"data.mirror_dir={mirror_dir}",
            f"cache.dir={cache}",
            "model.scorer.show_progress=false",
            *(f"model.{role}={path}" for role, path in triple.items()),
            *overrides,
        ]
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache for the module: Cranfield's index and candidates are built once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def analysed(triple, mirror_dir, cache, tmp_path_factory):
    """A job at α = 0.5, λ = 0.3 on BM25's top 20 with both analyses: its config, folder and printed output."""
    folder = tmp_path_factory.mktemp("analysed")
    cfg = tiny_cranfield(
        triple,
        mirror_dir,
        cache,
        "retriever.top_k=20",
        "alpha.value=0.5",
        "lam.value=0.3",
        "analyses=[alpha_response,depth]",
        f"analysis.alphas={ALPHAS}",
        "analysis.depths=[5,10]",
        "analysis.lams=[0.3,1.0]",
        "analysis.top_queries=3",
        "analysis.timing_queries=2",
    )
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        run_job(cfg, folder / "job")
    return cfg, folder / "job", printed.getvalue()


def read(folder, name):
    return json.loads((folder / name).read_text())


def test_alpha_response_oracle_is_the_per_query_best_alpha_and_shares_count_every_query(analysed):
    cfg, folder, printed = analysed
    response, metrics = read(folder, "alpha_response.json"), read(folder, "metrics.json")
    per_query = read(folder, "per_query.json")["test"]
    pipeline = open_pipeline(cfg)
    qrels, candidates = pipeline.split("test").qrels, pipeline.candidates("test")
    # Brute force: every α's fused run at the job's λ, evaluated per query.
    values = {}
    for alpha in ALPHAS:
        scores = pipeline.scores("test", system_weights("task_arithmetic", pipeline.spec.merge.at(alpha)))
        values[alpha] = evaluation.evaluate_run(qrels, minmax_fused(candidates, scores, 0.3), ["ndcg@10"])[1]["ndcg@10"]
    queries = sorted(values[0.0])
    assert response["queries"] == len(queries) == 225 and response["alphas"] == ALPHAS
    oracle = np.mean([max(values[a][q] for a in ALPHAS) for q in queries])
    assert response["oracle"] == pytest.approx(oracle, abs=1e-12)
    for row in response["curve"]:
        assert row["mean"] == pytest.approx(np.mean(list(values[row["alpha"]].values())), abs=1e-12)
        assert response["oracle"] >= row["mean"]
    assert sum(row["oracle_queries"] for row in response["curve"]) == 225
    # The job's own numbers: TA at α = 0.5 and ΘT (at the same λ, given by lam.value) are two points of the curve.
    assert response["chosen"] == metrics["test"]["task_arithmetic"]["ndcg@10"] == response["curve"][1]["mean"]
    assert response["ir_model"] == metrics["test"]["ir_model"]["ndcg@10"] == response["curve"][0]["mean"]
    # Ties go to the smallest |α|: a query every α leaves equal has ΘT as its oracle.
    for row in response["per_query"].values():
        best = max(row["values"])
        assert row["oracle_alpha"] == next(a for a, v in zip(ALPHAS, row["values"], strict=True) if v == best)
    # Helped, hurt and unchanged: the job's per-query Δ (TA − ΘT), |Δ| ≤ 1e-9 unchanged; every query is one of them.
    delta = {q: per_query["task_arithmetic"]["ndcg@10"][q] - per_query["ir_model"]["ndcg@10"][q] for q in queries}
    counts = response["counts"]
    assert counts == {
        "helped": sum(d > 1e-9 for d in delta.values()),
        "hurt": sum(d < -1e-9 for d in delta.values()),
        "unchanged": sum(abs(d) <= 1e-9 for d in delta.values()),
    }
    assert sum(counts.values()) == 225 and counts["helped"] and counts["hurt"]
    assert response["shares"]["helped"] == counts["helped"] / 225
    # The sign test of helped against hurt, unchanged left out: the two-sided binomial tail, summed by hand.
    n, low = counts["helped"] + counts["hurt"], min(counts["helped"], counts["hurt"])
    assert response["sign_p"] == pytest.approx(min(1, 2 * sum(math.comb(n, k) for k in range(low + 1)) / 2**n))
    assert metrics["analyses"]["alpha_response"]["sign_p"] == response["sign_p"]
    assert f"{counts['helped']} vs {counts['hurt']}, p = {response['sign_p']:.2g}" in printed
    # The largest gains and losses, with their text, in order.
    helped = sorted(delta, key=lambda q: (delta[q], q), reverse=True)[:3]
    assert [row["query_id"] for row in response["top_helped"]] == helped
    assert [row["delta"] for row in response["top_hurt"]] == sorted(delta.values())[:3]
    assert all(row["query"] == pipeline.split("test").queries[row["query_id"]] for row in response["top_helped"])
    assert metrics["analyses"]["alpha_response"]["oracle"] == response["oracle"]
    assert (folder / "alpha_response.png").read_bytes()[:4] == b"\x89PNG"
    assert f"oracle α per query {response['oracle']:.4f} (an upper bound" in printed


def test_depth_surface_at_top_k_is_the_jobs_metric_and_below_it_an_independent_rerank(analysed, monkeypatch):
    cfg, folder, printed = analysed
    surface, metrics = read(folder, "depth_surface.json"), read(folder, "metrics.json")
    assert surface["depths"] == [5, 10, 20] and surface["lams"] == [0.3, 1.0] and surface["alphas"] == ALPHAS
    assert len(surface["rows"]) == 3 * 3 * 2
    job = {row["depth"]: row for row in surface["job"]}
    assert {m: job[20][m] for m in cfg.measures} == metrics["test"]["task_arithmetic"]  # exactly the job's numbers
    row = {(r["depth"], r["alpha"], r["lam"]): r for r in surface["rows"]}
    assert {m: row[20, 0.0, 0.3][m] for m in cfg.measures} == metrics["test"]["ir_model"]
    assert {m: surface["bm25"][m] for m in cfg.measures} == metrics["test"]["bm25"]

    # Depth is read from the cache: any forward pass from here on fails.
    def no_forward_pass(*args, **kwargs):
        raise AssertionError("depth scored candidates again")

    monkeypatch.setattr(ModelScores, "_score", no_forward_pass)
    pipeline = open_pipeline(cfg)
    again = analyses.depth_surface(pipeline, "test", [Fold(None, 0.5, 0.3)], [5, 10, 20], ALPHAS, [0.3, 1.0],
                                   cfg.measures)  # fmt: skip
    assert again["rows"] == surface["rows"] and not pipeline.cache.stats["scores.miss"]
    # Depth 5, recomputed: BM25's top 5 fused (min-max over those 5), then BM25's 6th to 20th below them.
    candidates, qrels = pipeline.candidates("test"), pipeline.split("test").qrels
    scores = pipeline.scores("test", system_weights("task_arithmetic", pipeline.spec.merge.at(0.5)))
    run = {}
    for q, docs in candidates.items():
        ranked = sorted(docs, key=lambda d: (docs[d], d), reverse=True)
        head = minmax_fused({q: {d: docs[d] for d in ranked[:5]}}, scores, 0.3)[q]
        run[q] = {**head, **{d: -1.0 - i for i, d in enumerate(ranked[5:])}}
    expected = evaluation.evaluate_run(qrels, run, cfg.measures)[0]
    assert {m: job[5][m] for m in cfg.measures} == pytest.approx(expected, abs=1e-12)
    assert job[5]["recall@100"] == job[20]["recall@100"]  # every depth ranks the same 20 documents
    # λ = 1 is BM25's order at every depth.
    for depth in (5, 10, 20):
        assert row[depth, 0.5, 1.0]["ndcg@10"] == pytest.approx(surface["bm25"]["ndcg@10"], abs=1e-12)
    # Cost: k pairs per query, and the seconds measured on this machine.
    timing, kept = surface["timing"], {r["depth"]: r for r in surface["kept"]}
    assert timing["queries"] == 2 and timing["device"].startswith("cpu") and timing["kind"] == "bi_encoder"
    assert all(timing["seconds_per_query"][str(k)] > 0 for k in (5, 10, 20))
    assert [kept[k]["pairs_per_query"] for k in (5, 10, 20)] == [5, 10, 20]
    # The tiny triple's TA is below BM25 at top_k: there is no gain to keep (a share of the loss would read as a gain)
    assert job[20]["ndcg@10"] < surface["bm25"]["ndcg@10"]
    assert all(kept[k]["gain_kept"] is None for k in (5, 10, 20))
    assert "depth 5: ndcg@10" in printed and "no gain over BM25 at top_k at 25% of the pairs scored" in printed
    lines = (folder / "depth_surface.csv").read_text().splitlines()
    assert lines[0] == "depth,alpha,lam," + ",".join(cfg.measures) and len(lines) == 1 + 18
    assert metrics["analyses"]["depth"]["depths"] == surface["kept"]
    assert f"depth 5: ndcg@10 {job[5]['ndcg@10']:.4f}" in printed


@pytest.mark.parametrize(
    "bm25, job, kept, said",
    [
        # TA above BM25 at top_k (gain 0.10): depth 5 keeps 0.06 of it
        (0.30, (0.36, 0.40), (0.6, 1.0), "keeps 60% of the gain over BM25"),
        # TA below BM25 at top_k (gain −0.02): no share of a loss, which would read depth 5's −0.05 as 250% "kept"
        (0.40, (0.35, 0.38), (None, None), "no gain over BM25 at top_k"),
        (0.40, (0.35, 0.40), (None, None), "no gain over BM25 at top_k"),  # level with BM25
    ],
)
def test_the_share_of_the_gain_a_depth_keeps_is_said_only_where_there_is_a_gain(bm25, job, kept, said):
    surface = {"depths": [5, 10], "bm25": {"ndcg@10": bm25},
               "job": [{"depth": 5, "ndcg@10": job[0]}, {"depth": 10, "ndcg@10": job[1]}]}  # fmt: skip
    found = analyses.gain_kept(surface, "ndcg@10", None)
    assert [row["gain_kept"] for row in found] == pytest.approx(list(kept))
    (line,) = analyses.depth_summary(found, "ndcg@10")
    assert line.startswith(f"depth 5: ndcg@10 {job[0]:.4f}, {said} at 50% of the pairs scored")


def test_a_cross_validation_job_analyses_each_query_at_its_folds_setting(triple, mirror_dir, cache, tmp_path):
    cfg = tiny_cranfield(
        triple,
        mirror_dir,
        cache,
        "retriever.top_k=20",
        "selection=cross_validation",
        "selection.alphas=[0.0,0.5,1.0]",
        "lam.grid=[0.0,0.5,1.0]",
        "lam.value=null",
        "analyses=[alpha_response,depth]",
        "analysis.depths=[5]",
        "analysis.timing_queries=0",
    )
    run_job(cfg, tmp_path / "job")
    response, surface = read(tmp_path / "job", "alpha_response.json"), read(tmp_path / "job", "depth_surface.json")
    metrics = read(tmp_path / "job", "metrics.json")
    assert [s["queries"] for s in response["settings"]] == [45] * 5  # 225 queries in five folds
    assert response["chosen"] == metrics["test"]["task_arithmetic"]["ndcg@10"]
    assert response["oracle"] >= max(row["mean"] for row in response["curve"])
    assert surface["job"][-1]["ndcg@10"] == metrics["test"]["task_arithmetic"]["ndcg@10"]
    assert surface["timing"] is None and all(r["seconds_per_query"] is None for r in surface["kept"])
    assert set(surface["lams"]) >= {0.0, 0.5, 1.0}


def test_a_sweeps_trials_run_no_analyses(analysed, tmp_path):
    cfg, folder, _ = analysed
    trial = replace(cfg, sweep=SweepConfig(name="alpha"), trial=0)
    done = analyses.run_analyses(trial, open_pipeline(cfg), [Fold(None, 0.5, 0.3)], tmp_path, None)
    assert (done.metrics, done.summary, done.lines) == ({}, {}, []) and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["analyses=[depth]", "retriever.top_k=20", "analysis.depths=[10,50]"], r"analysis.depths: \[50\] exceed"),
        (["analyses=[depth]", "systems=[bm25,ir_model]"], "analyses: they compare task arithmetic"),
    ],
)
def test_what_an_analysis_cannot_do_is_refused_naming_the_key(cranfield_cfg, overrides, message):
    with pytest.raises(UserError, match=message):
        cranfield_cfg(*overrides)


def test_depth_is_refused_for_a_first_stage_that_ranks_the_whole_corpus(cranfield_cfg):
    with pytest.raises(UserError, match="analyses: depth re-ranks a first stage's top k, and retriever=dense"):
        cranfield_cfg("analyses=[alpha_response,depth]", "retriever=dense")


def test_wandb_holds_the_analyses_summary_tables_and_plots(analysed):
    _, folder, _ = analysed
    response, surface = read(folder, "alpha_response.json"), read(folder, "depth_surface.json")
    contents = run_contents(folder)
    summary = contents["summary"]
    assert (
        summary["alpha_response/oracle"] == response["oracle"]
        and summary["alpha_response/hurt"] == (response["shares"]["hurt"])
    )
    assert summary["depth/5/ndcg@10"] == surface["job"][0]["ndcg@10"] and "depth/20/gain_kept" not in summary
    top = logged_table(folder, "alpha_response/top_queries")
    assert [row["query_id"] for row in top if row["kind"] == "helped"] == [
        r["query_id"] for r in response["top_helped"]
    ]
    assert all(row["query"] for row in top) and [row["kind"] for row in top].count("hurt") == len(response["top_hurt"])
    assert len(logged_table(folder, "depth/surface")) == len(surface["rows"])
    assert {"alpha_response/plot", "depth/plot"} <= {key.split("/path")[0] for key in contents["history"]}
