"""Sweeps as users run them (``taskvec-ir -m sweep=...``), on tiny models and real Cranfield."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from beir_folders import write_beir_folder
from tiny_models import WORDS
from wandb_records import run_contents

pytestmark = pytest.mark.slow  # every test runs a sweep through the command

TASKVEC_IR = Path(sys.executable).parent / "taskvec-ir"
# Cranfield has no dev split: the tests carve one out of its queries.
CRANFIELD_DEV = ["dataset=cranfield", "+dataset.splits.dev={sample_of:test,fraction:0.3,seed:1}"]


@pytest.fixture(scope="module")
def sweep(triple, mirror_dir, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")

    def run(sweep_dir: Path, *overrides: str, name: str = "alpha_lambda", background: bool = False, check=True):
        command = [
            str(TASKVEC_IR),
            "-m",
            f"sweep={name}",
            f"hydra.sweep.dir={sweep_dir}",
            "retriever.top_k=10",
            f"cache.dir={cache}",
            "model.scorer.show_progress=false",
            *(f"model.{role}={path}" for role, path in triple.items()),
            *overrides,
        ]
        env = {**os.environ, "TASKVEC_IR_MIRROR": str(mirror_dir)}
        if background:
            return subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, stdin=subprocess.DEVNULL
            )
        result = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=600)
        assert result.returncode == 0 or not check, result.stdout[-2000:] + result.stderr[-4000:]
        return result

    return run


def results(sweep_dir: Path) -> dict:
    return yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())


def trial_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(sweep_dir.glob("trial_*"), key=lambda p: int(p.name.split("_")[1]))


@pytest.fixture(scope="module")
def finished(sweep, tmp_path_factory):
    sweep_dir = tmp_path_factory.mktemp("sweep")
    sweep(sweep_dir, *CRANFIELD_DEV, "hydra.sweeper.n_trials=3")
    return sweep_dir


def test_trials_tune_on_dev_and_log_to_one_wandb_group(finished):
    trials = trial_dirs(finished)
    assert [t.name for t in trials] == ["trial_0", "trial_1", "trial_2"]
    groups, names = set(), []
    for trial in trials:
        assert list(json.loads((trial / "metrics.json").read_text())) == ["dev", "lam", "merge", "warnings"]  # no test
        run = run_contents(trial)
        assert run["job_type"] == "trial" and run["exit_code"] == 0
        assert {"alpha", "lam"} <= set(run["summary"]) and "objective/dev/ndcg@10" in run["summary"]
        assert run["metrics"]["objective/dev/ndcg@10"] == ["max"]
        # α and λ searched together: the config's values are the ones used
        assert run["config"]["alpha"]["used"] == run["config"]["alpha"]["value"]
        assert run["config"]["lam"]["used"] == run["config"]["lam"]["value"] == run["summary"]["lam"]
        groups.add(run["group"])
        names.append(run["name"])
    final = run_contents(finished / "final")
    assert final["job_type"] == "final" and groups == {final["group"]}
    # Names unique in the project (a study's name and its storage's hash, as its group), tags that find the study.
    study = final["config"]["sweep"]["study"]
    prefix = study["group"].removeprefix("sweep/")
    assert prefix.startswith(study["name"] + "@")
    assert names == [f"{prefix}/trial-{n}" for n in range(3)] and final["name"] == f"{prefix}/final"
    assert {"merge:task_arithmetic", "selection:sweep", f"study:{study['name']}"} <= set(final["tags"])


def test_final_evaluation_uses_the_best_dev_setting(finished):
    best = results(finished)
    objectives = {}
    for trial in trial_dirs(finished):
        run = run_contents(trial)
        objectives[trial.name] = (
            run["summary"]["objective/dev/ndcg@10"],
            run["config"]["alpha"]["value"],
            run["summary"]["lam"],
        )
    value, alpha, lam = max(objectives.values(), key=lambda v: v[0])
    assert best["best_value"] == pytest.approx(value) and best["n_complete"] == 3
    assert best["best_params"]["alpha.value"] == pytest.approx(alpha) and best["best_lam"] == pytest.approx(lam)
    final = run_contents(finished / "final")
    assert final["config"]["alpha"]["value"] == pytest.approx(alpha) and final["config"]["lam"][
        "value"
    ] == pytest.approx(lam)
    metrics = json.loads((finished / "final" / "metrics.json").read_text())
    assert list(metrics) == ["test", "lam", "merge", "warnings", "test_guard"]
    assert metrics["test_guard"]["tuned_after_test"] is False  # a new study: no test result seen before
    # this sweep searched λ itself (no lam.grid to tune the baselines on): every fused system at the chosen λ
    assert metrics["lam"] == {"bm25": None, **dict.fromkeys(["ir_model", "alpha_one", "domain_model"], lam),
                              "task_arithmetic": lam}  # fmt: skip
    assert set(metrics["test"]) == {"bm25", "ir_model", "alpha_one", "domain_model", "task_arithmetic"}
    assert metrics["merge"]["setting"]["alphas"] == {"domain": pytest.approx(alpha)}
    assert (finished / "final" / "task_vector_layers.png").read_bytes()[:4] == b"\x89PNG"  # ‖τ‖ per layer
    significance = json.loads((finished / "final" / "significance.json").read_text())
    assert set(significance) == {"bm25", "ir_model", "alpha_one", "domain_model"}
    report = (finished / "final" / "results.md").read_text()
    assert f"| TA | {lam:g} |" in report and "| ΘD |" in report
    assert "paired t-test, two-sided" in report and "Bonferroni over 4 baselines" in report
    assert (finished / "final" / "results.tex").read_text().startswith(r"\begin{tabular}")
    assert (finished / "alpha_sensitivity.png").read_bytes()[:4] == b"\x89PNG"


def test_rerun_resumes_and_runs_only_the_missing_trials(sweep, finished):
    before = {t.name: (t / "metrics.json").stat().st_mtime_ns for t in trial_dirs(finished)}
    output = sweep(finished, *CRANFIELD_DEV, "hydra.sweeper.n_trials=5", "sweep.final_evaluation=false").stdout
    assert "3 of 5 trials complete" in output
    assert [t.name for t in trial_dirs(finished)] == ["trial_0", "trial_1", "trial_2", "trial_3", "trial_4"]
    assert {name: (finished / name / "metrics.json").stat().st_mtime_ns for name in before} == before
    assert results(finished)["n_complete"] == 5


def test_two_workers_started_at_once_share_one_new_study(sweep, tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'shared.db'}"  # nothing created beforehand
    common = [
        *CRANFIELD_DEV,
        "hydra.sweeper.n_trials=4",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=shared",
        "sweep.final_evaluation=false",
    ]
    workers = [sweep(tmp_path / f"worker{i}", *common, background=True) for i in range(2)]
    for worker in workers:
        output, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0, output[-3000:]
    study = optuna.load_study(study_name="shared", storage=storage)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 4
    assert len({t.params["alpha.value"] for t in complete}) == 4
    dirs = [d.name for i in range(2) for d in trial_dirs(tmp_path / f"worker{i}")]
    assert sorted(dirs) == sorted(f"trial_{t.number}" for t in complete)


def test_worker_jobs_share_the_study_each_running_trials_in_its_one_process(sweep, tmp_path):
    common = [*CRANFIELD_DEV, "hydra.sweeper.n_trials=4", "sweep.final_evaluation=false", "launcher=local"]
    sweep(tmp_path, *common, "hydra.sweeper.worker_jobs=2")
    assert results(tmp_path)["n_complete"] == 4
    assert [t.name for t in trial_dirs(tmp_path)] == ["trial_0", "trial_1", "trial_2", "trial_3"]
    for trial in trial_dirs(tmp_path):
        assert (trial / "metrics.json").is_file() and (trial / ".hydra" / "overrides.yaml").is_file()
    logs = [(worker / "app.log").read_text() for worker in sorted((tmp_path / "workers").iterdir())]
    ran = [int(log.split("ran ")[1].split(" trials")[0]) for log in logs]
    assert len(ran) == 2 and sum(ran) == 4  # two processes, every trial run once

    refused = sweep(tmp_path / "refused", *common, "hydra.sweeper.worker_jobs=-1", check=False)
    assert refused.returncode != 0
    assert "hydra.sweeper.worker_jobs: -1 must be 0 (a job per trial) or positive" in refused.stderr


@pytest.fixture
def beir_collection(tmp_path):
    """A small BEIR-layout collection with dev and test qrels."""
    rng = random.Random(0)
    folder = tmp_path / "tinybeir"
    (folder / "qrels").mkdir(parents=True)
    docs = {f"d{i}": " ".join(rng.choices(WORDS, k=12)) for i in range(40)}
    queries = {f"q{i}": " ".join(rng.choices(WORDS, k=3)) for i in range(12)}
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in docs.items())
    )
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()))
    for split, ids in (("dev", range(6)), ("test", range(6, 12))):
        rows = [f"q{q}\td{rng.randrange(40)}\t1" for q in ids for _ in range(3)]
        (folder / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return folder


def test_no_trial_reads_test_qrels(sweep, beir_collection, tmp_path):
    dataset = [
        "dataset=germanquad",
        "dataset.name=tinybeir",
        "dataset.docs=tinybeir",
        "dataset.language=en",
        f"dataset.beir_path={beir_collection}",
        "dataset.splits.test=tinybeir/test",
        "+dataset.splits.dev=tinybeir/dev",
    ]
    test_qrels = beir_collection / "qrels" / "test.tsv"
    kept = test_qrels.read_text()
    test_qrels.unlink()  # any trial reading test qrels would now fail
    sweep(tmp_path / "sweep", *dataset, "hydra.sweeper.n_trials=3", "sweep.final_evaluation=false")
    assert results(tmp_path / "sweep")["n_complete"] == 3
    test_qrels.write_text(kept)
    output = sweep(tmp_path / "sweep", *dataset, "hydra.sweeper.n_trials=3").stdout
    assert "3 of 3 trials complete" in output and len(trial_dirs(tmp_path / "sweep")) == 3
    assert list(json.loads((tmp_path / "sweep" / "final" / "metrics.json").read_text())) == [
        "test",
        "lam",
        "merge",
        "warnings",
    ]


def test_wandb_lineage_links_trials_to_shared_inputs_and_records_the_study(finished):
    # The sweep of 3 trials (a later test resumes it to 5).
    trials, final = [run_contents(trial) for trial in trial_dirs(finished)[:3]], run_contents(finished / "final")
    # Every trial declares the dev candidates and the task vector it used (offline: in its config), one version of
    # one name each, shared.
    for kind, name in (("candidates", "bm25-cranfield-dev"), ("task_vector", "task-vector-minilm_demo")):
        used = {(n, i["aliases"][0]) for run in trials for n, i in run["config"]["inputs"].items() if i["type"] == kind}
        assert len(used) == 1 and next(iter(used))[0] == name, (kind, used)
    candidates = trials[0]["config"]["inputs"]["bm25-cranfield-dev"]
    assert candidates["metadata"]["split"] == "dev" and candidates["aliases"] == [candidates["metadata"]["cache_key"]]
    # Trials reference their TREC runs where they lie (marked node-local); the final evaluation uploads its runs.
    (trial_runs,) = [a for a in trials[0]["artifacts"] if a["type"] == "trec_runs"]
    assert trial_runs["name"] == "runs-minilm_demo-cranfield-dev" and "reference" in trial_runs["metadata"]
    assert all(ref.startswith("file://") for ref in trial_runs["files"].values())
    (final_runs,) = [a for a in final["artifacts"] if a["type"] == "trec_runs"]
    assert (
        final_runs["name"] == "runs-minilm_demo-cranfield-test" and "test.task_arithmetic.trec" in final_runs["files"]
    )
    assert not any(final_runs["files"].values())  # uploaded, for another machine
    # The final evaluation uses the test candidates, and logs its report (uploaded) and the study database.
    assert final["config"]["inputs"]["bm25-cranfield-test"]["metadata"]["split"] == "test"
    assert "task-vector-minilm_demo" in final["config"]["inputs"]
    (report,) = [a for a in final["artifacts"] if a["type"] == "report"]
    assert {"results.md", "significance.json", "metrics.json"} <= set(report["files"])
    assert not any(report["files"].values())  # uploaded, not referenced
    (study,) = [a for a in final["artifacts"] if a["type"] == "optuna_study"]
    assert set(study["files"]) == {"optuna.db"}
    # Each run records its code, its study and how the study searches; one W&B group per study.
    for run in (*trials, final):
        provenance = run["config"]["provenance"]
        assert provenance["packages"]["torch"] and provenance["packages"]["taskvec-ir"]
        study_config = run["config"]["sweep"]["study"]
        assert study_config["search_space"] == {"alpha.value": "float [0.0, 1.0]", "lam.value": "float [0.0, 1.0]"}
        assert study_config["sampler"]["_target_"] == "optuna.samplers.TPESampler"
        assert study_config["sampler"]["seed"] == 42 and study_config["n_trials"] == 3
        assert run["group"] == study_config["group"] == f"sweep/{study_config['name']}@" + study_config["group"][-8:]
    # The objective against every swept key, as a W&B table of the trials.
    assert final["summary"]["sensitivity/trials/nrows"] == 3


def test_a_beir_folder_with_a_dev_split_is_swept_and_one_without_is_refused_naming_its_splits(
    sweep, triple, mirror_dir, tmp_path
):
    """A user's own BEIR folder: its qrels files are its splits, for the sweeper as for a single run (#26)."""
    with_dev = write_beir_folder(tmp_path / "with_dev", {"dev": 6, "test": 6})
    beir = ["dataset=beir", "dataset.name=with_dev", f"dataset.beir_path={with_dev}", "hydra.sweeper.n_trials=2"]
    sweep(tmp_path / "sweep", *beir, name="alpha")
    assert results(tmp_path / "sweep")["n_complete"] == 2
    for trial in trial_dirs(tmp_path / "sweep"):
        assert list(json.loads((trial / "metrics.json").read_text())) == ["dev", "lam", "merge", "warnings"]
    assert "test" in json.loads((tmp_path / "sweep" / "final" / "metrics.json").read_text())

    test_only = write_beir_folder(tmp_path / "test_only", {"test": 6})
    command = [
        str(TASKVEC_IR),
        "-m",
        "sweep=alpha",
        "dataset=beir",
        "dataset.name=test_only",
        f"dataset.beir_path={test_only}",
        f"hydra.sweep.dir={tmp_path / 'refused'}",
        *(f"model.{role}={path}" for role, path in triple.items()),
    ]
    env = {**os.environ, "TASKVEC_IR_MIRROR": str(mirror_dir)}
    refused = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=300)
    assert refused.returncode != 0
    assert "dataset 'test_only' has no 'dev' split to tune on (splits: test)" in refused.stderr, refused.stderr[-2000:]
    assert not list((tmp_path / "refused").glob("trial_*"))


