"""How sure is a selection: its choice rerun on bootstrap resamples of its queries, on hand-built per-query values
(where the answer is known exactly) and on real Cranfield (the tiny triple; the demo model)."""

import json

import numpy as np
import pytest

from taskvec_ir.config.selection import BootstrapConfig
from taskvec_ir.errors import UserError
from taskvec_ir.pipeline import bootstrap
from taskvec_ir.pipeline.selection.choice import Evidence
from taskvec_ir.runs.compose import compose

QUERIES = [f"q{i}" for i in range(10)]


def problem(criterion, test, test_baseline, baseline=None, folds=(None,), tuning=None, chosen=None, method=None):
    """A problem from per-setting values: ``criterion[setting]`` and ``test[setting]`` are per-query dicts; the
    shared grid is every setting of ``test``; a method that fixes λ (stability, the default, and NQC) can reach the
    settings of its criterion, any other the whole grid."""
    tuning = tuning or [tuple(QUERIES)]
    baseline = baseline or {(0.0, 0.3): {}}  # ΘT's λ fixed (stability, NQC)
    chosen = chosen or ([(0.5, 0.3)] * len(folds), [0.3] * len(folds))
    method = method or "stability"
    grid = sorted(test)
    reachable = sorted(criterion) if method in ("stability", "nqc") else grid
    return bootstrap.Problem(
        method, "ten queries", Evidence(criterion, tuning), Evidence(baseline, tuning), list(folds), test,
        test_baseline, chosen, grid, reachable,
    )  # fmt: skip


def constant(value, queries=QUERIES):
    return dict.fromkeys(queries, value)


def test_a_setting_that_wins_on_every_query_wins_every_resample_with_no_regret():
    """α = 0.5 has the highest criterion on every query: every resample chooses it; it is also the best setting on
    test (regret 0 exactly), and beats ΘT on test (P = 1); against a ΘT as good, P = 0 (a tie is not a win)."""
    criterion = {(0.0, 0.3): constant(0.1), (0.5, 0.3): {q: 0.5 + 0.01 * i for i, q in enumerate(QUERIES)},
                 (1.0, 0.3): constant(0.4)}  # fmt: skip
    test = {(0.0, 0.3): constant(0.2), (0.5, 0.3): constant(0.6), (1.0, 0.3): constant(0.3), (0.5, 0.6): constant(0.5)}
    result = bootstrap.resample(problem(criterion, test, {(0.0, 0.3): constant(0.2)}), BootstrapConfig(50, seed=3))
    assert result["alpha_counts"] == {"0.5": 50} and (result["modal_alpha"], result["modal_share"]) == (0.5, 1.0)
    assert result["regret"] == {"mean": 0.0, "low": 0.0, "high": 0.0}
    assert result["p_beats_ir_model"] == 1.0 and result["matches_selection"]
    assert result["oracle"] == {"setting": [0.5, 0.3], "test": pytest.approx(0.6)}
    assert result["choice"]["test"] == pytest.approx(0.6) and result["choice"]["test[ir_model]"] == pytest.approx(0.2)
    assert len(result["draws"]) == 50 and result["undefined_resamples"] == 0
    tied = bootstrap.resample(problem(criterion, test, {(0.0, 0.3): constant(0.6)}), BootstrapConfig(50, seed=3))
    assert tied["p_beats_ir_model"] == 0.0
    # The oracle is the best of the grid on test: a setting that loses on test has a known regret.
    worse = {**test, (0.0, 0.3): constant(0.7)}
    result = bootstrap.resample(problem(criterion, worse, {(0.0, 0.3): constant(0.7)}), BootstrapConfig(20))
    assert result["regret"]["mean"] == pytest.approx(0.1) and result["p_beats_ir_model"] == 0.0


