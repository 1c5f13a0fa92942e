"""The same config and seed give the same numbers, and every seed behind them is on record.

Two ``taskvec-ir`` processes with one config (``app_runs``: twin_a, twin_b), each computing everything itself
(own caches), must agree to the bit: metrics, per-query values and TREC runs (CPU). Seeds of a sweep's sampler
are checked on a sweep's trials (test_sweep_faults.py).
"""

import json

import pytest

from wandb_records import run_contents


@pytest.fixture(scope="module")
def twins(app_runs):
    for name in ("twin_a", "twin_b"):
        result = app_runs[name]["result"]
        assert result.returncode == 0, result.stderr[-3000:]
    return app_runs["twin_a"]["out"], app_runs["twin_b"]["out"]


def test_same_config_and_seed_give_identical_metrics(twins):
    a, b = twins
    metrics = json.loads((a / "metrics.json").read_text())
    assert metrics == json.loads((b / "metrics.json").read_text())
    dev = metrics["dev"]
    assert set(dev) == {"bm25", "ir_model", "task_arithmetic"} and 0.2 < dev["bm25"]["ndcg@10"] < 0.5
    assert dev["task_arithmetic"] != dev["ir_model"]  # the model did something, identically both times
    assert (a / "per_query.json").read_text() == (b / "per_query.json").read_text()
    runs = sorted(p.name for p in (a / "runs").iterdir())
    assert runs == ["dev.bm25.trec", "dev.ir_model.trec", "dev.task_arithmetic.trec"]
    for name in runs:
        assert (a / "runs" / name).read_bytes() == (b / "runs" / name).read_bytes(), name


def test_both_computed_everything_themselves(twins):
    for out in twins:
        cache = run_contents(out)["summary"]
        assert cache["cache/bm25.miss"] == 1 and cache["cache/scores.miss"] >= 2 and "cache/scores.hit" not in cache


def test_the_seed_of_the_dev_sample_is_logged(twins):
    for out in twins:
        assert run_contents(out)["config"]["seeds"] == {"dataset.splits.dev.seed": 1}
        log = (out / "app.log").read_text()
        assert "Random seeds: {'dataset.splits.dev.seed': 1}" in log
        assert "Split 'dev': 68 of the 225 queries of 'test', sampled with seed 1 (dataset.splits.dev.seed)" in log


def test_dare_and_adapt_seeds_are_logged_with_the_run():
    from taskvec_ir.runs.compose import compose
    from taskvec_ir.runs.job import random_seeds

    adapt = "{objective: simcse, seed: 9, start: org/ir, dataset: {name: c, docs: cranfield}}"
    overrides = [
        "dataset=cranfield",
        "model=minilm_scifact_adapted",
        "merge=dare",
        "merge.seed=3",
        "model.domain.seed=7",
        "+model.extra_domains.sre.domain=org/sre",
        f"+model.extra_domains.more.domain={adapt}",
        "+alpha.extra.sre=0.1",
        "+alpha.extra.more=0.2",
    ]
    assert random_seeds(compose(overrides)) == {
        "merge.seed": 3,
        "model.domain.seed": 7,
        "model.extra_domains.more.domain.seed": 9,
    }
    # no random drop: its seed plays no part
    assert random_seeds(compose([*overrides, "merge=task_arithmetic"])) == {
        "model.domain.seed": 7,
        "model.extra_domains.more.domain.seed": 9,
    }