def test_a_sweeps_final_evaluation_bootstraps_its_dev_choice(sweep, tmp_path):
    """The dev row's bootstrap: the sweep's choice rerun on resamples of the dev queries, over the α its trials
    ran × lam.grid, evaluated on test; a sweep that searches λ too is refused before its first trial."""
    grid = ("alpha.value=choice(0.0,0.5,1.0)", "hydra.sweeper.n_trials=3", "lam.grid=[0.0,0.3,0.6,1.0]")
    sweep(tmp_path / "grid", *CRANFIELD_DEV, *grid, "selection.bootstrap.resamples=50", name="paper_grid")
    final = tmp_path / "grid" / "final"
    result = json.loads((final / "selection_bootstrap.json").read_text())
    metrics = json.loads((final / "metrics.json").read_text())
    best = results(tmp_path / "grid")
    assert result["method"] == "dev" and result["grid"] == {"alphas": [0.0, 0.5, 1.0], "lams": [0.0, 0.3, 0.6, 1.0]}
    assert sum(result["alpha_counts"].values()) == 50 and 0 <= result["p_beats_ir_model"] <= 1
    assert result["matches_selection"] in (True, "tie")  # Optuna's best trial is its first among equals
    if result["matches_selection"] is True:
        assert result["choice"]["settings"] == [[best["best_params"]["alpha.value"], best["best_lam"]]]
        assert result["choice"]["test"] == pytest.approx(metrics["test"]["task_arithmetic"]["ndcg@10"])
    assert all(draw["regret"] >= 0 for draw in result["draws"]) and (final / "selection_bootstrap.png").is_file()
    refused = sweep(tmp_path / "joint", *CRANFIELD_DEV, "selection.bootstrap.resamples=50", check=False)
    assert refused.returncode != 0 and "selection.bootstrap.resamples: a sweep's bootstrap" in refused.stderr
    assert not list((tmp_path / "joint").glob("trial_*"))