def test_regret_follows_the_known_distribution_of_resamples_and_its_percentile_interval():
    """Two queries: a strongly prefers A, b mildly prefers B. A resample chooses B only when it holds b twice
    (probability 1/4), and B's regret on test is 0.2 (A's 0): the mean regret is 0.2 × B's share (≈ 0.05), the 95%
    interval [0, 0.2], the 20% interval (40th to 60th percentile) [0, 0]."""
    pool = ["a", "b"]
    criterion = {(0.2, 0.3): {"a": 1.0, "b": 0.4}, (0.8, 0.3): {"a": 0.0, "b": 0.5}}
    test = {(0.2, 0.3): constant(0.5, pool), (0.8, 0.3): constant(0.3, pool)}
    made = problem(
        criterion, test, {(0.0, 0.3): constant(0.4, pool)}, tuning=[tuple(pool)], chosen=([(0.2, 0.3)], [0.3])
    )
    result = bootstrap.resample(made, BootstrapConfig(4000, seed=0))
    share_b = result["alpha_counts"]["0.8"] / 4000
    assert share_b == pytest.approx(0.25, abs=0.025)
    assert result["regret"]["mean"] == pytest.approx(0.2 * share_b)
    assert (result["regret"]["low"], result["regret"]["high"]) == (0.0, pytest.approx(0.2))
    assert result["p_beats_ir_model"] == pytest.approx(1 - share_b)  # A (0.5) beats ΘT (0.4), B (0.3) does not
    narrow = bootstrap.resample(made, BootstrapConfig(4000, seed=0, confidence=0.2))  # 40th to 60th percentile
    assert (narrow["regret"]["low"], narrow["regret"]["high"]) == (0.0, 0.0)
    regrets = np.array([d["regret"] for d in result["draws"]])
    assert result["regret"]["high"] == pytest.approx(np.quantile(regrets, 0.975))


def test_a_choice_of_equal_criterion_is_a_tie_not_a_mismatch():
    """A sweep's best trial is Optuna's first among equals, the rerun's the smaller α: the same criterion."""
    criterion = {(0.0, 0.3): constant(0.5), (0.5, 0.3): constant(0.5), (1.0, 0.3): constant(0.1)}
    test = {s: constant(0.4) for s in criterion}
    for chosen, matches in (([(0.0, 0.3)], True), ([(0.5, 0.3)], "tie"), ([(1.0, 0.3)], False)):
        made = problem(criterion, test, {(0.0, 0.3): constant(0.4)}, chosen=(chosen, [0.3]))
        assert bootstrap.resample(made, BootstrapConfig(5))["matches_selection"] == matches


def test_resamples_are_deterministic_under_their_seed():
    rng = np.random.default_rng(1)
    criterion = {(a, 0.3): {q: float(rng.normal()) for q in QUERIES} for a in (0.0, 0.25, 0.5, 0.75, 1.0)}
    test = {s: {q: float(rng.uniform()) for q in QUERIES} for s in criterion}
    made = problem(criterion, test, {(0.0, 0.3): constant(0.5)})
    first, again = (bootstrap.resample(made, BootstrapConfig(100, seed=7)) for _ in range(2))
    assert json.dumps(first) == json.dumps(again)
    other = bootstrap.resample(made, BootstrapConfig(100, seed=8))
    assert other["draws"] != first["draws"] and other["choice"] == first["choice"]
    assert sum(first["alpha_counts"].values()) == 100 and len(first["alpha_counts"]) > 1


