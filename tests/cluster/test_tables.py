"""A table on the cluster: two cells side by side, every trial and every selection a SLURM job, the cells' studies
in PostgreSQL. Tiny models on Cranfield (one cell with a dev carve-out, one cross-validated)."""

from __future__ import annotations

import csv
import json
import uuid

import optuna

from servers import TASKVEC_IR, finish, process_env, start


def test_a_table_runs_its_cells_side_by_side_through_slurm(cluster, triple, mirror_dir, tmp_path):
    name = f"table-{uuid.uuid4().hex[:8]}"  # its studies are new in the shared database
    overrides = ["model=minilm_demo", *(f"model.{role}={path}" for role, path in triple.items())]
    model = "[" + ",".join(f"'{override}'" for override in overrides) + "]"
    command = [
        str(TASKVEC_IR),
        "task=table",
        f"table.name={name}",
        "+table.datasets.cranfield_split=[]",
        "+table.datasets.cranfield=[]",
        f"+table.models.tiny={model}",
        "table.selections=[nqc]",
        f"table.storage={cluster.storage}",
        "table.cells_at_once=2",
        "selection.alphas=[0.0,1.0]",
        "lam.grid=[0.0,0.5,1.0]",
        "retriever.top_k=5",
        f"cache.dir={tmp_path / 'cache'}",
        "model.scorer.show_progress=false",
        f"table.dir={tmp_path / 'table'}",
        "launcher=slurm",
        f"hydra.launcher.partition={cluster.partition}",
        "hydra.launcher.gpus_per_node=0",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=2",
        "hydra.launcher.timeout_min=20",
        "hydra.launcher.array_parallelism=2",
    ]
    log = tmp_path / "table.log"
    finish(start(command, process_env(mirror_dir), log, cwd=tmp_path), log, timeout=1500)
    cells = tmp_path / "table" / "cells"
    jobs = [
        *(cells / "cranfield_split" / "tiny" / "task_arithmetic" / "dev").glob("trial_*"),
        cells / "cranfield_split" / "tiny" / "task_arithmetic" / "dev" / "final",
        cells / "cranfield_split" / "tiny" / "task_arithmetic" / "selection" / "nqc",
        cells / "cranfield" / "tiny" / "task_arithmetic" / "selection" / "nqc",
        cells / "cranfield" / "tiny" / "task_arithmetic" / "selection" / "cross_validation",
    ]
    assert len(jobs) == 2 + 4
    for job in jobs:  # every job of every cell ran in SLURM
        assert json.loads((job / "slurm.json").read_text())["job_id"], job
        assert (job / "metrics.json").is_file()
    assert len(cluster.trials(f"{name}/cranfield_split/tiny/task_arithmetic", optuna.trial.TrialState.COMPLETE)) == 2
    with open(tmp_path / "table" / "table.csv") as lines:
        rows = list(csv.DictReader(lines))
    assert {(r["dataset"], r["selection"]) for r in rows} == {
        ("cranfield_split", "dev"),
        ("cranfield_split", "nqc"),
        ("cranfield", "cross_validation"),
        ("cranfield", "nqc"),
    }
    assert "| cranfield | 225 | 5-fold CV (no dev) |" in (tmp_path / "table" / "table.md").read_text()