def test_a_grid_refined_after_its_test_evaluation_is_marked_and_refused_when_strict(sweep, tmp_path):
    """The pattern of the paper's released logs: a study and its final test evaluation, then the α grid refined
    around the test result and searched again (a new study in the same storage). Its final evaluation is marked
    (results.md, metrics.json, W&B), and refused before any trial under sweep.strict_test_guard. The unchanged grid
    searched again (before the refined one), and the refined grid in a fresh storage before any test, are not
    marked."""
    common = [*CRANFIELD_DEV, "hydra.sweeper.n_trials=2"]
    coarse, refined_grid = "alpha.value=choice(0.0,1.0)", "alpha.value=choice(0.25,0.75)"
    sweep(tmp_path / "coarse", *common, coarse, name="paper_grid")
    first = results(tmp_path / "coarse")
    storage = f"hydra.sweeper.storage=sqlite:///{tmp_path / 'coarse' / 'optuna.db'}"
    seen = [f"study {first['study_name']}: final evaluation of trial {first['best_trial']}"]

    def guard(sweep_dir: Path) -> dict:
        return json.loads((sweep_dir / "final" / "metrics.json").read_text())["test_guard"]

    sweep(tmp_path / "again", *common, coarse, storage, "hydra.sweeper.study_name=again", name="paper_grid")
    assert guard(tmp_path / "again")["tuned_after_test"] is False  # the grid the test result was made with
    seen.append(f"study again: final evaluation of trial {results(tmp_path / 'again')['best_trial']}")
    strict = sweep(tmp_path / "strict", *common, refined_grid, storage, "hydra.sweeper.study_name=strict",
                   "sweep.strict_test_guard=true", name="paper_grid", check=False)  # fmt: skip
    assert strict.returncode != 0 and not trial_dirs(tmp_path / "strict")
    assert "taskvec-ir: sweep.strict_test_guard: study strict's best setting would be evaluated on test" in (
        strict.stderr
    )
    assert all(what in strict.stderr for what in seen)
    sweep(tmp_path / "refined", *common, refined_grid, storage, "hydra.sweeper.study_name=refined", name="paper_grid")
    marked = guard(tmp_path / "refined")
    assert marked["tuned_after_test"] is True and [t["what"] for t in marked["tests_seen"]] == seen
    assert "\nTuned after test results: search space" in (tmp_path / "refined" / "final" / "results.md").read_text()
    run = run_contents(tmp_path / "refined" / "final")
    assert run["summary"]["test_guard/tuned_after_test"] is True and run["config"]["test_guard"] == marked
    sweep(tmp_path / "fresh", *common, refined_grid, name="paper_grid")
    assert guard(tmp_path / "fresh") == {**guard(tmp_path / "fresh"), "tuned_after_test": False, "tests_seen": []}