def test_cross_validation_resamples_the_queries_once_and_each_fold_chooses_on_its_copies_of_the_other_folds():
    """Folds (q0-q4) and (q5-q9): A wins on q0-q4, B on q5-q9. Each fold chooses on the other fold's queries: fold
    1 takes B, fold 2 A, on every resample, and scores 0 on test. The oracle is one setting for the whole split,
    A and B tied at 0.5 (the tie rule takes A, α = 0): regret 0.5; counts are of every fold's choice (2 per
    resample)."""
    first, second = QUERIES[:5], QUERIES[5:]
    values = {(0.0, 0.3): {**constant(1.0, first), **constant(0.0, second)},
              (1.0, 0.3): {**constant(0.0, first), **constant(1.0, second)}}  # fmt: skip
    test_baseline = {(0.0, 0.3): constant(0.0), (0.0, 0.6): constant(0.0)}
    chosen = ([(1.0, 0.3), (0.0, 0.3)], [0.3, 0.3])
    made = problem(
        values, values, test_baseline, test_baseline, (first, second), [tuple(second), tuple(first)], chosen,
        "cross_validation",
    )  # fmt: skip
    result = bootstrap.resample(made, BootstrapConfig(30))
    # A resample without a copy of a fold's other queries (here 1 of 30; p ≈ 2 · 2^-10 each) chooses nothing there.
    done = 30 - result["undefined_resamples"]
    assert result["alpha_counts"] == {"0": done, "1": done} and result["choices_per_resample"] == 2 and done >= 28
    assert result["modal_alpha"] == 0.0 and result["modal_share"] == 0.5  # ties: the smaller |α|
    assert result["oracle"] == {"setting": [0.0, 0.3], "test": 0.5} == result["oracle_reachable"]
    assert result["regret"]["mean"] == 0.5 == result["regret_reachable"]["mean"] and result["matches_selection"]
    assert all(d["lam[ir_model]"] == [0.3, 0.3] for d in result["draws"])  # ΘT's ties: the smaller λ


def test_regret_is_against_one_oracle_for_every_method():
    """The issue's case: cross-validation whose folds each choose exactly the grid's best single setting has
    regret 0 (not against a per-fold oracle, a mixture no single setting reaches), and NQC choosing the same has 0
    too. NQC at a fixed λ that is not the oracle's has a regret against the grid's best, and none against the
    best it could output."""
    folds = (tuple(QUERIES[:4]), tuple(QUERIES[4:7]), tuple(QUERIES[7:]))
    # A = (0.5, 0.3) is best on average (0.6); B = (1.0, 0.3) wins the third fold's own queries (0.7), which a
    # per-fold oracle took
    b = {**constant(0.0, QUERIES[:7]), **constant(0.7, folds[2])}
    test = {(0.0, 0.3): constant(0.2), (0.5, 0.3): constant(0.6), (1.0, 0.3): b, (0.5, 0.6): constant(0.5)}
    test_baseline = {(0.0, 0.3): constant(0.2), (0.0, 0.6): constant(0.2)}
    others = [tuple(q for other in folds if other is not fold for q in other) for fold in folds]
    cv = problem(
        test, test, test_baseline, test_baseline, folds, others, ([(0.5, 0.3)] * 3, [0.3] * 3), "cross_validation"
    )
    result = bootstrap.resample(cv, BootstrapConfig(40, seed=1))
    assert result["choice"]["settings"] == [[0.5, 0.3]] * 3 and result["matches_selection"] is True
    assert result["oracle"] == {"setting": [0.5, 0.3], "test": pytest.approx(0.6)}
    assert result["oracle"]["test"] - result["choice"]["test"] == 0.0
    same = [d for d in result["draws"] if d["settings"] == [[0.5, 0.3]] * 3]
    assert len(same) > 30 and all(d["regret"] == 0.0 for d in same)
    nqc_criterion = {(0.0, 0.3): constant(1.0), (0.5, 0.3): constant(2.0), (1.0, 0.3): constant(1.5)}
    nqc = problem(nqc_criterion, test, {(0.0, 0.3): constant(0.2)}, method="nqc")
    result = bootstrap.resample(nqc, BootstrapConfig(40, seed=1))
    assert result["regret"] == {"mean": 0.0, "low": 0.0, "high": 0.0} == result["regret_reachable"]
    # the oracle at another λ, which NQC (fused at its fixed λ 0.3) could not output
    better = {**test, (0.5, 0.6): constant(0.65)}
    result = bootstrap.resample(problem(nqc_criterion, better, {(0.0, 0.3): constant(0.2)}, method="nqc"),
                                BootstrapConfig(40, seed=1))  # fmt: skip
    assert result["oracle"]["setting"] == [0.5, 0.6] and result["oracle_reachable"]["setting"] == [0.5, 0.3]
    assert result["regret"]["mean"] == pytest.approx(0.05) and result["regret_reachable"]["mean"] == 0.0


