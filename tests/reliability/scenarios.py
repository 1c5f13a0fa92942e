"""The process-level scenarios of the reliability suite, run in the background two at a time.

Each scenario runs the real ``taskvec-ir`` command (one or several processes, faults injected by
``faults/sitecustomize.py``) and returns what the tests inspect. Every process pays seconds of start-up
(torch, transformers, wandb), so the conftest starts the scenarios the selected tests need as soon as the
session begins, two at a time on the two cores, while the function-level tests run; a test waits only for
its own.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import optuna
import yaml

from procs import (
    CRANFIELD_DEV,
    FAKE_HF_TOKEN,
    FAKE_WANDB_KEY,
    files_under,
    model_overrides,
    run_taskvec_ir,
    start_taskvec_ir,
)

SINGLE, SWEEP = "single", "sweep"
STUDY = "minilm_demo-cranfield-alpha_lambda"

# Bad input run as the command: name -> (single run or sweep, overrides, what stderr must say). Our own checks end
# with one line, ``taskvec-ir: <the first message>``; a value of the wrong type is refused by Hydra when it composes
# the config (the schema types every key), with Hydra's message naming the key (HYDRA_TYPE_ERRORS).
REFUSED = {
    "alpha_not_a_number": (
        SINGLE,
        ["alpha.value=abc"],
        ["Error merging override alpha.value=abc", "could not be converted to Float", "full_key: alpha.value"],
    ),
    "top_k_not_a_number": (
        SINGLE,
        ["retriever.top_k=many"],
        [
            "Error merging override retriever.top_k=many",
            "could not be converted to Integer",
            "full_key: retriever.top_k",
        ],
    ),
    "alpha_not_finite": (SINGLE, ["alpha.value=inf"], ["alpha.value: inf must be a finite number"]),
    "objective_not_measured": (
        SINGLE,
        ["measures=[map@100]"],
        ["objective: 'ndcg@10' is not among measures (map@100)"],
    ),
    "unknown_measure": (
        SINGLE,
        ["measures=[ndcg@10,ndgc@5]"],
        ["measures: 'ndgc@5' is not a measure taskvec-ir computes"],
    ),
    "nothing_to_do": (SINGLE, ["systems=[]"], ["systems: [] with save_merged=false would do nothing"]),
    "density_out_of_range": (SINGLE, ["merge=ties", "merge.density=1.5"], ["merge.density: 1.5 must be in (0, 1]"]),
    "unknown_dataset_id": (
        SINGLE,
        ["dataset.docs=no-such-collection"],
        ["unknown ir_datasets id 'no-such-collection': fix dataset.docs"],
    ),
    "hub_id_offline": (
        SINGLE,
        ["model.domain=org/not-downloaded"],
        ["model.domain: 'org/not-downloaded' is not in the local Hugging Face cache and the Hub is offline"],
    ),
    "kind_does_not_match_checkpoint": (
        SINGLE,
        ["model.kind=monot5", "systems=[task_arithmetic]"],
        ["model.kind=monot5 needs an encoder-decoder LM", "model.ir", "a bert checkpoint"],
    ),
    "domain_vocabulary_differs": (
        SINGLE,
        ["model.domain={vocab_1000}", "systems=[task_arithmetic]"],
        ["model.domain", "vocabulary of 1000 tokens, the IR model 30522", "embeddings.word_embeddings.weight"],
    ),
    "sweep_without_dev_split": (
        SWEEP,
        ["sweep=alpha_lambda", "dataset=cranfield"],
        ["has no 'dev' split to tune on", "sweep.tune_split"],
    ),
    "sweep_with_missing_model": (
        SWEEP,
        ["sweep=alpha_lambda", *CRANFIELD_DEV, "model.domain=/nonexistent"],
        ["model.domain: '/nonexistent' is neither an existing folder"],
    ),
}
HYDRA_TYPE_ERRORS = {"alpha_not_a_number", "top_k_not_a_number"}


def study_states(sweep_dir: Path) -> dict[int, optuna.trial.TrialState]:
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    return {t.number: t.state for t in study.get_trials()}


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in files_under(folder)}


def refused(name: str, root: Path, context: dict):
    mode, overrides, _ = REFUSED[name]
    args = [
        "dataset=cranfield",
        *model_overrides(context["triple"]),
        *(o.replace("{vocab_1000}", str(context["vocab_1000"])) for o in overrides),
    ]
    out = root / "out"
    return run_taskvec_ir(out, args, context["mirror_dir"], multirun=mode == SWEEP, timeout=300), out


def app_run(name: str, root: Path, context: dict) -> dict:
    """``twin_a``/``twin_b``: one config and seed, each process in its own HOME, caches and ir_datasets folder
    (nothing shared, nothing served from a cache), W&B set online against a server that does not answer, fake
    W&B and Hugging Face secrets in the environment. ``disk_full``: every result write in the job dir fails."""
    home = root / "home"
    env = {
        "HOME": str(home),
        "IR_DATASETS_HOME": str(home / "ir_datasets"),
        "WANDB_DIR": str(home / "wandb"),
        "WANDB_DATA_DIR": str(home / "wandb/data"),
        "WANDB_CACHE_DIR": str(home / "wandb/cache"),
        "WANDB_CONFIG_DIR": str(home / "wandb/config"),
        "HF_HOME": str(home / "hf"),
    }
    for folder in env.values():
        Path(folder).mkdir(parents=True, exist_ok=True)
    overrides = [
        *CRANFIELD_DEV,
        "split=dev",
        "retriever.top_k=10",
        "alpha.value=0.7",
        "lam.value=0.4",
        f"cache.dir={home / 'cache'}",
        *model_overrides(context["triple"]),
    ]
    faults = None
    if name.startswith("twin"):
        overrides += ["wandb.mode=online", "wandb.init_timeout=3"]
        env.update(
            {
                "WANDB_MODE": None,
                "WANDB_BASE_URL": "http://127.0.0.1:9",
                "WANDB_API_KEY": FAKE_WANDB_KEY,
                "HF_TOKEN": FAKE_HF_TOKEN,
            }
        )
    else:
        faults = "*:enospc"
    out = root / "job"
    return {
        "result": run_taskvec_ir(out, overrides, context["mirror_dir"], env=env, faults=faults),
        "out": out,
        "home": home,
    }


def overnight(name: str, root: Path, context: dict) -> dict:
    """One sweep of 4 trials on the default (in-process) launcher: trial 1 runs out of memory, trial 2 scores
    NaN, trial 3 is SIGKILLed mid-scoring, which kills the sweeper. Then the same command again."""
    sweep_dir, cache = root / "sweep", root / "cache"
    overrides = [
        "sweep=alpha_lambda",
        *CRANFIELD_DEV,
        "retriever.top_k=10",
        f"cache.dir={cache}",
        *model_overrides(context["triple"]),
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.max_failure_rate=0.75",
        "sweep.final_evaluation=false",
    ]
    faults = "1:oom,2:nan,3:sigkill"  # the same command both times: trial numbers 4+ are not hit
    first = start_taskvec_ir(sweep_dir, overrides, context["mirror_dir"], multirun=True, faults=faults)
    first_out, first_err = first.communicate(timeout=600)
    killed = {
        "returncode": first.returncode,
        "output": first_out + first_err,
        "states": study_states(sweep_dir),
        "files": snapshot(sweep_dir),
        "cache_files": [str(p.relative_to(cache)) for p in files_under(cache)],
    }
    second = start_taskvec_ir(sweep_dir, overrides, context["mirror_dir"], multirun=True, faults=faults)
    second_out, second_err = second.communicate(timeout=600)
    results = sweep_dir / "optimization_results.yaml"
    return {
        "dir": sweep_dir,
        "killed": killed,
        "resumed": {"returncode": second.returncode, "output": second_out + second_err},
        "states": study_states(sweep_dir),
        "results": yaml.safe_load(results.read_text()) if results.exists() else None,
    }


def worker_killed(name: str, root: Path, context: dict) -> dict:
    """A sweep whose trials run in worker processes (launcher=local, Hydra's joblib launcher): trial 0's worker
    is SIGKILLed mid-scoring (systems=[task_arithmetic]: it scores first, so the kill comes early); one more
    trial is needed to reach n_trials=1."""
    sweep_dir = root / "sweep"
    overrides = [
        "sweep=alpha_lambda",
        *CRANFIELD_DEV,
        "retriever.top_k=10",
        f"cache.dir={root / 'cache'}",
        *model_overrides(context["triple"]),
        "systems=[task_arithmetic]",
        "launcher=local",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_trials=1",
        "hydra.sweeper.max_failure_rate=1.0",
        "sweep.final_evaluation=false",
    ]
    sweep = start_taskvec_ir(sweep_dir, overrides, context["mirror_dir"], multirun=True, faults="0:sigkill")
    output = "".join(sweep.communicate(timeout=600))
    return {"dir": sweep_dir, "returncode": sweep.returncode, "output": output, "states": study_states(sweep_dir)}


# fixture name -> its jobs (name -> function), in the order they start: the longest chain (two sweeper runs
# one after the other) first, then in the order the test modules ask for them.
SCENARIOS: dict[str, dict[str, Callable]] = {
    "overnight": {"overnight": overnight},
    "refused": {name: refused for name in REFUSED},
    "app_runs": {name: app_run for name in ("twin_a", "twin_b", "disk_full")},
    "worker_killed": {"worker_killed": worker_killed},
}


class Background:
    """Runs the jobs of the scenarios a session needs, two at a time, from the session's start."""

    def __init__(self, needed: set[str], context: dict, make_root: Callable[[str], Path]):
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="scenario")
        self.futures: dict[str, dict[str, Future]] = {}
        for scenario, jobs in SCENARIOS.items():
            if scenario in needed:
                self.futures[scenario] = {
                    name: self.pool.submit(job, name, make_root(name), context) for name, job in jobs.items()
                }

    def result(self, scenario: str):
        futures = self.futures[scenario]
        results = {name: future.result() for name, future in futures.items()}
        return results[scenario] if list(results) == [scenario] else results

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
