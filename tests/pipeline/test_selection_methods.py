"""The label-free methods run on real Cranfield with a tiny triple: they read no qrels, choose one setting of the
grid, NQC's values are recomputed from the cached raw scores, and stability reads the runs of merge.direction=random
at the same seed."""

import statistics

import numpy as np
import pytest
from ir_datasets.datasets.cranfield import CranfieldQrels

from taskvec_ir.ir import splits
from taskvec_ir.pipeline.merged_model import MergedModel
from taskvec_ir.pipeline.model_scores import system_weights
from taskvec_ir.pipeline.pipeline import Pipeline, PipelineSpec
from taskvec_ir.pipeline.selection.criteria import query_stability
from taskvec_ir.pipeline.selection.methods import choose, unlabeled_queries
from taskvec_ir.pipeline.triple import Triple
from taskvec_ir.runs.job import open_pipeline
from taskvec_ir.storage.cache import Cache


@pytest.fixture
def no_qrels(monkeypatch):
    """Every qrels reader of ir_datasets and of the splits module fails from here on."""

    def refuse(*args, **kwargs):
        raise AssertionError("a label-free selection read qrels")

    monkeypatch.setattr(CranfieldQrels, "qrels_iter", refuse)
    monkeypatch.setattr(splits, "load_split", refuse)


# stability scores the random-direction null at every α too: slow (as the test of its reading of the null below)
@pytest.mark.parametrize(
    "method", ["pseudo_queries", pytest.param("stability", marks=pytest.mark.slow), "nqc", "entropy"]
)
def test_label_free_selections_read_no_qrels(cranfield_grid, method, request):
    """Chosen with every qrels reader failing, on Cranfield's test queries (it has no dev split); the choice is
    one of the grid's settings, and the job then evaluates it on test as any run."""
    cfg = cranfield_grid(f"selection={method}")
    open_pipeline(cfg)  # ir_datasets set up, the first stage cached
    # A fresh experiment holds no split: what opening one loaded (the evaluated split, with its qrels) is not there.
    pipeline = Pipeline(PipelineSpec.from_config(cfg), Cache(cfg.cache.dir))
    request.getfixturevalue("no_qrels")
    choice = choose(pipeline, cfg)
    assert choice.method == method and len(choice.folds) == 1 and choice.folds[0].queries is None
    assert choice.alpha in (0.0, 0.5, 1.0) and choice.lam in cfg.lam.grid
    # stability scores the α values with a neighbour each side: 0.5 alone of 0, 0.5, 1
    expected = {"pseudo_queries": 3 * len(cfg.lam.grid), "stability": 1, "nqc": 3, "entropy": 3}
    assert len(choice.curve) == expected[method]
    if method != "pseudo_queries":  # stability, NQC and entropy cannot choose λ
        assert choice.lam == cfg.selection.lam
    assert "test (unlabeled)" in choice.criterion or method == "pseudo_queries"
    assert max(row["value"] for row in choice.curve) == next(
        row["value"] for row in choice.curve if (row["alpha"], row["lam"]) == (choice.alpha, choice.lam)
    )


def test_nqc_on_cranfield_is_the_spread_of_the_merged_models_raw_scores_in_units_of_its_corpus_samples(cranfield_grid):
    """Recomputed from the cached raw scores of Θ' at each α: the std of the top 10 of each query's candidates over
    the std of its scores of the 20 sampled documents, the same documents for every query."""
    cfg = cranfield_grid("selection=nqc", "selection.queries=test")
    pipeline = open_pipeline(cfg)
    choice = choose(pipeline, cfg)
    name = "test (unlabeled)"
    sample = pipeline.candidates(f"{name} × corpus sample (20)")
    assert len({tuple(sorted(docs)) for docs in sample.values()}) == 1 and len(next(iter(sample.values()))) == 20
    for row in choice.curve:
        weights = system_weights("task_arithmetic", pipeline.spec.merge.at(row["alpha"]))
        scores, corpus = pipeline.scores(name, weights), pipeline.scores(f"{name} × corpus sample (20)", weights)
        expected = [np.std(sorted(scores[q].values())[-10:]) / np.std(list(corpus[q].values())) for q in scores]
        assert row["value"] == pytest.approx(np.mean(expected), rel=1e-9) and row["undefined"] == 0
        assert row["lam"] == cfg.selection.lam
    assert "standardised against 20 corpus documents' scores" in choice.criterion