def test_resamples_break_ties_as_the_selection_does():
    """Every query ties α −0.5, 0 and 0.5: every resample chooses α = 0 (not −0.5, the smallest)."""
    criterion = {(alpha, 0.3): constant(0.5) for alpha in (-0.5, 0.0, 0.5)}
    test = {s: constant(0.4) for s in criterion}
    made = problem(criterion, test, {(0.0, 0.3): constant(0.4)}, chosen=([(0.0, 0.3)], [0.3]))
    result = bootstrap.resample(made, BootstrapConfig(25, seed=2))
    assert result["alpha_counts"] == {"0": 25} and result["matches_selection"] is True
    assert result["oracle"]["setting"] == [0.0, 0.3]  # the oracle's ties too


def test_a_resample_where_the_criterion_is_undefined_everywhere_is_counted_not_chosen():
    criterion = {(0.5, 0.3): {"q0": 1.0}, (1.0, 0.3): {"q0": 0.5}}  # defined for q0 alone
    test = {s: constant(0.5, QUERIES[:2]) for s in criterion}
    made = problem(criterion, test, {(0.0, 0.3): constant(0.5, QUERIES[:2])}, tuning=[("q0", "q1")])
    result = bootstrap.resample(made, BootstrapConfig(200, seed=0))
    assert result["undefined_resamples"] == pytest.approx(50, abs=15)  # q1 twice: 1 in 4
    assert result["alpha_counts"] == {"0.5": 200 - result["undefined_resamples"]}


@pytest.mark.parametrize(
    "override, message",
    [
        ("selection.bootstrap.resamples=-1", "selection.bootstrap.resamples: -1 must be 0"),
        ("selection.bootstrap.confidence=1.0", "selection.bootstrap.confidence: 1.0 must be in"),
        ("selection.bootstrap.confidence=0", "selection.bootstrap.confidence: 0.0 must be in"),
    ],
)
def test_wrong_bootstrap_settings_are_refused_naming_the_key(override, message):
    with pytest.raises(UserError, match=message):
        compose(["selection=stability", override])


def test_a_sweep_whose_bootstrap_could_not_rerun_its_choice_is_refused_before_it_runs():
    from taskvec_ir.runs.sweeping.sweeper import check_bootstrap

    paper = compose(["sweep=paper_grid", "selection.bootstrap.resamples=10"])
    check_bootstrap(paper, {"alpha.value": None})
    joint = compose(["sweep=alpha_lambda", "selection.bootstrap.resamples=10"])
    with pytest.raises(UserError, match="selection.bootstrap.resamples: a sweep's bootstrap .* searches alpha.value, "):
        check_bootstrap(joint, {"alpha.value": None, "lam.value": None})
    check_bootstrap(compose(["sweep=alpha_lambda"]), {"alpha.value": None, "lam.value": None})  # off: no check


# -- on Cranfield ---------------------------------------------------------------------------------------------------
def bootstrap_file(job_dir):
    return json.loads((job_dir / "selection_bootstrap.json").read_text())


def check_consistent(result: dict, job_dir, cfg) -> None:
    """What any bootstrap's numbers must satisfy, and agree with its job's own files."""
    chosen = json.loads((job_dir / "selection.json").read_text())
    metrics = json.loads((job_dir / "metrics.json").read_text())
    done = result["resamples"] - result["undefined_resamples"]
    assert sum(result["alpha_counts"].values()) == done * len(chosen["folds"]) and len(result["draws"]) == done
    assert {float(a) for a in result["alpha_counts"]} <= set(cfg.selection.alphas)
    regret, reachable = result["regret"], result["regret_reachable"]
    assert regret["low"] <= regret["mean"] <= regret["high"] <= result["oracle"]["test"]
    grid = {(a, lam) for a in cfg.selection.alphas for lam in cfg.lam.grid}
    assert tuple(result["oracle"]["setting"]) in grid
    if result["method"] != "cross_validation":  # one setting, of the grid here: the oracle's is at least as good
        assert all(draw["regret"] >= 0 and draw["regret_reachable"] >= 0 for draw in result["draws"])
        assert 0 <= reachable["low"] <= regret["low"] and result["oracle"]["test"] >= result["choice"]["test"]
    assert 0 <= result["p_beats_ir_model"] <= 1 and 0 < result["modal_share"] <= 1
    # The rerun on the queries as they are is the job's own choice, and its test value the job's
    assert result["matches_selection"]
    assert result["choice"]["settings"] == [[fold["alpha"], fold["lam"]] for fold in chosen["folds"]]
    test = metrics[cfg.split]
    assert result["choice"]["test"] == pytest.approx(test["task_arithmetic"][cfg.objective], abs=1e-12)
    assert result["choice"]["test[ir_model]"] == pytest.approx(test["ir_model"][cfg.objective], abs=1e-12)
    assert (job_dir / "selection_bootstrap.png").stat().st_size > 0


