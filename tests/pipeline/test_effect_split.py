"""Where τ's effect goes (``analyses=[effect_split]``, retriever=dense): the shares on constructed numbers, and a
dense job on real Cranfield with the tiny triple, its three Δ recomputed independently from its own files and the
cached scores."""

import contextlib
import io
import json

import pytest
from fusion_reference import minmax_fused

from taskvec_ir.errors import UserError
from taskvec_ir.ir import evaluation
from taskvec_ir.pipeline.effect_split import shares
from taskvec_ir.pipeline.model_scores import system_weights
from taskvec_ir.reporting.analysis_tables import analysis_columns, analysis_sections
from taskvec_ir.runs.job import open_pipeline, run_job

from wandb_records import run_contents


def test_the_candidate_set_and_fusion_each_take_their_share_of_the_dense_effect():
    """The issue's Cranfield figures: Δ −0.043 dense, −0.029 re-ranked by the model alone, −0.012 fused. The
    candidate set takes 0.014 of 0.043 (33%), fusion 0.017 (40%), 0.012 is left (28%): the shares sum to 1."""
    found = shares(-0.043, -0.029, -0.012)
    assert found == pytest.approx({"candidates": 14 / 43, "fusion": 17 / 43, "kept": 12 / 43})
    assert sum(found.values()) == pytest.approx(1.0)
    # a sign that flips on the way: re-ranking reverses a dense loss, fusion halves the gain
    assert shares(-0.02, 0.01, 0.005) == pytest.approx({"candidates": 1.5, "fusion": -0.25, "kept": -0.25})
    assert shares(0.0, 0.01, 0.005) == dict.fromkeys(("candidates", "fusion", "kept"))  # no dense effect


def test_effect_split_is_refused_without_dense_retrieval(cranfield_cfg):
    with pytest.raises(UserError, match="analyses: effect_split .* run it with retriever=dense"):
        cranfield_cfg("analyses=[effect_split]")


@pytest.mark.slow  # three retrievals of Cranfield by a real bi-encoder
def test_a_dense_job_splits_taus_effect_into_dense_reranked_and_fused(cranfield_cfg, tmp_path):
    cfg = cranfield_cfg(
        "retriever=dense",
        "retriever.top_k=20",
        "alpha.value=0.5",
        "analyses=[effect_split]",
        "analysis.alphas=[0.5,1.0]",
        "analysis.lams=[0.3,0.7]",
    )
    folder = tmp_path / "job"
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        run_job(cfg, folder)
    found, metrics = (json.loads((folder / name).read_text()) for name in ("effect_split.json", "metrics.json"))
    deltas = {(row["alpha"], row["lam"]): row for row in found["deltas"]}
    assert sorted(deltas) == [(0.5, 0.3), (0.5, 0.7), (1.0, 0.3), (1.0, 0.7)] and found["alphas"] == [0.0, 0.5, 1.0]
    # Dense: the job's own numbers (TA at α = 0.5 against ΘT, both ranking the corpus).
    means = metrics["test"]
    assert deltas[0.5, 0.3]["dense"] == pytest.approx(
        means["task_arithmetic"]["ndcg@10"] - means["ir_model"]["ndcg@10"], abs=1e-12
    )
    # Re-ranked and fused: BM25's top 20 scored by Θ' and ΘT, recomputed here from the cached scores.
    pipeline = open_pipeline(cfg)
    qrels, candidates = pipeline.split("test").qrels, pipeline.candidates("test")
    assert {len(docs) for docs in candidates.values()} == {20}
    value = {}
    for alpha in (0.0, 0.5, 1.0):
        scores = pipeline.scores("test", system_weights("task_arithmetic", pipeline.spec.merge.at(alpha)))
        value[alpha, "reranked"] = evaluation.evaluate_run(qrels, scores, ["ndcg@10"])[0]["ndcg@10"]  # the model alone
        for lam in (0.3, 0.7):
            run = minmax_fused(candidates, scores, lam)
            value[alpha, lam] = evaluation.evaluate_run(qrels, run, ["ndcg@10"])[0]["ndcg@10"]
    for (alpha, lam), row in deltas.items():
        assert row["reranked"] == pytest.approx(value[alpha, "reranked"] - value[0.0, "reranked"], abs=1e-12)
        assert row["fused"] == pytest.approx(value[alpha, lam] - value[0.0, lam], abs=1e-12)
        if row["dense"] != 0:
            assert row["candidates"] == pytest.approx((row["dense"] - row["reranked"]) / row["dense"])
    assert deltas[0.5, 0.3]["reranked"] == deltas[0.5, 0.7]["reranked"]  # λ moves the fused Δ only
    assert deltas[0.5, 0.3]["fused"] != deltas[0.5, 0.7]["fused"]
    # Reported: metrics.json, the printed lines, W&B, and a table's section.
    assert metrics["analyses"]["effect_split"]["deltas"] == found["deltas"]
    row = deltas[0.5, 0.3]
    assert f"at α 0.5: dense {row['dense']:+.4f}, BM25's top 20 re-ranked by the model alone" in printed.getvalue()
    summary = run_contents(folder)["summary"]
    assert summary["effect_split/0.5/0.3/fused"] == row["fused"]
    columns = analysis_columns(metrics["analyses"])
    assert columns["effect_split/1/0.7/dense"] == deltas[1.0, 0.7]["dense"]
    labels = {"dataset": "cranfield", "model": "tiny", "merge": "task_arithmetic", "selection": None}
    section = analysis_sections([{**labels, "system": "task_arithmetic", "failed": None, **columns}], "ndcg@10")
    assert "### Where τ's effect goes: dense, re-ranked, fused" in section
    assert f"| 0.5 | 0.3 | {row['dense']:+.4f} | {row['reranked']:+.4f} | {row['fused']:+.4f} |" in section
