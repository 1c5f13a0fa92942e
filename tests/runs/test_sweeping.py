"""Sweeps as users run them (``taskvec-ir -m sweep=...``), on tiny models and real Cranfield."""

import json
import os
import random
import re
import shlex
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


def inputs(run: dict) -> dict:
    """What an offline run recorded as its inputs (its config's ``inputs``, one JSON string)."""
    return json.loads(run["config"]["inputs"])


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
        assert {"alpha", "lam", "objective"} <= set(run["summary"]) and run["summary"]["objective_split"] == "dev"
        assert run["metrics"]["objective"] == ["max"]
        # α and λ searched together: the config's values are the ones used
        assert run["config"]["alpha"]["used"] == run["config"]["alpha"]["value"]
        assert run["config"]["lam"]["used"] == run["config"]["lam"]["value"] == run["summary"]["lam"]
        groups.add(run["group"])
        names.append(run["name"])
    final = run_contents(finished / "final")
    assert final["job_type"] == "final" and groups == {final["group"]}
    # Names unique in the project, saying what each run is; tags that find the study (its name and storage).
    study = final["config"]["sweep"]["study"]
    prefix = study["group"].removeprefix("sweep/")
    assert prefix.startswith(study["name"] + "@")
    assert [name.rsplit("-", 1)[0] for name in names] == [f"trial/cranfield/minilm_demo/{n}" for n in range(3)]
    assert final["name"].startswith("final/cranfield/minilm_demo/alpha=") and len(set(names)) == 3
    assert {"merge:task_arithmetic", "selection:sweep", f"study:{prefix}"} <= set(final["tags"])
    assert final["summary"]["objective_split"] == "test"


def test_final_evaluation_uses_the_best_dev_setting(finished):
    best = results(finished)
    objectives = {}
    for trial in trial_dirs(finished):
        run = run_contents(trial)
        objectives[trial.name] = (
            run["summary"]["objective"],
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
    assert list(metrics) == ["test", "lam", "merge", "warnings", "test_guard", "dev_vs_test"]
    assert metrics["dev_vs_test"] == [  # the choice on dev beside the same setting on test
        {"sweep": "alpha_lambda", "trials": 3, "tuned": pytest.approx(best["best_value"]),
         "test": pytest.approx(metrics["test"]["task_arithmetic"]["ndcg@10"])}
    ]  # fmt: skip
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
    # a comparison of identical per-query values counts once: a measure re-ranking cannot move has one test
    assert "paired t-test, two-sided" in report and re.search(r"Bonferroni over \d–4 baselines", report)
    assert (finished / "final" / "results.tex").read_text().startswith(r"\begin{tabular}")
    assert (finished / "alpha_sensitivity.png").read_bytes()[:4] == b"\x89PNG"


def test_rerun_resumes_and_runs_only_the_missing_trials(sweep, finished):
    before = {t.name: (t / "metrics.json").stat().st_mtime_ns for t in trial_dirs(finished)}
    output = sweep(finished, *CRANFIELD_DEV, "hydra.sweeper.n_trials=5", "sweep.final_evaluation=false").stdout
    assert "3 of 5 trials complete" in output
    # one line per trial: its objective at its setting, the study's count and the time left at this run's pace
    said = re.findall(r"Trial (\d): ndcg@10 0\.\d{4} at alpha\.value=[\d.e-]+, lam\.value=[\d.e-]+ · (\d)/5 trials "
                      r"complete · \d+ (?:min \d+ )?s elapsed(, about)?", output)  # fmt: skip
    assert said == [("3", "4", ", about"), ("4", "5", "")]
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
        "test_guard",
        "dev_vs_test",
    ]


def test_wandb_lineage_links_trials_to_shared_inputs_and_records_the_study(finished):
    # The sweep of 3 trials (a later test resumes it to 5).
    trials, final = [run_contents(trial) for trial in trial_dirs(finished)[:3]], run_contents(finished / "final")
    # Every trial declares the dev candidates and the task vector it used (offline: in its config), one version of
    # one name each, shared.
    for kind, name in (("candidates", "bm25-cranfield-dev"), ("task_vector", "task-vector-minilm_demo")):
        used = {(n, i["aliases"][0]) for run in trials for n, i in inputs(run).items() if i["type"] == kind}
        assert len(used) == 1 and next(iter(used))[0] == name, (kind, used)
    candidates = inputs(trials[0])["bm25-cranfield-dev"]
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
    assert inputs(final)["bm25-cranfield-test"]["metadata"]["split"] == "test"
    assert "task-vector-minilm_demo" in inputs(final)
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
    assert final["summary"]["sensitivity/trials"]["nrows"] == 3


