"""Cross-validation: seeded disjoint folds, each fold's setting chosen on the other folds' labels alone, and a
cross-validation job on real Cranfield that reports each fold's setting."""

import json

import pytest

from taskvec_ir.ir import evaluation
from taskvec_ir.pipeline.selection.cross_validation import cross_validate, kfold
from taskvec_ir.runs.job import open_pipeline

from hand_runs import ranked_first


def test_kfold_splits_queries_into_disjoint_seeded_folds():
    ids = [f"q{i}" for i in range(23)]
    folds = kfold(ids, 5, seed=7)
    assert sorted(q for fold in folds for q in fold) == sorted(ids)
    assert {len(fold) for fold in folds} == {4, 5}
    assert kfold(reversed(ids), 5, seed=7) == folds  # the order queries come in does not matter
    assert kfold(ids, 5, seed=8) != folds
    with pytest.raises(ValueError, match="selection.folds: 30 folds of 23 queries"):
        kfold(ids, 30, seed=0)


def test_each_fold_is_chosen_on_the_other_folds_and_never_reads_its_own_labels():
    """Setting A ranks the relevant document first for q0-q5, setting B for q6-q9: each fold takes the setting
    that wins on the other folds' queries, and changing (or deleting) a fold's own labels cannot change its
    choice, though it changes its evaluation."""
    queries = [f"q{i}" for i in range(10)]
    runs = {
        (0.0, 0.5): {q: ranked_first("r" if int(q[1:]) < 6 else "a") for q in queries},
        (1.0, 0.5): {q: ranked_first("a" if int(q[1:]) < 6 else "r") for q in queries},
    }
    qrels = {q: {"r": 1} for q in queries}
    folds = [tuple(queries[:4]), tuple(queries[4:7]), tuple(queries[7:])]

    def choose(judged):
        return cross_validate([(*k, run) for k, run in runs.items()], judged, folds, "ndcg@10")

    chosen = choose(qrels)
    # Fold 1 (q0-q3) is chosen on q4-q9, where B wins 4 to 2; folds 2 and 3 on queries where A wins.
    assert [(f.alpha, f.lam) for f in chosen.folds] == [(1.0, 0.5), (0.0, 0.5), (0.0, 0.5)]
    # What ran is each fold's α: no mean of them (1/3, a setting that never ran) stands for the choice.
    assert chosen.alpha is None and chosen.lam == 0.5
    assert chosen.describe()["alpha"] is None and [f["alpha"] for f in chosen.describe()["folds"]] == [1, 0, 0]
    assert chosen.settings_text() == "α/λ per fold: 1/0.5 0/0.5 0/0.5"
    for i, fold in enumerate(folds):
        for own_labels in ({}, {q: {"a": 1} for q in fold}):  # deleted, or pointing the other way
            changed = {**{q: j for q, j in qrels.items() if q not in fold}, **own_labels}
            assert choose(changed).folds[i] == chosen.folds[i]
    # The other folds' labels do decide: those of fold 3 pointed the other way, fold 1 follows them.
    flipped = {q: ({"a": 1} if q in folds[2] else judged) for q, judged in qrels.items()}
    assert choose(flipped).folds[0].alpha == 0.0
    assert {row["fold"] for row in chosen.curve} == {0, 1, 2} and len(chosen.curve) == 6


@pytest.mark.slow  # a whole selection job, W&B included
def test_a_cross_validation_job_reports_each_folds_setting_never_their_mean(cranfield_grid, tmp_path, capsys):
    from taskvec_ir.runs.job import run_job

    cfg = cranfield_grid("selection=cross_validation", "wandb.mode=disabled")
    result = run_job(cfg, tmp_path / "job")
    written = json.loads((tmp_path / "job" / "selection.json").read_text())
    folds = [(fold["alpha"], fold["lam"]) for fold in written["folds"]]
    assert len(folds) == 5 and result["folds"] == written["folds"]
    printed = capsys.readouterr().out
    if len(set(folds)) > 1:  # what ran: each fold's α/λ, and no single α
        assert written["alpha"] is None or written["lam"] is None
        assert "α/λ per fold: " + " ".join(f"{a:g}/{lam:g}" for a, lam in folds) in printed
    else:
        assert (written["alpha"], written["lam"]) == folds[0] and f"α={folds[0][0]:g}" in printed
    metrics = json.loads((tmp_path / "job" / "metrics.json").read_text())
    assert metrics["selection"]["folds"] == written["folds"] and "curve" not in metrics["selection"]
    # ΘT's own λ in each fold: the λ of the grid best for ΘT on the other folds' queries
    pipeline = open_pipeline(cfg)
    split = pipeline.split(cfg.split)
    per_lam = {
        lam: evaluation.evaluate_run(split.qrels, pipeline.system_run(cfg.split, "ir_model", lam), [cfg.objective])[1]
        for lam in cfg.lam.grid
    }
    fold_ids = kfold(split.queries, cfg.selection.folds, cfg.selection.seed)
    for fold, ids in zip(written["folds"], fold_ids, strict=True):
        others = [q for q in split.qrels if split.qrels[q] and q not in ids]
        values = {lam: sum(v[cfg.objective][q] for q in others) / len(others) for lam, v in per_lam.items()}
        assert fold["lam[ir_model]"] == max(values, key=lambda lam: (values[lam], -lam))
    own = {fold["lam[ir_model]"] for fold in written["folds"]}
    assert metrics["lam"]["ir_model"] == (own.pop() if len(own) == 1 else None) and metrics["lam"]["bm25"] is None
