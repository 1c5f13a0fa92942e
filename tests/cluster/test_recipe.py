"""The docs' multi-node recipe (docs/cluster.md), run word for word: two sweepers started at once on a new
PostgreSQL study, each trial and the final evaluation a SLURM job, as two nodes would run it."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import optuna

from servers import REPO, assert_no_trial_lost_or_counted_twice, finish, start
from wandb_records import run_contents

STUDY = "demo-alpha"  # the recipe's study name


def recipe() -> str:
    """The shell block that follows docs/cluster.md's ``<!-- multi-node recipe -->`` marker."""
    text = (REPO / "docs" / "cluster.md").read_text()
    (block,) = re.findall(r"<!-- multi-node recipe -->\n```bash\n(.*?)```", text, re.S)
    return block


def forget_study(storage: str) -> None:
    """A new study for this run: the database outlives test sessions."""
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if summary.study_name == STUDY or summary.study_name.startswith(f"{STUDY}:final:"):
            optuna.delete_study(study_name=summary.study_name, storage=storage)


def test_two_sweepers_share_one_postgres_study_on_slurm(cluster, mirror_dir, tmp_path):
    forget_study(cluster.storage)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # taskvec-ir as installed
        "OPTUNA_STORAGE": cluster.storage,
        "SLURM_PARTITION": cluster.partition,
        "TASKVEC_IR_MIRROR": str(mirror_dir),
    }
    nodes = [tmp_path / "node1", tmp_path / "node2"]
    sweepers = []
    for node in nodes:
        node.mkdir()
        sweepers.append((start(["bash", "-euc", recipe()], env, node / "sweeper.log", cwd=node), node))
    outputs = [finish(sweeper, node / "sweeper.log", timeout=1800) for sweeper, node in sweepers]

    complete = assert_no_trial_lost_or_counted_twice(cluster, STUDY, 4)
    trial_dirs = [Path(t.user_attrs["job_dir"]) for t in complete]
    assert {d.parents[3] for d in trial_dirs} <= set(nodes)  # <node>/multirun/demo-alpha/<host>-<pid>/trial_n
    for trial_dir in trial_dirs:
        assert json.loads((trial_dir / "slurm.json").read_text())["node"]  # each trial was a SLURM job

    # Exactly one final evaluation, made by a SLURM job, on the test split; the other sweeper says who made it.
    (final,) = [d for node in nodes for d in node.glob("multirun/demo-alpha/*/final") if (d / "metrics.json").exists()]
    assert list(json.loads((final / "metrics.json").read_text())) == [
        "test",
        "lam",
        "merge",
        "warnings",
        "test_guard",
        "dev_vs_test",
    ]
    job = json.loads((final / "slurm.json").read_text())
    assert f"SLURM job {job.get('array', job['job_id'])}" in (final / "app.log").read_text()
    assert sum("made by another sweeper" in o or "was made by" in o for o in outputs) == 1

    # One W&B group for the study: every trial's run and the final run, each with its SLURM job in its config.
    runs = [run_contents(d) for d in [*trial_dirs, final]]
    groups = {run["group"] for run in runs}
    assert len(groups) == 1 and groups.pop().startswith(f"sweep/{STUDY}@")
    assert runs[-1]["config"]["slurm"] == job and all(run["config"]["slurm"]["node"] for run in runs)