@pytest.mark.slow  # two selection jobs
def test_resamples_are_chosen_and_evaluated_from_scores_computed_once(cranfield_cfg, tmp_path, monkeypatch):
    """Stability on Cranfield: a first job scores what the bootstrap needs (every α on test); a second, with ten
    times the resamples and a scorer that fails, scores nothing and reports the same choice."""
    from taskvec_ir.pipeline.model_scores import ModelScores
    from taskvec_ir.runs.job import run_job

    def job(resamples):
        cfg = cranfield_cfg(
            "selection=stability",
            "selection.alphas=[0.0,0.25,0.5,0.75,1.0]",
            "lam.grid=[0.0,0.3,0.6,1.0]",
            f"selection.bootstrap.resamples={resamples}",
            "wandb.mode=disabled",
        )
        run_job(cfg, tmp_path / str(resamples))
        return cfg, bootstrap_file(tmp_path / str(resamples))

    job(20)

    def refuse(*args, **kwargs):
        raise AssertionError("the bootstrap scored with a model")

    monkeypatch.setattr(ModelScores, "_score", refuse)
    cfg, result = job(200)
    check_consistent(result, tmp_path / "200", cfg)
    assert result["resamples"] == 200 and set(result["alpha_counts"]) <= {"0.25", "0.5", "0.75"}  # interior α only
    assert result["grid"] == {"alphas": [0.0, 0.25, 0.5, 0.75, 1.0], "lams": [*cfg.lam.grid]}
    assert "unlabeled test queries" in result["resampled"]  # Cranfield has no dev split: test's, unlabeled
    assert all(draw["lam[ir_model]"] == [cfg.selection.lam] for draw in result["draws"])  # stability fixes λ


@pytest.mark.slow  # the demo model's scores of Cranfield at two α
def test_a_cross_validation_bootstrap_of_the_demo_model_on_cranfield(mirror_dir, tmp_path):
    from taskvec_ir.runs.job import run_job

    cfg = compose(
        [
            "dataset=cranfield",
            "model=minilm_demo",
            "model.scorer.max_length=64",
            "model.scorer.show_progress=false",
            "retriever.top_k=10",
            f"data.mirror_dir={mirror_dir}",
            f"cache.dir={tmp_path / 'cache'}",
            "selection=cross_validation",
            "selection.alphas=[0.0,1.0]",
            "lam.grid=[0.0,0.2,0.4,0.6,0.8,1.0]",
            "selection.bootstrap.resamples=100",
            "wandb.mode=disabled",
        ]
    )
    run_job(cfg, tmp_path / "job")
    result = bootstrap_file(tmp_path / "job")
    check_consistent(result, tmp_path / "job", cfg)
    assert result["queries"] == 225 and result["choices_per_resample"] == 5 and result["undefined_resamples"] == 0
    assert result["resampled"] == "the 225 judged test queries"
    # One oracle, the grid's best single setting on test, which cross-validation can reach
    assert result["oracle"] == result["oracle_reachable"]
    assert all(draw["regret"] == pytest.approx(result["oracle"]["test"] - draw["test"]) for draw in result["draws"])