def fresh_pipeline(cfg) -> Pipeline:
    return Pipeline(PipelineSpec.from_config(cfg), Cache(cfg.cache.dir))


@pytest.fixture
def no_scoring(monkeypatch):
    """No model is merged or loaded to score from here on: what is asked must be in the cache."""

    def refuse(*args, **kwargs):
        raise AssertionError("scored again: not read from the cache")

    monkeypatch.setattr(MergedModel, "set", refuse)
    monkeypatch.setattr(Triple, "scorer", refuse)


@pytest.mark.slow  # τ's and the null's runs scored at every α of the grid
def test_stability_is_read_against_the_random_direction_null_of_the_jobs_seed(cranfield_grid, request):
    """The null is what merge.direction=random at the job's merge.seed runs: a pipeline of that config finds every
    run of it in the cache the selection filled. selection.json's curve has τ's and the null's stability, each
    averaged over the queries defined at every α for both, and the value is their difference; a second selection
    scores nothing."""
    cfg = cranfield_grid("selection=stability", "merge.seed=3")
    choice = choose(open_pipeline(cfg), cfg)
    assert choice.details["null"] == {"direction": "random", "seed": 3, "queries": 225, "of": 225}
    assert "less the random-direction null's (merge.seed 3)" in choice.criterion
    request.getfixturevalue("no_scoring")
    null_cfg = cranfield_grid("selection=stability", "merge.seed=3", "merge.direction=random")
    found = {}
    for name, config in (("raw", cfg), ("null", null_cfg)):
        pipeline = fresh_pipeline(config)
        split, merge = unlabeled_queries(pipeline, config), pipeline.spec.merge
        runs = {
            a: pipeline.system_run(split, "task_arithmetic", cfg.selection.lam, merge.at(a))
            for a in cfg.selection.alphas
        }
        found[name] = statistics.fmean(query_stability(runs)[0.5].values())
    (row,) = choice.describe()["curve"]
    assert (row["raw"], row["null"]) == pytest.approx((found["raw"], found["null"]), rel=1e-12)
    assert row["value"] == pytest.approx(row["raw"] - row["null"], rel=1e-12) and row["raw"] != row["null"]
    again = choose(fresh_pipeline(cfg), cfg)  # scoring refused: every run read from the cache
    assert again.describe() == choice.describe()


def entropy_by_hand(scores: dict[str, float], temperature: float) -> float:
    """−Σ p log p of exp(z / T) normalised, z the scores standardised by their own mean and population σ."""
    values = np.array(list(scores.values()))
    z = (values - values.mean()) / values.std() / temperature
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    return float(-(p * np.log(p)).sum())


@pytest.mark.parametrize("direction", ["task_vector", "random"])
def test_entropy_on_cranfield_is_minus_the_mean_entropy_of_the_merged_models_standardised_scores(
    cranfield_grid, direction
):
    """Recomputed from the cached raw scores of Θ' at each α, for τ and for its random-direction null: each query's
    candidates' scores standardised, softmax at selection.entropy_temperature, entropy; the curve is minus its
    mean (lower entropy is preferred), and the chosen α the curve's best."""
    cfg = cranfield_grid(
        "selection=entropy",
        "selection.queries=test",
        "selection.entropy_temperature=0.5",
        f"merge.direction={direction}",
    )
    pipeline = open_pipeline(cfg)
    choice = choose(pipeline, cfg)
    name = "test (unlabeled)"
    for row in choice.curve:
        weights = system_weights("task_arithmetic", pipeline.spec.merge.at(row["alpha"]))
        scores = pipeline.scores(name, weights)
        expected = [entropy_by_hand(scores[q], 0.5) for q in scores if len(set(scores[q].values())) > 1]
        assert row["value"] == pytest.approx(-np.mean(expected), rel=1e-9)
        assert row["undefined"] == len(scores) - len(expected) and row["lam"] == cfg.selection.lam
    best = max(choice.curve, key=lambda row: row["value"])
    assert choice.alpha == best["alpha"] and "T=0.5" in choice.criterion
    assert len({row["value"] for row in choice.curve}) == 3  # α moves the criterion: not a constant picked by ties