def test_a_beir_folder_with_a_dev_split_is_swept_and_one_without_is_refused_naming_its_splits(
    sweep, triple, mirror_dir, tmp_path
):
    """A user's own BEIR folder: its qrels files are its splits, for the sweeper as for a single run (#26)."""
    with_dev = write_beir_folder(tmp_path / "with_dev", {"dev": 6, "test": 6})
    beir = ["dataset=beir", "dataset.name=with_dev", f"dataset.beir_path={with_dev}", "hydra.sweeper.n_trials=2"]
    output = sweep(tmp_path / "sweep", *beir, name="alpha").stdout
    assert results(tmp_path / "sweep")["n_complete"] == 2
    # a line per trial, λ chosen from lam.grid named in it, not the grid's 21 values
    assert len(re.findall(r"Trial \d: ndcg@10 0\.\d{4} at alpha\.value=[\d.e-]+, λ=[\d.]+ · \d/2 trials", output)) == 2
    assert "λ on dev by" not in output
    for trial in trial_dirs(tmp_path / "sweep"):  # λ chosen from lam.grid on the trial's split: lam_chosen_by
        assert list(json.loads((trial / "metrics.json").read_text())) == ["dev", "lam", "lam_chosen_by", "merge",
                                                                          "warnings"]  # fmt: skip
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
    splits = "(its splits: test (test_only/test))"
    assert f"dataset 'test_only' has no 'dev' split to tune on {splits}" in refused.stderr, refused.stderr[-2000:]
    assert not list((tmp_path / "refused").glob("trial_*"))
    # The fix the message gives, pasted as a shell reads it: dev and test, two halves of the folder's test queries.
    (fix,) = [line for line in refused.stderr.splitlines() if line.startswith("  - add it: ")]
    pasted = shlex.split(fix.removeprefix("  - add it: "))
    sweep(tmp_path / "fixed", *command[3:6], *pasted, "hydra.sweeper.n_trials=1", "sweep.final_evaluation=false",
          name="alpha")  # fmt: skip
    (trial,) = trial_dirs(tmp_path / "fixed")
    dev = set(json.loads((trial / "per_query.json").read_text())["dev"]["bm25"]["ndcg@10"])
    assert 0 < len(dev) < 6  # half of the 6 queries


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


# A Pareto sweep: Cranfield's carved dev as the target, 20% of SciFact's test queries as the general collection; λ
# fixed, so that every trial's retention moves with its α.
PARETO = [
    *CRANFIELD_DEV,
    "dataset@sweep.retention.dataset=scifact",
    "+sweep.retention.dataset.splits.small={sample_of:test,fraction:0.2,seed:1}",
    "sweep.retention.split=small",
    "lam.value=0.3",
    "hydra.sweeper.sampler.population_size=2",
]


def dominated(point, points) -> bool:
    return any(q[0] >= point[0] and q[1] >= point[1] and q != point for q in points)


@pytest.fixture(scope="module")
def pareto_sweep(sweep, tmp_path_factory):
    sweep_dir = tmp_path_factory.mktemp("pareto")
    sweep(sweep_dir, *PARETO, "hydra.sweeper.n_trials=3", name="pareto")
    return sweep_dir


def test_a_pareto_sweep_writes_its_front_and_evaluates_the_bound_rules_choice_on_test(pareto_sweep):
    trials = {}
    for trial in trial_dirs(pareto_sweep):
        written = json.loads((trial / "objective.json").read_text())
        retention = json.loads((trial / "metrics.json").read_text())["retention"]
        # The retention is TA's objective minus ΘT's on the general split, at the trial's λ.
        means = retention["means"]
        assert written["retention"] == pytest.approx(means["task_arithmetic"] - means["ir_model"], abs=1e-12)
        assert retention["split"] == "small" and retention["queries"] == 60 and retention["lam"] == 0.3
        alpha = run_contents(trial)["config"]["alpha"]["value"]
        trials[int(trial.name.split("_")[1])] = (written["objective"], written["retention"], alpha)
    assert len(trials) == 3
    results = yaml.safe_load((pareto_sweep / "optimization_results.yaml").read_text())
    points = list(trials.values())
    front = sorted(n for n, (o, r, _) in trials.items() if not dominated((o, r), [p[:2] for p in points]))
    assert results["pareto_front"] == front and results["retention_bound"] == 0.01
    # The rule, recomputed: the best dev score of the trials losing at most 0.01 (no tie among three floats).
    within = {n: v for n, v in trials.items() if -v[1] <= 0.01}
    chosen = max(within, key=lambda n: within[n][0])
    assert results["best_trial"] == chosen and results["best_value"] == trials[chosen][0]
    assert results["best_retention"] == trials[chosen][1]
    final = run_contents(pareto_sweep / "final")
    assert final["config"]["alpha"]["value"] == pytest.approx(trials[chosen][2])
    assert final["summary"]["pareto/chosen_trial"] == chosen and final["summary"]["pareto/front_size"] == len(front)
    assert final["summary"]["pareto_trials"]["nrows"] == 3
    report = (pareto_sweep / "final" / "results.md").read_text()
    assert f"whose retention loss on scifact small is at most 0.01 (trial {chosen}:" in report
    assert "Pareto front: ndcg@10 on the tuning split against the retention on scifact small" in report
    rows = report.split("| trial | α | λ | tuning | retention | within bound |")[1].strip().splitlines()[1:]
    assert len(rows) == len(front) and chosen in front and sum("**" in row for row in rows) == 1
    assert (pareto_sweep / "pareto_front.png").read_bytes()[:4] == b"\x89PNG"
    assert len((pareto_sweep / "pareto_front.csv").read_text().splitlines()) == 4


def test_a_pareto_trials_retention_is_a_plain_runs_delta_on_the_general_collection(
    pareto_sweep, triple, mirror_dir, tmp_path
):
    # The same Θ' and λ evaluated by a run of its own on the general split, with a cache of its own.
    trial = trial_dirs(pareto_sweep)[0]
    alpha = run_contents(trial)["config"]["alpha"]["value"]
    command = [
        str(TASKVEC_IR),
        "dataset=scifact",
        "+dataset.splits.small={sample_of:test,fraction:0.2,seed:1}",
        "split=small",
        f"alpha.value={alpha}",
        "lam.value=0.3",
        "systems=[ir_model,task_arithmetic]",
        "retriever.top_k=10",
        f"cache.dir={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        "model.scorer.show_progress=false",
        *(f"model.{role}={path}" for role, path in triple.items()),
    ]
    env = {**os.environ, "TASKVEC_IR_MIRROR": str(mirror_dir)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    means = json.loads((tmp_path / "run" / "metrics.json").read_text())["small"]
    retention = json.loads((trial / "objective.json").read_text())["retention"]
    assert retention == pytest.approx(means["task_arithmetic"]["ndcg@10"] - means["ir_model"]["ndcg@10"], abs=1e-12)


def test_a_pareto_sweep_resumes_and_refuses_a_single_direction(sweep, pareto_sweep, tmp_path):
    output = sweep(pareto_sweep, *PARETO, "hydra.sweeper.n_trials=4", "sweep.final_evaluation=false", name="pareto")
    assert "3 of 4 trials complete" in output.stdout
    assert results(pareto_sweep)["n_complete"] == 4
    assert len((pareto_sweep / "pareto_front.csv").read_text().splitlines()) == 5
    refused = sweep(tmp_path, *PARETO, "hydra.sweeper.direction=maximize", name="pareto", check=False)
    assert refused.returncode != 0 and "a Pareto sweep (sweep.retention) maximises" in refused.stderr


@pytest.fixture(scope="module")
def genome_beside_alpha(sweep, tmp_path_factory):
    """sweep=alpha (2 trials), then sweep=genome (3 trials) compared with it, on Cranfield's dev sample."""
    root = tmp_path_factory.mktemp("genome")
    sweep(root / "alpha", *CRANFIELD_DEV, "hydra.sweeper.n_trials=2", name="alpha")
    compared = f"sweep.compare_with={root / 'alpha'}"
    sweep(root / "genome", *CRANFIELD_DEV, "hydra.sweeper.n_trials=3", compared, name="genome")
    return root / "alpha", root / "genome"


def test_a_genome_sweep_merges_each_trials_genes_and_reports_dev_vs_test_beside_the_single_alpha(genome_beside_alpha):
    alpha, genome = genome_beside_alpha
    best = results(genome)
    genes = ["alpha.genome.attention.0", "alpha.genome.attention.1", "alpha.genome.mlp.0", "alpha.genome.mlp.1"]
    assert set(best["best_params"]) == {*genes, "alpha.otherwise"}
    merged = []
    for trial in trial_dirs(genome):
        config = run_contents(trial)["config"]["alpha"]
        genome_config = {kind: config["genome"][kind] for kind in ("attention", "mlp")}
        setting = json.loads((trial / "metrics.json").read_text())["merge"]["setting"]
        assert config["value"] == 1.0 and [len(v) for v in genome_config.values()] == [2, 2]
        assert setting["scale"]["genome"] == genome_config and setting["scale"]["otherwise"] == config["otherwise"]
        merged.append(tuple(genome_config["attention"] + genome_config["mlp"]))
    assert len(set(merged)) == 3  # each trial merged its own genome
    final = json.loads((genome / "final" / "metrics.json").read_text())
    assert final["merge"]["setting"]["scale"]["genome"] == {
        kind: pytest.approx([best["best_params"][f"alpha.genome.{kind}.{i}"] for i in range(2)])
        for kind in ("attention", "mlp")
    }
    single = json.loads((alpha / "final" / "metrics.json").read_text())
    assert final["dev_vs_test"] == [
        {"sweep": "genome", "trials": 3, "tuned": pytest.approx(best["best_value"]),
         "test": pytest.approx(final["test"]["task_arithmetic"]["ndcg@10"])},
        {"sweep": "alpha", "trials": 2, "tuned": pytest.approx(results(alpha)["best_value"]),
         "test": pytest.approx(single["test"]["task_arithmetic"]["ndcg@10"])},
    ]  # fmt: skip
    assert single["dev_vs_test"] == [final["dev_vs_test"][1]]  # the single α's own report: its row alone
    report = (genome / "final" / "results.md").read_text()
    assert "| sweep | trials | ndcg@10 dev | ndcg@10 test | test − dev |" in report
    assert "| genome | 3 |" in report and "| alpha | 2 |" in report


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
